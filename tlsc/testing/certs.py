"""The certificate factory of every test (tlsc's own and a third-party backend's).

Three levels, each built on the one below:

* :func:`issue` -- one certificate, every extension a keyword away (defaults
  are those of a well-formed WebPKI-like certificate);
* :func:`chain` -- root -> intermediate -> server leaf, plus client
  certificates from the same intermediate (:meth:`Chain.client`);
* :mod:`tlsc.testing.pki` -- a whole PKI written to files, for tests that run
  real programs.

Keys are the slow part (RSA generation), so they are cached per process by
``(kind, slot)``: every certificate that needs "an RSA key" shares one, and a
case that needs a *different* key (a wrong signature) asks for another slot
(``slot=None``: a fresh key).  Signing is cheap, so certificates are made
fresh for every case.

``cryptography`` refuses to sign with SHA-1 or MD5 and cannot produce broken
DER; :func:`resign` and :func:`corrupt_signature` do that by hand on the DER.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from . import require

require()  # a clear ImportError (the testing extra), not cryptography's own

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, padding, rsa  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402

__all__ = [
    "DAY",
    "Chain",
    "Issued",
    "KEY_KINDS",
    "corrupt_signature",
    "der_tlv",
    "duplicate_extension",
    "edit_extensions",
    "edit_tbs",
    "explicit_curve",
    "chain",
    "garbled",
    "issue",
    "key",
    "name",
    "private_key_for",
    "resign",
    "unknown_extension",
]

DAY = dt.timedelta(days=1)
PrivateKey = Any  # rsa/ec/ed25519/dsa private keys; cryptography has no common base

KEY_KINDS = (
    "rsa2048", "rsa3072", "rsa1024", "p192", "p256", "p384", "p521", "ed25519", "dsa2048"
)


#: Every key :func:`key` made, by its subjectPublicKeyInfo (DER).
_BY_PUBLIC_KEY: dict[bytes, PrivateKey] = {}


def key(kind: str = "p256", slot: int | None = 0) -> PrivateKey:
    """A private key of ``kind``; the same object for the same ``(kind, slot)``.

    ``slot=None`` makes a fresh key, cached nowhere (:func:`private_key_for`
    still finds it).
    """
    return _remember(_generate(kind)) if slot is None else _cached_key(kind, slot)


@functools.cache
def _cached_key(kind: str, slot: int) -> PrivateKey:
    return _remember(_generate(kind))


def _remember(k: PrivateKey) -> PrivateKey:
    _BY_PUBLIC_KEY[_spki(k.public_key())] = k
    return k


def _spki(public_key: Any) -> bytes:
    return public_key.public_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def private_key_for(cert_der: bytes) -> PrivateKey | None:
    """The key (made by :func:`key` in this process) of a certificate's public key, or None.

    For a server that must present a certificate known only as DER, a
    hand-edited one included (a flipped signature bit leaves the key alone).
    """
    try:
        public_key = x509.load_der_x509_certificate(cert_der).public_key()
    except ValueError:
        return None
    return _BY_PUBLIC_KEY.get(_spki(public_key))


def _generate(kind: str) -> PrivateKey:
    if kind.startswith("rsa"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(kind[3:]))
    if kind == "p192":
        return ec.generate_private_key(ec.SECP192R1())
    if kind == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "p384":
        return ec.generate_private_key(ec.SECP384R1())
    if kind == "p521":
        return ec.generate_private_key(ec.SECP521R1())
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if kind == "dsa2048":
        return dsa.generate_private_key(key_size=2048)
    raise ValueError(f"unknown key kind {kind!r}")


@dataclass(frozen=True)
class Issued:
    """A certificate with its private key."""

    cert: x509.Certificate
    key: PrivateKey

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM."""
        return self._key_bytes(serialization.Encoding.PEM)

    def key_der(self) -> bytes:
        """The private key as unencrypted PKCS#8 DER."""
        return self._key_bytes(serialization.Encoding.DER)

    def _key_bytes(self, encoding: serialization.Encoding) -> bytes:
        return self.key.private_bytes(
            encoding, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def with_der(self, der: bytes) -> Issued:
        """The same key with a certificate rebuilt from (hand-edited) DER."""
        return Issued(x509.load_der_x509_certificate(der), self.key)


def name(cn: str, *, org: str = "tlsc conformance") -> x509.Name:
    """The subject :func:`issue` gives ``cn``: O=``org``, CN=``cn``."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _key_usage(**bits: bool) -> x509.KeyUsage:
    names = (
        "digital_signature content_commitment key_encipherment data_encipherment "
        "key_agreement key_cert_sign crl_sign encipher_only decipher_only"
    ).split()
    return x509.KeyUsage(**{n: bits.get(n, False) for n in names})


_UNSET: Any = object()


def _aki(form: str, issuer: Issued) -> x509.AuthorityKeyIdentifier:
    if form == "keyid":
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key())
    if form == "issuer-serial":
        return x509.AuthorityKeyIdentifier(
            None, [x509.DirectoryName(issuer.cert.issuer)], issuer.cert.serial_number
        )
    raise ValueError(f"unknown authorityKeyIdentifier form {form!r}")


def issue(
    cn: str,
    *,
    issuer: Issued | None = None,
    key_kind: str = "p256",
    slot: int | None = 0,
    ca: bool = False,
    path_length: int | None = None,
    basic_constraints: bool | None = True,
    dns: Sequence[str] = (),
    ips: Sequence[str] = (),
    key_usage: dict[str, bool] | None = _UNSET,
    key_usage_critical: bool = True,
    eku: Sequence[x509.ObjectIdentifier] | None = _UNSET,
    not_before: dt.datetime,
    not_after: dt.datetime,
    hash_alg: hashes.HashAlgorithm | None = None,
    pss: bool = False,
    extra: Sequence[tuple[x509.ExtensionType, bool]] = (),
    signer_key: PrivateKey | None = None,
    key_ids: bool = True,
    ski: bool = True,
    ski_critical: bool = False,
    aki: str | None = "keyid",
    aki_critical: bool = False,
    subject: x509.Name | None = None,
    san: Sequence[x509.GeneralName] = (),
    san_critical: bool = False,
    name_constraints: x509.NameConstraints | None = None,
    name_constraints_critical: bool = True,
) -> Issued:
    """One certificate signed by ``issuer`` (self-signed when None).

    Defaults are those of a well-formed WebPKI-like certificate: a CA gets
    ``CA:TRUE`` and keyUsage keyCertSign+cRLSign, a leaf gets
    digitalSignature(+keyEncipherment for RSA) and EKU serverAuth, and every
    certificate a subjectKeyIdentifier and (unless self-signed) an
    authorityKeyIdentifier holding the issuer's key id.
    ``basic_constraints=None`` omits the extension; ``key_usage=None`` and
    ``eku=None`` likewise.  ``signer_key`` signs instead of the issuer's key
    (a wrong signature with a right-looking issuer).  ``hash_alg`` SHA-1 or MD5
    (which ``cryptography`` refuses) goes through :func:`resign`.

    RFC 5280 structure, for the strict-mode cases: ``ski=False`` omits the
    subjectKeyIdentifier; ``aki`` is ``"keyid"``, ``"issuer-serial"`` (an
    authorityKeyIdentifier without a key id) or None (omitted); ``key_ids=False``
    omits both.  ``subject`` replaces the ``O=tlsc conformance,CN=cn`` name
    (``x509.Name([])`` for an empty one).  ``san`` adds general names of any
    type after ``dns``/``ips``; ``name_constraints`` adds that extension.
    """
    k = key(key_kind, slot)
    if subject is None:
        subject = name(cn)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(k.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    if basic_constraints is not None:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=ca, path_length=path_length if ca else None),
            critical=basic_constraints,
        )
    if key_usage is _UNSET:
        if ca:
            key_usage = {"key_cert_sign": True, "crl_sign": True, "digital_signature": True}
        else:
            key_usage = {"digital_signature": True}
            if key_kind.startswith("rsa"):
                key_usage["key_encipherment"] = True
    if key_usage is not None:
        builder = builder.add_extension(_key_usage(**key_usage), critical=key_usage_critical)
    if eku is _UNSET:
        eku = None if ca else (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH)
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    names += list(san)
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=san_critical)
    if key_ids and ski:
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(k.public_key()), critical=ski_critical
        )
    if key_ids and aki is not None and issuer is not None:
        builder = builder.add_extension(_aki(aki, issuer), critical=aki_critical)
    if name_constraints is not None:
        builder = builder.add_extension(name_constraints, critical=name_constraints_critical)
    for ext, critical in extra:
        builder = builder.add_extension(ext, critical=critical)
    signer = signer_key if signer_key is not None else (issuer.key if issuer else k)
    weak = hash_alg.name if isinstance(hash_alg, (hashes.SHA1, hashes.MD5)) else None
    algorithm = hashes.SHA256() if weak or hash_alg is None else hash_alg
    if isinstance(signer, ed25519.Ed25519PrivateKey):
        cert = builder.sign(signer, None)
    elif pss and isinstance(signer, rsa.RSAPrivateKey):
        cert = builder.sign(
            signer,
            algorithm,
            rsa_padding=padding.PSS(mgf=padding.MGF1(algorithm), salt_length=algorithm.digest_size),
        )
    else:
        cert = builder.sign(signer, algorithm)
    if weak:
        return _resign(Issued(cert, k), signer, weak)
    return Issued(cert, k)


@dataclass(frozen=True)
class Chain:
    """A root, an intermediate under it and a server's leaf under that (see :func:`chain`)."""

    root: Issued
    inter: Issued
    leaf: Issued

    @property
    def ders(self) -> list[bytes]:
        """What the server sends: the leaf then the intermediate, DER."""
        return [self.leaf.der, self.inter.der]

    def client(self, key_kind: str = "p256", **issue_options: Any) -> Issued:
        """A client certificate from this chain's intermediate: EKU clientAuth, valid
        like the leaf, a key of its own (slot 24); ``issue_options`` override."""
        for option, value in (
            ("slot", 24),
            ("eku", (ExtendedKeyUsageOID.CLIENT_AUTH,)),
            ("not_before", self.leaf.cert.not_valid_before_utc),
            ("not_after", self.leaf.cert.not_valid_after_utc),
        ):
            issue_options.setdefault(option, value)
        return issue("client", issuer=self.inter, key_kind=key_kind, **issue_options)


def chain(
    cn: str = "server.test",
    *,
    root_kind: str = "rsa2048",
    inter_kind: str = "rsa2048",
    leaf_kind: str = "rsa2048",
    dns: Sequence[str] | None = None,
    ips: Sequence[str] = ("192.0.2.1",),
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> Chain:
    """root -> intermediate -> a server leaf for ``cn`` (and ``dns``, ``ips``), valid now.

    The three keys are of the kinds asked for, in slots 21, 22 and 23 (apart
    from the conformance battery's), so chains asked for with the same kinds
    share their keys and names: one root, however often a test asks.  The
    leaf is for servers only (EKU serverAuth).  Validity: from a day ago for
    30 days, unless ``not_before``/``not_after`` say otherwise.
    """
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    span = {"not_before": not_before or now - DAY, "not_after": not_after or now + 30 * DAY}
    root = issue(f"Root {root_kind}", key_kind=root_kind, slot=21, ca=True, **span)
    inter = issue(f"Inter {inter_kind}", issuer=root, key_kind=inter_kind, slot=22, ca=True,
                  **span)
    leaf = issue(cn, issuer=inter, key_kind=leaf_kind, slot=23, dns=(cn,) if dns is None else dns,
                 ips=ips, eku=(ExtendedKeyUsageOID.SERVER_AUTH,), **span)
    return Chain(root, inter, leaf)


def unknown_extension(oid: str = "1.3.6.1.4.1.55555.1") -> x509.UnrecognizedExtension:
    """An extension no verifier knows (private arc), content ASN.1 NULL."""
    return x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), b"\x05\x00")


