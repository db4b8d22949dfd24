"""The TLS engine: the full-duplex relay, once the handshake is done (:mod:`tlsc.handshake`).

Theory of operation
===================

Four descriptors, all non-blocking and all ours::

    net_r ──ciphertext──▶ session ──plaintext──▶ to_prog    (direction "down")
    net_w ◀──ciphertext── session ◀──plaintext── from_prog  (direction "up")

Each direction has one bounded :class:`Outbox` of bytes waiting for its
destination (``self.down`` towards prog, ``self.up`` towards the network).  A source is
polled only while its destination buffer is under ``HIGH``; that single rule is
the flow control: a slow reader fills its buffer, the buffer stops its source,
and the kernel's socket or pipe buffers push back on the far writer.  prog's
pipes start at the kernel's size; the first time one is found full it is
grown (:func:`tlsc.child.grow_pipe`).  The
session never holds more than one network read (``CHUNK``) of unconsumed
ciphertext, because the network is read only once the session has no
plaintext left to give (``self.backlog`` is false).

The directions end independently:

* down ends when the peer's data ends (close_notify, or EOF without it under
  -j) and ``self.down`` is flushed: prog's fd 6 is closed, so prog reads EOF.
  It also ends, with its data discarded, when prog closes its end (EPIPE or
  POLLERR on ``to_prog``), and under -S as soon as prog's data ends.
* up ends when prog's data ends (EOF on ``from_prog``): -S/-s decide whether a
  close_notify goes out, then ``self.up`` is flushed and the TCP write side is
  shut (or fd 7 closed when it is not a socket).  If the session can no longer
  write (peer's close_notify in TLS 1.2, or a backend without
  ``write_after_close_notify``), prog's further output is read and discarded.

When both have ended the network descriptors are closed and prog is waited
for: its exit code becomes ours.  A TLS error delivers the plaintext already
decrypted, sends the backend's alert, closes prog's pipes, waits for prog and
exits 98.
"""

from __future__ import annotations

import _signal as signal  # see tlsc.child: no enums built at start-up
import fcntl
import gc
import os
import select
import stat
import time

from . import exitcodes
from .child import FORWARDED, SMALL_PIPE, grow_pipe
from .exitcodes import Fatal
from .handshake import CHUNK, flush_alert, set_nonblocking, why
from .log import Log
from .reasons import describe
from .session import TLSError, Truncated, WriteClosed

#: ``typing.TYPE_CHECKING`` without importing ``typing`` (see :mod:`tlsc.session`).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from .child import Prog
    from .session import Session


HIGH = 2 * CHUNK  #: a buffer at or above this stops its source
IOV_MAX = 1024  #: chunks per writev (POSIX guarantees at least 16; Linux takes 1024)
RECORD = 16384  #: one TLS record's plaintext: what one session read can return
LINGER = 2.0  #: seconds to drain the peer once prog is done, before closing anyway


POLLIN = select.POLLIN
POLLOUT = select.POLLOUT
POLLERRS = select.POLLERR | select.POLLHUP | select.POLLNVAL


class Settings:
    """-S, -J and -K: what the engine needs of the command line."""

    __slots__ = ("close_notify_on_eof", "enforce_close_notify", "handshake_timeout_ms")

    def __init__(
        self,
        close_notify_on_eof: bool = False,  # -S
        enforce_close_notify: bool = False,  # -J
        handshake_timeout_ms: int = 0,  # -K
    ) -> None:
        self.close_notify_on_eof = close_notify_on_eof
        self.enforce_close_notify = enforce_close_notify
        self.handshake_timeout_ms = handshake_timeout_ms


def is_socket(fd: int) -> bool:
    try:
        return stat.S_ISSOCK(os.fstat(fd).st_mode)
    except OSError:
        return False


#: Size of the one block :func:`raise_malloc_thresholds` allocates and frees.
THRESHOLD_PRIMER = 1 << 20


