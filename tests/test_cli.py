"""Command line, usage errors and the exit codes that come before the handshake."""

from __future__ import annotations

import os
import socket
import sys
import textwrap
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.conftest import installed_backends
from tests.support import run as runmod
from tests.support.progs import marker_prog

OPTIONS = ["-S", "-s", "-J", "-j", "-Y", "-y", "-Z", "-z", "-v", "-K", "-k", "-6", "-7",
           "--no-verify-cert", "--backend", "--list-backends", "--version",
           "--close-notify", "--no-close-notify", "--enforce-close-notify",
           "--no-enforce-close-notify", "--client-cert", "--no-client-cert", "--keep-env",
           "--no-keep-env", "--verbosity", "--handshake-timeout", "--servername", "--read-fd",
           "--write-fd"]
ENV_VARS = ["CADIR", "CAFILE", "CERTFILE", "KEYFILE", "TLS_UID", "TLS_GID", "TLSC_BACKEND"]
EXIT_CODES = ["96", "97", "98", "100", "111"]


@pytest.fixture
def netpair():
    """A connected socketpair: one end becomes tlsc's fds 6/7, for runs that must stop
    before any network I/O."""
    a, b = socket.socketpair()
    yield a
    b.close()


# -- informational commands: need neither fds 6/7 nor CADIR/CAFILE ----------------------

def test_help_lists_options_environment_and_exit_codes():
    r = runmod.run(["--help"])
    r.assert_ok()
    for word in OPTIONS + ENV_VARS + EXIT_CODES:
        assert word in r.stdout, f"--help does not mention {word}\n{r.stdout}"


def test_version():
    r = runmod.run(["--version"])
    r.assert_ok()
    assert version("tlsc") in r.stdout
    assert r.stderr == ""


def test_list_backends_one_line_per_backend():
    r = runmod.run(["--list-backends"])
    r.assert_ok()
    assert r.stderr == "", "--list-backends prints its lines and nothing else"
    lines = [ln for ln in r.stdout.splitlines() if ln.strip()]
    names = installed_backends()
    assert sorted(ln.split()[0] for ln in lines) == names, r.stdout
    assert len(lines) == len(names), r.stdout
    for ln in lines:
        assert len(ln.split()) >= 4, f"name, version, library, version expected: {ln!r}"
        assert "1.2" in ln or "1.3" in ln, f"TLS versions missing: {ln!r}"
    libs = {"openssl": "openssl", "tlslite": "tlslite"}
    for ln in lines:
        name = ln.split()[0]
        if name in libs:
            assert libs[name] in ln.lower().split(None, 1)[1], ln


def test_console_script_is_installed():
    script = Path(sys.executable).with_name("tlsc")
    assert script.exists(), "the tlsc console script is not installed next to python"
    r = runmod.run(["--version"], cmd=[str(script)])
    r.assert_ok()
    assert version("tlsc") in r.stdout


# -- usage errors: 100, checked before anything else ------------------------------------

USAGE = {
    "unknown short option": ["-X", "true"],
    "unknown long option": ["--frobnicate", "true"],
    "-v without value": ["-v"],
    "-v not a number": ["-v", "loud", "true"],
    "-K not a number": ["-K", "soon", "true"],
    "-K negative": ["-K", "-5", "true"],
    "-6 below 3": ["-6", "2", "true"],
    "-7 below 3": ["-7", "1", "true"],
    "-6 equals -7": ["-6", "8", "-7", "8", "true"],
    "--backend without value": ["--backend"],
    "missing prog": [],
    "missing prog after --": ["--"],
    "missing prog after options": ["-k", "localhost", "-v", "0"],
}


@pytest.mark.parametrize("args", USAGE.values(), ids=USAGE.keys())
def test_usage_error_is_100_before_fd_check(args):
    """Bad usage is reported as 100 even without fds 6/7 (arguments are checked first)."""
    r = runmod.run(args, env={"CAFILE": "/nonexistent"})
    r.assert_fatal(100)


