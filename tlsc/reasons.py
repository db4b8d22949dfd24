"""The words of every TLS failure: one table of reason codes, owned by the core.

Theory of operation
===================

The same failure gets the same words from every backend; a backend may add
detail after them, never replace them (docs/tlsc.rst, "Exit status").  So
backends never word a failure.  They raise the typed errors of
:mod:`tlsc.session` with a :class:`Reason` from this table and, optionally, a detail::

    raise VerificationError(Reason.EXPIRED, "CN=ca (depth 1) notAfter 2020-01-01 00:00:00Z")
    raise VerificationError(Reason.NAME_MISMATCH, not_valid_for("host.example"))
    raise AlertReceived(Reason.ALERT, alert_name("tlsv13 alert certificate required"))

and the core turns the error into the ``<why>`` of its fatal line with
:func:`describe`: the reason's words, then ``: detail`` when there is one.

Some words depend on who is at the other end ("the server sent a fatal
alert" in tlsc, "the client sent ..." in tlsd).  A backend cannot know how
the core wants its role worded, so those words hold a ``{peer}`` placeholder
that only the core fills in (``describe(error, peer="server")``); ``str()``
of an error, which has no role to go on, says "the peer".

A plain string instead of a :class:`Reason` is still accepted (third-party
backends written before this table): it becomes the detail of the error
class's default reason, so even then the words come from here.

Why an enum of words rather than free text: the conformance harness and the
cross-backend tests compare reasons, not prose; a new backend that maps its
library's errors onto these members gets identical lines for free.

Why not :mod:`enum` at run time: importing it (and the ``functools``,
``collections``, ``operator`` ... it brings) costs ~6 ms of every start, as
much as the rest of the core, for a program started once per connection.
:class:`Reason` is built by :class:`_WordsType`, which gives it the part of
an ``enum.Enum`` anyone uses (members with ``name`` and ``value``, iteration
in order, ``Reason["NAME"]``, ``Reason("words")``, the same ``repr`` and
``str``, pickling); type checkers see an ``enum.Enum``.

Two backends are built on OpenSSL (``openssl`` through pyOpenSSL, ``stdlib``
through Python's ``ssl``), so what OpenSSL's codes and reason strings mean is
mapped here once (:func:`openssl_verify_error`, :func:`openssl_failure`): the
same OpenSSL failure can never get two wordings.
"""

from __future__ import annotations

#: ``typing.TYPE_CHECKING`` without importing ``typing`` (see :mod:`tlsc.session`).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from enum import Enum as _Words

__all__ = [
    "ALERT_NAMES",
    "OPENSSL_VERIFY_ERRORS",
    "Reason",
    "alert_name",
    "describe",
    "not_valid_for",
    "openssl_failure",
    "openssl_verify_error",
    "words",
]


class _WordsType(type):
    """An enum's class behaviour for :class:`Reason`: its string attributes become members."""

    def __new__(mcs, name: str, bases: tuple[type, ...], namespace: dict[str, object]) -> type:
        words = {k: v for k, v in namespace.items() if isinstance(v, str) and k.isupper()}
        for key in words:
            del namespace[key]
        cls = super().__new__(mcs, name, bases, namespace)
        members = []
        for key, value in words.items():
            member = object.__new__(cls)
            object.__setattr__(member, "name", key)
            object.__setattr__(member, "value", value)
            type.__setattr__(cls, key, member)
            members.append(member)
        type.__setattr__(cls, "_members", tuple(members))
        type.__setattr__(cls, "_by_value", {m.value: m for m in members})
        return cls

    def __iter__(cls) -> Iterator[object]:
        return iter(cls._members)  # type: ignore[attr-defined]

    def __len__(cls) -> int:
        return len(cls._members)  # type: ignore[attr-defined]

    def __getitem__(cls, name: str) -> object:
        member = cls.__dict__.get(name)
        if not isinstance(member, cls):
            raise KeyError(name)
        return member

    def __call__(cls, value: object) -> object:
        if isinstance(value, cls):
            return value
        try:
            return cls._by_value[value]  # type: ignore[attr-defined]
        except (KeyError, TypeError):
            raise ValueError(f"{value!r} is not a valid {cls.__qualname__}") from None

    def __setattr__(cls, name: str, value: object) -> None:
        raise AttributeError(f"cannot reassign {cls.__qualname__}.{name}")

    def __delattr__(cls, name: str) -> None:
        raise AttributeError(f"cannot delete {cls.__qualname__}.{name}")


