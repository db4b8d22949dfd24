"""X.509 chain and name verification in pure Python (docs/tlsc.rst, "Verification").

tlslite-ng verifies no certificate at all: its ``Checker`` only compares
fingerprints.  This module is the whole of what makes a ``tlslite`` connection
authenticated, so it is deliberately small, strict and standalone:
:func:`verify_chain` is the very function the handshake calls (see
``_tlslite_private.VerifyingConnection``), and the tests call it directly.

Parsing is asn1crypto's; signatures are checked with tlslite-ng's RSA code
(PKCS#1 v1.5 and PSS) and python-ecdsa (ECDSA, Ed25519, Ed448).  Nothing here
imports ``cryptography``.

The rules, and the order they are applied in, follow OpenSSL's
``X509_verify_cert`` so that both backends give the same verdict *and* the
same reason when a chain has a single fault:

1. build the one path OpenSSL builds (:func:`_build`: anchors first, then the
   certificates sent; candidates by name, key identifier and key type, the
   first valid now preferred; partial chains: any anchor ends the path, the
   leaf itself included);
2. extensions: unknown critical extensions, an extension twice,
   basicConstraints CA and pathLenConstraint for every issuer,
   keyUsage/extendedKeyUsage, then RFC 5280's structure as OpenSSL's strict
   mode (``X509_V_FLAG_X509_STRICT``) checks it (:func:`_structure_problem`);
3. security level: RSA keys under 2048 bits, EC keys under 224 bits and DSA
   keys anywhere, the anchor included; MD5/SHA-1 signatures below the anchor;
4. name constraints (:mod:`.constraints`), on the names of every certificate
   below the constraining CA, never on a CN;
5. the server name (subjectAltName only, through :mod:`tlsc.names`);
6. from the anchor down: each signature, then each validity period.

Every failure raises :class:`ChainError` (a :class:`VerificationError`) with
the core's reason (:mod:`tlsc.reasons`: the words are the core's, what follows
them is ours) and an ``alert``, the TLS alert to send, mapped as OpenSSL maps
verify errors.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import ecdsa
import ecdsa.util
from asn1crypto import x509
from tlsc.anchors import TrustAnchors
from tlsc.names import match_server_name
from tlsc.reasons import Reason, not_valid_for
from tlsc.session import VerificationError, Warn
from tlslite.utils.python_rsakey import Python_RSAKey

from . import constraints

__all__ = ["ChainError", "TrustStore", "load_anchor", "verify_chain"]

#: Longest path we build (intermediates + leaf); OpenSSL's default depth is 100,
#: but real chains are 2-4 long and every step costs pure-Python signature checks.
MAX_DEPTH = 10
MIN_RSA_BITS = 2048
#: P-192 and smaller curves give under 112 bits of security, as RSA under 2048 bits.
MIN_EC_BITS = 224
WEAK_HASHES = frozenset({"md2", "md5", "sha1"})
_HASH_NAMES = {"md2": "MD2", "md5": "MD5", "sha1": "SHA-1"}

#: Critical extensions we enforce; any other critical extension is refused.
HANDLED_CRITICAL = frozenset(
    {"basic_constraints", "key_usage", "extended_key_usage", "subject_alt_name",
     "name_constraints"}
) | frozenset(
    # Known to OpenSSL, which accepts them critical and acts on them only when
    # asked for policy (X509_V_FLAG_POLICY_CHECK) or CRL checks, as tlsc never
    # does: same verdict here as every backend's, by the same inaction.
    {"certificate_policies", "policy_constraints", "policy_mappings", "inhibit_any_policy",
     "crl_distribution_points", "ocsp_no_check", "netscape_certificate_type"}
)
#: Netscape's certificate type bit a leaf must have, when it has the extension at
#: all, for OpenSSL's sslserver/sslclient purposes (bit 1 SSL server, bit 0 SSL client).
_NS_CERT_TYPE = "2.16.840.1.113730.1.1"
_NS_BITS = {"server": 0x40, "client": 0x80}

#: keyUsage bits that allow a server leaf to be used for TLS (OpenSSL accepts any of them).
LEAF_KEY_USAGES = frozenset({"digital_signature", "key_encipherment", "key_agreement"})
#: keyUsage bits that allow a *client* leaf to authenticate (OpenSSL's SSL-client purpose).
CLIENT_LEAF_KEY_USAGES = frozenset({"digital_signature", "key_agreement"})
#: extendedKeyUsage values that allow serving TLS.  anyExtendedKeyUsage alone is
#: NOT enough: OpenSSL's SSL-server purpose check refuses it (checked against
#: OpenSSL 3 through the openssl backend's library), and both backends must
#: give the same verdict.  Add "any_extended_key_usage" here to follow RFC
#: 5280's reading instead.
SERVER_EKUS = frozenset({"server_auth"})
#: The same for a TLS client certificate (``tlsd -y``), anyExtendedKeyUsage alike.
CLIENT_EKUS = frozenset({"client_auth"})

#: What differs between verifying a server's chain and a client's (``tlsd -Y``/``-y``):
#: (leaf keyUsage bits, EKU values, EKU name for messages).  The name check is
#: the caller's business: a client certificate is never checked against a name.
_PURPOSES = {
    "server": (LEAF_KEY_USAGES, SERVER_EKUS, "serverAuth"),
    "client": (CLIENT_LEAF_KEY_USAGES, CLIENT_EKUS, "clientAuth"),
}

_KU_NAMES = {
    "digital_signature": "digitalSignature",
    "key_encipherment": "keyEncipherment",
    "key_agreement": "keyAgreement",
}

_HASHES = {
    "sha224": hashlib.sha224,
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
    "sha1": hashlib.sha1,
}


class ChainError(VerificationError):
    """A verification failure, with the TLS alert that reports it to the server."""

    def __init__(
        self, reason: Reason, detail: str | None = None, alert: str = "bad_certificate"
    ) -> None:
        super().__init__(reason, detail)
        self.alert = alert


@dataclass(frozen=True)
class _Cert:
    der: bytes
    cert: x509.Certificate

    @property
    def subject(self) -> x509.Name:
        return self.cert.subject

    @property
    def issuer(self) -> x509.Name:
        return self.cert.issuer

    @property
    def spki_der(self) -> bytes:
        return self.cert["tbs_certificate"]["subject_public_key_info"].dump()

    def describe(self) -> str:
        try:
            return self.subject.human_friendly
        except Exception:  # only used for messages
            return "<unprintable subject>"


def _parse(der: bytes) -> _Cert:
    """Parse ``der`` fully now, so that lazy asn1crypto errors cannot surface later."""
    cert = x509.Certificate.load(bytes(der), strict=True)
    _ = cert.native  # forces every field to parse
    return _Cert(bytes(der), cert)


def load_anchor(der: bytes) -> _Cert | None:
    """A trust anchor, or None if ``der`` is not a certificate we can read."""
    try:
        return _parse(der)
    except Exception:  # asn1crypto raises many types for bad input
        return None


# -- signatures -------------------------------------------------------------------


class _Unsupported(Exception):
    """A signature or key algorithm we do not implement."""


def _signature_hash(cert: x509.Certificate) -> str | None:
    """The digest a certificate's signature uses (None for the EdDSA algorithms)."""
    algo = cert["signature_algorithm"]
    if algo.signature_algo in ("ed25519", "ed448"):
        return None
    return algo.hash_algo


