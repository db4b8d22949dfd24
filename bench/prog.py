"""The cleartext program every contender runs behind the TLS tunnel.

Usage: python bench/prog.py RFD WFD MODE N EXPECTED RESULTFILE [IDLE_SECONDS]

MODE upload: send "SINK N" and N pattern bytes, the server's sha256 must be EXPECTED.
MODE download: send "SOURCE N", read N bytes, their sha256 must be EXPECTED.
MODE idle: send "IDLE", read the reply, sit IDLE_SECONDS with no traffic.

The TLS process is our parent (tlsc forks prog; stunnel's exec and socat's EXEC
fork it too).  Its CPU time and peak RSS are read from /proc/<ppid> just before
and just after the transfer, i.e. before the TLS process exits; prog's own CPU
is never counted, it is a separate process.  One JSON object goes to RESULTFILE.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pattern import BLOCK_SIZE, block  # noqa: E402


def sample(pid: int) -> dict:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    sched_ns = 0
    for p in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            with open(p) as f:
                sched_ns += int(f.read().split()[0])
        except OSError:
            pass
    status = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            status[k] = v.strip()
    with open(f"/proc/{pid}/comm") as f:
        comm = f.read().strip()
    return {
        "cpu": cpu,
        "sched": sched_ns / 1e9,
        "hwm_kib": int(status["VmHWM"].split()[0]),
        "rss_kib": int(status["VmRSS"].split()[0]),
        "threads": int(status["Threads"]),
        "comm": comm,
    }


def readline(r) -> bytes:
    out = bytearray()
    while not out.endswith(b"\n"):
        c = r.read(1)
        if not c:
            break
        out += c
    return bytes(out)


def main() -> int:
    rfd, wfd, mode, n, expected, resultfile = sys.argv[1:7]
    n = int(n)
    r = open(int(rfd), "rb", buffering=0, closefd=False)
    w = open(int(wfd), "wb", buffering=0, closefd=False)
    ppid = os.getppid()
    res: dict = {"mode": mode, "n": n, "tls_pid": ppid}
    before = sample(ppid)
    t0 = time.monotonic()
    if mode == "upload":
        w.write(f"SINK {n}\n".encode())
        data = block()
        left = n
        while left > 0:
            chunk = data if left >= BLOCK_SIZE else data[:left]
            w.write(chunk)
            left -= len(chunk)
        reply = readline(r).decode().split()
        t1 = time.monotonic()
        res["got"], res["cipher"] = (reply + ["", ""])[:2]
    elif mode == "download":
        w.write(f"SOURCE {n}\n".encode())
        h = hashlib.sha256()
        buf = bytearray(1 << 20)
        view = memoryview(buf)
        left = n
        while left > 0:
            k = r.readinto(view[: min(left, len(buf))])
            if not k:
                break
            h.update(view[:k])
            left -= k
        t1 = time.monotonic()
        res["got"] = h.hexdigest()
        res["short"] = left
    elif mode == "idle":
        w.write(b"IDLE\n")
        reply = readline(r).decode().split()
        res["cipher"] = (reply + ["", ""])[1]
        before = sample(ppid)
        t0 = time.monotonic()
        time.sleep(float(sys.argv[7]))
        t1 = time.monotonic()
        res["got"] = expected
    else:
        raise SystemExit(f"bad mode {mode}")
    after = sample(ppid)
    res.update(
        seconds=t1 - t0,
        ok=res["got"] == expected,
        before=before,
        after=after,
        cpu=after["cpu"] - before["cpu"],
        sched=after["sched"] - before["sched"],
    )
    tmp = resultfile + ".tmp"
    with open(tmp, "w") as f:
        json.dump(res, f)
    os.replace(tmp, resultfile)
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