@pytest.mark.parametrize("args", [["-X", "true"], []], ids=["bad option", "no prog"])
def test_usage_error_with_fds_open(args, netpair, pki):
    r = runmod.run(args, peer=netpair, env={"CAFILE": pki.cafile})
    r.assert_fatal(100)


def test_missing_cadir_and_cafile_is_100_and_names_them(netpair, tmp_path):
    marker = tmp_path / "ran"
    r = runmod.run(["-k", "localhost", *marker_prog(marker)], peer=netpair)
    line = r.assert_fatal(100)
    assert "CADIR" in line and "CAFILE" in line, line
    assert not marker.exists()


def test_unknown_backend_is_100_and_says_what_is_installed(netpair, pki):
    r = runmod.run(["--backend", "nosuchtls", "true"], peer=netpair,
                   env={"CAFILE": pki.cafile})
    r.assert_fatal(100, "nosuchtls")
    text = r.stderr
    for name in installed_backends():
        assert name in text, f"installed backend {name} not listed:\n{text}"
    assert "install" in text.lower()


def test_unknown_backend_from_environment_is_100(netpair, pki):
    r = runmod.run(["true"], peer=netpair,
                   env={"CAFILE": pki.cafile, "TLSC_BACKEND": "nosuchtls"})
    r.assert_fatal(100, "nosuchtls")


@pytest.mark.skipif(os.geteuid() != 0, reason="TLS_UID/TLS_GID are read only as root")
@pytest.mark.parametrize("var,value", [("TLS_UID", "nobody"), ("TLS_UID", "12x"),
                                       ("TLS_UID", "-1"), ("TLS_GID", "wheel"),
                                       ("TLS_GID", "1.5")])
def test_bad_tls_uid_gid_is_100(var, value, tlsc, netpair, tmp_path):
    marker = tmp_path / "ran"
    r = tlsc.run(["-k", "localhost", *marker_prog(marker)], peer=netpair, env={var: value})
    r.assert_fatal(100, var)
    assert not marker.exists()


# -- 111: the network descriptors must be open -------------------------------------------

@pytest.mark.parametrize("fds", [(), (7,), (6,)], ids=["none", "fd 6 closed", "fd 7 closed"])
def test_network_fd_not_open_is_111(fds, tlsc, tmp_path):
    marker = tmp_path / "ran"
    a, b = socket.socketpair()
    with b:
        peer = a if fds else None
        r = tlsc.run(["-k", "localhost", *marker_prog(marker)], peer=peer, fds=fds)
    r.assert_fatal(111)
    assert not marker.exists()


def test_custom_fd_not_open_is_111(tlsc, netpair, tmp_path):
    r = tlsc.run(["-6", "8", "-7", "9", "-k", "localhost", "true"], peer=netpair)
    r.assert_fatal(111)


# -- 96: trust anchors -------------------------------------------------------------------

ANCHORS = {
    "CAFILE missing": ("CAFILE", "/nonexistent/ca.pem"),
    "CAFILE junk": ("CAFILE", "junk"),
    "CAFILE empty": ("CAFILE", "empty"),
    "CAFILE is a directory": ("CAFILE", "cadir_pem_spaces"),
    "CADIR missing": ("CADIR", "/nonexistent/cadir"),
    "CADIR junk only": ("CADIR", "cadir_junk_only"),
    "CADIR empty": ("CADIR", "cadir_empty"),
}


@pytest.mark.parametrize("var,what", ANCHORS.values(), ids=ANCHORS.keys())
def test_no_usable_trust_anchor_is_96(var, what, tlsc, pki, netpair, tmp_path):
    value = what if what.startswith("/") else getattr(pki, what)
    env = {"CAFILE": None, var: value}
    marker = tmp_path / "ran"
    r = tlsc.run(["-k", "localhost", *marker_prog(marker)], peer=netpair, env=env)
    r.assert_fatal(96)
    assert not marker.exists()


