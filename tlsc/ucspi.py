"""The UCSPI TCP variables a tcpclient or tcpserver gives prog, from a connected socket.

tlsclient and tlsserver set them the same way: ``PROTO=TCP`` and the two
ends' addresses and ports; no DNS lookups are made, so the names and the
ident answer (``TCPREMOTEHOST``, ``TCPLOCALHOST``, ``TCPREMOTEINFO``) are
removed rather than left with a value inherited from our own environment.
"""

from __future__ import annotations

import socket
from collections.abc import MutableMapping

__all__ = ["CLEARED", "SET", "apply", "variables"]

SET = ("PROTO", "TCPREMOTEIP", "TCPREMOTEPORT", "TCPLOCALIP", "TCPLOCALPORT")
CLEARED = ("TCPREMOTEHOST", "TCPREMOTEINFO", "TCPLOCALHOST")


def variables(local: tuple, remote: tuple) -> dict[str, str]:
    """The values of :data:`SET` for a connection between ``local`` and ``remote``."""
    return {
        "PROTO": "TCP",
        "TCPREMOTEIP": str(remote[0]),
        "TCPREMOTEPORT": str(remote[1]),
        "TCPLOCALIP": str(local[0]),
        "TCPLOCALPORT": str(local[1]),
    }


def of_socket(sock: socket.socket) -> dict[str, str]:
    return variables(sock.getsockname(), sock.getpeername())


def apply(env: MutableMapping[str, str], values: dict[str, str]) -> None:
    """Set ``values`` in ``env`` and remove what no lookup was made for."""
    for name in CLEARED:
        env.pop(name, None)
    env.update(values)