def raise_malloc_thresholds() -> None:
    """Keep the relay's buffers on the heap: no mmap, no trim, no page faults per chunk.

    Every round of the relay allocates and frees blocks of about ``CHUNK``
    (a network or prog read, a session's output).  glibc's malloc serves a
    block of 128 KiB or more with a fresh ``mmap`` and gives the heap's top
    back with ``brk`` once 128 KiB of it are free, so each round faulted in
    and zeroed new pages: a third of the upload's CPU on the stdlib backend.
    glibc raises both thresholds by itself after freeing an mmapped block
    (to its size, and twice its size for the trim): one ``bytes`` of
    ``THRESHOLD_PRIMER`` bytes, made with calloc (never touched: no page
    fault) and freed at once, does that.  Other allocators ignore it.
    """
    bytes(THRESHOLD_PRIMER)


class Outbox:
    """Bytes waiting for one descriptor, kept as the chunks they arrived in.

    They leave with one ``writev``: plaintext goes from the session's buffers
    to prog's pipe with no copy of ours in between, and no buffer is grown and
    shrunk (realloc, fresh pages to fault in) on every round, which is what a
    ``bytearray`` that is appended to and then emptied does.
    """

    __slots__ = ("chunks", "size")

    def __init__(self) -> None:
        self.chunks: list[bytes | memoryview] = []
        self.size = 0  #: bytes waiting

    def __bool__(self) -> bool:
        return self.size > 0

    def __len__(self) -> int:
        return self.size

    def append(self, data: bytes) -> None:
        self.chunks.append(data)
        self.size += len(data)

    def clear(self) -> None:
        self.chunks.clear()
        self.size = 0

    def write_to(self, fd: int) -> None:
        """One ``writev`` of what is waiting; OSError (EAGAIN included) is the caller's."""
        chunks = self.chunks
        n = os.writev(fd, chunks if len(chunks) <= IOV_MAX else chunks[:IOV_MAX])
        self.size -= n
        done = 0
        for chunk in chunks:
            if n < len(chunk):
                if n:
                    chunks[done] = memoryview(chunk)[n:]
                break
            n -= len(chunk)
            done += 1
        del chunks[:done]


