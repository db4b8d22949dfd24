"""Handshake scenarios against an in-memory pyOpenSSL server (memory BIOs, one thread).

This is the sans-I/O contract of :mod:`tlsc.session` checked end to end
without sockets: bytes go from the client session to a pyOpenSSL server
``Connection`` and back in the same thread, so every scenario is
deterministic and takes milliseconds.  pyOpenSSL is the reference for
``Facts.cipher``: ``SSL_CIPHER`` is in OpenSSL's naming from every backend.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass, field

from tlsc.reasons import Reason, not_valid_for
from tlsc.session import (
    AlertReceived,
    Backend,
    ClientConfig,
    ProtocolError,
    Session,
    TLSError,
    Truncated,
    VerificationError,
)

from .certs import DAY, Issued, issue

__all__ = ["HOST", "SCENARIOS", "Scenario", "handshake_pki"]

HOST = "conformance.example"


@dataclass(frozen=True)
class HandshakePKI:
    """Certificates valid *now* (handshakes use the wall clock), made once per process."""

    root: Issued
    inter: Issued
    rsa: Issued
    ecdsa: Issued
    client: Issued
    stranger: Issued  #: a leaf for HOST under a root nobody trusts
    stranger_inter: Issued


@functools.lru_cache(maxsize=1)
def handshake_pki() -> HandshakePKI:
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    span = {"not_before": now - DAY, "not_after": now + 30 * DAY}
    root = issue("Conformance Root", key_kind="rsa2048", slot=11, ca=True, **span)
    inter = issue("Conformance Inter", key_kind="rsa2048", slot=12, ca=True, issuer=root, **span)
    names = {"dns": (HOST, "localhost"), "ips": ("127.0.0.1", "::1")}
    rsa = issue(HOST, key_kind="rsa2048", slot=13, issuer=inter, **names, **span)
    ecdsa = issue(HOST, key_kind="p256", slot=13, issuer=inter, **names, **span)
    client = issue("conformance client", key_kind="p256", slot=14, issuer=inter, **span)
    other = issue("Stranger Root", key_kind="p256", slot=15, ca=True, **span)
    other_inter = issue("Stranger Inter", key_kind="p256", slot=16, ca=True, issuer=other, **span)
    stranger = issue(HOST, key_kind="p256", slot=17, issuer=other_inter, **names, **span)
    return HandshakePKI(root, inter, rsa, ecdsa, client, stranger, other_inter)


def client_config(
    pki: HandshakePKI, *, server_name: str | None = HOST, client_cert: bool = False
) -> ClientConfig:
    extra = {}
    if client_cert:
        extra = {
            "cert_chain": (pki.client.der, pki.inter.der),
            "private_key": pki.client.key_pem(),
        }
    return ClientConfig(anchors=(("conformance-root", pki.root.der),), server_name=server_name,
                        **extra)  # type: ignore[arg-type]


class Pair:
    """A client session and a pyOpenSSL server, back to back in memory."""

    def __init__(
        self,
        backend: Backend,
        chain: list[Issued],
        *,
        version: str | None = None,
        config: ClientConfig | None = None,
        require_client_cert: bool = False,
    ) -> None:
        from OpenSSL import SSL

        self.SSL = SSL
        ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
        if version is not None:
            v = {"TLSv1.2": SSL.TLS1_2_VERSION, "TLSv1.3": SSL.TLS1_3_VERSION}[version]
            ctx.set_min_proto_version(v)
            ctx.set_max_proto_version(v)
        ctx.use_certificate(chain[0].cert)  # type: ignore[arg-type]
        ctx.use_privatekey(chain[0].key)
        for extra in chain[1:]:
            ctx.add_extra_chain_cert(extra.cert)  # type: ignore[arg-type]
        if require_client_cert:
            ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, lambda *a: True)
        self.server = SSL.Connection(ctx, None)
        self.server.set_accept_state()
        pki = handshake_pki()
        cctx = backend.client_context(config or client_config(pki), lambda msg: None)
        self.client: Session = cctx.session()

    def pump(self) -> None:
        """Move every queued byte both ways, letting the server progress."""
        data = self.client.data_to_send()
        if data:
            self.server.bio_write(data)
        try:
            self.server.do_handshake()
        except self.SSL.WantReadError:
            pass
        except self.SSL.Error:
            pass  # the client's exception is what the scenario checks
        out = b""
        while True:
            try:
                out += self.server.bio_read(65536)
            except self.SSL.WantReadError:
                break
        if out:
            self.client.receive_data(out)

    def handshake(self, rounds: int = 20) -> None:
        for _ in range(rounds):
            try:
                done = self.client.do_handshake()
            finally:
                self.pump()
            if done:
                self.pump()
                return
        raise AssertionError("handshake did not complete")

    def server_send(self, data: bytes) -> None:
        self.server.sendall(data)
        self.pump()

    def server_recv(self) -> bytes:
        self.pump()
        out = b""
        while True:
            try:
                chunk = self.server.recv(65536)
            except self.SSL.WantReadError:
                return out
            except self.SSL.ZeroReturnError:
                return out
            out += chunk

    def client_read(self) -> bytes | None:
        return self.client.read(65536)


@dataclass(frozen=True)
class Scenario:
    """A named check; ``needs`` is what a backend must declare for it to apply."""

    name: str
    run: Callable[[Backend], None]
    needs: dict[str, object] = field(default_factory=dict)


def _expect(
    exc: type[TLSError],
    fn: Callable[[], object],
    what: str,
    reason: Reason,
    detail: str | None | object = ...,
) -> TLSError:
    """``fn()`` must raise ``exc`` with ``reason`` (and ``detail``, when given).

    The reason is what the core words the failure with (the same words from
    every backend), so it is checked, not just the class.
    """
    try:
        fn()
    except exc as e:
        check_words(e, what, reason, detail)
        return e
    except Exception as e:
        raise AssertionError(
            f"{what}: expected {exc.__name__}, got {type(e).__name__}: {e}"
        ) from e
    raise AssertionError(f"{what}: expected {exc.__name__}, nothing raised")


def check_words(
    error: TLSError, what: str, reason: Reason, detail: str | None | object = ...
) -> None:
    """``error`` carries ``reason`` (and ``detail`` unless it is ``...``)."""
    got = getattr(error, "reason", None)
    if got is not reason:
        name = got.name if isinstance(got, Reason) else repr(got)
        raise AssertionError(
            f"{what}: worded as {name} ({error}), want {reason.name} ({reason.words()!r})"
        )
    if detail is not ... and error.detail != detail:
        raise AssertionError(f"{what}: detail {error.detail!r}, want {detail!r}")


def _handshake(version: str, kind: str) -> Callable[[Backend], None]:
    def run(backend: Backend) -> None:
        pki = handshake_pki()
        leaf = pki.rsa if kind == "RSA" else pki.ecdsa
        p = Pair(backend, [leaf, pki.inter], version=version)
        p.handshake()
        f = p.client.facts()
        assert f.protocol == version, f"protocol {f.protocol!r}, expected {version!r}"
        want = p.server.get_cipher_name()
        assert f.cipher == want, f"cipher {f.cipher!r}, OpenSSL calls it {want!r}"
        assert f.peer_certificate == leaf.der, "peer_certificate is not the server's leaf"
        assert f.server_name == HOST, f"server_name {f.server_name!r}"
        sni = p.server.get_servername()
        assert sni == HOST.encode(), f"server saw SNI {sni!r}"
        p.client.write(b"ping")
        got = p.server_recv()
        assert got == b"ping", f"server got {got!r}"
        p.server_send(b"pong" * 5000)
        data = b""
        while (chunk := p.client_read()) not in (None, b""):
            data += chunk
        assert data == b"pong" * 5000, f"client got {len(data)} bytes"

    return run


def _established(backend: Backend) -> Pair:
    pki = handshake_pki()
    p = Pair(backend, [pki.ecdsa, pki.inter])
    p.handshake()
    return p


def _close_notify(backend: Backend) -> None:
    p = _established(backend)
    p.server_send(b"last words")
    p.server.shutdown()
    p.pump()
    assert p.client_read() == b"last words", "data before close_notify lost"
    got = p.client_read()
    assert got == b"", f"read after close_notify returned {got!r}, expected b''"


def _read_to_close(p: Pair) -> bytes:
    """The client's plaintext up to the peer's close_notify (which must come)."""
    data = b""
    while (chunk := p.client_read()) not in (None, b""):
        data += chunk
    assert chunk == b"", f"no close_notify seen after {len(data)} bytes"
    return data


def _received_shutdown(p: Pair) -> bool:
    return bool(p.server.get_shutdown() & p.SSL.RECEIVED_SHUTDOWN)


def _half_close_by_peer(backend: Backend) -> None:
    """TLS 1.3: the peer's close_notify ends its direction only (RFC 8446 6.1).

    Nothing is answered for us, ``write`` still works and its data arrives,
    and our own close_notify ends the session later.
    """
    pki = handshake_pki()
    p = Pair(backend, [pki.ecdsa, pki.inter], version="TLSv1.3")
    p.handshake()
    p.server_send(b"last words")
    p.server.shutdown()
    p.pump()
    assert _read_to_close(p) == b"last words", "data before close_notify lost"
    assert p.server_recv() == b"", "the peer got data it was not sent"
    assert not _received_shutdown(p), "the peer's close_notify was answered with ours"
    try:
        p.client.write(b"still talking")
    except TLSError as e:
        raise AssertionError(
            f"write after the peer's TLS 1.3 close_notify: {type(e).__name__}: {e}"
        ) from None
    got = p.server_recv()
    assert got == b"still talking", f"the peer got {got!r} after its close_notify"
    p.client.close_notify()
    assert p.server_recv() == b"", "the peer got data after our close_notify"
    assert _received_shutdown(p), "our close_notify did not reach the peer"
    assert p.client_read() == b"", "read after close_notify must stay b''"


def _close_by_peer_tls12(backend: Backend) -> None:
    """TLS 1.2: the peer's close_notify ends the connection; we answer with ours."""
    pki = handshake_pki()
    p = Pair(backend, [pki.ecdsa, pki.inter], version="TLSv1.2")
    p.handshake()
    p.server_send(b"last words")
    p.server.shutdown()
    p.pump()
    assert _read_to_close(p) == b"last words", "data before close_notify lost"
    p.client.close_notify()
    got = p.server_recv()
    assert got == b"", f"the peer got {got!r} after its close_notify"
    assert _received_shutdown(p), "the peer's close_notify was not answered"


