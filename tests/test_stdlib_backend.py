"""The stdlib backend (``tlsc_stdlib``): what it must get right that the suite does not pin down.

Handshakes run in memory against pyOpenSSL peers (client role: a pyOpenSSL
server; server role: a pyOpenSSL client), certificates come from
``tlsc.testing.certs``.  The conformance suite (tests/test_stdlib_conformance.py)
adds the whole path battery, through handshakes.
"""

from __future__ import annotations

import datetime as dt
import os
import ssl
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID as EKU
from OpenSSL import SSL

from tlsc import registry
from tlsc.config import read_anchors
from tlsc.der import certificate_fields
from tlsc.log import Log
from tlsc.names import match_server_name
from tlsc.reasons import Reason, not_valid_for
from tlsc.session import (
    AlertReceived,
    ClientConfig,
    ConfigError,
    ProtocolError,
    ServerConfig,
    Session,
    TLSError,
    VerificationError,
    WriteClosed,
)
from tlsc.testing import certs
from tlsc.testing.certs import DAY, Issued
from tlsc_stdlib import backend
from tlsc_stdlib.checks import Anchors, chain_problem
from tlsc_stdlib.context import CIPHERS, VERIFY_FLAGS

HOST = "host.example"
NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
SPAN = {"not_before": NOW - DAY, "not_after": NOW + 30 * DAY}
VERSIONS = pytest.mark.parametrize("version", ["TLSv1.2", "TLSv1.3"])
_SSL_VERSION = {"TLSv1.2": SSL.TLS1_2_VERSION, "TLSv1.3": SSL.TLS1_3_VERSION}
#: A fatal bad_certificate alert, in a plaintext record.
BAD_CERTIFICATE = bytes.fromhex("1503030002022a")


def cert(cn: str, **kw: object) -> Issued:
    for k, v in SPAN.items():
        kw.setdefault(k, v)
    return certs.issue(cn, **kw)  # type: ignore[arg-type]


class PKI:
    def __init__(self) -> None:
        self.root = cert("Stdlib Root", key_kind="rsa2048", slot=41, ca=True)
        self.inter = cert("Stdlib Inter", key_kind="rsa2048", slot=42, ca=True, issuer=self.root)
        self.leaf = cert(HOST, key_kind="p256", slot=43, issuer=self.inter, dns=(HOST,),
                         ips=("127.0.0.1",))
        self.rsa_leaf = cert(HOST, key_kind="rsa2048", slot=43, issuer=self.inter, dns=(HOST,))
        self.client = cert("stdlib client", key_kind="p256", slot=44, issuer=self.inter)


@pytest.fixture(scope="module")
def pki() -> PKI:
    return PKI()


def config(pki: PKI, *, anchors: list[Issued] | None = None, name: str | None = HOST,
           **kw: object) -> ClientConfig:
    chosen = [pki.root] if anchors is None else anchors
    return ClientConfig(anchors=[(f"anchor{i}", a.der) for i, a in enumerate(chosen)],
                        server_name=name, **kw)  # type: ignore[arg-type]


def _drain(conn: SSL.Connection) -> bytes:
    out = b""
    while True:
        try:
            out += conn.bio_read(65536)
        except SSL.WantReadError:
            return out


class ClientPair:
    """Our client session and a pyOpenSSL server, back to back in memory."""

    def __init__(self, cfg: ClientConfig, chain: list[Issued], *, version: str = "TLSv1.3",
                 client_cert: bool = False) -> None:
        ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
        ctx.set_min_proto_version(_SSL_VERSION[version])
        ctx.set_max_proto_version(_SSL_VERSION[version])
        ctx.set_cipher_list(b"ALL:@SECLEVEL=0")  # presents weak chains for the client to judge
        ctx.use_certificate(chain[0].cert)
        ctx.use_privatekey(chain[0].key)
        for extra in chain[1:]:
            ctx.add_extra_chain_cert(extra.cert)
        if client_cert:
            ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, lambda *a: True)
        self.server = SSL.Connection(ctx, None)
        self.server.set_accept_state()
        self.server_error: SSL.Error | None = None
        self.client: Session = backend.client_context(cfg, lambda m: None).session()
        #: Every byte the client sent, flight by flight.
        self.sent: list[bytes] = []

    def pump(self) -> None:
        data = self.client.data_to_send()
        if data:
            self.sent.append(data)
            self.server.bio_write(data)
        try:
            self.server.do_handshake()
        except SSL.WantReadError:
            pass
        except SSL.Error as e:
            self.server_error = self.server_error or e
        out = _drain(self.server)
        if out:
            self.client.receive_data(out)

    def handshake(self) -> None:
        for _ in range(20):
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
        self.client.receive_data(_drain(self.server))

    def server_recv(self) -> bytes:
        self.pump()
        out = b""
        while True:
            try:
                out += self.server.recv(65536)
            except (SSL.WantReadError, SSL.ZeroReturnError):
                return out

    def read_all(self) -> bytes:
        out = b""
        while (chunk := self.client.read(65536)) not in (None, b""):
            out += chunk
        return out


