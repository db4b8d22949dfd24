"""The session against a real OpenSSL server (pyOpenSSL over memory BIOs), all in memory."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL
from tlsc.reasons import Reason
from tlsc.session import (
    AlertReceived,
    ClientConfig,
    ConfigError,
    ProtocolError,
    Session,
    Truncated,
    VerificationError,
)
from tlsc.testing.certs import Chain, Issued, garbled, issue
from tlslite_peers import (
    KEY_KINDS,
    OpenSSLEnd,
    check_data_both_ways,
    check_our_close_notify,
    check_peer_close_notify,
    check_truncation,
    openssl_context,
    read_bytewise,
)

from tlsc_tlslite import backend


def server(
    pki: Chain,
    version: str | None = None,
    *,
    client_ca: Issued | None = None,
    cipher_list: bytes | None = None,
) -> SSL.Connection:
    ctx = openssl_context(
        version,
        identity=(pki.leaf, pki.inter),
        anchor=client_ca,
        verify_mode=SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT,
    )
    if cipher_list:
        ctx.set_cipher_list(cipher_list)
    conn = SSL.Connection(ctx, None)
    conn.set_accept_state()
    return conn


def client(pki: Chain, server_name: str | None = "server.test", **kw) -> Session:
    config = ClientConfig(anchors=[("root.pem", pki.root.der)], server_name=server_name, **kw)
    return backend.client_context(config, warn=print).session()


def to_server(c: Session, s: SSL.Connection) -> None:
    data = c.data_to_send()
    if data:
        s.bio_write(data)


def to_client(s: SSL.Connection, c: Session) -> None:
    while True:
        try:
            data = s.bio_read(65536)
        except SSL.WantReadError:
            return
        if not data:
            return
        c.receive_data(data)


def server_step(s: SSL.Connection) -> None:
    try:
        s.do_handshake()
    except SSL.WantReadError:
        pass


def handshake(c: Session, s: SSL.Connection) -> None:
    for _ in range(20):
        done = c.do_handshake()
        to_server(c, s)
        server_step(s)
        to_client(s, c)
        if done:
            break
    else:
        raise AssertionError("handshake did not finish")
    # let the server process our last flight (Finished, TLS 1.3 tickets out)
    server_step(s)
    to_client(s, c)


def server_recv(s: SSL.Connection) -> bytes:
    out = b""
    while True:
        try:
            out += s.recv(65536)
        except SSL.WantReadError:
            return out
        except SSL.ZeroReturnError:
            return out


# -- handshakes and facts -------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.2", "1.3"])
@pytest.mark.parametrize("kind", ["rsa", "ecdsa", "ed25519"])
def test_handshake_and_data(version, kind, rsa_pki, ecdsa_pki, ed25519_pki):
    pki = {"rsa": rsa_pki, "ecdsa": ecdsa_pki, "ed25519": ed25519_pki}[kind]
    s = server(pki, version)
    c = client(pki)
    handshake(c, s)
    facts = c.facts()
    assert facts.protocol == f"TLSv{version}"
    assert facts.cipher == s.get_cipher_name()  # OpenSSL's own name for it
    assert facts.peer_certificate == pki.leaf.der
    assert facts.server_name == "server.test"
    assert s.get_servername() == b"server.test"
    if version == "1.2":
        assert facts.cipher.startswith("ECDHE-RSA-" if kind == "rsa" else "ECDHE-ECDSA-")
    check_data_both_ways(c, OpenSSLEnd(s))


@pytest.mark.parametrize(
    "cipher, expected",
    [
        (b"ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256"),
        (b"ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384"),
        (b"ECDHE-RSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305"),
    ],
)
def test_tls12_cipher_names(cipher, expected, rsa_pki):
    s = server(rsa_pki, "1.2", cipher_list=cipher)
    c = client(rsa_pki)
    handshake(c, s)
    assert c.facts().cipher == expected == s.get_cipher_name()


def test_ip_address_no_sni(rsa_pki):
    s = server(rsa_pki, "1.3")
    c = client(rsa_pki, server_name="192.0.2.1")
    handshake(c, s)
    assert c.facts().server_name is None
    assert s.get_servername() is None


# -- verification failures -----------------------------------------------------------


def failed_handshake(c: Session, s: SSL.Connection) -> tuple[Exception, bytes]:
    for _ in range(20):
        try:
            done = c.do_handshake()
        except Exception as e:  # noqa: BLE001
            return e, c.data_to_send()
        assert not done, "handshake unexpectedly succeeded"
        to_server(c, s)
        try:
            server_step(s)
        except SSL.Error:
            pass  # the server gave up: its alert is in its BIO, deliver it
        to_client(s, c)
    raise AssertionError("handshake neither failed nor finished")


def server_sees_alert(s: SSL.Connection, data: bytes, alert: str) -> None:
    s.bio_write(data)
    with pytest.raises(SSL.Error, match=alert):
        s.do_handshake()


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_name_mismatch(version, rsa_pki):
    s = server(rsa_pki, version)
    c = client(rsa_pki, server_name="other.test")
    err, data = failed_handshake(c, s)
    assert isinstance(err, VerificationError)
    assert "not valid for 'other.test'" in str(err)
    assert data  # the alert
    server_sees_alert(s, data, "bad certificate")
    # the session stays failed
    with pytest.raises(VerificationError):
        c.do_handshake()


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_unknown_ca(version, rsa_pki, ecdsa_pki):
    s = server(rsa_pki, version)
    config = ClientConfig(anchors=[("ec-root", ecdsa_pki.root.der)], server_name="server.test")
    c = backend.client_context(config, warn=print).session()
    err, data = failed_handshake(c, s)
    assert isinstance(err, VerificationError)
    assert str(err).startswith("unknown certificate authority: ")
    server_sees_alert(s, data, "unknown ca")


def test_expired(rsa_pki):
    now = dt.datetime.now(dt.timezone.utc)
    old = issue(
        "server.test",
        issuer=rsa_pki.inter,
        key_kind="rsa2048",
        dns=("server.test",),
        not_before=now - dt.timedelta(days=10),
        not_after=now - dt.timedelta(days=1),
    )
    s = server(Chain(rsa_pki.root, rsa_pki.inter, old), "1.3")
    err, data = failed_handshake(client(rsa_pki), s)
    assert isinstance(err, VerificationError) and "expired" in str(err)
    server_sees_alert(s, data, "certificate expired")


def test_no_verify(rsa_pki, ecdsa_pki):
    s = server(rsa_pki, "1.3")
    config = ClientConfig(anchors=(), verify=False, server_name="wrong.test")
    c = backend.client_context(config, warn=print).session()
    handshake(c, s)
    assert c.facts().peer_certificate == rsa_pki.leaf.der


def test_anchors_config(rsa_pki):
    warnings: list[str] = []
    config = ClientConfig(anchors=[("junk.pem", b"not a cert"), ("root", rsa_pki.root.der)])
    assert [origin for origin, _ in config.anchors] == ["root"]  # the core drops junk
    backend.client_context(config, warnings.append)
    with pytest.raises(ConfigError):
        backend.client_context(ClientConfig(anchors=[("junk", b"x")]), warnings.append)
    with pytest.raises(ConfigError):
        backend.client_context(ClientConfig(anchors=()), warnings.append)
    assert warnings == []


def test_anchors_parsed_only_when_a_chain_names_them(rsa_pki, ecdsa_pki):
    """A broken anchor is reported when the server's chain first needs it, never before."""
    named = garbled(rsa_pki.root.der)  # the root's name, unreadable inside
    unnamed = garbled(ecdsa_pki.root.der)  # a name no chain here reaches
    warnings: list[str] = []
    config = ClientConfig(
        anchors=[("unnamed", unnamed), ("named", named), ("root", rsa_pki.root.der)],
        server_name="server.test",
    )
    c = backend.client_context(config, warnings.append).session()
    assert warnings == []
    handshake(c, server(rsa_pki, "1.3"))
    assert warnings == ["named: not a certificate, skipped"]


