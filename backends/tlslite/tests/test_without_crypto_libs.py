"""tlsc with the tlslite backend, tested with neither cryptography nor pyOpenSSL installed.

Everything here uses the standard library, pytest and the ``openssl`` command
only: the certificates are made by ``openssl req``/``openssl x509`` in a
temporary directory, the server is ``openssl s_server -rev``, and tlsc runs as
a real process with the connection on its fds 6 and 7.  The tox env
``tlslite`` runs this module in a virtualenv holding only the core and
tlsc-tlslite, which shows that neither the core nor this backend needs (or
imports) pyOpenSSL or cryptography.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")

FORBIDDEN = ("cryptography", "OpenSSL")

OPENSSL_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[leaf_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""

KEYGEN = {
    "ec": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
    "rsa": ["-newkey", "rsa:2048"],
}

#: (protocol, s_server options pinning the suite, the suite tlsc must report)
TLS = {
    ("1.3", "ec"): ["-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256"],
    ("1.3", "rsa"): ["-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256"],
    ("1.2", "ec"): ["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"],
    ("1.2", "rsa"): ["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"],
}


def close_flags(tls: str) -> list[str]:
    """How prog's EOF ends the session.

    Under TLS 1.2 the default -s is a bare TCP half-close (as s6-tlsc does), which
    OpenSSL 3's s_server answers with a fatal decode_error alert -> 98 (a TLS error);
    -S (close_notify, then the end) is the clean ending there.
    """
    return ["-S"] if tls == "1.2" else []


CIPHER = {
    ("1.3", "ec"): "TLS_AES_128_GCM_SHA256",
    ("1.3", "rsa"): "TLS_AES_128_GCM_SHA256",
    ("1.2", "ec"): "ECDHE-ECDSA-AES128-GCM-SHA256",
    ("1.2", "rsa"): "ECDHE-RSA-AES128-GCM-SHA256",
}

#: prog: sends one line, reads the reversed line back, records it and its SSL_* environment.
PROG = textwrap.dedent(
    """\
    import json, os, sys
    os.write(7, b"hello tlsc\\n")
    buf = b""
    while not buf.endswith(b"\\n"):
        d = os.read(6, 4096)
        if not d:
            break
        buf += d
    env = {k: v for k, v in os.environ.items() if k.startswith("SSL_") or k == "CAFILE"}
    with open(sys.argv[1], "w") as f:
        json.dump({"reply": buf.decode("latin-1"), "env": env}, f)
    """
)

#: tlsc's own main in this interpreter, then a look at sys.modules in the parent
#: (tlsc forks prog; the child execs it or leaves with os._exit, never returns here).
CHECKED_TLSC = textwrap.dedent(
    """\
    import json, os, sys
    verdict_path = sys.argv[1]
    parent = os.getpid()
    from tlsc.quick import tlsc_main as main
    try:
        main(sys.argv[2:])
        code = 0
    except SystemExit as e:
        code = e.code
    if os.getpid() == parent:
        with open(verdict_path, "w") as f:
            json.dump({"code": code, "modules": sorted(sys.modules)}, f)
    sys.exit(code)
    """
)


def _run(argv: list[str], cwd: Path) -> None:
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True, timeout=30)


@dataclass
class Cert:
    cert: Path
    key: Path
    der: bytes


def _make_ca(d: Path, name: str, kind: str) -> Cert:
    _run(
        [
            "openssl",
            "req",
            "-x509",
            "-config",
            "openssl.cnf",
            *KEYGEN[kind],
            "-nodes",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.pem",
            "-subj",
            f"/CN=tlsc test {name}",
            "-days",
            "2",
            "-extensions",
            "ca_ext",
        ],
        d,
    )
    return Cert(d / f"{name}.pem", d / f"{name}.key", _der(d / f"{name}.pem"))


def _make_leaf(d: Path, name: str, kind: str, ca: Cert) -> Cert:
    _run(
        [
            "openssl",
            "req",
            "-new",
            "-config",
            "openssl.cnf",
            *KEYGEN[kind],
            "-nodes",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            "-subj",
            "/CN=localhost",
        ],
        d,
    )
    _run(
        [
            "openssl",
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            str(ca.cert),
            "-CAkey",
            str(ca.key),
            "-set_serial",
            str(int.from_bytes(os.urandom(8), "big")),
            "-days",
            "2",
            "-sha256",
            "-extfile",
            "openssl.cnf",
            "-extensions",
            "leaf_ext",
            "-out",
            f"{name}.pem",
        ],
        d,
    )
    return Cert(d / f"{name}.pem", d / f"{name}.key", _der(d / f"{name}.pem"))


def _der(pem: Path) -> bytes:
    return subprocess.run(
        ["openssl", "x509", "-in", str(pem), "-outform", "DER"],
        check=True,
        capture_output=True,
        timeout=10,
    ).stdout


@dataclass
class PKI:
    dir: Path
    ca: Cert
    other_ca: Cert
    leaves: dict[str, Cert]


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> PKI:
    d = tmp_path_factory.mktemp("openssl-cli-pki")
    (d / "openssl.cnf").write_text(OPENSSL_CNF)
    ca = _make_ca(d, "ca", "ec")
    other = _make_ca(d, "other-ca", "ec")
    leaves = {kind: _make_leaf(d, f"leaf-{kind}", kind, ca) for kind in KEYGEN}
    (d / "prog.py").write_text(PROG)
    (d / "checked_tlsc.py").write_text(CHECKED_TLSC)
    return PKI(d, ca, other, leaves)


class SServer:
    """``openssl s_server -rev`` on 127.0.0.1, an ephemeral port, one connection."""

    def __init__(self, leaf: Cert, opts: list[str]):
        self.proc = subprocess.Popen(
            [
                "openssl",
                "s_server",
                "-accept",
                "127.0.0.1:0",
                "-cert",
                str(leaf.cert),
                "-key",
                str(leaf.key),
                "-rev",
                "-naccept",
                "1",
                *opts,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.output = b""
        deadline = time.monotonic() + 5
        while True:
            m = re.search(rb"ACCEPT \S+:(\d+)", self.output)
            if m:
                self.port = int(m.group(1))
                return
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"s_server did not start: {self.output!r}")
            if select.select([self.proc.stdout], [], [], left)[0]:
                self.output += os.read(self.proc.stdout.fileno(), 4096)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(5)
        self.proc.stdout.close()


@pytest.fixture
def sserver():
    servers: list[SServer] = []

    def start(leaf: Cert, opts: list[str]) -> SServer:
        s = SServer(leaf, opts)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()


def run_tlsc(
    pki: PKI,
    port: int,
    tlsc_args: list[str],
    prog_out: Path,
    *,
    cafile: Path,
    verdict: Path | None = None,
) -> subprocess.CompletedProcess:
    """tlsc (or the checked wrapper) with a connected socket on its fds 6 and 7."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    fd = sock.fileno()

    def on_fds_6_and_7() -> None:
        os.dup2(fd, 6)
        os.dup2(fd, 7)

    if verdict is None:
        head = [sys.executable, "-m", "tlsc"]
    else:
        head = [sys.executable, str(pki.dir / "checked_tlsc.py"), str(verdict)]
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CADIR", "CAFILE", "CERTFILE", "KEYFILE", "TLS_UID", "TLS_GID")
    }
    env["CAFILE"] = str(cafile)
    try:
        return subprocess.run(
            [
                *head,
                "--backend",
                "tlslite",
                "-K",
                "5000",
                *tlsc_args,
                "--",
                sys.executable,
                str(pki.dir / "prog.py"),
                str(prog_out),
            ],
            # close_fds=False: the child's 6 and 7 are made by dup2 in preexec_fn,
            # which runs before close_fds would close them; everything else the
            # test holds is close-on-exec already.
            env=env,
            preexec_fn=on_fds_6_and_7,
            close_fds=False,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=9,
        )
    finally:
        sock.close()


