"""The fuzz target: drive a backend's client session the way the core does.

Every call that may raise is allowed to raise only :class:`TLSError`
subclasses; anything else is a finding.  Each input runs under a wall-clock
alarm (a hang is a finding) and a bounded number of calls, with tracemalloc
measuring the peak memory it allocated.
"""

from __future__ import annotations

import signal
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points

from tlsc.session import Backend, ClientConfig, Session, TLSError

from . import mutate

__all__ = ["Hang", "Outcome", "backends", "drive", "run_live", "run_replay"]

#: Per input: seconds (wall clock) and bytes (tracemalloc peak).
TIME_LIMIT = 5.0
MEMORY_LIMIT = 8 * 1024 * 1024
#: Calls into the session between two receive_data calls (a session that keeps saying
#: "more" without new input is looping); the total is bounded by the input's length.
CALL_LIMIT = 1000


def backends() -> dict[str, Backend]:
    from tlsc.registry import resolve

    names = sorted({ep.name for ep in entry_points(group="tlsc.backends")})
    return {n: resolve(n) for n in names}


class Hang(BaseException):
    """Raised by the alarm: BaseException so that no ``except Exception`` in a backend eats it."""


@dataclass
class Outcome:
    error: TLSError | None = None
    handshake_done: bool = False
    plaintext: bytes = b""
    clean_close: bool = False
    calls: int = 0
    elapsed: float = 0.0
    peak: int = 0
    sent: list[bytes] = field(default_factory=list)

    def describe(self) -> str:
        e = f"{type(self.error).__name__}: {self.error}" if self.error else "no error"
        return (f"{e}; handshake_done={self.handshake_done} plaintext={self.plaintext[:40]!r} "
                f"calls={self.calls} {self.elapsed:.2f}s peak={self.peak}")


class Driver:
    """A session plus the bookkeeping: every call counted, data_to_send drained after each."""

    def __init__(self, session: Session, outcome: Outcome):
        self.s = session
        self.o = outcome

    since_input = 0

    def call(self, fn: Callable, *args):
        self.o.calls += 1
        self.since_input = 0 if fn == self.s.receive_data else self.since_input + 1
        if self.since_input > CALL_LIMIT:
            raise AssertionError(f"more than {CALL_LIMIT} calls into the session without input")
        try:
            return fn(*args)
        finally:
            out = self.s.data_to_send()
            assert isinstance(out, bytes), f"data_to_send returned {type(out).__name__}"
            if out:
                self.o.sent.append(out)

    def progress(self) -> bool:
        """do_handshake then read, as the core does after receive_data.  True: stop."""
        if not self.o.handshake_done:
            done = self.call(self.s.do_handshake)
            assert isinstance(done, bool), f"do_handshake returned {done!r}"
            if not done:
                return False
            self.o.handshake_done = True
        for _ in range(CALL_LIMIT):
            got = self.call(self.s.read, 65536)
            if got is None:
                return False
            assert isinstance(got, bytes) and len(got) <= 65536, f"read returned {got!r}"
            if got == b"":
                self.o.clean_close = True
                return True
            self.o.plaintext += got
            assert len(self.o.plaintext) < 1 << 20, "more plaintext than the input could carry"
        raise AssertionError("read never ran dry")


def _guarded(fn: Callable[[Outcome], None], time_limit: float) -> Outcome:
    outcome = Outcome()

    def alarm(signum, frame):
        raise Hang(f"input took more than {time_limit}s ({outcome.calls} calls so far)")

    old = signal.signal(signal.SIGALRM, alarm)
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    started = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, time_limit)
    try:
        try:
            fn(outcome)
        except TLSError as e:
            outcome.error = e
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        outcome.elapsed = time.monotonic() - started
        outcome.peak = tracemalloc.get_traced_memory()[1] - base
        if not tracing:
            tracemalloc.stop()
    return outcome


