"""The relay engine through the real ``tlsc`` process, with the fake backend.

The fake backend (tests/fake) keeps the session interface's semantics and drops
the crypto, so these tests pin the core's own behaviour — flow control,
half-close, -S/-s, -J/-j, errors after the handshake, signals, exit codes —
with a peer that can do things no real TLS server does on demand.  The same
behaviours are checked against real TLS peers in the other test modules.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

FAKE = Path(__file__).parent / "fake"


def _load_fake() -> ModuleType:
    # Loaded by path, not through sys.path: the fake's dist-info must stay
    # invisible to this process, or every backend listing here would include it.
    spec = importlib.util.spec_from_file_location("tlsc_fake", FAKE / "tlsc_fake.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_fake = _load_fake()
HEADER, record = _fake.HEADER, _fake.record


class Peer:
    """The server side of the fake protocol on a real socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.hello = b""

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        if not data:
            return False
        self.buf += data
        return True

    def handshake(self, protocol: str = "TLSv1.3", cipher: str = "FAKE_CIPHER") -> None:
        while b"\n" not in self.buf:
            if not self._fill():
                raise EOFError
        nl = self.buf.index(b"\n")
        self.hello = bytes(self.buf[:nl])
        del self.buf[: nl + 1]
        self.sock.sendall(f"OK {protocol} {cipher}\n".encode())

    def send(self, data: bytes) -> None:
        for i in range(0, len(data), 16384):
            self.sock.sendall(record(b"D", data[i : i + 16384]))

    def close_notify(self) -> None:
        self.sock.sendall(record(b"C"))

    def next_record(self) -> tuple[bytes, bytes] | None:
        """(kind, payload), or None at EOF."""
        while True:
            if len(self.buf) >= HEADER.size:
                kind, n = HEADER.unpack_from(self.buf)
                if len(self.buf) >= HEADER.size + n:
                    payload = bytes(self.buf[HEADER.size : HEADER.size + n])
                    del self.buf[: HEADER.size + n]
                    return kind, payload
            if not self._fill():
                return None

    def collect(self) -> tuple[bytes, str]:
        """All data until close_notify ("C") or EOF ("EOF")."""
        out = bytearray()
        while True:
            rec = self.next_record()
            if rec is None:
                return bytes(out), "EOF"
            kind, payload = rec
            if kind == b"C":
                return bytes(out), "C"
            out += payload


class Result:
    def __init__(self, rc: int, stderr: str, peer: Peer, server_result: object) -> None:
        self.rc = rc
        self.stderr = stderr
        self.peer = peer
        self.server = server_result


def tunnel(
    server: Callable[[Peer], object],
    prog: list[str],
    *opts: str,
    timeout: float = 60,
    env: dict[str, str] | None = None,
    during: Callable[[subprocess.Popen], None] | None = None,
) -> Result:
    ours, theirs = socket.socketpair()
    peer = Peer(ours)
    box: dict[str, object] = {}

    def run_server() -> None:
        try:
            box["result"] = server(peer)
        except Exception as e:  # noqa: BLE001 - reported by the test
            box["result"] = e
        finally:
            try:
                ours.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = os.pathsep.join(
        [str(FAKE), str(Path(__file__).parents[1]), full_env.get("PYTHONPATH", "")]
    )
    full_env.update(env or {})
    fd = theirs.fileno()

    def place() -> None:
        # fds 6 and 7 both name the connection, as tcpclient leaves them; nothing
        # else of ours leaks into tlsc.
        os.dup2(fd, 6)
        os.dup2(fd, 7)
        os.closerange(3, 6)
        os.closerange(8, 65536)

    thread = threading.Thread(target=run_server, daemon=True)
    thread.start()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tlsc", "--backend", "fake", "--no-verify-cert", *opts, *prog],
        preexec_fn=place,
        close_fds=False,
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=full_env,
    )
    theirs.close()
    try:
        if during is not None:
            during(proc)
        _, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    thread.join(timeout)
    ours.close()
    assert not thread.is_alive(), "the server thread hung"
    stderr = err.decode()
    assert "Traceback" not in stderr, stderr
    return Result(proc.returncode, stderr, peer, box.get("result"))


def sh(script: str) -> list[str]:
    return ["sh", "-c", script]


def fatal_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("tlsc: fatal:")]


# -- data both ways ----------------------------------------------------------


def test_echo_tls13_close_notify_on_prog_eof() -> None:
    def server(p: Peer) -> object:
        p.handshake("TLSv1.3")
        p.send(b"hello, prog")
        p.close_notify()
        return p.collect()

    r = tunnel(server, sh("cat <&6 >&7"))
    assert r.rc == 0, r.stderr
    assert r.server == (b"hello, prog", "C")  # TLS 1.3: -s sends close_notify


