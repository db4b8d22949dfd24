"""One connection, either role: an ``_ssl`` SSL object between two ``MemoryBIO``s.

Theory of operation
===================

``_wrap_bio`` (what ``ssl.SSLContext.wrap_bio`` calls; the package says why
this backend calls it itself) gives an SSL object with no socket: ciphertext
goes in by writing the incoming BIO and comes out by reading the outgoing one,
which is exactly the sans-I/O contract of :mod:`tlsc.session`.  Network EOF is not
passed to OpenSSL (``write_eof`` would forbid writing after a bare FIN);
"needs input" once the network is over *is* the truncation.

Verification happens in two places, both before anything of ours that
depends on it leaves: OpenSSL checks the chain inside the handshake (flags
and security level set by :mod:`.context`), and :func:`.checks.chain_problem`
judges the rest on the chain the peer sent, which the context's message
callback hands to :meth:`StdlibSession.received_certificates` while OpenSSL
reads it.  The second check runs when ``do_handshake`` returns, before the
core drains :meth:`data_to_send`: the bytes OpenSSL produced in that call (our
Certificate, CertificateVerify and Finished) are still ours.  When the check
fails they are thrown away and a fatal ``bad_certificate`` alert goes out
instead, so a refused server never receives our client certificate nor our
Finished, in TLS 1.2 as in 1.3.  The alert goes in a plaintext record: we
have no key to encrypt it with outside OpenSSL, and no peer has been sent an
encrypted record of ours yet (TLS 1.3 servers accept a plaintext alert until
then, for exactly this case).  The core never delivers data nor starts prog
before ``do_handshake`` returns True, which it does only after both checks.

Close: the SSL object's ``shutdown`` (``ssl.SSLObject.unwrap``) calls
``SSL_shutdown`` twice, and the second call reads the incoming BIO and
*discards* application data (OpenSSL ditches what it reads once its own
close_notify is out).  Under TLS 1.3 the peer may go on sending after our
close_notify, so :meth:`close_notify` first takes the plaintext OpenSSL holds
into a buffer of ours and sets the unread ciphertext
aside, and gives it back after.

Errors are sticky: once a :class:`TLSError` was raised, every later
``do_handshake``/``read``/``write`` raises it again.
"""

from __future__ import annotations

import _ssl

from tlsc.reasons import Reason
from tlsc.session import (
    Facts,
    ProtocolError,
    TLSError,
    Truncated,
    VerificationError,
    WriteClosed,
)
from tlsc.tlsmsg import MessageError, certificates_in_message

from .checks import Problem
from .errors import classify, reason_of

#: ``typing.TYPE_CHECKING`` without importing ``typing`` (this backend exists to start fast).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn

    from .context import Hooks

__all__ = ["StdlibServerSession", "StdlibSession"]

#: A fatal bad_certificate alert in a plaintext record (type 21, TLS 1.2 record version).
_BAD_CERTIFICATE_ALERT = bytes.fromhex("1503030002022a")