# -- client certificates --------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.2", "1.3"])
@pytest.mark.parametrize("kind, fmt", [("rsa", "pem"), ("ecdsa", "der"), ("ed25519", "pem")])
def test_client_certificate(version, kind, fmt, rsa_pki):
    ident = rsa_pki.client(KEY_KINDS[kind])
    s = server(rsa_pki, version, client_ca=rsa_pki.root)
    c = client(
        rsa_pki,
        cert_chain=[ident.der, rsa_pki.inter.der],
        private_key=ident.key_der() if fmt == "der" else ident.key_pem(),
    )
    handshake(c, s)
    c.write(b"ping")
    to_server(c, s)
    assert server_recv(s) == b"ping"
    assert s.get_peer_certificate(as_cryptography=True) == ident.cert


def test_client_certificate_not_sent_when_verification_fails(rsa_pki):
    ident = rsa_pki.client("rsa2048")
    s = server(rsa_pki, "1.2", client_ca=rsa_pki.root)
    c = client(
        rsa_pki,
        server_name="other.test",
        cert_chain=[ident.der],
        private_key=ident.key_pem(),
    )
    err, data = failed_handshake(c, s)
    assert isinstance(err, VerificationError)
    assert ident.der not in data


def test_client_key_mismatch_and_garbage(rsa_pki):
    ident = rsa_pki.client("rsa2048")
    other = rsa_pki.client("p256")
    for key in (other.key_pem(), b"garbage", other.key_der()):
        with pytest.raises(ConfigError) as info:
            client(rsa_pki, cert_chain=[ident.der], private_key=key)
        assert "KEYFILE" in str(info.value)
    # a key of the same type that is not the certificate's
    twin = rsa_pki.client("rsa2048", slot=None)
    with pytest.raises(ConfigError, match="does not match") as info:
        client(rsa_pki, cert_chain=[ident.der], private_key=twin.key_pem())
    pem = twin.key_pem().decode()
    assert not any(line in str(info.value) for line in pem.splitlines()[1:-1])
    with pytest.raises(ConfigError):
        client(rsa_pki, cert_chain=[b"junk"], private_key=ident.key_pem())
    with pytest.raises(ConfigError):
        client(rsa_pki, cert_chain=[ident.der], private_key=None)


