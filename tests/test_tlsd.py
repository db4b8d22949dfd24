"""tlsd end to end: real processes on real sockets.

tlsd runs under a tiny accept loop (tests/support/serve.py) or ucspi-tcp's
``tcpserver``, with the connection on its stdin/stdout, against ``openssl
s_client``, ``gnutls-cli`` and tlsc itself in every client-backend ×
server-backend pairing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from tests.conftest import installed_backends
from tests.support import run as runmod
from tests.support.peers import _Reader
from tests.support.progs import Probe, marker_prog
from tests.support.serve import TLSD, Listener, free_port, start_tlsd, tlsd_env
from tlsc import registry


def _server_backends() -> list[str]:
    found = []
    for name, candidate in sorted(registry.available().items()):
        try:
            if registry.load(candidate).info().capabilities.server:
                found.append(name)
        except Exception:  # noqa: BLE001 - a broken backend simply does not take part
            continue
    return found


SERVER_BACKENDS = _server_backends()
CLIENT_BACKENDS = installed_backends()

# prog for tlsd: one line in, one line out describing what it saw, then exit.
ECHO_PROG = [
    "sh",
    "-c",
    'read line; echo "got=$line sni=${SSL_TLS_SNI_SERVERNAME-none} proto=$SSL_PROTOCOL'
    ' cipher=$SSL_CIPHER peer=${SSL_PEER_CERT_SUBJECT-none} key=${KEYFILE-unset}"',
]


@pytest.fixture
def listener():
    lst = Listener()
    yield lst
    lst.close()


def server_env(leaf, **extra):
    env = {"KEYFILE": leaf.key_pem, "CERTFILE": leaf.chain_pem}
    env.update(extra)
    return env


def start_client(argv: list[str]) -> tuple[subprocess.Popen, _Reader]:
    proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return proc, _Reader(proc.stdout)


def finish_client(proc: subprocess.Popen) -> None:
    try:
        proc.stdin.close()
    except OSError:
        pass
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def s_client_argv(port: int, pki, tls: str, sni: str | None = "localhost", extra=()):
    argv = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile",
            str(pki.cafile), "-verify_return_error", "-quiet",
            "-tls1_2" if tls == "1.2" else "-tls1_3", *extra]
    if sni:
        argv += ["-servername", sni]
    else:
        argv += ["-noservername"]
    return argv


def gnutls_argv(port: int, pki, tls: str):
    return ["gnutls-cli", "-p", str(port), "127.0.0.1", "--sni-hostname=localhost",
            "--verify-hostname=localhost", "--x509cafile", str(pki.cafile),
            "--priority", f"NORMAL:-VERS-ALL:+VERS-TLS{tls}"]


# -- against openssl s_client and gnutls-cli ------------------------------------


@pytest.mark.parametrize("server_backend", SERVER_BACKENDS)
@pytest.mark.parametrize("leaf_name", ["leaf_rsa", "leaf_ec"])
@pytest.mark.parametrize("tls", ["1.2", "1.3"])
@pytest.mark.parametrize("client", ["openssl", "gnutls"])
def test_external_clients(listener, pki, server_backend, leaf_name, tls, client):
    if shutil.which("gnutls-cli" if client == "gnutls" else "openssl") is None:
        pytest.skip(f"{client} client not installed")
    leaf = getattr(pki, leaf_name)
    argv = (s_client_argv(listener.port, pki, tls) if client == "openssl"
            else gnutls_argv(listener.port, pki, tls))
    proc, out = start_client(argv)
    try:
        # -S under TLS 1.2: close_notify on prog's EOF, so that the close is clean
        # (a bare TCP half-close draws an alert from these clients).
        flags = ["-S"] if tls == "1.2" else []
        tlsd = listener.serve(["--backend", server_backend, *flags, *ECHO_PROG],
                              server_env(leaf))
        proc.stdin.write(b"hello tlsd\n")
        proc.stdin.flush()
        m = out.wait_for(r"got=(.*) sni=(\S+) proto=(\S+) cipher=(\S+) peer=(.*) key=(\S+)", 15)
        result = tlsd.wait()
    finally:
        finish_client(proc)
    assert m is not None, f"no reply from prog; client said:\n{out.text}"
    assert m.groups() == ("hello tlsd", "localhost", f"TLSv{tls}", m.group(4), "none", "unset")
    if tls == "1.3":
        assert m.group(4).startswith("TLS_")
    else:
        kind = "RSA" if leaf_name == "leaf_rsa" else "ECDSA"
        assert m.group(4).startswith(f"ECDHE-{kind}-"), m.group(4)
    result.assert_ok()


@pytest.mark.parametrize("server_backend", SERVER_BACKENDS)
def test_no_sni_removes_the_variable(listener, pki, server_backend):
    proc, out = start_client(s_client_argv(listener.port, pki, "1.3", sni=None))
    try:
        tlsd = listener.serve(["--backend", server_backend, *ECHO_PROG],
                              server_env(pki.leaf_ec, SSL_TLS_SNI_SERVERNAME="stale"))
        proc.stdin.write(b"x\n")
        proc.stdin.flush()
        m = out.wait_for(r"got=x sni=(\S+)", 15)
        result = tlsd.wait()
    finally:
        finish_client(proc)
    assert m is not None, out.text
    assert m.group(1) == "none"
    result.assert_ok()


@pytest.mark.parametrize("server_backend", SERVER_BACKENDS)
def test_s_client_with_client_certificate(listener, pki, server_backend):
    extra = ["-cert", str(pki.client.cert_pem), "-key", str(pki.client.key_pem)]
    proc, out = start_client(s_client_argv(listener.port, pki, "1.3", extra=extra))
    try:
        tlsd = listener.serve(["--backend", server_backend, "-y", *ECHO_PROG],
                              server_env(pki.leaf_ec, CAFILE=pki.client_ca.cert_pem))
        proc.stdin.write(b"hi\n")
        proc.stdin.flush()
        m = out.wait_for(r"got=hi .* peer=(.*) key=", 15)
        result = tlsd.wait()
    finally:
        finish_client(proc)
    assert m is not None, out.text
    assert m.group(1) == pki.client.subject
    result.assert_ok()


def _listening(port: int) -> bool:
    needle = f":{port:04X} "
    try:
        with open("/proc/net/tcp") as f:
            return any(needle in ln and ln.split()[3] == "0A" for ln in f)
    except OSError:
        return False


@pytest.mark.skipif(shutil.which("tcpserver") is None, reason="ucspi-tcp not installed")
@pytest.mark.parametrize("server_backend", SERVER_BACKENDS)
def test_under_tcpserver(pki, server_backend, tmp_path):
    port = free_port()
    probe = Probe(tmp_path, "tlsd-prog")
    env = tlsd_env(server_env(pki.leaf_rsa))
    server = subprocess.Popen(
        ["tcpserver", "-q", "-H", "-R", "-l", "localhost", "127.0.0.1", str(port), *TLSD,
         "--backend", server_backend,
         *probe.argv("readline", "write:pong\\n", "env", fds=(0, 1))],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )
    try:
        end = time.monotonic() + 10
        while not _listening(port) and time.monotonic() < end and server.poll() is None:
            time.sleep(0.05)
        assert _listening(port), "tcpserver did not start listening"
        proc, out = start_client(s_client_argv(port, pki, "1.3", sni="tcpserver.test"))
        try:
            proc.stdin.write(b"ping\n")
            proc.stdin.flush()
            assert out.wait_for(r"^pong$", 15), out.text
            assert runmod.wait_for_file(probe.out, 10)
        finally:
            finish_client(proc)
    finally:
        server.kill()
        server.wait(5)
    report = probe.report()
    assert report["lines"] == ["ping\n"]
    env = report["env"]
    assert env["SSL_PROTOCOL"] == "TLSv1.3"
    assert env["SSL_TLS_SNI_SERVERNAME"] == "tcpserver.test"
    assert env["PROTO"] == "TCP" and env["TCPREMOTEIP"] == "127.0.0.1"  # tcpserver's
    assert "SSL_PEER_CERT_HASH" not in env and "KEYFILE" not in env


# -- tlsc against tlsd ---------------------------------------------------------------


def _pair(listener, pki, tmp_path, client_backend, server_backend, *, tlsd_args=(),
          tlsd_env_extra=None, tlsc_args=(), tlsc_env=None, leaf=None):
    leaf = leaf or pki.leaf_ec
    cprobe, sprobe = Probe(tmp_path, "client"), Probe(tmp_path, "server")
    client = runmod.start(
        ["--backend", client_backend, "-k", "localhost", *tlsc_args,
         *cprobe.argv("write:ping\\n", "readline", "env")],
        peer=listener.address, env={"CAFILE": pki.cafile, **(tlsc_env or {})},
    )
    server = listener.serve(
        ["--backend", server_backend, *tlsd_args,
         *sprobe.argv("readline", "write:pong\\n", "env", fds=(0, 1))],
        server_env(leaf, **(tlsd_env_extra or {})),
    )
    sres = server.wait()
    cres = client.wait()
    return cres, sres, cprobe, sprobe


@pytest.mark.parametrize("server_backend", SERVER_BACKENDS)
@pytest.mark.parametrize("client_backend", CLIENT_BACKENDS)
def test_tlsc_against_tlsd(listener, pki, tmp_path, client_backend, server_backend):
    cres, sres, cprobe, sprobe = _pair(listener, pki, tmp_path, client_backend, server_backend)
    sres.assert_ok()
    cres.assert_ok()
    c, s = cprobe.report(), sprobe.report()
    assert c["lines"] == ["pong\n"] and s["lines"] == ["ping\n"]
    cenv, senv = c["env"], s["env"]
    assert cenv["SSL_PROTOCOL"] == senv["SSL_PROTOCOL"] == "TLSv1.3"
    assert cenv["SSL_CIPHER"] == senv["SSL_CIPHER"]
    assert cenv["SSL_TLS_SNI_SERVERNAME"] == senv["SSL_TLS_SNI_SERVERNAME"] == "localhost"
    assert cenv["SSL_PEER_CERT_HASH"] == pki.leaf_ec.sha256
    assert cenv["SSL_PEER_CERT_SUBJECT"] == pki.leaf_ec.subject
    for var in ("SSL_PEER_CERT_HASH", "SSL_PEER_CERT_SUBJECT", "KEYFILE", "CERTFILE"):
        assert var not in senv


@pytest.mark.parametrize("server_backend", SERVER_BACKENDS)
@pytest.mark.parametrize("client_backend", CLIENT_BACKENDS)
def test_client_certificate_required_and_present(listener, pki, tmp_path, client_backend,
                                                 server_backend):
    cres, sres, cprobe, sprobe = _pair(
        listener, pki, tmp_path, client_backend, server_backend,
        tlsd_args=["-y", "-Z"], tlsd_env_extra={"CAFILE": pki.client_ca.cert_pem},
        tlsc_args=["-y"],
        tlsc_env={"CERTFILE": pki.client.chain_pem, "KEYFILE": pki.client.key_pem},
    )
    sres.assert_ok()
    cres.assert_ok()
    senv = sprobe.report()["env"]
    assert senv["SSL_PEER_CERT_HASH"] == pki.client.sha256
    assert senv["SSL_PEER_CERT_SUBJECT"] == pki.client.subject
    assert senv["CAFILE"] == str(pki.client_ca.cert_pem)  # -Z keeps them
    assert senv["KEYFILE"] == str(pki.leaf_ec.key_pem)
    assert cprobe.report()["lines"] == ["pong\n"]


@pytest.mark.parametrize("server_backend", SERVER_BACKENDS)
@pytest.mark.parametrize("client_backend", CLIENT_BACKENDS)
def test_client_certificate_required_and_missing(listener, pki, tmp_path, client_backend,
                                                 server_backend):
    marker = tmp_path / "prog-ran"
    client = runmod.start(["--backend", client_backend, "-k", "localhost", "cat"],
                          peer=listener.address, env={"CAFILE": pki.cafile})
    server = listener.serve(["--backend", server_backend, "-y", *marker_prog(marker)],
                            server_env(pki.leaf_ec, CAFILE=pki.client_ca.cert_pem))
    sres = server.wait()
    cres = client.wait()
    sres.assert_fatal(98, "certificate")
    assert not marker.exists(), "prog ran although the client sent no certificate"
    assert cres.rc == 98, cres.describe()


@pytest.mark.parametrize("server_backend", SERVER_BACKENDS)
@pytest.mark.parametrize("client_backend", CLIENT_BACKENDS)
@pytest.mark.parametrize(
    ("label", "why"),
    [("client", "unknown CA|issuer"), ("leaf_rsa", "purpose")],
    ids=["unknown-ca", "server-only-eku"],
)
def test_client_certificate_refused(listener, pki, tmp_path, server_backend, client_backend,
                                    label, why):
    """CAFILE is the server root here: the client CA is unknown; a serverAuth-only
    leaf under the right root has the wrong purpose."""
    cert = getattr(pki, label)
    marker = tmp_path / "prog-ran"
    client = runmod.start(
        ["--backend", client_backend, "-k", "localhost", "-y", "cat"], peer=listener.address,
        env={"CAFILE": pki.cafile, "CERTFILE": cert.chain_pem, "KEYFILE": cert.key_pem},
    )
    server = listener.serve(["--backend", server_backend, "-y", *marker_prog(marker)],
                            server_env(pki.leaf_ec, CAFILE=pki.cafile))
    sres = server.wait()
    client.wait()
    sres.assert_fatal(98, why)
    assert not marker.exists()


# -- configuration and usage errors ------------------------------------------------


def run_tlsd(args, env):
    """tlsd with /dev/null on stdin/stdout: for failures before any network I/O."""
    return start_tlsd([str(a) for a in args], None, env).wait()


@pytest.mark.parametrize("server_backend", SERVER_BACKENDS)
def test_no_keyfile_is_usage(pki, tmp_path, server_backend):
    marker = tmp_path / "m"
    r = run_tlsd(["--backend", server_backend, *marker_prog(marker)],
                 {"CERTFILE": pki.leaf_ec.chain_pem})
    r.assert_fatal(100, "KEYFILE")
    assert not marker.exists()


@pytest.mark.parametrize("server_backend", SERVER_BACKENDS)
def test_no_certfile_is_usage(pki, tmp_path, server_backend):
    r = run_tlsd(["--backend", server_backend, "true"], {"KEYFILE": pki.leaf_ec.key_pem})
    r.assert_fatal(100, "CERTFILE")


@pytest.mark.parametrize("server_backend", SERVER_BACKENDS)
def test_y_without_anchors_is_usage(pki, server_backend):
    r = run_tlsd(["--backend", server_backend, "-y", "true"], server_env(pki.leaf_ec))
    r.assert_fatal(100, "CADIR or CAFILE")


@pytest.mark.parametrize("server_backend", SERVER_BACKENDS)
@pytest.mark.parametrize("what", ["garbage", "mismatch", "unreadable"])
def test_bad_key_is_config_error(pki, tmp_path, server_backend, what):
    key = {"garbage": pki.bad_key, "mismatch": pki.leaf_rsa.key_pem,
           "unreadable": tmp_path / "absent.key"}[what]
    marker = tmp_path / "m"
    r = run_tlsd(["--backend", server_backend, *marker_prog(marker)],
                 {"KEYFILE": key, "CERTFILE": pki.leaf_ec.chain_pem})
    r.assert_fatal(96)
    assert not marker.exists()


def test_unknown_backend_is_usage(pki):
    r = run_tlsd(["--backend", "no-such-backend", "true"], server_env(pki.leaf_ec))
    r.assert_fatal(100, "no-such-backend")


def test_usage_errors():
    r = run_tlsd([], {})
    r.assert_fatal(100, "missing prog")
    r = run_tlsd(["-k", "x", "true"], {})  # a tlsc-only option
    r.assert_fatal(100, "usage")


def test_version_and_help():
    out = subprocess.run([*TLSD, "--version"], capture_output=True, text=True, timeout=20)
    assert out.returncode == 0 and out.stdout.startswith("tlsd ")
    out = subprocess.run([*TLSD, "--help"], capture_output=True, text=True, timeout=20)
    assert out.returncode == 0
    for word in ("KEYFILE", "CERTFILE", "SSL_TLS_SNI_SERVERNAME", "-y", "--handshake-timeout"):
        assert word in out.stdout


@pytest.mark.parametrize("server_backend", SERVER_BACKENDS)
def test_handshake_timeout(listener, pki, tmp_path, server_backend):
    """A client that connects and says nothing: -K ends the wait with 98."""
    marker = tmp_path / "m"
    with socket.create_connection(listener.address, 5):
        server = listener.serve(["--backend", server_backend, "-K", "300",
                                 *marker_prog(marker)], server_env(pki.leaf_ec))
        r = server.wait()
    r.assert_fatal(98, "time")
    assert not marker.exists()


def test_console_script_installed():
    script = os.path.join(os.path.dirname(sys.executable), "tlsd")
    if not os.path.exists(script):
        pytest.skip("console script not installed in this environment")
    out = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=20)
    assert out.returncode == 0 and out.stdout.startswith("tlsd ")


# -- -Y: a client certificate asked for, optional (s6-tlsd) ----------------------------


@pytest.mark.parametrize("server_backend", SERVER_BACKENDS)
@pytest.mark.parametrize("client_backend", CLIENT_BACKENDS)
def test_optional_client_certificate_absent(listener, pki, tmp_path, client_backend,
                                            server_backend):
    cres, sres, cprobe, sprobe = _pair(
        listener, pki, tmp_path, client_backend, server_backend,
        tlsd_args=["-Y"], tlsd_env_extra={"CAFILE": pki.client_ca.cert_pem,
                                          "SSL_PEER_CERT_HASH": "stale"},
    )
    sres.assert_ok()
    cres.assert_ok()
    senv = sprobe.report()["env"]
    assert "SSL_PEER_CERT_HASH" not in senv and "SSL_PEER_CERT_SUBJECT" not in senv
    assert sprobe.report()["lines"] == ["ping\n"]


@pytest.mark.parametrize("server_backend", SERVER_BACKENDS)
@pytest.mark.parametrize("client_backend", CLIENT_BACKENDS)
@pytest.mark.parametrize("flag", ["-Y", "--client-cert"])
def test_optional_client_certificate_present(listener, pki, tmp_path, client_backend,
                                             server_backend, flag):
    cres, sres, cprobe, sprobe = _pair(
        listener, pki, tmp_path, client_backend, server_backend,
        tlsd_args=[flag], tlsd_env_extra={"CAFILE": pki.client_ca.cert_pem},
        tlsc_args=["-y"],
        tlsc_env={"CERTFILE": pki.client.chain_pem, "KEYFILE": pki.client.key_pem},
    )
    sres.assert_ok()
    cres.assert_ok()
    senv = sprobe.report()["env"]
    assert senv["SSL_PEER_CERT_HASH"] == pki.client.sha256
    assert senv["SSL_PEER_CERT_SUBJECT"] == pki.client.subject


@pytest.mark.parametrize("server_backend", SERVER_BACKENDS)
@pytest.mark.parametrize("client", ["openssl", "gnutls"])
def test_optional_client_certificate_invalid_is_refused(listener, pki, tmp_path,
                                                        server_backend, client):
    """-Y still verifies what is sent: a certificate under an unknown CA is refused."""
    if shutil.which("gnutls-cli" if client == "gnutls" else "openssl") is None:
        pytest.skip(f"{client} client not installed")
    marker = tmp_path / "prog-ran"
    if client == "openssl":
        argv = s_client_argv(listener.port, pki, "1.3", extra=[
            "-cert", str(pki.client.cert_pem), "-key", str(pki.client.key_pem)])
    else:
        argv = [*gnutls_argv(listener.port, pki, "1.3"),
                "--x509certfile", str(pki.client.cert_pem),
                "--x509keyfile", str(pki.client.key_pem)]
    proc, out = start_client(argv)
    try:
        # CAFILE is the server root: the client's CA is unknown to tlsd.
        tlsd = listener.serve(["--backend", server_backend, "-Y", *marker_prog(marker)],
                              server_env(pki.leaf_ec, CAFILE=pki.cafile))
        result = tlsd.wait()
    finally:
        finish_client(proc)
    result.assert_fatal(98, "unknown CA|issuer")
    assert not marker.exists()


@pytest.mark.parametrize("server_backend", SERVER_BACKENDS)
def test_optional_client_certificate_with_s_client_none_sent(listener, pki, server_backend):
    proc, out = start_client(s_client_argv(listener.port, pki, "1.2"))
    try:
        tlsd = listener.serve(["--backend", server_backend, "-Y", "-S", *ECHO_PROG],
                              server_env(pki.leaf_ec, CAFILE=pki.client_ca.cert_pem))
        proc.stdin.write(b"anon\n")
        proc.stdin.flush()
        m = out.wait_for(r"got=anon .* peer=(.*) key=", 15)
        result = tlsd.wait()
    finally:
        finish_client(proc)
    assert m is not None, out.text
    assert m.group(1) == "none"
    result.assert_ok()


@pytest.mark.parametrize("flag", ["-Y", "-y", "--mandatory-client-cert"])
def test_client_certificates_need_anchors(pki, flag):
    r = run_tlsd([flag, "true"], server_env(pki.leaf_ec))
    r.assert_fatal(100, "CADIR or CAFILE")


def test_last_of_y_and_Y_wins(listener, pki, tmp_path):
    """-y then -Y: optional, as s6-tlsd reads them (a client without one is served)."""
    cres, sres, _, sprobe = _pair(
        listener, pki, tmp_path, CLIENT_BACKENDS[0], SERVER_BACKENDS[0],
        tlsd_args=["-y", "-Y"], tlsd_env_extra={"CAFILE": pki.client_ca.cert_pem},
    )
    sres.assert_ok()
    cres.assert_ok()


def test_lines_carry_the_pid(listener, pki, tmp_path):
    """Every tlsd line says ``pid N``, N being tlsd's own pid."""
    marker = tmp_path / "m"
    with socket.create_connection(listener.address, 5):
        server = listener.serve(["-v2", "-K", "200", *marker_prog(marker)],
                                server_env(pki.leaf_ec))
        r = server.wait()
    r.assert_fatal(98, "time")
    pid = server.proc.pid
    assert r.fatal[0].startswith(f"tlsd: fatal: pid {pid}: "), r.describe()
