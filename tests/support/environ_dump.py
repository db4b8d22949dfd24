"""prog for the security tests: record the raw environment and descriptors, then exit.

    python environ_dump.py OUT

Writes OUT (JSON): ``environ`` = /proc/self/environ split on NUL (UTF-8, undecodable
bytes as surrogate escapes), ``fds`` = {fd: readlink target} of every open descriptor.
"""

import json
import os
import sys


def main() -> None:
    with open("/proc/self/environ", "rb") as f:
        raw = f.read()
    entries = [e.decode("utf-8", "surrogateescape") for e in raw.split(b"\0") if e]
    fds = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            fds[name] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            pass  # the descriptor listdir itself used
    tmp = sys.argv[1] + ".tmp"
    with open(tmp, "w", errors="surrogateescape") as f:
        json.dump({"environ": entries, "fds": fds}, f)
    os.rename(tmp, sys.argv[1])


main()