def drive(d: Driver, flights: Sequence[bytes], cuts: Sequence[int],
          prepare: Callable[[int, bytes], bytes] | None = None) -> None:
    """ClientHello, then each flight cut in chunks through receive_data, then EOF.

    ``prepare(i, flight)`` may rewrite a flight just before it is fed.
    """
    if d.progress():
        return
    for i, flight in enumerate(flights):
        if prepare is not None:
            flight = prepare(i, flight)
        for chunk in mutate.split(flight, cuts):
            d.call(d.s.receive_data, chunk)
            if d.progress():
                return
    d.call(d.s.receive_data, b"")
    # After EOF a session must end: an error (Truncated, or the one pending), or b"".
    for _ in range(3):
        if d.progress():
            return
    raise AssertionError("after EOF the session still says 'needs input'")


@dataclass(frozen=True)
class ReplayInput:
    seed: str
    flights: tuple[bytes, ...]
    cuts: tuple[int, ...] = ()
    verify: bool = False
    fixup: bool = True


def run_replay(backend: Backend, inp: ReplayInput, anchor: bytes,
               time_limit: float = TIME_LIMIT) -> Outcome:
    """Feed recorded (mutated) server flights to a fresh client session."""
    if inp.verify:
        cfg = ClientConfig(anchors=(("fuzz-root", anchor),), server_name="fuzz.example")
    else:
        cfg = ClientConfig(verify=False)
    ctx = backend.client_context(cfg, lambda m: None)

    def body(o: Outcome) -> None:
        d = Driver(ctx.session(), o)

        def prepare(i: int, flight: bytes) -> bytes:
            if i == 0 and inp.fixup and o.sent:
                return mutate.fixup_session_id(flight, o.sent[0])
            return flight

        drive(d, inp.flights, inp.cuts, prepare)

    return _guarded(body, time_limit)


def _drain_bio(conn) -> bytes:
    from OpenSSL import SSL

    out = b""
    while True:
        try:
            out += conn.bio_read(65536)
        except SSL.WantReadError:
            return out


def run_live(backend: Backend, version: str, kind: str, verify: bool,
             target_flight: int, ops: Sequence[tuple[str, int, int, int]],
             cuts: Sequence[int], time_limit: float = TIME_LIMIT) -> Outcome:
    """A live pyOpenSSL server in memory, its ``target_flight``-th flight mutated in transit.

    The flights before it are genuine, so the client is in a real state (a completed
    TLS 1.2 key exchange, TLS 1.3 with keys, or a finished handshake) when the mutated
    one arrives.  The server sends ``hello`` and close_notify once its handshake is done.
    """
    from OpenSSL import SSL

    from tlsc.testing.memory import HOST, client_config, handshake_pki

    pki = handshake_pki()
    leaf = pki.rsa if kind == "rsa" else pki.ecdsa
    sctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    v = {"TLSv1.2": SSL.TLS1_2_VERSION, "TLSv1.3": SSL.TLS1_3_VERSION}[version]
    sctx.set_min_proto_version(v)
    sctx.set_max_proto_version(v)
    sctx.use_certificate(leaf.cert)
    sctx.use_privatekey(leaf.key)
    sctx.add_extra_chain_cert(pki.inter.cert)
    cfg = client_config(pki) if verify else ClientConfig(verify=False, server_name=HOST)
    ctx = backend.client_context(cfg, lambda m: None)

    def body(o: Outcome) -> None:
        srv = SSL.Connection(sctx, None)
        srv.set_accept_state()
        d = Driver(ctx.session(), o)
        flight = 0
        server_done = False
        said_hello = False
        if d.progress():
            return
        for _ in range(50):
            for out in o.sent:
                srv.bio_write(out)
            o.sent.clear()
            try:
                if not server_done:
                    srv.do_handshake()
                    server_done = True
                elif not said_hello:  # a flight of its own, after the handshake's last
                    said_hello = True
                    srv.sendall(b"hello")
                    srv.shutdown()
            except SSL.WantReadError:
                pass
            except SSL.Error:
                server_done = said_hello = True  # the server gave up; the client goes on
            back = _drain_bio(srv)
            if not back:
                if server_done and not said_hello:
                    continue
                break
            if flight == target_flight:
                back = mutate.apply_all(back, ops)
            flight += 1
            for chunk in mutate.split(back, cuts):
                d.call(d.s.receive_data, chunk)
                if d.progress():
                    return
        d.call(d.s.receive_data, b"")
        for _ in range(3):
            if d.progress():
                return
        raise AssertionError("after EOF the session still says 'needs input'")

    return _guarded(body, time_limit)
