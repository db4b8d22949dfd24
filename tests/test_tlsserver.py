"""tlsserver end to end: real clients, real sockets, real signals.

Clients: ``openssl s_client``, ``gnutls-cli``, our ``tlsclient``, and the
stdlib ``ssl`` module (OpenSSL) where a test needs many connections from one
process.  The server is started as a supervisor would start it, with ``-1``
for its port, and looked at from outside: its log, /proc (descriptors,
children, the listening socket's queues).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

import pytest

from tests.support.named import named_leaf, pair_env
from tests.support.peers import _Reader
from tests.support.progs import Probe
from tests.support.tlsserver import (
    TLSSERVER,
    Server,
    client_context,
    recv_all,
    tls_client,
)
from tests.test_tlsd import SERVER_BACKENDS

CAT = ["cat"]


@pytest.fixture
def serve(tmp_path, pki):
    """Factory: ``serve(args, prog, env=None, **kw)`` -> a running :class:`Server`."""
    started: list[Server] = []

    def make(args=(), prog=CAT, env=None, **kw) -> Server:
        full = {"KEYFILE": pki.leaf_ec.key_pem, "CERTFILE": pki.leaf_ec.chain_pem}
        full.update(env or {})
        s = Server(list(args), list(prog), full, tmp_path / f"server{len(started)}.log", **kw)
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


def echo(server: Server, pki, data: bytes = b"hello\n", host: str = "localhost") -> bytes:
    """One connection through ``cat``: send ``data``, read it back."""
    with tls_client(server.address, client_context(pki.cafile), host) as c:
        c.sendall(data)
        got = b""
        while len(got) < len(data):
            chunk = c.recv(65536)
            if not chunk:
                break
            got += chunk
    return got


# -- real clients, both families, every server backend ----------------------------------


def _client_argv(client: str, ip: str, port: int, pki, tmp_path) -> list[str]:
    host = f"[{ip}]" if ":" in ip else ip
    if client == "openssl":
        return ["openssl", "s_client", "-connect", f"{host}:{port}", "-CAfile", str(pki.cafile),
                "-verify_return_error", "-quiet", "-servername", "localhost",
                "-verify_hostname", "localhost"]
    if client == "gnutls":
        return ["gnutls-cli", "-p", str(port), ip, "--sni-hostname=localhost",
                "--verify-hostname=localhost", "--x509cafile", str(pki.cafile)]
    return [*_console("tlsclient"), "-k", "localhost", ip, str(port), sys.executable, "-c",
            "import os, sys; os.write(7, b'ping\\n'); "
            "sys.stdout.write(os.read(6, 4096).decode()); sys.stdout.flush()"]


def _console(name: str) -> list[str]:
    path = os.path.join(os.path.dirname(sys.executable), name)
    if os.path.exists(path):
        return [path]
    return [sys.executable, "-c", f"from tlsc.{name} import main; main()"]


@pytest.mark.parametrize("server_backend", SERVER_BACKENDS)
@pytest.mark.parametrize("ip", ["127.0.0.1", "::1"])
@pytest.mark.parametrize("client", ["openssl", "gnutls", "tlsclient"])
def test_real_clients(serve, pki, tmp_path, server_backend, ip, client):
    if client != "tlsclient" and shutil.which("gnutls-cli" if client == "gnutls" else "openssl") \
            is None:
        pytest.skip(f"{client} not installed")
    probe = Probe(tmp_path, "prog")
    server = serve(["--backend", server_backend, "-v2"],
                   probe.argv("readline", "write:pong\\n", "env", fds=(0, 1)),
                   env={"TCPREMOTEHOST": "stale", "TCPREMOTEINFO": "stale",
                        "TCPLOCALHOST": "stale"},
                   ip=ip)
    argv = _client_argv(client, ip, server.port, pki, tmp_path)
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL,
                            env={**os.environ, "CAFILE": str(pki.cafile)},
                            start_new_session=True)
    out = _Reader(proc.stdout)
    try:
        if client != "tlsclient":
            proc.stdin.write(b"ping\n")
            proc.stdin.flush()
        assert out.wait_for(r"^pong$", 20), out.text + server.log()
        m = server.wait_log(r"end pid (\d+) remote (\S+) port (\d+) exitcode 0")[0]
    finally:
        try:
            proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    report = probe.report()
    assert report["lines"] == ["ping\n"]
    env = report["env"]
    assert env["PROTO"] == "TCP"
    assert env["TCPLOCALIP"] == ip and env["TCPLOCALPORT"] == str(server.port)
    assert env["TCPREMOTEIP"] == ip == m.group(2)
    assert env["TCPREMOTEPORT"] == m.group(3)
    for gone in ("TCPREMOTEHOST", "TCPREMOTEINFO", "TCPLOCALHOST", "KEYFILE", "CERTFILE"):
        assert gone not in env
    assert env["SSL_PROTOCOL"].startswith("TLSv1.")
    assert env["SSL_TLS_SNI_SERVERNAME"] == "localhost"
    server.assert_clean_log()


def test_ready_line_then_stdout_closed(serve):
    server = serve()
    assert server.port > 0
    assert server.stdout_rest == b""  # EOF right after the line
    assert os.readlink(f"/proc/{server.pid}/fd/1") == "/dev/null"


# -- logs --------------------------------------------------------------------------------


def test_v2_logs_start_and_end_with_pid_peer_and_exit_code(serve, pki):
    server = serve(["-v2"], ["sh", "-c", "cat; exit 3"])
    with tls_client(server.address, client_context(pki.cafile)) as c:
        local_port = c.getsockname()[1]
        c.sendall(b"x")
        assert c.recv(1) == b"x"
    start = server.wait_log(r"^tlsserver: info: start pid (\d+) remote 127\.0\.0\.1 port "
                            rf"{local_port} count 1/40$")[0]
    pid = start.group(1)
    server.wait_log(rf"^tlsserver: info: end pid {pid} remote 127\.0\.0\.1 port {local_port} "
                    r"exitcode 3 count 0/40$")
    server.wait_log(rf"^tlsserver: info: pid {pid}: TLSv1\.3 ")
    for line in server.log().splitlines():
        if line.startswith("tlsserver: info: pid "):
            assert line.startswith(f"tlsserver: info: pid {pid}: "), line


def test_v1_logs_no_connection_lines(serve, pki):
    server = serve(["-v1"])
    assert echo(server, pki) == b"hello\n"
    server.signal(signal.SIGTERM)
    assert server.proc.wait(10) == 0
    assert server.log() == ""


# -- many connections ------------------------------------------------------------------


def test_200_concurrent_connections_checksummed(serve, pki):
    n, size = 200, 32768
    server = serve(["-c", "250", "-v2"])
    ctx = client_context(pki.cafile)
    conns = []
    try:
        for _ in range(n):
            conns.append(tls_client(server.address, ctx, timeout=60))
        # All 200 are being served at once: 200 busy workers.
        server.wait_log(r"start pid \d+ .* count 200/250$", timeout=60)
        payloads = [os.urandom(size) for _ in range(n)]
        results: dict[int, str] = {}

        def one(i: int) -> None:
            c = conns[i]
            c.sendall(payloads[i])
            got = b""
            while len(got) < size:
                chunk = c.recv(65536)
                if not chunk:
                    break
                got += chunk
            results[i] = hashlib.sha256(got).hexdigest()

        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        for c in conns:
            c.close()
    assert len(results) == n
    for i in range(n):
        assert results[i] == hashlib.sha256(payloads[i]).hexdigest(), i
    server.wait_log(r"end pid \d+ .* exitcode 0 ", count=n, timeout=60)
    assert "fatal" not in server.log()


def _quiet(server: Server, idle: int = 2, timeout: float = 20) -> dict[int, str]:
    """Wait until the server has only its idle workers as children; return them."""
    end = time.monotonic() + timeout
    while True:
        kids = server.children()
        if len(kids) == idle and all(state != "Z" for state in kids.values()):
            return kids
        if time.monotonic() > end:
            raise AssertionError(f"children not settled: {kids}\n{server.log()[-2000:]}")
        time.sleep(0.05)


def _fd_kinds(fds: dict[str, str]) -> list[str]:
    return sorted(target.split(":")[0] for target in fds.values())


def test_thousand_connections_leave_no_descriptor_and_no_zombie(serve, pki):
    server = serve(["-v2"], ["true"])
    ctx = client_context(pki.cafile)

    def connect_once() -> None:
        with tls_client(server.address, ctx) as c:
            recv_all(c)

    connect_once()
    server.wait_log(r"end pid", count=1)
    _quiet(server)
    before = server.fds()
    total = 1000
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            for _ in range(k):
                connect_once()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(total // 4,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors[:3]
    server.wait_log(r"end pid \d+ .* exitcode 0 ", count=total + 1, timeout=60)
    kids = _quiet(server)
    assert all(state != "Z" for state in kids.values())
    after = server.fds()
    assert _fd_kinds(after) == _fd_kinds(before), (before, after)
    assert len(after) == len(before)


# -- signals -------------------------------------------------------------------------------


def _peer_hash(conn: ssl.SSLSocket) -> str:
    return "SHA256:" + hashlib.sha256(conn.getpeercert(binary_form=True)).hexdigest()


def _served_with(server: Server, ctx: ssl.SSLContext) -> str:
    """The certificate a new connection is presented, closed cleanly (close_notify both ways)."""
    with tls_client(server.address, ctx) as c:
        digest = _peer_hash(c)
        c.unwrap()
    return digest


def test_sighup_reloads_and_a_bad_reload_keeps_the_old_credentials(serve, pki, tmp_path):
    key, chain = tmp_path / "key.pem", tmp_path / "chain.pem"
    key.write_bytes(pki.leaf_ec.key_pem.read_bytes())
    chain.write_bytes(pki.leaf_ec.chain_pem.read_bytes())
    server = serve(["-v2"], env={"KEYFILE": key, "CERTFILE": chain})
    ctx = client_context(pki.cafile)
    assert _served_with(server, ctx) == pki.leaf_ec.sha256
    # A good new key and certificate.
    key.write_bytes(pki.leaf_rsa.key_pem.read_bytes())
    chain.write_bytes(pki.leaf_rsa.chain_pem.read_bytes())
    server.signal(signal.SIGHUP)
    server.wait_log(r"^tlsserver: info: credentials reloaded$")
    assert _served_with(server, ctx) == pki.leaf_rsa.sha256
    # A bad one: garbage for a key.
    key.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    server.signal(signal.SIGHUP)
    server.wait_log(r"^tlsserver: warning: unable to reload the credentials, keeping the old "
                    r"ones: .+")
    for _ in range(3):  # the idle workers and their replacements alike
        assert _served_with(server, ctx) == pki.leaf_rsa.sha256
    assert server.proc.poll() is None
    assert "fatal" not in server.log()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_with_a_connection_in_progress(serve, pki, sig):
    server = serve(["-v2"])
    c = tls_client(server.address, client_context(pki.cafile))
    try:
        c.sendall(b"one\n")
        assert c.recv(100) == b"one\n"
        pid = int(server.wait_log(r"start pid (\d+)")[0].group(1))
        server.signal(sig)
        assert server.proc.wait(10) == 0
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(server.address, 5).close()
        # The connection goes on to its end, served by its own process.
        assert os.path.exists(f"/proc/{pid}")
        c.sendall(b"two\n")
        assert c.recv(100) == b"two\n"
    finally:
        c.close()
    end = time.monotonic() + 20
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < end:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid}")


# -- limits --------------------------------------------------------------------------------


def _handshake_in_thread(address, ctx):
    result: dict = {}

    def run() -> None:
        try:
            c = tls_client(address, ctx, timeout=60)
            c.sendall(b"second\n")
            result["echo"] = c.recv(100)
            c.close()
        except BaseException as e:  # noqa: BLE001
            result["error"] = e

    t = threading.Thread(target=run)
    t.start()
    return t, result


def test_maxconn_one_more_waits_in_the_backlog(serve, pki):
    server = serve(["-c", "1", "-v2"])
    ctx = client_context(pki.cafile)
    first = tls_client(server.address, ctx)
    first.sendall(b"first\n")
    assert first.recv(100) == b"first\n"
    t, result = _handshake_in_thread(server.address, ctx)
    end = time.monotonic() + 20
    while server.listen_queue()[0] != 1 and time.monotonic() < end:
        time.sleep(0.02)
    assert server.listen_queue()[0] == 1  # waiting in the backlog, not accepted
    time.sleep(0.5)
    assert server.listen_queue()[0] == 1 and not result
    assert len(server.wait_log(r"start pid")) == 1
    first.close()
    t.join(60)
    assert result.get("echo") == b"second\n", result
    server.wait_log(r"end pid \d+ .* exitcode 0 count 0/1$", count=2)


def test_localmaxconn_parks_the_connection_until_its_address_has_room(serve, pki):
    server = serve(["-c", "5", "-C", "1", "-v2"])
    ctx = client_context(pki.cafile)
    first = tls_client(server.address, ctx)
    first.sendall(b"first\n")
    assert first.recv(100) == b"first\n"
    t, result = _handshake_in_thread(server.address, ctx)
    end = time.monotonic() + 20
    fds_before = len(server.fds())
    while len(server.fds()) == fds_before and time.monotonic() < end:
        time.sleep(0.02)  # accepted: the server holds the parked connection
    time.sleep(0.5)
    assert server.listen_queue()[0] == 0
    assert not result and len(server.wait_log(r"start pid")) == 1
    first.close()
    t.join(60)
    assert result.get("echo") == b"second\n", result
    assert len(server.wait_log(r"start pid \d+ remote 127\.0\.0\.1 .* count 1/5$", count=2)) == 2


def test_backlog_option(serve):
    server = serve(["-b", "7"])
    assert server.listen_queue()[1] == 7


# -- one connection's trouble is its own -------------------------------------------------


def test_garbage_stall_and_crash_next_to_a_good_connection(serve, pki):
    server = serve(["-K", "1500", "-v2"])
    ctx = client_context(pki.cafile)
    stalled = socket.create_connection(server.address, 10)  # says nothing
    garbage = socket.create_connection(server.address, 10)
    garbage.sendall(b"GET / HTTP/1.0\r\n\r\n")
    crashing = tls_client(server.address, ctx)
    crashing.sendall(b"c\n")
    assert crashing.recv(10) == b"c\n"
    starts = server.wait_log(r"start pid (\d+) remote 127\.0\.0\.1 port (\d+)", count=3)
    by_port = {int(m.group(2)): int(m.group(1)) for m in starts}
    crash_pid = by_port[crashing.getsockname()[1]]
    os.kill(crash_pid, signal.SIGKILL)
    try:
        assert echo(server, pki, b"good\n") == b"good\n"
        assert garbage.recv(100)[:1] in (b"", b"\x15")  # an alert or not, then the end
        server.wait_log(rf"end pid {crash_pid} .* exitcode 137 ")
        server.wait_log(r"fatal: pid \d+: handshake failed: handshake timed out")
        stalled_pid = by_port[stalled.getsockname()[1]]
        server.wait_log(rf"end pid {stalled_pid} .* exitcode 98 ")
        garbage_pid = by_port[garbage.getsockname()[1]]
        server.wait_log(rf"end pid {garbage_pid} .* exitcode 98 ")
        assert echo(server, pki, b"still\n") == b"still\n"
    finally:
        for s in (stalled, garbage, crashing):
            s.close()


# -- tlsd's options, passed through --------------------------------------------------------


def test_client_certificate_options(serve, pki):
    ca = {"CAFILE": pki.client_ca.cert_pem}
    probe_prog = ["sh", "-c", 'echo "peer=${SSL_PEER_CERT_HASH-none}"']
    optional = serve(["-Y"], probe_prog, env=ca)
    with tls_client(optional.address, client_context(pki.cafile)) as c:
        assert recv_all(c) == b"peer=none\n"
    with tls_client(optional.address, client_context(
            pki.cafile, (pki.client.chain_pem, pki.client.key_pem))) as c:
        assert recv_all(c) == f"peer={pki.client.sha256}\n".encode()
    required = serve(["-y", "-v2"], probe_prog, env=ca)
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        with tls_client(required.address, client_context(pki.cafile)) as c:
            recv_all(c)
            c.sendall(b"x")
            c.recv(10)
    required.wait_log(r"end pid \d+ .* exitcode 98 ")


def test_sni_level_2(serve, pki, tmp_path):
    leaves = [named_leaf(tmp_path, pki, n) for n in ("a.example", "b.example")]
    server = serve(["-k", "2", "-v2"], ["sh", "-c", 'echo "sni=$SSL_TLS_SNI_SERVERNAME"'],
                   env={"KEYFILE": None, "CERTFILE": None, **pair_env(*leaves)})
    ctx = client_context(pki.cafile)
    for leaf in leaves:
        with tls_client(server.address, ctx, leaf.label) as c:
            assert _peer_hash(c) == leaf.sha256
            assert recv_all(c) == f"sni={leaf.label}\n".encode()
    with pytest.raises(ssl.SSLError, match="UNRECOGNIZED_NAME"):
        tls_client(server.address, client_context(None), "c.example")
    server.wait_log(r"fatal: pid \d+: handshake failed: unrecognized server name")


def test_keep_env_and_handshake_timeout(serve, pki):
    server = serve(["-Z", "-K", "300", "-v2"], ["sh", "-c", 'echo "key=${KEYFILE-unset}"'])
    with tls_client(server.address, client_context(pki.cafile)) as c:
        assert recv_all(c) == f"key={pki.leaf_ec.key_pem}\n".encode()
    with socket.create_connection(server.address, 10) as s:
        assert s.recv(100) == b""  # closed after 300 ms of silence
    server.wait_log(r"fatal: pid \d+: handshake failed: handshake timed out")


def test_enforce_close_notify(serve, pki):
    server = serve(["-J", "-v2"])
    c = tls_client(server.address, client_context(pki.cafile))
    c.sendall(b"a")
    assert c.recv(1) == b"a"
    # No close_notify: the TCP connection is shut under the TLS session.
    raw = socket.socket(fileno=os.dup(c.fileno()))
    raw.shutdown(socket.SHUT_WR)
    server.wait_log(r"fatal: pid \d+: connection truncated")
    server.wait_log(r"end pid \d+ .* exitcode 98 ")
    raw.close()
    c.close()


@pytest.mark.parametrize(("flag", "clean"), [("-S", True), ("-s", False)])
def test_close_notify_options_under_tls12(serve, pki, flag, clean):
    """TLS 1.2: -S ends with close_notify, -s with a bare TCP half-close (as s6-tlsd)."""
    server = serve([flag], ["sh", "-c", "echo bye"])
    ctx = client_context(pki.cafile)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with tls_client(server.address, ctx, ragged_eof_ok=False) as c:
        assert c.recv(100) == b"bye\n"
        if clean:
            assert c.recv(100) == b""
        else:
            with pytest.raises(ssl.SSLEOFError):
                c.recv(100)


# -- TCP options ------------------------------------------------------------------------------


def _nodelay_of(pid: int, fd: int) -> int:
    """TCP_NODELAY of descriptor ``fd`` of process ``pid`` (pidfd_getfd, Linux >= 5.6)."""
    libc = ctypes.CDLL(None, use_errno=True)
    numbers = {"x86_64": (434, 438), "aarch64": (434, 438)}.get(platform.machine())
    if numbers is None:
        pytest.skip("pidfd syscall numbers unknown on this machine")
    pidfd = libc.syscall(numbers[0], pid, 0)
    if pidfd < 0:
        pytest.skip("pidfd_open unavailable")
    try:
        fd_copy = libc.syscall(numbers[1], pidfd, fd, 0)
        if fd_copy < 0:
            pytest.skip(f"pidfd_getfd unavailable: errno {ctypes.get_errno()}")
    finally:
        os.close(pidfd)
    with socket.socket(fileno=fd_copy) as s:
        return s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


@pytest.mark.skipif(os.geteuid() != 0, reason="pidfd_getfd of another process needs root")
@pytest.mark.parametrize(("flag", "expected"), [([], 1), (["-D"], 1), (["-d"], 0)])
def test_nodelay(serve, pki, flag, expected):
    server = serve([*flag, "-v2"])
    with tls_client(server.address, client_context(pki.cafile)) as c:
        c.sendall(b"x")
        assert c.recv(1) == b"x"
        pid = int(server.wait_log(r"start pid (\d+)")[0].group(1))
        assert bool(_nodelay_of(pid, 0)) == bool(expected)


# -- ids ------------------------------------------------------------------------------------------

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


IDS_PROG = ["sh", "-c", 'echo "ids $(id -u) $(id -g) $(id -G)"; read line; env']


def _ids_and_env(out: bytes) -> tuple[list[str], dict[str, str]]:
    lines = out.decode().splitlines()
    assert lines and lines[0].startswith("ids "), out
    env = dict(line.split("=", 1) for line in lines[1:] if "=" in line)
    return lines[0].split()[1:], env


@root_only
@pytest.mark.parametrize("how", ["options", "env"])
def test_prog_ids(serve, pki, how):
    if how == "options":
        args, env = ["-u", "65534", "-g", "65533", "-G", "65532,65531"], {}
    else:
        args, env = ["-U"], {"UID": "65534", "GID": "65533", "GIDLIST": "65532,65531"}
    server = serve([*args, "-v2"], IDS_PROG, env={**env, "TLS_UID": "65530"})
    with tls_client(server.address, client_context(pki.cafile)) as c:
        c.sendall(b"go\n")
        ids, penv = _ids_and_env(recv_all(c))
    assert ids[:2] == ["65534", "65533"]
    assert sorted(ids[2:]) == ["65531", "65532", "65533"]  # id -G: the gid, then -G's
    if how == "env":
        assert not {"UID", "GID", "GIDLIST"} & set(penv), penv


@root_only
def test_tls_engine_drops_to_tls_uid_before_the_connection(serve, pki):
    server = serve(["-v2"], IDS_PROG, env={"TLS_UID": "65530", "TLS_GID": "65529"})
    with tls_client(server.address, client_context(pki.cafile)) as c:
        first = c.recv(100)
        pid = int(server.wait_log(r"start pid (\d+)")[0].group(1))
        with open(f"/proc/{pid}/status") as f:
            status = dict(line.split(":", 1) for line in f)
        assert status["Uid"].split() == ["65530"] * 4
        assert status["Gid"].split() == ["65529"] * 4
        c.sendall(b"go\n")
        ids, _ = _ids_and_env(first + recv_all(c))
    assert ids[:2] == ["0", "0"]  # prog keeps the server's own ids


# -- start-up errors -------------------------------------------------------------------------


def _run(args, env, timeout=30):
    full = {"PATH": os.environ["PATH"], **{k: str(v) for k, v in env.items()}}
    return subprocess.run([*TLSSERVER, *[str(a) for a in args]], capture_output=True,
                          text=True, env=full, timeout=timeout)


def _one_fatal(p, code, why):
    assert p.returncode == code, (p.returncode, p.stderr)
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("tlsserver: fatal: "), p.stderr
    assert why in lines[0], p.stderr


def test_start_up_errors(pki, tmp_path):
    env = {"KEYFILE": pki.leaf_ec.key_pem, "CERTFILE": pki.leaf_ec.chain_pem}
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        _one_fatal(_run(["127.0.0.1", port, "cat"], env), 111, "unable to bind")
    _one_fatal(_run(["127.0.0.1", "0", "cat"], {"CERTFILE": pki.leaf_ec.chain_pem}), 100,
               "KEYFILE")
    _one_fatal(_run(["127.0.0.1", "0", "cat"], {**env, "KEYFILE": pki.bad_key}), 96,
               "private key")
    _one_fatal(_run(["127.0.0.1", "0", "cat"], {**env, "KEYFILE": tmp_path / "none"}), 96,
               "KEYFILE")
    _one_fatal(_run(["localhost", "0", "cat"], env), 100, "not an IP address")
    _one_fatal(_run(["127.0.0.1", "70000", "cat"], env), 100, "port")
    _one_fatal(_run(["127.0.0.1", "0"], env), 100, "missing prog")
    _one_fatal(_run(["-c", "0", "127.0.0.1", "0", "cat"], env), 100, "usage")
    _one_fatal(_run(["-G", "a,b", "127.0.0.1", "0", "cat"], env), 100, "-G")
    _one_fatal(_run(["-Y", "127.0.0.1", "0", "cat"], env), 100, "CADIR or CAFILE")
    _one_fatal(_run(["-U", "127.0.0.1", "0", "cat"], {**env, "UID": "nobody"}), 100, "UID")
    _one_fatal(_run(["--bogus", "127.0.0.1", "0", "cat"], env), 100, "usage")


def test_version_help_and_console_script():
    p = subprocess.run([*TLSSERVER, "--version"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and p.stdout.startswith("tlsserver ")
    p = subprocess.run([*TLSSERVER, "--help"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0
    for word in ("-c, --max-connections", "-C, --max-per-ip", "-1, --print-port", "SIGHUP",
                 "KEYFILE:name", "TCPREMOTEIP", "-U, --ids-from-env", "--sni-level"):
        assert word in p.stdout, word
    script = os.path.join(os.path.dirname(sys.executable), "tlsserver")
    if os.path.exists(script):
        p = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=30)
        assert p.returncode == 0 and p.stdout.startswith("tlsserver ")


@pytest.mark.parametrize("ids", ["spawned", "forked"])
def test_prog_sees_only_its_pipes_and_stderr(serve, pki, tmp_path, ids):
    """Both ways prog is started (spawned at exec time, or a child forked before the
    drop when ids change): fds 0 and 1 are pipes, 2 is the server's stderr, nothing else;
    SIGPIPE is back at its default."""
    if ids == "forked" and os.geteuid() != 0:
        pytest.skip("TLS_UID needs root")
    probe = Probe(tmp_path, "fds")
    env = {"TLS_UID": "65530"} if ids == "forked" else {}
    prog = ["sh", "-c", 'grep SigIgn /proc/self/status >&2; exec "$@"', "sh",
            *probe.argv("fds", "write:done\\n", fds=(0, 1))]
    server = serve(["-v2"], prog, env=env)
    with tls_client(server.address, client_context(pki.cafile)) as c:
        assert recv_all(c) == b"done\n"
    fds = {k: v for k, v in probe.report()["fds"].items() if v != "?"}
    assert set(fds) == {"0", "1", "2"}, fds
    assert fds["0"].startswith("pipe:") and fds["1"].startswith("pipe:"), fds
    ignored = int(server.wait_log(r"^SigIgn:\s+([0-9a-f]+)$")[0].group(1), 16)
    assert not ignored & (1 << (signal.SIGPIPE - 1)), hex(ignored)