def test_cadir_wins_over_cafile(tlsc, pki, netpair):
    """Both set: CADIR is used, so a junk-only CADIR fails even with a good CAFILE."""
    r = tlsc.run(["-k", "localhost", "true"], peer=netpair,
                 env={"CADIR": pki.cadir_junk_only, "CAFILE": pki.cafile})
    r.assert_fatal(96)


# -- client certificate configuration: 100 when unset, 96 when bad ------------------------

def test_client_cert_without_certfile_is_100(tlsc, pki, netpair):
    r = tlsc.run(["-y", "-k", "localhost", "true"], peer=netpair,
                 env={"KEYFILE": pki.client.key_pem})
    r.assert_fatal(100, "CERTFILE")


def test_client_cert_without_keyfile_is_100(tlsc, pki, netpair):
    r = tlsc.run(["-y", "-k", "localhost", "true"], peer=netpair,
                 env={"CERTFILE": pki.client.cert_pem})
    r.assert_fatal(100, "KEYFILE")


BADKEYS = {
    "key does not match": ("client.cert_pem", "client_rsa.key_pem"),
    "key is garbage": ("client.cert_pem", "bad_key"),
    "key file missing": ("client.cert_pem", "/nonexistent/key.pem"),
    "cert is junk": ("junk", "client.key_pem"),
    "cert file missing": ("/nonexistent/cert.pem", "client.key_pem"),
}


def _pki_path(pki, spec: str):
    if spec.startswith("/"):
        return spec
    obj = pki
    for part in spec.split("."):
        obj = getattr(obj, part)
    return obj


@pytest.mark.parametrize("cert,key", BADKEYS.values(), ids=BADKEYS.keys())
def test_bad_client_certificate_or_key_is_96(cert, key, tlsc, pki, netpair, tmp_path):
    marker = tmp_path / "ran"
    r = tlsc.run(["-y", "-k", "localhost", *marker_prog(marker)], peer=netpair,
                 env={"CERTFILE": _pki_path(pki, cert), "KEYFILE": _pki_path(pki, key)})
    r.assert_fatal(96)
    assert not marker.exists()


def test_client_cert_files_ignored_without_y(tlsc, pki, pypeer):
    """-Y (the default) sends no certificate, so bad CERTFILE/KEYFILE do not matter:
    the run gets past configuration, to the handshake, which meets EOF (98, not 96)."""
    peer = pypeer(mode="hangup")
    r = tlsc.run(["-k", "localhost", "true"], peer=peer.address,
                 env={"CERTFILE": pki.junk, "KEYFILE": pki.bad_key})
    r.assert_fatal(98)


# -- the shape of the fatal line ------------------------------------------------------------

def test_fatal_line_format(tlsc, pki, pypeer):
    """``tlsc: fatal: <what failed>: <why>`` -- checked on one error of each code."""
    others = []

    def net() -> socket.socket:
        a, b = socket.socketpair()
        others.append(b)
        return a

    runs = {
        100: tlsc.run(["-X", "true"], peer=net()),
        111: tlsc.run(["true"], peer=net(), fds=(7,)),
        96: tlsc.run(["true"], peer=net(), env={"CAFILE": pki.junk}),
        # the server hangs up in the middle of the handshake
        98: tlsc.run(["-k", "localhost", "true"], peer=pypeer(mode="hangup").address),
    }
    for b in others:
        b.close()
    bad = []
    for code, r in runs.items():
        assert r.rc == code, r.describe()
        if not runmod.FATAL_LINE.match(r.fatal[0] if r.fatal else ""):
            bad.append(f"{code}: {r.fatal}")
    assert not bad, "fatal lines without '<what failed>: <why>':\n" + "\n".join(bad)


# -- 97: the backend cannot set up its engine ----------------------------------------------

