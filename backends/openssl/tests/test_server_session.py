"""The openssl backend's server role, against its own client sessions, in memory.

A client session from ``backend.client_context`` and a server session from
``backend.server_context`` are wired back to back: whatever one queues in
``data_to_send`` the other receives, as the core would move it.
"""

from __future__ import annotations

import pytest
from OpenSSL import SSL

from tlsc.session import (
    AlertReceived,
    ClientConfig,
    ConfigError,
    ServerConfig,
    Session,
    TLSError,
    Truncated,
    VerificationError,
)
from tlsc.testing import certs
from tlsc.testing.pki import credential
from tlsc_openssl import backend

HOST = "localhost"  # the name every good leaf of the PKI carries
TLS12 = SSL.TLS1_2_VERSION
TLS13 = SSL.TLS1_3_VERSION
BOTH = pytest.mark.parametrize("version", [TLS12, TLS13], ids=["tls12", "tls13"])


def _quiet(msg: str) -> None:
    pass


def server_config(pki, leaf="leaf_ec", *, verify_client=False, anchors=None):
    chain = getattr(pki, leaf).served_chain()
    return ServerConfig(
        cert_chain=[c.der for c in chain],
        private_key=chain[0].issued.key_pem(),
        verify_client=verify_client,
        anchors=[("root", pki.root.der)] if anchors is None else anchors,
    )


def client_config(pki, *, name=HOST, client=None) -> ClientConfig:
    kw = {}
    if client is not None:
        kw = {"cert_chain": [client.der, pki.inter.der], "private_key": client.issued.key_pem()}
    return ClientConfig(anchors=[("root", pki.root.der)], server_name=name, **kw)


def sessions(ccfg: ClientConfig, scfg: ServerConfig, version: int | None = None):
    sctx = backend.server_context(scfg, _quiet)
    if version is not None:
        sctx.ssl_context.set_max_proto_version(version)
    return backend.client_context(ccfg, _quiet).session(), sctx.session()


def move(src: Session, dst: Session) -> None:
    """src's output to dst; nothing to move is not an EOF (``receive_data(b"")`` is)."""
    data = src.data_to_send()
    if data:
        dst.receive_data(data)


def handshake(client: Session, server: Session, rounds: int = 10) -> None:
    """Both sides to completion; the first exception propagates after the flights moved."""
    done_c = done_s = False
    for _ in range(rounds):
        try:
            done_c = done_c or client.do_handshake()
        finally:
            move(client, server)
        try:
            done_s = done_s or server.do_handshake()
        finally:
            move(server, client)
        if done_c and done_s:
            return
    raise AssertionError("handshake did not finish")


def transfer(src: Session, dst: Session, data: bytes) -> bytes:
    src.write(data)
    move(src, dst)
    out = b""
    while (chunk := dst.read(65536)) not in (None, b""):
        out += chunk
    return out


def test_capabilities_say_server():
    assert backend.info().capabilities.server is True


@BOTH
@pytest.mark.parametrize("leaf", ["leaf_ec", "leaf_rsa"])
def test_handshake_data_and_facts(pki, version, leaf):
    client, server = sessions(client_config(pki), server_config(pki, leaf), version)
    assert isinstance(server, Session)
    handshake(client, server)
    assert transfer(client, server, b"ping") == b"ping"
    assert transfer(server, client, b"pong" * 5000) == b"pong" * 5000
    cf, sf = client.facts(), server.facts()
    name = "TLSv1.3" if version == TLS13 else "TLSv1.2"
    assert cf.protocol == sf.protocol == name
    assert cf.cipher == sf.cipher and cf.cipher
    if version == TLS12:
        kind = "RSA" if leaf == "leaf_rsa" else "ECDSA"
        assert sf.cipher.startswith(f"ECDHE-{kind}-")
    assert sf.server_name == HOST  # the SNI the client sent
    assert sf.peer_certificate is None  # no client certificate asked for
    assert cf.peer_certificate == getattr(pki, leaf).der


def test_no_sni_received(pki):
    client, server = sessions(client_config(pki, name=None), server_config(pki))
    handshake(client, server)
    assert server.facts().server_name is None


def test_ip_name_sends_no_sni(pki):
    client, server = sessions(client_config(pki, name="127.0.0.1"), server_config(pki))
    handshake(client, server)
    assert server.facts().server_name is None


@BOTH
@pytest.mark.parametrize("kind", ["ecdsa", "rsa", "ed25519"])
def test_client_certificate_required_and_present(pki, version, kind):
    cert = pki.inter_clients[kind]
    client, server = sessions(
        client_config(pki, client=cert), server_config(pki, verify_client=True), version
    )
    handshake(client, server)
    assert server.facts().peer_certificate == cert.der
    assert transfer(client, server, b"hi") == b"hi"


