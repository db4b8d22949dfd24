"""The verification rules OpenSSL does not enforce the way tlsc wants.

OpenSSL already builds the chain, checks signatures, basicConstraints and
pathLen, keyCertSign, unknown critical extensions, name constraints, RFC
5280's structure (strict mode: ``X509_V_FLAG_X509_STRICT``) and (during a
handshake) the ``ssl_server`` purpose.  What it does differently from tlsc's
rules (docs/tlsc.rst, "Verification"), or not at all, is decided here, in one
pure function used by *both* verification paths (the handshake's verify
callback and :func:`tlsc_openssl.verify_chain`) so that the two can never
disagree:

* validity dates, inclusive at both ends (RFC 5280).  OpenSSL treats the
  notAfter second itself as expired, so the dates are decided here: the
  handshake callback overrides OpenSSL's verdict with :func:`time_problem`,
  and :func:`tlsc_openssl.verify_chain` switches OpenSSL's check off;
* RSA keys under 2048 bits, EC keys under 224 bits and DSA keys (the
  anchor's included), MD5/SHA-1 (and MD2/MD4) signatures below the anchor,
  whatever OpenSSL's security level happens to be in the build at hand;
* the strict structural rules OpenSSL 3.0 has and later releases dropped
  (:func:`_structure_problem`: a CA's basicConstraints critical, an
  authorityKeyIdentifier *key id* below the anchor, an empty subject only with
  a critical subjectAltName), and no extension twice (OpenSSL refuses a
  repeated extension it knows, not one it does not);
* basicConstraints CA on every issuer below the anchor;
* keyUsage / extendedKeyUsage "where present" for a TLS server leaf (needed
  by :func:`verify_chain`, whose store context has no purpose set), or for a
  TLS client leaf when tlsd verifies client certificates;
* the server name, through :func:`tlsc.names.match_server_name` on the
  subjectAltName entries only: never OpenSSL's own host check, never the CN.

The function only reads a ``cryptography`` certificate; it knows nothing of
OpenSSL, which keeps it reusable and testable on its own.  A problem is a
:class:`tlsc.reasons.Reason` and an optional detail: the core owns the words.
"""

from __future__ import annotations

from datetime import datetime

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from tlsc.names import match_server_name
from tlsc.reasons import Reason, not_valid_for

__all__ = [
    "CLIENT_AUTH",
    "MIN_RSA_BITS",
    "Problem",
    "SERVER_AUTH",
    "check_certificate",
    "name_mismatch",
    "time_problem",
    "usage_problem",
]

MIN_RSA_BITS = 2048
#: P-192 and smaller curves give under 112 bits of security, as RSA under 2048 bits.
MIN_EC_BITS = 224

#: Why a certificate is refused: the reason code and what to say after its words.
Problem = tuple[Reason, str | None]
SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH
CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH
_NAMES = {SERVER_AUTH: "serverAuth", CLIENT_AUTH: "clientAuth"}

#: Signature algorithms refused below the anchor whose hash ``cryptography``
#: may not even be able to name (MD2, MD4), besides MD5 and SHA-1 found through
#: ``signature_hash_algorithm``.
_WEAK_SIGNATURE_OIDS = {
    "1.2.840.113549.1.1.2": "MD2",  # md2WithRSAEncryption
    "1.2.840.113549.1.1.3": "MD4",  # md4WithRSAEncryption
    "1.2.840.113549.1.1.4": "MD5",  # md5WithRSAEncryption
    "1.2.840.113549.1.1.5": "SHA-1",  # sha1WithRSAEncryption
    "1.3.14.3.2.29": "SHA-1",  # sha1WithRSASignature (OIW)
    "1.2.840.10045.4.1": "SHA-1",  # ecdsa-with-SHA1
    "1.2.840.10040.4.3": "SHA-1",  # dsa-with-sha1
    "1.3.14.3.2.27": "SHA-1",  # dsaWithSHA1 (OIW)
}


