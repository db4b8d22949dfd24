"""Security properties as tests, for every installed backend.

Already covered elsewhere, not repeated here:
  - tlsc cleans CADIR/CAFILE/KEYFILE/CERTFILE/TLS_UID/TLS_GID by default and keeps them
    with -Z: tests/test_env.py::test_tls_variables_removed / _kept_with_Z;
  - tlsc's prog sees only 0, 1, 2 and its two pipes (also with -y): tests/test_privileges.py
    ::test_prog_sees_no_network_descriptor / _no_tlsc_descriptor_with_client_cert;
  - tlsc as root runs connected as TLS_UID/TLS_GID, prog keeps root: test_privileges.py
    ::test_drops_privileges_but_prog_keeps_them;
  - tlsc --no-verify-cert warns at -v 0: test_verify.py::test_no_verify_cert_..._even_quiet;
  - wildcard basics (*.example.test vs example.test / a.b.example.test): test_verify.py.

Added here: the same cleaning / descriptor properties for tlsd and tlsclient; the
privilege drop observed *before the first byte comes back* (tlsc and tlsd stalled in
the handshake); renegotiation refused; more wildcard abuses; no private key in any
message; no environment injection through certificate subjects or SNI, checked on
the raw /proc/self/environ.
"""

from __future__ import annotations

import base64
import os
import re
import socket
import sys
import threading
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from tests.support import run as runmod
from tests.support.progs import marker_prog
from tests.support.run import base_env
from tests.support.serve import Listener
from tlsc.testing.pki import PKI, Credential, credential

ENV_DUMP = Path(__file__).parent / "support" / "environ_dump.py"
TLSCLIENT = [sys.executable, "-m", "tlsc.tlsclient"]
TLS_VARS = ("CADIR", "CAFILE", "KEYFILE", "CERTFILE", "TLS_UID", "TLS_GID")
NOBODY = 65534
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def dump_prog(out: Path) -> list[str]:
    return [sys.executable, str(ENV_DUMP), str(out)]


def read_dump(out: Path) -> dict:
    import json

    assert out.exists(), "prog did not run"
    return json.loads(out.read_text())


def env_names(entries: list[str]) -> list[str]:
    return [e.partition("=")[0] for e in entries]


def env_map(entries: list[str]) -> dict[str, str]:
    return dict(e.split("=", 1) for e in entries)


def proc_ids(pid: int) -> tuple[list[str], list[str], str]:
    status = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            status[k] = v.strip()
    return status["Uid"].split(), status["Gid"].split(), status.get("Groups", "")


@pytest.fixture
def listener():
    lst = Listener()
    yield lst
    lst.close()


# -- 1. cleaned environment and descriptors: tlsd and tlsclient ---------------------------


def _full_tls_env(pki: PKI) -> dict[str, str]:
    env = {"CADIR": str(pki.cadir_pem_spaces), "CAFILE": str(pki.cafile),
           "KEYFILE": str(pki.leaf_ec.key_pem), "CERTFILE": str(pki.leaf_ec.chain_pem)}
    env.update(TLS_UID="0", TLS_GID="0") if os.geteuid() == 0 else env.update(
        TLS_UID="12345", TLS_GID="12345")
    return env


def test_tlsd_prog_environment_and_descriptors(backend, pki, listener, tmp_path):
    """tlsd's prog: no TLS variable; fds 0 and 1 are pipes, 2 is inherited, nothing else."""
    out = tmp_path / "server.json"
    client = runmod.start(["--backend", backend, "-k", "localhost", "sh", "-c", "cat <&6"],
                          peer=listener.address, env={"CAFILE": pki.cafile})
    server = listener.serve(["--backend", backend, *dump_prog(out)], _full_tls_env(pki))
    sres = server.wait()
    client.wait()
    sres.assert_ok()
    rep = read_dump(out)
    names = env_names(rep["environ"])
    for var in TLS_VARS:
        assert var not in names, f"{var} leaked into tlsd's prog: {names}"
    fds = rep["fds"]
    assert set(fds) == {"0", "1", "2"}, f"tlsd's prog inherited extra descriptors: {fds}"
    assert fds["0"].startswith("pipe:") and fds["1"].startswith("pipe:"), fds
    assert not any(v.startswith("socket:") for v in fds.values()), fds


