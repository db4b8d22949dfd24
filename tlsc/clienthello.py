"""Reading the server name a client asks for, before any backend sees a byte.

Theory of operation
===================

tlsd -k 1/2 presents a certificate chosen by the client's SNI.  Rather than
teach every backend to switch certificates in the middle of its handshake
(pyOpenSSL cannot even send the ``unrecognized_name`` alert from its
servername callback), the core reads the ClientHello itself: the first
flight is plain records, and the SNI is a few bytes at a known place in it.
One server context per certificate is built at start; the lifecycle picks
the context for the name, makes the session, and feeds it every byte read so
far.  The backend then runs an ordinary handshake, and every backend serves
names the same way.

:class:`ClientHello` is sans-I/O: :meth:`~ClientHello.feed` takes what the
network gave, :attr:`~ClientHello.done` says when the decision can be made.
It never consumes anything: :attr:`~ClientHello.data` is every byte fed, for
the session.  It does not judge the ClientHello either: anything it cannot
read (not a handshake record, a truncated or malformed message, one larger
than :data:`LIMIT`) is :attr:`~ClientHello.problem`, and the backend's own
parser will say what is wrong with it when it matters.

Layout read (RFC 8446 4.1.2, RFC 6066 3)::

    record:      type 22 | version 3.x | length(2) | fragment
    handshake:   type 1  | length(3) | legacy_version(2) random(32)
                 session_id<0..32> cipher_suites<2..2^16-2>
                 compression_methods<1..2^8-1> [extensions<0..2^16-1>]
    extension:   type(2) | length(2) | data;  server_name is type 0:
                 server_name_list<1..2^16-1> of name_type(1) | host_name<1..2^16-1>

The handshake message may span several records; they are joined.
"""

from __future__ import annotations

__all__ = ["LIMIT", "UNRECOGNIZED_NAME_ALERT", "ClientHello", "host_name_in"]

#: Largest ClientHello read (bytes of the handshake message); past it: a problem.
LIMIT = 65536

_HANDSHAKE = 22
_CLIENT_HELLO = 1
_SERVER_NAME = 0
_HOST_NAME = 0

#: A fatal unrecognized_name alert (RFC 6066 3), as a plaintext record.
UNRECOGNIZED_NAME_ALERT = bytes((21, 3, 3, 0, 2, 2, 112))


class _Short(Exception):
    """The message ends before a field does."""


class ClientHello:
    """Buffers a connection's first bytes until the ClientHello's SNI is known."""

    def __init__(self) -> None:
        self.data = bytearray()  #: every byte fed, to hand to the session
        self.done = False  #: the SNI is known, or will never be
        self.eof = False  #: the network ended before that
        #: The host_name the client sent, lower-case; None when it sent none.
        #: A name that is not ASCII is kept with its odd bytes escaped (it
        #: matches nothing, and the core refuses it after the handshake).
        self.server_name: str | None = None
        self.problem: str | None = None  #: why no ClientHello could be read
        self._pos = 0  # start of the next record header in self.data
        self._message = bytearray()  # the handshake message, records joined

    def feed(self, data: bytes) -> None:
        """Bytes from the network; ``b""`` is EOF."""
        if self.done:
            self.data += data
            return
        if not data:
            self.eof = True
            self._finish(problem="the connection closed before the ClientHello was complete")
            return
        self.data += data
        self._scan()

    def _finish(self, problem: str | None = None) -> None:
        self.done = True
        self.problem = problem

    def _scan(self) -> None:
        data = self.data
        while not self.done and len(data) - self._pos >= 5:
            header = data[self._pos : self._pos + 5]
            if header[0] != _HANDSHAKE or header[1] != 3:
                self._finish(problem="not a TLS handshake record")
                return
            length = int.from_bytes(header[3:5], "big")
            if len(data) - self._pos - 5 < length:
                return  # wait for the rest of the record
            self._message += data[self._pos + 5 : self._pos + 5 + length]
            self._pos += 5 + length
            self._parse_message()

    def _parse_message(self) -> None:
        msg = self._message
        if len(msg) < 4:
            return
        if msg[0] != _CLIENT_HELLO:
            self._finish(problem="the first handshake message is not a ClientHello")
            return
        length = int.from_bytes(msg[1:4], "big")
        if length > LIMIT:
            self._finish(problem="the ClientHello is too large")
            return
        if len(msg) - 4 < length:
            return
        try:
            name = _host_name(bytes(msg[4 : 4 + length]))
        except _Short:
            self._finish(problem="malformed ClientHello")
            return
        if name is not None:
            self.server_name = name.decode("ascii", "backslashreplace").lower()
        self._finish()


def host_name_in(message: bytes) -> bytes | None:
    """The host_name a whole ClientHello message (header included) carries, raw; or None.

    For a backend that sees the message inside its library's handshake (the
    stdlib backend's message callback): the same reading as :class:`ClientHello`'s.
    A message this cannot read has no name here; the library, which read it
    first, judges it.
    """
    if len(message) < 4 or message[0] != _CLIENT_HELLO:
        return None
    length = int.from_bytes(message[1:4], "big")
    try:
        return _host_name(message[4 : 4 + length]) if len(message) - 4 >= length else None
    except _Short:
        return None


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n > len(self.data) - self.pos:
            raise _Short
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def number(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def vector(self, length_bytes: int) -> bytes:
        return self.take(self.number(length_bytes))

    def left(self) -> int:
        return len(self.data) - self.pos


def _host_name(body: bytes) -> bytes | None:
    """The first host_name of the server_name extension of a ClientHello body, raw."""
    r = _Reader(body)
    r.take(2 + 32)  # legacy_version, random
    r.vector(1)  # legacy_session_id
    r.vector(2)  # cipher_suites
    r.vector(1)  # legacy_compression_methods
    if not r.left():
        return None  # no extensions at all
    extensions = _Reader(r.vector(2))
    while extensions.left():
        kind = extensions.number(2)
        data = extensions.vector(2)
        if kind != _SERVER_NAME:
            continue
        names = _Reader(_Reader(data).vector(2))
        while names.left():
            name_type = names.number(1)
            name = names.vector(2)
            if name_type == _HOST_NAME:
                return name
        return None
    return None
