"""``tlsclient host port prog...``: connect, set the UCSPI variables, run tlsc.

Real sockets on the loopback only: the stdlib-ssl peer and ``openssl s_server`` on
127.0.0.1 and ::1, a bound but not listening port for "connection refused", and a
listening socket whose accept queue is full for a connect that never completes.
"""

from __future__ import annotations

import re
import socket
import sys
import time

import pytest

from tests.support import run as runmod
from tests.support.progs import marker_prog

TLSCLIENT = [sys.executable, "-m", "tlsc.tlsclient"]
LINE = re.compile(r"^tlsclient: (fatal|warning|info): ")


def have_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


needs_ipv6 = pytest.mark.skipif(not have_ipv6_loopback(), reason="no IPv6 loopback")


def run(tlsc, args, **kw) -> runmod.Result:
    """tlsclient bound to the test's backend, with CAFILE = the test root CA."""
    return tlsc.run(args, cmd=TLSCLIENT, **kw)


def fatal_lines(r: runmod.Result) -> list[str]:
    return [ln for ln in r.lines if ln.startswith("tlsclient: fatal:")]


def assert_ok(r: runmod.Result, rc: int = 0) -> None:
    r.assert_no_traceback()
    assert not fatal_lines(r), r.describe()
    assert not r.fatal, r.describe()  # no line under tlsc's own name either
    assert r.rc == rc, r.describe()


def assert_fatal(r: runmod.Result, rc: int, why: str | None = None) -> str:
    """Exit ``rc`` with exactly one ``tlsclient: fatal: what: why`` line, nothing foreign."""
    r.assert_no_traceback()
    assert r.rc == rc, r.describe()
    fatal = fatal_lines(r)
    assert len(fatal) == 1, r.describe()
    assert re.match(r"^tlsclient: fatal: .+: .+", fatal[0]), r.describe()
    if why is not None:
        assert re.search(why, fatal[0], re.IGNORECASE), r.describe()
    for ln in r.lines:
        assert LINE.match(ln), f"unexpected stderr line {ln!r}\n" + r.describe()
    return fatal[0]


def ucspi_checks(env: dict, remote_ip: str, remote_port: int, local_ip: str) -> None:
    assert env["PROTO"] == "TCP"
    assert env["TCPREMOTEIP"] == remote_ip
    assert env["TCPREMOTEPORT"] == str(remote_port)
    assert env["TCPLOCALIP"] == local_ip
    assert env["TCPLOCALPORT"].isdigit() and 0 < int(env["TCPLOCALPORT"]) < 65536
    assert int(env["TCPLOCALPORT"]) != remote_port
    for stale in ("TCPREMOTEHOST", "TCPREMOTEINFO", "TCPLOCALHOST"):
        assert stale not in env


STALE = {
    "TCPREMOTEHOST": "stale.example.test",
    "TCPREMOTEINFO": "stale",
    "TCPLOCALHOST": "stale.example.test",
    "TCPREMOTEIP": "192.0.2.1",
    "PROTO": "UDP",
    "SSL_TLS_SNI_SERVERNAME": "stale.example.test",
}


# -- connections that work ---------------------------------------------------------------


@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_ipv4_literal_data_both_ways(tls, tlsc, pki, pypeer, probe):
    """127.0.0.1: UCSPI and SSL_* variables, data both ways, IP SAN checked, no SNI,
    and prog holds its two pipes and no socket."""
    cert = pki.leaf_ec
    peer = pypeer(cert, tls=tls, send_text="hello from server\n", echo=True)
    p = probe()
    r = run(
        tlsc,
        [
            "-S",
            "127.0.0.1",
            peer.port,
            *p.argv("env", "fds", "readline", "write:ping\\n", "readline", "closew", "readall"),
        ],
        env=STALE,
    )
    assert_ok(r)
    res = peer.result()
    rep = p.report()
    assert rep["lines"] == ["hello from server\n", "ping\n"]
    assert res["received_head"] == "ping\n"
    assert res["sni"] is None, "SNI sent for an IP address"
    env = rep["env"]
    ucspi_checks(env, "127.0.0.1", peer.port, "127.0.0.1")
    assert env["SSL_PROTOCOL"] == res["version"] == f"TLSv{tls}"
    assert env["SSL_CIPHER"] == res["cipher"]
    assert env["SSL_PEER_CERT_HASH"] == cert.sha256
    assert env["SSL_PEER_CERT_SUBJECT"] == cert.subject
    assert "SSL_TLS_SNI_SERVERNAME" not in env
    assert "CAFILE" not in env
    sockets = {fd: t for fd, t in rep["fds"].items() if t.startswith("socket:")}
    assert not sockets, rep["fds"]
    assert rep["fds"]["6"].startswith("pipe:") and rep["fds"]["7"].startswith("pipe:")