class StdlibSession:
    """The :class:`tlsc.session.Session` implementation over Python's ``ssl``."""

    server_side = False

    def __init__(self, context: _ssl._SSLContext, hooks: Hooks, sni: str | None = None) -> None:
        """``hooks``: the context's callbacks (:class:`.context.Hooks`); ``sni``: SNI to send."""
        self._sni = sni
        self._hooks = hooks
        self._in = _ssl.MemoryBIO()
        self._out = _ssl.MemoryBIO()
        #: The peer's chain as its Certificate message had it, once seen.
        self._chain: list[bytes] | None = None
        self._chain_error: Problem | None = None
        self._checked = False
        self._handshaking = True
        hooks.started()  # before _wrap_bio: OpenSSL copies the message callback then
        # The name as given (ASCII, checked by the context): no IDNA folding.
        self._obj = context._wrap_bio(self._in, self._out, self.server_side, sni)
        self._done = False
        self._network_eof = False
        self._peer_closed = False
        self._we_closed = False
        self._plain = b""  # plaintext taken out of OpenSSL by close_notify
        self._failure: TLSError | None = None

    # -- called by the context's callbacks, inside do_handshake ----------------

    def received_server_name(self, name: str) -> None:
        """The SNI a client sent (server role)."""
        self._sni = name

    def received_certificates(self, message: bytes, version: int) -> list[bytes] | None:
        """The peer's Certificate handshake message (4-byte header included): its chain.

        None when the message is malformed (the handshake is refused then).
        """
        try:
            self._chain = certificates_in_message(message, version)
        except MessageError as e:
            self._chain_error = Reason.MALFORMED_CERTIFICATE, str(e)
        return self._chain

    # -- input ---------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        if not data:
            self._network_eof = True  # remembered, never shown to OpenSSL (see above)
            return
        self._in.write(data)

    def do_handshake(self) -> bool:
        if self._done:
            return True
        self._raise_if_failed()
        try:
            self._hooks.current = self
            try:
                self._obj.do_handshake()
            finally:
                self._hooks.current = None
        except _ssl.SSLWantReadError:
            self._check_chain(final=False)
            if self._network_eof:
                self._fail(Truncated(Reason.TRUNCATED, "during the handshake"))
            return False
        except _ssl.SSLZeroReturnError:
            self._fail(ProtocolError(Reason.PROTOCOL, "close_notify during the handshake"))
        except _ssl.SSLError as e:
            self._fail(self._handshake_error(e))
        self._check_chain(final=True)
        self._done = True
        self._end_handshake()
        return True

    def read(self, max_bytes: int) -> bytes | None:
        if self._plain:
            out, self._plain = self._plain[:max_bytes], self._plain[max_bytes:]
            return out
        if self._peer_closed:
            return b""
        self._raise_if_failed()
        try:
            data = self._obj.read(max_bytes)
        except _ssl.SSLWantReadError:
            if self._network_eof:
                self._fail(Truncated(Reason.TRUNCATED))
            return None
        except _ssl.SSLZeroReturnError:
            data = b""
        except _ssl.SSLError as e:
            self._fail(classify(e))
        if not data:  # Python returns b"" for the peer's close_notify (raises once ours is out)
            self._peer_closed = True
        return data

    # -- output --------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self._we_closed:
            raise WriteClosed(Reason.WRITE_CLOSED, "close_notify already sent")
        if not isinstance(self._failure, Truncated):
            self._raise_if_failed()  # a truncation ends only the peer's direction
        if self._peer_closed and self._obj.version() != "TLSv1.3":
            # Before TLS 1.3 a close_notify closes both directions (RFC 5246 7.2.1).
            raise WriteClosed(Reason.WRITE_CLOSED, "the peer sent close_notify")
        view = memoryview(data)
        while view:
            try:
                sent = self._obj.write(view)
            except _ssl.SSLError as e:
                self._fail(classify(e))
            view = view[sent:]

    def close_notify(self) -> None:
        if self._we_closed:
            return
        self._we_closed = True
        failed = self._failure is not None and not isinstance(self._failure, Truncated)
        if failed or not self._done:
            return  # a fatal alert went out instead, or there is nothing to close
        while self._obj.pending():  # see the module docstring: unwrap would drop it
            self._plain += self._obj.read(self._obj.pending())
        unread = self._in.read()
        try:
            self._obj.shutdown()
        except _ssl.SSLError:
            pass  # WantRead: ours is out, the peer's not yet in; fine
        if unread:
            self._in.write(unread)

    def data_to_send(self) -> bytes:
        return self._out.read()

    # -- facts ---------------------------------------------------------------

    def facts(self) -> Facts:
        cipher = self._obj.cipher()
        return Facts(
            protocol=self._obj.version() or "",
            cipher=cipher[0] if cipher else "",
            peer_certificate=self._obj.getpeercert(True),
            server_name=self._sni,
        )

    # -- helpers -------------------------------------------------------------

    def _check_chain(self, final: bool) -> None:
        """:func:`.checks.chain_problem` on the peer's chain, once, as soon as it is seen."""
        if not self._hooks.verifying or self._checked:
            return
        if self._chain_error is not None:
            self._refuse(self._chain_error)
        if self._chain is None:
            if final and self._needs_chain():
                self._refuse((Reason.FAILURE, "the peer's certificate chain was not seen"))
            return
        self._checked = True
        if not self._chain and self.server_side:
            return  # no client certificate: OpenSSL decided whether that was allowed
        problem = self._hooks.problem(self._chain)
        if problem is not None:
            self._refuse(problem)

    def _needs_chain(self) -> bool:
        return True

    def _refuse(self, problem: Problem) -> NoReturn:
        """Our check failed: nothing OpenSSL queued leaves, a fatal alert does."""
        self._out.read()
        self._out.write(_BAD_CERTIFICATE_ALERT)
        self._fail(VerificationError(*problem))

    def _handshake_error(self, error: _ssl.SSLError) -> TLSError:
        return classify(error)

    def _end_handshake(self) -> None:
        if self._handshaking:
            self._handshaking = False
            self._hooks.ended()

    def _fail(self, exc: TLSError) -> NoReturn:
        """Make ``exc`` the session's fate and raise it."""
        self._failure = exc
        self._end_handshake()
        raise exc

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise self._failure


class StdlibServerSession(StdlibSession):
    """The server role (tlsd): the same session, accepting.

    ``facts().server_name`` is the SNI the client sent (recorded by the
    context's SNI callback through :meth:`received_server_name`),
    ``facts().peer_certificate`` the client's certificate, None when it sent none.
    """

    server_side = True

    def __init__(self, context: _ssl._SSLContext, hooks: Hooks) -> None:
        super().__init__(context, hooks)

    def _needs_chain(self) -> bool:
        return self._obj.getpeercert(True) is not None

    def _handshake_error(self, error: _ssl.SSLError) -> TLSError:
        if "peer did not return a certificate" in reason_of(error):
            # CERT_REQUIRED: OpenSSL has queued its alert already.
            return VerificationError(Reason.NO_PEER_CERTIFICATE)
        return classify(error)