def _signature_ok(child: _Cert, issuer: _Cert) -> bool:
    """Does ``issuer``'s key verify ``child``'s signature?  Raises _Unsupported."""
    cert = child.cert
    algo = cert["signature_algorithm"]
    if algo.dump() != cert["tbs_certificate"]["signature"].dump():
        return False  # outer and inner algorithm must agree (RFC 5280 4.1.1.2)
    sig_algo = algo.signature_algo
    data = cert["tbs_certificate"].dump()
    signature = cert["signature_value"].native
    pki = issuer.cert["tbs_certificate"]["subject_public_key_info"]
    key_algo = pki.algorithm
    if sig_algo in ("rsassa_pkcs1v15", "rsassa_pss"):
        if key_algo not in ("rsa", "rsassa_pss"):
            return False
        numbers = pki["public_key"].parsed
        key = Python_RSAKey(numbers["modulus"].native, numbers["public_exponent"].native)
        hash_name = algo.hash_algo
        if hash_name not in _HASHES and hash_name != "md5":
            raise _Unsupported(f"hash {hash_name}")
        if sig_algo == "rsassa_pkcs1v15":
            return bool(
                key.hashAndVerify(bytearray(signature), bytearray(data), "PKCS1", hash_name)
            )
        params = algo["parameters"]
        mgf = params["mask_gen_algorithm"]
        if (
            mgf["algorithm"].native != "mgf1"
            or mgf["parameters"]["algorithm"].native != hash_name
            or params["trailer_field"].native != "trailer_field_bc"
        ):
            raise _Unsupported("RSA-PSS parameters")
        salt = params["salt_length"].native
        return bool(
            key.hashAndVerify(bytearray(signature), bytearray(data), "PSS", hash_name, salt)
        )
    if sig_algo == "ecdsa":
        if key_algo != "ec":
            return False
        hash_name = algo.hash_algo
        if hash_name not in _HASHES:
            raise _Unsupported(f"hash {hash_name}")
        vk = _ecdsa_key(issuer)
        try:
            return bool(
                vk.verify(
                    signature,
                    data,
                    hashfunc=_HASHES[hash_name],
                    sigdecode=ecdsa.util.sigdecode_der,
                )
            )
        except (ecdsa.BadSignatureError, ecdsa.der.UnexpectedDER, ValueError):
            return False
    if sig_algo in ("ed25519", "ed448"):
        if key_algo != sig_algo:
            return False
        vk = _ecdsa_key(issuer)
        try:
            return bool(vk.verify(signature, data))
        except (ecdsa.BadSignatureError, ValueError):
            return False
    raise _Unsupported(sig_algo)