if not TYPE_CHECKING:

    class _Words(metaclass=_WordsType):
        """A member: ``name`` and ``value``, compared by identity, as an enum's."""

        __slots__ = ("name", "value")

        def __repr__(self) -> str:
            return f"<{type(self).__qualname__}.{self.name}: {self.value!r}>"

        def __str__(self) -> str:
            return f"{type(self).__qualname__}.{self.name}"

        def __setattr__(self, name: str, value: object) -> None:
            raise AttributeError(f"cannot set {name!r} of {self!r}")

        def __reduce_ex__(self, protocol: object) -> tuple[object, tuple[str]]:
            return type(self), (self.value,)

        def __copy__(self) -> _Words:
            return self

        def __deepcopy__(self, memo: object) -> _Words:
            return self


class Reason(_Words):
    """Why a TLS connection failed; the value is the plain words (``{peer}``: the other end)."""

    # -- the peer's certificate (the rules of docs/tlsc.rst, "Verification") --
    EXPIRED = "certificate has expired"
    NOT_YET_VALID = "certificate is not yet valid"
    #: detail: :func:`not_valid_for` the name checked.
    NAME_MISMATCH = "certificate name mismatch"
    #: No path to a trust anchor (an untrusted self-signed root in the chain included).
    UNKNOWN_CA = "unknown certificate authority"
    #: The peer's own certificate is self-signed and is not an anchor.
    SELF_SIGNED = "self-signed certificate"
    #: A certificate used as a CA is not a valid one: an issuer without basicConstraints
    #: CA or keyCertSign (a leaf signed by a non-CA), a leaf dressed as a CA.
    NOT_A_CA = "invalid CA certificate"
    #: RSA under 2048 bits, DSA, ... below the anchor (or the anchor's own key).
    WEAK_KEY = "certificate key too weak"
    #: MD5 or SHA-1 (MD2, MD4) signatures below the anchor.
    WEAK_SIGNATURE = "certificate signature algorithm too weak"
    BAD_SIGNATURE = "certificate signature failure"
    #: keyUsage forbids the use (a leaf without digitalSignature, a CA without keyCertSign).
    KEY_USAGE = "certificate key usage does not allow this use"
    #: extendedKeyUsage lacks serverAuth (clientAuth for tlsd).
    EXTENDED_KEY_USAGE = "unsupported certificate purpose"
    PATH_LENGTH = "path length constraint exceeded"
    CHAIN_TOO_LONG = "certificate chain too long"
    CRITICAL_EXTENSION = "unhandled critical extension"
    NAME_CONSTRAINTS = "name constraints violated"
    #: The certificate (or one of its extensions) does not parse.
    MALFORMED_CERTIFICATE = "malformed certificate"
    #: Any other verification rule (the strict RFC 5280 structure); detail says which.
    INVALID_CERTIFICATE = "invalid certificate"
    NO_PEER_CERTIFICATE = "the {peer} sent no certificate"

    # -- the connection --
    #: detail: the alert's name, one spelling (:func:`alert_name`): ``certificate_required``.
    ALERT = "the {peer} sent a fatal alert"
    #: EOF without close_notify (fatal under -J, and always during the handshake).
    TRUNCATED = "the {peer} closed the connection without close_notify"
    #: -K: raised by the core, never by a backend (a backend has no clock).
    TIMEOUT = "handshake timed out"
    #: Bytes that are not TLS, an unexpected message, nothing in common to negotiate.
    PROTOCOL = "protocol error"
    #: A record that fails to decrypt or authenticate (bad MAC, bad padding, too long).
    BAD_RECORD = "corrupt record"
    #: tlsd: a received SNI that is not a DNS name (decided by the core, tlsc.names).
    INVALID_SNI = "the {peer} sent an SNI that is not a DNS name"
    #: tlsd -k 2: no certificate for the name the client asked for (the core decides,
    #: tlsc.clienthello); detail: the name, or that none was sent.
    UNRECOGNIZED_NAME = "unrecognized server name"
    #: The session cannot send any more (our close_notify, or the peer's before TLS 1.3).
    WRITE_CLOSED = "the session can no longer send"
    #: Anything a backend could not classify; the detail says what.
    FAILURE = "TLS failure"

    def words(self, peer: str = "peer") -> str:
        """The plain words, with ``peer`` ("server", "client") for the other end."""
        return self.value.format(peer=peer) if "{" in self.value else self.value


