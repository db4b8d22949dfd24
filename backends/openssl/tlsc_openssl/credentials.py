"""Parsing what the core read from CERTFILE and KEYFILE (the anchors: :mod:`.verify`).

The core hands over bytes; turning them into certificates and keys is the
backend's job, and every problem with them is the user's configuration:
:class:`ConfigError` (exit 96) with a reason.  Messages name the file or the
position, never the content: a key's bytes must never reach a log.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from tlsc.session import ConfigError

__all__ = ["PrivateKey", "load_client_credentials", "parse_certificates"]

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey

_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def parse_certificates(data: bytes) -> list[x509.Certificate]:
    """The certificates in ``data``: one DER certificate, or PEM blocks.

    Raises ValueError when there is none.
    """
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificates(data)
    return [x509.load_der_x509_certificate(data)]


def _load_key(data: bytes) -> PrivateKey:
    try:
        if b"-----BEGIN" in data:
            key = serialization.load_pem_private_key(data, password=None)
        else:
            key = serialization.load_der_private_key(data, password=None)
    except TypeError:
        raise ConfigError("private key is encrypted; an unencrypted key is required") from None
    except (ValueError, UnsupportedAlgorithm):
        # ``from None``: the library's message is not shown; the key never is.
        raise ConfigError("private key: not a valid DER or PEM private key") from None
    if not isinstance(
        key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    ):
        raise ConfigError(
            f"private key: unsupported key type {type(key).__name__.removeprefix('_')}"
            " (RSA, ECDSA or Ed25519 required)"
        )
    return key


def load_client_credentials(
    cert_chain: Sequence[bytes], private_key: bytes | None, role: str = "client"
) -> tuple[list[x509.Certificate], PrivateKey]:
    """A certificate chain (leaf first) and its key, checked to match.

    ``role`` ("client" for tlsc -y, "server" for tlsd) only words the messages.
    """
    if not cert_chain:
        raise ConfigError(f"{role} certificate: no certificate given")
    if private_key is None:
        raise ConfigError(f"{role} certificate: no private key given")
    chain: list[x509.Certificate] = []
    for i, data in enumerate(cert_chain, 1):
        try:
            chain.extend(parse_certificates(data))
        except ValueError:
            raise ConfigError(f"{role} certificate #{i}: not a valid certificate") from None
    key = _load_key(private_key)
    try:
        leaf_spki = chain[0].public_key().public_bytes(*_SPKI)
    except (ValueError, UnsupportedAlgorithm):
        raise ConfigError(f"{role} certificate: unsupported public key") from None
    if leaf_spki != key.public_key().public_bytes(*_SPKI):
        raise ConfigError(f"private key does not match the {role} certificate")
    return chain, key