@needs_ipv6
def test_ipv6_literal_against_s_server(tlsc, pki, sserver, probe):
    """::1 against openssl s_server listening on ::1 only; the IP SAN ::1 is checked."""
    srv = sserver(pki.leaf_rsa, tls="1.3", extra=["-accept", "[::1]:0"])
    p = probe()
    r = run(tlsc, ["::1", srv.port, *p.argv("write:hello world\\n", "readline", "env")])
    assert_ok(r)
    rep = p.report()
    assert rep["lines"] == ["dlrow olleh\n"]
    env = rep["env"]
    ucspi_checks(env, "::1", srv.port, "::1")
    assert env["SSL_PROTOCOL"] == "TLSv1.3"
    assert env["SSL_PEER_CERT_HASH"] == pki.leaf_rsa.sha256
    assert "SSL_TLS_SNI_SERVERNAME" not in env


@needs_ipv6
def test_ipv6_brackets_and_family_flag(tlsc, pki, sserver, probe):
    srv = sserver(pki.leaf_ec, tls="1.3", extra=["-accept", "[::1]:0"])
    p = probe()
    r = run(tlsc, ["--ipv6", "[::1]", srv.port, "--", *p.argv("write:abc\\n", "readline")])
    assert_ok(r)
    assert p.report()["lines"] == ["cba\n"]


@needs_ipv6
def test_ipv6_ip_san_mismatch(tlsc, pki, sserver, tmp_path):
    """wrong_name has no ::1 SAN: the default check against the IP host fails -> 98."""
    srv = sserver(pki.wrong_name, tls="1.3", extra=["-accept", "[::1]:0"])
    marker = tmp_path / "ran"
    r = run(tlsc, ["::1", srv.port, *marker_prog(marker)])
    assert_fatal(r, 98)
    assert not marker.exists()


def test_name_check_defaults_to_dns_host(tlsc, pki, pypeer, probe):
    """Host localhost: checked and sent as SNI without -k."""
    peer = pypeer(pki.leaf_ec, tls="1.3")
    p = probe()
    r = run(tlsc, ["-4", "localhost", peer.port, *p.argv("env")], env=STALE)
    assert_ok(r)
    assert peer.result()["sni"] == "localhost"
    env = p.report()["env"]
    assert env["SSL_TLS_SNI_SERVERNAME"] == "localhost"
    ucspi_checks(env, "127.0.0.1", peer.port, "127.0.0.1")
    assert not [ln for ln in r.lines if "warning" in ln], r.describe()


def test_default_name_mismatch_is_98(tlsc, pki, pypeer, tmp_path):
    """wrong_name is valid for other.example.test only: connecting to localhost fails."""
    peer = pypeer(pki.wrong_name, tls="1.3")
    marker = tmp_path / "ran"
    r = run(tlsc, ["-4", "localhost", peer.port, *marker_prog(marker)])
    assert_fatal(r, 98)
    assert not marker.exists()
    assert peer.result()["sni"] == "localhost"


def test_ip_host_is_checked_against_ip_sans(tlsc, pki, pypeer, tmp_path):
    """ip_as_dns carries "127.0.0.1" as a dNSName only: an IP host needs an iPAddress SAN."""
    peer = pypeer(pki.ip_as_dns, tls="1.3")
    marker = tmp_path / "ran"
    r = run(tlsc, ["127.0.0.1", peer.port, *marker_prog(marker)])
    assert_fatal(r, 98)
    assert not marker.exists()
    assert peer.result()["sni"] is None