def _ecdsa_key(issuer: _Cert) -> ecdsa.VerifyingKey:
    try:
        return ecdsa.VerifyingKey.from_der(issuer.spki_der)
    except Exception as e:  # unknown curve, bad point...
        raise _Unsupported(f"public key ({e})") from None


# -- the checks ---------------------------------------------------------------------


def _is_self_issued(c: _Cert) -> bool:
    return c.subject == c.issuer


def _basic_constraints(c: _Cert) -> tuple[bool, int | None]:
    bc = c.cert.basic_constraints_value
    if bc is None:
        return False, None
    return bool(bc["ca"].native), bc["path_len_constraint"].native


def _check_extensions(path: list[_Cert], anchor: _Cert | None, peer: str = "server") -> None:
    """Critical extensions, CA flags, path lengths and key purposes (OpenSSL step 2).

    ``peer`` ("server" or "client") is whose chain it is: it selects the purpose.

    ``path`` is leaf first and excludes the anchor; ``anchor`` is None when the
    leaf itself is trusted.  Issuers are ``path[1:]`` plus the anchor.
    """
    everything = path + ([anchor] if anchor is not None else [])
    for depth, c in enumerate(everything):
        twice = _repeated_extension(c)
        if twice:
            raise ChainError(
                Reason.INVALID_CERTIFICATE,
                f"{c.describe()} (depth {depth}) carries the {twice} extension twice",
            )
        unknown = sorted(str(e) for e in c.cert.critical_extensions - HANDLED_CRITICAL)
        if unknown:
            raise ChainError(
                Reason.CRITICAL_EXTENSION,
                f"{', '.join(unknown)} at depth {depth}",
                "certificate_unknown",
            )
    leaf_usages, ekus, eku_name = _PURPOSES[peer]
    leaf = everything[0]
    ku = leaf.cert.key_usage_value
    if ku is not None and not (set(ku.native) & leaf_usages):
        allowed = ", ".join(n for u, n in _KU_NAMES.items() if u in leaf_usages)
        raise ChainError(
            Reason.KEY_USAGE,
            f"keyUsage of the {peer} certificate allows none of {allowed}",
            "unsupported_certificate",
        )
    ns = _ns_cert_type(leaf)
    if ns is not None and not ns & _NS_BITS[peer]:
        raise ChainError(
            Reason.EXTENDED_KEY_USAGE,
            f"nsCertType of the {peer} certificate does not allow {eku_name}",
            "unsupported_certificate",
        )
    # plen: certificates below the issuer being checked that count against its
    # pathLenConstraint (RFC 5280 6.1.4 (l): self-issued intermediates don't).
    plen = 0
    for depth, c in enumerate(everything[1:], start=1):
        is_ca, path_len = _basic_constraints(c)
        if not is_ca:
            raise ChainError(
                Reason.NOT_A_CA,
                f"{c.describe()} (depth {depth}) lacks basicConstraints CA",
                "unknown_ca",
            )
        cku = c.cert.key_usage_value
        if cku is not None and "key_cert_sign" not in set(cku.native):
            raise ChainError(
                Reason.NOT_A_CA,
                f"keyUsage of {c.describe()} (depth {depth}) does not allow keyCertSign",
                "unknown_ca",
            )
        if path_len is not None and plen > path_len:
            raise ChainError(
                Reason.PATH_LENGTH, f"at {c.describe()} (depth {depth})", "unknown_ca"
            )
        if not _is_self_issued(c):
            plen += 1
    # extendedKeyUsage: the leaf must allow serverAuth (clientAuth); so must
    # intermediates that restrict their EKU (OpenSSL's rule); the anchor is
    # trusted as is.
    for depth, c in enumerate(path):
        eku = c.cert.extended_key_usage_value
        if eku is not None and not (set(eku.native) & ekus):
            raise ChainError(
                Reason.EXTENDED_KEY_USAGE,
                "extendedKeyUsage of "
                f"{f'the {peer} certificate' if depth == 0 else c.describe()} "
                f"does not allow {eku_name}",
                "unsupported_certificate",
            )


