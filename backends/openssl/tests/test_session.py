"""The openssl backend against an in-memory pyOpenSSL server.

Every test drives a real handshake between our client session and a
``SSL.Connection`` over memory BIOs, both in this thread.
"""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa
from OpenSSL import SSL

from tlsc.reasons import Reason
from tlsc.session import (
    AlertReceived,
    Backend,
    ClientConfig,
    ConfigError,
    ProtocolError,
    Session,
    Truncated,
    VerificationError,
    WriteClosed,
)
from tlsc.testing import certs
from tlsc.testing.pki import credential
from tlsc_openssl import backend, verify_chain

HOST = "localhost"  # the name every good leaf of the PKI carries
DAY = dt.timedelta(days=1)

TLS12 = SSL.TLS1_2_VERSION
TLS13 = SSL.TLS1_3_VERSION
BOTH = pytest.mark.parametrize("version", [TLS12, TLS13], ids=["tls12", "tls13"])


def config(pki, *, anchors=None, name: str | None = HOST, **kw) -> ClientConfig:
    anchors = [("root.pem", pki.root.der)] if anchors is None else anchors
    return ClientConfig(anchors=anchors, server_name=name, **kw)


# -- backend object -----------------------------------------------------------


def test_backend_satisfies_protocol():
    typed: Backend = backend  # static check; Backend is not runtime_checkable
    assert callable(typed.info) and callable(typed.client_context)
    info = backend.info()
    assert info.name == "openssl" == backend.name
    assert info.version == "0.1.0"
    assert info.library == "pyOpenSSL"
    assert "OpenSSL" in info.library_version
    caps = info.capabilities
    assert caps.tls_versions == ("TLSv1.2", "TLSv1.3")
    assert caps.key_types == ("RSA", "ECDSA", "Ed25519")
    assert caps.write_after_close_notify is True


def test_session_satisfies_protocol(pki):
    s = backend.client_context(config(pki), lambda m: None).session()
    assert isinstance(s, Session)


def test_entry_point_registered():
    from importlib.metadata import entry_points

    (ep,) = [ep for ep in entry_points(group="tlsc.backends") if ep.name == "openssl"]
    assert ep.load() is backend


# -- handshakes and facts -------------------------------------------------------


@BOTH
@pytest.mark.parametrize("leaf", ["leaf_ec", "leaf_rsa"])
def test_handshake_and_facts(make_pair, pki, version, leaf):
    pair = make_pair(leaf, config(pki), version=version)
    pair.handshake()
    facts = pair.client.facts()
    assert facts.protocol == ("TLSv1.2" if version == TLS12 else "TLSv1.3")
    assert facts.cipher == pair.server.get_cipher_name()
    if version == TLS13:
        assert facts.cipher.startswith("TLS_")
    else:
        assert facts.cipher.startswith("ECDHE-")
    assert facts.peer_certificate == getattr(pki, leaf).der
    assert facts.server_name == HOST
    assert pair.server.get_servername() == HOST.encode()
    assert pair.client.do_handshake() is True  # and forever after


@BOTH
def test_data_both_ways(make_pair, pki, version):
    pair = make_pair("leaf_ec", config(pki), version=version)
    pair.handshake()
    pair.client.write(b"hello server")
    assert pair.server_recv() == b"hello server"
    pair.server_send(b"hello client")
    assert pair.client.read(65536) == b"hello client"
    assert pair.client.read(65536) is None  # needs input


def test_bulk_data(make_pair, pki):
    pair = make_pair("leaf_ec", config(pki))
    pair.handshake()
    blob = bytes(range(256)) * 4096  # 1 MiB
    pair.client.write(blob)
    assert pair.server_recv() == blob
    pair.server_send(blob)
    got = b""
    while (chunk := pair.client.read(65536)) is not None:
        assert 0 < len(chunk) <= 65536
        got += chunk
    assert got == blob