# -- hand-made DER ------------------------------------------------------------


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def der_tlv(tag: int, content: bytes) -> bytes:
    """One DER element."""
    return bytes([tag]) + _der_length(len(content)) + content


def _der_split(element: bytes) -> tuple[bytes, bytes]:
    """(content of the first element, the bytes after it)."""
    first = element[1]
    if first < 0x80:
        start, length = 2, first
    else:
        n = first & 0x7F
        start, length = 2 + n, int.from_bytes(element[2 : 2 + n], "big")
    return element[start : start + length], element[start + length :]


#: AlgorithmIdentifier DER for the signature algorithms :func:`resign` swaps between.
ALG = {
    ("rsa", "sha256"): bytes.fromhex("300d06092a864886f70d01010b0500"),
    ("rsa", "sha1"): bytes.fromhex("300d06092a864886f70d0101050500"),
    ("rsa", "md5"): bytes.fromhex("300d06092a864886f70d0101040500"),
    ("ec", "sha256"): bytes.fromhex("300a06082a8648ce3d040302"),
    ("ec", "sha1"): bytes.fromhex("300906072a8648ce3d0401"),
}


def resign(issued: Issued, issuer: Issued, digest: str) -> Issued:
    """``issued`` re-signed by ``issuer`` with ``digest`` ("sha1" or "md5").

    ``cryptography`` will not sign a certificate with a weak hash, so the TBS
    is rewritten by hand: swap the AlgorithmIdentifier, sign, reassemble.
    ``issued`` must have been signed with SHA-256 by a key of the same type.
    """
    return _resign(issued, issuer.key, digest)