# -- the backend object ----------------------------------------------------------


def test_info_and_capabilities() -> None:
    info = backend.info()
    assert info.name == backend.name == "stdlib"
    assert info.library == "ssl"
    assert ssl.OPENSSL_VERSION in info.library_version
    caps = info.capabilities
    assert caps.tls_versions == ("TLSv1.2", "TLSv1.3")
    assert caps.key_types == ("RSA", "ECDSA", "Ed25519")
    assert caps.server and caps.client_certificates and caps.write_after_close_notify
    assert caps.standalone_verifier is False
    assert not hasattr(backend, "verify_chain")


def test_registered_with_the_lowest_priority() -> None:
    from importlib.metadata import entry_points

    (ep,) = [ep for ep in entry_points(group="tlsc.backends") if ep.name == "stdlib"]
    assert ep.value == "tlsc_stdlib:backend" and ep.load() is backend
    assert sorted(registry.MODULE, key=lambda n: -registry.PRIORITY[n]) == [
        "openssl", "tlslite", "stdlib"]
    assert registry.resolve("stdlib") is backend


def test_list_backends_line() -> None:
    out = subprocess.run([sys.executable, "-m", "tlsc", "--list-backends"], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    (line,) = [ln for ln in out.splitlines() if ln.startswith("stdlib ")]
    assert line.startswith("stdlib 0.1.0 ssl ")
    assert ssl.OPENSSL_VERSION in line and "tls=TLSv1.2,TLSv1.3" in line


def test_imported_only_when_selected_and_light() -> None:
    """tlsc's run imports no backend; this one adds ``_ssl`` and nothing else: not ``ssl``.

    ``ssl.py`` (sockets, enums, ``re``, ``base64``) costs more at start than
    the rest of a run's imports together; the backend needs only its C half.
    """

    def added_by(statement: str) -> set[str]:
        code = (
            "import sys; import tlsc.client, tlsc.quick, tlsc.registry as r\n"
            "assert 'tlsc_stdlib' not in sys.modules and 'ssl' not in sys.modules\n"
            "before = set(sys.modules)\n"
            f"{statement}\n"
            "print(' '.join(sorted(set(sys.modules) - before)))\n"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=60, check=True).stdout
        return {m for m in out.split() if not m.startswith("tlsc_stdlib")}

    by_c_half = added_by("import _ssl")
    assert "_ssl" in by_c_half and "ssl" not in by_c_half
    assert {"ssl", "re", "base64"} <= added_by("import ssl")  # what is left out
    # And the core's reader of the Certificate message, shared with the openssl
    # backend (it imports nothing).
    assert added_by("r.resolve('stdlib')") == by_c_half | {"tlsc.tlsmsg"}


# -- verification ----------------------------------------------------------------


@VERSIONS
@pytest.mark.parametrize("sent", ["leaf+inter", "leaf"])
def test_intermediate_as_the_only_anchor(pki: PKI, version: str, sent: str) -> None:
    chain = [pki.leaf, pki.inter] if sent == "leaf+inter" else [pki.leaf]
    pair = ClientPair(config(pki, anchors=[pki.inter]), chain, version=version)
    pair.handshake()
    assert pair.client.facts().peer_certificate == pki.leaf.der


def test_leaf_as_the_only_anchor(pki: PKI) -> None:
    ClientPair(config(pki, anchors=[pki.leaf]), [pki.leaf]).handshake()


def test_missing_intermediate_without_partial_anchor_refused(pki: PKI) -> None:
    with pytest.raises(VerificationError, match="unknown certificate authority"):
        ClientPair(config(pki), [pki.leaf]).handshake()


def test_cadir_files_of_any_name(pki: PKI, tmp_path) -> None:
    """Anchors come from files of any name, DER or PEM; what is not a certificate is skipped."""
    other = cert("Unrelated Root", key_kind="p256", slot=45, ca=True)
    (tmp_path / "my root, in DER").write_bytes(pki.root.der)
    (tmp_path / "bundle.txt").write_bytes(other.pem + b"-----BEGIN CERTIFICATE-----\n"
                                           b"bm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n")
    (tmp_path / "README").write_text("nothing to see\n")
    (tmp_path / "sub").mkdir()
    anchors = read_anchors({"CADIR": str(tmp_path)}, Log("test", 0))
    warnings: list[str] = []
    cfg = ClientConfig(anchors=anchors, server_name=HOST)
    pair = ClientPair(cfg, [pki.leaf, pki.inter])
    pair.client = backend.client_context(cfg, warnings.append).session()
    pair.handshake()
    # The block that is no certificate never reached the backend: the core skipped
    # (and reported) it (tests/test_anchors.py).
    assert sorted(origin for origin, _ in anchors) == [
        str(tmp_path / "bundle.txt"), str(tmp_path / "my root, in DER")]
    assert warnings == []


@VERSIONS
def test_anchors_loaded_only_when_a_chain_names_them(pki: PKI, version: str) -> None:
    """Only what the server's chain can reach goes into OpenSSL's store, before it verifies.

    A system trust store is ~140 anchors, and OpenSSL 3.0 decoding all of them
    cost more than the rest of a connection's start.  An anchor no chain names
    is never even looked at: a broken one is reported only when a chain
    reaches it.
    """
    named = certs.garbled(pki.root.der)  # the root's name, unreadable inside
    unnamed = certs.garbled(cert("Stranger Root", key_kind="p256", slot=52, ca=True).der)
    warnings: list[str] = []
    cfg = ClientConfig(anchors=[("unnamed", unnamed), ("named", named), ("root", pki.root.der)],
                       server_name=HOST)
    pair = ClientPair(cfg, [pki.leaf, pki.inter], version=version)
    pair.client = backend.client_context(cfg, warnings.append).session()
    assert warnings == []
    pair.handshake()
    assert warnings == ["named: not a certificate, skipped"]


def test_no_usable_anchor_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="no usable trust anchor"):
        backend.client_context(ClientConfig(anchors=[("junk", b"\x30\x03\x02\x01\x00")]),
                                lambda m: None)