def _ns_cert_type(c: _Cert) -> int | None:
    """The first byte of ``c``'s nsCertType bits, or None when it has none."""
    for ext in c.cert["tbs_certificate"]["extensions"] or ():
        if ext["extn_id"].dotted == _NS_CERT_TYPE:
            der = bytes(ext["extn_value"].contents)
            if len(der) < 3 or der[0] != 0x03:
                raise ValueError("malformed nsCertType")
            return der[3] if der[1] >= 2 else 0
    return None


def _repeated_extension(c: _Cert) -> str | None:
    """The name of an extension ``c`` carries more than once (RFC 5280 4.2), or None."""
    seen: set[str] = set()
    for ext in c.cert["tbs_certificate"]["extensions"] or ():
        oid = ext["extn_id"].dotted
        if oid in seen:
            return str(ext["extn_id"].native)
        seen.add(oid)
    return None


def _structure(everything: list[_Cert]) -> None:
    """RFC 5280's structural rules, as OpenSSL's strict mode applies them.

    ``everything`` is leaf first, anchor last.  Like OpenSSL, nothing here
    applies to a chain of one certificate (a trusted leaf): RFC 6818 exempts
    self-issued end-entity certificates, and there is no issuer to vouch for.
    """
    if len(everything) < 2:
        return
    for depth, c in enumerate(everything):
        problem = _structure_problem(c, last=depth == len(everything) - 1)
        if problem:
            # keyCertSign in a non-CA is worded as a key usage fault, as OpenSSL's is.
            reason = Reason.INVALID_CERTIFICATE
            if problem == _CERT_SIGN_NOT_CA:
                reason = Reason.KEY_USAGE
            raise ChainError(reason, f"{c.describe()} (depth {depth}) {problem}")


_CERT_SIGN_NOT_CA = "has keyUsage keyCertSign without being a CA"