@BOTH
def test_client_certificate_required_and_missing(pki, version):
    client, server = sessions(client_config(pki), server_config(pki, verify_client=True), version)
    with pytest.raises(VerificationError, match="no certificate"):
        handshake(client, server)
    # The alert was queued and handed over: the client learns why.
    with pytest.raises(AlertReceived):
        client.do_handshake()
        client.read(100)


@pytest.mark.parametrize(
    ("label", "why"),
    [("leaf_rsa", "purpose"), ("unknown_ca", "issuer|unknown CA")],
)
def test_client_certificate_refused(pki, label, why):
    """A serverAuth-only leaf, one from an unknown CA: refused as client certificates."""
    cert = getattr(pki, label)
    ccfg = ClientConfig(
        anchors=[("root", pki.root.der)],
        server_name=HOST,
        cert_chain=[c.der for c in cert.served_chain()],
        private_key=cert.issued.key_pem(),
    )
    client, server = sessions(ccfg, server_config(pki, verify_client=True))
    with pytest.raises(VerificationError, match=why):
        handshake(client, server)


def test_partial_chain_anchor_for_clients(pki):
    cert = pki.inter_clients["ecdsa"]
    scfg = server_config(pki, verify_client=True, anchors=[("inter", pki.inter.der)])
    client, server = sessions(client_config(pki, client=cert), scfg)
    handshake(client, server)
    assert server.facts().peer_certificate == cert.der


@BOTH
@pytest.mark.parametrize("at_once", [True, False], ids=["at once", "on demand"])
def test_client_anchors_loaded_only_when_a_chain_names_them(pki, version, at_once, monkeypatch):
    """tlsd tells of a refused anchor when a client's chain reaches it, whichever way it loads.

    Of three anchors, a broken one no chain names is never reported, a broken
    one with the root's name is reported (once) in the first handshake that
    reaches it, and the root verifies the client.  A handful go into the store
    when the context is made (OpenSSL's refusals held back until a chain
    reaches them); more than ``AT_ONCE``, only as clients' chains reach them.
    """
    from tlsc_openssl import context

    if not at_once:
        monkeypatch.setattr(context, "AT_ONCE", 0)
    stranger = certs.issue("Stranger Root", ca=True, slot=52,
                           not_before=pki.now - certs.DAY, not_after=pki.now + 30 * certs.DAY)
    anchors = [("unnamed", certs.garbled(stranger.der)),
               ("named", certs.garbled(pki.root.der)),  # the root's name, unreadable inside
               ("root", pki.root.der)]
    warnings: list[str] = []
    scfg = server_config(pki, verify_client=True, anchors=anchors)
    sctx = backend.server_context(scfg, warnings.append)
    sctx.ssl_context.set_max_proto_version(version)
    assert warnings == []
    cert = pki.inter_clients["ecdsa"]
    for _ in range(2):  # the second client: nothing new to load or say
        client = backend.client_context(client_config(pki, client=cert), _quiet).session()
        server = sctx.session()
        handshake(client, server)
        assert server.facts().peer_certificate == cert.der
        assert warnings == ["named: not a certificate, skipped"]


def test_der_key_and_ed25519_server(pki, tmp_path):
    leaf = credential(tmp_path, "ed25519", issuer=pki.inter, key_kind="ed25519")
    scfg = ServerConfig(
        cert_chain=[leaf.der, pki.inter.der],
        private_key=leaf.issued.key_der(),
    )
    client, server = sessions(client_config(pki), scfg)
    handshake(client, server)
    assert client.facts().peer_certificate == leaf.der


@pytest.mark.parametrize(
    ("key", "match"),
    [(b"garbage", "not a valid"), (None, "does not match")],
    ids=["garbage", "mismatch"],
)
def test_bad_server_key(pki, key, match):
    chain = pki.leaf_ec.served_chain()
    private = key if key is not None else pki.leaf_rsa.issued.key_pem()
    with pytest.raises(ConfigError, match=match):
        backend.server_context(
            ServerConfig(cert_chain=[c.der for c in chain], private_key=private), _quiet
        )


def test_verify_client_without_anchor(pki):
    with pytest.raises(ConfigError, match="no usable trust anchor"):
        backend.server_context(server_config(pki, verify_client=True, anchors=[]), _quiet)


@BOTH
def test_close_notify_and_truncation(pki, version):
    client, server = sessions(client_config(pki), server_config(pki), version)
    handshake(client, server)
    client.close_notify()
    move(client, server)
    assert server.read(100) == b""
    client2, server2 = sessions(client_config(pki), server_config(pki), version)
    handshake(client2, server2)
    server2.receive_data(b"")
    with pytest.raises(Truncated):
        server2.read(100)


def test_garbage_from_client(pki):
    _, server = sessions(client_config(pki), server_config(pki))
    server.receive_data(b"GET / HTTP/1.0\r\n\r\n")
    with pytest.raises(TLSError):
        server.do_handshake()
    server.data_to_send()  # an alert, or nothing; never raises
