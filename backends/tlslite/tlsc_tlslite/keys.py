"""Certificate chain and private key (tlsc -y, tlsd) for tlslite-ng, in pure Python.

tlslite-ng only reads PEM keys, so a DER key is wrapped in PEM armour here
(base64, no crypto library).  Every failure is a :class:`ConfigError` whose
message names the file role and the problem, never a byte of the key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tlsc.session import ConfigError
from tlslite.utils.keyfactory import parsePEMKey
from tlslite.utils.pem import pem
from tlslite.x509 import X509
from tlslite.x509certchain import X509CertChain

__all__ = ["load_credentials"]

#: DER private keys come as PKCS#8, PKCS#1 (RSA) or SEC 1 (EC); tlslite tells
#: them apart by the PEM label only.
_DER_LABELS = ("PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY")
_PROBE = b"tlsc key check"


def _parse_key(data: bytes) -> Any:
    text: str | None
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        text = None
    if text is not None and "-----BEGIN" in text:
        if "ENCRYPTED" in text:
            raise ConfigError("KEYFILE: encrypted private keys are not supported")
        try:
            return parsePEMKey(text, private=True, implementations=["python"])
        except Exception:  # tlslite raises SyntaxError, ValueError, ...
            raise ConfigError("KEYFILE: not a valid private key") from None
    for label in _DER_LABELS:
        try:
            return parsePEMKey(
                pem(bytearray(data), label), private=True, implementations=["python"]
            )
        except Exception:
            continue
    raise ConfigError("KEYFILE: not a valid private key (PEM or DER)")


def _sign_args(key_type: str) -> dict[str, Any]:
    if key_type in ("rsa", "rsa-pss"):
        return {"rsaScheme": "PSS", "hAlg": "sha256", "sLen": 32}
    if key_type == "ecdsa":
        return {"hAlg": "sha256"}
    return {}


def _key_type(key: Any) -> str:
    return str(getattr(key, "key_type", "")).lower()


def load_credentials(cert_chain: Sequence[bytes], private_key: bytes) -> tuple[X509CertChain, Any]:
    """The (chain, key) pair tlslite's handshakes want (either role), checked to match.

    The match is proven by signing a probe with the key and verifying it with
    the leaf's public key: that works the same for every key type and cannot
    be fooled by a key that merely has the same type or size.
    """
    if not cert_chain:
        raise ConfigError("CERTFILE: no certificate found")
    certs = []
    for depth, der in enumerate(cert_chain):
        cert = X509()
        try:
            cert.parseBinary(bytearray(der))
        except Exception:
            raise ConfigError(f"CERTFILE: certificate {depth} is not usable by tlslite") from None
        certs.append(cert)
    chain = X509CertChain(certs)
    key = _parse_key(private_key)
    leaf_type = str(certs[0].certAlg).lower()
    ktype = _key_type(key)
    if leaf_type not in ("rsa", "rsa-pss", "ecdsa", "ed25519", "ed448"):
        raise ConfigError(f"CERTFILE: unsupported key type {certs[0].certAlg}")
    if ktype != leaf_type and not (ktype == "rsa" and leaf_type == "rsa-pss"):
        raise ConfigError("KEYFILE: the private key does not match the certificate in CERTFILE")
    try:
        args = _sign_args(ktype)
        signature = key.hashAndSign(bytearray(_PROBE), **args)
        ok = certs[0].publicKey.hashAndVerify(signature, bytearray(_PROBE), **args)
    except Exception:  # e.g. curve mismatch inside python-ecdsa
        ok = False
    if not ok:
        raise ConfigError("KEYFILE: the private key does not match the certificate in CERTFILE")
    return chain, key
