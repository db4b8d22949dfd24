"""Faults: resets, stalls on either side, early closes, exec failures, odd
descriptors, descriptor exhaustion.

For each fault the test checks the documented exit code (and, when it is not prog's,
exactly one ``tlsc: fatal:`` line and no traceback), that prog is gone when tlsc
exits (prog reports its pid first: ``sh`` writes ``$$`` and execs prog), that while
tlsc waits it holds only the descriptors it should and burns no CPU, that its memory
stays bounded against a stalled side, and that every byte both sides could take got
through.  Real processes, real sockets on 127.0.0.1, every wait bounded.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.support import run as runmod
from tests.support.peers import _Server
from tests.support.progs import marker_prog

SUPPORT = Path(__file__).with_name("support")
FAULTPEER = SUPPORT / "faultpeer.py"
FDLAUNCH = SUPPORT / "fdlaunch.py"
MiB = 1 << 20
TICK = os.sysconf("SC_CLK_TCK")


# -- helpers ----------------------------------------------------------------------------------

class FaultPeer(_Server):
    """tests/support/faultpeer.py in its own process (see its modes there)."""

    def __init__(self, leaf, mode: str, **opts):
        argv = [sys.executable, str(FAULTPEER), "--mode", mode, "--cert", str(leaf.chain_pem),
                "--key", str(leaf.key_pem)]
        for k, v in opts.items():
            argv += ["--" + k.replace("_", "-"), str(v)]
        self._spawn(argv, r"^READY (\d+)")

    def wait_handshake(self, timeout: float = 15.0) -> None:
        assert self.out.wait_for(r"^HANDSHAKE ", timeout), (
            f"no handshake: {self.out.text} {self.err.text}")

    def sent(self) -> int:
        last = [ln for ln in self.out.text.splitlines() if ln.startswith("SENT ")]
        return int(last[-1].split()[1]) if last else 0

    def result(self, timeout: float = 15.0) -> dict:
        import json

        m = self.out.wait_for(r"^RESULT (.*)$", timeout)
        assert m, f"fault peer gave no result within {timeout}s: {self.err.text}"
        return json.loads(m.group(1))


@pytest.fixture
def faultpeer():
    started: list[FaultPeer] = []

    def make(leaf, mode: str, **opts) -> FaultPeer:
        p = FaultPeer(leaf, mode, **opts)
        started.append(p)
        return p

    yield make
    for p in started:
        p.stop()


PIDSH = 'exec >"$0.out" 2>&1; echo $$ > "$0.tmp" && mv "$0.tmp" "$0" && '


def with_pid(pidfile: Path, argv: list[str]) -> list[str]:
    """prog that first writes its own pid to ``pidfile``, then execs ``argv`` (same pid).

    prog's stdout/stderr go to ``pidfile.out``: holding tlsc's own would make the
    runner wait for prog too, and hide a tlsc that exits without waiting for it."""
    return ["sh", "-c", PIDSH + 'exec "$@"', str(pidfile), *[str(a) for a in argv]]


def shell(pidfile: Path, script: str, *args) -> list[str]:
    """prog: a shell script that first writes its pid to ``pidfile``."""
    return ["sh", "-c", PIDSH + script, str(pidfile), *[str(a) for a in args]]


WAIT_GO = 'while [ ! -e "{go}" ]; do sleep 0.05; done'


def read_pid(pidfile: Path, proc=None, timeout: float = 10.0) -> int:
    assert runmod.wait_for_file(pidfile, timeout, proc), "prog did not start (no pid file)"
    return int(pidfile.read_text())


def proc_state(pid: int) -> tuple[str, int] | None:
    """(state, ppid) of ``pid``, or None when it no longer exists."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return rest[0], int(rest[1])


def assert_prog_gone(prog_pid: int, tlsc_pid: int, r: runmod.Result) -> None:
    """When tlsc has exited, prog has exited too and was reaped: tlsc waited for it."""
    st = proc_state(prog_pid)
    assert st is None or (st[0] in "ZX" and st[1] != tlsc_pid), (
        f"prog (pid {prog_pid}) still there when tlsc exited: {st}\n" + r.describe())


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / TICK


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def fds_of(pid: int) -> dict[int, str]:
    d = f"/proc/{pid}/fd"
    out = {}
    for name in os.listdir(d):
        try:
            out[int(name)] = os.readlink(f"{d}/{name}")
        except OSError:
            pass
    return out