def words(reason: Reason, detail: str | None = None, peer: str = "peer") -> str:
    """``reason``'s words, then ``: detail`` when there is a detail."""
    text = reason.words(peer)
    return f"{text}: {detail}" if detail else text


def describe(error: BaseException, peer: str = "peer") -> str:
    """The ``<why>`` of a fatal line for ``error``, worded for the core's role.

    ``peer`` is who is at the other end: "server" in tlsc, "client" in tlsd.
    An error without a :class:`Reason` (not one of :mod:`tlsc.session`'s) is
    its own ``str()``.
    """
    reason = getattr(error, "reason", None)
    if isinstance(reason, Reason):
        return words(reason, getattr(error, "detail", None), peer)
    return str(error)


def not_valid_for(name: str) -> str:
    """The detail of :attr:`Reason.NAME_MISMATCH`: ``not valid for 'host'``."""
    return f"not valid for {name!r}"


#: TLS alert descriptions (RFC 8446 6, RFC 5246 7.2, RFC 6066, RFC 7301, RFC 8701)
#: by number: the one spelling of an alert in every message.
ALERT_NAMES: dict[int, str] = {
    0: "close_notify",
    10: "unexpected_message",
    20: "bad_record_mac",
    21: "decryption_failed",
    22: "record_overflow",
    30: "decompression_failure",
    40: "handshake_failure",
    41: "no_certificate",
    42: "bad_certificate",
    43: "unsupported_certificate",
    44: "certificate_revoked",
    45: "certificate_expired",
    46: "certificate_unknown",
    47: "illegal_parameter",
    48: "unknown_ca",
    49: "access_denied",
    50: "decode_error",
    51: "decrypt_error",
    60: "export_restriction",
    70: "protocol_version",
    71: "insufficient_security",
    80: "internal_error",
    86: "inappropriate_fallback",
    90: "user_canceled",
    100: "no_renegotiation",
    109: "missing_extension",
    110: "unsupported_extension",
    111: "certificate_unobtainable",
    112: "unrecognized_name",
    113: "bad_certificate_status_response",
    114: "bad_certificate_hash_value",
    115: "unknown_psk_identity",
    116: "certificate_required",
    120: "no_application_protocol",
}
_BY_NAME = {name: name for name in ALERT_NAMES.values()}
_BY_NAME["user_cancelled"] = "user_canceled"  # OpenSSL's spelling


def alert_name(alert: int | str) -> str:
    """The one spelling of an alert: its RFC name, ``certificate_required``.

    Takes the alert's number, or a library's wording of it: tlslite-ng's
    names already are the RFC's; OpenSSL's ("certificate required", "unknown
    ca", "sslv3 alert bad certificate") are mapped by normalising the case
    and the separators.  An unknown number is ``alert 123``.
    """
    if isinstance(alert, int):
        return ALERT_NAMES.get(alert, f"alert {alert}")
    key = alert.strip().lower().replace(" ", "_").replace("-", "_")
    for prefix in ("sslv3_alert_", "tlsv13_alert_", "tlsv1_alert_", "tls_alert_", "tlsv1_"):
        if key.startswith(prefix) and key[len(prefix) :] in _BY_NAME:
            key = key[len(prefix) :]
            break
    return _BY_NAME.get(key, key)