def _structure_problem(c: _Cert, last: bool) -> str | None:
    """What ``c`` breaks of OpenSSL 3's ``X509_V_FLAG_X509_STRICT`` checks, or None.

    ``last``: ``c`` ends the chain (the anchor), so it needs no
    authorityKeyIdentifier.  The rules, in OpenSSL's order: pathLenConstraint
    only in a CA with keyCertSign; a CA's basicConstraints critical, its
    keyUsage present; keyCertSign only in a CA; issuer and (for a CA, a CRL
    signer or a certificate without subjectAltName) subject non-empty; an
    empty subject only with a critical subjectAltName; no empty subjectAltName;
    an authorityKeyIdentifier key id below the anchor and a
    subjectKeyIdentifier in a CA (version 3); no extensions before version 3;
    no EC key with explicit curve parameters.
    """
    cert = c.cert
    bc = cert.basic_constraints_value
    is_ca = bc is not None and bool(bc["ca"].native)
    ku = cert.key_usage_value
    usages = set(ku.native) if ku is not None else set()
    critical = cert.critical_extensions
    if bc is not None and bc["path_len_constraint"].native is not None:
        if not is_ca:
            return "has a pathLenConstraint without being a CA"
        if "key_cert_sign" not in usages:
            return "has a pathLenConstraint without keyUsage keyCertSign"
    if is_ca and "basic_constraints" not in critical:
        return "is a CA whose basicConstraints is not critical"
    if is_ca and ku is None:
        return "is a CA without keyUsage"
    if not is_ca and "key_cert_sign" in usages:
        return _CERT_SIGN_NOT_CA
    if not cert.issuer.chosen:
        return "has an empty issuer name"
    san = cert.subject_alt_name_value
    if not cert.subject.chosen:
        if is_ca or "crl_sign" in usages or san is None:
            return "has an empty subject name"
        if "subject_alt_name" not in critical:
            return "has an empty subject and a non-critical subjectAltName"
    if san is not None and len(san) == 0:
        return "has an empty subjectAltName"
    if cert["tbs_certificate"]["version"].native == "v3":
        aki = cert.authority_key_identifier_value
        if not last and (aki is None or aki["key_identifier"].native is None):
            return "has no authorityKeyIdentifier key identifier"
        if is_ca and cert.key_identifier_value is None:
            return "is a CA without subjectKeyIdentifier"
    elif cert["tbs_certificate"]["extensions"]:
        return "has extensions but is not version 3"
    pki = cert["tbs_certificate"]["subject_public_key_info"]
    if pki.algorithm == "ec" and pki["algorithm"]["parameters"].name != "named":
        return "has an EC key with explicit curve parameters"
    return None


def _check_security_level(everything: list[_Cert], below_anchor: int) -> None:
    """Key sizes and algorithms (OpenSSL's auth level, as tlsc fixes it).

    Every key is judged, the anchor's included (an anchor's key must meet the
    same strength rules); signatures only for the first ``below_anchor``
    certificates (an anchor's self-signature is never checked).
    """
    for depth, c in enumerate(everything):
        pki = c.cert["tbs_certificate"]["subject_public_key_info"]
        if pki.algorithm in ("rsa", "rsassa_pss") and pki.bit_size < MIN_RSA_BITS:
            raise ChainError(
                Reason.WEAK_KEY, f"RSA {pki.bit_size} bits (minimum {MIN_RSA_BITS})"
            )
        if pki.algorithm == "ec" and pki.bit_size < MIN_EC_BITS:
            raise ChainError(Reason.WEAK_KEY, f"EC {pki.bit_size} bits (minimum {MIN_EC_BITS})")
        if pki.algorithm == "dsa":
            raise ChainError(Reason.WEAK_KEY, "DSA keys are not accepted")
        if depth >= below_anchor:
            continue
        try:
            digest = _signature_hash(c.cert)
        except ValueError:
            digest = None  # unknown algorithm: reported by the signature step
        if digest in WEAK_HASHES:
            raise ChainError(Reason.WEAK_SIGNATURE, _HASH_NAMES.get(digest, digest))