def settle(pid: int, timeout: float = 180.0) -> None:
    """Wait until tlsc is done with the work it legitimately had and sits idle.

    That work is bounded but can be long: pure-Python tlslite encrypts or decrypts at
    about 350 KB per CPU second, the kernel may take up to tcp_wmem's 4 MiB of it into
    the send buffer before a stalled peer stops it, and on a loaded machine tlsc gets a
    fraction of a core.  The limit is only there so that a real busy loop still ends
    in assert_waiting_well's report."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        before = cpu_seconds(pid)
        time.sleep(0.5)
        if cpu_seconds(pid) - before < 0.03:
            return
    # Not idle: let assert_waiting_well report the CPU it burns.


def assert_waiting_well(pid: int, net: tuple[int, ...] = (6, 7), seconds: float = 1.0,
                        max_cpu: float = 0.1) -> dict[int, str]:
    """tlsc, while waiting: alive, idle (no busy loop), and holding only its own fds:
    stdio, the network descriptors (sockets or pipes on their numbers) and at most the
    two cleartext pipes to prog."""
    before = cpu_seconds(pid)
    time.sleep(seconds)
    used = cpu_seconds(pid) - before
    assert used < max_cpu, f"tlsc used {used:.2f}s of CPU in {seconds}s while waiting"
    fds = fds_of(pid)
    others = {fd: what for fd, what in fds.items() if fd > 2 and fd not in net}
    assert all(w.startswith("pipe:") for w in others.values()), f"unexpected fds: {fds}"
    assert len(others) <= 2, f"more descriptors than prog's two pipes: {fds}"
    for fd in net:
        if fd in fds:
            assert fds[fd].startswith(("socket:", "pipe:")), fds
    return fds


def start_fds(tlsc, args, mapping: str, pass_fds=(), *, nofile: int | None = None,
              nonblock: tuple[int, ...] = ()) -> runmod.Running:
    """Start tlsc through fdlaunch.py with ``mapping`` (``SRC:DST,...``)."""
    args, env = tlsc._prepare(args, None)
    full_env = runmod.base_env()
    full_env.update(env)
    pre = [sys.executable, "-S", str(FDLAUNCH)]
    if nofile is not None:
        pre += ["--nofile", str(nofile)]
    for fd in nonblock:
        pre += ["--nonblock", str(fd)]
    argv = runmod.TLSC + args
    proc = subprocess.Popen(pre + [mapping, "--"] + argv, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env,
                            pass_fds=tuple(pass_fds), start_new_session=True)
    return runmod.Running(argv, proc, full_env, time.monotonic())


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- the server resets the connection ---------------------------------------------------------

def test_reset_during_handshake(tlsc, pki, faultpeer, tmp_path):
    """RST in answer to the ClientHello: a failed read on the network, prog never runs."""
    peer = faultpeer(pki.leaf_ec, "rst-handshake")
    marker = tmp_path / "ran"
    r = tlsc.run(["-k", "localhost", *marker_prog(marker)], peer=peer.address, timeout=15)
    r.assert_fatal(111, r"network.*reset")
    assert not marker.exists()
    assert peer.result()["hello_bytes"] > 0


@pytest.mark.parametrize("tls", ["1.3", "1.2"])
def test_reset_mid_stream(tls, tlsc, pki, faultpeer, probe, tmp_path):
    """RST after an exchange: what both sides took is delivered, then 111 naming the reset,
    and prog (which sees EOF) is waited for."""
    peer = faultpeer(pki.leaf_ec, "rst-mid", tls=tls, text="hello\n")
    p, pidfile = probe(), tmp_path / "pid"
    proc = tlsc.start(["-k", "localhost",
                       *with_pid(pidfile, p.argv("readline", "write:ack\\n", "readall",
                                                 "sleep:0.5", "exit:0"))],
                      peer=peer.address)
    try:
        pid = read_pid(pidfile, proc)
        r = proc.wait(15)
    finally:
        proc.kill()
    r.assert_fatal(111, r"network.*reset", strict=False)
    assert peer.result()["line"] == "ack\n"
    assert p.report()["lines"] == ["hello\n"]
    assert_prog_gone(pid, proc.pid, r)


# -- one side stops reading -------------------------------------------------------------------

def test_server_stops_reading_while_prog_writes(backend, tlsc, pki, faultpeer, probe, tmp_path):
    """tlsc blocks (bounded memory, no CPU) instead of buffering prog's endless output;
    when the server then dies, tlsc fails cleanly (111) and prog is not left behind."""
    # The peer must outlive settle() (it stalls for its timeout, then leaves): stopped below.
    peer = faultpeer(pki.leaf_ec, "noread", rcvbuf=65536, timeout=300)
    p, pidfile = probe(), tmp_path / "pid"
    prog = with_pid(pidfile, p.argv("sendfile:/dev/zero", "sleep:1"))
    proc = tlsc.start(["-k", "localhost", *prog], peer=peer.address)
    try:
        pid = read_pid(pidfile, proc)
        peer.wait_handshake()
        time.sleep(1.0)  # let every buffer fill up
        settle(proc.pid)
        before = rss_kib(proc.pid)
        assert_waiting_well(proc.pid, seconds=1.0)
        grown = rss_kib(proc.pid) - before
        assert grown < 8 * 1024, f"tlsc grew by {grown} KiB against a stalled server"
        peer.stop()
        r = proc.wait(60)
    finally:
        proc.kill()
    r.assert_fatal(111, r"network", strict=False)
    assert_prog_gone(pid, proc.pid, r)


def test_prog_stops_reading_while_server_writes(backend, tlsc, pki, faultpeer, tmp_path):
    """The server floods; prog reads nothing: the server is throttled, tlsc's memory is
    bounded and it sleeps.  Then prog reads some and exits: tlsc exits with its code
    promptly and the server sees the connection go."""
    peer = faultpeer(pki.leaf_ec, "flood")
    pidfile, go, count = tmp_path / "pid", tmp_path / "go", tmp_path / "count"
    script = WAIT_GO.format(go=go) + '; head -c 100000 <&6 | wc -c > "$1"; exit 5'
    proc = tlsc.start(["-k", "localhost", *shell(pidfile, script, count)], peer=peer.address)
    try:
        pid = read_pid(pidfile, proc)
        peer.wait_handshake()
        time.sleep(1.0)
        settle(proc.pid)
        sent1, rss1 = peer.sent(), rss_kib(proc.pid)
        assert_waiting_well(proc.pid, seconds=1.0)
        time.sleep(0.3)  # the peer reports every 0.1 s
        sent2, rss2 = peer.sent(), rss_kib(proc.pid)
        assert sent2 - sent1 < 256 * 1024, f"server not throttled: {sent2 - sent1} more bytes"
        assert sent2 < 64 * MiB, f"{sent2} bytes accepted from a server nobody reads"
        assert rss2 - rss1 < 8 * 1024, f"tlsc grew by {rss2 - rss1} KiB"
        go.touch()
        r = proc.wait(120)  # a hang fails here; how long it takes is the machine's business
    finally:
        go.touch()
        proc.kill()
    r.assert_ok(5)
    assert count.read_text().strip() == "100000"
    assert_prog_gone(pid, proc.pid, r)
    res = peer.result(10)
    assert "send_error" in res, res


def test_prog_exits_while_server_still_sends(tlsc, pki, faultpeer, tmp_path):
    peer = faultpeer(pki.leaf_ec, "flood")
    pidfile = tmp_path / "pid"
    proc = tlsc.start(["-k", "localhost",
                       *shell(pidfile, "head -c 50000 <&6 >/dev/null; exit 7")],
                      peer=peer.address)
    try:
        pid = read_pid(pidfile, proc)
        r = proc.wait(120)  # tlsc follows prog out: a hang fails here (no timed assertion)
    finally:
        proc.kill()
    r.assert_ok(7)
    assert_prog_gone(pid, proc.pid, r)
    res = peer.result(10)
    assert "send_error" in res, res  # the connection was closed under the sender


# -- prog closes its input early, or ignores EOF ------------------------------------------------

@pytest.mark.parametrize("tls", ["1.3", "1.2"])
def test_prog_closes_fd6_early_and_keeps_writing(tls, tlsc, pki, faultpeer, tmp_path):
    data = tmp_path / "data"
    data.write_bytes(os.urandom(300_000))
    peer = faultpeer(pki.leaf_ec, "sink", tls=tls, text="unwanted\n" * 1000, read_delay=2)
    pidfile, go = tmp_path / "pid", tmp_path / "go"
    script = ('exec 6<&-; ' + WAIT_GO.format(go=go) + '; cat "$1" >&7; exit 3')
    proc = tlsc.start(["-k", "localhost", *shell(pidfile, script, data)], peer=peer.address)
    try:
        pid = read_pid(pidfile, proc)
        peer.wait_handshake()
        time.sleep(0.5)
        assert_waiting_well(proc.pid)
        go.touch()
        r = proc.wait(30)
    finally:
        go.touch()
        proc.kill()
    r.assert_ok(3)
    assert_prog_gone(pid, proc.pid, r)
    res = peer.result(10)
    # A shortfall with an "EOF in violation of protocol" here means tlsc closed the
    # socket with the server's unread records still queued: the kernel then sends an
    # RST instead of a FIN, and the server loses the tail of prog's data.
    assert res["received"] == data.stat().st_size, res
    assert res["sha256"] == sha(data.read_bytes())


@pytest.mark.parametrize("close", ["notify", "eof"])
@pytest.mark.parametrize("tls", ["1.3", "1.2"])
def test_prog_ignores_eof_and_keeps_running(tls, close, tlsc, pki, pypeer, probe, tmp_path):
    peer = pypeer(pki.leaf_ec, tls=tls, send_text="bye\n", no_wait_client_close=True,
                  close=close, drain=10)
    p, pidfile = probe(), tmp_path / "pid"
    ready, go = tmp_path / "ready", tmp_path / "go"
    proc = tlsc.start(["-k", "localhost",
                       *with_pid(pidfile, p.argv("readall", f"touch:{ready}",
                                                 f"waitfile:{go}", "exit:4"))],
                      peer=peer.address)
    try:
        pid = read_pid(pidfile, proc)
        assert runmod.wait_for_file(ready, 10, proc), "prog never saw EOF"
        time.sleep(0.3)
        assert_waiting_well(proc.pid)
        assert proc.alive(), "tlsc did not wait for prog"
        go.touch()
        r = proc.wait(15)
    finally:
        go.touch()
        proc.kill()
    r.assert_ok(4)
    assert_prog_gone(pid, proc.pid, r)
    assert p.report()["read"]["head"] == "bye\n"


# -- prog cannot be executed ------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["not found", "not found in PATH", "not executable",
                                  "a directory"])
def test_prog_cannot_be_executed(kind, tlsc, pki, pypeer, tmp_path):
    if kind == "not found":
        prog = str(tmp_path / "no-such-prog")
    elif kind == "not found in PATH":
        prog = "tlsc-no-such-prog-in-path"
    elif kind == "not executable":
        prog = str(tmp_path / "plain-file")
        Path(prog).write_text("#!/bin/sh\nexit 0\n")
        os.chmod(prog, 0o644)
    else:
        prog = str(tmp_path / "a-directory")
        os.mkdir(prog)
    peer = pypeer(pki.leaf_ec)
    start = time.monotonic()
    r = tlsc.run(["-k", "localhost", prog, "arg"], peer=peer.address, timeout=15)
    r.assert_fatal(111, r"unable to exec .*" + os.path.basename(prog))
    res = peer.result(10)
    assert res["client_close"] in ("eof", "close_notify"), res
    assert time.monotonic() - start < 10


# -- the descriptors handed in ----------------------------------------------------------------

class Shuttle:
    """Two pipes for tlsc's fds 6 and 7, bytes shuttled to and from a TCP socket."""

    def __init__(self, address):
        self.sock = socket.create_connection(address, 5)
        self.down_r, self.down_w = os.pipe()  # tlsc reads fd 6 from down_r
        self.up_r, self.up_w = os.pipe()  # tlsc writes fd 7 into up_w
        self.threads = [threading.Thread(target=self._down, daemon=True),
                        threading.Thread(target=self._up, daemon=True)]

    def start(self) -> None:
        os.close(self.down_r)
        os.close(self.up_w)
        for t in self.threads:
            t.start()

    def _down(self) -> None:
        try:
            while data := self.sock.recv(65536):
                os.write(self.down_w, data)
        except OSError:
            pass
        os.close(self.down_w)

    def _up(self) -> None:
        try:
            while data := os.read(self.up_r, 65536):
                self.sock.sendall(data)
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        os.close(self.up_r)

    def join(self) -> None:
        for t in self.threads:
            t.join(10)
        self.sock.close()