def test_tlsclient_prog_environment_and_descriptors(backend, pki, pypeer, tmp_path):
    """tlsclient opened the socket itself: prog still gets only 0, 1, 2, 6, 7 (pipes)."""
    peer = pypeer(pki.leaf_ec)
    out = tmp_path / "client.json"
    env = _full_tls_env(pki)
    r = runmod.run(["--backend", backend, "localhost", str(peer.port), *dump_prog(out)],
                   cmd=TLSCLIENT, env=env)
    r.assert_ok()
    rep = read_dump(out)
    names = env_names(rep["environ"])
    for var in TLS_VARS:
        assert var not in names, f"{var} leaked into tlsclient's prog"
    fds = rep["fds"]
    assert set(fds) == {"0", "1", "2", "6", "7"}, f"extra descriptors: {fds}"
    assert fds["6"].startswith("pipe:") and fds["7"].startswith("pipe:"), fds
    assert not any(v.startswith("socket:") for v in fds.values()), fds


# -- 2. privileges dropped before the first network byte ----------------------------------


@root_only
def test_tlsc_already_unprivileged_when_client_hello_arrives(backend, pki, tmp_path):
    """The peer never answers: when the ClientHello reaches it, tlsc (stuck waiting for
    the ServerHello) must already be TLS_UID/TLS_GID with no supplementary group."""
    srv = socket.create_server(("127.0.0.1", 0))
    srv.settimeout(10)
    marker = tmp_path / "ran"
    proc = runmod.start(["--backend", backend, "-K", "8000", "-k", "localhost",
                         *marker_prog(marker)],
                        peer=srv.getsockname(), env={"CAFILE": pki.cafile,
                                                     "TLS_UID": str(NOBODY),
                                                     "TLS_GID": str(NOBODY)})
    try:
        conn, _ = srv.accept()
        conn.settimeout(10)
        first = conn.recv(5)
        assert first[:1] == b"\x16", f"not a TLS handshake record: {first!r}"
        uid, gid, groups = proc_ids(proc.pid)
    finally:
        proc.kill()
        srv.close()
    assert uid == [str(NOBODY)] * 4, f"tlsc sent its ClientHello with uids {uid}"
    assert gid == [str(NOBODY)] * 4, f"tlsc sent its ClientHello with gids {gid}"
    assert groups == "", f"supplementary groups kept: {groups}"
    assert not marker.exists()


@root_only
def test_tlsd_already_unprivileged_when_it_awaits_client_hello(backend, pki, listener,
                                                              tmp_path):
    """tlsd drops before the handshake: with the client silent (nothing read yet),
    tlsd is already TLS_UID/TLS_GID."""
    sock = socket.create_connection(listener.address, 5)
    marker = tmp_path / "ran"
    env = {"KEYFILE": pki.leaf_ec.key_pem, "CERTFILE": pki.leaf_ec.chain_pem,
           "TLS_UID": str(NOBODY), "TLS_GID": str(NOBODY)}
    server = listener.serve(["--backend", backend, "-K", "8000", *marker_prog(marker)], env)
    try:
        end = time.monotonic() + 10
        uid = gid = None
        groups = ""
        while time.monotonic() < end and server.proc.poll() is None:
            uid, gid, groups = proc_ids(server.proc.pid)
            if uid == [str(NOBODY)] * 4:
                break
            time.sleep(0.05)
        alive = server.proc.poll() is None
    finally:
        sock.close()
        server.kill()
    assert alive, "tlsd gave up before the client spoke"
    assert uid == [str(NOBODY)] * 4, f"tlsd still has uids {uid} before the handshake"
    assert gid == [str(NOBODY)] * 4, gid
    assert groups == "", groups
    assert not marker.exists()


# -- 3. renegotiation refused -------------------------------------------------------------