@VERSIONS
def test_name_checked_before_client_certificate_and_finished(pki: PKI, version: str) -> None:
    """A refused name: the server gets our ClientHello, then a fatal alert, nothing else."""
    cfg = config(pki, name="other.example", cert_chain=(pki.client.der, pki.inter.der),
                 private_key=pki.client.key_pem())
    pair = ClientPair(cfg, [pki.leaf, pki.inter], version=version, client_cert=True)
    with pytest.raises(VerificationError, match="not valid for 'other.example'"):
        pair.handshake()
    assert len(pair.sent) == 2 and pair.sent[0][:1] == b"\x16", pair.sent
    assert pair.sent[1] == BAD_CERTIFICATE
    assert pair.server.get_peer_certificate() is None
    assert pair.server_error is not None and "bad certificate" in str(pair.server_error)
    with pytest.raises(VerificationError):  # sticky
        pair.client.do_handshake()


NAME_CASES = [
    (("*.wild.example",), (), "a.wild.example"),
    (("*.wild.example",), (), "wild.example"),
    (("*.wild.example",), (), "a.b.wild.example"),
    (("f*.wild.example",), (), "foo.wild.example"),
    (("*.com",), (), "foo.com"),
    ((HOST,), (), "HOST.Example."),
    ((HOST,), (), "www.host.example"),
    (("192.0.2.1",), (), "192.0.2.1"),
    ((), ("192.0.2.1",), "192.0.2.1"),
    ((), ("2001:db8::1",), "2001:db8:0:0:0:0:0:1"),
    ((), ("::ffff:192.0.2.1",), "192.0.2.1"),
    ((HOST,), ("192.0.2.1",), "192.0.2.2"),
    ((), (), HOST),  # a CN of host.example, no SAN: never the CN
]


@pytest.mark.parametrize(("dns", "ips", "name"), NAME_CASES)
def test_name_verdicts_are_tlsc_names(pki: PKI, dns, ips, name) -> None:
    """The handshake's verdict on a name is tlsc.names.match_server_name's."""
    leaf = cert(HOST, key_kind="p256", slot=43, issuer=pki.inter, dns=dns, ips=ips)
    pair = ClientPair(config(pki, name=name), [leaf, pki.inter])
    want = match_server_name(name, dns, ips)
    try:
        pair.handshake()
    except VerificationError as e:
        assert not want, f"{name!r} refused for {dns} {ips}: {e}"
        assert e.reason is Reason.NAME_MISMATCH and e.detail == not_valid_for(name)
    else:
        assert want, f"{name!r} accepted for {dns} {ips}"


def _refused(pki: PKI, chain: list[Issued], anchors: list[Issued] | None = None) -> str:
    with pytest.raises(VerificationError) as info:
        ClientPair(config(pki, anchors=anchors), chain).handshake()
    return str(info.value)


