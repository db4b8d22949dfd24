"""The sans-I/O session over tlslite-ng's generator API, client and server roles.

tlslite-ng is written for sockets, but every operation also exists as a
generator (``handshakeClientCert(async_=True)``, ``handshakeServerAsync``, ``readAsync``,
``writeAsync``) that yields 0 when the socket would block on reading.  We give
it an in-memory socket: ``recv`` raises ``BlockingIOError(EWOULDBLOCK)`` when
nothing was received (the generator then yields 0 and we report "needs
input"), returns ``b""`` once EOF was fed, and ``send`` appends to the
outgoing buffer and never blocks.

A suspended generator holds state in its frames (a record tlslite has
started to read lives in a local variable of ``_sockRecvAll``), so the
handshake generator, and then ONE read generator at a time, are kept alive
across calls and resumed, never recreated while suspended.

Close semantics are the protocol's: under TLS 1.3 the peer's close_notify ends
only its direction, and ``write`` goes on working until our own close_notify
(RFC 8446 section 6.1; tlslite-ng alone would answer it and wipe its write
keys, see ``_tlslite_private``).  Under TLS 1.2 tlslite-ng answers it with
ours and the connection is over, as the protocol requires.

Both roles share everything but how the handshake starts and which facts
describe the peer: :class:`_SessionBase` is the session, :class:`TlsliteSession`
(client) and :class:`TlsliteServerSession` (server) only fill those in.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from tlsc.reasons import Reason, alert_name
from tlsc.session import (
    AlertReceived,
    EngineError,
    Facts,
    ProtocolError,
    TLSError,
    Truncated,
    WriteClosed,
)
from tlslite.constants import AlertDescription, ContentType
from tlslite.errors import TLSAbruptCloseError, TLSLocalAlert, TLSRemoteAlert
from tlslite.handshakesettings import HandshakeSettings

from ._tlslite_private import (
    VerifyingConnection,
    send_alert,
    send_close_notify,
    unwrap_rijndael,
)

__all__ = [
    "OPENSSL_CIPHER_NAMES",
    "TlsliteClientContext",
    "TlsliteContext",
    "TlsliteServerContext",
    "TlsliteServerSession",
    "TlsliteSession",
    "make_settings",
]

# Handshakes must not read source files: see unwrap_rijndael (TLS_UID).
unwrap_rijndael()

#: IANA suite id -> OpenSSL name (what SSL_CIPHER must say, identical across backends).
OPENSSL_CIPHER_NAMES: dict[int, str] = {
    0x1301: "TLS_AES_128_GCM_SHA256",
    0x1302: "TLS_AES_256_GCM_SHA384",
    0x1303: "TLS_CHACHA20_POLY1305_SHA256",
    0xC02B: "ECDHE-ECDSA-AES128-GCM-SHA256",
    0xC02C: "ECDHE-ECDSA-AES256-GCM-SHA384",
    0xC02F: "ECDHE-RSA-AES128-GCM-SHA256",
    0xC030: "ECDHE-RSA-AES256-GCM-SHA384",
    0xCCA8: "ECDHE-RSA-CHACHA20-POLY1305",
    0xCCA9: "ECDHE-ECDSA-CHACHA20-POLY1305",
}

_PROTOCOLS = {(3, 3): "TLSv1.2", (3, 4): "TLSv1.3"}

#: First byte of a TLS record: change_cipher_spec, alert, handshake, application_data, heartbeat.
_RECORD_TYPES = frozenset(ContentType.all)

#: Alerts tlslite-ng sends when a record fails to decrypt or authenticate.
_BAD_RECORD_ALERTS = frozenset(
    {
        AlertDescription.bad_record_mac,
        AlertDescription.decryption_failed,
        AlertDescription.record_overflow,
    }
)

ChainVerifier = Callable[[list[bytes]], None]


def make_settings() -> HandshakeSettings:
    """TLS 1.2/1.3, ECDHE only, AEAD only; validated now so a bad setting is an EngineError."""
    s = HandshakeSettings()
    s.minVersion = (3, 3)
    s.maxVersion = (3, 4)
    s.versions = [(3, 4), (3, 3)]
    s.cipherNames = ["chacha20-poly1305", "aes128gcm", "aes256gcm"]
    s.macNames = ["aead"]
    s.keyExchangeNames = ["ecdhe_ecdsa", "ecdhe_rsa"]
    s.eccCurves = ["x25519", "secp256r1", "secp384r1", "secp521r1"]
    s.keyShares = ["x25519", "secp256r1"]
    s.dhGroups = []
    # SHA-1 and SHA-224 out of ServerKeyExchange/CertificateVerify signatures.
    s.rsaSigHashes = ["sha512", "sha384", "sha256"]
    s.ecdsaSigHashes = ["sha512", "sha384", "sha256"]
    s.use_heartbeat_extension = False
    # tlslite 0.8.2 compresses our Certificate in TLS 1.3 when the peer asks
    # for it, and OpenSSL then rejects the handshake: never compress (either role).
    s.certificate_compression_send = []
    try:
        return s.validate()
    except Exception as e:
        raise EngineError(f"tlslite-ng rejected our handshake settings: {e}") from None


class _Garbage(OSError):
    """Raised by the memory socket where the input stops looking like TLS records."""

    def __init__(self, reason: str) -> None:
        super().__init__(errno.EPROTO, reason)
        self.reason = reason


class _RecordScanner:
    """Follows the record framing of the incoming stream to spot non-TLS input early.

    Without this, tlslite reads bytes that do not start with a record type as
    an SSLv2 header and may wait for thousands of bytes that never come: an
    HTTP error page followed by EOF would look like a truncation (a clean end
    under -j) instead of the protocol error it is.
    """

    def __init__(self) -> None:
        self._header = bytearray()
        self._body_left = 0

    def feed(self, data: bytes) -> tuple[int, str | None]:
        """(how many bytes of ``data`` are plausible TLS, why the rest is not)."""
        i = 0
        while i < len(data):
            if self._body_left:
                step = min(self._body_left, len(data) - i)
                self._body_left -= step
                i += step
                continue
            start = i
            take = min(5 - len(self._header), len(data) - i)
            self._header += data[i : i + take]
            i += take
            if self._header[0] not in _RECORD_TYPES:
                return start, f"not a TLS record (first byte 0x{self._header[0]:02x})"
            if len(self._header) >= 2 and self._header[1] != 3:
                return start, "not a TLS record (bad version in the record header)"
            if len(self._header) < 5:
                break
            self._body_left = int.from_bytes(self._header[3:5], "big")
            self._header.clear()
        return len(data), None


class _MemorySocket:
    """The socket tlslite-ng thinks it talks to; see the module docstring."""

    def __init__(self) -> None:
        self.incoming = bytearray()
        self.outgoing = bytearray()
        self.eof = False
        self.garbage: str | None = None
        #: Called once when tlslite reaches the garbage, to queue a fatal alert.
        self.on_garbage: Callable[[], None] | None = None
        #: After our close_notify nothing else may go on the wire (tlslite would
        #: answer the peer's close_notify with a second one).
        self.sealed = False
        #: After the handshake, EOF is not shown to tlslite-ng: it would close
        #: both directions, and after a bare FIN (-j) prog may still send.  The
        #: session reports the truncation itself when tlslite needs more input.
        self.hide_eof = False

    def recv(self, bufsize: int) -> bytes:
        if self.incoming:
            out = bytes(self.incoming[:bufsize])
            del self.incoming[:bufsize]
            return out
        if self.garbage is not None:
            callback, self.on_garbage = self.on_garbage, None
            if callback is not None:
                callback()
            raise _Garbage(self.garbage)
        if self.eof and not self.hide_eof:
            return b""
        raise BlockingIOError(errno.EWOULDBLOCK, "no data received yet")

    def send(self, data: bytes) -> int:
        if not self.sealed:
            self.outgoing += data
        return len(data)

    def sendall(self, data: bytes) -> None:
        self.send(data)

    def close(self) -> None:
        """tlslite closes its socket on shutdown; ours has nothing to release."""

    def shutdown(self, how: int) -> None:
        """See :meth:`close`."""

    def settimeout(self, value: float | None) -> None:
        """Never blocks, so no timeout."""

    def gettimeout(self) -> float | None:
        return None

    def getpeername(self) -> tuple[str, int]:
        return ("", 0)

    def getsockname(self) -> tuple[str, int]:
        return ("", 0)


class _SessionBase:
    """One connection in either role; see ``tlsc.session`` for the contract.

    Subclasses implement :meth:`_peer_facts`; ``start``
    turns the fresh connection into its handshake generator.
    """

    def __init__(
        self,
        verifier: ChainVerifier | None,
        start: Callable[[VerifyingConnection], Iterator[Any]],
        optional: bool = False,
    ) -> None:
        self._sock = _MemorySocket()
        self._scanner = _RecordScanner()
        try:
            self._conn = VerifyingConnection(self._sock, verifier, optional)
            self._conn.closeSocket = False
            self._handshaker: Iterator[Any] = start(self._conn)
        except Exception as e:
            raise EngineError(f"tlslite-ng could not start a connection: {e}") from None
        self._sock.on_garbage = self._garbage_alert
        self._handshake_done = False
        self._facts: Facts | None = None
        self._error: TLSError | None = None
        self._reader: Iterator[Any] | None = None
        self._plain = bytearray()
        self._peer_closed = False
        self._truncated: Truncated | None = None
        self._we_closed = False

    # -- input / output --------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        if not data:
            self._sock.eof = True
            return
        if self._sock.garbage is not None:
            return  # nothing after garbage is worth parsing
        good, reason = self._scanner.feed(data)
        self._sock.incoming += data[:good]
        if reason is not None:
            self._sock.garbage = reason

    def data_to_send(self) -> bytes:
        out = bytes(self._sock.outgoing)
        self._sock.outgoing.clear()
        return out

    def _garbage_alert(self) -> None:
        try:
            send_alert(self._conn, AlertDescription.decode_error)
        except Exception:  # best effort: the error is reported anyway
            pass

    # -- errors ------------------------------------------------------------------

    def _fail(self, error: TLSError) -> TLSError:
        """Remember ``error``: every later call re-raises it (the session is dead)."""
        self._error = error
        return error

    def _map_error(self, e: BaseException) -> TLSError:
        """tlslite-ng's exception as the core's reason (the words are the core's)."""
        if isinstance(e, TLSError):
            return e
        if isinstance(e, _Garbage):
            return ProtocolError(Reason.PROTOCOL, e.reason)
        if isinstance(e, TLSLocalAlert):
            verification = self._conn.verification_error
            if verification is not None:
                return verification
            if e.description in _BAD_RECORD_ALERTS:
                return ProtocolError(Reason.BAD_RECORD, e.message or alert_name(e.description))
            return ProtocolError(Reason.PROTOCOL, str(e))
        if isinstance(e, TLSRemoteAlert):
            if e.description == AlertDescription.close_notify:
                # A close_notify where the handshake needed a message: it ended early.
                return Truncated(Reason.TRUNCATED, "close_notify during the handshake")
            return AlertReceived(Reason.ALERT, alert_name(e.description))
        if isinstance(e, TLSAbruptCloseError):
            return Truncated(Reason.TRUNCATED)
        text = str(e)
        return ProtocolError(Reason.PROTOCOL, type(e).__name__ + (f": {text}" if text else ""))

    # -- handshake ---------------------------------------------------------------

    def do_handshake(self) -> bool:
        if self._error is not None:
            raise self._error
        if self._handshake_done:
            return True
        try:
            for result in self._handshaker:
                if result == 0:
                    return False  # wants to read: keep the generator suspended
                # 1 (wants to write) cannot block with our socket: go on
        except Exception as e:  # tlslite raises far more than its own types
            raise self._fail(self._map_error(e)) from None
        self._handshake_done = True
        self._facts = self._collect_facts()
        # TLS 1.3 close_notify is a half-close (RFC 8446 section 6.1): see
        # VerifyingConnection._getNextRecord.  TLS 1.2 keeps tlslite's way: the
        # peer's close_notify is answered and the connection is over.
        self._conn.tlsc_half_close = self._facts.protocol == "TLSv1.3"
        return True

    def _collect_facts(self) -> Facts:
        session = self._conn.session
        protocol = _PROTOCOLS.get(tuple(self._conn.version), "unknown")
        suite = session.cipherSuite
        cipher = OPENSSL_CIPHER_NAMES.get(suite, f"0x{suite:04X}")
        peer, server_name = self._peer_facts(session)
        return Facts(
            protocol=protocol, cipher=cipher, peer_certificate=peer, server_name=server_name
        )

    def _peer_facts(self, session: Any) -> tuple[bytes | None, str | None]:
        """(the peer's leaf certificate, the SNI) once tlslite's ``session`` is set up."""
        raise NotImplementedError

    def facts(self) -> Facts:
        if self._facts is None:
            raise ProtocolError(Reason.FAILURE, "the handshake is not complete")
        return self._facts

    # -- application data -------------------------------------------------------

    def _take(self, max_bytes: int) -> bytes:
        out = bytes(self._plain[:max_bytes])
        del self._plain[:max_bytes]
        return out

    def read(self, max_bytes: int) -> bytes | None:
        if self._plain:
            return self._take(max_bytes)
        if self._error is not None:
            raise self._error
        if self._peer_closed:
            return b""
        if self._truncated is not None:
            raise self._truncated
        if not self._handshake_done and not self.do_handshake():
            return None
        self._sock.hide_eof = True
        if self._reader is None:
            # max=None: everything decrypted so far; we slice it ourselves so
            # that one suspended generator serves calls with any max_bytes.
            self._reader = self._conn.readAsync()
        data: bytes | None = None
        try:
            for result in self._reader:
                if isinstance(result, int):
                    if result == 0:
                        if self._conn.tlsc_peer_closed:
                            data = b""  # TLS 1.3 close_notify, taken out unanswered
                            break
                        if self._sock.eof:
                            break  # EOF and no complete record: see below
                        return None  # needs input; the generator stays suspended
                    continue
                data = bytes(result)
                break
        except Exception as e:
            self._reader = None
            raise self._fail(self._map_error(e)) from None
        if data is None:
            # A truncation ends only the peer's direction: it is remembered for
            # read() but, unlike _error, does not stop write().
            self._truncated = Truncated(Reason.TRUNCATED)
            raise self._truncated
        self._reader = None
        if not data:
            # The peer's close_notify: under TLS 1.3 taken out above (our
            # direction stays open); under TLS 1.2 readAsync returns b"" once
            # tlslite has answered it and closed the connection.
            self._peer_closed = True
            return b""
        self._plain += data
        return self._take(max_bytes)

    def write(self, data: bytes) -> None:
        if self._we_closed:
            raise WriteClosed(Reason.WRITE_CLOSED, "close_notify already sent")
        if self._error is not None:
            raise WriteClosed(Reason.WRITE_CLOSED, f"the session failed: {self._error}")
        if not self._handshake_done:
            raise WriteClosed(Reason.WRITE_CLOSED, "the handshake is not complete")
        if self._conn.closed:
            # Only after the peer's TLS 1.2 close_notify, which tlslite answered:
            # the connection is over (TLS 1.3 keeps our direction open).
            raise WriteClosed(Reason.WRITE_CLOSED, "the peer closed the connection (close_notify)")
        if not data:
            return
        try:
            for _ in self._conn.writeAsync(bytes(data)):
                pass
        except Exception as e:
            raise self._fail(self._map_error(e)) from None

    def close_notify(self) -> None:
        if self._we_closed:
            return
        self._we_closed = True
        if self._error is None and not self._conn.closed:
            try:
                send_close_notify(self._conn)
            except Exception as e:
                raise self._fail(self._map_error(e)) from None
        self._sock.sealed = True


def _leaf(chain: Any) -> bytes | None:
    return bytes(chain.x509List[0].bytes) if chain is not None and chain.x509List else None


class TlsliteSession(_SessionBase):
    """One client connection."""

    def __init__(
        self,
        settings: HandshakeSettings,
        verifier: ChainVerifier | None,
        sni: str | None,
        cert_chain: Any = None,
        private_key: Any = None,
    ) -> None:
        self._sni = sni

        def start(conn: VerifyingConnection) -> Iterator[Any]:
            return conn.handshakeClientCert(
                certChain=cert_chain,
                privateKey=private_key,
                settings=settings,
                serverName=sni,
                async_=True,
            )

        super().__init__(verifier, start)

    def _peer_facts(self, session: Any) -> tuple[bytes | None, str | None]:
        return _leaf(session.serverCertChain), self._sni


class TlsliteServerSession(_SessionBase):
    """One server connection (``tlsd``): facts describe the client.

    With a ``verifier`` a client certificate is requested, and required unless
    ``optional``; the verifier runs on it inside the handshake
    (``VerifyingConnection``).  Any SNI is accepted and recorded.
    """

    def __init__(
        self,
        settings: HandshakeSettings,
        verifier: ChainVerifier | None,
        cert_chain: Any,
        private_key: Any,
        optional: bool = False,
    ) -> None:
        def start(conn: VerifyingConnection) -> Iterator[Any]:
            return conn.handshakeServerAsync(
                certChain=cert_chain,
                privateKey=private_key,
                reqCert=verifier is not None,
                settings=settings,
            )

        super().__init__(verifier, start, optional)

    def _peer_facts(self, session: Any) -> tuple[bytes | None, str | None]:
        return _leaf(session.clientCertChain), session.serverName or None


SessionT = TypeVar("SessionT", bound=_SessionBase)


class TlsliteContext(Generic[SessionT]):
    """Everything per-run (settings, anchors, credentials), parsed once, shared by sessions.

    ``new_session`` makes one session of either role from it (see the backend's
    ``client_context``/``server_context``).
    """

    def __init__(self, new_session: Callable[[], SessionT]) -> None:
        self._new_session = new_session

    def session(self) -> SessionT:
        return self._new_session()


TlsliteClientContext = TlsliteContext[TlsliteSession]
TlsliteServerContext = TlsliteContext[TlsliteServerSession]
