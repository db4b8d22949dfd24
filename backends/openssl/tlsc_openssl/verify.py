"""Certificate verification: OpenSSL's chain checks plus :mod:`.policy`, two ways.

* During a handshake, :class:`Verifier` is the context's verify callback.
  OpenSSL calls it with ``ok=0`` for each error it finds (we record a readable
  reason and abort) and with ``ok=1`` once per certificate, anchor first and
  leaf last, when a depth passed; that is where :func:`.policy.check_certificate`
  runs, name check included at depth 0.  Refusing in the callback makes
  OpenSSL abort the handshake with an alert *before* any client certificate is
  sent: a server that fails verification never sees our certificate.
* :func:`verify_chain` runs the same store configuration through an
  ``X509StoreContext`` and then the same policy over the verified chain, for
  the conformance harness.

Both configure the store (:func:`configure_store`) for partial chains (any
anchor, intermediate or leaf, ends the chain), OpenSSL's strict mode, and
``X509_CHECK_FLAG_NEVER_CHECK_SUBJECT``: the subject's CN is never a name,
not even for name constraints (OpenSSL checks a leaf's CN against them when
the leaf has no DNS subjectAltName, unless told never to).

Dates are the policy's (inclusive at both ends): OpenSSL still checks them,
at the wall clock in a handshake and at ``at_time`` in :func:`verify_chain`,
because it also uses them to choose among candidate issuers (the first one
valid then); in a handshake the callback overrides OpenSSL's verdict on a
date with the policy's, and :func:`verify_chain`, which has no callback,
verifies again with OpenSSL's time check off (:data:`CHAIN_STORE_FLAGS`)
when OpenSSL's only objection is the notAfter second tlsc still accepts
(validity is inclusive).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from OpenSSL import SSL, crypto

from tlsc.reasons import Reason, openssl_verify_error
from tlsc.session import VerificationError, Warn

from .policy import SERVER_AUTH, Problem, check_certificate, time_problem, usage_problem

__all__ = [
    "CHAIN_STORE_FLAGS",
    "STORE_FLAGS",
    "Verifier",
    "add_anchors",
    "configure_store",
    "describe_verify_error",
    "new_store",
    "verify_chain",
]

#: ``X509_V_FLAG_NO_CHECK_TIME`` from OpenSSL's x509_vfy.h (stable since 1.1.0);
#: pyOpenSSL's ``X509StoreFlags`` does not export it.
X509_V_FLAG_NO_CHECK_TIME = 0x200000

#: The handshake's store: any anchor terminates a chain; RFC 5280's structure
#: is checked (OpenSSL's strict mode).
STORE_FLAGS = crypto.X509StoreFlags.PARTIAL_CHAIN | crypto.X509StoreFlags.X509_STRICT
#: :func:`verify_chain`'s store: the same, dates left to the policy.
CHAIN_STORE_FLAGS = STORE_FLAGS | X509_V_FLAG_NO_CHECK_TIME

#: X509_V_ERR_* codes pyOpenSSL does not name (x509_vfy.h, stable values):
#: OpenSSL's security-level checks, which the policy decides on its own terms.
X509_V_ERR_EE_KEY_TOO_SMALL = 66
X509_V_ERR_CA_KEY_TOO_SMALL = 67
X509_V_ERR_CA_MD_TOO_WEAK = 68
_SECURITY_LEVEL_ERRORS = {
    X509_V_ERR_EE_KEY_TOO_SMALL,
    X509_V_ERR_CA_KEY_TOO_SMALL,
    X509_V_ERR_CA_MD_TOO_WEAK,
}

_TIME_ERRORS = {
    SSL.X509VerificationCodes.ERR_CERT_HAS_EXPIRED,
    SSL.X509VerificationCodes.ERR_CERT_NOT_YET_VALID,
}

_C = SSL.X509VerificationCodes


def describe_verify_error(
    errnum: int, fallback: str | None = None, depth: int | None = None
) -> Problem:
    """The reason for an ``X509_V_ERR_*`` code (:func:`tlsc.reasons.openssl_verify_error`)."""
    return openssl_verify_error(errnum, fallback, depth)


def verification_error(reason: Reason, detail: str | None = None) -> VerificationError:
    """The exception the core reports, one wording for both verification paths."""
    return VerificationError(reason, detail)


def configure_store(store: crypto.X509Store, flags: int) -> None:
    """Set ``flags`` on ``store`` and never let OpenSSL read a CN as a DNS name.

    pyOpenSSL has no call for host flags, so ``X509_CHECK_FLAG_NEVER_CHECK_SUBJECT``
    goes in through ``cryptography``'s bindings, the way pyOpenSSL's own
    ``X509Store.set_time`` sets its parameter: a fresh ``X509_VERIFY_PARAM``
    merged into the store's (only the fields it sets are copied).  Every
    verification from this store inherits it, the handshake's included.
    """
    from cryptography.hazmat.bindings.openssl.binding import Binding

    store.set_flags(flags)
    lib = Binding.lib
    param = lib.X509_VERIFY_PARAM_new()
    if param == Binding.ffi.NULL:
        raise MemoryError("X509_VERIFY_PARAM_new")
    try:
        lib.X509_VERIFY_PARAM_set_hostflags(param, lib.X509_CHECK_FLAG_NEVER_CHECK_SUBJECT)
        if lib.X509_STORE_set1_param(store._store, param) != 1:
            raise crypto.Error([("X509_STORE_set1_param", "", "failed")])
    finally:
        lib.X509_VERIFY_PARAM_free(param)


def add_anchors(
    store: crypto.X509Store, anchors: Iterable[tuple[str, bytes]], warn: Warn
) -> frozenset[bytes]:
    """Put the anchors OpenSSL accepts in ``store``; their DER.  The others: ``warn``, skip.

    One DER decoding by OpenSSL per anchor and no other object.  (Through a
    ``cryptography`` certificate, as before, cost three times as much.)  A
    handshake's context calls this only for the anchors a chain reaches
    (:mod:`.anchors`); :func:`new_store` for all it is given.
    """
    usable = set()
    for origin, der in anchors:
        try:
            cert = crypto.load_certificate(crypto.FILETYPE_ASN1, der)
        except crypto.Error:
            warn(f"{origin}: not a certificate, skipped")
            continue
        try:
            store.add_cert(cert)
        except crypto.Error:
            warn(f"{origin}: refused by OpenSSL, skipped")
            continue
        usable.add(der)
    return frozenset(usable)


def new_store(anchors_der: Iterable[bytes], at_time: datetime | None = None) -> crypto.X509Store:
    """A store for :func:`verify_chain`: ``anchors_der`` that OpenSSL accepts.

    With ``at_time``, OpenSSL judges dates at that moment (as a handshake
    does at the wall clock); without, it does not judge them at all.
    Unusable anchors are skipped, as client_context skips them.
    """
    store = crypto.X509Store()
    add_anchors(store, ((f"anchor #{i}", der) for i, der in enumerate(anchors_der)), _quiet)
    configure_store(store, STORE_FLAGS if at_time is not None else CHAIN_STORE_FLAGS)
    if at_time is not None:
        store.set_time(at_time)
    return store


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


class Reached(Protocol):
    """Told of each certificate a chain holds (:class:`tlsc_openssl.anchors.StoreAnchors`)."""

    def reached(self, cert_der: bytes) -> None: ...


class VerifyState(Protocol):
    """What the callback needs from a session: where to leave the first reason."""

    verify_failure: Problem | None


class Verifier:
    """The verify callback of a context, shared by all its sessions.

    ``purpose``: serverAuth for tlsc's client contexts, clientAuth (and no
    ``server_name``) for tlsd's server contexts that verify client certificates.

    A session makes itself the connection's app data; the callback records the
    first failure reason on it so that ``do_handshake`` can raise a
    :class:`VerificationError` that says why instead of OpenSSL's generic
    "certificate verify failed".
    """

    def __init__(
        self,
        anchors_der: frozenset[bytes],
        server_name: str | None,
        store: Reached | None = None,
        clock: Callable[[], datetime] | None = None,
        purpose: x509.ObjectIdentifier = SERVER_AUTH,
    ) -> None:
        self.anchors_der = anchors_der
        self.server_name = server_name
        #: Told of every certificate verified (anchors.StoreAnchors: refused anchors it reaches).
        self.store = store
        self.purpose = purpose
        self.clock = clock or (lambda: datetime.now(timezone.utc))

    def __call__(
        self, conn: SSL.Connection, cert: crypto.X509, errnum: int, depth: int, ok: int
    ) -> bool:
        state: VerifyState = conn.get_app_data()
        try:
            reason = self._judge(cert.to_cryptography(), errnum, depth, ok)
        except Exception as e:  # never let an exception escape into OpenSSL
            reason = (Reason.FAILURE, f"internal error while verifying: {type(e).__name__}")
        if reason is None:
            return True
        if state.verify_failure is None:
            state.verify_failure = reason
        return False

    def _judge(self, cert: x509.Certificate, errnum: int, depth: int, ok: int) -> Problem | None:
        der = _der(cert)
        if self.store is not None:
            self.store.reached(der)
        is_anchor = der in self.anchors_der
        if not ok:
            if errnum in _TIME_ERRORS:
                # The policy's inclusive dates decide; OpenSSL's error (and so
                # its "certificate expired" alert) stands when they agree.
                return time_problem(cert, self.clock())
            if errnum in _SECURITY_LEVEL_ERRORS:
                # OpenSSL's security level is build-dependent; the policy decides
                # for an anchor (its key is judged, never its self-signature).
                policy = check_certificate(
                    cert,
                    depth,
                    is_anchor=is_anchor,
                    server_name=None,
                    now=self.clock(),
                    purpose=self.purpose,
                )
                return policy if is_anchor else policy or describe_verify_error(errnum)
            if errnum == _C.ERR_INVALID_PURPOSE:
                # OpenSSL says "purpose" for keyUsage and extendedKeyUsage alike;
                # the policy tells which, as tlsc_openssl.verify_chain does.
                return usage_problem(cert, depth, self.purpose) or describe_verify_error(errnum)
            if errnum in _NO_ISSUER:
                # OpenSSL refuses to use a certificate with an extension twice as
                # anything, so it reports a missing issuer: say what is wrong.
                return duplicate_extension([cert]) or describe_verify_error(errnum)
            return describe_verify_error(errnum, depth=depth)
        return check_certificate(
            cert,
            depth,
            is_anchor=is_anchor,
            server_name=self.server_name,
            now=self.clock(),
            purpose=self.purpose,
        )


def _quiet(_: str) -> None:
    """verify_chain's warnings go nowhere: it has no one to tell."""