@pytest.mark.parametrize("cmd", ["r", "R"])
def test_renegotiation_refused(cmd, backend, tlsc, pki, sserver, probe):
    """openssl s_server (TLS 1.2) sends HelloRequest after the handshake ('r', or 'R' which
    also asks for a client certificate).  tlsc must never start a second handshake: the
    server must see exactly one ClientHello; tlsc either ends with 98 or goes on with
    the same session; nothing sent after the request may reach prog under a new
    identity."""
    srv = sserver(pki.leaf_ec, tls="1.2", mode="raw", extra=["-msg"])
    p = probe()
    proc = tlsc.start(["-k", "localhost", *p.argv("readline", "readline", "env")],
                      peer=srv.address)
    try:
        assert srv.out.wait_for(r"CIPHER is", 10), srv.output
        srv.proc.stdin.write(b"hello\n")
        srv.proc.stdin.flush()
        time.sleep(0.5)
        srv.proc.stdin.write(f"{cmd}\n".encode())
        srv.proc.stdin.flush()
        assert srv.out.wait_for(r"HelloRequest", 10), srv.output
        # the client's answer: a no_renegotiation alert, a close, or (wrongly) a ClientHello
        srv.out.wait_for(r"no_renegotiation|ClientHello.*\n(?s:.*)ClientHello|ERROR", 5)
        try:
            srv.proc.stdin.write(b"after\n")
            srv.proc.stdin.flush()
            srv.proc.stdin.close()
        except OSError:
            pass
        r = proc.wait(15)
    finally:
        proc.kill()
    print(f"\nRENEG {cmd}: rc={r.rc} {r.fatal}")
    hellos = [ln for ln in srv.output.splitlines() if re.search(r"<<<.*ClientHello", ln)]
    assert len(hellos) == 1, (f"tlsc renegotiated ({len(hellos)} ClientHellos):\n"
                              + srv.output[-3000:] + "\n" + r.describe())
    r.assert_no_traceback()
    assert r.rc in (0, 98), r.describe()
    if r.rc == 98:
        r.assert_fatal(98, strict=False)
    rep = p.report()
    assert rep["lines"][:1] == ["hello\n"], rep
    if r.rc == 98:
        assert rep["lines"][1:] in ([], [""]), f"data after a refused renegotiation: {rep}"
    assert rep["env"]["SSL_PEER_CERT_HASH"] == pki.leaf_ec.sha256


# -- 4. certificates for another name, wildcard abuses ------------------------------------

WILDCARDS = [
    # (SAN dNSName, -k name, accepted?)
    ("*.example.com", "www.example.com", True),  # the control: a valid use
    ("*.example.com", "a.b.example.com", False),
    ("*.example.com", "example.com", False),
    ("*.example.com", "www.example.com.evil", False),
    ("*.com", "example.com", False),
    ("*.com", "com", False),
    ("f*.example.com", "foo.example.com", False),
    ("*o.example.com", "foo.example.com", False),
    ("w*w.example.com", "www.example.com", False),
    ("*.localhost", "localhost", False),
    ("*", "localhost", False),
    ("*.*.example.com", "a.b.example.com", False),
    ("www.*.example.com", "www.a.example.com", False),
    ("*.0.0.1", "127.0.0.1", False),
    ("*.example.com", "*.example.com", False),
]


@pytest.fixture(scope="session")
def name_certs(pki, tmp_path_factory) -> dict[str, Credential]:
    d = tmp_path_factory.mktemp("names")
    return {san: credential(d, f"name{i}", issuer=pki.inter, dns=(san,), ips=())
            for i, san in enumerate(sorted({w[0] for w in WILDCARDS}))}


@pytest.mark.parametrize("san,host,ok", WILDCARDS,
                         ids=[f"{s} vs {h}" for s, h, _ in WILDCARDS])
def test_wildcard_rules(san, host, ok, tlsc, name_certs, sserver, probe, tmp_path):
    srv = sserver(name_certs[san])
    if ok:
        p = probe()
        r = tlsc.run(["-k", host, *p.argv("write:ok\\n", "readline")], peer=srv.address)
        r.assert_ok()
        assert p.report()["lines"] == ["ko\n"]
        return
    marker = tmp_path / "ran"
    r = tlsc.run(["-k", host, *marker_prog(marker)], peer=srv.address)
    r.assert_no_traceback()
    print(f"\nWILDCARD {san} vs {host}: rc={r.rc} {r.fatal}")
    assert r.rc in (98, 100), f"certificate for {san!r} accepted for {host!r}:\n" + r.describe()
    r.assert_fatal(r.rc)
    assert not marker.exists(), f"prog ran with a certificate for {san!r} as {host!r}"


# -- 5. --no-verify-cert always warns -----------------------------------------------------