@pytest.mark.parametrize("kind", ["ec", "rsa"])
@pytest.mark.parametrize("tls", ["1.3", "1.2"])
def test_full_run_and_ssl_variables(pki, sserver, tmp_path, tls, kind):
    leaf = pki.leaves[kind]
    srv = sserver(leaf, TLS[(tls, kind)])
    out = tmp_path / "prog.json"
    p = run_tlsc(pki, srv.port, ["-k", "localhost", *close_flags(tls)], out, cafile=pki.ca.cert)
    assert p.returncode == 0, p.stderr
    got = json.loads(out.read_text())
    assert got["reply"] == "cslt olleh\n"
    env = got["env"]
    assert env["SSL_PROTOCOL"] == f"TLSv{tls}"
    assert env["SSL_CIPHER"] == CIPHER[(tls, kind)]
    assert env["SSL_PEER_CERT_HASH"] == "SHA256:" + hashlib.sha256(leaf.der).hexdigest()
    assert env["SSL_PEER_CERT_SUBJECT"] == "CN=localhost"
    assert env["SSL_TLS_SNI_SERVERNAME"] == "localhost"
    assert "CAFILE" not in env  # -z (default) removes it for prog


@pytest.mark.parametrize("tls", ["1.3", "1.2"])
def test_wrong_servername_is_98(pki, sserver, tmp_path, tls):
    srv = sserver(pki.leaves["ec"], TLS[(tls, "ec")])
    out = tmp_path / "prog.json"
    p = run_tlsc(pki, srv.port, ["-k", "not-localhost.example"], out, cafile=pki.ca.cert)
    assert p.returncode == 98, p.stderr
    assert "certificate name mismatch: not valid for 'not-localhost.example'" in p.stderr
    assert not out.exists()  # prog never ran


