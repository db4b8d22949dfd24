"""No byte lost: full-duplex transfers in which one side finishes first, on every backend.

Theory of operation
===================

A duplex scenario runs the real commands -- ``tlsc`` or ``tlsd``, the engine and
a backend together, since a byte can be lost by either -- with a prog that moves
``n`` bytes each way at once, against a peer doing the same on the other side.
Each end sends a deterministic stream (SHAKE-256 of its role, "client" or
"server"), so the receiving end checks every byte (SHA-256 of what it got against
the same prefix of the stream) and reports how much it wrote.

Each end follows one of two schedules:

*ends first*
    send all ``n`` bytes while reading, then end its direction (prog: close its
    output; the stdlib peer: close_notify and a TCP half-close), and read on
    until the other side ends.
*ends last*
    send the first half while reading, read until the other side's end, *then*
    send the second half, then end.

One end ends first, the other last, so the order of the ends is forced by the
data, never by timing: when the peer ends first, prog writes its second half
after it has read EOF, that is after the peer's close_notify was delivered.
What must arrive is what the protocol allows:

* TLS 1.3: everything, both ways: close_notify is a half-close (RFC 8446 6.1).
  The peer closes as soon as its data is sent, while prog's first half may still
  be in flight -- where a byte used to be lost, one 128 KiB read of it.
* TLS 1.2, prog ends first: everything, both ways (-s ends our direction with a
  bare TCP half-close and the peer goes on sending).
* TLS 1.2, the peer ends first: everything the peer sent reaches prog, and its
  close_notify ends the connection (RFC 5246 7.2.1): answered with ours, prog's
  later output discarded.  The peer closes only once it holds prog's whole first
  half, so what is discarded is exactly the second half: the peer must receive
  the first half and nothing more, and the command's note at -v 2 must count
  exactly the second half.

Every run must end cleanly: the command exits with prog's status (0), with no
fatal line and no traceback, and prog never sees a write error.

Three arrangements, each a scenario battery:

* :func:`client_scenarios`: ``tlsc --backend B`` against a stdlib ``ssl``
  server (peer ``python-ssl``), TLS 1.2 and 1.3;
* :func:`server_scenarios`: ``tlsd --backend B`` against a stdlib ``ssl``
  client (peer ``python-ssl-client``; the backend under test is the server's);
* :func:`pair_scenarios`: ``tlsc --backend B`` against ``tlsd --backend S``
  with a prog on each side (peer ``tlsd-S``), TLS 1.3 only (neither command can
  be pinned to 1.2).

The command lines are parameters, so that the harness's own tests can run the
batteries against a relay that loses data and see them fail.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import select
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tlsc.session import Backend

from .live import LiveScenario, _files
from .memory import HOST
from .tlsdpeers import TLSD, TlsdPeer

__all__ = [
    "BYTES",
    "BYTES_SLOW",
    "PROG",
    "TLSC",
    "client_scenarios",
    "pair_scenarios",
    "server_scenarios",
    "size_for",
]

TLSC = [sys.executable, "-m", "tlsc"]
MiB = 1 << 20
#: Bytes each way: 16 of the relay's 128 KiB reads in each half.
BYTES = 4 * MiB
#: With a pure-Python backend on either side (tlslite's ciphers: ~0.3 MiB/s of CPU
#: here): still three 128 KiB reads each way, one and a half in each half.
BYTES_SLOW = 384 << 10
SLOW = frozenset({"tlslite"})
#: A bound on a hung run (never a timing requirement).
DEADLINE = 120.0
CHUNK = 65536
RECORD = 16384
#: The stdlib peer stops producing while this much ciphertext waits for the socket.
HIGH = 1 << 20
VERSIONS = ("TLSv1.3", "TLSv1.2")
#: What the engine says at -v 2 about prog's output it could not send.
DISCARDED = re.compile(r"discarded (\d+) bytes")

#: prog: ``rfd wfd first n first|last label report``: send ``n`` bytes of the
#: ``label`` stream on ``wfd`` while reading ``rfd`` to EOF, on the schedule
#: named (see the module docstring), then write a JSON report.
PROG = r"""
import hashlib, json, os, sys, threading
rfd, wfd, first, n = (int(a) for a in sys.argv[1:5])
ends_first, label, report = sys.argv[5] == "first", sys.argv[6], sys.argv[7]
data = hashlib.shake_256(label.encode()).digest(n)
r = {"written": 0, "write_error": None, "received": 0, "read_error": None}
def send(lo, hi):
    view = memoryview(data)[lo:hi]
    try:
        while view:
            k = os.write(wfd, view[:65536])
            view = view[k:]
            r["written"] += k
    except OSError as e:
        r["write_error"] = f"{type(e).__name__}: {e}"