@pytest.mark.parametrize("kind", ["rsa", "ecdsa"])
@pytest.mark.parametrize("encoding", ["DER", "PEM"])
def test_traditional_key_formats(kind, encoding, rsa_pki):
    """PKCS#1 (RSA) and SEC 1 (EC) keys, DER or PEM, besides PKCS#8."""
    ident = rsa_pki.client(KEY_KINDS[kind])
    data = ident.key.private_bytes(
        getattr(serialization.Encoding, encoding),
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    client(rsa_pki, cert_chain=[ident.der], private_key=data)


def test_encrypted_key_refused(rsa_pki):
    ident = rsa_pki.client("rsa2048")
    data = ident.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(ConfigError, match="encrypted"):
        client(rsa_pki, cert_chain=[ident.der], private_key=data)


# -- close semantics and errors -------------------------------------------------------


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_peer_close_notify(version, rsa_pki):
    s = server(rsa_pki, version)
    c = client(rsa_pki)
    handshake(c, s)
    check_peer_close_notify(c, OpenSSLEnd(s), tls13=version == "1.3")
    assert s.get_shutdown() & SSL.RECEIVED_SHUTDOWN


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_eof_without_close_notify(version, rsa_pki):
    s = server(rsa_pki, version)
    c = client(rsa_pki)
    handshake(c, s)
    check_truncation(c, OpenSSLEnd(s))


def test_eof_during_handshake(rsa_pki):
    c = client(rsa_pki)
    assert c.do_handshake() is False
    assert c.data_to_send()
    c.receive_data(b"")
    with pytest.raises(Truncated):
        c.do_handshake()


def test_our_close_notify(rsa_pki):
    s = server(rsa_pki, "1.3")
    c = client(rsa_pki)
    handshake(c, s)
    check_our_close_notify(c, OpenSSLEnd(s), half_close=True)
    assert s.get_shutdown() & SSL.RECEIVED_SHUTDOWN


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_fatal_alert_from_server(version, rsa_pki):
    s = server(rsa_pki, version)
    c = client(rsa_pki)
    handshake(c, s)
    s.sendall(b"before")
    to_client(s, c)
    # a corrupted record makes OpenSSL... we craft it the other way: corrupt
    # what the server sends so that *we* fail, then check the plaintext
    # decrypted before the error still comes out first.
    s.sendall(b"after")
    record = bytearray(s.bio_read(65536))
    record[-1] ^= 1
    c.receive_data(bytes(record))
    assert c.read(100) == b"before"
    with pytest.raises(ProtocolError) as info:
        c.read(100)
    assert info.value.reason is Reason.BAD_RECORD
    assert c.data_to_send()  # the bad_record_mac alert


def test_server_alert_during_handshake(rsa_pki):
    # the server wants a client certificate we do not have
    s = server(rsa_pki, "1.2", client_ca=rsa_pki.root)
    err, _ = failed_handshake(client(rsa_pki), s)
    assert isinstance(err, AlertReceived)
    assert "certificate_required" in str(err) or "handshake_failure" in str(err)


@pytest.mark.parametrize("when", ["handshake", "data"])
def test_garbage(when, rsa_pki):
    c = client(rsa_pki)
    if when == "handshake":
        c.do_handshake()
        c.data_to_send()
        c.receive_data(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        with pytest.raises(ProtocolError, match="not a TLS record"):
            c.do_handshake()
        assert c.data_to_send()  # decode_error alert
    else:
        s = server(rsa_pki, "1.3")
        handshake(c, s)
        s.sendall(b"fine")
        to_client(s, c)
        c.receive_data(b"\x00garbage")
        assert c.read(100) == b"fine"
        with pytest.raises(ProtocolError):
            c.read(100)
        alert = c.data_to_send()
        s.bio_write(alert)
        with pytest.raises(SSL.Error, match="decode error"):
            s.recv(100)


def test_byte_by_byte(rsa_pki):
    """Records split at every byte: the suspended generators must not lose state."""
    s = server(rsa_pki, "1.3")
    c = client(rsa_pki)
    for _ in range(40):
        done = c.do_handshake()
        to_server(c, s)
        server_step(s)
        try:
            data = s.bio_read(65536)
        except SSL.WantReadError:
            data = b""
        for i in range(len(data)):
            c.receive_data(data[i : i + 1])
            if not done:
                done = c.do_handshake()
                to_server(c, s)
        if done:
            break
    assert c.do_handshake()
    server_step(s)
    s.sendall(b"split me")
    to_client_bytes = b""
    while True:
        try:
            to_client_bytes += s.bio_read(65536)
        except SSL.WantReadError:
            break
    assert read_bytewise(c, to_client_bytes) == b"split me"


def test_hello_request_refused(rsa_pki):
    """TLS 1.2 renegotiation: tlslite answers no_renegotiation, nothing crashes."""
    s = server(rsa_pki, "1.2")
    c = client(rsa_pki)
    handshake(c, s)
    s.renegotiate()
    server_step(s)
    to_client(s, c)
    assert c.read(100) is None  # HelloRequest consumed, no_renegotiation queued
    s.bio_write(c.data_to_send())
    with pytest.raises(SSL.Error):
        s.recv(100)  # OpenSSL aborts its renegotiation attempt
    to_client(s, c)
    with pytest.raises(AlertReceived):
        c.read(100)


def test_facts_hash_matches(rsa_pki):
    s = server(rsa_pki, "1.3")
    c = client(rsa_pki)
    handshake(c, s)
    assert (
        hashlib.sha256(c.facts().peer_certificate).hexdigest()
        == hashlib.sha256(rsa_pki.leaf.der).hexdigest()
    )


def test_backend_info():
    info = backend.info()
    assert info.name == "tlslite" and info.library == "tlslite-ng"
    assert info.capabilities.write_after_close_notify is True
    assert info.capabilities.tls_versions == ("TLSv1.2", "TLSv1.3")


def test_no_cryptography_import():
    import subprocess
    import sys

    code = (
        "import sys, tlsc_tlslite, tlsc_tlslite.session, tlsc_tlslite.verify;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('cryptography', 'OpenSSL')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