def test_dsa_intermediate_refused_though_openssl_takes_it(pki: PKI) -> None:
    dsa_inter = cert("DSA Inter", key_kind="dsa2048", slot=46, ca=True, issuer=pki.root)
    leaf = cert(HOST, key_kind="p256", slot=43, issuer=dsa_inter, dns=(HOST,))
    assert "DSA keys are not accepted" in _refused(pki, [leaf, dsa_inter])
    # OpenSSL configured as the backend configures it takes this chain: the refusal is ours.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.verify_flags |= VERIFY_FLAGS
    ctx.set_ciphers(CIPHERS)
    ctx.load_verify_locations(cadata=pki.root.der)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=HOST)
    pair = ClientPair(config(pki), [leaf, dsa_inter])
    for _ in range(10):
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            pair.server.bio_write(out.read())
            try:
                pair.server.do_handshake()
            except SSL.WantReadError:
                pass
            inc.write(_drain(pair.server))
    assert obj.getpeercert(binary_form=True) == leaf.der


@pytest.mark.parametrize(("what", "words"), [
    ("inter-rsa1024", "key too weak"),
    ("inter-sha1", "signature algorithm too weak"),
    ("leaf-client-auth-only", "unsupported certificate purpose"),
    ("leaf-unknown-critical", "unhandled critical extension"),
    ("inter-basic-constraints-noncritical", "not marked critical"),
    ("leaf-expired", "certificate has expired"),
])
def test_section_2_rules_refused(pki: PKI, what: str, words: str) -> None:
    inter, leaf_kw = pki.inter, {}
    if what == "inter-rsa1024":
        inter = cert("Weak Inter", key_kind="rsa1024", slot=47, ca=True, issuer=pki.root)
    elif what == "inter-sha1":
        inter = certs.resign(pki.inter, pki.root, "sha1")
    elif what == "inter-basic-constraints-noncritical":
        inter = cert("Lax Inter", key_kind="rsa2048", slot=47, ca=True, issuer=pki.root,
                     basic_constraints=False)
    elif what == "leaf-client-auth-only":
        leaf_kw = {"eku": (EKU.CLIENT_AUTH,)}
    elif what == "leaf-unknown-critical":
        leaf_kw = {"extra": [(certs.unknown_extension(), True)]}
    elif what == "leaf-expired":
        leaf_kw = {"not_before": NOW - 30 * DAY, "not_after": NOW - DAY}
    leaf = cert(HOST, key_kind="p256", slot=43, issuer=inter, dns=(HOST,), **leaf_kw)
    assert words in _refused(pki, [leaf, inter])


def test_weak_anchor_key_refused(pki: PKI) -> None:
    weak_root = cert("Weak Root", key_kind="rsa1024", slot=48, ca=True)
    inter = cert("Inter under weak root", key_kind="rsa2048", slot=42, ca=True, issuer=weak_root)
    leaf = cert(HOST, key_kind="p256", slot=43, issuer=inter, dns=(HOST,))
    assert "key too weak" in _refused(pki, [leaf, inter], anchors=[weak_root])


def test_path_walk_judges_the_path_only(pki: PKI) -> None:
    """A DSA certificate sent but off the path is not held against the chain; a DSA anchor is."""
    dsa_other = cert("Unrelated DSA", key_kind="dsa2048", slot=46, ca=True)
    anchors = Anchors([pki.root.der])
    chain = [pki.leaf.der, dsa_other.der, pki.inter.der]
    assert chain_problem(chain, anchors, HOST) is None
    dsa_root = cert("DSA Root", key_kind="dsa2048", slot=49, ca=True)
    inter = cert("Inter under DSA", key_kind="rsa2048", slot=42, ca=True, issuer=dsa_root)
    leaf = cert(HOST, key_kind="p256", slot=43, issuer=inter, dns=(HOST,))
    assert chain_problem([leaf.der, inter.der], Anchors([dsa_root.der]), HOST) == (
        Reason.WEAK_KEY, "DSA keys are not accepted")
    assert chain_problem([b"junk"], anchors, None)[0] is Reason.MALFORMED_CERTIFICATE
    assert chain_problem([pki.leaf.der, pki.inter.der], anchors, "other.example") == (
        Reason.NAME_MISMATCH, not_valid_for("other.example"))


# -- credentials -------------------------------------------------------------------


