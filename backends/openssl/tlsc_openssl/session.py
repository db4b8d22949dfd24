"""One connection, either role: an OpenSSL ``SSL`` object between two memory BIOs.

:class:`OpenSSLSession` is tlsc's client side; :class:`OpenSSLServerSession`
(tlsd) differs only in the role it takes, where its SNI comes from (the
servername callback, :func:`record_server_name`) and how a missing client
certificate is reported.

``SSL.Connection(ctx, None)`` gives a connection with no socket: ciphertext
goes in with ``bio_write`` and comes out with ``bio_read``, which is exactly
the sans-I/O contract of :mod:`tlsc.session`.  Network EOF is *not* passed to
OpenSSL (a BIO EOF would put the SSL object in an error state and forbid
writing after a bare FIN); when OpenSSL needs more input and the network is
over, that is our :class:`Truncated`.
``OP_IGNORE_UNEXPECTED_EOF`` is never set, or truncation would look like a
clean close.

Errors are sticky: once a :class:`TLSError` was raised, the session is dead
and every later ``do_handshake``/``read``/``write`` raises the same one again,
rather than whatever OpenSSL says about a connection in error state.
"""

from __future__ import annotations

from typing import NoReturn

from cryptography.hazmat.primitives.serialization import Encoding
from OpenSSL import SSL

from tlsc.reasons import Reason
from tlsc.session import (
    Facts,
    TLSError,
    Truncated,
    VerificationError,
    WriteClosed,
)

from .errors import classify, reason_of
from .policy import Problem
from .verify import verification_error

__all__ = ["OpenSSLServerSession", "OpenSSLSession", "record_server_name"]

#: One ``bio_read``: more than one write of the relay produces (128 KiB of plaintext
#: is ~131 KiB of records), so that its output leaves in one piece: each read is a
#: buffer and a copy, and several are joined with one more copy.  The buffer is not
#: zeroed, so what is not filled costs no page.
_CHUNK = 262144


