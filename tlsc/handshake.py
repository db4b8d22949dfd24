"""The handshake: from the first byte on the network to an established session.

Theory of operation
===================

Two network descriptors and a session, and a deadline (-K).  The loop is the
whole of it::

    session.do_handshake() ──flight──▶ net_w      (written in full, blocking
          ▲                                         with the deadline's poll)
          └──────── one read ◀──────── net_r      (poll under the deadline)

until the session says it is done.  A backend has no clock, so the -K
timeout is the core's own finding: :data:`TIMED_OUT`, exit 98.  A TLS error
sends the backend's alert, best effort, and is exit 98 with the reason's
words.

A server that picks its certificate by the client's SNI (tlsd -k 1/2) has
no session yet: the ClientHello is read first (:mod:`tlsc.clienthello`, no
TLS library involved), ``choose`` makes the session from it, and the bytes
read so far are handed over.  ``choose`` raising :class:`UnrecognizedName`
is answered with the unrecognized_name alert.

Signals: prog has not been executed yet, so a forwarded signal (TERM, INT,
...) interrupts the handshake (:class:`Interrupted`: the lifecycle kills the
waiting child and exits 128 + signal).  Once the handshake is done, prog may
be executed at any moment: from then on the same signals are forwarded to it,
with no gap before the relay installs its own handlers.

The relay that follows is :mod:`tlsc.engine`'s.
"""

from __future__ import annotations

import _signal as signal  # see tlsc.child: no enums built at start-up
import fcntl
import os
import select
import time

from . import exitcodes
from .child import FORWARDED
from .exitcodes import Fatal
from .log import Log
from .reasons import Reason, describe, words
from .session import TLSError

#: ``typing.TYPE_CHECKING`` without importing ``typing`` (see :mod:`tlsc.session`).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from .child import Prog
    from .clienthello import ClientHello
    from .session import Session

    #: Picks the server session from the client's ClientHello (see tlsc.clienthello).
    Chooser = Callable[[ClientHello], Session]


CHUNK = 131072  #: one read from any descriptor (bench/: 64 KiB cost more per GiB)
#: The fatal line of a -K timeout (the core's own finding: a backend has no clock).
TIMED_OUT = f"handshake failed: {Reason.TIMEOUT.words()}"


class UnrecognizedName(Exception):
    """Raised by a :data:`Chooser`: no certificate for this name (tlsd -k 2).

    ``detail``: the name asked for, or that none was.
    """

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class Interrupted(Exception):
    """A forwarded signal arrived before prog was executed."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def set_nonblocking(fd: int) -> None:
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    if not flags & os.O_NONBLOCK:
        fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)


def why(e: OSError) -> str:
    """An OSError in the words of a fatal line."""
    return e.strerror or str(e)


def flush_alert(session: Session, net_w: int) -> None:
    """Best effort: the peer deserves our alert, but we will not wait for it."""
    try:
        out = session.data_to_send()
    except Exception:  # noqa: BLE001 - an alert is a courtesy, never a second failure
        return
    if out:
        try:
            os.write(net_w, out)
        except OSError:
            pass


def handshake(
    session: Session | None,
    choose: Chooser | None,
    net_r: int,
    net_w: int,
    child: Prog,
    timeout_ms: int,
    log: Log,
    peer: str,
) -> Session:
    """Run the handshake to completion and return the session, or raise Fatal(98).

    ``session``, or None and ``choose`` to pick it by the client's SNI (tlsd
    -k 1/2).  ``peer``: who is at the other end, "server" (tlsc) or "client"
    (tlsd), for messages.  ``net_r`` and ``net_w`` are left non-blocking.
    """
    if session is None and choose is None:
        raise ValueError("a handshake needs a session or a way to choose one")
    for fd in (net_r, net_w):
        set_nonblocking(fd)
    deadline = time.monotonic() + timeout_ms / 1000 if timeout_ms else None

    def interrupt(signum: int, frame: object) -> None:
        raise Interrupted(signum)

    previous = {sig: signal.signal(sig, interrupt) for sig in FORWARDED}
    try:
        return _Handshake(net_r, net_w, deadline, log, peer).run(session, choose)
    finally:
        # From here on prog may be running: a signal must be forwarded, never
        # take its default action on tlsc (no gap before the relay installs its own).
        for sig in previous:
            signal.signal(sig, lambda signum, frame: child.kill(signum))


class _Handshake:
    """The loop of the theory above, for one connection."""

    __slots__ = ("deadline", "log", "net_r", "net_w", "peer", "poller")

    def __init__(
        self, net_r: int, net_w: int, deadline: float | None, log: Log, peer: str
    ) -> None:
        self.net_r, self.net_w = net_r, net_w
        self.deadline = deadline
        self.log = log
        self.peer = peer
        self.poller = select.poll()
        self.poller.register(net_r, select.POLLIN)

    def run(self, session: Session | None, choose: Chooser | None) -> Session:
        s = session if session is not None else self._choose(choose)  # type: ignore[arg-type]
        while True:
            try:
                done = s.do_handshake()
            except TLSError as e:
                flush_alert(s, self.net_w)
                raise Fatal(exitcodes.TLS, f"handshake failed: {describe(e, self.peer)}") from None
            out = s.data_to_send()
            if out:
                self.log.debug(f"handshake: sending {len(out)} bytes")
                self._write_all(out)
            if done:
                return s
            s.receive_data(self._read())

    def _remaining(self) -> int | None:
        """Milliseconds left for the next poll, or Fatal(98) when there are none."""
        if self.deadline is None:
            return None
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise Fatal(exitcodes.TLS, TIMED_OUT)
        return max(1, int(left * 1000))

    def _read(self) -> bytes:
        """One read of the network, under the deadline."""
        while True:
            if not self.poller.poll(self._remaining()):
                raise Fatal(exitcodes.TLS, TIMED_OUT)
            try:
                data = os.read(self.net_r, CHUNK)
            except BlockingIOError:
                continue
            except OSError as e:
                raise Fatal(
                    exitcodes.SYSTEM, f"unable to read from the network: {why(e)}"
                ) from None
            self.log.debug(f"handshake: received {len(data)} bytes")
            return data

    def _write_all(self, data: bytes) -> None:
        """A whole flight out, under the deadline."""
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.net_w, view)
                view = view[n:]
                continue
            except BlockingIOError:
                pass
            except OSError as e:
                raise Fatal(
                    exitcodes.SYSTEM, f"unable to write to the network: {why(e)}"
                ) from None
            p = select.poll()
            p.register(self.net_w, select.POLLOUT)
            if not p.poll(self._remaining()):
                raise Fatal(exitcodes.TLS, TIMED_OUT)

    def _choose(self, choose: Chooser) -> Session:
        """Read the ClientHello, let ``choose`` pick the session, give it the bytes."""
        from .clienthello import UNRECOGNIZED_NAME_ALERT, ClientHello

        hello = ClientHello()
        while not hello.done:
            hello.feed(self._read())
        try:
            s = choose(hello)
        except UnrecognizedName as e:
            try:
                os.write(self.net_w, UNRECOGNIZED_NAME_ALERT)
            except OSError:
                pass
            reason = words(Reason.UNRECOGNIZED_NAME, e.detail, self.peer)
            raise Fatal(exitcodes.TLS, f"handshake failed: {reason}") from None
        s.receive_data(bytes(hello.data))
        if hello.eof:
            s.receive_data(b"")
        return s
