"""Where a profiled tlsc spent its time, by layer, from a py-spy raw profile.

Usage::

    .venv/bin/python bench/run.py --tools tlsc-tlslite --size 128 --rounds 1 \\
        --wrap ".venv/bin/py-spy record -r 200 -f raw -o /tmp/tlsc-{n}.raw --"
    .venv/bin/python bench/shares.py /tmp/tlsc-1.raw

(``{n}`` is the run's number: 1 is the first download, 2 the first upload.)
Each sample is charged to the innermost Python frame's layer: tlsc's core
(the relay: poll loop, buffers, and the system calls it makes), the backend's
glue (tlsc_openssl, tlsc_tlslite), the TLS library (tlslite-ng and the pure
Python maths under it, or pyOpenSSL/cryptography), start-up (imports), other.
The issue's question, "is time wasted outside the crypto?", is the core's and
the glue's share.
"""

from __future__ import annotations

import collections
import re
import sys

LAYERS = (
    ("startup", re.compile(r"<frozen importlib|importlib/|site\.py|<module> \(")),
    ("tlsc core", re.compile(r"\((?:\S*/)?tlsc/")),
    ("backend glue", re.compile(r"\((?:\S*/)?tlsc_(?:openssl|tlslite)/")),
    (
        "TLS library",
        re.compile(r"\((?:\S*/)?(?:tlslite|ecdsa|asn1crypto|OpenSSL|cryptography)/"),
    ),
)
PY_FRAME = re.compile(r"\([^()]+:\d+\)$")  # "func (file.py:12)"; native: "read (libc.so.6)"


def layer_of(frames: list[str]) -> str:
    for frame in reversed(frames):  # innermost first
        if not PY_FRAME.search(frame):
            continue  # a native frame: charged to the Python code that called it
        for name, pattern in LAYERS:
            if pattern.search(frame):
                return name
        return "other"
    return "other"


def shares(path: str) -> tuple[int, collections.Counter[str]]:
    counts: collections.Counter[str] = collections.Counter()
    total = 0
    with open(path) as f:
        for line in f:
            stack, _, n = line.rstrip("\n").rpartition(" ")
            if not stack or not n.isdigit():
                continue
            frames = stack.split(";")
            counts[layer_of(frames)] += int(n)
            total += int(n)
    return total, counts


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: shares.py PY-SPY-RAW-PROFILE", file=sys.stderr)
        return 2
    total, counts = shares(argv[0])
    if not total:
        print("no samples", file=sys.stderr)
        return 1
    for name in ("TLS library", "backend glue", "tlsc core", "startup", "other"):
        print(f"{name:14} {100 * counts[name] / total:5.1f}%")
    print(f"{'samples':14} {total}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
