"""Start a command the way a UCSPI client (tcpclient) would: a connected socket on fds 6 and 7.

    python launch.py SOCKFD TARGETS -- cmd...

SOCKFD is the socket inherited from the test, TARGETS a comma-separated list of
descriptor numbers to place it on (empty: none).  The original descriptor is
closed, then cmd is executed in this same process (so its pid is ours).
"""

import os
import sys


def main() -> None:
    sock = int(sys.argv[1]) if sys.argv[1] != "-" else None
    targets = [int(x) for x in sys.argv[2].split(",") if x]
    assert sys.argv[3] == "--"
    cmd = sys.argv[4:]
    for fd in (6, 7, *targets):
        if fd != sock:
            try:
                os.close(fd)
            except OSError:
                pass
    if sock is not None:
        for fd in targets:
            if fd != sock:
                os.dup2(sock, fd)
            else:
                os.set_inheritable(fd, True)
        if sock not in targets:
            os.close(sock)
    os.execvp(cmd[0], cmd)


main()