def _resign(issued: Issued, signer: PrivateKey, digest: str) -> Issued:
    family = "rsa" if isinstance(signer, rsa.RSAPrivateKey) else "ec"
    old, new = ALG[(family, "sha256")], ALG[(family, digest)]
    tbs_content, _ = _der_split(issued.cert.tbs_certificate_bytes)
    if old not in tbs_content:
        raise ValueError("resign() needs a certificate signed with SHA-256")
    tbs = der_tlv(0x30, tbs_content.replace(old, new, 1))
    hash_alg = {"sha1": hashes.SHA1(), "md5": hashes.MD5()}[digest]
    if family == "rsa":
        signature = signer.sign(tbs, padding.PKCS1v15(), hash_alg)
    else:
        signature = signer.sign(tbs, ec.ECDSA(hash_alg))
    return issued.with_der(der_tlv(0x30, tbs + new + der_tlv(0x03, b"\x00" + signature)))


def corrupt_signature(der: bytes) -> bytes:
    """``der`` with one bit of its signature flipped: well-formed, wrongly signed."""
    out = bytearray(der)
    out[-8] ^= 0x01
    return bytes(out)


def _der_elements(content: bytes) -> list[bytes]:
    """The whole elements (tag, length and content) one after another in ``content``."""
    out = []
    while content:
        inner, rest = _der_split(content)
        out.append(content[: len(content) - len(rest)])
        content = rest
    return out


