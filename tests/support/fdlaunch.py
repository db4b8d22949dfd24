"""Start a command with chosen descriptors on chosen numbers (tests/test_faults.py).

    python fdlaunch.py [--nofile N] [--nonblock FD] MAP -- cmd...

MAP is a comma-separated list of SRC:DST pairs (each inherited SRC is dup'ed
onto DST; a SRC of ``-`` leaves DST closed).  Every SRC that is not also a
DST is closed, then ``--nonblock`` sets O_NONBLOCK on that DST, ``--nofile``
lowers RLIMIT_NOFILE (soft and hard) and cmd is executed in this process, so
its pid is ours.
"""

import fcntl
import os
import resource
import sys


def main() -> None:
    args = sys.argv[1:]
    nofile = None
    nonblock = []
    while args[0].startswith("--") and args[0] != "--":
        if args[0] == "--nofile":
            nofile = int(args[1])
        elif args[0] == "--nonblock":
            nonblock.append(int(args[1]))
        else:
            raise SystemExit(f"fdlaunch: unknown option {args[0]}")
        args = args[2:]
    pairs = [p.split(":") for p in args[0].split(",") if p]
    assert args[1] == "--"
    cmd = args[2:]
    dsts = {int(d) for _, d in pairs}
    srcs = {int(s) for s, _ in pairs if s != "-"}
    # Move the sources out of the way first, so that a DST never clobbers a SRC.
    moved = {s: fcntl.fcntl(s, fcntl.F_DUPFD, 100) for s in srcs}
    for s in srcs:
        os.close(s)
    for d in dsts:
        try:
            os.close(d)
        except OSError:
            pass
    for s, d in pairs:
        if s != "-":
            os.dup2(moved[int(s)], int(d))
    for m in moved.values():
        os.close(m)
    for fd in nonblock:
        fl = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, fl | os.O_NONBLOCK)
    if nofile is not None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
    os.execvp(cmd[0], cmd)


main()