def test_read_respects_max_bytes(make_pair, pki):
    pair = make_pair("leaf_ec", config(pki))
    pair.handshake()
    pair.server_send(b"x" * 1000)
    assert pair.client.read(10) == b"x" * 10


def test_no_server_name_no_sni(make_pair, pki):
    pair = make_pair("leaf_ec", config(pki, name=None))
    pair.handshake()
    assert pair.server.get_servername() is None
    assert pair.client.facts().server_name is None


# -- verification verdicts -----------------------------------------------------------


@BOTH
@pytest.mark.parametrize(
    ("leaf", "reason"),
    [
        ("expired", "certificate has expired"),
        ("not_yet_valid", "certificate is not yet valid"),
        ("unknown_ca", "unknown certificate authority: unable to get local issuer certificate"),
        ("self_signed", "self-signed certificate"),
        ("issued_by_non_ca", "invalid CA certificate"),
        ("sha1", "certificate signature algorithm too weak: SHA-1"),
        ("rsa1024", "certificate key too weak: RSA 1024 bits (minimum 2048)"),
        ("cn_only", "certificate name mismatch: not valid for 'localhost'"),
        ("unknown_critical", "unhandled critical extension"),
        (
            "client_auth_only",
            "unsupported certificate purpose: extendedKeyUsage does not allow serverAuth",
        ),
    ],
)
def test_verification_failures(make_pair, pki, version, leaf, reason):
    pair = make_pair(leaf, config(pki), version=version)
    with pytest.raises(VerificationError) as info:
        pair.handshake()
    assert str(info.value) == reason
    # The alert was queued and delivered: the server saw the abort.
    assert pair.server_error is not None
    assert "alert" in str(pair.server_error)
    # Sticky: the session stays failed with the same reason.
    with pytest.raises(VerificationError) as again:
        pair.client.do_handshake()
    assert again.value is info.value


def test_path_length_honoured(make_pair, pki):
    """The intermediate has pathLen 0: the CA below it may issue nothing."""
    pair = make_pair("pathlen_violation", config(pki))
    with pytest.raises(VerificationError, match="path length constraint exceeded"):
        pair.handshake()


def test_wrong_name(make_pair, pki):
    pair = make_pair("leaf_ec", config(pki, name="other.example"))
    with pytest.raises(VerificationError, match="not valid for 'other.example'"):
        pair.handshake()
    assert pair.server_error is not None


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("a.example.test", True),
        ("B.Example.Test.", True),
        ("example.test", False),
        ("a.b.example.test", False),
    ],
)
def test_wildcard(make_pair, pki, name, ok):
    pair = make_pair("wildcard", config(pki, name=name))
    if ok:
        pair.handshake()
    else:
        with pytest.raises(VerificationError, match="not valid for"):
            pair.handshake()


@pytest.mark.parametrize(
    ("name", "ok"),
    [("127.0.0.1", True), ("::1", True), ("127.0.0.2", False), ("ip", False)],
)
def test_ip_san(make_pair, pki, name, ok):
    pair = make_pair("leaf_ec", config(pki, name=name))
    if ok:
        pair.handshake()
        assert pair.server.get_servername() is None  # never an IP literal as SNI
        assert pair.client.facts().server_name is None
    else:
        with pytest.raises(VerificationError, match="not valid for"):
            pair.handshake()


def test_no_name_check_without_server_name(make_pair, pki):
    make_pair("cn_only", config(pki, name=None)).handshake()


@pytest.mark.parametrize("anchor", ["inter", "leaf"])
def test_partial_chain(make_pair, pki, anchor):
    der = pki.inter.der if anchor == "inter" else pki.leaf_ec.der
    pair = make_pair("leaf_ec", config(pki, anchors=[("a.pem", der)]))
    pair.handshake()


def test_self_signed_leaf_trusted_as_anchor(make_pair, pki):
    leaf = pki.self_signed
    make_pair("self_signed", config(pki, anchors=[("leaf.pem", leaf.der)])).handshake()