def _san_names(c: _Cert) -> tuple[list[str], list[bytes]]:
    dns: list[str] = []
    ips: list[bytes] = []
    san = c.cert.subject_alt_name_value
    for gn in san or ():
        if gn.name == "dns_name":
            try:
                dns.append(gn.native)
            except Exception:  # undecodable name: never matches
                continue
        elif gn.name == "ip_address":
            ips.append(bytes(gn.chosen.contents))
    return dns, ips


def _check_name(leaf: _Cert, server_name: str) -> None:
    dns, ips = _san_names(leaf)
    if not match_server_name(server_name, dns, ips):
        raise ChainError(Reason.NAME_MISMATCH, not_valid_for(server_name))


def _check_validity(c: _Cert, depth: int, now: datetime) -> None:
    validity = c.cert["tbs_certificate"]["validity"]
    not_before = validity["not_before"].native
    not_after = validity["not_after"].native
    if now < not_before:
        raise ChainError(
            Reason.NOT_YET_VALID,
            f"{c.describe()} (depth {depth}) notBefore {not_before:%Y-%m-%d %H:%M:%S}Z",
        )
    if now > not_after:
        raise ChainError(
            Reason.EXPIRED,
            f"{c.describe()} (depth {depth}) notAfter {not_after:%Y-%m-%d %H:%M:%S}Z",
            "certificate_expired",
        )


def _check_signature(child: _Cert, issuer: _Cert, depth: int) -> None:
    try:
        ok = _signature_ok(child, issuer)
    except _Unsupported as e:
        raise ChainError(
            Reason.BAD_SIGNATURE,
            f"unable to verify the signature of {child.describe()} (depth {depth}): "
            f"unsupported algorithm {e}",
        ) from None
    except Exception:  # malformed key or signature encoding
        ok = False
    if not ok:
        raise ChainError(
            Reason.BAD_SIGNATURE, f"{child.describe()} (depth {depth})", "decrypt_error"
        )


# -- path building ------------------------------------------------------------------


class _Anchors:
    """The trust anchors, each parsed the first time a chain names it (see :mod:`tlsc.anchors`).

    A system trust store is ~140 anchors and a handshake needs one or two:
    parsing them all (asn1crypto, every field) cost ~80 ms per connection.
    The core's index finds the candidates by name, as OpenSSL would; the
    rules below (asn1crypto's name comparison, the key) then decide.
    """

    def __init__(self, anchors: TrustAnchors, warn: Warn) -> None:
        self.index = anchors
        self.warn = warn
        self.parsed: dict[bytes, _Cert | None] = {}

    def _load(self, found: list[tuple[str, bytes]]) -> list[_Cert]:
        out = []
        for origin, der in found:
            if der not in self.parsed:
                anchor = self.parsed[der] = load_anchor(der)
                if anchor is None:
                    self.warn(f"{origin}: not a certificate, skipped")
            anchor = self.parsed[der]
            if anchor is not None:
                out.append(anchor)
        return out

    def __contains__(self, der: bytes) -> bool:
        """Is ``der`` one of the anchors (the leaf itself may be one)?  Nothing parsed."""
        return self.index.contains_der(der)

    def issuers_of(self, c: _Cert) -> list[_Cert]:
        """The anchors named as ``c``'s issuer, in the order they were given."""
        return self._load(self.index.issuers_of(c.der))


def _ignore(_: str) -> None:
    """Where :func:`verify_chain`'s warnings go: it has no one to tell."""


def _quiet_signature_ok(child: _Cert, issuer: _Cert) -> bool:
    try:
        return _signature_ok(child, issuer)
    except Exception:  # a candidate we cannot use
        return False


#: Which public key algorithms can have made which signature algorithm.
_KEY_FOR_SIGNATURE = {
    "rsassa_pkcs1v15": {"rsa"},
    "rsassa_pss": {"rsa", "rsassa_pss"},
    "ecdsa": {"ec"},
    "dsa": {"dsa"},
    "ed25519": {"ed25519"},
    "ed448": {"ed448"},
}