def test_H_turns_the_default_check_off(tlsc, pki, pypeer, probe):
    peer = pypeer(pki.wrong_name, tls="1.3")
    p = probe()
    r = run(tlsc, ["-H", "localhost", peer.port, *p.argv("env")], env=STALE)
    assert_ok(r)
    assert peer.result()["sni"] is None, "SNI sent under -H"
    assert "SSL_TLS_SNI_SERVERNAME" not in p.report()["env"]
    assert any(ln.startswith("tlsclient: warning:") for ln in r.lines), r.describe()


def test_H_quiet_at_v0(tlsc, pki, pypeer, probe):
    peer = pypeer(pki.leaf_ec)
    p = probe()
    r = run(tlsc, ["-v", "0", "-H", "127.0.0.1", peer.port, *p.argv("env")])
    assert_ok(r)
    assert r.stderr == "", r.describe()


def test_k_overrides_the_host(tlsc, pki, pypeer, probe):
    peer = pypeer(pki.wildcard, tls="1.3")
    p = probe()
    r = run(tlsc, ["-k", "www.example.test", "127.0.0.1", peer.port, *p.argv("env")])
    assert_ok(r)
    assert peer.result()["sni"] == "www.example.test"
    assert p.report()["env"]["SSL_TLS_SNI_SERVERNAME"] == "www.example.test"


def test_k_override_still_checked(tlsc, pki, pypeer, tmp_path):
    """-k wins over -H and over host: a name the certificate is not valid for -> 98."""
    peer = pypeer(pki.leaf_ec, tls="1.3")
    marker = tmp_path / "ran"
    r = run(tlsc, ["-H", "-k", "other.example.test", "localhost", peer.port, *marker_prog(marker)])
    assert_fatal(r, 98)
    assert not marker.exists()


def test_custom_fds_and_prog_exit_code(tlsc, pki, pypeer, probe):
    peer = pypeer(pki.leaf_ec, tls="1.3", send_text="x\n")
    p = probe()
    r = run(
        tlsc,
        [
            "-6",
            "8",
            "-7",
            "9",
            "127.0.0.1",
            peer.port,
            *p.argv("readline", "env", "exit:7", fds=(8, 9)),
        ],
    )
    assert_ok(r, 7)
    rep = p.report()
    assert rep["lines"] == ["x\n"]
    assert rep["env"]["TCPREMOTEPORT"] == str(peer.port)


def test_tls_failure_keeps_tlsc_code_and_prefix(tlsc, pki, pypeer, tmp_path):
    """An unknown CA: 98 as tlsc, the line under tlsclient's name."""
    peer = pypeer(pki.unknown_ca, tls="1.3")
    marker = tmp_path / "ran"
    r = run(tlsc, ["127.0.0.1", peer.port, *marker_prog(marker)])
    assert_fatal(r, 98)
    assert not marker.exists()


def test_missing_cafile_is_100(tlsc, pki, pypeer, tmp_path):
    peer = pypeer(pki.leaf_ec, tls="1.3")
    marker = tmp_path / "ran"
    r = run(tlsc, ["127.0.0.1", peer.port, *marker_prog(marker)], env={"CAFILE": None})
    assert_fatal(r, 100, "CADIR|CAFILE")
    assert not marker.exists()


# -- connections that fail -----------------------------------------------------------------