@pytest.mark.parametrize("quiet", [["-v", "0"], ["--verbosity=0"], ["-v", "3", "-v", "0"]])
def test_tlsclient_no_verify_cert_warns_at_v0(quiet, tlsc, pki, sserver, probe):
    srv = sserver(pki.self_signed, extra=["-cipher", "DEFAULT:@SECLEVEL=0"])
    p = probe()
    r = tlsc.run(["--no-verify-cert", *quiet, "127.0.0.1", str(srv.port),
                  *p.argv("write:nv\\n", "readline")],
                 cmd=TLSCLIENT, env={"CAFILE": None})
    r.assert_no_traceback()
    assert r.rc == 0, r.describe()
    assert p.report()["lines"] == ["vn\n"]
    warn = [ln for ln in r.lines if ln.startswith("tlsclient: warning:")]
    assert warn and any(re.search(r"verif", ln, re.I) for ln in warn), (
        "--no-verify-cert must warn at -v 0:\n" + r.describe())


# -- 6. a private key never appears in a message ------------------------------------------


def _secrets(key_path: Path) -> list[str]:
    """Fragments that must never be printed: PEM body windows, DER hex windows."""
    pem = key_path.read_text()
    body = "".join(ln for ln in pem.splitlines() if ln and not ln.startswith("-----"))
    der = base64.b64decode(body)
    frags = [body[i:i + 16] for i in range(0, len(body) - 16, 8)]
    hexed = der.hex()
    frags += [hexed[i:i + 24] for i in range(0, len(hexed) - 24, 12)]
    return frags


def _assert_no_key(stderr: str, keys: list[Path]) -> None:
    assert "PRIVATE KEY" not in stderr, stderr
    flat = re.sub(r"\s+", "", stderr)
    low = flat.lower()
    for k in keys:
        for frag in _secrets(k):
            assert frag not in flat and frag.lower() not in low, (
                f"a fragment of {k.name} appears in the output: {frag!r}\n{stderr}")


def _keydir(pki: PKI, tmp_path: Path) -> Path:
    d = tmp_path / "keys-only"
    d.mkdir()
    (d / "key.pem").write_bytes(pki.client.key_pem.read_bytes())
    return d


def _truncated_key(pki: PKI, tmp_path: Path) -> Path:
    lines = pki.client_rsa.key_pem.read_text().splitlines()
    cut = lines[:3] + lines[5:]  # two body lines missing: still base64, not a key
    path = tmp_path / "truncated.key"
    path.write_text("\n".join(cut) + "\n")
    return path


CLIENT_KEY_CASES = {
    "mismatched KEYFILE": lambda pki, t: ({"KEYFILE": pki.client_rsa.key_pem,
                                           "CERTFILE": pki.client.cert_pem},
                                          [pki.client_rsa.key_pem]),
    "certificate as KEYFILE": lambda pki, t: ({"KEYFILE": pki.client.cert_pem,
                                               "CERTFILE": pki.client.cert_pem}, []),
    "key as CERTFILE": lambda pki, t: ({"KEYFILE": pki.client.key_pem,
                                        "CERTFILE": pki.client.key_pem},
                                       [pki.client.key_pem]),
    "truncated KEYFILE": lambda pki, t: ({"KEYFILE": _truncated_key(pki, t),
                                          "CERTFILE": pki.client_rsa.cert_pem},
                                         [pki.client_rsa.key_pem]),
    "key as CAFILE": lambda pki, t: ({"CAFILE": pki.client.key_pem,
                                      "KEYFILE": pki.client.key_pem,
                                      "CERTFILE": pki.client.cert_pem},
                                     [pki.client.key_pem]),
    # Valid CERTFILE/KEYFILE for -y, so that the usage check passes and the anchors are read.
    "CADIR holding only a key": lambda pki, t: ({"CADIR": _keydir(pki, t), "CAFILE": None,
                                                 "KEYFILE": pki.client.key_pem,
                                                 "CERTFILE": pki.client.cert_pem},
                                                [pki.client.key_pem]),
}


@pytest.mark.parametrize("verbosity", ["0", "3"])
@pytest.mark.parametrize("case", CLIENT_KEY_CASES, ids=list(CLIENT_KEY_CASES))
def test_tlsc_never_prints_a_private_key(case, verbosity, tlsc, pki, tmp_path):
    env, keys = CLIENT_KEY_CASES[case](pki, tmp_path)
    keys = list(keys) + [Path(v) for k, v in env.items()
                         if v is not None and k in ("KEYFILE", "CAFILE", "CERTFILE")
                         and "PRIVATE KEY" in Path(v).read_text(errors="replace")]
    srv = socket.create_server(("127.0.0.1", 0))  # never answers: config fails first
    marker = tmp_path / "ran"
    try:
        r = tlsc.run(["-y", "-v", verbosity, "-K", "3000", "-k", "localhost",
                      *marker_prog(marker)], peer=srv.getsockname(), env=env)
    finally:
        srv.close()
    r.assert_fatal(96, strict=False)
    assert not marker.exists()
    _assert_no_key(r.stderr + r.stdout, keys)


