"""A scriptable prog for tlsc: speaks cleartext on fds 6/7 and reports what it saw.

    python probe.py [--fds R,W] OUT ACTION...

Actions run in order; the report (JSON) is written to OUT at the end, and also
before an ``exit:N`` or ``kill:SIG`` action:

    write:TEXT     write TEXT (\\n escapes understood) to the write fd
    readline       read one line from the read fd      -> report["lines"]
    readall        read until EOF                      -> report["read"]
    closew         close the write fd (EOF for tlsc)
    sendfile:PATH  copy PATH to the write fd
    bulk:N         write N random bytes while reading until EOF, concurrently
                                                       -> report["bulk"]
    env / fds / ids  record the environment, the open descriptors, the credentials
    pipes          record the size of the read and write fds' pipes -> report["pipes"]
    touch:PATH     create PATH          waitfile:PATH   wait (<= 15 s) for PATH
    sleep:S        sleep S seconds      exit:N          exit with N
    kill:SIG       kill ourselves with signal SIG
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
import sys
import threading
import time


def read_all(fd: int) -> tuple[int, str, str]:
    h = hashlib.sha256()
    n = 0
    head = b""
    while True:
        data = os.read(fd, 65536)
        if not data:
            break
        n += len(data)
        h.update(data)
        if len(head) < 4096:
            head += data[: 4096 - len(head)]
    return n, h.hexdigest(), head.decode("latin-1")


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def pipe_size(fd: int) -> int | None:
    try:
        return fcntl.fcntl(fd, getattr(fcntl, "F_GETPIPE_SZ", 1032))
    except OSError:
        return None  # closed, or not a pipe


def fd_listing() -> dict[str, str]:
    out = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            out[name] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            out[name] = "?"  # the directory descriptor listdir used, now closed
    return out


def main() -> None:
    args = sys.argv[1:]
    rfd, wfd = 6, 7
    if args[0] == "--fds":
        rfd, wfd = (int(x) for x in args[1].split(","))
        args = args[2:]
    out, actions = args[0], args[1:]
    report: dict = {"lines": [], "errors": []}

    def dump() -> None:
        tmp = out + ".tmp"
        with open(tmp, "w") as f:
            json.dump(report, f)
        os.rename(tmp, out)

    for action in actions:
        verb, _, arg = action.partition(":")
        try:
            if verb == "write":
                write_all(wfd, arg.encode().decode("unicode_escape").encode("latin-1"))
            elif verb == "readline":
                line = b""
                while not line.endswith(b"\n"):
                    c = os.read(rfd, 1)
                    if not c:
                        break
                    line += c
                report["lines"].append(line.decode("latin-1"))
            elif verb == "readall":
                n, digest, head = read_all(rfd)
                report["read"] = {"bytes": n, "sha256": digest, "head": head}
            elif verb == "closew":
                os.close(wfd)
            elif verb == "sendfile":
                with open(arg, "rb") as f:
                    while chunk := f.read(65536):
                        write_all(wfd, chunk)
            elif verb == "bulk":
                total = int(arg)
                sent = hashlib.sha256()
                got: dict = {}

                def reader(into: dict = got) -> None:
                    into["bytes"], into["sha256"], _ = read_all(rfd)

                t = threading.Thread(target=reader)
                t.start()
                left = total
                while left:
                    chunk = os.urandom(min(65536, left))
                    sent.update(chunk)
                    write_all(wfd, chunk)
                    left -= len(chunk)
                os.close(wfd)
                t.join(60)
                report["bulk"] = {"sent_sha256": sent.hexdigest(), "sent": total,
                                  "received": got.get("bytes"),
                                  "received_sha256": got.get("sha256")}
            elif verb == "env":
                report["env"] = dict(os.environ)
            elif verb == "pipes":
                report["pipes"] = [pipe_size(rfd), pipe_size(wfd)]
            elif verb == "fds":
                report["fds"] = fd_listing()
            elif verb == "ids":
                report["ids"] = {"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(),
                                 "egid": os.getegid(), "groups": os.getgroups(),
                                 "pid": os.getpid(), "ppid": os.getppid()}
            elif verb == "touch":
                open(arg, "w").close()
            elif verb == "waitfile":
                end = time.monotonic() + 15
                while not os.path.exists(arg) and time.monotonic() < end:
                    time.sleep(0.02)
            elif verb == "sleep":
                time.sleep(float(arg))
            elif verb == "exit":
                dump()
                os._exit(int(arg))
            elif verb == "kill":
                dump()
                os.kill(os.getpid(), getattr(signal, "SIG" + arg))
                time.sleep(5)
            else:
                raise ValueError(f"unknown action {action!r}")
        except OSError as e:
            report["errors"].append(f"{action}: {e}")
    dump()


main()