def test_client_key_never_on_disk(pki: PKI, monkeypatch) -> None:
    """The chain and key reach OpenSSL as memfd paths, closed once loaded."""
    import _ssl

    seen: list[tuple[str, str]] = []

    class Spy(_ssl._SSLContext):  # what the backend makes its contexts with, spied on
        def load_cert_chain(self, certfile, keyfile=None, password=None):  # noqa: ANN001
            for path in (certfile, keyfile):
                seen.append((path, os.readlink(path)))
            return super().load_cert_chain(certfile, keyfile, password)

    monkeypatch.setattr(_ssl, "_SSLContext", Spy)
    cfg = config(pki, cert_chain=(pki.client.der, pki.inter.der),
                 private_key=pki.client.key_pem())
    pair = ClientPair(cfg, [pki.leaf, pki.inter], client_cert=True)
    assert len(seen) == 2
    for path, target in seen:
        assert path.startswith("/proc/self/fd/") and target.startswith("/memfd:"), seen
        assert not os.path.exists(path), f"{path} still open"
    pair.handshake()
    assert pair.server.get_peer_certificate().to_cryptography() == pki.client.cert


def test_credentials_without_proc_are_an_engine_error(pki: PKI, monkeypatch) -> None:
    """No /proc/self/fd (a chroot): one clean EngineError (97), no traceback."""
    from contextlib import contextmanager

    import tlsc_stdlib.context as context
    from tlsc.session import EngineError

    @contextmanager
    def nowhere(data: bytes, name: str):  # noqa: ANN202
        yield "/nonexistent/proc/self/fd/99"

    monkeypatch.setattr(context, "_memory_file", nowhere)
    cfg = config(pki, cert_chain=(pki.client.der,), private_key=pki.client.key_pem())
    with pytest.raises(EngineError, match="cannot hand the client credentials"):
        backend.client_context(cfg, lambda m: None)


def _der(key, fmt) -> bytes:  # noqa: ANN001
    return key.private_bytes(serialization.Encoding.DER, fmt, serialization.NoEncryption())


@pytest.mark.parametrize("form", ["pem", "pkcs8-der", "sec1-der", "pkcs1-der", "ed25519-der"])
def test_key_forms(pki: PKI, form: str) -> None:
    f = serialization.PrivateFormat
    issued = {"pkcs1-der": "rsa2048", "ed25519-der": "ed25519"}.get(form, "p256")
    client = cert("stdlib client", key_kind=issued, slot=44, issuer=pki.inter)
    if form == "pem":
        data = client.key_pem()
    else:
        data = _der(client.key, f.TraditionalOpenSSL if form in ("sec1-der", "pkcs1-der")
                    else f.PKCS8)
    cfg = config(pki, cert_chain=(client.der, pki.inter.der), private_key=data)
    pair = ClientPair(cfg, [pki.leaf, pki.inter], client_cert=True)
    pair.handshake()
    assert pair.server.get_peer_certificate().to_cryptography() == client.cert


@pytest.mark.parametrize(("case", "words"), [
    ("encrypted-pem", "encrypted"),
    ("encrypted-der", "encrypted"),
    ("garbage", "not a valid DER or PEM private key"),
    ("other-key", "does not match the client certificate"),
    ("dsa", "unsupported key type DSA"),
    ("no-key", "no private key given"),
    ("bad-certificate", "not a valid certificate"),
])
def test_bad_credentials(pki: PKI, case: str, words: str) -> None:
    enc = serialization.BestAvailableEncryption(b"secret")
    key = pki.client.key
    chain = (pki.client.der, pki.inter.der)
    data: bytes | None = {
        "encrypted-pem": key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8, enc),
        "encrypted-der": key.private_bytes(serialization.Encoding.DER,
                                           serialization.PrivateFormat.PKCS8, enc),
        "garbage": b"\x30\x03\x02\x01\x00",
        "other-key": cert("x", key_kind="p256", slot=50).key_pem(),
        "no-key": None,
    }.get(case, pki.client.key_pem())
    if case == "dsa":
        dsa = cert("dsa client", key_kind="dsa2048", slot=46, issuer=pki.inter)
        chain, data = (dsa.der,), dsa.key_pem()
    if case == "bad-certificate":
        chain = (pki.client.der[:40],)
    with pytest.raises(ConfigError, match=words):
        backend.client_context(config(pki, cert_chain=chain, private_key=data), lambda m: None)


# -- close semantics ---------------------------------------------------------------


def test_tls13_write_after_the_peers_close_notify(pki: PKI) -> None:
    pair = ClientPair(config(pki), [pki.leaf, pki.inter])
    pair.handshake()
    pair.server_send(b"last words")
    pair.server.shutdown()
    pair.client.receive_data(_drain(pair.server))
    assert pair.read_all() == b"last words"
    assert pair.client.read(100) == b""
    pair.client.write(b"still talking")
    assert pair.server_recv() == b"still talking"
    assert not pair.server.get_shutdown() & SSL.RECEIVED_SHUTDOWN, "answered for us"
    pair.client.close_notify()
    pair.server_recv()
    assert pair.server.get_shutdown() & SSL.RECEIVED_SHUTDOWN


