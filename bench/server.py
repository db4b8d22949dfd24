"""Benchmark TLS server (stdlib ssl = OpenSSL), one forked child per connection.

Usage: python bench/server.py CERT KEY PORTFILE

Listens on 127.0.0.1 (ephemeral port, written to PORTFILE), TLS 1.3 only.  The
TLS 1.3 suite is pinned through OPENSSL_CONF (set by bench/run.py), so every
contender negotiates the same one.  After the handshake the client sends one
command line:

  SINK N     read N bytes, reply "<sha256 hex> <cipher>\\n"
  SOURCE N   send N bytes of the benchmark pattern
  ECHO text  reply "text <cipher>\\n"
  IDLE       reply "ok <cipher>\\n", then wait for EOF

The pattern is bench.pattern.block() repeated, so the client can check a sha256
computed in advance.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import ssl
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pattern import BLOCK_SIZE, block  # noqa: E402


def readline(conn: ssl.SSLSocket) -> bytes:
    out = bytearray()
    while not out.endswith(b"\n"):
        c = conn.recv(1)
        if not c:
            break
        out += c
    return bytes(out)


def handle(conn: ssl.SSLSocket) -> None:
    cipher = conn.cipher()[0]
    line = readline(conn).decode().strip()
    cmd, _, arg = line.partition(" ")
    if cmd == "SINK":
        left = int(arg)
        h = hashlib.sha256()
        buf = bytearray(1 << 20)
        view = memoryview(buf)
        while left > 0:
            n = conn.recv_into(view, min(left, len(buf)))
            if n == 0:
                break
            h.update(view[:n])
            left -= n
        conn.sendall(f"{h.hexdigest()} {cipher}\n".encode())
    elif cmd == "SOURCE":
        left = int(arg)
        data = block()
        while left > 0:
            chunk = data if left >= BLOCK_SIZE else data[:left]
            conn.sendall(chunk)
            left -= len(chunk)
    elif cmd == "ECHO":
        conn.sendall(f"{arg} {cipher}\n".encode())
    elif cmd == "IDLE":
        conn.sendall(f"ok {cipher}\n".encode())
    # Wait for the client's end (close_notify or FIN) before closing, so that a
    # half-closing client still gets everything.
    try:
        while conn.recv(65536):
            pass
    except (ssl.SSLError, OSError):
        pass
    try:
        conn.unwrap()
    except (ssl.SSLError, OSError, ValueError):
        pass


def main() -> None:
    cert, key, portfile = sys.argv[1:4]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(cert, key)
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(64)
    tmp = portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(lsock.getsockname()[1]))
    os.replace(tmp, portfile)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # auto-reap
    while True:
        raw, _ = lsock.accept()
        # Every flight in its own segment at once: without this, the session
        # tickets sent after the handshake hold back the first reply by Nagle's
        # algorithm until the client's delayed ACK (40 ms on Linux).
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if os.fork() == 0:
            lsock.close()
            code = 0
            try:
                with ctx.wrap_socket(raw, server_side=True) as conn:
                    handle(conn)
            except (ssl.SSLError, OSError) as e:
                print(f"bench server: {e}", file=sys.stderr)
                code = 1
            os._exit(code)
        raw.close()


if __name__ == "__main__":
    main()