def test_leaf_as_anchor_still_needs_the_name(make_pair, pki):
    leaf = pki.leaf_ec
    pair = make_pair("leaf_ec", config(pki, anchors=[("leaf.pem", leaf.der)], name="x.example"))
    with pytest.raises(VerificationError, match="not valid for 'x.example'"):
        pair.handshake()


def test_weak_anchor_key_is_judged(make_pair, pki):
    """An anchor's key meets the strength rules too (its self-signature is never checked)."""
    leaf = pki.rsa1024
    pair = make_pair("rsa1024", config(pki, anchors=[("leaf.pem", leaf.der)]))
    with pytest.raises(VerificationError, match="key too weak: RSA 1024"):
        pair.handshake()


def test_no_verify_accepts_anything(make_pair, pki):
    pair = make_pair("unknown_ca", ClientConfig(verify=False, server_name="wrong.example"))
    pair.handshake()
    assert pair.client.facts().peer_certificate == pki.unknown_ca.der


def test_expired_intermediate(make_pair, pki, tmp_path):
    inter = credential(tmp_path, "old_inter", issuer=pki.root, cn="Old Intermediate", ca=True,
                       dns=(), ips=(), not_before=pki.now - 60 * DAY, not_after=pki.now - DAY)
    leaf = credential(tmp_path, "leaf", issuer=inter)
    pair = make_pair([leaf, inter], config(pki))
    with pytest.raises(VerificationError, match="certificate has expired"):
        pair.handshake()


def test_validity_is_inclusive(pki):
    """notAfter itself is still valid (RFC 5280), one second later is not."""
    leaf = pki.leaf_ec
    chain = [leaf.der, pki.inter.der]
    anchors = [pki.root.der]
    end = leaf.cert.not_valid_after_utc
    start = leaf.cert.not_valid_before_utc
    verify_chain(chain, anchors, HOST, at_time=end)
    verify_chain(chain, anchors, HOST, at_time=start)
    with pytest.raises(VerificationError, match="certificate has expired"):
        verify_chain(chain, anchors, HOST, at_time=end + dt.timedelta(seconds=1))
    with pytest.raises(VerificationError, match="not yet valid"):
        verify_chain(chain, anchors, HOST, at_time=start - dt.timedelta(seconds=1))


def test_handshake_verdict_at_not_after_boundary(pki):
    """The handshake path uses the same inclusive rule, through its clock."""
    from tlsc_openssl.verify import Verifier

    leaf = pki.leaf_ec
    end = leaf.cert.not_valid_after_utc

    class State:
        verify_failure = None

    class Conn:
        def get_app_data(self):
            return state

    from OpenSSL import crypto

    state = State()
    cert = crypto.X509.from_cryptography(leaf.cert)
    expired = SSL.X509VerificationCodes.ERR_CERT_HAS_EXPIRED
    at_end = Verifier(frozenset(), HOST, clock=lambda: end)
    assert at_end(Conn(), cert, expired, 0, 0) is True
    after = Verifier(frozenset(), HOST, clock=lambda: end + dt.timedelta(seconds=1))
    assert after(Conn(), cert, expired, 0, 0) is False
    assert state.verify_failure == (Reason.EXPIRED, None)


# -- verify_chain: the same verdicts without a handshake ----------------------------------


@pytest.mark.parametrize(
    ("leaf", "reason"),
    [
        ("leaf_ec", None),
        ("leaf_rsa", None),
        ("expired", "certificate has expired"),
        ("not_yet_valid", "certificate is not yet valid"),
        ("unknown_ca", "unknown certificate authority: unable to get local issuer certificate"),
        ("self_signed", "self-signed certificate"),
        ("issued_by_non_ca", "invalid CA certificate"),
        ("sha1", "certificate signature algorithm too weak: SHA-1"),
        ("rsa1024", "certificate key too weak: RSA 1024 bits (minimum 2048)"),
        ("cn_only", "certificate name mismatch: not valid for 'localhost'"),
        ("unknown_critical", "unhandled critical extension"),
        (
            "client_auth_only",
            "unsupported certificate purpose: extendedKeyUsage does not allow serverAuth",
        ),
    ],
)
def test_verify_chain_same_verdicts(pki, leaf, reason):
    chain = [c.der for c in getattr(pki, leaf).served_chain()]
    if reason is None:
        verify_chain(chain, [pki.root.der], HOST)
    else:
        with pytest.raises(VerificationError) as info:
            verify_chain(chain, [pki.root.der], HOST)
        assert str(info.value) == reason