def _may_have_issued(issuer: _Cert, child: _Cert) -> bool:
    """OpenSSL's ``ossl_x509_likely_issued``: name, key identifiers, key type.

    No signature is checked here (a wrong one is reported later, for the
    issuer chosen): the issuer's subject is the child's issuer name; the
    child's authorityKeyIdentifier, where present, names the issuer's
    subjectKeyIdentifier (and serial and issuer, where it gives them); and
    the issuer's key is of the kind that makes the child's signature.
    """
    if issuer.subject != child.issuer:
        return False
    aki = child.cert.authority_key_identifier_value
    if aki is not None:
        key_id = aki["key_identifier"].native
        ski = issuer.cert.key_identifier
        if key_id is not None and ski is not None and key_id != ski:
            return False
        serial = aki["authority_cert_serial_number"].native
        if serial is not None and serial != issuer.cert.serial_number:
            return False
        names = aki["authority_cert_issuer"]
        if names.native is not None and not any(
            n.name == "directory_name" and n.chosen == issuer.issuer for n in names
        ):
            return False
    try:
        signature = child.cert["signature_algorithm"].signature_algo
    except ValueError:
        return True  # an unknown algorithm: reported by the signature check
    algorithm = issuer.cert["tbs_certificate"]["subject_public_key_info"].algorithm
    return algorithm in _KEY_FOR_SIGNATURE.get(signature, {algorithm})


def _valid_at(c: _Cert, now: datetime) -> bool:
    validity = c.cert["tbs_certificate"]["validity"]
    return bool(validity["not_before"].native <= now <= validity["not_after"].native)


def _pick(candidates: list[_Cert], now: datetime) -> _Cert | None:
    """OpenSSL's choice among issuers: the first valid now, else the last to expire."""
    latest = None
    for c in candidates:
        if _valid_at(c, now):
            return c
        not_after = c.cert["tbs_certificate"]["validity"]["not_after"].native
        if latest is None or not_after > latest[0]:
            latest = (not_after, c)
    return latest[1] if latest else None


def _build(
    chain: list[_Cert], anchors: _Anchors, now: datetime
) -> tuple[list[_Cert], _Cert | None]:
    """(path below the anchor, leaf first; the anchor) or raise unknown CA.

    The path OpenSSL's ``build_chain`` takes, so that every backend judges
    the same path (the stdlib backend has OpenSSL's and no other): the leaf
    itself when it is an anchor (the same DER); else, step by step, an
    issuer among the anchors first, else among the certificates sent (in
    their order, each used once), keeping the candidates that
    :func:`_may_have_issued` the certificate and, of those, the first valid
    at ``now`` or else the one that expired last (:func:`_pick`).  A
    candidate is never revisited when a later rule fails: OpenSSL does not
    backtrack either.  The anchor is None when the leaf itself is trusted.
    """
    leaf = chain[0]
    if leaf.der in anchors:
        return [leaf], None
    path = [leaf]
    used = {leaf.der}
    while True:
        cur = path[-1]
        anchor = _pick([a for a in anchors.issuers_of(cur) if _may_have_issued(a, cur)], now)
        if anchor is not None:
            return path, anchor
        chosen = _pick(
            [c for c in chain if c.der not in used and _may_have_issued(c, cur)], now
        )
        if chosen is None:
            break
        used.add(chosen.der)
        if len(path) >= MAX_DEPTH:
            raise ChainError(Reason.CHAIN_TOO_LONG, None, "unknown_ca")
        path.append(chosen)
    top = path[-1]
    if _is_self_issued(top) and _quiet_signature_ok(top, top):
        if len(path) == 1:
            raise ChainError(Reason.SELF_SIGNED, None, "unknown_ca")
        raise ChainError(
            Reason.UNKNOWN_CA, "self-signed certificate in certificate chain", "unknown_ca"
        )
    raise ChainError(
        Reason.UNKNOWN_CA,
        f"unable to get local issuer certificate ({top.issuer.human_friendly})",
        "unknown_ca",
    )


