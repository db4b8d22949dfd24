"""Certificate factory for the tlslite backend tests.

Tests may use ``cryptography`` (the backend itself may not): it makes every
kind of certificate the verifier must accept or refuse.  Keys are cached per
process because generating RSA keys is the slow part.

A uniquely named module rather than ``conftest`` so that test files can
import it while other backends' test directories have conftests of their own.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = dt.datetime(2030, 6, 15, 12, 0, 0, tzinfo=dt.timezone.utc)
DAY = dt.timedelta(days=1)

_KEYS: dict[str, Any] = {}


def key(kind: str = "rsa") -> Any:
    """A cached private key: rsa, rsa2, rsa3, rsa1024, ec256, ec384, ed25519, dsa."""
    if kind not in _KEYS:
        if kind.startswith("rsa"):
            bits = 1024 if kind == "rsa1024" else 2048
            _KEYS[kind] = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        elif kind == "ec256" or kind.startswith("ec256-"):
            _KEYS[kind] = ec.generate_private_key(ec.SECP256R1())
        elif kind == "ec384":
            _KEYS[kind] = ec.generate_private_key(ec.SECP384R1())
        elif kind == "ed25519":
            _KEYS[kind] = ed25519.Ed25519PrivateKey.generate()
        elif kind == "dsa":
            _KEYS[kind] = dsa.generate_private_key(key_size=2048)
        else:
            raise ValueError(kind)
    return _KEYS[kind]


@dataclass
class Issued:
    cert: x509.Certificate
    key: Any

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tlsc tests"),
        ]
    )


_SERIAL = [1000]


def make_cert(
    cn: str,
    issuer: Issued | None = None,
    *,
    key_kind: str = "rsa",
    ca: bool | None = None,
    path_len: int | None = None,
    key_usage: set[str] | None = None,
    eku: list[Any] | None = None,
    san: list[str] | None = None,
    not_before: dt.datetime = NOW - 30 * DAY,
    not_after: dt.datetime = NOW + 30 * DAY,
    hash_alg: Any = "default",
    pss: bool = False,
    extra: list[tuple[x509.ExtensionType, bool]] = (),
    subject: x509.Name | None = None,
    key_ids: bool = True,
) -> Issued:
    """One certificate.  ``ca`` None means no basicConstraints at all.

    ``san`` entries that parse as IP addresses become iPAddress, others dNSName.
    ``issuer`` None means self-signed.  ``key_ids``: a subjectKeyIdentifier and
    (below a root) an authorityKeyIdentifier, as RFC 5280's strict rules want.
    """
    private = key(key_kind)
    subj = subject if subject is not None else name(cn)
    signer_key = issuer.key if issuer else private
    issuer_name = issuer.cert.subject if issuer else subj
    _SERIAL[0] += 1
    b = (
        x509.CertificateBuilder()
        .subject_name(subj)
        .issuer_name(issuer_name)
        .public_key(private.public_key())
        .serial_number(_SERIAL[0])
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    if ca is not None:
        b = b.add_extension(x509.BasicConstraints(ca=ca, path_length=path_len), critical=True)
    if key_usage is not None:
        flags = {
            f: f in key_usage
            for f in (
                "digital_signature",
                "content_commitment",
                "key_encipherment",
                "data_encipherment",
                "key_agreement",
                "key_cert_sign",
                "crl_sign",
            )
        }
        b = b.add_extension(
            x509.KeyUsage(**flags, encipher_only=False, decipher_only=False), critical=True
        )
    if eku is not None:
        b = b.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    if san is not None:
        entries: list[x509.GeneralName] = []
        for s in san:
            try:
                entries.append(x509.IPAddress(ipaddress.ip_address(s)))
            except ValueError:
                entries.append(x509.DNSName(s))
        b = b.add_extension(x509.SubjectAlternativeName(entries), critical=False)
    if key_ids:
        b = b.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(private.public_key()), critical=False
        )
        if issuer is not None:
            b = b.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
                critical=False,
            )
    for ext, critical in extra:
        b = b.add_extension(ext, critical=critical)
    if isinstance(signer_key, ed25519.Ed25519PrivateKey):
        cert = b.sign(signer_key, None)
    elif isinstance(hash_alg, (hashes.SHA1, hashes.MD5)):
        cert = _resign(b.sign(signer_key, hashes.SHA256()), signer_key, hash_alg)
    else:
        algo = hashes.SHA256() if hash_alg == "default" else hash_alg
        if pss:
            cert = b.sign(
                signer_key,
                algo,
                rsa_padding=padding.PSS(
                    mgf=padding.MGF1(algo), salt_length=padding.PSS.DIGEST_LENGTH
                ),
            )
        else:
            cert = b.sign(signer_key, algo)
    return Issued(cert, private)


def _resign(cert: x509.Certificate, signer_key: Any, hash_alg: Any) -> x509.Certificate:
    """Re-sign ``cert`` with a digest cryptography no longer signs certificates with."""
    from asn1crypto import x509 as a509
    from cryptography.hazmat.primitives.asymmetric import padding as pad

    parsed = a509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    prefix = "rsa" if isinstance(signer_key, rsa.RSAPrivateKey) else "ecdsa"
    algo = {"algorithm": f"{hash_alg.name}_{prefix}"}
    if prefix == "rsa":
        algo["parameters"] = None
    tbs = parsed["tbs_certificate"]
    tbs["signature"] = algo
    data = tbs.dump(force=True)
    if prefix == "rsa":
        sig = signer_key.sign(data, pad.PKCS1v15(), hash_alg)
    else:
        sig = signer_key.sign(data, ec.ECDSA(hash_alg))
    out = a509.Certificate(
        {"tbs_certificate": tbs, "signature_algorithm": algo, "signature_value": sig}
    )
    return x509.load_der_x509_certificate(out.dump())


def make_root(cn: str = "Test Root", **kw: Any) -> Issued:
    kw.setdefault("ca", True)
    kw.setdefault("key_usage", {"key_cert_sign", "crl_sign"})
    kw.setdefault("key_kind", "rsa")
    return make_cert(cn, None, **kw)


def make_inter(cn: str, issuer: Issued, **kw: Any) -> Issued:
    kw.setdefault("ca", True)
    kw.setdefault("key_usage", {"key_cert_sign", "crl_sign"})
    kw.setdefault("key_kind", "rsa2")
    return make_cert(cn, issuer, **kw)


def make_leaf(issuer: Issued | None, san: list[str] | None = None, **kw: Any) -> Issued:
    kw.setdefault("key_kind", "rsa3")
    kw.setdefault("key_usage", {"digital_signature", "key_encipherment"})
    kw.setdefault("eku", [ExtendedKeyUsageOID.SERVER_AUTH])
    kw.setdefault("ca", False)
    return make_cert("server.test", issuer, san=["server.test"] if san is None else san, **kw)


@dataclass
class PKI:
    root: Issued
    inter: Issued
    leaf: Issued

    @property
    def chain(self) -> list[bytes]:
        return [self.leaf.der, self.inter.der]


# -- live material: valid now, for real handshakes (the session tests) -----------------


def now_pki(key_root: str = "rsa", key_inter: str = "rsa2", key_leaf: str = "rsa3") -> PKI:
    """root -> intermediate -> server leaf (server.test, 192.0.2.1), valid now +/- one day."""
    now = dt.datetime.now(dt.timezone.utc)
    kw = {"not_before": now - DAY, "not_after": now + DAY}
    root = make_root(f"Live Root {key_root}", key_kind=key_root, **kw)
    inter = make_inter(f"Live Inter {key_inter}", root, key_kind=key_inter, **kw)
    leaf_ku = None if key_leaf.startswith("rsa") else {"digital_signature"}
    leaf = make_leaf(
        inter, san=["server.test", "192.0.2.1"], key_kind=key_leaf, key_usage=leaf_ku, **kw
    )
    return PKI(root, inter, leaf)


def client_identity(pki: PKI, kind: str, **kw: Any) -> Issued:
    """A client certificate (EKU clientAuth) issued by ``pki.inter``, valid now by default."""
    now = dt.datetime.now(dt.timezone.utc)
    kw.setdefault("eku", [ExtendedKeyUsageOID.CLIENT_AUTH])
    kw.setdefault("not_before", now - DAY)
    kw.setdefault("not_after", now + DAY)
    return make_cert(
        "client",
        pki.inter,
        key_kind={"rsa": "rsa", "ecdsa": "ec256", "ed25519": "ed25519"}[kind],
        ca=False,
        **kw,
    )


def key_bytes(k: Any, fmt: str) -> bytes:
    """A private key as PKCS#8, "pem" or "der"."""
    enc = serialization.Encoding.PEM if fmt == "pem" else serialization.Encoding.DER
    return k.private_bytes(enc, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