def test_tls12_close_notify_closes_both_ways(pki: PKI) -> None:
    pair = ClientPair(config(pki), [pki.leaf, pki.inter], version="TLSv1.2")
    pair.handshake()
    pair.server.shutdown()
    pair.client.receive_data(_drain(pair.server))
    assert pair.client.read(100) == b""
    with pytest.raises(WriteClosed):
        pair.client.write(b"too late")
    pair.client.close_notify()  # the core answers the peer's close_notify with ours
    pair.server_recv()
    assert pair.server.get_shutdown() & SSL.RECEIVED_SHUTDOWN


def test_our_close_notify_keeps_what_was_received(pki: PKI) -> None:
    """Data already received (unread, or a record half read) survives our close_notify."""
    pair = ClientPair(config(pki), [pki.leaf, pki.inter])
    pair.handshake()
    first, second = os.urandom(10000), os.urandom(30000)
    pair.server_send(first)
    pair.server_send(second)
    got = pair.client.read(100)
    pair.client.close_notify()
    with pytest.raises(WriteClosed):
        pair.client.write(b"x")
    pair.server_send(b"after")
    got += pair.read_all()
    assert got == first + second + b"after"
    assert pair.server_recv() == b""
    assert pair.server.get_shutdown() & SSL.RECEIVED_SHUTDOWN


# -- facts and errors ----------------------------------------------------------------


@VERSIONS
@pytest.mark.parametrize("leaf", ["ecdsa", "rsa"])
def test_facts(pki: PKI, version: str, leaf: str) -> None:
    issued = pki.leaf if leaf == "ecdsa" else pki.rsa_leaf
    pair = ClientPair(config(pki), [issued, pki.inter], version=version)
    pair.handshake()
    facts = pair.client.facts()
    assert facts.protocol == version
    assert facts.cipher == pair.server.get_cipher_name()
    assert facts.peer_certificate == issued.der
    assert facts.server_name == HOST
    assert pair.server.get_servername() == HOST.encode()


def test_sni_sent_as_given(pki: PKI) -> None:
    """No IDNA folding: the name goes on the wire exactly as -k gave it."""
    pair = ClientPair(config(pki, name="Host.Example"), [pki.leaf, pki.inter])
    pair.handshake()
    assert pair.server.get_servername() == b"Host.Example"


def _openssl_backend():  # noqa: ANN202
    try:
        return registry.load(registry.available()["openssl"])
    except KeyError:
        pytest.skip("comparing words with the openssl backend needs it installed")


@pytest.mark.parametrize("failure", ["unknown-ca", "expired", "name", "alert", "garbage"])
def test_same_words_as_the_openssl_backend(pki: PKI, failure: str) -> None:
    other = _openssl_backend()
    chain, cfg = [pki.leaf, pki.inter], config(pki)
    if failure == "unknown-ca":
        cfg = config(pki, anchors=[cert("Stranger", key_kind="p256", slot=51, ca=True)])
    elif failure == "expired":
        chain = [cert(HOST, key_kind="p256", slot=43, issuer=pki.inter, dns=(HOST,),
                      not_before=NOW - 30 * DAY, not_after=NOW - DAY), pki.inter]
    elif failure == "name":
        cfg = config(pki, name="other.example")
    said = []
    for b in (backend, other):
        session = b.client_context(cfg, lambda m: None).session()
        try:
            if failure in ("alert", "garbage"):
                session.do_handshake()
                session.data_to_send()
                session.receive_data(bytes.fromhex("15030300020228") if failure == "alert"
                                     else b"HTTP/1.1 400 Bad Request\r\n\r\n" * 4)
                session.do_handshake()
            else:
                pair = ClientPair(cfg, chain)
                pair.client = session
                pair.handshake()
        except TLSError as e:
            said.append((type(e).__name__, e.reason))
        else:
            said.append(("accepted", None))
    assert said[0] == said[1], said
    assert said[0][0] in ("VerificationError", "AlertReceived", "ProtocolError")


def test_garbage_and_alerts_are_typed(pki: PKI) -> None:
    s = backend.client_context(config(pki), lambda m: None).session()
    s.do_handshake()
    s.receive_data(bytes.fromhex("15030300020228"))
    with pytest.raises(AlertReceived, match="fatal alert: handshake_failure"):
        s.do_handshake()
    s = backend.client_context(config(pki), lambda m: None).session()
    s.do_handshake()
    s.receive_data(b"HTTP/1.1 400 Bad Request\r\n\r\n" * 4)
    with pytest.raises(ProtocolError):
        s.do_handshake()


# -- the server role -------------------------------------------------------------------