SERVER_KEY_CASES = {
    "mismatched KEYFILE": (["--"], lambda pki: {"KEYFILE": pki.leaf_rsa.key_pem,
                                                "CERTFILE": pki.leaf_ec.chain_pem}),
    "certificate as KEYFILE": (["--"], lambda pki: {"KEYFILE": pki.leaf_ec.cert_pem,
                                                    "CERTFILE": pki.leaf_ec.chain_pem}),
    "key as CERTFILE": (["--"], lambda pki: {"KEYFILE": pki.leaf_ec.key_pem,
                                             "CERTFILE": pki.leaf_ec.key_pem}),
    "key as CAFILE with -y": (["-y", "--"], lambda pki: {"KEYFILE": pki.leaf_ec.key_pem,
                                                         "CERTFILE": pki.leaf_ec.chain_pem,
                                                         "CAFILE": pki.client.key_pem}),
}


@pytest.mark.parametrize("verbosity", ["0", "3"])
@pytest.mark.parametrize("case", SERVER_KEY_CASES, ids=list(SERVER_KEY_CASES))
def test_tlsd_never_prints_a_private_key(case, verbosity, backend, pki, listener, tmp_path):
    flags, make_env = SERVER_KEY_CASES[case]
    env = make_env(pki)
    keys = [Path(v) for v in env.values()
            if "PRIVATE KEY" in Path(v).read_text(errors="replace")]
    keys += [pki.leaf_rsa.key_pem, pki.leaf_ec.key_pem]
    marker = tmp_path / "ran"
    sock = socket.create_connection(listener.address, 5)
    try:
        server = listener.serve(["--backend", backend, "-v", verbosity, "-K", "3000",
                                 *flags, *marker_prog(marker)], env)
        res = server.wait(20)
    finally:
        sock.close()
    # -v 3 adds 'tlsd: debug:' lines (a debug trace), hence no strict assert_fatal
    assert "Traceback" not in res.stderr, res.describe()
    assert res.rc == 96 and len(res.fatal) == 1, res.describe()
    for ln in res.stderr.splitlines():
        assert re.match(r"^tlsd: (fatal|warning|info|debug): ", ln), res.describe()
    assert not marker.exists()
    _assert_no_key(res.stderr, keys)


# -- 7. no injection into prog's environment ----------------------------------------------


def _subject(**attrs) -> x509.Name:
    items = [x509.NameAttribute(NameOID.COUNTRY_NAME, "FR")]
    for oid, value in attrs.values():
        items.append(x509.NameAttribute(oid, value))
    items.append(x509.NameAttribute(NameOID.COMMON_NAME, "localhost"))
    return x509.Name(items)


INJECTION_SUBJECTS = {
    "newlines": {"o": (NameOID.ORGANIZATION_NAME, "evil\nINJECTED=1\nPATH=/evil\n")},
    "equals and assignments": {"o": (NameOID.ORGANIZATION_NAME, "SSL_CIPHER=NULL"),
                               "ou": (NameOID.ORGANIZATIONAL_UNIT_NAME,
                                      "=INJECTED=1;LD_PRELOAD=/tmp/x.so")},
    "NUL inside a value": {"o": (NameOID.ORGANIZATION_NAME, "evil\x00INJECTED=1")},
    "control characters and RFC 4514 specials": {
        "o": (NameOID.ORGANIZATION_NAME, '\r\x1b[31m#,+;<>"\\ \t\x7f é✓ '),
        "ou": (NameOID.ORGANIZATIONAL_UNIT_NAME, " leading and trailing ")},
    "very long": {"o": (NameOID.ORGANIZATION_NAME, "INJECTED=1\n" + "A" * 6000),
                  "ou": (NameOID.ORGANIZATIONAL_UNIT_NAME, "B" * 6000)},
}


@pytest.fixture(scope="session")
def injection_certs(pki, tmp_path_factory) -> dict[str, Credential]:
    d = tmp_path_factory.mktemp("inject")
    return {k: credential(d, f"inj{i}", issuer=pki.inter, subject=_subject(**attrs))
            for i, (k, attrs) in enumerate(INJECTION_SUBJECTS.items())}


