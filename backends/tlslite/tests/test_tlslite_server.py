"""The server role (tlsd): this backend's server against a real OpenSSL client
(pyOpenSSL over memory BIOs) and against this backend's own client, all in memory."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID
from OpenSSL import SSL
from tlsc.reasons import Reason
from tlsc.session import (
    AlertReceived,
    ClientConfig,
    ConfigError,
    ProtocolError,
    ServerConfig,
    Session,
    Truncated,
    VerificationError,
    WriteClosed,
)
from tlsc.testing.certs import Chain, Issued, garbled
from tlslite_peers import (
    KEY_KINDS,
    OpenSSLEnd,
    check_data_both_ways,
    check_our_close_notify,
    check_peer_close_notify,
    check_truncation,
    openssl_context,
    pass_on,
    read_all,
    read_bytewise,
)

import tlsc_tlslite
from tlsc_tlslite import backend
from tlsc_tlslite.session import make_settings
from tlsc_tlslite.verify import TrustStore

# -- the two ends ------------------------------------------------------------------------


def openssl_client(
    anchor: Issued,
    version: str | None,
    *,
    sni: str | None = "server.test",
    identity: tuple[Issued, Issued] | None = None,
) -> OpenSSLEnd:
    """``identity``: (client certificate, its intermediate) to present when asked."""
    conn = SSL.Connection(openssl_context(version, identity=identity, anchor=anchor), None)
    conn.set_connect_state()
    if sni is not None:
        conn.set_tlsext_host_name(sni.encode())
    return OpenSSLEnd(conn)


def tlslite_server(
    pki: Chain, *, verify_client: bool = False, fmt: str = "pem", version: str | None = None
) -> Session:
    """Our server; ``version`` "1.2" pins it to TLS 1.2 (the backend offers both)."""
    config = ServerConfig(
        cert_chain=[pki.leaf.der, pki.inter.der],
        private_key=pki.leaf.key_der() if fmt == "der" else pki.leaf.key_pem(),
        verify_client=verify_client,
        anchors=[("root", pki.root.der)],
    )
    with pytest.MonkeyPatch.context() as mp:
        if version == "1.2":
            mp.setattr(tlsc_tlslite, "make_settings", tls12_settings)
        return backend.server_context(config, warn=print).session()


def tlslite_client(pki: Chain, identity: tuple[Issued, Issued] | None = None) -> Session:
    """Our client, trusting ``pki.root``; ``identity``: (client certificate, its issuer)."""
    kw = {}
    if identity is not None:
        leaf, inter = identity
        kw = {"cert_chain": [leaf.der, inter.der], "private_key": leaf.key_pem()}
    config = ClientConfig(anchors=[("root", pki.root.der)], server_name="server.test", **kw)
    return backend.client_context(config, warn=print).session()


def tls12_settings():
    settings = make_settings()
    settings.maxVersion = (3, 3)
    settings.versions = [(3, 3)]
    return settings.validate()


def handshake(client, server) -> None:
    c_done = s_done = False
    for _ in range(30):
        if not c_done:
            c_done = client.do_handshake()
        pass_on(client, server)
        if not s_done:
            s_done = server.do_handshake()
        pass_on(server, client)
        if c_done and s_done:
            return
    raise AssertionError("handshake did not finish")


def refused(client, server) -> tuple[VerificationError, Exception]:
    """The server refuses during the handshake; (its error, the client's error)."""
    with pytest.raises(VerificationError) as info:
        handshake(client, server)
    pass_on(server, client)  # the alert, queued before the raise
    with pytest.raises((SSL.Error, AlertReceived)) as client_info:
        client.do_handshake()
        client.read(100)  # TLS 1.3: the client finished before the server refused
    with pytest.raises(VerificationError):
        server.do_handshake()  # the session stays failed
    return info.value, client_info.value


def make_client(
    peer: str, pki: Chain, identity: tuple[Issued, Issued] | None = None, version: str = "1.3"
):
    """An OpenSSL client pinned to ``version``, or ours (the server pins the version then)."""
    if peer == "openssl":
        return openssl_client(pki.root, version, identity=identity)
    return tlslite_client(pki, identity)


def assert_alert(client_error: Exception, alert: str) -> None:
    """OpenSSL says "certificate required", tlslite "certificate_required"."""
    text = str(client_error)
    assert alert in text or alert.replace(" ", "_") in text, text


# -- handshakes, facts, data -------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.2", "1.3"])
@pytest.mark.parametrize("kind", ["rsa", "ecdsa", "ed25519"])
def test_openssl_client(version, kind, pkis):
    pki = pkis[kind]
    c = openssl_client(pki.root, version)
    s = tlslite_server(pki, fmt="der" if kind == "ecdsa" else "pem")
    handshake(c, s)
    facts = s.facts()
    assert facts.protocol == f"TLSv{version}" == c.conn.get_protocol_version_name()
    assert facts.cipher == c.conn.get_cipher_name()
    assert facts.peer_certificate is None
    assert facts.server_name == "server.test"
    if version == "1.2":
        assert facts.cipher.startswith("ECDHE-RSA-" if kind == "rsa" else "ECDHE-ECDSA-")
    assert c.conn.get_peer_certificate(as_cryptography=True) == pki.leaf.cert
    check_data_both_ways(s, c)


@pytest.mark.parametrize("version", ["1.2", "1.3"])
@pytest.mark.parametrize("kind", ["rsa", "ecdsa"])
def test_own_client(version, kind, pkis):
    pki = pkis[kind]
    c = tlslite_client(pki)
    s = tlslite_server(pki, version=version)
    handshake(c, s)
    assert s.facts().protocol == f"TLSv{version}"
    sf, cf = s.facts(), c.facts()
    assert sf.protocol == cf.protocol
    assert sf.cipher == cf.cipher
    assert sf.server_name == "server.test" == cf.server_name
    assert cf.peer_certificate == pki.leaf.der
    assert sf.peer_certificate is None
    check_data_both_ways(s, c)


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_no_sni(version, rsa_pki):
    c = openssl_client(rsa_pki.root, version, sni=None)
    s = tlslite_server(rsa_pki)
    handshake(c, s)
    assert s.facts().server_name is None


def test_any_sni_accepted(rsa_pki):
    c = openssl_client(rsa_pki.root, "1.3", sni="elsewhere.example")
    c.conn.set_verify(SSL.VERIFY_NONE, lambda *a: True)
    s = tlslite_server(rsa_pki)
    handshake(c, s)
    assert s.facts().server_name == "elsewhere.example"


# -- client certificates -----------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.2", "1.3"])
@pytest.mark.parametrize("kind", ["rsa", "ecdsa", "ed25519"])
@pytest.mark.parametrize("peer", ["openssl", "tlslite"])
def test_client_certificate(peer, version, kind, rsa_pki):
    ident = rsa_pki.client(KEY_KINDS[kind])
    c = make_client(peer, rsa_pki, (ident, rsa_pki.inter), version)
    s = tlslite_server(rsa_pki, verify_client=True, version=version)
    handshake(c, s)
    assert s.facts().protocol == f"TLSv{version}"
    assert s.facts().peer_certificate == ident.der
    c.write(b"authenticated")
    pass_on(c, s)
    assert read_all(s) == b"authenticated"
    s.write(b"welcome")
    pass_on(s, c)
    assert read_all(c) == b"welcome"


def test_no_eku_accepted(rsa_pki):
    ident = rsa_pki.client("rsa2048", eku=None)
    c = openssl_client(rsa_pki.root, "1.3", identity=(ident, rsa_pki.inter))
    s = tlslite_server(rsa_pki, verify_client=True)
    handshake(c, s)
    assert s.facts().peer_certificate == ident.der


def test_client_certificate_not_requested_without_verify(rsa_pki):
    ident = rsa_pki.client("rsa2048")
    c = openssl_client(rsa_pki.root, "1.3", identity=(ident, rsa_pki.inter))
    s = tlslite_server(rsa_pki)
    handshake(c, s)
    assert s.facts().peer_certificate is None


@pytest.mark.parametrize(
    "version, alert", [("1.2", "handshake failure"), ("1.3", "certificate required")]
)
@pytest.mark.parametrize("peer", ["openssl", "tlslite"])
def test_missing_client_certificate(peer, version, alert, rsa_pki):
    c = make_client(peer, rsa_pki, None, version)
    s = tlslite_server(rsa_pki, verify_client=True, version=version)
    err, client_err = refused(c, s)
    assert err.reason is Reason.NO_PEER_CERTIFICATE
    assert_alert(client_err, alert)


def _bad_identity(what: str, pki: Chain, other: Chain) -> tuple[Issued, Issued]:
    now = dt.datetime.now(dt.timezone.utc)
    if what == "unknown_ca":
        return other.client("p256"), other.inter
    if what == "expired":
        past = {"not_before": now - dt.timedelta(days=10), "not_after": now - dt.timedelta(days=1)}
        return pki.client("rsa2048", **past), pki.inter
    assert what == "server_auth_only"
    return pki.client("rsa2048", eku=[ExtendedKeyUsageOID.SERVER_AUTH]), pki.inter


BAD = [
    ("unknown_ca", "unknown certificate authority", "unknown ca"),
    ("expired", "certificate has expired", "certificate expired"),
    ("server_auth_only", "does not allow clientAuth", "unsupported certificate"),
]


@pytest.mark.parametrize("version", ["1.2", "1.3"])
@pytest.mark.parametrize("what, reason, alert", BAD)
@pytest.mark.parametrize("peer", ["openssl", "tlslite"])
def test_invalid_client_certificate(peer, version, what, reason, alert, rsa_pki, other_pki):
    c = make_client(peer, rsa_pki, _bad_identity(what, rsa_pki, other_pki), version)
    s = tlslite_server(rsa_pki, verify_client=True, version=version)
    err, client_err = refused(c, s)
    assert reason in str(err)
    assert_alert(client_err, alert)
    assert s.data_to_send() == b""  # nothing after the alert


def test_server_never_writes_before_verification(rsa_pki, other_pki):
    """Application data cannot be written on a session whose client was refused."""
    ident = _bad_identity("unknown_ca", rsa_pki, other_pki)
    c = openssl_client(rsa_pki.root, "1.3", identity=ident)
    s = tlslite_server(rsa_pki, verify_client=True)
    refused(c, s)
    with pytest.raises(WriteClosed):
        s.write(b"secret")
    with pytest.raises(VerificationError):
        s.read(100)


# -- close semantics ---------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_client_close_notify(version, rsa_pki):
    c = openssl_client(rsa_pki.root, version)
    s = tlslite_server(rsa_pki, version=version)
    handshake(c, s)
    check_peer_close_notify(s, c, tls13=version == "1.3")


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_client_close_notify_own_client(version, rsa_pki):
    c = tlslite_client(rsa_pki)
    s = tlslite_server(rsa_pki, version=version)
    handshake(c, s)
    check_peer_close_notify(s, c, tls13=version == "1.3")


@pytest.mark.parametrize("version", ["1.2", "1.3"])
@pytest.mark.parametrize("peer", ["openssl", "tlslite"])
def test_server_close_notify(peer, version, rsa_pki):
    c = make_client(peer, rsa_pki, None, version)
    s = tlslite_server(rsa_pki, version=version)
    handshake(c, s)
    # TLS 1.3: the client, whichever, still writes after our close_notify
    check_our_close_notify(s, c, half_close=version == "1.3")


@pytest.mark.parametrize("peer", ["openssl", "tlslite"])
def test_truncation(peer, rsa_pki):
    c = make_client(peer, rsa_pki)
    s = tlslite_server(rsa_pki)
    handshake(c, s)
    check_truncation(s, c)
    # the peer's direction ended without close_notify; ours may still send (-j)
    s.write(b"still here")
    pass_on(s, c)
    assert read_all(c) == b"still here"


def test_garbage_from_client(rsa_pki):
    s = tlslite_server(rsa_pki)
    s.receive_data(b"GET / HTTP/1.1\r\n\r\n")
    with pytest.raises(ProtocolError, match="not a TLS record"):
        s.do_handshake()


def test_byte_by_byte(rsa_pki):
    """Client flights fed one byte at a time: the suspended generators keep their state."""
    c = openssl_client(rsa_pki.root, "1.3")
    s = tlslite_server(rsa_pki)
    s_done = False
    for _ in range(30):
        c.do_handshake()
        for byte in c.data_to_send():
            s.receive_data(bytes([byte]))
            s_done = s.do_handshake()
        pass_on(s, c)
        if s_done:
            break
    assert s_done
    c.write(b"split me")
    assert read_bytewise(s, c.data_to_send()) == b"split me"


def test_eof_during_handshake(rsa_pki):
    s = tlslite_server(rsa_pki)
    assert s.do_handshake() is False
    s.receive_data(b"")
    with pytest.raises(Truncated):
        s.do_handshake()


# -- configuration -----------------------------------------------------------------------


def test_server_context_config_errors(rsa_pki, other_pki):
    leaf = rsa_pki.leaf
    good = {"cert_chain": [leaf.der], "private_key": leaf.key_pem()}
    with pytest.raises(ConfigError, match="does not match"):
        backend.server_context(
            ServerConfig(cert_chain=[leaf.der], private_key=other_pki.leaf.key_pem()),
            print,
        )
    with pytest.raises(ConfigError, match="CERTFILE"):
        backend.server_context(ServerConfig(cert_chain=[], private_key=good["private_key"]), print)
    with pytest.raises(ConfigError, match="KEYFILE"):
        backend.server_context(ServerConfig(cert_chain=[leaf.der], private_key=b"junk"), print)
    with pytest.raises(ConfigError, match="trust anchor"):
        backend.server_context(ServerConfig(**good, verify_client=True, anchors=()), print)
    with pytest.raises(ConfigError, match="trust anchor"):  # not a certificate: dropped
        backend.server_context(
            ServerConfig(**good, verify_client=True, anchors=[("junk", b"x")]), print
        )


def test_unreadable_client_anchor_warned_when_a_chain_names_it(rsa_pki):
    """Anchors are parsed when a client's chain needs them: a broken one is reported then."""
    ident = rsa_pki.client("rsa2048")
    warnings: list[str] = []
    config = ServerConfig(
        cert_chain=[rsa_pki.leaf.der, rsa_pki.inter.der],
        private_key=rsa_pki.leaf.key_pem(),
        verify_client=True,
        anchors=[("broken", garbled(rsa_pki.root.der)), ("root", rsa_pki.root.der)],
    )
    s = backend.server_context(config, warnings.append).session()
    assert warnings == []
    handshake(make_client("openssl", rsa_pki, (ident, rsa_pki.inter)), s)
    assert s.facts().peer_certificate == ident.der
    assert warnings == ["broken: not a certificate, skipped"]


def test_capabilities():
    assert backend.info().capabilities.server is True


# -- the client purpose in the verifier --------------------------------------------------


def test_client_purpose_rules(rsa_pki):
    """Server and client purposes differ in EKU and leaf keyUsage only."""
    pki = rsa_pki
    store = TrustStore.from_der([pki.root.der])
    at = dt.datetime.now(dt.timezone.utc)
    server_leaf = pki.leaf  # EKU serverAuth
    store.verify([server_leaf.der, pki.inter.der], None, at)
    with pytest.raises(VerificationError, match="client certificate does not allow clientAuth"):
        store.verify([server_leaf.der, pki.inter.der], None, at, peer="client")
    client_leaf = pki.client(
        "rsa2048", eku=[ExtendedKeyUsageOID.CLIENT_AUTH], key_usage={"digital_signature": True}
    )
    store.verify([client_leaf.der, pki.inter.der], None, at, peer="client")
    with pytest.raises(VerificationError, match="server certificate does not allow serverAuth"):
        store.verify([client_leaf.der, pki.inter.der], None, at)
    # keyEncipherment serves a TLS server (RSA key exchange), never a client
    enc_only = pki.client("rsa2048", eku=None, key_usage={"key_encipherment": True})
    store.verify([enc_only.der, pki.inter.der], None, at)
    with pytest.raises(VerificationError, match="keyUsage of the client certificate"):
        store.verify([enc_only.der, pki.inter.der], None, at, peer="client")
    with pytest.raises(VerificationError) as info:
        store.verify([], None, at, peer="client")
    assert info.value.reason is Reason.NO_PEER_CERTIFICATE