class OpenSSLSession:
    """The :class:`tlsc.session.Session` implementation over pyOpenSSL."""

    def __init__(self, context: SSL.Context, sni: str | None, sni_wire: bytes | None) -> None:
        """``sni``: the name for :meth:`facts`; ``sni_wire``: its ASCII form to send."""
        self._sni = sni
        #: First reason the verify callback refused the peer's chain for.
        self.verify_failure: Problem | None = None
        self._conn = SSL.Connection(context, None)
        self._conn.set_app_data(self)  # the verify and servername callbacks find us here
        self._start(sni_wire)
        self._handshake_done = False
        self._network_eof = False
        self._peer_closed = False  # read returned b"": close_notify received
        self._we_closed = False  # close_notify() was called
        self._failure: TLSError | None = None

    def _start(self, sni_wire: bytes | None) -> None:
        """Take the client role (the server subclass takes the other one)."""
        self._conn.set_connect_state()
        if sni_wire is not None:
            self._conn.set_tlsext_host_name(sni_wire)

    # -- input ---------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        if not data:
            # Remembered, not passed to OpenSSL: a BIO EOF puts the whole SSL
            # object in an error state, and after a bare FIN (-j) prog may still
            # send.  "Needs input" once the network is over *is* the truncation.
            self._network_eof = True
            return
        try:
            self._conn.bio_write(data)
        except SSL.Error:
            pass  # a memory BIO does not refuse bytes; if it did, read() will tell

    def do_handshake(self) -> bool:
        if self._handshake_done:
            return True
        self._raise_if_failed()
        try:
            self._conn.do_handshake()
        except SSL.WantReadError:
            if self._network_eof:
                self._fail(Truncated(Reason.TRUNCATED))
            return False
        except SSL.SysCallError:
            self._fail(Truncated(Reason.TRUNCATED))
        except SSL.Error as e:
            self._fail(self._handshake_error(e))
        self._handshake_done = True
        return True

    def read(self, max_bytes: int) -> bytes | None:
        if self._peer_closed:
            return b""
        self._raise_if_failed()
        try:
            return self._conn.recv(max_bytes)
        except SSL.ZeroReturnError:
            self._peer_closed = True
            return b""
        except SSL.WantReadError:
            if self._network_eof:
                self._fail(Truncated(Reason.TRUNCATED))
            return None
        except SSL.SysCallError:
            self._fail(Truncated(Reason.TRUNCATED))
        except SSL.Error as e:
            self._fail(self._handshake_error(e) if not self._handshake_done else classify(e))

    # -- output --------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self._we_closed:
            raise WriteClosed(Reason.WRITE_CLOSED, "close_notify already sent")
        if not isinstance(self._failure, Truncated):
            self._raise_if_failed()  # a truncation ends only the peer's direction
        if self._peer_closed and self._conn.get_protocol_version_name() != "TLSv1.3":
            # Before TLS 1.3 a close_notify closes both directions (RFC 5246 7.2.1).
            raise WriteClosed(Reason.WRITE_CLOSED, "the peer sent close_notify")
        view = memoryview(data)
        while view:
            try:
                sent = self._conn.send(view)
            except (SSL.WantReadError, SSL.WantWriteError):
                # Cannot happen after the handshake with memory BIOs (they
                # grow and renegotiation is off); refuse loudly rather than
                # drop plaintext silently.
                self._fail(TLSError(Reason.FAILURE, "the TLS engine cannot send now"))
            except SSL.Error as e:
                self._fail(classify(e))
            view = view[sent:]

    def close_notify(self) -> None:
        if self._we_closed:
            return
        self._we_closed = True
        if self._failure is not None and not isinstance(self._failure, Truncated):
            return  # a fatal alert was queued already; close_notify would be a lie
        try:
            self._conn.shutdown()
        except SSL.Error:
            # WantRead: sent, the peer's close_notify not yet here; fine.
            # Anything else (handshake not finished): nothing to close.
            pass

    def data_to_send(self) -> bytes:
        out: list[bytes] = []
        while True:
            try:
                chunk = self._conn.bio_read(_CHUNK)
            except SSL.WantReadError:
                break
            except SSL.Error:
                break
            if not chunk:
                break
            out.append(chunk)
        return b"".join(out)

    # -- facts ---------------------------------------------------------------

    def facts(self) -> Facts:
        cert = self._conn.get_peer_certificate(as_cryptography=True)
        return Facts(
            protocol=self._conn.get_protocol_version_name(),
            cipher=self._conn.get_cipher_name() or "",
            peer_certificate=cert.public_bytes(Encoding.DER) if cert is not None else None,
            server_name=self._sni,
        )

    # -- helpers -------------------------------------------------------------

    def _handshake_error(self, error: SSL.Error) -> TLSError:
        if self.verify_failure is not None:
            return verification_error(*self.verify_failure)
        exc = classify(error)
        if exc.detail == "certificate verify failed":
            return VerificationError(Reason.INVALID_CERTIFICATE, exc.detail)
        return exc

    def _fail(self, exc: TLSError) -> NoReturn:
        """Make ``exc`` the session's fate and raise it."""
        self._failure = exc
        raise exc

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise self._failure


class OpenSSLServerSession(OpenSSLSession):
    """The server role (tlsd): the same memory-BIO session, accepting.

    ``facts().server_name`` is the SNI the client sent, recorded by
    :func:`record_server_name`; ``facts().peer_certificate`` the client's
    certificate, None when it sent none.
    """

    def __init__(self, context: SSL.Context) -> None:
        super().__init__(context, None, None)

    def _start(self, sni_wire: bytes | None) -> None:
        self._conn.set_accept_state()

    def received_server_name(self, name: str) -> None:
        self._sni = name

    def _handshake_error(self, error: SSL.Error) -> TLSError:
        if self.verify_failure is None and "did not return a certificate" in reason_of(error):
            # VERIFY_FAIL_IF_NO_PEER_CERT: OpenSSL has queued its alert already.
            return verification_error(Reason.NO_PEER_CERTIFICATE)
        return super()._handshake_error(error)


def record_server_name(conn: SSL.Connection) -> None:
    """The context's servername callback: remember the SNI, accept any name.

    A name that is not ASCII (SNI is a DNS name in A-labels) is kept with its
    odd bytes escaped rather than refused: tlsd does not serve by name.
    """
    try:
        raw = conn.get_servername()
        session = conn.get_app_data()
        if raw and isinstance(session, OpenSSLServerSession):
            session.received_server_name(raw.decode("ascii", "backslashreplace"))
    except Exception:  # noqa: BLE001 - never let an exception escape into OpenSSL
        pass