TLSC_ADDED = {"SSL_PROTOCOL", "SSL_CIPHER", "SSL_PEER_CERT_HASH", "SSL_PEER_CERT_SUBJECT"}


def _check_environ(entries: list[str], expected_names: set[str]) -> dict[str, str]:
    names = env_names(entries)
    assert len(names) == len(set(names)), f"a variable appears twice: {sorted(names)}"
    assert set(names) == expected_names, (
        f"unexpected variables {sorted(set(names) - expected_names)}, "
        f"missing {sorted(expected_names - set(names))}")
    return env_map(entries)


@pytest.mark.parametrize("case", INJECTION_SUBJECTS, ids=list(INJECTION_SUBJECTS))
def test_subject_cannot_inject(case, tlsc, injection_certs, pypeer, tmp_path):
    cert = injection_certs[case]
    expected_subject = cert.cert.subject.rfc4514_string()
    peer = pypeer(cert)
    out = tmp_path / "env.json"
    r = tlsc.run(["-k", "localhost", *dump_prog(out)], peer=peer.address)
    r.assert_no_traceback()
    assert r.rc == 0 and out.exists(), (
        f"subject {expected_subject[:200]!r} (no NUL once RFC 4514-escaped) was refused:\n"
        + r.describe())
    env = _check_environ(read_dump(out)["environ"],
                         set(base_env()) | TLSC_ADDED | {"SSL_TLS_SNI_SERVERNAME"})
    assert env["SSL_PEER_CERT_SUBJECT"] == expected_subject
    assert env["SSL_PEER_CERT_HASH"] == cert.sha256
    assert env["SSL_TLS_SNI_SERVERNAME"] == "localhost"
    assert env["PATH"] == base_env()["PATH"]


ODD_NAMES = {
    "newline": "evil\nINJECTED=1",
    "equals": "a=b.example.test",
    "control": "x\x01\x1b[0m.example.test",
    "very long": "a" * 250,
    "spaces": "local host",
}


@pytest.mark.parametrize("case", ODD_NAMES, ids=list(ODD_NAMES))
def test_odd_servername_cannot_inject(case, tlsc, pki, sserver, tmp_path):
    """-k with odd characters, certificate checks off so that only tlsc's own handling
    of the name decides: refused (100/98, prog not run) or passed whole, as one variable."""
    name = ODD_NAMES[case]
    srv = sserver(pki.leaf_ec)
    out = tmp_path / "env.json"
    r = tlsc.run(["--no-verify-cert", "-k", name, *dump_prog(out)], peer=srv.address,
                 env={"CAFILE": None})
    r.assert_no_traceback()
    print(f"\nODD -k {case}: rc={r.rc} {r.fatal}")
    if r.rc in (98, 100):
        r.assert_fatal(r.rc, strict=False)
        assert not out.exists()
        return
    assert r.rc == 0, r.describe()
    entries = read_dump(out)["environ"]
    names = set(env_names(entries))
    allowed = set(base_env()) | TLSC_ADDED | {"SSL_TLS_SNI_SERVERNAME"}
    assert names <= allowed, f"unexpected variables {sorted(names - allowed)}"
    env = env_map(entries)
    if "SSL_TLS_SNI_SERVERNAME" in env:
        assert env["SSL_TLS_SNI_SERVERNAME"] == name


def _sni_client(address, sni: bytes, result: dict) -> None:
    from OpenSSL import SSL

    try:
        ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
        ctx.set_verify(SSL.VERIFY_NONE, lambda *a: True)
        s = socket.create_connection(address, 5)
        s.settimeout(None)  # blocking: pyOpenSSL would raise WantRead otherwise; the test
        c = SSL.Connection(ctx, s)  # kills tlsd (closing the connection) if it hangs
        c.set_tlsext_host_name(sni)
        c.set_connect_state()
        c.do_handshake()
        data = b""
        while True:
            try:
                chunk = c.recv(4096)
            except (SSL.ZeroReturnError, SSL.SysCallError):
                break
            if not chunk:
                break
            data += chunk
        result["data"] = data
        s.close()
    except Exception as e:  # noqa: BLE001 - report to the test thread
        result["error"] = repr(e)