@pytest.fixture
def closed_port():
    """A port bound on 127.0.0.1 but not listening: connecting is refused, and no one else
    can take the port while the test runs."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    yield s.getsockname()[1]
    s.close()


def test_connection_refused_is_111(tlsc, closed_port, tmp_path):
    marker = tmp_path / "ran"
    r = run(tlsc, ["127.0.0.1", closed_port, *marker_prog(marker)], timeout=15)
    line = assert_fatal(r, 111)
    assert line == (
        f"tlsclient: fatal: unable to connect to 127.0.0.1 port {closed_port}: connection refused"
    ), r.describe()
    assert not marker.exists()


@pytest.fixture
def full_backlog():
    """A listener on 127.0.0.1 that never accepts, its accept queue filled: new SYNs are
    dropped, so a connect neither succeeds nor fails until its timeout."""
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(0)
    addr = lsock.getsockname()
    fillers = []
    try:
        for _ in range(16):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            fillers.append(s)
            s.settimeout(0.3)
            try:
                s.connect(addr)
            except TimeoutError:
                break  # the queue is full: this is what tlsclient will see
        else:
            pytest.skip("could not fill the accept queue")
        yield addr[1]
    finally:
        for s in fillers:
            s.close()
        lsock.close()


def test_connect_timeout_is_111(tlsc, full_backlog, tmp_path):
    marker = tmp_path / "ran"
    r = run(tlsc, ["-T", "700", "127.0.0.1", full_backlog, *marker_prog(marker)], timeout=15)
    assert_fatal(
        r,
        111,
        rf"^tlsclient: fatal: unable to connect to 127\.0\.0\.1 port "
        rf"{full_backlog}: .*timed out",
    )
    assert 0.6 <= r.elapsed < 6, r.describe()
    assert not marker.exists()


def test_every_address_is_tried(tlsc, pki, pypeer, probe):
    """localhost may resolve to ::1 too; with the peer on 127.0.0.1 only, tlsclient still
    reaches it, whatever the order of the addresses."""
    peer = pypeer(pki.leaf_ec, tls="1.3")
    p = probe()
    r = run(tlsc, ["localhost", peer.port, *p.argv("env")])
    assert_ok(r)
    assert p.report()["env"]["TCPREMOTEIP"] == "127.0.0.1"


# -- usage -----------------------------------------------------------------------------------


@pytest.mark.parametrize("port", ["0", "65536", "no-such-service-here", "12x"])
def test_bad_port_is_100(port, tlsc_plain, tmp_path):
    marker = tmp_path / "ran"
    r = run(tlsc_plain, ["127.0.0.1", port, *marker_prog(marker)], timeout=15)
    assert_fatal(r, 100, "usage")
    assert not marker.exists()


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["127.0.0.1"],
        ["127.0.0.1", "443"],
        ["127.0.0.1", "443", "--"],
        ["-4", "--ipv6", "127.0.0.1", "443", "true"],
        ["-T", "-5", "127.0.0.1", "443", "true"],
        ["-6", "7", "127.0.0.1", "443", "true"],
        ["--no-such-option", "127.0.0.1", "443", "true"],
        ["", "443", "true"],
    ],
    ids=[
        "nothing",
        "no port",
        "no prog",
        "only --",
        "-4 and --ipv6",
        "negative -T",
        "-6 = -7",
        "unknown option",
        "empty host",
    ],
)
def test_usage_errors_are_100(args, tlsc_plain):
    r = run(tlsc_plain, args, timeout=15)
    assert_fatal(r, 100, "usage")


def test_help_and_version(tlsc_plain):
    r = run(tlsc_plain, ["--help"], timeout=15)
    assert r.rc == 0, r.describe()
    for word in (
        "-H",
        "--connect-timeout",
        "-k",
        "-K",
        "-S",
        "-J",
        "-Y",
        "-Z",
        "-v",
        "--backend",
        "--no-verify-cert",
        "CAFILE",
        "TCPREMOTEIP",
        "TCPLOCALPORT",
        "PROTO",
        "SSL_PEER_CERT_HASH",
        "111",
        "100",
        "98",
    ):
        assert word in r.stdout, word
    r = run(tlsc_plain, ["--version"], timeout=15)
    assert r.rc == 0 and r.stdout.startswith("tlsclient "), r.describe()


def test_list_backends(tlsc_plain):
    r = run(tlsc_plain, ["--list-backends"], timeout=15)
    assert r.rc == 0 and r.stdout.strip(), r.describe()
    assert r.stderr == ""


def test_connect_runs_in_one_process(tlsc, pki, pypeer, probe):
    """No second interpreter: prog's parent is the process the test started."""
    peer = pypeer(pki.leaf_ec, tls="1.3")
    p = probe()
    proc = tlsc.start(["127.0.0.1", peer.port, *p.argv("ids")], cmd=TLSCLIENT)
    r = proc.wait(20)
    assert_ok(r)
    assert p.report()["ids"]["ppid"] == proc.pid


def test_elapsed_is_bounded_for_refused(tlsc, closed_port):
    start = time.monotonic()
    r = run(tlsc, ["-T", "5000", "127.0.0.1", closed_port, "true"], timeout=15)
    assert_fatal(r, 111, "refused")
    assert time.monotonic() - start < 10


