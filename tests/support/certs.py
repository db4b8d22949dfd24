"""A small PKI for the end-to-end tests, built with ``cryptography``.

``build_pki(directory)`` writes every certificate and key the tests need, in PEM
and DER, and returns a :class:`PKI` that names them.  Nothing here talks to tlsc:
the tests compute expected values (hashes, subjects) from these objects
independently of any backend.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
DAY = dt.timedelta(days=1)

LOCAL_SANS: tuple[x509.GeneralName, ...] = (
    x509.DNSName("localhost"),
    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    x509.IPAddress(ipaddress.ip_address("::1")),
)


def rsa_key(bits: int = 2048):
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def ec_key():
    return ec.generate_private_key(ec.SECP256R1())


def name(cn: str | None, *, org: str = "tlsc tests", extra=()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
             x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)]
    attrs.extend(extra)
    if cn is not None:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


@dataclass
class Issued:
    """A certificate and its key, with the files they were written to."""

    label: str
    cert: x509.Certificate
    key: object
    dir: Path
    issuer: Issued | None = None
    files: dict[str, Path] = field(default_factory=dict)

    # -- computed facts, independent of tlsc ----------------------------------
    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def sha256(self) -> str:
        return "SHA256:" + hashlib.sha256(self.der).hexdigest()

    @property
    def subject(self) -> str:
        return self.cert.subject.rfc4514_string()

    # -- files ----------------------------------------------------------------
    @property
    def cert_pem(self) -> Path:
        return self.files["cert_pem"]

    @property
    def cert_der(self) -> Path:
        return self.files["cert_der"]

    @property
    def key_pem(self) -> Path:
        return self.files["key_pem"]

    @property
    def key_der(self) -> Path:
        return self.files["key_der"]

    @property
    def chain_pem(self) -> Path:
        """Leaf then every issuer up to (excluding) the self-signed root."""
        return self.files["chain_pem"]

    @property
    def issuers_pem(self) -> Path:
        """The chain minus the leaf: what ``s_server -cert_chain`` wants."""
        return self.files["issuers_pem"]

    def write(self) -> None:
        d = self.dir
        pem = self.cert.public_bytes(serialization.Encoding.PEM)
        der = self.der
        self.files["cert_pem"] = _write(d / f"{self.label}.crt.pem", pem)
        self.files["cert_der"] = _write(d / f"{self.label}.crt.der", der)
        self.files["key_pem"] = _write(
            d / f"{self.label}.key.pem",
            self.key.private_bytes(serialization.Encoding.PEM,
                                   serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()),
        )
        self.files["key_der"] = _write(
            d / f"{self.label}.key.der",
            self.key.private_bytes(serialization.Encoding.DER,
                                   serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()),
        )
        chain = [pem]
        issuers = []
        up = self.issuer
        while up is not None and up.cert.issuer != up.cert.subject:
            up_pem = up.cert.public_bytes(serialization.Encoding.PEM)
            chain.append(up_pem)
            issuers.append(up_pem)
            up = up.issuer
        self.files["chain_pem"] = _write(d / f"{self.label}.chain.pem", b"".join(chain))
        self.files["issuers_pem"] = _write(d / f"{self.label}.issuers.pem", b"".join(issuers))


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


class Factory:
    def __init__(self, directory: Path):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.serial = 1000

    def issue(
        self,
        label: str,
        *,
        issuer: Issued | None,
        key=None,
        subject: x509.Name | None = None,
        ca: bool = False,
        path_length: int | None = None,
        sans=LOCAL_SANS,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        eku=(ExtendedKeyUsageOID.SERVER_AUTH,),
        key_usage: str | None = "auto",
        basic_constraints: bool = True,
        hash_alg=None,
        extra_extensions=(),
    ) -> Issued:
        key = key if key is not None else ec_key()
        subject = subject if subject is not None else name(label)
        self.serial += 1
        b = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer.cert.subject if issuer else subject)
            .public_key(key.public_key())
            .serial_number(self.serial)
            .not_valid_before(not_before or NOW - DAY)
            .not_valid_after(not_after or NOW + 30 * DAY)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        )
        if issuer is not None:
            b = b.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
                False,
            )
        if basic_constraints:
            bc = x509.BasicConstraints(ca=ca, path_length=path_length if ca else None)
            b = b.add_extension(bc, critical=True)
        if key_usage == "auto":
            if ca:
                b = b.add_extension(_ku(cert_sign=True), critical=True)
            else:
                b = b.add_extension(
                    _ku(digital_signature=True,
                        key_encipherment=isinstance(key, rsa.RSAPrivateKey)),
                    critical=True,
                )
        if eku and not ca:
            b = b.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
        for ext, critical in extra_extensions:
            b = b.add_extension(ext, critical=critical)
        signer = issuer.key if issuer else key
        cert = b.sign(signer, hash_alg or hashes.SHA256())
        out = Issued(label, cert, key, self.dir, issuer)
        out.write()
        return out


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _der_seq(body: bytes) -> bytes:
    return b"\x30" + _der_len(len(body)) + body


def _der_unwrap(tlv: bytes) -> bytes:
    """The contents of a DER TLV (the header stripped)."""
    n = tlv[1]
    if n < 0x80:
        return tlv[2:2 + n]
    k = n & 0x7F
    length = int.from_bytes(tlv[2:2 + k], "big")
    return tlv[2 + k:2 + k + length]


ECDSA_SHA256 = bytes.fromhex("300a06082a8648ce3d040302")
ECDSA_SHA1 = bytes.fromhex("300906072a8648ce3d0401")


def _resign_ecdsa_sha1(cert: x509.Certificate, issuer_key) -> x509.Certificate:
    """The same certificate signed with ecdsa-with-SHA1 (cryptography refuses to build one)."""
    body = _der_unwrap(cert.tbs_certificate_bytes)
    assert ECDSA_SHA256 in body
    tbs = _der_seq(body.replace(ECDSA_SHA256, ECDSA_SHA1, 1))
    sig = issuer_key.sign(tbs, ec.ECDSA(hashes.SHA1()))
    bitstring = b"\x03" + _der_len(len(sig) + 1) + b"\x00" + sig
    return x509.load_der_x509_certificate(_der_seq(tbs + ECDSA_SHA1 + bitstring))


def _ku(**on) -> x509.KeyUsage:
    fields = dict(digital_signature=False, content_commitment=False, key_encipherment=False,
                  data_encipherment=False, key_agreement=False, key_cert_sign=False,
                  crl_sign=False, encipher_only=False, decipher_only=False)
    if on.pop("cert_sign", False):
        fields["key_cert_sign"] = True
        fields["crl_sign"] = True
    fields.update(on)
    return x509.KeyUsage(**fields)


@dataclass
class PKI:
    dir: Path
    root: Issued
    inter: Issued
    leaf_rsa: Issued
    leaf_ec: Issued
    wildcard: Issued
    expired: Issued
    not_yet_valid: Issued
    wrong_name: Issued
    other_root: Issued
    unknown_ca: Issued
    self_signed: Issued
    non_ca_issuer: Issued
    issued_by_non_ca: Issued
    cn_only: Issued
    ip_as_dns: Issued
    rsa1024: Issued
    sha1: Issued
    client_auth_only: Issued
    sub_ca: Issued
    pathlen_violation: Issued
    unknown_critical: Issued
    injection: Issued
    client_ca: Issued
    client: Issued
    client_rsa: Issued
    # trust-anchor files and directories
    cafile: Path = None  # root only
    cafile_inter: Path = None  # the intermediate only (partial chain)
    cafile_bundle: Path = None  # other_root + root, PEM concatenated
    cafile_der: Path = None  # root in DER
    junk: Path = None  # a file that holds no certificate
    empty: Path = None
    cadir_pem_spaces: Path = None
    cadir_der_unicode: Path = None
    cadir_junk_only: Path = None
    cadir_empty: Path = None
    cadir_symlink_only: Path = None  # the only anchor is a symlink to a file elsewhere
    bad_key: Path = None  # garbage in a key file


def build_pki(directory: Path) -> PKI:
    f = Factory(directory)
    root = f.issue("root", issuer=None, key=rsa_key(), ca=True, sans=(),
                   subject=name("tlsc test root CA"), not_after=NOW + 3650 * DAY)
    inter = f.issue("inter", issuer=root, ca=True, path_length=0, sans=(),
                    subject=name("tlsc test intermediate CA"))
    leaf_rsa = f.issue(
        "leaf_rsa", issuer=inter, key=rsa_key(),
        subject=x509.Name([
            x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example, Inc."),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "R+D"),
            x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
        ]),
    )
    leaf_ec = f.issue("leaf_ec", issuer=inter, subject=name("localhost", org="EC leaf"))
    wildcard = f.issue("wildcard", issuer=inter, subject=name("*.example.test"),
                       sans=(x509.DNSName("*.example.test"),))
    expired = f.issue("expired", issuer=inter, not_before=NOW - 60 * DAY,
                      not_after=NOW - 2 * DAY)
    not_yet_valid = f.issue("not_yet_valid", issuer=inter, not_before=NOW + 2 * DAY,
                            not_after=NOW + 60 * DAY)
    wrong_name = f.issue("wrong_name", issuer=inter, subject=name("localhost"),
                         sans=(x509.DNSName("other.example.test"),
                               x509.IPAddress(ipaddress.ip_address("192.0.2.7"))))
    other_root = f.issue("other_root", issuer=None, ca=True, sans=(),
                         subject=name("some other root CA"))
    unknown_ca = f.issue("unknown_ca", issuer=other_root)
    self_signed = f.issue("self_signed", issuer=None, subject=name("localhost"))
    non_ca_issuer = f.issue("non_ca_issuer", issuer=root, subject=name("not a CA"))
    issued_by_non_ca = f.issue("issued_by_non_ca", issuer=non_ca_issuer)
    cn_only = f.issue("cn_only", issuer=inter, subject=name("localhost"), sans=())
    ip_as_dns = f.issue("ip_as_dns", issuer=inter, sans=(x509.DNSName("127.0.0.1"),))
    rsa1024 = f.issue("rsa1024", issuer=inter, key=rsa_key(1024))
    sha1 = f.issue("sha1", issuer=inter)
    sha1.cert = _resign_ecdsa_sha1(sha1.cert, inter.key)
    sha1.write()
    client_auth_only = f.issue("client_auth_only", issuer=inter,
                               eku=(ExtendedKeyUsageOID.CLIENT_AUTH,))
    # inter has pathLen 0: a CA below it may not issue anything.
    sub_ca = f.issue("sub_ca", issuer=inter, ca=True, sans=(), subject=name("sub CA"))
    pathlen_violation = f.issue("pathlen_violation", issuer=sub_ca)
    unknown_critical = f.issue(
        "unknown_critical", issuer=inter,
        extra_extensions=[(x509.UnrecognizedExtension(ObjectIdentifier("1.3.6.1.4.1.55555.1"),
                                                      b"\x05\x00"), True)],
    )
    injection = f.issue("injection", issuer=inter,
                        subject=name("localhost", org="evil\nINJECTED=1"))
    client_ca = f.issue("client_ca", issuer=None, ca=True, sans=(),
                        subject=name("tlsc test client CA"))
    client = f.issue("client", issuer=client_ca, subject=name("tlsc test client"),
                     sans=(x509.DNSName("client.example.test"),),
                     eku=(ExtendedKeyUsageOID.CLIENT_AUTH,))
    client_rsa = f.issue("client_rsa", issuer=client_ca, key=rsa_key(),
                         subject=name("tlsc test RSA client"),
                         sans=(x509.DNSName("client.example.test"),),
                         eku=(ExtendedKeyUsageOID.CLIENT_AUTH,))

    d = directory
    pki = PKI(d, root, inter, leaf_rsa, leaf_ec, wildcard, expired, not_yet_valid, wrong_name,
              other_root, unknown_ca, self_signed, non_ca_issuer, issued_by_non_ca, cn_only,
              ip_as_dns, rsa1024, sha1, client_auth_only, sub_ca, pathlen_violation,
              unknown_critical, injection, client_ca, client, client_rsa)
    pki.cafile = root.cert_pem
    pki.cafile_inter = inter.cert_pem
    pki.cafile_bundle = _write(d / "bundle.pem",
                               other_root.cert_pem.read_bytes() + root.cert_pem.read_bytes())
    pki.cafile_der = root.cert_der
    pki.junk = _write(d / "junk.txt", b"this is not a certificate\n" * 20)
    pki.empty = _write(d / "empty.pem", b"")
    pki.bad_key = _write(d / "bad.key", b"-----BEGIN PRIVATE KEY-----\nnope\n"
                                        b"-----END PRIVATE KEY-----\n")

    # CADIR with odd names: spaces, no extension, unicode; plus a junk file and a
    # sub-directory, none of which may stop the good anchor from being used.
    a = d / "cadir pem spaces"
    a.mkdir()
    _write(a / "my root ca.pem", root.cert_pem.read_bytes())
    _write(a / "README", b"junk: no certificate in here\n")
    _write(a / "other", other_root.cert_pem.read_bytes())
    (a / "subdir").mkdir()
    pki.cadir_pem_spaces = a

    b = d / "cadir_der_unicode"
    b.mkdir()
    _write(b / "racine é ✓", root.der)  # DER, unicode name, no extension
    _write(b / "zz junk.crt", b"\x00\x01garbage\xff" * 10)
    (b / "link to root").symlink_to(b / "racine é ✓")
    pki.cadir_der_unicode = b

    c = d / "cadir_junk_only"
    c.mkdir()
    _write(c / "junk.pem", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    _write(c / "notes", b"hello\n")
    pki.cadir_junk_only = c

    f_ = d / "cadir_symlink_only"
    f_.mkdir()
    (f_ / "anchor").symlink_to(root.cert_pem)
    pki.cadir_symlink_only = f_

    e = d / "cadir_empty"
    e.mkdir()
    pki.cadir_empty = e
    return pki