class TrustStore:
    """The trust anchors of a context, shared by its handshakes.

    :func:`verify_chain` is ``TrustStore.from_der(anchors).verify(...)``.
    Anchors are parsed lazily (see :class:`_Anchors`): one that turns out
    not to parse is reported through ``warn`` when a chain first names it.
    """

    def __init__(self, anchors: Iterable[tuple[str, bytes]], warn: Warn = _ignore) -> None:
        self._anchors = _Anchors(TrustAnchors.of(anchors), warn)

    @classmethod
    def from_der(cls, anchors_der: Sequence[bytes]) -> TrustStore:
        """Anchors that do not parse are ignored."""
        return cls((f"anchor #{i}", der) for i, der in enumerate(anchors_der))

    def __len__(self) -> int:
        return len(self._anchors.index)

    def verify(
        self,
        chain_der: Sequence[bytes],
        server_name: str | None,
        at_time: datetime | None = None,
        peer: str = "server",
    ) -> None:
        """Accept ``chain_der`` (leaf first, as sent) or raise :class:`ChainError`.

        ``peer`` is "server" (serverAuth purpose) or "client" (clientAuth, for
        ``tlsd -y``; callers pass no ``server_name`` then).
        """
        if peer not in _PURPOSES:
            raise ValueError(f"peer must be 'server' or 'client', not {peer!r}")
        if not chain_der:
            raise ChainError(Reason.NO_PEER_CERTIFICATE, None, "bad_certificate")
        now = at_time if at_time is not None else datetime.now(timezone.utc)
        if now.tzinfo is None:
            now = now.replace(tzinfo=timezone.utc)
        chain: list[_Cert] = []
        for depth, der in enumerate(chain_der):
            try:
                chain.append(_parse(der))
            except Exception:
                raise ChainError(
                    Reason.MALFORMED_CERTIFICATE,
                    f"the {peer}'s certificate at depth {depth} does not parse",
                    "bad_certificate",
                ) from None
        try:
            path, anchor = _build(chain, self._anchors, now)
            everything = path + ([anchor] if anchor is not None else [])
            _check_extensions(path, anchor, peer)
            _structure(everything)
            _check_security_level(everything, len(path) if anchor is not None else 0)
            # Name constraints before the name checked: OpenSSL's order, so that a
            # leaf outside its CA's constraints is refused for that by both backends.
            problem = constraints.violation([c.cert for c in everything])
            if problem:
                raise ChainError(Reason.NAME_CONSTRAINTS, problem)
            if server_name is not None:
                _check_name(path[0], server_name)
            # from the top down, as OpenSSL's internal_verify: signature, then dates
            if anchor is not None:
                _check_validity(anchor, len(path), now)
                issuer = anchor
                for depth in range(len(path) - 1, -1, -1):
                    _check_signature(path[depth], issuer, depth)
                    _check_validity(path[depth], depth, now)
                    issuer = path[depth]
            else:
                _check_validity(path[0], 0, now)
        except ChainError:
            raise
        except Exception as e:  # a malformed field asn1crypto parsed lazily
            raise ChainError(
                Reason.MALFORMED_CERTIFICATE, type(e).__name__, "bad_certificate"
            ) from None


def verify_chain(
    chain_der: list[bytes],
    anchors_der: list[bytes],
    server_name: str | None,
    at_time: datetime | None = None,
) -> None:
    """Accept ``chain_der`` (leaf first, as the server sent it) or raise :class:`ChainError`.

    ``anchors_der`` are trust anchors (DER); ones that do not parse are ignored
    here (the backend warned about them when it loaded them).  ``server_name``
    (a DNS name or an IP literal) is checked against the leaf's subjectAltName;
    None skips the name check.  ``at_time`` defaults to now.  This is exactly
    what the handshake runs (through :class:`TrustStore`).
    """
    TrustStore.from_der(anchors_der).verify(chain_der, server_name, at_time)