# -- OpenSSL's words, for the backends built on it ------------------------------

_R = Reason
#: OpenSSL's ``X509_V_ERR_*`` codes (x509_vfy.h, stable values) as reasons, with
#: OpenSSL's wording as the detail where it says more than the reason's words.
OPENSSL_VERIFY_ERRORS: dict[int, tuple[Reason, str | None]] = {
    2: (_R.UNKNOWN_CA, "unable to get issuer certificate"),
    4: (_R.BAD_SIGNATURE, "unable to decrypt certificate's signature"),
    6: (_R.MALFORMED_CERTIFICATE, "unable to decode issuer public key"),
    7: (_R.BAD_SIGNATURE, None),  # CERT_SIGNATURE_FAILURE
    9: (_R.NOT_YET_VALID, None),
    10: (_R.EXPIRED, None),
    13: (_R.MALFORMED_CERTIFICATE, "format error in certificate's notBefore field"),
    14: (_R.MALFORMED_CERTIFICATE, "format error in certificate's notAfter field"),
    18: (_R.SELF_SIGNED, None),  # DEPTH_ZERO_SELF_SIGNED_CERT
    19: (_R.UNKNOWN_CA, "self-signed certificate in certificate chain"),
    20: (_R.UNKNOWN_CA, "unable to get local issuer certificate"),
    21: (_R.UNKNOWN_CA, "unable to verify the first certificate"),
    22: (_R.CHAIN_TOO_LONG, None),
    25: (_R.PATH_LENGTH, None),
    26: (_R.EXTENDED_KEY_USAGE, None),  # INVALID_PURPOSE
    27: (_R.UNKNOWN_CA, "certificate not trusted"),
    28: (_R.INVALID_CERTIFICATE, "certificate rejected"),
    29: (_R.UNKNOWN_CA, "subject issuer mismatch"),
    30: (_R.UNKNOWN_CA, "authority and subject key identifier mismatch"),
    31: (_R.UNKNOWN_CA, "authority and issuer serial number mismatch"),
    32: (_R.KEY_USAGE, "keyUsage does not allow keyCertSign"),
    34: (_R.CRITICAL_EXTENSION, None),
    37: (_R.INVALID_CERTIFICATE, "non-CA certificate has CA markings"),
    39: (_R.KEY_USAGE, "keyUsage does not allow digitalSignature"),
    41: (_R.INVALID_CERTIFICATE, "invalid or inconsistent certificate extension"),
    47: (_R.NAME_CONSTRAINTS, "permitted subtree violation"),
    48: (_R.NAME_CONSTRAINTS, "excluded subtree violation"),
    # Name constraints OpenSSL cannot judge: refused, in the same words as a violation.
    49: (_R.NAME_CONSTRAINTS, "a constraint with a minimum or maximum"),
    51: (_R.NAME_CONSTRAINTS, "unsupported name constraint type"),
    52: (_R.NAME_CONSTRAINTS, "unsupported or invalid name constraint syntax"),
    53: (_R.NAME_CONSTRAINTS, "unsupported or invalid name syntax"),
    62: (_R.NAME_MISMATCH, None),  # HOSTNAME_MISMATCH
    64: (_R.NAME_MISMATCH, None),  # IP_ADDRESS_MISMATCH
    66: (_R.WEAK_KEY, None),  # EE_KEY_TOO_SMALL
    67: (_R.WEAK_KEY, None),  # CA_KEY_TOO_SMALL
    68: (_R.WEAK_SIGNATURE, None),  # CA_MD_TOO_WEAK
    # OpenSSL's strict mode (X509_V_FLAG_X509_STRICT): RFC 5280's structure
    78: (_R.INVALID_CERTIFICATE, "signature algorithm inconsistency"),
    79: (_R.NOT_A_CA, None),  # INVALID_CA
    80: (_R.INVALID_CERTIFICATE, "pathLenConstraint in a non-CA certificate"),
    81: (_R.INVALID_CERTIFICATE, "pathLenConstraint without keyUsage keyCertSign"),
    82: (_R.KEY_USAGE, "keyCertSign in a non-CA certificate"),
    83: (_R.INVALID_CERTIFICATE, "empty issuer name"),
    84: (_R.INVALID_CERTIFICATE, "empty subject name"),
    85: (_R.INVALID_CERTIFICATE, "no authorityKeyIdentifier key identifier"),
    86: (_R.INVALID_CERTIFICATE, "CA certificate without subjectKeyIdentifier"),
    87: (_R.INVALID_CERTIFICATE, "empty subjectAltName"),
    88: (_R.INVALID_CERTIFICATE, "empty subject and a non-critical subjectAltName"),
    89: (_R.INVALID_CERTIFICATE, "basicConstraints of a CA not marked critical"),
    90: (_R.INVALID_CERTIFICATE, "authorityKeyIdentifier marked critical"),
    91: (_R.INVALID_CERTIFICATE, "subjectKeyIdentifier marked critical"),
    92: (_R.INVALID_CERTIFICATE, "CA certificate without keyUsage"),
    93: (_R.INVALID_CERTIFICATE, "extensions in a certificate older than version 3"),
    94: (_R.INVALID_CERTIFICATE, "EC key with explicit curve parameters"),
}


