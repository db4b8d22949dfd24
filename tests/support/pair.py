"""tlsc against tlsd (or any two commands) over one real TCP connection on 127.0.0.1.

``tcp_pair()`` is a connected pair of sockets made through a listener on
127.0.0.1; :func:`run_pair` puts one end on tlsc's fds 6 and 7 (as tcpclient
would) and the other on tlsd's stdin and stdout (as tcpserver would), runs both
to their end and returns both results.  Real processes, a real connection, no
test code in the middle of the TLS traffic.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from tests.support import run as runmod
from tests.support.serve import TlsdResult, start_tlsd


def tcp_pair() -> tuple[socket.socket, socket.socket]:
    """(client end, server end) of one TCP connection on 127.0.0.1."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname(), 5)
        server, _ = listener.accept()
    client.settimeout(None)
    server.settimeout(None)
    return client, server


@dataclass
class PairResult:
    client: runmod.Result
    server: TlsdResult


def run_pair(
    client_args: list[str],
    server_args: list[str],
    *,
    client_env: dict[str, str | None] | None = None,
    server_env: dict[str, str | None] | None = None,
    client_cmd: list[str] | None = None,
    timeout: float = runmod.DEFAULT_TIMEOUT,
) -> PairResult:
    """tlsc ``client_args`` (fds 6/7) against tlsd ``server_args`` (fds 0/1), both waited for."""
    client_sock, server_sock = tcp_pair()
    server = start_tlsd(server_args, server_sock, server_env)
    try:
        client = runmod.start(client_args, peer=client_sock, env=client_env, cmd=client_cmd)
        try:
            client_result = client.wait(timeout)
        finally:
            client.kill()
        server_result = server.wait(timeout)
    finally:
        server.kill()
    return PairResult(client_result, server_result)