def test_verify_chain_partial_and_names(pki):
    chain = [c.der for c in pki.leaf_ec.served_chain()]
    verify_chain(chain, [pki.inter.der], HOST)
    verify_chain(chain[:1], [pki.leaf_ec.der], None)
    verify_chain(chain, [pki.root.der], "::1")
    with pytest.raises(VerificationError, match="path length"):
        verify_chain([c.der for c in pki.pathlen_violation.served_chain()], [pki.root.der], HOST)
    with pytest.raises(VerificationError, match="expired"):
        verify_chain(chain, [pki.root.der], HOST, at_time=pki.now + 365 * DAY)
    with pytest.raises(VerificationError, match="malformed"):
        verify_chain([b"garbage"], [pki.root.der], HOST)


# -- configuration errors --------------------------------------------------------------------


def test_bad_anchor_warned_and_skipped(make_pair, pki):
    warnings: list[str] = []
    broken = certs.garbled(pki.root.der)  # a certificate's outline, unreadable inside
    anchors = [("broken.pem", broken), ("root.pem", pki.root.der)]
    make_pair("leaf_ec", config(pki, anchors=anchors), warn=warnings.append).handshake()
    assert warnings == ["broken.pem: not a certificate, skipped"]


def test_anchors_are_der(pki):
    """PEM is the core's to decode (tlsc.der.certificates_in): a PEM blob is no anchor."""
    pem = pki.inter.cert.public_bytes(serialization.Encoding.PEM)
    assert len(config(pki, anchors=[("inter.pem", pem)]).anchors) == 0


def test_no_usable_anchor(make_pair, pki):
    """None that is a certificate at all (the core's outline check): 96 at start-up.

    One that looks like a certificate but OpenSSL refuses is found out when a
    chain reaches it: anchors go into OpenSSL's store only then.
    """
    warnings: list[str] = []
    with pytest.raises(ConfigError, match="no usable trust anchor"):
        backend.client_context(config(pki, anchors=[("junk", b"junk")]), warnings.append)
    with pytest.raises(ConfigError, match="no usable trust anchor"):
        backend.client_context(config(pki, anchors=[]), warnings.append)
    assert warnings == []
    broken = certs.garbled(pki.root.der)
    pair = make_pair("leaf_ec", config(pki, anchors=[("a", broken)]), warn=warnings.append)
    assert warnings == []
    with pytest.raises(VerificationError) as e:
        pair.handshake()
    assert e.value.reason is Reason.UNKNOWN_CA
    assert warnings == ["a: not a certificate, skipped"]


def test_only_many_anchors_cost_a_callback_per_record(pki, monkeypatch):
    """The message callback (a Python call for every record) only where it saves decoding.

    ``AT_ONCE`` anchors or fewer: all in the store when the context is made,
    no callback; one more: the callback, and an empty store until a chain
    names what it needs.
    """
    from cryptography.hazmat.bindings.openssl.binding import Binding

    from tlsc_openssl import anchors, context

    def stored(ctx) -> int:
        lib = Binding.lib
        store = ctx.ssl_context.get_cert_store()._store
        return lib.sk_X509_OBJECT_num(lib.X509_STORE_get0_objects(store))

    others = [
        (f"other {i}", certs.issue(f"Other Root {i}", ca=True, slot=60 + i,
                                   not_before=pki.now - DAY, not_after=pki.now + 30 * DAY).der)
        for i in range(anchors.AT_ONCE)
    ]
    many = [("root", pki.root.der), *others]
    few = many[: anchors.AT_ONCE]
    ctx = backend.client_context(config(pki, anchors=few), print)
    assert not hasattr(ctx.ssl_context, "_tlsc_msg_callback")
    assert stored(ctx) == len(few)
    ctx = backend.client_context(config(pki, anchors=many), print)
    assert hasattr(ctx.ssl_context, "_tlsc_msg_callback")
    assert stored(ctx) == 0
    monkeypatch.setattr(context, "AT_ONCE", len(many))
    ctx = backend.client_context(config(pki, anchors=many), print)
    assert not hasattr(ctx.ssl_context, "_tlsc_msg_callback")
    assert stored(ctx) == len(many)