@pytest.mark.parametrize("tls", ["1.3", "1.2"])
@pytest.mark.parametrize("how", ["one socket on 6 and 7", "two pipes"])
def test_network_as_one_socket_or_two_pipes(how, tls, tlsc, pki, pypeer, probe, tmp_path):
    data = tmp_path / "data"
    data.write_bytes(os.urandom(200_000))
    peer = pypeer(pki.leaf_rsa, tls=tls, echo=True)
    p = probe()
    args = ["-k", "localhost", *p.argv(f"sendfile:{data}", "closew", "readall", "fds")]
    if how == "two pipes":
        sh = Shuttle(peer.address)
        proc = start_fds(tlsc, args, f"{sh.down_r}:6,{sh.up_w}:7", (sh.down_r, sh.up_w))
        sh.start()
        r = proc.wait(30)
        sh.join()
    else:
        r = tlsc.run(args, peer=peer.address, timeout=30)
    r.assert_ok()
    assert p.report()["read"]["sha256"] == sha(data.read_bytes())
    res = peer.result()
    assert res["received"] == data.stat().st_size
    assert res["client_close"] == ("close_notify" if tls == "1.3" else "eof"), res


def test_fd7_closed_is_111(tlsc, pki, pypeer, tmp_path):
    peer = pypeer(pki.leaf_ec)
    sock = socket.create_connection(peer.address, 5)
    marker = tmp_path / "ran"
    try:
        proc = start_fds(tlsc, ["-k", "localhost", *marker_prog(marker)],
                         f"{sock.fileno()}:6,-:7", (sock.fileno(),))
    finally:
        sock.close()
    r = proc.wait(15)
    r.assert_fatal(111, r"7")
    assert not marker.exists()