def test_prog_eof_tls12_is_a_bare_tcp_half_close() -> None:
    def server(p: Peer) -> object:
        p.handshake("TLSv1.2")
        data, end = p.collect()
        p.send(b"reply after your EOF")
        p.close_notify()
        return data, end

    r = tunnel(server, sh("printf request >&7; exec 7>&-; cat <&6 >&2"))
    assert r.rc == 0, r.stderr
    assert r.server == (b"request", "EOF")  # no close_notify under TLS 1.2 and -s
    assert "reply after your EOF" in r.stderr  # full duplex: the reply still arrives


def test_sixteen_mib_both_ways_at_once() -> None:
    size = 16 << 20
    blob = os.urandom(1 << 20) * 16

    def server(p: Peer) -> object:
        p.handshake()
        got: dict[str, object] = {}

        def reader() -> None:
            got["v"] = p.collect()

        t = threading.Thread(target=reader)
        t.start()
        p.send(blob)
        p.close_notify()
        t.join()
        return got["v"]

    r = tunnel(server, sh("cat <&6 >&7"))
    assert r.rc == 0, r.stderr
    data, end = r.server  # type: ignore[misc]
    assert end == "C" and len(data) == size
    assert hashlib.sha256(data).digest() == hashlib.sha256(blob).digest()


def test_prog_exiting_right_after_writing_loses_nothing() -> None:
    payload = os.urandom(3 << 20)

    def server(p: Peer) -> object:
        p.handshake()
        return p.collect()

    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"tlsc-payload-{os.getpid()}"
    path.write_bytes(payload)
    # prog writes 3 MiB in one go and exits at once: tlsc must still deliver it all
    code = (
        "import os,sys\nv=memoryview(open(sys.argv[1],'rb').read())\nwhile v: v=v[os.write(7,v):]"
    )
    try:
        r = tunnel(server, [sys.executable, "-c", code, str(path)])
    finally:
        path.unlink()
    assert r.rc == 0, r.stderr
    data, end = r.server  # type: ignore[misc]
    assert len(data) == len(payload) and data == payload and end == "C"


def test_slow_prog_slows_the_server_and_memory_stays_bounded() -> None:
    blob = os.urandom(1 << 20)
    samples: list[int] = []

    def server(p: Peer) -> object:
        p.handshake()
        for _ in range(48):
            p.send(blob)
        p.close_notify()
        return p.collect()

    def watch(proc: subprocess.Popen) -> None:
        time.sleep(0.7)  # past the fork-before-exec copy of pytest and interpreter start
        end = time.monotonic() + 2.5
        while time.monotonic() < end and proc.poll() is None:
            try:
                status = Path(f"/proc/{proc.pid}/status").read_text()
            except OSError:
                break
            for line in status.splitlines():
                if line.startswith("VmRSS:"):
                    samples.append(int(line.split()[1]))
            time.sleep(0.05)

    # prog sleeps before reading: 48 MiB must wait in the kernel, not in tlsc
    r = tunnel(server, sh("sleep 2; cat <&6 | wc -c >&7"), during=watch)
    assert r.rc == 0, r.stderr
    assert r.server == (str(48 << 20).encode() + b"\n", "C")
    assert samples, "could not sample tlsc's memory"
    assert max(samples) - min(samples) < 16 * 1024, samples  # KiB: bounded, not 48 MiB


# -- closes and errors --------------------------------------------------------


def test_minus_S_sends_close_notify_and_discards_what_arrives() -> None:
    def server(p: Peer) -> object:
        p.handshake("TLSv1.2")
        data, end = p.collect()
        p.send(b"late data that prog must not see")
        p.close_notify()
        return data, end

    r = tunnel(server, sh("printf bye >&7; exec 7>&-; cat <&6 | wc -c >&2"), "-S")
    assert r.rc == 0, r.stderr
    assert r.server == (b"bye", "C")
    assert r.stderr.strip().splitlines()[-1].strip() == "0"


def test_truncation_is_fatal_under_J_and_an_end_under_j() -> None:
    def server(p: Peer) -> object:
        p.handshake()
        p.send(b"partial")
        p.sock.shutdown(socket.SHUT_WR)  # EOF, no close_notify
        return p.collect()

    r = tunnel(server, sh("cat <&6 >&2; echo >&2"), "-J")
    assert r.rc == 98
    # The fake raises Truncated with a plain string (a backend older than tlsc.reasons):
    # the core's words still come first, the string after them.
    assert fatal_lines(r.stderr) == [
        "tlsc: fatal: connection truncated: the server closed the connection without"
        " close_notify: EOF without close_notify"
    ]
    assert "partial" in r.stderr  # decrypted before the error: delivered

    r = tunnel(server, sh("cat <&6 >&2; echo >&2; exit 3"), "-j")
    assert r.rc == 3, r.stderr
    assert "partial" in r.stderr and not fatal_lines(r.stderr)