def _three_anchors(pki) -> list[tuple[str, bytes]]:
    """A broken anchor no chain names, a broken one with the root's name, the root."""
    stranger = certs.issue("Stranger Root", ca=True, slot=52,
                           not_before=pki.now - DAY, not_after=pki.now + 30 * DAY)
    named = certs.garbled(pki.root.der)  # the root's name, unreadable inside
    return [("unnamed", certs.garbled(stranger.der)), ("named", named), ("root", pki.root.der)]


@pytest.fixture(params=["at once", "on demand"])
def loading(request, monkeypatch) -> str:
    """Both ways anchors reach the store: all when the context is made, or as chains name them.

    A few anchors go in at once (no message callback, which would cost a
    Python call per record); more than ``AT_ONCE``, on demand.  Either way a
    user hears the same.
    """
    from tlsc_openssl import anchors, context

    if request.param == "on demand":
        monkeypatch.setattr(context, "AT_ONCE", 0)
    assert anchors.AT_ONCE >= 3  # the tests' three anchors go in at once by default
    return request.param


@BOTH
def test_anchors_loaded_only_when_a_chain_names_them(make_pair, pki, version, loading):
    """A refused anchor is reported when a chain reaches it, once, and never otherwise.

    On demand, only what the server's chain can reach goes into OpenSSL's
    store, before it verifies: a system trust store is ~145 anchors, and
    OpenSSL decoding all of them cost ~10 ms of every connection's start, for
    the one or two a handshake uses.  At once (a handful), every anchor goes in
    when the context is made and OpenSSL's refusals wait for a chain to reach
    them.  (Reported at start, both broken ones would be named before the handshake.)
    """
    warnings: list[str] = []
    ctx = backend.client_context(config(pki, anchors=_three_anchors(pki)), warnings.append)
    assert warnings == []
    for _ in range(2):  # the second connection of the context: nothing new to load or say
        pair = make_pair("leaf_ec", config(pki), version=version)  # its server
        pair.client = ctx.session()
        pair.handshake()
        assert pair.client.facts().peer_certificate == pki.leaf_ec.der
        assert warnings == ["named: not a certificate, skipped"]


def test_unreadable_certificate_message_loads_every_anchor(make_pair, pki, monkeypatch):
    """A Certificate message that cannot be read: every anchor goes in, for OpenSSL to judge.

    OpenSSL refuses such a message itself, in its own words (as it did when
    every anchor was loaded at start); what this pins is the store it judges
    with.  The context's message callback is fed the message directly, as
    OpenSSL would hand it over.
    """
    from tlsc_openssl import context
    from tlsc_openssl.anchors import ffi

    monkeypatch.setattr(context, "AT_ONCE", 0)  # three anchors, on demand
    warnings: list[str] = []
    ctx = backend.client_context(config(pki, anchors=_three_anchors(pki)), warnings.append)
    hook = ctx.ssl_context._tlsc_msg_callback
    message = ffi.from_buffer(b"\x0b\x00\x00\x05\x00\x00\x09ab")  # the list overruns it
    hook(0, TLS12, 22, message, len(message), ffi.NULL, ffi.NULL)
    assert warnings == ["unnamed: not a certificate, skipped",
                        "named: not a certificate, skipped"]
    pair = make_pair("leaf_ec", config(pki))
    pair.client = ctx.session()
    pair.handshake()  # the root went in with the others
    assert len(warnings) == 2