def _weak_signature_hash(cert: x509.Certificate) -> str | None:
    """The name of the weak hash ``cert`` was signed with, or None if acceptable."""
    weak = _WEAK_SIGNATURE_OIDS.get(cert.signature_algorithm_oid.dotted_string)
    if weak:
        return weak
    try:
        algorithm = cert.signature_hash_algorithm  # RSA-PSS: the hash from its parameters
    except UnsupportedAlgorithm:
        return None  # OpenSSL checked the signature itself; nothing weak we know of
    if isinstance(algorithm, hashes.MD5):
        return "MD5"
    if isinstance(algorithm, hashes.SHA1):
        return "SHA-1"
    return None


def _extension(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.ExtensionType | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def name_mismatch(cert: x509.Certificate, server_name: str) -> Problem | None:
    """The reason ``cert`` is not valid for ``server_name``, or None if it is.

    subjectAltName dNSName and iPAddress only; a certificate without a SAN
    matches nothing (the CN is never consulted).
    """
    san = _extension(cert, x509.SubjectAlternativeName)
    dns_names: list[str] = []
    ip_addresses: list = []
    if isinstance(san, x509.SubjectAlternativeName):
        dns_names = san.get_values_for_type(x509.DNSName)
        ip_addresses = san.get_values_for_type(x509.IPAddress)
    if match_server_name(server_name, dns_names, ip_addresses):
        return None
    return Reason.NAME_MISMATCH, not_valid_for(server_name)


def time_problem(cert: x509.Certificate, now: datetime) -> Problem | None:
    """Why ``cert`` is not valid at ``now``: notBefore..notAfter, both inclusive."""
    if now < cert.not_valid_before_utc:
        return Reason.NOT_YET_VALID, None
    if now > cert.not_valid_after_utc:
        return Reason.EXPIRED, None
    return None


def _key_problem(cert: x509.Certificate) -> Problem | None:
    """Why ``cert``'s key is too weak to be trusted anywhere in a chain, or None."""
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return Reason.MALFORMED_CERTIFICATE, "unsupported or malformed public key"
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        return Reason.WEAK_KEY, f"RSA {key.key_size} bits (minimum {MIN_RSA_BITS})"
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.key_size < MIN_EC_BITS:
        return Reason.WEAK_KEY, f"EC {key.curve.key_size} bits (minimum {MIN_EC_BITS})"
    if isinstance(key, dsa.DSAPublicKey):
        return Reason.WEAK_KEY, "DSA keys are not accepted"
    return None


def _strength_problem(cert: x509.Certificate) -> Problem | None:
    problem = _key_problem(cert)
    if problem:
        return problem
    weak = _weak_signature_hash(cert)
    if weak:
        return Reason.WEAK_SIGNATURE, weak
    return None


#: Netscape's certificate type (obsolete, still honoured by OpenSSL's TLS purposes): a
#: leaf that carries it must name its TLS role (bit 1 SSL server, bit 0 SSL client).
NS_CERT_TYPE = x509.ObjectIdentifier("2.16.840.1.113730.1.1")
_NS_BITS = {SERVER_AUTH: 0x40, CLIENT_AUTH: 0x80}


def _ns_cert_type(cert: x509.Certificate) -> int | None:
    """The first byte of the leaf's nsCertType bits, or None when it has none."""
    try:
        ext = cert.extensions.get_extension_for_oid(NS_CERT_TYPE).value
    except x509.ExtensionNotFound:
        return None
    der = ext.value if isinstance(ext, x509.UnrecognizedExtension) else b""
    if len(der) < 3 or der[0] != 0x03:
        raise ValueError("malformed nsCertType")
    return der[3] if der[1] >= 2 else 0


def usage_problem(
    cert: x509.Certificate, depth: int, purpose: x509.ObjectIdentifier
) -> Problem | None:
    """keyUsage/extendedKeyUsage, where present, must allow the use.

    So must a leaf's nsCertType, as OpenSSL's ``sslserver``/``sslclient``
    purposes (and so Python's ``ssl``) require.
    """
    eku = _extension(cert, x509.ExtendedKeyUsage)
    if isinstance(eku, x509.ExtendedKeyUsage) and purpose not in eku:
        # Same rule as OpenSSL's "sslserver"/"sslclient" purposes, CAs included:
        # anyExtendedKeyUsage alone does not make a TLS server (or client).
        return Reason.EXTENDED_KEY_USAGE, f"extendedKeyUsage does not allow {_NAMES[purpose]}"
    ku = _extension(cert, x509.KeyUsage)
    if depth == 0:
        ns = _ns_cert_type(cert)
        if ns is not None and not ns & _NS_BITS[purpose]:
            return Reason.EXTENDED_KEY_USAGE, f"nsCertType does not allow {_NAMES[purpose]}"
        if isinstance(ku, x509.KeyUsage) and not (
            ku.digital_signature or ku.key_encipherment or ku.key_agreement
        ):
            return Reason.KEY_USAGE, "keyUsage of the leaf allows no TLS use"
        return None
    bc = _extension(cert, x509.BasicConstraints)
    if not (isinstance(bc, x509.BasicConstraints) and bc.ca):
        return Reason.NOT_A_CA, None
    if isinstance(ku, x509.KeyUsage) and not ku.key_cert_sign:
        # OpenSSL's check_ca() reports this as an invalid CA, and so do we.
        return Reason.NOT_A_CA, "keyUsage does not allow keyCertSign"
    return None


def _repeated_extension(cert: x509.Certificate) -> Problem | None:
    """Why ``cert`` is refused for carrying an extension twice (RFC 5280 4.2), or None."""
    try:
        _ = cert.extensions  # cryptography parses them all, and refuses a repeated one
    except x509.DuplicateExtension as e:
        return Reason.INVALID_CERTIFICATE, f"extension {e.oid.dotted_string} appears twice"
    return None


def _structure_problem(cert: x509.Certificate, depth: int, is_anchor: bool) -> Problem | None:
    """What ``cert`` breaks of OpenSSL 3.0's strict rules that newer OpenSSL no longer checks.

    Applied, as OpenSSL does, to every certificate of a chain longer than one
    (a trusted leaf alone is exempt); the authorityKeyIdentifier rule spares
    the certificate that ends the chain.
    """
    if is_anchor and depth == 0:
        return None
    bc = _extension(cert, x509.BasicConstraints)
    if isinstance(bc, x509.BasicConstraints) and bc.ca:
        if not cert.extensions.get_extension_for_class(x509.BasicConstraints).critical:
            return Reason.INVALID_CERTIFICATE, "basicConstraints of a CA not marked critical"
    if not is_anchor:
        aki = _extension(cert, x509.AuthorityKeyIdentifier)
        if not (isinstance(aki, x509.AuthorityKeyIdentifier) and aki.key_identifier):
            return Reason.INVALID_CERTIFICATE, "no authorityKeyIdentifier key identifier"
    if not cert.subject:
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        except x509.ExtensionNotFound:
            return None  # OpenSSL's own strict check refuses it
        if not san.critical:
            return Reason.INVALID_CERTIFICATE, "empty subject and a non-critical subjectAltName"
    return None


def check_certificate(
    cert: x509.Certificate,
    depth: int,
    *,
    is_anchor: bool,
    server_name: str | None,
    now: datetime,
    purpose: x509.ObjectIdentifier = SERVER_AUTH,
) -> Problem | None:
    """Why ``cert`` at ``depth`` (0 = the peer's leaf) is unacceptable, or None.

    ``purpose``: the extendedKeyUsage the chain must allow where it names any,
    :data:`SERVER_AUTH` (tlsc judging a server) or :data:`CLIENT_AUTH` (tlsd
    judging a client certificate, which is never name-checked).

    ``is_anchor``: the certificate is one of the configured trust anchors, so
    the chain ends here; its signature and usage are not judged, but its key
    is (an anchor's self-signature is never checked, but its key must meet
    the same strength rules), its dates are, and a leaf that is itself an
    anchor must still carry the server name.
    ``now`` must be timezone-aware (UTC).
    """
    try:
        problem = _repeated_extension(cert) or time_problem(cert, now)
        if problem is None:
            problem = _structure_problem(cert, depth, is_anchor)
        if problem is None and is_anchor:
            problem = _key_problem(cert)
        if problem is None and not is_anchor:
            problem = _strength_problem(cert) or usage_problem(cert, depth, purpose)
        if problem is None and depth == 0 and server_name is not None:
            problem = name_mismatch(cert, server_name)
    except ValueError:
        # cryptography refuses to parse an extension OpenSSL tolerated.
        return Reason.MALFORMED_CERTIFICATE, "malformed certificate extension"
    return problem