class ServerPair:
    """Our server session and a pyOpenSSL client, back to back in memory."""

    def __init__(self, cfg: ServerConfig, *, version: str = "TLSv1.3",
                 client: Issued | None = None, sni: bytes | None = None,
                 chain: list[Issued] = ()) -> None:
        ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
        ctx.set_min_proto_version(_SSL_VERSION[version])
        ctx.set_max_proto_version(_SSL_VERSION[version])
        if client is not None:
            ctx.use_certificate(client.cert)
            ctx.use_privatekey(client.key)
            for extra in chain:
                ctx.add_extra_chain_cert(extra.cert)
        self.client = SSL.Connection(ctx, None)
        self.client.set_connect_state()
        if sni is not None:
            self.client.set_tlsext_host_name(sni)
        self.server: Session = backend.server_context(cfg, lambda m: None).session()
        self.client_error: SSL.Error | None = None

    def handshake(self) -> None:
        for _ in range(20):
            try:
                self.client.do_handshake()
            except SSL.WantReadError:
                pass
            except SSL.Error as e:
                self.client_error = self.client_error or e
            self.server.receive_data(_drain(self.client))
            try:
                done = self.server.do_handshake()
            finally:
                out = self.server.data_to_send()
                if out:
                    self.client.bio_write(out)
            if done:
                return
        raise AssertionError("handshake did not complete")


def server_config(pki: PKI, **kw: object) -> ServerConfig:
    return ServerConfig(cert_chain=(pki.leaf.der, pki.inter.der), private_key=pki.leaf.key_pem(),
                        anchors=[("root", pki.root.der)], **kw)  # type: ignore[arg-type]


@VERSIONS
def test_server_facts(pki: PKI, version: str) -> None:
    pair = ServerPair(server_config(pki), version=version, sni=b"Name.Example")
    pair.handshake()
    facts = pair.server.facts()
    assert facts.protocol == version
    assert facts.cipher == pair.client.get_cipher_name()
    assert facts.server_name == "Name.Example"
    assert facts.peer_certificate is None
    assert pair.client.get_peer_certificate().to_cryptography() == pki.leaf.cert


def test_server_sni_not_ascii_is_escaped(pki: PKI) -> None:
    pair = ServerPair(server_config(pki), sni=b"\xe9t\xe9.example")
    pair.handshake()
    assert pair.server.facts().server_name == "\\xe9t\\xe9.example"


@VERSIONS
def test_server_requires_a_client_certificate(pki: PKI, version: str) -> None:
    pair = ServerPair(server_config(pki, verify_client=True), version=version)
    with pytest.raises(VerificationError, match="sent no certificate"):
        pair.handshake()
    alert = "certificate required" if version == "TLSv1.3" else "handshake failure"
    try:
        pair.client.recv(100)
    except SSL.Error as e:
        pair.client_error = pair.client_error or e
    assert alert in str(pair.client_error)


@VERSIONS
def test_server_verifies_the_client_certificate(pki: PKI, version: str) -> None:
    pair = ServerPair(server_config(pki, verify_client=True), version=version,
                      client=pki.client, chain=[pki.inter])
    pair.handshake()
    assert pair.server.facts().peer_certificate == pki.client.der


def test_server_refuses_a_client_certificate_without_client_auth(pki: PKI) -> None:
    server_only = cert("server only", key_kind="p256", slot=44, issuer=pki.inter,
                       eku=(EKU.SERVER_AUTH,))
    pair = ServerPair(server_config(pki, verify_client=True), client=server_only,
                      chain=[pki.inter])
    with pytest.raises(VerificationError, match="unsupported certificate purpose"):
        pair.handshake()


class _OptionalConfig(ServerConfig):
    """ServerConfig saying -Y (requested, optional), whether or not the core's has the field yet."""

    __slots__ = ("client_cert_optional",)

    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.client_cert_optional = True


def test_server_client_certificate_optional(pki: PKI) -> None:
    """Requested but optional (tlsd -Y): none is served, an untrusted one is refused."""
    cfg = _OptionalConfig(cert_chain=(pki.leaf.der, pki.inter.der),
                          private_key=pki.leaf.key_pem(), verify_client=True,
                          anchors=[("root", pki.root.der)])
    pair = ServerPair(cfg)
    pair.handshake()
    assert pair.server.facts().peer_certificate is None
    stranger = cert("stranger", key_kind="p256", slot=52)
    with pytest.raises(VerificationError):
        ServerPair(cfg, client=stranger).handshake()


def test_server_needs_its_own_credentials(pki: PKI) -> None:
    with pytest.raises(ConfigError, match="does not match the server certificate"):
        backend.server_context(ServerConfig(cert_chain=(pki.leaf.der,),
                                            private_key=pki.client.key_pem()), lambda m: None)


def test_der_fields(pki: PKI) -> None:
    """tlsc.der reads what this backend needs from a certificate."""
    f = certificate_fields(pki.leaf.der)
    assert f.key_algorithm == "1.2.840.10045.2.1"
    assert f.issuer == certificate_fields(pki.inter.der).subject
    assert "2.5.29.17" in f.extensions


# -- the harness judges this backend through handshakes ----------------------------

SAMPLE = (
    "good-chain/rsa-sha384",
    "partial-chain/intermediate-anchor",
    "names/p256/wildcard-one-label",
    "names/p256/dns-mismatch",
    "validity/leaf/long-expired",
    "validity/inter/at-notAfter",
    "chain/unknown-root",
    "signature/p256/leaf-bit-flipped",
    "weak-crypto/inter-dsa",
    "weak-crypto/leaf-dsa",
    "malformed/garbage-leaf",
)


def _sample() -> list:
    from tlsc.testing.pathcases import cases

    chosen = [c for c in cases() if c.name in SAMPLE]
    assert len(chosen) == len(SAMPLE)
    return chosen


class _Wrapped:
    """The stdlib backend with its verification switched off, or every handshake refused."""

    name = "stdlib-broken"

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def info(self):  # noqa: ANN201
        return backend.info()

    def client_context(self, cfg: ClientConfig, warn):  # noqa: ANN001, ANN201
        if self.mode == "accept-all":
            return backend.client_context(
                ClientConfig(anchors=cfg.anchors, server_name=cfg.server_name, verify=False), warn)
        real = backend.client_context(cfg, warn)

        class Refusing:
            def session(self) -> Session:
                s = real.session()

                def refuse() -> bool:
                    raise VerificationError("refused by the test")

                s.do_handshake = refuse  # type: ignore[method-assign]
                return s

        return Refusing()


def test_path_battery_by_handshake_passes_and_excuses_only_clock_bound_cases() -> None:
    from tlsc.testing.harness import run_path_battery

    cells = {c.scenario: c for c in run_path_battery([backend], _sample())}
    excused = {n for n, c in cells.items() if c.status == "excused"}
    assert excused == {"verify:validity/inter/at-notAfter"}, cells
    assert "notAfter" in cells["verify:validity/inter/at-notAfter"].detail
    assert all(c.status == "pass" for n, c in cells.items() if n not in excused), [
        (c.scenario, c.detail) for c in cells.values() if c.status == "fail"]
    assert "DSA keys are not accepted" in cells["verify:weak-crypto/inter-dsa"].detail
    assert "TLSv1.2 server" in cells["verify:weak-crypto/leaf-dsa"].detail
    assert "rewritten" in cells["verify:malformed/garbage-leaf"].detail


def test_path_battery_by_handshake_turns_red_without_verification() -> None:
    from tlsc.testing.harness import run_path_battery

    cells = run_path_battery([_Wrapped("accept-all")], _sample())
    failed = {c.scenario.removeprefix("verify:") for c in cells if c.status == "fail"}
    assert {"names/p256/dns-mismatch", "validity/leaf/long-expired", "chain/unknown-root",
            "signature/p256/leaf-bit-flipped", "weak-crypto/inter-dsa"} <= failed, cells


def test_path_battery_by_handshake_turns_red_when_refusing_all() -> None:
    from tlsc.testing.harness import run_path_battery

    cells = run_path_battery([_Wrapped("refuse-all")], _sample())
    failed = {c.scenario.removeprefix("verify:") for c in cells if c.status == "fail"}
    assert {"good-chain/rsa-sha384", "partial-chain/intermediate-anchor",
            "names/p256/wildcard-one-label"} <= failed, cells


# -- error words -------------------------------------------------------------------


def test_reason_words_as_the_pattern_they_replace() -> None:
    """``errors._words`` says what ``re.match`` of its old pattern said, on any text."""
    import re

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from tlsc_stdlib.errors import _words

    pattern = re.compile(r"^\[[^\]]*\] (.*?)(?: \(_ssl\.c:\d+\))?$")

    def old(text: str) -> str:
        match = pattern.match(text)
        return match.group(1) if match else text

    assert _words("[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)") == (
        "wrong version number")
    assert _words("[SSL] no number (_ssl.c:)") == "no number (_ssl.c:)"
    pieces = st.sampled_from(
        ["[", "]", " ", "] ", "(_ssl.c:", " (_ssl.c:", "12", "\u0663", ")", "\n", "a", "SSL: X"])

    @settings(max_examples=3000, deadline=None)
    @given(st.lists(pieces, max_size=10).map("".join))
    def same(text: str) -> None:
        assert _words(text) == old(text)

    same()