def _eof_truncated(backend: Backend) -> None:
    p = _established(backend)
    p.server_send(b"partial")
    p.client.receive_data(b"")
    assert p.client_read() == b"partial", "data before EOF lost"
    _expect(Truncated, p.client_read, "read after EOF without close_notify", Reason.TRUNCATED)


def _eof_in_handshake(backend: Backend) -> None:
    pki = handshake_pki()
    p = Pair(backend, [pki.ecdsa, pki.inter])
    p.client.do_handshake()
    p.client.data_to_send()
    p.client.receive_data(b"")
    _expect(Truncated, p.client.do_handshake, "EOF during the handshake", Reason.TRUNCATED)


def _garbage(backend: Backend) -> None:
    pki = handshake_pki()
    p = Pair(backend, [pki.ecdsa, pki.inter])
    p.client.do_handshake()
    p.client.data_to_send()
    p.client.receive_data(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n" * 4)
    _expect(
        ProtocolError, p.client.do_handshake, "garbage instead of a ServerHello", Reason.PROTOCOL
    )


def _fatal_alert(backend: Backend) -> None:
    pki = handshake_pki()
    p = Pair(backend, [pki.ecdsa, pki.inter])
    p.client.do_handshake()
    p.client.data_to_send()
    p.client.receive_data(bytes.fromhex("15030300020228"))  # fatal handshake_failure
    _expect(
        AlertReceived,
        p.client.do_handshake,
        "fatal alert instead of a ServerHello",
        Reason.ALERT,
        "handshake_failure",  # the alert's name, one spelling (tlsc.reasons.alert_name)
    )


def _unknown_ca(backend: Backend) -> None:
    pki = handshake_pki()
    p = Pair(backend, [pki.stranger, pki.stranger_inter])
    _expect(
        VerificationError, p.handshake, "server chain under an untrusted root", Reason.UNKNOWN_CA
    )


def _name_mismatch(backend: Backend) -> None:
    pki = handshake_pki()
    config = client_config(pki, server_name="other.example")
    p = Pair(backend, [pki.ecdsa, pki.inter], config=config)
    _expect(
        VerificationError,
        p.handshake,
        "certificate for another name",
        Reason.NAME_MISMATCH,
        not_valid_for("other.example"),
    )


def _ip_name(backend: Backend) -> None:
    pki = handshake_pki()
    p = Pair(backend, [pki.rsa, pki.inter], config=client_config(pki, server_name="127.0.0.1"))
    p.handshake()
    f = p.client.facts()
    assert f.server_name is None, f"no SNI for an IP address, facts say {f.server_name!r}"
    assert p.server.get_servername() is None, "SNI sent for an IP address"


def _client_cert(backend: Backend) -> None:
    pki = handshake_pki()
    p = Pair(
        backend,
        [pki.rsa, pki.inter],
        config=client_config(pki, client_cert=True),
        require_client_cert=True,
    )
    p.handshake()
    p.client.write(b"hello")
    assert p.server_recv() == b"hello"
    peer = p.server.get_peer_certificate()
    assert peer is not None, "server saw no client certificate"
    assert peer.to_cryptography() == pki.client.cert, "server saw another client certificate"


SCENARIOS: tuple[Scenario, ...] = (
    *(
        Scenario(f"handshake-{v}-{k}", _handshake(v, k), {"tls_versions": v})
        for v in ("TLSv1.2", "TLSv1.3")
        for k in ("RSA", "ECDSA")
    ),
    Scenario("close-notify-is-clean-eof", _close_notify),
    Scenario("write-after-peer-close-notify-TLSv1.3", _half_close_by_peer,
             {"tls_versions": "TLSv1.3"}),
    Scenario("peer-close-notify-answered-TLSv1.2", _close_by_peer_tls12,
             {"tls_versions": "TLSv1.2"}),
    Scenario("eof-is-truncated", _eof_truncated),
    Scenario("eof-in-handshake-is-truncated", _eof_in_handshake),
    Scenario("garbage-is-protocol-error", _garbage),
    Scenario("fatal-alert-is-alert-received", _fatal_alert),
    Scenario("unknown-ca-refused", _unknown_ca),
    Scenario("name-mismatch-refused", _name_mismatch),
    Scenario("ip-name-no-sni", _ip_name),
    Scenario("client-certificate", _client_cert, {"client_certificates": True}),
)