def test_no_anchor_needed_without_verification():
    backend.client_context(ClientConfig(verify=False), lambda m: None)


def _client(pki, kind: str, encoding: str = "PEM", chain: bool = True):
    """A client certificate of key type ``kind`` from the servers' intermediate."""
    leaf = pki.inter_clients[kind]
    certs = [leaf.der, pki.inter.der] if chain else [leaf.der]
    key = leaf.issued.key_der() if encoding == "DER" else leaf.issued.key_pem()
    return dict(cert_chain=certs, private_key=key)


@BOTH
@pytest.mark.parametrize("key", ["rsa", "ecdsa", "ed25519"])
@pytest.mark.parametrize("encoding", ["PEM", "DER"])
def test_client_certificate_sent(make_pair, pki, version, key, encoding):
    pair = make_pair(
        "leaf_ec", config(pki, **_client(pki, key, encoding)), version=version,
        require_client_cert=True,
    )
    pair.handshake()
    pair.client.write(b"ping")  # TLS 1.3: the server checks our certificate now
    assert pair.server_recv() == b"ping"
    seen = pair.server.get_peer_certificate(as_cryptography=True)
    assert seen is not None and seen == pki.inter_clients[key].cert
    chain = pair.server.get_peer_cert_chain(as_cryptography=True)
    assert chain is not None and pki.inter.cert in chain


def test_no_client_certificate_without_y(make_pair, pki):
    pair = make_pair("leaf_ec", config(pki), request_client_cert=True)
    pair.handshake()
    pair.client.write(b"ping")
    assert pair.server_recv() == b"ping"
    assert pair.server.get_peer_certificate() is None


def test_name_check_aborts_before_client_certificate(make_pair, pki):
    pair = make_pair(
        "leaf_ec",
        config(pki, name="other.example", **_client(pki, "ecdsa")),
        version=TLS13,
        request_client_cert=True,
    )
    with pytest.raises(VerificationError, match="not valid for 'other.example'"):
        pair.handshake()
    assert pair.server_error is not None
    assert pair.server.get_peer_certificate() is None


def test_key_not_matching_certificate(pki):
    kw = _client(pki, "rsa")
    kw["private_key"] = pki.inter_clients["ecdsa"].issued.key_pem()
    with pytest.raises(ConfigError, match="does not match") as info:
        backend.client_context(config(pki, **kw), lambda m: None)
    assert b"PRIVATE" not in str(info.value).encode()


@pytest.mark.parametrize(
    ("key", "match"),
    [
        (b"garbage", "not a valid DER or PEM private key"),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "not a valid"),
    ],
)
def test_invalid_key(pki, key, match):
    kw = _client(pki, "ecdsa")
    kw["private_key"] = key
    with pytest.raises(ConfigError, match=match) as info:
        backend.client_context(config(pki, **kw), lambda m: None)
    assert "AAAA" not in str(info.value) and "garbage" not in str(info.value)


def test_encrypted_key(pki):
    leaf = pki.inter_clients["ecdsa"]
    pem = leaf.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(ConfigError, match="encrypted"):
        backend.client_context(config(pki, cert_chain=[leaf.der], private_key=pem), lambda m: None)