# -- connect() itself: every address in turn ---------------------------------------------------


def test_connect_falls_back_to_the_next_address(monkeypatch, closed_port):
    """Two addresses, the first refusing: the second is used; all failing: one line naming
    each address and why."""
    from tlsc import tlsclient
    from tlsc.exitcodes import Fatal
    from tlsc.log import Log

    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    good = lsock.getsockname()[1]
    tcp = (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "")
    answers = {
        "twohosts": [(*tcp, ("127.0.0.1", closed_port)), (*tcp, ("127.0.0.1", good))],
        "nohost": [(*tcp, ("127.0.0.1", closed_port)), (*tcp, ("127.0.0.2", closed_port))],
    }
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a: answers[host])
    try:
        sock = tlsclient.connect("twohosts", 443, 0, 2000, Log("tlsclient", 0))
        assert sock.getpeername() == ("127.0.0.1", good)
        sock.close()
        with pytest.raises(Fatal) as e:
            tlsclient.connect("nohost", 443, 0, 2000, Log("tlsclient", 0))
        assert e.value.code == 111
        assert e.value.message.startswith("unable to connect to nohost port 443: 127.0.0.1: ")
        assert "127.0.0.2: " in e.value.message
    finally:
        lsock.close()


# -- tlsclient -> tlsd ---------------------------------------------------------------------------

TLSD = [sys.executable, "-c", "from tlsc.tlsd import main; main()"]


@pytest.fixture(params=["127.0.0.1", "::1"])
def tlsd_server(request, backend, pki):
    """One connection on 127.0.0.1 or ::1 served by ``tlsd`` (stdin/stdout = the socket),
    as a tcpserver would start it; ``result()`` gives tlsd's exit code and stderr."""
    import subprocess
    import threading

    address = request.param
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    lsock = socket.socket(family, socket.SOCK_STREAM)
    lsock.bind((address, 0))
    lsock.listen(1)
    lsock.settimeout(20)
    state: dict = {}
    prog = ["sh", "-c", 'read line; echo "tlsd got $line sni=$SSL_TLS_SNI_SERVERNAME"']

    def serve() -> None:
        try:
            conn, _ = lsock.accept()
        except OSError as e:
            state["error"] = str(e)
            return
        env = {
            **runmod.base_env(),
            "KEYFILE": str(pki.leaf_ec.key_pem),
            "CERTFILE": str(pki.leaf_ec.chain_pem),
        }
        with conn:
            proc = subprocess.Popen(
                [*TLSD, "--backend", backend, *prog],
                stdin=conn,
                stdout=conn,
                stderr=subprocess.PIPE,
                env=env,
                start_new_session=True,
            )
        state["proc"] = proc
        _, err = proc.communicate(timeout=20)
        state["rc"], state["stderr"] = proc.returncode, err.decode("utf-8", "replace")

    t = threading.Thread(target=serve, daemon=True)
    t.start()

    class Server:
        port = lsock.getsockname()[1]
        # a name over IPv4 (checked and sent as SNI); the address itself over IPv6
        # (checked against the ::1 IP SAN, no SNI)
        host = "localhost" if family == socket.AF_INET else address
        sni = "localhost" if family == socket.AF_INET else ""

        @staticmethod
        def result() -> dict:
            t.join(25)
            return state

    yield Server
    lsock.close()
    proc = state.get("proc")
    if proc is not None and proc.poll() is None:
        proc.kill()


def test_tlsclient_to_tlsd(tlsc, tlsd_server, probe):
    p = probe()
    r = run(
        tlsc,
        [
            tlsd_server.host,
            tlsd_server.port,
            *p.argv("write:hello\\n", "readline", "closew", "readall", "env"),
        ],
    )
    assert_ok(r)
    rep = p.report()
    assert rep["lines"] == [f"tlsd got hello sni={tlsd_server.sni}\n"]
    assert rep["env"].get("SSL_TLS_SNI_SERVERNAME", "") == tlsd_server.sni
    assert rep["env"]["TCPREMOTEPORT"] == str(tlsd_server.port)
    res = tlsd_server.result()
    assert res.get("rc") == 0, res
    assert "Traceback" not in res.get("stderr", ""), res