@pytest.mark.parametrize("fd", [6, 7])
def test_nonblocking_descriptor_works(fd, tlsc, pki, pypeer, probe):
    peer = pypeer(pki.leaf_ec, echo=True)
    p = probe()
    sock = socket.create_connection(peer.address, 5)
    try:
        proc = start_fds(tlsc, ["-k", "localhost",
                                *p.argv("write:ping\\n", "readline", "closew", "readall")],
                         f"{sock.fileno()}:6,{sock.fileno()}:7", (sock.fileno(),),
                         nonblock=(fd,))
    finally:
        sock.close()
    r = proc.wait(15)
    r.assert_ok()
    assert p.report()["lines"] == ["ping\n"]


# -- out of descriptors -------------------------------------------------------------------------

def _run_nofile(tlsc, pki, pypeer, probe, limit: int):
    peer = pypeer(pki.leaf_ec, send_text="hi\n")
    p = probe(f"probe{limit}")
    sock = socket.create_connection(peer.address, 5)
    try:
        proc = start_fds(tlsc, ["-k", "localhost", *p.argv("readline", "write:yo\\n")],
                         f"{sock.fileno()}:6,{sock.fileno()}:7", (sock.fileno(),),
                         nofile=limit)
    finally:
        sock.close()
    return proc.wait(20), p, peer