def _sign_tbs(tbs: bytes, signer: PrivateKey) -> bytes:
    """``signer``'s signature over ``tbs`` with SHA-256 (Ed25519: none), as issue() signs."""
    if isinstance(signer, ed25519.Ed25519PrivateKey):
        return signer.sign(tbs)
    if isinstance(signer, rsa.RSAPrivateKey):
        return signer.sign(tbs, padding.PKCS1v15(), hashes.SHA256())
    if isinstance(signer, ec.EllipticCurvePrivateKey):
        return signer.sign(tbs, ec.ECDSA(hashes.SHA256()))
    raise ValueError(f"cannot sign with {type(signer).__name__}")


def edit_tbs(
    issued: Issued, signer: Issued | None, edit: Callable[[list[bytes]], list[bytes]]
) -> Issued:
    """``issued`` with the fields of its TBSCertificate (DER elements) passed through ``edit``.

    For the certificates ``cryptography`` refuses to build (an extension
    twice, a curve spelled out): the TBS is taken apart, edited, and signed
    again by ``signer``'s key (None: ``issued``'s own, for a self-signed
    certificate) with the algorithm it was signed with (SHA-256 or Ed25519,
    not PSS).
    """
    tbs_content, _ = _der_split(issued.cert.tbs_certificate_bytes)
    tbs = der_tlv(0x30, b"".join(edit(_der_elements(tbs_content))))
    algorithm = _der_elements(_der_split(issued.cert.public_bytes(
        serialization.Encoding.DER))[0])[1]
    signature = _sign_tbs(tbs, (signer or issued).key)
    return issued.with_der(der_tlv(0x30, tbs + algorithm + der_tlv(0x03, b"\x00" + signature)))


