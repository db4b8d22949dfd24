"""The floor of a Python TLS client: the least a tlsc-shaped tunnel can do.

    CAFILE=ca.pem SNI=localhost python floor_tunnel.py PROG [ARG ...]

Python's ``ssl`` over two memory BIOs on the connection at fds 6/7: one
anchor, the handshake, then prog forked with its pipes on fds 6/7, and a
relay until either side ends.  No options, no checks beyond OpenSSL's own,
no environment for prog, no error handling: a yardstick, not a tool.  The
benchmark times its setup beside tlsc's, in the same rounds, so that what the
interpreter and ``import ssl`` cost is told apart from what tlsc adds.
"""

import os
import select
import ssl
import sys

NET_R, NET_W = 6, 7
CHUNK = 131072


def main() -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(os.environ["CAFILE"])
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname=os.environ["SNI"])
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            os.write(NET_W, outgoing.read())
            incoming.write(os.read(NET_R, CHUNK))
    if outgoing.pending:
        os.write(NET_W, outgoing.read())

    to_prog_r, to_prog = os.pipe()
    from_prog, from_prog_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.dup2(to_prog_r, NET_R)
        os.dup2(from_prog_w, NET_W)
        os.execv(sys.argv[1], sys.argv[1:])
    os.close(to_prog_r)
    os.close(from_prog_w)

    poll = select.poll()
    poll.register(NET_R, select.POLLIN)
    poll.register(from_prog, select.POLLIN)
    while True:
        for fd, _ in poll.poll():
            data = os.read(fd, CHUNK)
            if not data:
                os.waitpid(pid, 0)
                return
            if fd == from_prog:
                tls.write(data)
                os.write(NET_W, outgoing.read())
                continue
            incoming.write(data)
            try:
                while clear := tls.read(CHUNK):
                    os.write(to_prog, clear)
            except ssl.SSLWantReadError:
                pass


if __name__ == "__main__":
    main()