FAKE_BACKEND = textwrap.dedent('''
    """A backend whose engine never comes up: for tlsc's exit code 97."""
    from tlsc.session import BackendInfo, Capabilities, EngineError


    class Broken:
        name = "broken"

        def info(self):
            return BackendInfo("broken", "0.0", "nothing", "0",
                               Capabilities(tls_versions=("TLSv1.3",)))

        def client_context(self, config, warn):
            raise EngineError("simulated engine failure")


    backend = Broken()
''')


@pytest.fixture
def broken_backend(tmp_path):
    """A third-party backend registered through packaging metadata on PYTHONPATH."""
    site = tmp_path / "site"
    (site / "tlsc_broken_backend-0.0.dist-info").mkdir(parents=True)
    (site / "tlsc_broken_backend.py").write_text(FAKE_BACKEND)
    info = site / "tlsc_broken_backend-0.0.dist-info"
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tlsc-broken-backend\n"
                                   "Version: 0.0\n")
    (info / "entry_points.txt").write_text(
        "[tlsc.backends]\nbroken = tlsc_broken_backend:backend\n")
    return {"PYTHONPATH": str(site)}


def test_engine_setup_failure_is_97(broken_backend, pki, netpair, tmp_path):
    marker = tmp_path / "ran"
    r = runmod.run(["--backend", "broken", "-k", "localhost", *marker_prog(marker)],
                   peer=netpair, env={"CAFILE": pki.cafile, **broken_backend})
    r.assert_fatal(97, "simulated engine failure|engine|backend")
    assert not marker.exists()


def test_tlsc_backend_variable_selects_the_backend(broken_backend, pki, netpair):
    r = runmod.run(["-k", "localhost", "true"], peer=netpair,
                   env={"CAFILE": pki.cafile, "TLSC_BACKEND": "broken", **broken_backend})
    r.assert_fatal(97)


def test_list_backends_shows_third_party_backend(broken_backend):
    r = runmod.run(["--list-backends"], env=broken_backend)
    r.assert_ok()
    names = [ln.split()[0] for ln in r.stdout.splitlines() if ln.strip()]
    assert sorted(names) == sorted(installed_backends() + ["broken"]), r.stdout


# -- prog: not found, not executable (111, after the handshake); its argv is its own ----------

def test_prog_not_found_is_111_and_named(tlsc, pki, pypeer):
    peer = pypeer(pki.leaf_ec, drain=2)
    r = tlsc.run(["-k", "localhost", "no-such-prog-4a7c", "arg"], peer=peer.address)
    r.assert_fatal(111, "no-such-prog-4a7c")


def test_prog_not_executable_is_111(tlsc, pki, pypeer, tmp_path):
    script = tmp_path / "not-executable"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o644)
    peer = pypeer(pki.leaf_ec, drain=2)
    r = tlsc.run(["-k", "localhost", str(script)], peer=peer.address)
    r.assert_fatal(111, "not-executable")


def test_prog_exit_code_111_is_not_an_exec_failure(tlsc, pki, pypeer):
    """prog's own 111 comes back as 111 with no fatal line: tlsc tells them apart."""
    peer = pypeer(pki.leaf_ec)
    r = tlsc.run(["-k", "localhost", "sh", "-c", "exit 111"], peer=peer.address)
    r.assert_ok(111)


ARGV_PROG = 'printf "%s\\n" "$@" > "$0"; env > "$0.env"'


@pytest.mark.parametrize("sep", [[], ["--"]], ids=["first non-option", "--"])
def test_options_after_prog_belong_to_prog(sep, tlsc, pki, pypeer, tmp_path):
    """Parsing stops at prog: '-Z', '-X' (unknown to tlsc) and '--' are prog's."""
    out = tmp_path / "argv"
    peer = pypeer(pki.leaf_ec)
    r = tlsc.run(["-k", "localhost", *sep, "sh", "-c", ARGV_PROG, out,
                  "-Z", "-X", "--", "-v", "9", "--backend=none"], peer=peer.address)
    r.assert_ok()
    assert out.read_text().splitlines() == ["-Z", "-X", "--", "-v", "9", "--backend=none"]
    env = (tmp_path / "argv.env").read_text()
    assert "CAFILE=" not in env, "-Z after prog was taken by tlsc"