def edit_extensions(
    issued: Issued, signer: Issued | None, edit: Callable[[list[bytes]], list[bytes]]
) -> Issued:
    """``issued`` with its extensions (DER ``Extension`` elements) passed through ``edit``."""

    def edit_fields(fields: list[bytes]) -> list[bytes]:
        at = next(i for i, f in enumerate(fields) if f[0] == 0xA3)
        extensions = _der_elements(_der_split(_der_split(fields[at])[0])[0])
        fields[at] = der_tlv(0xA3, der_tlv(0x30, b"".join(edit(extensions))))
        return fields

    return edit_tbs(issued, signer, edit_fields)


#: P-256's domain parameters spelled out (SEC 1 SpecifiedECDomain), as
#: ``openssl ecparam -name prime256v1 -param_enc explicit`` writes them.
P256_EXPLICIT = bytes.fromhex(
    "3081f7020101302c06072a8648ce3d0101022100ffffffff0000000100000000000000000000"
    "0000ffffffffffffffffffffffff305b0420ffffffff00000001000000000000000000000000"
    "fffffffffffffffffffffffc04205ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f6"
    "3bce3c3e27d2604b031500c49d360886e704936a6678e1139d26b7819f7e900441046b17d1f2"
    "e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c2964fe342e2fe1a7f9b8ee7"
    "eb4a7c0f9e162bce33576b315ececbb6406837bf51f5022100ffffffff00000000ffffffffff"
    "ffffffbce6faada7179e84f3b9cac2fc632551020101"
)


def explicit_curve(issued: Issued, signer: Issued | None) -> Issued:
    """``issued`` (a P-256 key) with its curve's parameters spelled out instead of named.

    RFC 5480 forbids it in certificates; OpenSSL's strict mode refuses it.
    """
    spki = issued.cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    algorithm, point = _der_elements(_der_split(spki)[0])
    oid = _der_elements(_der_split(algorithm)[0])[0]
    explicit = der_tlv(0x30, der_tlv(0x30, oid + P256_EXPLICIT) + point)
    return edit_tbs(issued, signer, lambda fields: [explicit if f == spki else f for f in fields])


def duplicate_extension(
    issued: Issued, signer: Issued | None, oid: x509.ObjectIdentifier
) -> Issued:
    """``issued`` carrying its ``oid`` extension twice (RFC 5280 4.2 forbids it)."""
    wanted = issued.cert.extensions.get_extension_for_oid(oid)
    ext_der = _extension_der(wanted)

    def edit(extensions: list[bytes]) -> list[bytes]:
        i = extensions.index(ext_der)
        return [*extensions[: i + 1], ext_der, *extensions[i + 1 :]]

    return edit_extensions(issued, signer, edit)


def _extension_der(ext: x509.Extension[x509.ExtensionType]) -> bytes:
    """The DER ``Extension`` element of ``ext`` as ``cryptography`` encodes it."""
    oid = x509.ObjectIdentifier(ext.oid.dotted_string)
    body = _oid_der(oid)
    if ext.critical:
        body += b"\x01\x01\xff"
    return der_tlv(0x30, body + der_tlv(0x04, ext.value.public_bytes()))


def _oid_der(oid: x509.ObjectIdentifier) -> bytes:
    arcs = [int(a) for a in oid.dotted_string.split(".")]
    out = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return der_tlv(0x06, bytes(out))


def garbled(der: bytes) -> bytes:
    """``der`` with its outline intact (tags, lengths, names) and its inside unreadable.

    Its first UTCTime becomes letters and the OID of its signature algorithm
    (in the TBSCertificate) an encoding no decoder accepts (a first byte of
    0x80): OpenSSL, Python's ssl and asn1crypto all refuse to load it, while
    the core's outline check (:func:`tlsc.der.tbs_names`) lets it through to
    the backend.  ``der`` must be signed with an algorithm of :data:`ALG`.
    """
    i = der.index(b"\x17\x0d")  # a UTCTime of 13 characters (a date before 2050)
    der = der[: i + 2] + b"notatimeatall" + der[i + 15 :]
    j = min(der.find(alg) for alg in ALG.values() if alg in der)
    k = j + 4  # the OID's first content byte: 30 LL 06 LL <content>
    return der[:k] + b"\x80" + der[k + 1 :]