def test_fatal_alert_after_data_delivers_the_data_then_exits_98() -> None:
    def server(p: Peer) -> object:
        p.handshake()
        p.send(b"before the alert")
        p.sock.sendall(record(b"A", b"decrypt_error"))
        return p.collect()

    r = tunnel(server, sh("cat <&6 >&2; echo >&2"))
    assert r.rc == 98
    assert "before the alert" in r.stderr
    # The core words the alert, naming its role (the fake gave the reason code only).
    assert fatal_lines(r.stderr) == [
        "tlsc: fatal: TLS error: the server sent a fatal alert: decrypt_error"
    ]


def test_peer_close_notify_tls13_prog_may_still_write() -> None:
    def server(p: Peer) -> object:
        p.handshake("TLSv1.3")
        p.close_notify()
        return p.collect()

    r = tunnel(server, sh("cat <&6 >/dev/null; printf after >&7"))
    assert r.rc == 0, r.stderr
    assert r.server == (b"after", "C")


def test_peer_close_notify_tls12_is_answered_and_later_output_discarded() -> None:
    def server(p: Peer) -> object:
        p.handshake("TLSv1.2")
        p.close_notify()
        return p.collect()

    r = tunnel(server, sh("cat <&6 >/dev/null; printf after >&7; exit 5"), "-v", "2")
    assert r.rc == 5, r.stderr
    assert r.server == (b"", "C")
    assert "discarded 5 bytes" in r.stderr


def test_backend_without_half_close_discards_with_a_warning_at_v2() -> None:
    def server(p: Peer) -> object:
        p.handshake("TLSv1.3")
        p.close_notify()
        return p.collect()

    r = tunnel(
        server,
        sh("cat <&6 >/dev/null; printf later >&7"),
        "-v",
        "2",
        env={"TLSC_FAKE_NO_HALF_CLOSE": "1"},
    )
    assert r.rc == 0, r.stderr
    assert "discarded 5 bytes" in r.stderr


# -- handshake ---------------------------------------------------------------


def test_garbage_instead_of_a_handshake_is_98_and_prog_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"

    def server(p: Peer) -> object:
        while b"\n" not in p.buf:
            p._fill()
        p.sock.sendall(os.urandom(300).replace(b"\n", b"x"))
        return p.collect()

    r = tunnel(server, sh(f"touch {marker}"))
    assert r.rc == 98
    assert len(fatal_lines(r.stderr)) == 1 and "handshake" in r.stderr
    assert not marker.exists()


def test_handshake_timeout() -> None:
    def server(p: Peer) -> object:
        time.sleep(3)
        return None

    start = time.monotonic()
    r = tunnel(server, ["true"], "-K", "300")
    assert r.rc == 98
    assert fatal_lines(r.stderr) == ["tlsc: fatal: handshake failed: handshake timed out"]
    assert time.monotonic() - start < 5


def test_verification_failure_sends_the_alert() -> None:
    def server(p: Peer) -> object:
        while b"\n" not in p.buf:
            p._fill()
        del p.buf[: p.buf.index(b"\n") + 1]
        p.sock.sendall(b"BADCERT expired\n")
        return p.next_record()

    r = tunnel(server, ["true"])
    assert r.rc == 98
    assert fatal_lines(r.stderr) == ["tlsc: fatal: handshake failed: certificate has expired"]
    assert r.server == (b"A", b"bad_certificate")


# -- prog and signals ----------------------------------------------------------


def _idle_server(p: Peer) -> object:
    p.handshake()
    return p.collect()


def test_exec_failure_is_111_naming_prog() -> None:
    r = tunnel(_idle_server, ["/nonexistent/prog"])
    assert r.rc == 111
    (line,) = fatal_lines(r.stderr)
    assert "/nonexistent/prog" in line


def test_prog_killed_by_a_signal() -> None:
    r = tunnel(_idle_server, sh("kill -9 $$"))
    assert r.rc == 128 + 9


def test_sigterm_is_forwarded_to_prog() -> None:
    def during(proc: subprocess.Popen) -> None:
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)

    script = "trap 'printf TERM >&7; exit 7' TERM; printf ready >&7; while :; do sleep 0.05; done"
    r = tunnel(_idle_server, sh(script), during=during)
    assert r.rc == 7, r.stderr
    assert r.server == (b"readyTERM", "C")


def test_prog_sees_only_its_own_descriptors() -> None:
    r = tunnel(_idle_server, sh("exec ls /proc/self/fd >&7"))
    assert r.rc == 0, r.stderr
    fds = sorted(int(x) for x in r.server[0].split())  # type: ignore[index]
    assert fds == [0, 1, 2, 3, 6, 7], fds  # 3 is ls's own handle on the directory