#: X509_V_ERR_INVALID_CA.
_INVALID_CA = 79


def openssl_verify_error(
    code: int, message: str | None = None, depth: int | None = None
) -> tuple[Reason, str | None]:
    """The reason for an ``X509_V_ERR_*`` code; OpenSSL's own ``message`` for one not mapped.

    ``depth`` 0 with "invalid CA" is strict mode's verdict on a *leaf* dressed
    as a CA (keyCertSign without basicConstraints): the leaf's key usage is at
    fault, not an issuer, the same words as keyCertSign with CA:FALSE (82).
    """
    if code == _INVALID_CA and depth == 0:
        return OPENSSL_VERIFY_ERRORS[82]
    return OPENSSL_VERIFY_ERRORS.get(code) or (
        Reason.INVALID_CERTIFICATE,
        message or f"X.509 verification error {code}",
    )


#: OpenSSL's reason strings for alerts it received (SSL_AD_REASON_OFFSET + alert):
#: "sslv3 alert ...", "tlsv1 alert ...", "tlsv13 alert ...", "tlsv1 unrecognized
#: name" in OpenSSL 3; "tls alert ..." in OpenSSL 4.
#: A pattern, compiled on the first failure (by ``re``'s cache), not at every start.
_OPENSSL_ALERT = r"(?i)^(?:(?:sslv3|tlsv1|tlsv13|tls) alert|tlsv1) (.+)$"

#: OpenSSL's reasons for a record that fails to decrypt or authenticate.
_OPENSSL_BAD_RECORD = (
    "bad record mac",
    "decryption failed",
    "bad decrypt",
    "record overflow",
    "packet length too long",
    "data length too long",
    "encrypted length too long",
)


def openssl_failure(reason: str) -> tuple[Reason, str]:
    """What an OpenSSL reason string says happened to the connection, and its detail.

    :attr:`Reason.ALERT` with the alert's name for an alert the peer sent
    ("sslv3 alert bad certificate"), :attr:`Reason.BAD_RECORD` for a record
    that does not decrypt, :attr:`Reason.PROTOCOL` (OpenSSL's words as the
    detail) for anything else the peer sent that could not be accepted.
    """
    import re  # a failure only: no start pays for it (the openssl backend has it loaded anyway)

    match = re.match(_OPENSSL_ALERT, reason)
    if match:
        return Reason.ALERT, alert_name(match.group(1))
    lowered = reason.lower()
    if any(words in lowered for words in _OPENSSL_BAD_RECORD):
        return Reason.BAD_RECORD, reason
    return Reason.PROTOCOL, reason