def test_long_options_with_equals_and_separate_values(tlsc, pki, pypeer, probe):
    peer = pypeer(pki.leaf_ec)
    p = probe()
    r = tlsc.run(["--verbosity=0", "--handshake-timeout", "5000", "--servername", "localhost",
                  "--backend=" + tlsc.backend, *p.argv("env")], peer=peer.address)
    r.assert_ok()
    assert p.report()["env"]["SSL_TLS_SNI_SERVERNAME"] == "localhost"


# -- verbosity ------------------------------------------------------------------------------

def test_quiet_prints_nothing_on_success(tlsc, pki, pypeer, probe):
    peer = pypeer(pki.leaf_ec)
    p = probe()
    r = tlsc.run(["-v", "0", *p.argv("env")], peer=peer.address)  # no -k: would warn at -v 1
    r.assert_ok()
    assert r.stderr == "", r.describe()


def test_default_verbosity_warns_about_missing_k(tlsc, pki, pypeer, probe):
    peer = pypeer(pki.leaf_ec)
    p = probe()
    r = tlsc.run(p.argv("env"), peer=peer.address)
    r.assert_ok()
    assert len(r.warnings) >= 1 and not r.infos, r.describe()


def test_quiet_still_prints_the_fatal_line(tlsc, pki, sserver, tmp_path):
    srv = sserver(pki.expired)
    r = tlsc.run(["-v", "0", "-k", "localhost", *marker_prog(tmp_path / "ran")],
                 peer=srv.address)
    r.assert_fatal(98, "expired")
    assert r.lines == r.fatal


@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_verbosity_2_one_info_line_with_protocol_cipher_subject(tls, tlsc, pki, pypeer, probe):
    peer = pypeer(pki.leaf_ec, tls=tls)
    p = probe()
    r = tlsc.run(["-v", "2", "-k", "localhost", *p.argv("env")], peer=peer.address)
    r.assert_ok()
    res = peer.result()
    conn = [ln for ln in r.infos if f"TLSv{tls}" in ln]
    assert len(conn) == 1, r.describe()
    assert res["cipher"] in conn[0], r.describe()
    assert "localhost" in conn[0], r.describe()  # the peer subject's CN


def test_verbosity_3_is_accepted_and_still_no_traceback(tlsc, pki, pypeer, probe):
    peer = pypeer(pki.leaf_ec)
    p = probe()
    r = tlsc.run(["-v", "3", "-k", "localhost", *p.argv("env")], peer=peer.address)
    r.assert_ok()
    assert p.report()["env"]["SSL_PEER_CERT_HASH"] == pki.leaf_ec.sha256


def test_backend_flag_wins_over_environment(broken_backend, backend, pki, pypeer, probe):
    peer = pypeer(pki.leaf_ec)
    p = probe()
    r = runmod.run(["--backend", backend, "-k", "localhost", *p.argv("env")],
                   peer=peer.address,
                   env={"CAFILE": pki.cafile, "TLSC_BACKEND": "broken", **broken_backend})
    r.assert_ok()
    assert p.report()["env"]["SSL_PEER_CERT_HASH"] == pki.leaf_ec.sha256


def test_backend_from_environment_is_used(backend, pki, pypeer, probe):
    peer = pypeer(pki.leaf_ec)
    p = probe()
    r = runmod.run(["-k", "localhost", *p.argv("env")], peer=peer.address,
                   env={"CAFILE": pki.cafile, "TLSC_BACKEND": backend})
    r.assert_ok()