def send_all_and_close():
    send(0, n)
    os.close(wfd)
w = threading.Thread(target=send_all_and_close) if ends_first else \
    threading.Thread(target=send, args=(0, first))
w.start()
h = hashlib.sha256()
try:
    while chunk := os.read(rfd, 65536):
        h.update(chunk)
        r["received"] += len(chunk)
except OSError as e:
    r["read_error"] = f"{type(e).__name__}: {e}"
w.join()
if not ends_first:
    send(first, n)
    os.close(wfd)
r["sha256"] = h.hexdigest()
with open(report, "w") as f:
    json.dump(r, f)
"""


def size_for(*backends: str) -> int:
    """Bytes each way when these backends are involved."""
    return BYTES_SLOW if SLOW & set(backends) else BYTES


def stream(label: str, n: int) -> bytes:
    """The first ``n`` bytes an end labelled ``label`` sends."""
    return hashlib.shake_256(label.encode()).digest(n)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _env(**extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LC_ALL": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        **extra,
    }


def _prog(rfd: int, wfd: int, n: int, ends_first: bool, label: str, report: Path) -> list[str]:
    order = "first" if ends_first else "last"
    return [sys.executable, "-c", PROG, str(rfd), str(wfd), str(n // 2), str(n), order, label,
            str(report)]


def _report(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return None


# -- the stdlib peer ---------------------------------------------------------------


class PyEnd:
    """The stdlib-``ssl`` end of a duplex run: an SSLObject over memory BIOs on a socket.

    TCP EOF is never fed to OpenSSL (its TLS 1.2 answer to a bare EOF is a fatal
    error): it is noted, and the other side's end is "eof" when no close_notify
    came first.  ``close_after``: with *ends first*, send close_notify only once
    that many bytes were received (the TLS 1.2 boundary, see the module docstring).
    """

    def __init__(
        self,
        sock: socket.socket,
        ctx: ssl.SSLContext,
        *,
        server_side: bool,
        n: int,
        ends_first: bool,
        close_after: int = 0,
    ) -> None:
        self.sock = sock
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        hostname = None if server_side else HOST
        self.obj = ctx.wrap_bio(self.inc, self.out, server_side=server_side,
                                server_hostname=hostname)
        self.n = n
        self.ends_first = ends_first
        self.close_after = close_after
        self.payload = stream("server" if server_side else "client", n)
        self.wbuf = bytearray()
        self.tcp_eof = False
        self.shut = False
        self.sent = 0
        self.closed = False
        self.received = 0
        self.digest = hashlib.sha256()
        self.their_end: str | None = None
        self.deadline = time.monotonic() + DEADLINE
        self.result: dict[str, Any] = {}

    def run(self) -> dict[str, Any]:
        """The whole exchange; the result says what was received and how it ended."""
        self.sock.setblocking(False)
        try:
            self._handshake()
            self.result["protocol"] = self.obj.version()
            while not (self.closed and self.shut and self.tcp_eof):
                self._step()
        except (OSError, ssl.SSLError, RuntimeError) as e:
            self.result["error"] = f"{type(e).__name__}: {e}"
        self.result.update(received=self.received, sha256=self.digest.hexdigest(),
                           sent=self.sent, their_end=self.their_end)
        return self.result

    def _handshake(self) -> None:
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.wbuf += self.out.read()
                self._io()
                if self.tcp_eof:
                    raise RuntimeError("EOF during the handshake") from None
        self.wbuf += self.out.read()

    def _step(self) -> None:
        limit = self.n if self.ends_first or self.their_end else self.n // 2
        while self.sent < limit and len(self.wbuf) + self.out.pending < HIGH:
            end = min(limit, self.sent + RECORD)
            self.obj.write(self.payload[self.sent : end])
            self.sent = end
        ready = self.received >= self.close_after if self.ends_first else self.their_end
        if not self.closed and self.sent == self.n and ready:
            self._decrypt()  # SSL_shutdown would drop records still buffered
            try:
                self.obj.unwrap()
            except ssl.SSLWantReadError:
                pass
            self.closed = True
        self.wbuf += self.out.read()
        if self.closed and not self.wbuf and not self.shut:
            self.sock.shutdown(socket.SHUT_WR)
            self.shut = True
        if not self._io():
            if not (self.closed and self.shut and self.tcp_eof):
                raise RuntimeError(
                    f"stalled: sent {self.sent}, received {self.received}, "
                    f"their end {self.their_end}, closed {self.closed}")
        self._decrypt()

    def _io(self) -> bool:
        """One select round on the socket; False when there was nothing to wait for."""
        rl = [] if self.tcp_eof else [self.sock]
        wl = [self.sock] if self.wbuf else []
        if not rl and not wl:
            return False
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise RuntimeError(f"timed out: sent {self.sent}, received {self.received}, "
                               f"their end {self.their_end}")
        r, w, _ = select.select(rl, wl, [], left)
        if w:
            try:
                del self.wbuf[: self.sock.send(self.wbuf)]
            except BlockingIOError:
                pass
        if r:
            try:
                data = self.sock.recv(CHUNK)
            except BlockingIOError:
                return True
            if data:
                self.inc.write(data)
            else:
                self.tcp_eof = True
        return True

    def _decrypt(self) -> None:
        while self.their_end is None:
            try:
                data = self.obj.read(CHUNK)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                data = b""
            if not data:
                self.their_end = "close_notify"
                break
            self.received += len(data)
            self.digest.update(data)
        if self.their_end is None and self.tcp_eof:
            self.their_end = "eof"


def _server_ctx(version: str) -> ssl.SSLContext:
    f = _files()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(f["ecdsa.chain"]), str(f["ecdsa.key"]))
    ctx.minimum_version = ctx.maximum_version = getattr(ssl.TLSVersion, version.replace(".", "_"))
    return ctx


def _client_ctx(version: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=str(_files()["root"]))
    ctx.minimum_version = ctx.maximum_version = getattr(ssl.TLSVersion, version.replace(".", "_"))
    return ctx


# -- the commands --------------------------------------------------------------------


class _Tlsc:
    """``tlsc`` on a connection to 127.0.0.1:``port``, on fds of its own (-6/-7)."""

    def __init__(self, command: Sequence[str], backend: str, port: int, prog: Callable[
            [int, int], list[str]]) -> None:
        sock = socket.create_connection(("127.0.0.1", port), 10)
        rfd = sock.detach()
        wfd = os.dup(rfd)
        self.err = tempfile.TemporaryFile()
        argv = [*command, "--backend", backend, "-v", "2", "-k", HOST,
                "-6", str(rfd), "-7", str(wfd), "--", *prog(rfd, wfd)]
        try:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.err,
                env=_env(CAFILE=str(_files()["root"])), pass_fds=(rfd, wfd),
                start_new_session=True,
            )
        finally:
            os.close(rfd)  # tlsc holds the only copies: its close is the FIN
            os.close(wfd)

    def wait(self) -> tuple[int, str]:
        try:
            rc = self.proc.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"tlsc did not exit within {DEADLINE}s") from None
        self.err.seek(0)
        return rc, self.err.read().decode("utf-8", "replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(5)

    def close(self) -> None:
        self.kill()
        self.err.close()


def _tail(text: str) -> str:
    return text.strip()[-600:]


def _check_exit(who: str, rc: int, stderr: str, problems: list[str]) -> None:
    if "Traceback" in stderr:
        problems.append(f"{who} crashed: {_tail(stderr)!r}")
    if rc != 0 or f"{who}: fatal:" in stderr:
        problems.append(f"{who} exited {rc}, want prog's 0: {_tail(stderr)!r}")


def _check_prog(who: str, prog: dict[str, Any] | None, got_from: str, n: int,
                problems: list[str]) -> None:
    """``who``'s prog wrote all ``n`` bytes and received the other end's ``n``, intact."""
    if prog is None:
        problems.append(f"{who}'s prog left no report")
        return
    for key in ("write_error", "read_error"):
        if prog.get(key):
            problems.append(f"{who}'s prog: {key.replace('_', ' ')}: {prog[key]}")
    if prog.get("written") != n:
        problems.append(f"{who}'s prog wrote {prog.get('written')} of {n} bytes")
    if prog.get("received") != n:
        problems.append(f"{who}'s prog received {prog.get('received')} of {n} bytes")
    elif prog.get("sha256") != _sha(stream(got_from, n)):
        problems.append(f"{who}'s prog received {n} bytes, not the ones sent (sha256)")


def _judge(who: str, version: str, peer_first: bool, n: int, rc: int, stderr: str,
           prog: dict[str, Any] | None, peer: dict[str, Any], prog_label: str) -> str:
    """Assert the protocol's outcome (module docstring); return the cell's note."""
    problems: list[str] = []
    peer_label = "server" if prog_label == "client" else "client"
    if peer.get("error"):
        problems.append(f"the peer: {peer['error']}")
    if peer.get("protocol") != version:
        problems.append(f"protocol {peer.get('protocol')!r}, want {version}")
    _check_exit(who, rc, stderr, problems)
    _check_prog(who, prog, peer_label, n, problems)
    by_protocol = version == "TLSv1.2" and peer_first
    want = n // 2 if by_protocol else n
    got = peer.get("received")
    if got != want:
        why = " (TLS 1.2: prog's first half, then nothing)" if by_protocol else ""
        problems.append(f"the peer received {got} of prog's bytes, want {want}{why}")
    elif peer.get("sha256") != _sha(stream(prog_label, want)):
        problems.append(f"the peer received {got} bytes, not the ones prog sent (sha256)")
    end = "eof" if version == "TLSv1.2" and not peer_first else "close_notify"
    if peer.get("their_end") != end:
        problems.append(f"{who} ended with {peer.get('their_end')}, want {end}")
    notes = [int(x) for x in DISCARDED.findall(stderr)]
    if notes != ([n - want] if by_protocol else []):
        problems.append(f"{who} says it discarded {notes or 'nothing'}, "
                        f"want {[n - want] if by_protocol else 'nothing'}")
    assert not problems, "; ".join(problems)
    if by_protocol:
        return f"{n} bytes each way; {n - want} of prog's discarded by protocol, exactly"
    return f"{n} bytes each way, all delivered"


def _client_run(version: str, peer_first: bool, tlsc: Sequence[str]) -> Callable[
        [Backend], str]:
    """``tlsc --backend B`` against a stdlib ``ssl`` server."""

    def run(backend: Backend) -> str:
        n = size_for(backend.name)
        listener = socket.create_server(("127.0.0.1", 0))
        port = int(listener.getsockname()[1])
        with listener, tempfile.TemporaryDirectory(prefix="tlsc-duplex-") as d:
            report = Path(d) / "prog.json"
            cmd = _Tlsc(tlsc, backend.name, port,
                        lambda r, w: _prog(r, w, n, not peer_first, "client", report))
            try:
                listener.settimeout(10)
                conn, _ = listener.accept()
                with conn:
                    close_after = n // 2 if version == "TLSv1.2" else 0
                    peer = PyEnd(conn, _server_ctx(version), server_side=True, n=n,
                                 ends_first=peer_first, close_after=close_after).run()
                rc, err = cmd.wait()
            finally:
                cmd.close()
            return _judge("tlsc", version, peer_first, n, rc, err, _report(report), peer,
                          "client")

    return run


def _server_run(version: str, peer_first: bool, tlsd: Sequence[str]) -> Callable[
        [Backend], str]:
    """``tlsd --backend B`` against a stdlib ``ssl`` client."""

    def run(backend: Backend) -> str:
        n = size_for(backend.name)
        with tempfile.TemporaryDirectory(prefix="tlsc-duplex-") as d:
            report = Path(d) / "prog.json"
            server = TlsdPeer(backend.name, prog=_prog(0, 1, n, not peer_first, "server", report),
                              flags=("-v", "2"), command=tlsd)
            try:
                conn = socket.create_connection(("127.0.0.1", server.port), 10)
                with conn:
                    close_after = n // 2 if version == "TLSv1.2" else 0
                    peer = PyEnd(conn, _client_ctx(version), server_side=False, n=n,
                                 ends_first=peer_first, close_after=close_after).run()
                rc, err = server.wait(DEADLINE)
            finally:
                server.stop()
            return _judge("tlsd", version, peer_first, n, rc, err, _report(report), peer,
                          "server")

    return run


def _pair_run(server: str, server_first: bool, tlsc: Sequence[str],
              tlsd: Sequence[str]) -> Callable[[Backend], str]:
    """``tlsc --backend B`` against ``tlsd --backend server``, a prog on each side."""

    def run(backend: Backend) -> str:
        n = size_for(backend.name, server)
        with tempfile.TemporaryDirectory(prefix="tlsc-duplex-") as d:
            theirs, ours = Path(d) / "tlsd-prog.json", Path(d) / "tlsc-prog.json"
            peer = TlsdPeer(server, prog=_prog(0, 1, n, server_first, "server", theirs),
                            flags=("-v", "2"), command=tlsd)
            try:
                cmd = _Tlsc(tlsc, backend.name, peer.port,
                            lambda r, w: _prog(r, w, n, not server_first, "client", ours))
                try:
                    rc, err = cmd.wait()
                finally:
                    cmd.close()
                src, serr = peer.wait(DEADLINE)
            finally:
                peer.stop()
            tlsc_prog, tlsd_prog = _report(ours), _report(theirs)
        problems: list[str] = []
        _check_exit("tlsc", rc, err, problems)
        _check_exit("tlsd", src, serr, problems)
        _check_prog("tlsc", tlsc_prog, "server", n, problems)
        _check_prog("tlsd", tlsd_prog, "client", n, problems)
        for who, text in (("tlsc", err), ("tlsd", serr)):
            if DISCARDED.search(text):
                problems.append(f"{who} discarded prog's data: {DISCARDED.findall(text)}")
        assert not problems, "; ".join(problems)
        return f"{n} bytes each way, all delivered"

    return run


def _order(peer_first: bool) -> str:
    return "peer-ends-first" if peer_first else "prog-ends-first"


def client_scenarios(tlsc: Sequence[str] = TLSC) -> tuple[LiveScenario, ...]:
    """tlsc against a stdlib ``ssl`` server (peer ``python-ssl``)."""
    return tuple(
        LiveScenario(f"python-ssl/tlsc-duplex-{_order(first)}-{v}", "python-ssl",
                     _client_run(v, first, tlsc), {"tls_versions": v})
        for v in VERSIONS for first in (True, False)
    )


def server_scenarios(tlsd: Sequence[str] = TLSD) -> tuple[LiveScenario, ...]:
    """tlsd against a stdlib ``ssl`` client (peer ``python-ssl-client``): the backend
    under test is tlsd's."""
    return tuple(
        LiveScenario(f"python-ssl-client/tlsd-duplex-{_order(first)}-{v}", "python-ssl-client",
                     _server_run(v, first, tlsd), {"tls_versions": v, "server": True})
        for v in VERSIONS for first in (True, False)
    )


def pair_scenarios(server: str, tlsc: Sequence[str] = TLSC,
                   tlsd: Sequence[str] = TLSD) -> tuple[LiveScenario, ...]:
    """tlsc (the client backend under test) against ``tlsd-<server>``, TLS 1.3."""
    p = f"tlsd-{server}"
    v13 = {"tls_versions": "TLSv1.3"}
    return tuple(
        LiveScenario(f"{p}/tlsc-duplex-{_order(first)}-TLSv1.3", p,
                     _pair_run(server, first, tlsc, tlsd), dict(v13), {**v13, "server": True})
        for first in (True, False)
    )