def test_unsupported_key_type(pki):
    key = dsa.generate_private_key(2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(ConfigError, match="unsupported key type"):
        backend.client_context(
            config(pki, cert_chain=[pki.inter_clients["ecdsa"].der], private_key=pem),
            lambda m: None,
        )


def test_invalid_certificate(pki):
    kw = _client(pki, "ecdsa")
    kw["cert_chain"] = [b"junk"]
    with pytest.raises(ConfigError, match="client certificate #1: not a valid certificate"):
        backend.client_context(config(pki, **kw), lambda m: None)


def test_key_without_certificate(pki):
    with pytest.raises(ConfigError, match="no certificate"):
        backend.client_context(
            config(pki, private_key=pki.inter_clients["ecdsa"].issued.key_pem()), lambda m: None
        )


# -- close semantics ------------------------------------------------------------------------


@BOTH
def test_close_notify_reads_empty(make_pair, pki, version):
    pair = make_pair("leaf_ec", config(pki), version=version)
    pair.handshake()
    pair.server.sendall(b"last words")
    pair.server.shutdown()
    pair.to_client()
    pair.client.receive_data(b"")  # the TCP FIN after close_notify
    assert pair.client.read(65536) == b"last words"
    assert pair.client.read(65536) == b""
    assert pair.client.read(65536) == b""


@BOTH
def test_eof_without_close_notify_is_truncation(make_pair, pki, version):
    pair = make_pair("leaf_ec", config(pki), version=version)
    pair.handshake()
    pair.server_send(b"partial")
    pair.client.receive_data(b"")
    assert pair.client.read(65536) == b"partial"  # data before the error first
    with pytest.raises(Truncated):
        pair.client.read(65536)
    with pytest.raises(Truncated):
        pair.client.read(65536)


def test_eof_during_handshake(make_pair, pki):
    pair = make_pair("leaf_ec", config(pki))
    assert pair.client.do_handshake() is False
    assert pair.client.data_to_send()  # ClientHello
    pair.client.receive_data(b"")
    with pytest.raises(Truncated):
        pair.client.do_handshake()


def test_garbage_during_handshake(make_pair, pki):
    pair = make_pair("leaf_ec", config(pki))
    assert pair.client.do_handshake() is False
    pair.client.data_to_send()
    pair.client.receive_data(b"HTTP/1.0 400 Bad Request\r\n\r\n")
    with pytest.raises(ProtocolError) as info:
        pair.client.do_handshake()
    assert str(info.value)
    assert not isinstance(info.value, AlertReceived)


@BOTH
def test_garbage_after_handshake(make_pair, pki, version):
    pair = make_pair("leaf_ec", config(pki), version=version)
    pair.handshake()
    pair.server_send(b"good")
    # A well-formed application_data record header with garbage inside.
    pair.client.receive_data(b"\x17\x03\x03\x00\x20" + b"\x00" * 32)
    assert pair.client.read(65536) == b"good"
    with pytest.raises(ProtocolError) as info:
        pair.client.read(65536)
    assert str(info.value)  # OpenSSL's reason, e.g. "decryption failed or bad record mac"
    assert pair.client.data_to_send()  # the fatal alert, for the peer


@pytest.mark.parametrize(
    ("version", "where"), [(TLS12, "handshake"), (TLS13, "read")], ids=["tls12", "tls13"]
)
def test_alert_received(make_pair, pki, version, where):
    """The server demands a client certificate we do not have."""
    pair = make_pair("leaf_ec", config(pki), version=version, require_client_cert=True)
    if where == "handshake":
        with pytest.raises(AlertReceived) as info:
            pair.handshake()
        assert info.value.reason is Reason.ALERT
        assert info.value.detail == "handshake_failure"
    else:
        pair.handshake()  # TLS 1.3: the client is done before the server judges
        with pytest.raises(AlertReceived) as info:
            pair.client.read(65536)
        assert str(info.value) == "the peer sent a fatal alert: certificate_required"


def test_write_after_peer_close_notify_tls13(make_pair, pki):
    pair = make_pair("leaf_ec", config(pki), version=TLS13)
    pair.handshake()
    pair.server.shutdown()
    pair.to_client()
    assert pair.client.read(65536) == b""
    pair.client.write(b"still talking")  # TLS 1.3 half-close
    assert pair.server_recv() == b"still talking"
    pair.client.close_notify()
    pair.to_server()
    with pytest.raises(SSL.ZeroReturnError):
        pair.server.recv(100)


def test_write_after_peer_close_notify_tls12(make_pair, pki):
    pair = make_pair("leaf_ec", config(pki), version=TLS12)
    pair.handshake()
    pair.server.shutdown()
    pair.to_client()
    assert pair.client.read(65536) == b""
    with pytest.raises(WriteClosed):
        pair.client.write(b"too late")
    pair.client.close_notify()  # what the core does next
    pair.to_server()
    assert pair.server.shutdown() is True  # both close_notify seen


@BOTH
def test_write_closed_after_our_close_notify(make_pair, pki, version):
    pair = make_pair("leaf_ec", config(pki), version=version)
    pair.handshake()
    pair.client.close_notify()
    pair.client.close_notify()  # idempotent
    with pytest.raises(WriteClosed):
        pair.client.write(b"x")
    pair.to_server()
    with pytest.raises(SSL.ZeroReturnError):
        pair.server.recv(100)
    # read keeps working: the peer's last records and its close_notify.
    pair.server.sendall(b"reply")
    pair.server.shutdown()
    pair.to_client()
    assert pair.client.read(65536) == b"reply"
    assert pair.client.read(65536) == b""


def test_close_notify_before_handshake_is_harmless(make_pair, pki):
    pair = make_pair("leaf_ec", config(pki))
    pair.client.close_notify()
    pair.client.data_to_send()
    with pytest.raises(WriteClosed):
        pair.client.write(b"x")


def test_receive_data_never_raises(make_pair, pki):
    pair = make_pair("leaf_ec", config(pki))
    pair.client.receive_data(b"\xff" * 100)
    pair.client.receive_data(b"")
    pair.client.receive_data(b"")
    pair.client.receive_data(b"more")
    with pytest.raises((ProtocolError, Truncated)):
        pair.client.do_handshake()


def test_renegotiation_refused(make_pair, pki):
    pair = make_pair("leaf_ec", config(pki), version=TLS12)
    pair.handshake()
    assert pair.server.renegotiate() is True
    try:
        pair.server.do_handshake()
    except SSL.WantReadError:
        pass
    pair.to_client()
    # The client declines with a no_renegotiation alert; no new handshake happens.
    assert pair.client.read(65536) is None
    reply = pair.client.data_to_send()
    assert reply[:1] == b"\x15"  # an alert record
    pair.server.bio_write(reply)
    with pytest.raises(SSL.Error, match="no renegotiation"):
        pair.server.recv(100)


def test_facts_peer_certificate_is_der(make_pair, pki):
    pair = make_pair("leaf_rsa", config(pki))
    pair.handshake()
    parsed = x509.load_der_x509_certificate(pair.client.facts().peer_certificate)
    assert parsed == pki.leaf_rsa.cert


def test_name_constraints_never_read_the_cn(make_pair, pki):
    """A leaf's CN is no DNS name, not even for name constraints.

    OpenSSL checks the CN of a leaf without DNS subjectAltName against the DNS
    constraints above it unless the store says never to: this leaf's IP SAN is
    fine and its CN, under a CA that excludes ``localhost``, must not matter.
    """
    from tlsc.testing import certs

    span = {"not_before": pki.now - DAY, "not_after": pki.now + DAY}
    root = certs.issue("nc Root", key_kind="rsa2048", slot=1, ca=True, **span)
    excluded = x509.NameConstraints(None, [x509.DNSName("localhost")])
    inter = certs.issue(
        "nc Inter", key_kind="rsa2048", slot=2, ca=True, issuer=root,
        name_constraints=excluded, **span,
    )
    leaf = certs.issue("test.localhost", issuer=inter, ips=("127.0.0.1",), **span)
    anchors = [("root.pem", root.der)]
    make_pair([leaf, inter], config(pki, anchors=anchors, name="127.0.0.1")).handshake()
    # ... while the constraint itself holds for the names that count:
    named = certs.issue("www", issuer=inter, dns=("www.localhost",), **span)
    pair = make_pair([named, inter], config(pki, anchors=anchors, name="www.localhost"))
    with pytest.raises(VerificationError) as info:
        pair.handshake()
    assert info.value.reason is Reason.NAME_CONSTRAINTS
