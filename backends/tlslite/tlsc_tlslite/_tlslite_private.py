"""Every use of tlslite-ng's *private* API, in one place.

tlslite-ng's public API has no hook to verify the server's certificate during
the handshake, no way to send a close_notify without also giving up reading,
no way to receive one without giving up writing, and no way to send an
arbitrary alert.  What we need of its internals is here
and nowhere else, so that upgrading tlslite-ng means re-checking this file
against the new ``tlsconnection.py``/``tlsrecordlayer.py``.  Checked against
tlslite-ng 0.8.2 (the pyproject pins ``<0.9``).

Private names used (all on ``TLSConnection``/``TLSRecordLayer``):

* ``_clientGetKeyFromChain(certificate, settings, tack_ext=None)`` (overridden):
  the one generator step that both the TLS 1.2 client (after ServerHelloDone,
  before the client Certificate and before the ServerKeyExchange signature is
  checked) and the TLS 1.3 client (after Certificate and CertificateVerify
  were received, before the client Certificate) go through with the server's
  Certificate message.  It is the earliest point where the whole chain is
  known and the latest one before anything of ours leaves.
* ``_getMsg(expectedType, secondaryType=None, constructorType=None)``
  (wrapped, server role only): every handshake message the server reads goes
  through it, so the client's Certificate message (TLS 1.2: before
  ClientKeyExchange; TLS 1.3: before CertificateVerify and Finished) is seen
  the moment it is parsed, while the handshake can still be aborted.
  tlslite itself accepts an empty client Certificate even with ``reqCert``.
* ``_getNextRecord()`` (wrapped): the generator every record and
  defragmented message comes out of, decrypted, before ``_getMsg`` acts on
  it.  ``_getMsg`` answers *any* close_notify with one of its own and then
  shuts the record layer down (``_shutdown`` wipes the write keys): right for
  TLS 1.2, where close_notify ends the connection, wrong for TLS 1.3, where it
  ends only the peer's direction (RFC 8446 section 6.1) and we may still send.
  Once the session sets :attr:`VerifyingConnection.tlsc_half_close` (a TLS 1.3
  handshake is complete), the peer's close_notify is taken out here, before
  ``_getMsg`` sees it: nothing is answered, nothing is shut down,
  ``closed`` stays False so ``writeAsync`` (public) keeps working, and the
  generator reports "needs input" for ever while :attr:`tlsc_peer_closed`
  tells the session why.
* ``_client`` (set by ``_handshakeStart``): which role the connection plays.
* ``_sendError(description, message)``: sends a fatal alert, shuts the
  connection down and raises ``TLSLocalAlert``.
* ``_sendMsg(message)``: encrypts and sends one record under the current
  write state.
* ``sock`` (the ``BufferedSocket`` tlslite wraps ours in): ``flush()`` so an
  alert queued while a flight is being buffered does go out.

And one module-level decoration undone (:func:`unwrap_rijndael`):
``tlslite.utils.rijndael.Rijndael.__init__`` as wrapped by
``deprecated_class_name`` (``functools.wraps``, so ``__wrapped__``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from tlsc.reasons import Reason
from tlsc.session import VerificationError
from tlslite.constants import AlertDescription, AlertLevel, ContentType
from tlslite.messages import Alert, Certificate
from tlslite.tlsconnection import TLSConnection
from tlslite.utils.rijndael import Rijndael

from .verify import ChainError

__all__ = ["VerifyingConnection", "send_alert", "send_close_notify"]

ChainVerifier = Callable[[list[bytes]], None]


class VerifyingConnection(TLSConnection):
    """A TLSConnection that runs ``verifier`` on the peer's chain inside the handshake.

    Client role: ``verifier`` checks the server's chain.  Server role: it
    checks the client's, and a client that sends no certificate is refused
    (certificate_required in TLS 1.3, handshake_failure in TLS 1.2) unless
    ``optional``; pass None to ask for no certificate at all.

    ``verifier(chain_der)`` raises :class:`VerificationError` (with an
    ``alert`` attribute naming the alert) to reject the chain; the handshake
    then sends that alert and fails with ``TLSLocalAlert``, and the error is
    kept in :attr:`verification_error` so the session can report it as such.
    """

    def __init__(
        self, sock: Any, verifier: ChainVerifier | None, optional: bool = False
    ) -> None:
        """``optional`` (server role): a client that sends no certificate is served."""
        super().__init__(sock)
        self.tlsc_verifier = verifier
        self.tlsc_optional = optional
        self.verification_error: VerificationError | None = None
        self._tlsc_client_checked = False
        #: Set by the session once a TLS 1.3 handshake is complete: from then on
        #: the peer's close_notify ends only the peer's direction.
        self.tlsc_half_close = False
        #: The peer's close_notify arrived under ``tlsc_half_close``.
        self.tlsc_peer_closed = False

    # PRIVATE: wraps a private generator of TLSRecordLayer (see module docstring).
    def _getNextRecord(self) -> Iterator[Any]:  # noqa: N802 - tlslite's name
        if not self.tlsc_peer_closed:
            for result in super()._getNextRecord():
                if self.tlsc_half_close and _is_close_notify(result):
                    self.tlsc_peer_closed = True
                    break
                yield result
        # Nothing may follow a close_notify: "needs input", which the session,
        # seeing tlsc_peer_closed, reads as the end of the peer's data.
        while True:
            yield 0

    def _tlsc_reject(self, error: VerificationError) -> Iterator[Any]:
        self.verification_error = error
        name = getattr(error, "alert", "bad_certificate")
        description = getattr(AlertDescription, name, AlertDescription.bad_certificate)
        # PRIVATE: _sendError sends the fatal alert, shuts down, raises TLSLocalAlert.
        yield from self._sendError(description, str(error))

    # PRIVATE: wraps a private generator of TLSRecordLayer (see module docstring).
    def _getMsg(  # noqa: N802 - tlslite's name
        self, expectedType: Any, secondaryType: Any = None, constructorType: Any = None
    ) -> Iterator[Any]:
        messages = super()._getMsg(expectedType, secondaryType, constructorType)
        if self._client or self.tlsc_verifier is None or self._tlsc_client_checked:  # PRIVATE
            yield from messages
            return
        for result in messages:
            if isinstance(result, Certificate):  # CompressedCertificate included
                self._tlsc_client_checked = True
                yield from self._tlsc_check_client(result)
            yield result

    def _tlsc_check_client(self, certificate: Certificate) -> Iterator[Any]:
        chain = certificate.cert_chain
        ders = [bytes(c.bytes) for c in chain.x509List] if chain is not None else []
        if not ders and self.tlsc_optional:
            return
        if not ders:
            tls13 = tuple(self.version) >= (3, 4)
            alert = "certificate_required" if tls13 else "handshake_failure"
            yield from self._tlsc_reject(ChainError(Reason.NO_PEER_CERTIFICATE, None, alert))
        assert self.tlsc_verifier is not None
        try:
            self.tlsc_verifier(ders)
        except VerificationError as e:
            yield from self._tlsc_reject(e)

    # PRIVATE: overrides a private generator of TLSConnection (see module docstring).
    def _clientGetKeyFromChain(  # noqa: N802 - tlslite's name
        self, certificate: Any, settings: Any, tack_ext: Any = None
    ) -> Iterator[Any]:
        chain = certificate.cert_chain
        if self.tlsc_verifier is not None and chain is not None and chain.getNumCerts():
            ders = [bytes(c.bytes) for c in chain.x509List]
            try:
                self.tlsc_verifier(ders)
            except VerificationError as e:
                yield from self._tlsc_reject(e)
        yield from super()._clientGetKeyFromChain(certificate, settings, tack_ext)


def _is_close_notify(result: Any) -> bool:
    """Whether a ``_getNextRecord`` result is a (decrypted, defragmented) close_notify."""
    if isinstance(result, int):  # 0/1: wants to read/write
        return False
    header, parser = result
    if header.type != ContentType.alert:
        return False
    body = parser.bytes[parser.index :]
    # A malformed alert is left to tlslite (decode_error).
    return len(body) == 2 and body[1] == AlertDescription.close_notify


def _drive(gen: Iterator[Any]) -> None:
    """Run a tlslite generator that only writes (our socket never blocks)."""
    for _ in gen:
        pass


def send_close_notify(conn: TLSConnection) -> None:
    """Send a lone warning-level close_notify, leaving the read side open.

    ``TLSConnection.close()`` would also shut the connection down (and by
    default wait for the peer's reply); tlsc wants only our direction closed
    and reading to go on.
    """
    alert = Alert().create(AlertDescription.close_notify, AlertLevel.warning)
    _drive(conn._sendMsg(alert))  # PRIVATE
    conn.sock.flush()  # PRIVATE (BufferedSocket)


def send_alert(conn: TLSConnection, description: int) -> None:
    """Send a fatal alert under the current write state (used for garbage input)."""
    alert = Alert().create(description, AlertLevel.fatal)
    conn.sock.flush()  # PRIVATE (BufferedSocket): queued records first, in order
    _drive(conn._sendMsg(alert))  # PRIVATE
    conn.sock.flush()  # PRIVATE


def unwrap_rijndael() -> None:
    """Construct tlslite-ng's AES without its deprecation wrapper.

    ``deprecated_class_name("rijndael")`` wraps ``Rijndael.__init__`` in code
    that reads the *caller's source file* (``inspect.getframeinfo``) on every
    construction, that is for every key of every handshake, to decide whether
    the old name was used.  Once tlsc has dropped privileges (TLS_UID) the
    sources of a root-only installation are unreadable: ``code_context`` is
    None and the wrapper raises TypeError in the middle of the handshake.
    Nothing of ours uses the old name; the original ``__init__`` is kept by
    ``functools.wraps``.  Idempotent.
    """
    original = getattr(Rijndael.__init__, "__wrapped__", None)
    if original is not None:
        Rijndael.__init__ = original  # type: ignore[method-assign]
