"""The test PKI and an in-memory TLS server for the openssl backend's tests.

The PKI is the one the end-to-end tests use (:func:`tlsc.testing.pki.build_pki`,
made once per session): a root CA, an intermediate, good leaves (ECDSA, RSA,
wildcard) for ``localhost``, 127.0.0.1 and ::1, and one leaf per verification
failure tlsc names.  The server side of each test is a plain pyOpenSSL
``Connection`` over memory BIOs, driven in the same thread.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from OpenSSL import SSL

from tlsc.session import ClientConfig, Session
from tlsc.testing.pki import PKI, Credential, build_pki

#: What the tests hand a server: credentials (or bare certificates), leaf first.
Served = list[Credential]


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return build_pki(tmp_path_factory.mktemp("pki"))


# -- in-memory server ----------------------------------------------------------


def server_context(
    chain: Served,
    *,
    version: int | None = None,
    request_client_cert: bool = False,
    require_client_cert: bool = False,
) -> SSL.Context:
    """A pyOpenSSL server context serving ``chain`` (leaf first)."""
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    if version is not None:
        ctx.set_min_proto_version(version)
        ctx.set_max_proto_version(version)
    # Security level 0 so that the *client* is what refuses weak material.
    ctx.set_cipher_list(b"DEFAULT:@SECLEVEL=0")
    ctx.use_certificate(chain[0].cert)
    ctx.use_privatekey(chain[0].key)
    for extra in chain[1:]:
        ctx.add_extra_chain_cert(extra.cert)
    if request_client_cert or require_client_cert:
        mode = SSL.VERIFY_PEER
        if require_client_cert:
            mode |= SSL.VERIFY_FAIL_IF_NO_PEER_CERT
        ctx.set_verify(mode, lambda *args: True)
    return ctx


def server_connection(ctx: SSL.Context) -> SSL.Connection:
    conn = SSL.Connection(ctx, None)
    conn.set_accept_state()
    return conn


def drain(conn: SSL.Connection) -> bytes:
    out = b""
    while True:
        try:
            out += conn.bio_read(65536)
        except SSL.WantReadError:
            return out


class Pair:
    """A client session and a server connection, wired back to back in memory."""

    def __init__(self, client: Session, server: SSL.Connection) -> None:
        self.client = client
        self.server = server
        self.server_error: Exception | None = None

    def to_server(self) -> None:
        data = self.client.data_to_send()
        if data:
            self.server.bio_write(data)

    def to_client(self) -> bool:
        data = drain(self.server)
        if data:
            self.client.receive_data(data)
        return bool(data)

    def server_step(self) -> None:
        if self.server_error is not None:
            return
        try:
            self.server.do_handshake()
        except SSL.WantReadError:
            pass
        except SSL.Error as e:
            self.server_error = e

    def handshake(self, rounds: int = 20) -> None:
        """Run the handshake to completion; the client's exception propagates.

        Whatever the client queued before raising (an alert) reaches the
        server first, as the core would send it.
        """
        for _ in range(rounds):
            try:
                done = self.client.do_handshake()
            finally:
                self.to_server()
                self.server_step()
                self.to_client()
            if done:
                # Let the server finish (TLS 1.3: it reads our Finished).
                self.server_step()
                self.to_client()
                return
        raise AssertionError("handshake did not finish")

    def server_send(self, data: bytes) -> None:
        self.server.sendall(data)
        self.to_client()

    def server_recv(self, n: int = 1 << 20) -> bytes:
        self.to_server()
        out = b""
        while True:
            try:
                chunk = self.server.recv(n)
            except SSL.WantReadError:
                return out
            if not chunk:
                return out
            out += chunk

    def client_read_all(self) -> bytes:
        out = b""
        while True:
            chunk = self.client.read(65536)
            if not chunk:
                return out
            out += chunk


@pytest.fixture
def make_pair(pki: PKI) -> Callable[..., Pair]:
    """make_pair(leaf name or chain, config, **server options) -> Pair.

    A name is an attribute of the PKI: its leaf and issuers are served.
    """
    from tlsc_openssl import backend

    def make(
        chain: str | Served,
        config: ClientConfig,
        warn: Callable[[str], None] | None = None,
        **server_opts: object,
    ) -> Pair:
        served = getattr(pki, chain).served_chain() if isinstance(chain, str) else chain
        ctx = backend.client_context(config, warn or (lambda msg: None))
        server = server_connection(server_context(served, **server_opts))  # type: ignore[arg-type]
        return Pair(ctx.session(), server)

    return make