class Engine:
    """The relay of one connection: the network pair, the session, the child."""

    def __init__(
        self,
        session: Session,
        net_r: int,
        net_w: int,
        child: Prog,
        settings: Settings,
        log: Log,
        peer: str,
    ) -> None:
        """``session``: established by :func:`tlsc.handshake.handshake`, which left
        ``net_r`` and ``net_w`` non-blocking.

        ``peer``: who is at the other end, "server" (tlsc) or "client" (tlsd), for messages.
        """
        self.s = session
        self.peer = peer
        self.net_r = net_r
        self.net_w = net_w
        self.child = child
        self.cfg = settings
        self.log = log
        self.poller = select.poll()
        self.registered: dict[int, int] = {}

    # -- small I/O helpers --------------------------------------------------

    def _register(self, fd: int, events: int, keep: bool = False) -> None:
        """Watch ``fd`` for ``events``; with no events it is dropped from the set.

        ``keep`` leaves it registered with no events, for POLLERR alone: that is how
        we learn prog closed its input.  Nothing else is kept idle, since POLLHUP on
        an idle socket or pipe would wake the loop forever.
        """
        if fd < 0:
            return
        if not events and not keep:
            self._forget(fd)
            return
        if self.registered.get(fd) != events:
            if fd in self.registered:
                self.poller.modify(fd, events)
            else:
                self.poller.register(fd, events)
            self.registered[fd] = events

    def _forget(self, fd: int) -> None:
        if fd in self.registered:
            self.poller.unregister(fd)
            del self.registered[fd]

    def _close(self, fd: int) -> int:
        if fd >= 0:
            self._forget(fd)
            try:
                os.close(fd)
            except OSError:
                pass
        return -1

    # -- the relay ----------------------------------------------------------

    def relay(self, can_write_after_close_notify: bool, tls13: bool) -> int:
        """Move data both ways until both directions end; return tlsc's exit code."""
        self.tls13 = tls13
        self.write_after_peer_close = can_write_after_close_notify and tls13
        self.to_prog = self.child.to_prog
        self.from_prog = self.child.from_prog
        for fd in (self.to_prog, self.from_prog):
            set_nonblocking(fd)
        self.down = Outbox()
        self.up = Outbox()
        self.small_to_prog = self.small_from_prog = True  # not grown yet (tlsc.child.grow_pipe)
        self.backlog = True  # the session may hold plaintext (e.g. with the last flight)
        self.peer_ended = False  # close_notify or EOF seen
        self.net_eof = False
        self.prog_ended = False  # EOF on from_prog
        self.discard_down = False  # -S after prog EOF: drain the network, deliver nothing
        self.discard_up = 0  # bytes of prog's output thrown away
        self.discarding_up = False  # the session cannot send any more
        self.up_closed = False  # our write side shut
        self.close_pending = False  # shut the write side once self.up is flushed
        self.linger_until: float | None = None  # draining a talkative peer at the end

        def forward(signum: int, frame: object) -> None:
            self.child.kill(signum)

        for sig in FORWARDED:
            signal.signal(sig, forward)

        # Everything allocated so far (the imported crypto library, above all)
        # lives as long as we do: out of the collector's sight, the full
        # collections that the relay's allocations trigger stay cheap.  The
        # collector is back on from here (tlsc.quick turns it off at start).
        gc.freeze()
        gc.enable()
        raise_malloc_thresholds()
        try:
            self._pump()
            while self._step():
                pass
        except TLSError as e:
            return self._fail(e)
        except Fatal:
            # A system call failed: prog's pipes are closed and prog waited for,
            # as after a TLS error, so that no prog outlives tlsc.
            self._close_all()
            self.child.wait()
            raise
        return self._finish()

    def _done(self) -> bool:
        if self.to_prog >= 0 or not self.up_closed or self.from_prog >= 0:
            return False
        if self.discard_down and not self.peer_ended:
            # prog is done and our side is shut, but the peer still talks: drain
            # it for a while, because closing a socket with unread data sends an
            # RST, and an RST can destroy what the peer has not read of ours yet.
            if self.linger_until is None:
                self.linger_until = time.monotonic() + LINGER
            return time.monotonic() >= self.linger_until
        return True

    def _poll_timeout(self) -> int | None:
        if self.linger_until is None:
            return None
        return max(1, int((self.linger_until - time.monotonic()) * 1000))

    def _step(self) -> bool:
        if self._done():
            return False
        # Reading the network is needed while prog wants its data, and also while
        # we still wait for the peer's close_notify after our own (-S).
        want_net = (
            not self.net_eof
            and not self.backlog
            and len(self.down) < HIGH
            and (self.to_prog >= 0 or self.discard_down)
        )
        self._register(self.net_r, POLLIN if want_net else 0)
        self._register(self.net_w, POLLOUT if self.up else 0)
        self._register(self.to_prog, POLLOUT if self.down else 0, keep=True)
        want_prog = not self.prog_ended and len(self.up) < HIGH
        self._register(self.from_prog, POLLIN if want_prog else 0)
        if not self.registered:
            # Nothing can make progress: only a bug gets here; never spin or hang.
            raise Fatal(exitcodes.SYSTEM, "internal error: relay stalled")
        for fd, ev in self.poller.poll(self._poll_timeout()):
            if fd == self.net_r and want_net:
                self._read_net()
            elif fd == self.net_w and self.up:
                self._write_net()
            elif fd == self.to_prog:
                if ev & POLLOUT and self.down:
                    self._write_prog()
                elif ev & POLLERRS:
                    self._prog_gone()
            elif fd == self.from_prog and want_prog:
                self._read_prog()
        return True

    # down: network -> session -> prog

    def _read_net(self) -> None:
        try:
            data = os.read(self.net_r, CHUNK)
        except BlockingIOError:
            return
        except OSError as e:
            raise Fatal(exitcodes.SYSTEM, f"unable to read from the network: {why(e)}") from None
        if not data:
            self.net_eof = True
            self._forget(self.net_r)
            self.log.debug("network: EOF")
        self.s.receive_data(data)
        self.backlog = True
        self._pump()

    def _pump(self) -> None:
        """Pull plaintext out of the session while prog's buffer has room.

        The session's output (a KeyUpdate answer, say) is collected once per
        batch of records, not once per record: nothing waits in between.
        """
        read = self.s.read
        down = self.down
        while self.backlog and down.size < HIGH:
            try:
                data = read(RECORD)
            except Truncated:
                self._drain_session_output()
                if self.cfg.enforce_close_notify:
                    raise
                self.log.info("peer closed the connection without close_notify")
                self._peer_end(clean=False)
                return
            except TLSError as e:
                if not (self.discard_down and self.up_closed):
                    raise
                # Nobody wants the peer's data any more and all of ours is sent: an
                # error now (typically a TLS 1.2 server answering our bare half-close
                # with an alert) loses nothing, so it ends the session, not tlsc.
                why = describe(e, self.peer)
                self.log.info(f"{self.peer} after the end of the session: {why}")
                self._peer_end(clean=False)
                return
            if data is None:
                self.backlog = False
                break
            if not data:
                self._drain_session_output()
                self.log.info("peer sent close_notify")
                self._peer_end(clean=True)
                return
            if self.to_prog >= 0 and not self.discard_down:
                down.append(data)
        self._drain_session_output()
        if down and self.to_prog >= 0:
            self._write_prog()

    def _drain_session_output(self) -> None:
        out = self.s.data_to_send()
        if out and not self.up_closed:
            self.up.append(out)
            self._write_net()

    def _peer_end(self, clean: bool) -> None:
        self.peer_ended = True
        self.backlog = False
        self.net_eof = True
        self.net_r = self._close(self.net_r)
        if self.discard_down:
            self.down.clear()
        if not self.down:
            self._end_down()
        if clean and not self.write_after_peer_close and not self.up_closed:
            # TLS 1.2 (or a backend that cannot half-close): answer the close_notify
            # and stop sending; whatever prog still writes is read and dropped.
            try:
                self.s.close_notify()
            except TLSError:
                pass
            self._drain_session_output()
            self.discarding_up = True
            self.close_pending = True
            self._maybe_close_up()

    def _write_prog(self) -> None:
        try:
            self.down.write_to(self.to_prog)
        except BlockingIOError:
            pass
        except BrokenPipeError:
            self._prog_gone()
            return
        except OSError as e:
            raise Fatal(exitcodes.SYSTEM, f"unable to write to prog: {why(e)}") from None
        if self.down:  # prog's pipe is full
            if self.small_to_prog:
                self.small_to_prog = False
                grow_pipe(self.to_prog)
            return
        if self.peer_ended:
            self._end_down()
        elif self.backlog:
            self._pump()

    def _prog_gone(self) -> None:
        """prog closed its fd 6: nothing more to deliver; the network is drained, not left."""
        if self.down:
            self.log.info(f"prog closed its input: {len(self.down)} bytes not delivered")
        self.down.clear()
        self.discard_down = not self.peer_ended
        if self.to_prog >= 0:
            self.to_prog = self._close(self.to_prog)
        if self.backlog:
            self._pump()

    def _end_down(self) -> None:
        if self.to_prog >= 0:
            self.log.debug("prog's input: EOF")
            self.to_prog = self._close(self.to_prog)
        self.backlog = False
        if not self.discard_down:
            self.net_eof = True  # nobody wants the network's data any more

    # up: prog -> session -> network

    def _read_prog(self) -> None:
        try:
            data = os.read(self.from_prog, CHUNK)
        except BlockingIOError:
            return
        except OSError as e:
            raise Fatal(exitcodes.SYSTEM, f"unable to read from prog: {why(e)}") from None
        if not data:
            self._prog_eof()
            return
        if self.small_from_prog and len(data) >= SMALL_PIPE:  # it was full
            self.small_from_prog = False
            grow_pipe(self.from_prog)
        if self.discarding_up:
            self.discard_up += len(data)
            return
        try:
            self.s.write(data)
        except WriteClosed:
            self.discarding_up = True
            self.discard_up += len(data)
            return
        self._drain_session_output()

    def _prog_eof(self) -> None:
        self.prog_ended = True
        self.from_prog = self._close(self.from_prog)
        if self.discard_up:
            self.log.info(
                f"discarded {self.discard_up} bytes prog wrote after the peer closed its side"
            )
        self.log.debug("prog's output: EOF")
        if self.cfg.close_notify_on_eof:
            # -S: end the session; records still arriving are drained, not delivered.
            self._send_close_notify()
            self.discard_down = not self.peer_ended
            self.down.clear()
            if self.to_prog >= 0:
                self.to_prog = self._close(self.to_prog)
            self._pump()
        elif self.tls13 and not self.discarding_up:
            self._send_close_notify()  # TLS 1.3: close_notify is a half-close
        self.close_pending = True
        self._maybe_close_up()

    def _send_close_notify(self) -> None:
        if self.discarding_up or self.up_closed:
            return
        try:
            self.s.close_notify()
        except TLSError:
            pass
        self._drain_session_output()

    def _write_net(self) -> None:
        if self.net_w < 0 or not self.up:
            return
        try:
            self.up.write_to(self.net_w)
        except BlockingIOError:
            return
        except OSError as e:
            if self.peer_ended:
                self.log.info(f"network closed by the peer: {len(self.up)} bytes not sent")
                self.up.clear()
                self.close_pending = True
                self._maybe_close_up()
                return
            raise Fatal(exitcodes.SYSTEM, f"unable to write to the network: {why(e)}") from None
        if not self.up:
            self._maybe_close_up()

    def _maybe_close_up(self) -> None:
        if not self.close_pending or self.up or self.up_closed:
            return
        self.up_closed = True
        self.log.debug("network: our side closed")
        if is_socket(self.net_w):
            # The C half of ``socket``, imported here: ``socket.py`` builds enums
            # (~4 ms of every start) for a call made once, at the end.
            from _socket import SHUT_WR, socket

            try:
                sock = socket(fileno=os.dup(self.net_w))
                try:
                    sock.shutdown(SHUT_WR)
                finally:
                    sock.close()
            except OSError:
                pass
        # fd 6 may be the same socket: closing fd 7 alone sends nothing, which is
        # why the shutdown above comes first.
        self.net_w = self._close(self.net_w)

    # -- the end --------------------------------------------------------------

    def _close_all(self) -> None:
        for name in ("to_prog", "from_prog", "net_r", "net_w"):
            fd = getattr(self, name, -1)
            if fd >= 0:
                setattr(self, name, self._close(fd))

    def _finish(self) -> int:
        """Both directions ended: close the network and wait for prog."""
        self._close_all()
        code = self.child.wait()
        self.log.debug(f"prog exited: {code}")
        return code

    def _fail(self, error: TLSError) -> int:
        """A TLS error after the handshake: deliver what was decrypted, then exit 98."""
        flush_alert(self.s, self.net_w)
        if self.down and self.to_prog >= 0:
            fl = fcntl.fcntl(self.to_prog, fcntl.F_GETFL)
            fcntl.fcntl(self.to_prog, fcntl.F_SETFL, fl & ~os.O_NONBLOCK)
            try:
                while self.down:
                    self.down.write_to(self.to_prog)
            except OSError:
                pass
        self._close_all()
        self.child.wait()
        what = "connection truncated" if isinstance(error, Truncated) else "TLS error"
        raise Fatal(exitcodes.TLS, f"{what}: {describe(error, self.peer)}")
