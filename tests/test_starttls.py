"""ucspitlsc and ucspitlsd end to end (STARTTLS over UCSPI-TLS).

Real processes on real sockets: ``openssl s_client -starttls smtp`` against
ucspitlsd, ucspitlsc against a stdlib ``ssl`` STARTTLS server (a thread, on
127.0.0.1 and ::1), and ucspitlsc against ucspitlsd in every client-backend ×
server-backend pairing.  Both sides' progs are tests/support/starttls_prog.py,
a few lines of SMTP; each writes a report (what it saw, the ``Y`` answer, the
engine's exit code, reaped as its child).  Certificates come from
:mod:`tlsc.testing.certs` (the conformance PKI).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import installed_backends
from tests.support.run import base_env
from tlsc import registry
from tlsc.testing.memory import HOST, handshake_pki

PROG = Path(__file__).parent / "support" / "starttls_prog.py"
LAUNCH = Path(__file__).parent / "support" / "launch.py"
UCSPITLSC = [sys.executable, "-c", "from tlsc.quick import ucspitlsc_main; ucspitlsc_main()"]
UCSPITLSD = [sys.executable, "-c", "from tlsc.quick import ucspitlsd_main; ucspitlsd_main()"]
TIMEOUT = 30.0
NOBODY = 65534


def _server_backends() -> list[str]:
    return [n for n, c in sorted(registry.available().items())
            if registry.load(c).info().capabilities.server]


CLIENT_BACKENDS = installed_backends()
SERVER_BACKENDS = _server_backends()


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """The conformance PKI as files: root, server chains, client chain, keys."""
    p = handshake_pki()
    d = tmp_path_factory.mktemp("starttls-pki")
    files = {
        "root": p.root.pem,
        "ecdsa.chain": p.ecdsa.pem + p.inter.pem,
        "ecdsa.key": p.ecdsa.key_pem(),
        "rsa.chain": p.rsa.pem + p.inter.pem,
        "rsa.key": p.rsa.key_pem(),
        "client.chain": p.client.pem + p.inter.pem,
        "client.key": p.client.key_pem(),
    }
    out = {"pki": p}
    for name, data in files.items():
        (d / name).write_bytes(data)
        out[name] = str(d / name)
    return out


# -- running the commands --------------------------------------------------------


@dataclass
class Outcome:
    """One ucspitls* run: its exit code (prog's), its stderr, prog's report."""

    argv: list[str]
    rc: int
    stderr: str
    report: dict = field(default_factory=dict)
    pid: int = 0  #: the command's (prog's)

    def describe(self) -> str:
        return f"{self.argv}\nrc {self.rc}\nstderr:\n{self.stderr}\nreport: {self.report}"

    @property
    def fatal(self) -> list[str]:
        return [ln for ln in self.stderr.splitlines() if ": fatal: " in ln]

    def assert_clean(self) -> None:
        assert "Traceback" not in self.stderr, self.describe()
        assert not self.fatal, self.describe()
        assert self.rc == 0, self.describe()
        assert self.report.get("engine") == 0, self.describe()


class Started:
    """A ucspitls* process whose prog writes its report to ``report``."""

    def __init__(self, argv: list[str], proc: subprocess.Popen, report: Path) -> None:
        self.argv, self.proc, self.report = argv, proc, report

    def wait(self, timeout: float = TIMEOUT) -> Outcome:
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
            raise AssertionError(f"{self.argv} did not finish: {err.decode()}") from None
        report = json.loads(self.report.read_text()) if self.report.exists() else {}
        return Outcome(self.argv, self.proc.returncode, err.decode("utf-8", "replace"), report,
                       self.proc.pid)


def _env(tmp_path: Path, extra: dict[str, str]) -> tuple[dict[str, str], Path]:
    report = tmp_path / f"report-{time.monotonic_ns()}.json"
    env = {**base_env(), "ST_REPORT": str(report), **extra}
    return env, report


def start_ucspitlsc(sock: socket.socket, args: list[str], env: dict[str, str], tmp_path: Path,
                    prog: list[str] | None = None, stdin: int | None = None) -> Started:
    """ucspitlsc as tcpclient starts it: the connection on fds 6 and 7."""
    full, report = _env(tmp_path, env)
    argv = [*UCSPITLSC, *args, "--", *(prog or [sys.executable, str(PROG), "client"])]
    proc = subprocess.Popen(
        [sys.executable, "-S", str(LAUNCH), str(sock.fileno()), "6,7", "--", *argv],
        stdin=subprocess.DEVNULL if stdin is None else stdin, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, env=full, pass_fds=(sock.fileno(),), start_new_session=True,
    )
    sock.close()  # the command holds the only copy: its close is the FIN
    return Started(argv, proc, report)


def start_ucspitlsd(conn: socket.socket, args: list[str], env: dict[str, str], tmp_path: Path,
                    prog: list[str] | None = None) -> Started:
    """ucspitlsd as tcpserver starts it: the connection on stdin and stdout."""
    full, report = _env(tmp_path, env)
    argv = [*UCSPITLSD, *args, "--", *(prog or [sys.executable, str(PROG), "server"])]
    proc = subprocess.Popen(argv, stdin=conn, stdout=conn, stderr=subprocess.PIPE, env=full,
                            start_new_session=True)
    conn.close()
    return Started(argv, proc, report)


def server_env(pki: dict, kind: str = "ecdsa", **extra: str | None) -> dict[str, str]:
    """KEYFILE/CERTFILE and ``extra``; a None value leaves a variable out."""
    env = {"KEYFILE": pki[f"{kind}.key"], "CERTFILE": pki[f"{kind}.chain"], **extra}
    return {k: v for k, v in env.items() if v is not None}


def parse_y(answer: str) -> dict[str, str | None]:
    """The ``Y`` answer: NUL-terminated strings ended by an empty one, nothing after it."""
    assert answer.endswith("\0\0"), f"Y answer not ended by an empty string: {answer!r}"
    items = answer[:-2].split("\0")
    out: dict[str, str | None] = {}
    for item in items:
        name, eq, value = item.partition("=")
        assert name.startswith("SSL_") and name not in out, f"bad item {item!r} in {answer!r}"
        out[name] = value if eq else None
    assert set(out) == {"SSL_PROTOCOL", "SSL_CIPHER", "SSL_TLS_SNI_SERVERNAME",
                        "SSL_PEER_CERT_HASH", "SSL_PEER_CERT_SUBJECT"}, out
    return out


# -- a stdlib ssl STARTTLS server -------------------------------------------------


class SmtpServer:
    """One connection on 127.0.0.1 or ::1, served in a thread: a little SMTP with STARTTLS.

    ``mode``: "tls" (a real handshake after STARTTLS), "silent" (answer 220, then
    read and never answer: a stuck handshake).  Everything is read one byte at a
    time in cleartext, as an MTA must (no read-ahead into the ClientHello).
    ``seen`` records every line, ``view`` what the server's ``ssl`` negotiated.
    """

    def __init__(self, pki: dict, host: str = "127.0.0.1", mode: str = "tls",
                 client_ca: str | None = None) -> None:
        self.pki, self.mode, self.client_ca = pki, mode, client_ca
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.lsock = socket.create_server((host, 0), family=family)
        self.address = (host, self.lsock.getsockname()[1])
        self.clear: list[bytes] = []
        self.seen: list[bytes] = []
        self.view: dict[str, object] = {}
        self.first_tls_bytes = threading.Event()
        self.release = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def connect(self) -> socket.socket:
        sock = socket.create_connection(self.address, 5)
        sock.settimeout(None)  # blocking, as tcpclient leaves it
        return sock

    def _run(self) -> None:
        try:
            self.lsock.settimeout(TIMEOUT)
            conn, _ = self.lsock.accept()
            with conn:
                conn.settimeout(TIMEOUT)
                self._serve(conn)
        except BaseException as e:  # noqa: BLE001 - reported by result()
            self.error = e
        finally:
            self.lsock.close()

    @staticmethod
    def _line(conn: socket.socket) -> bytes:
        line = b""
        while not line.endswith(b"\n"):
            c = conn.recv(1)
            if not c:
                break
            line += c
        return line

    def _serve(self, conn: socket.socket) -> None:
        conn.sendall(b"220 pyserver ESMTP\r\n")
        while line := self._line(conn):
            self.clear.append(line)
            verb = line.strip().upper()
            if verb.startswith(b"EHLO"):
                conn.sendall(b"250-pyserver\r\n250 STARTTLS\r\n")
            elif verb == b"QUIT":
                conn.sendall(b"221 bye\r\n")
                return
            elif verb == b"STARTTLS":
                conn.sendall(b"220 go ahead\r\n")
                break
            else:
                conn.sendall(b"250 clear " + line.strip() + b"\r\n")
        else:
            return
        conn.settimeout(None)
        if self.mode == "silent":
            import select

            select.select([conn], [], [], TIMEOUT)
            conn.recv(65536)  # read, so that our close is a FIN, not a reset
            self.first_tls_bytes.set()
            self.release.wait(TIMEOUT)
            return
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.pki["ecdsa.chain"], self.pki["ecdsa.key"])
        if self.client_ca:
            ctx.load_verify_locations(self.client_ca)
            ctx.verify_mode = ssl.CERT_REQUIRED

        def sni(obj: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
            self.view["sni"] = name

        ctx.sni_callback = sni  # type: ignore[assignment]
        with ctx.wrap_socket(conn, server_side=True) as tls:
            self.view.update(protocol=tls.version(), cipher=tls.cipher()[0],
                             cert=hashlib.sha256(tls.getpeercert(True) or b"").hexdigest())
            rfile = tls.makefile("rb")
            while line := rfile.readline():
                self.seen.append(line)
                verb = line.strip().upper()
                if verb.startswith(b"EHLO"):
                    tls.sendall(b"250-pyserver over tls\r\n250 AUTH PLAIN\r\n")
                elif verb == b"QUIT":
                    tls.sendall(b"221 bye\r\n")
                    break
                else:
                    tls.sendall(b"250 " + line.strip() + b"\r\n")
            rfile.close()
            tls.unwrap()

    def result(self) -> None:
        self.release.set()
        self.thread.join(TIMEOUT)
        assert not self.thread.is_alive(), "the STARTTLS server did not finish"
        if self.error is not None and not isinstance(self.error, (ssl.SSLError, OSError)):
            raise self.error


def proc_children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def proc_uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError("no Uid line")


# -- openssl s_client -starttls smtp against ucspitlsd -------------------------------


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
@pytest.mark.parametrize("server_backend", SERVER_BACKENDS)
@pytest.mark.parametrize("command", ["y", "Y"])
def test_s_client_starttls_smtp_against_ucspitlsd(pki, server_backend, command, tmp_path):
    """The SMTP dialogue in cleartext, STARTTLS, then the same connection under TLS;
    with ``Y`` prog gets the SSL_* variables, matching what s_client negotiated."""
    lsock = socket.create_server(("127.0.0.1", 0))
    port = lsock.getsockname()[1]
    client = subprocess.Popen(
        ["openssl", "s_client", "-starttls", "smtp", "-connect", f"127.0.0.1:{port}",
         "-CAfile", pki["root"], "-verify_return_error", "-brief", "-ign_eof",
         "-servername", "localhost"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True)
    try:
        conn, _ = lsock.accept()
        lsock.close()
        srv = start_ucspitlsd(conn, ["--backend", server_backend, "-v", "2"],
                              server_env(pki, ST_CMD=command), tmp_path)
        out, err = client.communicate(b"EHLO after.tls\r\nNOOP over tls\r\nquit\r\n", TIMEOUT)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    r = srv.wait()
    r.assert_clean()
    assert out == (b"250-starttls.test over tls\r\n250 AUTH PLAIN\r\n"
                   b"250 NOOP over tls\r\n221 bye\r\n"), (out, err, r.describe())
    assert r.report["clear"] == ["EHLO mail.example.com\r\n", "STARTTLS\r\n"], r.describe()
    assert r.report["seen"] == ["EHLO after.tls\r\n", "NOOP over tls\r\n", "quit\r\n"]
    assert f"ucspitlsd: info: pid {r.pid}: prog asked for TLS" in r.stderr, r.describe()
    text = err.decode()
    protocol = re.search(r"Protocol version: (\S+)", text).group(1)
    cipher = re.search(r"Ciphersuite: (\S+)", text).group(1)
    if command == "Y":
        got = parse_y(r.report["Y"])
        assert got == {"SSL_PROTOCOL": protocol, "SSL_CIPHER": cipher,
                       "SSL_TLS_SNI_SERVERNAME": "localhost", "SSL_PEER_CERT_HASH": None,
                       "SSL_PEER_CERT_SUBJECT": None}, r.describe()
    else:
        assert "Y" not in r.report


# -- ucspitlsc against a stdlib ssl STARTTLS server -------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
@pytest.mark.parametrize("client_backend", CLIENT_BACKENDS)
@pytest.mark.parametrize("command", ["y", "Y"])
def test_ucspitlsc_against_python_starttls_server(pki, host, client_backend, command,
                                                   tmp_path):
    srv = SmtpServer(pki, host)
    r = start_ucspitlsc(srv.connect(), ["--backend", client_backend, "-k", HOST],
                        {"CAFILE": pki["root"], "ST_CMD": command}, tmp_path).wait()
    srv.result()
    r.assert_clean()
    assert srv.clear == [b"EHLO client.test\r\n", b"STARTTLS\r\n"]
    assert srv.seen == [b"EHLO client.test\r\n", b"NOOP " + b"x" * 1000 + b"\r\n",
                        b"QUIT\r\n"], srv.seen
    assert r.report["clear"][-1] == "220 go ahead\r\n", r.describe()
    assert r.report["payload_ok"] is True, r.describe()
    assert r.report["seen"] == ["250-pyserver over tls\r\n", "250 AUTH PLAIN\r\n",
                                "221 bye\r\n"], r.describe()
    if command == "Y":
        leaf = pki["pki"].ecdsa
        got = parse_y(r.report["Y"])
        assert got == {
            "SSL_PROTOCOL": srv.view["protocol"],
            "SSL_CIPHER": srv.view["cipher"],
            "SSL_TLS_SNI_SERVERNAME": srv.view["sni"],
            "SSL_PEER_CERT_HASH": "SHA256:" + hashlib.sha256(leaf.der).hexdigest(),
            "SSL_PEER_CERT_SUBJECT": leaf.cert.subject.rfc4514_string(),
        }, r.describe()
        assert srv.view["sni"] == HOST


# -- ucspitlsc against ucspitlsd, every backend pairing -------------------------------


def _pair(pki, tmp_path, client_args, server_args, client_env=None, server_extra=None,
          **client_kw):
    lsock = socket.create_server(("127.0.0.1", 0))
    csock = socket.create_connection(lsock.getsockname(), 5)
    csock.settimeout(None)
    conn, _ = lsock.accept()
    lsock.close()
    srv = start_ucspitlsd(conn, server_args, server_env(pki, **(server_extra or {})), tmp_path)
    cli = start_ucspitlsc(csock, client_args, {"CAFILE": pki["root"], **(client_env or {})},
                          tmp_path, **client_kw)
    return cli.wait(), srv.wait()


@pytest.mark.parametrize("server_backend", SERVER_BACKENDS)
@pytest.mark.parametrize("client_backend", CLIENT_BACKENDS)
def test_ucspitlsc_against_ucspitlsd(pki, client_backend, server_backend, tmp_path):
    """Both sides write their first tunnel bytes before the handshake can be over
    (ST_EARLY): nothing is lost across the switch, in either direction; both
    ``Y`` answers describe the same session."""
    early = {"ST_CMD": "Y", "ST_EARLY": "1", "ST_PAYLOAD": "200000"}
    c, s = _pair(pki, tmp_path, ["--backend", client_backend, "-k", "localhost"],
                 ["--backend", server_backend], early, early)
    c.assert_clean()
    s.assert_clean()
    assert s.report["clear"] == ["EHLO client.test\r\n", "STARTTLS\r\n"], s.describe()
    assert c.report["clear"][-1] == "220 2.0.0 Ready to start TLS\r\n", c.describe()
    assert c.report["banner"] == ["220 tls banner, written before the handshake\r\n"], c
    assert s.report["seen"][0] == "EHLO client.test\r\n", s.describe()
    assert c.report["payload_ok"] is True, c.describe()
    cy, sy = parse_y(c.report["Y"]), parse_y(s.report["Y"])
    assert cy["SSL_PROTOCOL"] == sy["SSL_PROTOCOL"] and cy["SSL_CIPHER"] == sy["SSL_CIPHER"]
    assert sy["SSL_TLS_SNI_SERVERNAME"] == cy["SSL_TLS_SNI_SERVERNAME"] == "localhost"
    assert cy["SSL_PEER_CERT_HASH"] == "SHA256:" + hashlib.sha256(
        pki["pki"].ecdsa.der).hexdigest()
    assert sy["SSL_PEER_CERT_HASH"] is None and sy["SSL_PEER_CERT_SUBJECT"] is None


def test_client_certificate_both_sides(pki, tmp_path):
    """tlsc's and tlsd's options apply to the TLS part: ucspitlsc -y, ucspitlsd -y."""
    c, s = _pair(pki, tmp_path, ["-y", "-k", "localhost"], ["-y"],
                 {"ST_CMD": "y", "CERTFILE": pki["client.chain"], "KEYFILE": pki["client.key"]},
                 {"ST_CMD": "Y", "CAFILE": pki["root"]})
    c.assert_clean()
    s.assert_clean()
    sy = parse_y(s.report["Y"])
    assert sy["SSL_PEER_CERT_SUBJECT"] == pki["pki"].client.cert.subject.rfc4514_string()


def test_readme_submission_example(pki, tmp_path):
    """The README's STARTTLS mail submission client, verbatim, under ucspitlsc."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    m = re.search(r"```sh\n(#!/bin/sh\n# submit FROM TO.*?)```", readme, re.S)
    assert m, "the README's submit example is gone"
    script = tmp_path / "submit"
    script.write_text(m.group(1))
    message = tmp_path / "message"
    message.write_bytes(b"Subject: hi\n\n.leading dot\nbody\n")
    with open(message, "rb") as stdin:
        c, s = _pair(pki, tmp_path, ["-k", "localhost"], [], {}, {"ST_CMD": "y"},
                     prog=["sh", str(script), "me@example.org", "you@example.org"],
                     stdin=stdin.fileno())
    assert c.rc == 0 and not c.stderr, c.describe()
    s.assert_clean()
    assert s.report["clear"] == ["EHLO client.example.org\r\n", "STARTTLS\r\n"], s.describe()
    assert s.report["seen"][:3] == ["EHLO client.example.org\r\n",
                                    "MAIL FROM:<me@example.org>\r\n",
                                    "RCPT TO:<you@example.org>\r\n"], s.describe()
    assert s.report["message"] == "Subject: hi\r\n\r\n..leading dot\r\nbody\r\n"


def test_ucspitlsd_sni_level(pki, tmp_path):
    """tlsd's -k SNILEVEL: at 2 only the pair named by the client's SNI is served, and
    the pairs leave prog's environment with the other TLS variables."""
    named = {"KEYFILE:localhost": pki["rsa.key"], "CERTFILE:localhost": pki["rsa.chain"]}
    c, s = _pair(pki, tmp_path, ["-k", "localhost"], ["-k", "2"], {"ST_CMD": "Y"},
                 {"ST_CMD": "Y", "KEYFILE": None, "CERTFILE": None, **named})
    c.assert_clean()
    s.assert_clean()
    assert parse_y(c.report["Y"])["SSL_PEER_CERT_HASH"] == "SHA256:" + hashlib.sha256(
        pki["pki"].rsa.der).hexdigest(), c.describe()
    assert set(s.report["env"].values()) == {None}, s.describe()


def test_ucspitlsd_sni_level_unknown_name(pki, tmp_path):
    """-k 2 and a client sending no SNI: both engines fail (98), both progs read EOF."""
    named = {"KEYFILE:localhost": pki["rsa.key"], "CERTFILE:localhost": pki["rsa.chain"]}
    c, s = _pair(pki, tmp_path, ["-k", "127.0.0.1"], ["-k", "2"], {"ST_CMD": "y"},
                 {"ST_CMD": "y", "KEYFILE": None, "CERTFILE": None, **named})
    assert (c.rc, s.rc) == (0, 0), (c.describe(), s.describe())
    assert (c.report["engine"], s.report["engine"]) == (98, 98), (c.describe(), s.describe())
    assert len(s.fatal) == 1 and "unrecognized server name" in s.fatal[0], s.describe()
    # as tlsd's, ucspitlsd's lines name the connection's pid: the command's, prog's
    assert s.fatal[0].startswith(f"ucspitlsd: fatal: pid {s.pid}: "), s.describe()
    assert len(c.fatal) == 1 and "unrecognized_name" in c.fatal[0], c.describe()
    assert s.report["seen"] == [] and c.report["tunnel_rest"] == "", s.describe()


# -- declining, bad commands, failures ------------------------------------------------


def test_ucspitlsc_declines(pki, tmp_path):
    """prog closes SSLCTLFD: the engine exits 0 and prog goes on in cleartext."""
    srv = SmtpServer(pki)
    r = start_ucspitlsc(srv.connect(), ["-v", "2"], {"CAFILE": pki["root"],
                                                     "ST_CMD": "decline"}, tmp_path).wait()
    srv.result()
    r.assert_clean()
    assert srv.clear == [b"EHLO client.test\r\n", b"NOOP still cleartext\r\n", b"QUIT\r\n"]
    assert r.report["clear"][-2:] == ["250 clear NOOP still cleartext\r\n", "221 bye\r\n"]
    assert "ucspitlsc: info: prog declined TLS" in r.stderr, r.describe()


def test_ucspitlsd_declines(pki, tmp_path):
    lsock = socket.create_server(("127.0.0.1", 0))
    csock = socket.create_connection(lsock.getsockname(), 5)
    csock.settimeout(None)
    conn, _ = lsock.accept()
    lsock.close()
    srv = start_ucspitlsd(conn, [], server_env(pki, ST_CMD="decline"), tmp_path)
    with csock:
        csock.sendall(b"EHLO x\r\nSTARTTLS\r\n")
        f = csock.makefile("rb")
        lines = [f.readline() for _ in range(5)]
        csock.sendall(b"NOOP clear\r\nQUIT\r\n")
        lines += [f.readline(), f.readline(), f.readline()]
        f.close()
    r = srv.wait()
    r.assert_clean()
    assert lines == [b"220 starttls.test ESMTP\r\n", b"250-starttls.test\r\n",
                     b"250-PIPELINING\r\n", b"250 STARTTLS\r\n",
                     b"454 4.7.0 TLS not available\r\n", b"250 clear NOOP clear\r\n",
                     b"221 bye\r\n", b""], lines


def test_bad_command_is_a_usage_error(pki, tmp_path):
    """Any byte but y or Y: the engine exits 100 with one line; nothing goes to the network."""
    srv = SmtpServer(pki)
    r = start_ucspitlsc(srv.connect(), [], {"CAFILE": pki["root"], "ST_CMD": "x"},
                        tmp_path).wait()
    srv.result()
    assert r.rc == 0 and "Traceback" not in r.stderr, r.describe()
    assert r.report["engine"] == 100, r.describe()
    assert len(r.fatal) == 1 and r.fatal[0].startswith("ucspitlsc: fatal: "), r.describe()
    assert "'x'" in r.fatal[0], r.describe()
    assert r.report["tunnel_rest"] == "", r.describe()
    assert srv.seen == [] and "protocol" not in srv.view


@pytest.mark.parametrize("client_backend", CLIENT_BACKENDS)
def test_wrong_name_after_y(pki, client_backend, tmp_path):
    """The handshake fails: the engine exits 98 naming why, prog reads EOF on SSLREADFD."""
    srv = SmtpServer(pki)
    r = start_ucspitlsc(srv.connect(), ["--backend", client_backend, "-k", "wrong.example"],
                        {"CAFILE": pki["root"], "ST_CMD": "y"}, tmp_path).wait()
    srv.result()
    assert r.rc == 0 and "Traceback" not in r.stderr, r.describe()
    assert r.report["engine"] == 98, r.describe()
    assert len(r.fatal) == 1, r.describe()
    assert re.search(r"^ucspitlsc: fatal: .*not valid for 'wrong\.example'", r.fatal[0]), (
        r.describe())
    assert r.report["tunnel_rest"] == "" and not r.report.get("payload_ok"), r.describe()
    assert set(r.report["seen"]) <= {"<EOF>"}, r.describe()  # EOF, or EPIPE first


def test_handshake_timeout_after_y(pki, tmp_path):
    """-K: a server that says 220 and then never answers the ClientHello."""
    srv = SmtpServer(pki, mode="silent")
    r = start_ucspitlsc(srv.connect(), ["-K", "300"], {"CAFILE": pki["root"], "ST_CMD": "y"},
                        tmp_path).wait()
    srv.result()
    assert r.report["engine"] == 98, r.describe()
    assert len(r.fatal) == 1 and "timed out" in r.fatal[0], r.describe()


def test_signal_ends_the_engine(pki, tmp_path):
    """The engine is not prog's parent: a signal it gets ends it (quietly), and prog,
    still running, reads EOF on SSLREADFD and reaps it killed by that signal."""
    srv = SmtpServer(pki, mode="silent")
    started = start_ucspitlsc(srv.connect(), [], {"CAFILE": pki["root"], "ST_CMD": "y"},
                              tmp_path)
    try:
        assert srv.first_tls_bytes.wait(TIMEOUT), "no ClientHello"
        (engine,) = proc_children(started.proc.pid)
        os.kill(engine, signal.SIGTERM)
        r = started.wait()
    finally:
        srv.release.set()
    srv.result()
    assert r.rc == 0 and not r.fatal and "Traceback" not in r.stderr, r.describe()
    assert r.report["engine"] == -signal.SIGTERM, r.describe()
    assert r.report["tunnel_rest"] == "", r.describe()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (CI runs as root)")
def test_engine_drops_privileges_before_the_handshake(pki, tmp_path):
    """TLS_UID/TLS_GID: when the server sees the first TLS bytes, the engine runs as
    65534 already; prog (the engine's parent) keeps root."""
    srv = SmtpServer(pki, mode="silent")
    started = start_ucspitlsc(srv.connect(), ["-K", "5000"],
                              {"CAFILE": pki["root"], "ST_CMD": "y",
                               "TLS_UID": str(NOBODY), "TLS_GID": str(NOBODY)}, tmp_path)
    try:
        assert srv.first_tls_bytes.wait(TIMEOUT), "no ClientHello"
        prog = started.proc.pid  # launch.py execs ucspitlsc, which execs prog
        engines = proc_children(prog)
        assert len(engines) == 1, engines
        assert proc_uid(engines[0]) == NOBODY
        assert proc_uid(prog) == 0
    finally:
        srv.release.set()
    r = started.wait()
    srv.result()
    assert r.report["engine"] == 98, r.describe()


#: prog: report its descriptors and environment, then decline TLS.
FDS_PROG = [sys.executable, "-c", r"""
import json, os
fds = {}
for fd in os.listdir("/proc/self/fd"):
    try:
        fds[fd] = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        pass
keys = ("SSLCTLFD", "SSLREADFD", "SSLWRITEFD", "CAFILE", "SSL_PROTOCOL")
env = {k: os.environ.get(k) for k in keys}
os.close(int(os.environ["SSLCTLFD"]))
_, status = os.wait()
with open(os.environ["ST_REPORT"], "w") as f:
    json.dump({"fds": fds, "env": env, "engine": os.waitstatus_to_exitcode(status)}, f)
"""]


@pytest.mark.parametrize("keep", [False, True], ids=["-z", "-Z"])
def test_prog_descriptors_and_environment(pki, keep, tmp_path):
    """prog holds the connection (6/7), the control socket, the two tunnel pipes and
    0/1/2, nothing else; the TLS variables are removed unless -Z, and an inherited
    SSL_* variable never pretends that TLS is on."""
    srv = SmtpServer(pki)
    r = start_ucspitlsc(srv.connect(), ["-Z"] if keep else [],
                        {"CAFILE": pki["root"], "SSL_PROTOCOL": "TLSv1.3"}, tmp_path,
                        prog=FDS_PROG).wait()
    srv.result()
    r.assert_clean()
    env, fds = r.report["env"], r.report["fds"]
    ctl, rd, wr = (env[k] for k in ("SSLCTLFD", "SSLREADFD", "SSLWRITEFD"))
    # (listdir's own descriptor is closed by the time readlink runs: not reported)
    assert set(fds) == {"0", "1", "2", "6", "7", ctl, rd, wr}, fds
    assert fds["6"] == fds["7"] and fds["6"].startswith("socket:"), fds
    assert fds[ctl].startswith("socket:") and fds[ctl] != fds["6"], fds
    assert fds[rd].startswith("pipe:") and fds[wr].startswith("pipe:") and fds[rd] != fds[wr]
    assert env["CAFILE"] == (pki["root"] if keep else None), env
    assert env["SSL_PROTOCOL"] is None, env


# -- usage, configuration and exec errors: before prog exists ----------------------


def test_usage_error_before_prog(tmp_path):
    env, report = _env(tmp_path, {})
    r = subprocess.run([*UCSPITLSD, "--bogus", "true"], env=env, capture_output=True,
                       timeout=TIMEOUT)
    assert r.returncode == 100
    lines = r.stderr.decode().splitlines()
    assert len(lines) == 1 and re.match(r"ucspitlsd: fatal: pid \d+: usage: ", lines[0]), lines
    assert "--bogus" in lines[0], lines


def test_missing_credentials_before_prog(tmp_path):
    """ucspitlsd without KEYFILE/CERTFILE: 100 before prog runs (prog would write a report)."""
    lsock = socket.create_server(("127.0.0.1", 0))
    csock = socket.create_connection(lsock.getsockname(), 5)
    csock.settimeout(None)
    conn, _ = lsock.accept()
    lsock.close()
    r = start_ucspitlsd(conn, [], {}, tmp_path).wait()
    csock.close()
    assert r.rc == 100 and len(r.fatal) == 1 and "KEYFILE" in r.fatal[0], r.describe()
    assert r.report == {}, r.describe()


def test_prog_not_found(pki, tmp_path):
    srv = SmtpServer(pki)
    r = start_ucspitlsc(srv.connect(), [], {"CAFILE": pki["root"]}, tmp_path,
                        prog=["/nonexistent/prog"]).wait()
    srv.result()
    assert r.rc == 111 and len(r.fatal) == 1, r.describe()
    assert r.fatal[0].startswith("ucspitlsc: fatal: unable to exec /nonexistent/prog"), r


def test_help_describes_the_protocol():
    for cmd in (UCSPITLSC, UCSPITLSD):
        r = subprocess.run([*cmd, "--help"], capture_output=True, timeout=TIMEOUT)
        assert r.returncode == 0
        text = r.stdout.decode()
        for word in ("SSLCTLFD", "SSLREADFD", "SSLWRITEFD", "'Y'", "Exit codes"):
            assert word in text, (cmd, text)
