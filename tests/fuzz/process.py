"""The whole tlsc process against a TCP server on 127.0.0.1 that replays a (mutated) flight."""

from __future__ import annotations

import socket
import threading

from tests.support import run as runmod

from . import mutate

__all__ = ["replay_server_run"]


def _read_client_hello(conn: socket.socket) -> bytes:
    buf = b""
    while True:
        if len(buf) >= 5 and len(buf) >= 5 + int.from_bytes(buf[3:5], "big"):
            return buf
        chunk = conn.recv(65536)
        if not chunk:
            return buf
        buf += chunk


def _serve(listener: socket.socket, flights: list[bytes], log: dict) -> None:
    try:
        conn, _ = listener.accept()
    except OSError as e:
        log["error"] = repr(e)
        return
    with conn:
        conn.settimeout(10)
        try:
            hello = _read_client_hello(conn)
            log["client_hello"] = len(hello)
            data = b"".join(flights)
            if flights:
                data = mutate.fixup_session_id(flights[0], hello) + b"".join(flights[1:])
            conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)
            while conn.recv(65536):
                pass
        except OSError as e:
            log["error"] = repr(e)


def replay_server_run(backend: str, flights: list[bytes], *, timeout: float = 15.0,
                      handshake_ms: int = 5000) -> runmod.Result:
    """Run ``tlsc --no-verify-cert -K ... true`` against a server that sends ``flights``."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(timeout)
    log: dict = {}
    t = threading.Thread(target=_serve, args=(listener, flights, log), daemon=True)
    t.start()
    try:
        r = runmod.run(["--backend", backend, "--no-verify-cert", "-K", str(handshake_ms),
                        "--", "true"], peer=listener.getsockname(), timeout=timeout)
    finally:
        t.join(timeout)
        listener.close()
    return r