def test_out_of_descriptors(tlsc, pki, pypeer, probe):
    """Raise RLIMIT_NOFILE from 8 until tlsc works (stdio, 6, 7, four pipes at the fork,
    prog's pipes moved above 7 in the child: 17 here).  That lowest limit works fully;
    every limit below it ends in 111 with one fatal line, never a traceback and never a
    silent code that could be mistaken for prog's, and prog does not run."""
    below = []
    for limit in range(8, 40):
        r, p, peer = _run_nofile(tlsc, pki, pypeer, probe, limit)
        if r.rc == 0:
            break
        below.append((limit, r, p))
        peer.stop()
    else:
        raise AssertionError("tlsc never worked with RLIMIT_NOFILE < 40")
    r.assert_ok()
    assert p.report()["lines"] == ["hi\n"]
    assert peer.result()["received_head"] == "yo\n"
    assert below, "tlsc worked at RLIMIT_NOFILE=8: nothing to test below"
    for lim, rb, pb in below:
        assert rb.rc == 111 and len(rb.fatal) == 1 and "Traceback" not in rb.stderr, (
            f"RLIMIT_NOFILE={lim} (lowest working: {limit}):\n" + rb.describe())
        rb.assert_fatal(111, r"too many open files")
        assert not pb.ran, f"prog ran at RLIMIT_NOFILE={lim}"
