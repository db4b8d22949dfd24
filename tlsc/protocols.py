"""The interface's Protocol classes: what a backend, its contexts and its sessions look like.

The contract itself (who calls what, when, and what each call may raise) is
the docstring of :mod:`tlsc.session`, which also re-exports these classes.
They live apart because defining a Protocol needs :mod:`typing`, and a
``tlsc`` run, which only calls the methods, should not pay for importing it
(about 1 ms per connection): :mod:`tlsc.session` imports this module on first
use of one of the names.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from .session import BackendInfo, ClientConfig, Facts, ServerConfig, Warn

__all__ = ["Backend", "ClientContext", "ServerContext", "Session"]


@runtime_checkable
class Session(Protocol):
    def receive_data(self, data: bytes) -> None: ...
    def do_handshake(self) -> bool: ...
    def read(self, max_bytes: int) -> bytes | None: ...
    def write(self, data: bytes) -> None: ...
    def close_notify(self) -> None: ...
    def data_to_send(self) -> bytes: ...
    def facts(self) -> Facts: ...


class ClientContext(Protocol):
    def session(self) -> Session: ...


class ServerContext(Protocol):
    def session(self) -> Session: ...


class Backend(Protocol):
    name: str

    def info(self) -> BackendInfo: ...
    def client_context(self, config: ClientConfig, warn: Warn) -> ClientContext: ...

    def server_context(self, config: ServerConfig, warn: Warn) -> ServerContext:
        """The server role (``tlsd``), for backends whose capabilities say ``server=True``.

        Sessions from it follow the same contract as client sessions; ``facts()``
        describes the *client*: ``peer_certificate`` is its certificate (None when it
        sent none) and ``server_name`` the SNI it sent (None when none).  With
        ``verify_client``, an invalid client certificate, or a missing one unless
        ``client_cert_optional``, raises :class:`VerificationError` from
        ``do_handshake`` after queueing the alert.  Certificates are chosen by the
        core (one context per certificate, see :mod:`tlsc.clienthello`): any SNI
        is accepted and recorded.
        """
        ...

    def verify_chain(
        self,
        chain_der: Sequence[bytes],
        anchors_der: Sequence[bytes],
        server_name: str | None = None,
        at_time: datetime | None = None,
    ) -> None:
        """The handshake's verification rules without a handshake (for the conformance harness).

        Only for backends whose capabilities say ``standalone_verifier`` (a
        library that verifies only inside a handshake has no such method; the
        harness then judges the same cases through real handshakes).
        ``chain_der``: the server's chain, leaf first, DER each; ``anchors_der``:
        trust anchors, DER (ones that do not parse are skipped, as
        ``client_context`` skips them); ``server_name``: a DNS name or IP literal
        checked against the leaf's subjectAltName, None for no name check;
        ``at_time``: the moment validity dates are judged at (default now, naive
        means UTC).  Returns None when a handshake would accept the chain,
        raises :class:`VerificationError` saying why when it would not.
        """
        ...