TLSD_SNIS = {
    "newline": b"evil\nINJECTED=1",
    "equals": b"SSL_CIPHER=NULL",
    "control and high bytes": b"x\x01\x1b[0m\xff\xfe.test",
    "very long": b"b" * 250,
}


@pytest.mark.parametrize("case", TLSD_SNIS, ids=list(TLSD_SNIS))
def test_client_sni_cannot_inject_into_tlsd_prog(case, backend, pki, listener, tmp_path):
    """The SNI a client sends is attacker-chosen: tlsd either refuses it (98, prog not
    run) or passes it as SSL_TLS_SNI_SERVERNAME alone."""
    pytest.importorskip("OpenSSL")
    sni = TLSD_SNIS[case]
    out = tmp_path / "env.json"
    result: dict = {}
    t = threading.Thread(target=_sni_client, args=(listener.address, sni, result),
                         daemon=True)
    t.start()
    server = listener.serve(["--backend", backend, *dump_prog(out)],
                            {"KEYFILE": pki.leaf_ec.key_pem,
                             "CERTFILE": pki.leaf_ec.chain_pem})
    res = server.wait(20)
    t.join(15)
    print(f"\nSNI {case}: rc={res.rc} {res.fatal} client={result}")
    assert "Traceback" not in res.stderr, res.describe()
    if res.rc == 98:
        res.assert_fatal(98)
        assert not out.exists()
        return
    assert res.rc == 0, res.describe() + f"\nclient: {result}"
    entries = read_dump(out)["environ"]
    names = set(env_names(entries))
    allowed = set(base_env()) | {"SSL_PROTOCOL", "SSL_CIPHER", "SSL_TLS_SNI_SERVERNAME"}
    assert names <= allowed, f"unexpected variables {sorted(names - allowed)}"
    assert len(env_names(entries)) == len(names), "a variable appears twice"
    env = env_map(entries)
    if "SSL_TLS_SNI_SERVERNAME" in env:
        # the raw bytes, or the same with undecodable bytes backslash-escaped
        assert env["SSL_TLS_SNI_SERVERNAME"] in (
            sni.decode("utf-8", "surrogateescape"), sni.decode("utf-8", "backslashreplace")), (
            f"SNI altered: {env['SSL_TLS_SNI_SERVERNAME']!r}")



# -- 8. odd names: the same verdict from every backend ------------------------------------

ODD_VERDICT_NAMES = {"newline": "evil\nINJECTED=1", "equals": "a=b.example.test",
                     "literal wildcard": "*.example.com"}


@pytest.mark.parametrize("case", ODD_VERDICT_NAMES, ids=list(ODD_VERDICT_NAMES))
def test_odd_servername_same_verdict_across_backends(case, pki, sserver, tmp_path):
    """-k is 'a DNS name or an IP address'; whatever tlsc does with a name that
    is neither, every backend must do the same (same exit code)."""
    from tests.conftest import installed_backends

    backends = installed_backends()
    if len(backends) < 2:
        pytest.skip("needs two backends")
    srv = sserver(pki.leaf_ec)
    got = {}
    for b in backends:
        r = runmod.run(["--backend", b, "--no-verify-cert", "-k", ODD_VERDICT_NAMES[case],
                        "true"], peer=srv.address, env={"CAFILE": None})
        r.assert_no_traceback()
        got[b] = (r.rc, r.fatal)
    assert len({rc for rc, _ in got.values()}) == 1, f"backends disagree: {got}"


def test_client_sni_same_verdict_across_backends(pki, listener, tmp_path):
    """tlsd: a client's SNI that is not a DNS name gets the same verdict from every
    backend (both refuse it, or both pass it on)."""
    pytest.importorskip("OpenSSL")
    from tests.conftest import installed_backends

    backends = installed_backends()
    if len(backends) < 2:
        pytest.skip("needs two backends")
    got = {}
    for b in backends:
        result: dict = {}
        t = threading.Thread(target=_sni_client,
                             args=(listener.address, b"evil\nINJECTED=1", result), daemon=True)
        t.start()
        server = listener.serve(["--backend", b, "true"],
                                {"KEYFILE": pki.leaf_ec.key_pem,
                                 "CERTFILE": pki.leaf_ec.chain_pem})
        res = server.wait(20)
        t.join(15)
        got[b] = (res.rc, res.fatal)
    assert len({rc for rc, _ in got.values()}) == 1, f"backends disagree: {got}"