@pytest.mark.parametrize("tls", ["1.3", "1.2"])
def test_unknown_ca_is_98(pki, sserver, tmp_path, tls):
    srv = sserver(pki.leaves["rsa"], TLS[(tls, "rsa")])
    out = tmp_path / "prog.json"
    p = run_tlsc(pki, srv.port, ["-k", "localhost"], out, cafile=pki.other_ca.cert)
    assert p.returncode == 98, p.stderr
    assert "handshake failed: unknown certificate authority" in p.stderr
    assert not out.exists()


@pytest.mark.parametrize(("tls", "kind"), [("1.3", "ec"), ("1.2", "rsa")])
def test_tlsc_process_never_loads_the_crypto_libraries(pki, sserver, tmp_path, tls, kind):
    srv = sserver(pki.leaves[kind], TLS[(tls, kind)])
    out = tmp_path / "prog.json"
    verdict = tmp_path / "verdict.json"
    p = run_tlsc(
        pki,
        srv.port,
        ["-k", "localhost", *close_flags(tls)],
        out,
        cafile=pki.ca.cert,
        verdict=verdict,
    )
    assert p.returncode == 0, p.stderr
    assert json.loads(out.read_text())["reply"] == "cslt olleh\n"
    v = json.loads(verdict.read_text())
    assert v["code"] == 0
    modules = set(v["modules"])
    # the run really went through the tlslite backend...
    assert {"tlsc_tlslite", "tlslite"} <= modules
    # ...and nothing of cryptography or pyOpenSSL was imported on the way
    loaded = sorted(m for m in modules if m.split(".")[0] in FORBIDDEN)
    assert loaded == []


def test_importing_core_and_backend_loads_no_crypto_library():
    code = textwrap.dedent(
        """\
        import json, sys
        import tlsc, tlsc.cli, tlsc.client, tlsc.engine, tlsc.quick, tlsc_tlslite
        print(json.dumps(sorted(m for m in sys.modules
                                if m.split(".")[0] in ("cryptography", "OpenSSL"))))
        """
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=9)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == []
