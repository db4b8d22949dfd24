"""Test PKI and an in-memory TLS server for the openssl backend's tests.

Everything is generated with ``cryptography`` once per test session: a root
CA, an intermediate, good leaves (ECDSA, RSA, wildcard, IP) and one leaf per
verification failure the spec lists.  The server side of each test is a plain
pyOpenSSL ``Connection`` over memory BIOs, driven in the same thread.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from OpenSSL import SSL

from tlsc.session import ClientConfig, Session

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
DAY = dt.timedelta(days=1)
HOST = "host.example"

Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@dataclass
class Issued:
    """A certificate with its key (and the key of whoever signed it)."""

    cert: x509.Certificate
    key: Key

    @property
    def der(self) -> bytes:
        return der(self.cert)

    def key_bytes(self, encoding: serialization.Encoding = serialization.Encoding.PEM) -> bytes:
        return self.key.private_bytes(
            encoding, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


def make_cert(
    cn: str,
    *,
    key: Key | None = None,
    issuer: Issued | None = None,
    ca: bool = False,
    path_length: int | None = None,
    dns: tuple[str, ...] = (),
    ips: tuple[str, ...] = (),
    eku: tuple[x509.ObjectIdentifier, ...] | None = (ExtendedKeyUsageOID.SERVER_AUTH,),
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    hash_alg: hashes.HashAlgorithm | None = None,
    basic_constraints: bool = True,
    extra: tuple[tuple[x509.ExtensionType, bool], ...] = (),
) -> Issued:
    """A certificate signed by ``issuer`` (self-signed when None)."""
    key = key if key is not None else ec_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    signer_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.cert.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or NOW - DAY)
        .not_valid_after(not_after or NOW + 30 * DAY)
    )
    if basic_constraints:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True
        )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if eku is not None and not ca:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    builder = builder.add_extension(
        x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    for ext, critical in extra:
        builder = builder.add_extension(ext, critical=critical)
    if isinstance(signer_key, ed25519.Ed25519PrivateKey):
        algorithm = None
    else:
        algorithm = hash_alg or hashes.SHA256()
    return Issued(builder.sign(signer_key, algorithm), key)


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _der_tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _der_length(len(content)) + content


def _der_content(element: bytes) -> bytes:
    """The content of a single DER element (tag, length, content)."""
    first = element[1]
    if first < 0x80:
        return element[2 : 2 + first]
    n = first & 0x7F
    length = int.from_bytes(element[2 : 2 + n], "big")
    return element[2 + n : 2 + n + length]


_ECDSA_SHA256 = bytes.fromhex("300a06082a8648ce3d040302")
_ECDSA_SHA1 = bytes.fromhex("300906072a8648ce3d0401")


def resign_sha1(issued: Issued, issuer: Issued) -> Issued:
    """``issued`` re-signed by ``issuer`` (an EC key) with ecdsa-with-SHA1.

    ``cryptography`` refuses to sign with SHA-1, so the TBS is rewritten by
    hand: swap the algorithm identifier, sign, reassemble.
    """
    assert isinstance(issuer.key, ec.EllipticCurvePrivateKey)
    tbs_content = _der_content(issued.cert.tbs_certificate_bytes)
    assert _ECDSA_SHA256 in tbs_content
    tbs = _der_tlv(0x30, tbs_content.replace(_ECDSA_SHA256, _ECDSA_SHA1, 1))
    signature = issuer.key.sign(tbs, ec.ECDSA(hashes.SHA1()))
    cert = _der_tlv(0x30, tbs + _ECDSA_SHA1 + _der_tlv(0x03, b"\x00" + signature))
    return Issued(x509.load_der_x509_certificate(cert), issued.key)


@dataclass
class PKI:
    root: Issued
    inter: Issued
    other_root: Issued
    now: dt.datetime = NOW
    leaves: dict[str, Issued] = field(default_factory=dict)
    chains: dict[str, list[Issued]] = field(default_factory=dict)

    def chain(self, name: str) -> list[Issued]:
        """What the server sends for ``name``: leaf first."""
        return self.chains[name]


def _build_pki() -> PKI:
    root = make_cert("Test Root", key=rsa_key(), ca=True)
    inter = make_cert("Test Intermediate", issuer=root, ca=True)
    other_root = make_cert("Other Root", ca=True)
    pki = PKI(root, inter, other_root)

    def add(name: str, leaf: Issued, *extra: Issued) -> None:
        pki.leaves[name] = leaf
        pki.chains[name] = [leaf, *extra]

    add("ecdsa", make_cert(HOST, issuer=inter, dns=(HOST,)), inter)
    add("rsa", make_cert(HOST, key=rsa_key(), issuer=inter, dns=(HOST,)), inter)
    add(
        "expired",
        make_cert(HOST, issuer=inter, dns=(HOST,), not_before=NOW - 30 * DAY, not_after=NOW - DAY),
        inter,
    )
    add(
        "not_yet_valid",
        make_cert(HOST, issuer=inter, dns=(HOST,), not_before=NOW + DAY, not_after=NOW + 30 * DAY),
        inter,
    )
    other_inter = make_cert("Other Intermediate", issuer=other_root, ca=True)
    add("unknown_ca", make_cert(HOST, issuer=other_inter, dns=(HOST,)), other_inter)
    add("self_signed", make_cert(HOST, dns=(HOST,)))
    not_ca = make_cert("Not A CA", issuer=inter, dns=("notca.example",))
    add("by_non_ca", make_cert(HOST, issuer=not_ca, dns=(HOST,)), not_ca, inter)
    add("sha1", resign_sha1(make_cert(HOST, issuer=inter, dns=(HOST,)), inter), inter)
    add("rsa1024", make_cert(HOST, key=rsa_key(1024), issuer=inter, dns=(HOST,)), inter)
    add("wildcard", make_cert("*.wild.example", issuer=inter, dns=("*.wild.example",)), inter)
    add("ip", make_cert("ip", issuer=inter, ips=("192.0.2.1", "2001:db8::1")), inter)
    add("cn_only", make_cert(HOST, issuer=inter), inter)
    add(
        "critical_unknown",
        make_cert(
            HOST,
            issuer=inter,
            dns=(HOST,),
            extra=(
                (
                    x509.UnrecognizedExtension(
                        x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x05\x00"
                    ),
                    True,
                ),
            ),
        ),
        inter,
    )
    add(
        "client_auth_only",
        make_cert(HOST, issuer=inter, dns=(HOST,), eku=(ExtendedKeyUsageOID.CLIENT_AUTH,)),
        inter,
    )
    pathlen0_root = make_cert("PathLen0 Root", ca=True, path_length=0)
    pathlen_inter = make_cert("Under PathLen0", issuer=pathlen0_root, ca=True)
    pki.leaves["pathlen0_root"] = pathlen0_root
    add("pathlen", make_cert(HOST, issuer=pathlen_inter, dns=(HOST,)), pathlen_inter)
    # Client certificates, one per key type.
    pki.leaves["client_rsa"] = make_cert(
        "client rsa", key=rsa_key(), issuer=inter, eku=(ExtendedKeyUsageOID.CLIENT_AUTH,)
    )
    pki.leaves["client_ecdsa"] = make_cert(
        "client ecdsa", issuer=inter, eku=(ExtendedKeyUsageOID.CLIENT_AUTH,)
    )
    pki.leaves["client_ed25519"] = make_cert(
        "client ed25519",
        key=ed25519.Ed25519PrivateKey.generate(),
        issuer=inter,
        eku=(ExtendedKeyUsageOID.CLIENT_AUTH,),
    )
    return pki


@pytest.fixture(scope="session")
def pki() -> PKI:
    return _build_pki()


@pytest.fixture
def cert_factory() -> Callable[..., Issued]:
    """:func:`make_cert`, for tests that need a certificate of their own.

    Tests get helpers through fixtures rather than ``import conftest``, which
    would clash with other test directories' conftest modules.
    """
    return make_cert


# -- in-memory server ----------------------------------------------------------


def server_context(
    chain: list[Issued],
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
    """make_pair(chain_name or chain, config, **server options) -> Pair."""
    from tlsc_openssl import backend

    def make(
        chain: str | list[Issued],
        config: ClientConfig,
        warn: Callable[[str], None] | None = None,
        **server_opts: object,
    ) -> Pair:
        served = pki.chain(chain) if isinstance(chain, str) else chain
        ctx = backend.client_context(config, warn or (lambda msg: None))
        server = server_connection(server_context(served, **server_opts))  # type: ignore[arg-type]
        return Pair(ctx.session(), server)

    return make