#: OpenSSL's "no issuer found" errors, which a certificate it cannot use at all causes too.
_NO_ISSUER = {
    _C.ERR_UNABLE_TO_GET_ISSUER_CERT,
    _C.ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
    _C.ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE,
}


def duplicate_extension(certs: Sequence[x509.Certificate]) -> Problem | None:
    """An extension that appears twice in one of ``certs`` (RFC 5280 4.2), or None."""
    for cert in certs:
        try:
            cert.extensions  # noqa: B018 - parsing them is the check
        except x509.DuplicateExtension as e:
            return Reason.INVALID_CERTIFICATE, f"the {e.oid.dotted_string} extension appears twice"
        except ValueError:
            continue  # another fault: OpenSSL's own words stand
    return None


def _parse(der: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        raise verification_error(Reason.MALFORMED_CERTIFICATE) from None


def verify_chain(
    chain_der: Sequence[bytes],
    anchors_der: Sequence[bytes],
    server_name: str | None = None,
    at_time: datetime | None = None,
) -> None:
    """Verify a server chain (leaf first, DER) exactly as a handshake would.

    Raises :class:`VerificationError` with the same reason the handshake path
    gives; returns None when the chain is acceptable.  ``at_time`` (default:
    now; a naive datetime is taken as UTC) is the moment validity dates are
    checked at.  For the conformance harness: it needs no network.
    """
    if not chain_der:
        raise verification_error(Reason.NO_PEER_CERTIFICATE)
    if at_time is None:
        now = datetime.now(timezone.utc)
    elif at_time.tzinfo is None:
        now = at_time.replace(tzinfo=timezone.utc)
    else:
        now = at_time.astimezone(timezone.utc)
    chain = [_parse(der) for der in chain_der]
    leaf = crypto.X509.from_cryptography(chain[0])
    untrusted = [crypto.X509.from_cryptography(c) for c in chain[1:]]
    try:
        try:
            verified = crypto.X509StoreContext(
                new_store(anchors_der, now), leaf, untrusted
            ).get_verified_chain()
        except crypto.X509StoreContextError as e:
            code = e.errors[0]
            if code not in _TIME_ERRORS or time_problem(e.certificate.to_cryptography(), now):
                raise
            # OpenSSL's notAfter is exclusive, tlsc's inclusive: dates to the policy.
            verified = crypto.X509StoreContext(
                new_store(anchors_der), leaf, untrusted
            ).get_verified_chain()
    except crypto.X509StoreContextError as e:
        code, depth, message = e.errors
        problem = duplicate_extension(chain) if code in _NO_ISSUER else None
        problem = problem or describe_verify_error(code, message, depth)
        raise verification_error(*problem) from None
    verified_crypto = [c.to_cryptography() for c in verified]
    anchor_set = frozenset(anchors_der)
    # Anchor first, leaf last: the order OpenSSL calls the handshake callback in.
    for depth in range(len(verified_crypto) - 1, -1, -1):
        cert = verified_crypto[depth]
        problem = check_certificate(
            cert,
            depth,
            is_anchor=_der(cert) in anchor_set,
            server_name=server_name,
            now=now,
        )
        if problem:
            raise verification_error(*problem)
