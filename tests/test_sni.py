"""tlsd -k SNILEVEL: certificates chosen by the client's SNI, every backend.

Clients: tlsc (every client backend) with --no-verify-cert and -k NAME, so
that SSL_PEER_CERT_HASH tells which certificate tlsd presented, and ``openssl
s_client`` verifying the name.  The ``KEYFILE:name`` variables reach tlsd
through ``subprocess``'s env (never a shell: dash drops such names).
"""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import installed_backends
from tests.support import run as runmod
from tests.support.named import named_leaf, pair_env
from tests.support.progs import Probe, marker_prog
from tests.support.serve import Listener, start_tlsd
from tests.test_tlsd import SERVER_BACKENDS, finish_client, s_client_argv, start_client

CLIENT_BACKENDS = installed_backends()


@pytest.fixture(scope="module")
def leaves(pki, tmp_path_factory):
    d = tmp_path_factory.mktemp("named")
    return {n: named_leaf(d, pki, n) for n in ("a.example", "b.example")}


@pytest.fixture
def listener():
    lst = Listener()
    yield lst
    lst.close()


def _exchange(listener, pki, tmp_path, server_backend, tlsd_args, env, sni,
              client_backend=None):
    """tlsc (no verification, SNI ``sni``) against tlsd: both results and tlsd prog's env."""
    sprobe = Probe(tmp_path, "server")
    cprobe = Probe(tmp_path, "client")
    cargs = ["--backend", client_backend or CLIENT_BACKENDS[0], "--no-verify-cert"]
    if sni is not None:
        cargs += ["-k", sni]
    client = runmod.start([*cargs, *cprobe.argv("write:ping\\n", "readline", "env")],
                          peer=listener.address)
    server = listener.serve(["--backend", server_backend, *tlsd_args,
                             *sprobe.argv("readline", "write:pong\\n", "env", fds=(0, 1))], env)
    sres = server.wait()
    cres = client.wait()
    return sres, cres, sprobe, cprobe


def _presented(cprobe) -> str:
    return cprobe.report()["env"]["SSL_PEER_CERT_HASH"]


@pytest.mark.parametrize("server_backend", SERVER_BACKENDS)
@pytest.mark.parametrize("client_backend", CLIENT_BACKENDS)
@pytest.mark.parametrize(
    ("sni", "expected"),
    [("a.example", "a.example"), ("B.Example", "b.example"), ("c.example", None), (None, None)],
    ids=["a", "b-case", "unknown", "no-sni"],
)
def test_level_1(listener, pki, leaves, tmp_path, server_backend, client_backend, sni, expected):
    env = {"KEYFILE": pki.leaf_ec.key_pem, "CERTFILE": pki.leaf_ec.chain_pem,
           **pair_env(*leaves.values())}
    sres, cres, sprobe, cprobe = _exchange(listener, pki, tmp_path, server_backend, ["-k", "1"],
                                           env, sni, client_backend)
    sres.assert_ok()
    cres.assert_ok()
    want = leaves[expected].sha256 if expected else pki.leaf_ec.sha256
    assert _presented(cprobe) == want
    senv = sprobe.report()["env"]
    assert senv.get("SSL_TLS_SNI_SERVERNAME") == sni
    assert not [v for v in senv if v.startswith(("KEYFILE", "CERTFILE"))], senv


@pytest.mark.parametrize("server_backend", SERVER_BACKENDS)
def test_level_0_ignores_the_pairs(listener, pki, leaves, tmp_path, server_backend):
    env = {"KEYFILE": pki.leaf_ec.key_pem, "CERTFILE": pki.leaf_ec.chain_pem,
           **pair_env(*leaves.values()), "KEYFILE:half.example": "/nonexistent"}
    sres, cres, sprobe, cprobe = _exchange(listener, pki, tmp_path, server_backend, [], env,
                                           "a.example")
    sres.assert_ok()
    cres.assert_ok()
    assert _presented(cprobe) == pki.leaf_ec.sha256
    senv = sprobe.report()["env"]
    assert "KEYFILE:a.example" not in senv and "KEYFILE:half.example" not in senv


@pytest.mark.parametrize("server_backend", SERVER_BACKENDS)
def test_level_2_serves_named_pairs_only(listener, pki, leaves, tmp_path, server_backend):
    env = pair_env(*leaves.values())  # no KEYFILE/CERTFILE at all
    sres, cres, _, cprobe = _exchange(listener, pki, tmp_path, server_backend,
                                      ["-k", "2", "-Z"], env, "b.example")
    sres.assert_ok()
    cres.assert_ok()
    assert _presented(cprobe) == leaves["b.example"].sha256


@pytest.mark.parametrize("server_backend", SERVER_BACKENDS)
@pytest.mark.parametrize("client_backend", CLIENT_BACKENDS)
@pytest.mark.parametrize("sni", ["c.example", None], ids=["unknown", "no-sni"])
def test_level_2_refuses_other_names(listener, pki, leaves, tmp_path, server_backend,
                                     client_backend, sni):
    marker = tmp_path / "prog-ran"
    cargs = ["--backend", client_backend, "--no-verify-cert", *(["-k", sni] if sni else [])]
    client = runmod.start([*cargs, "cat"], peer=listener.address)
    env = {"KEYFILE": pki.leaf_ec.key_pem, "CERTFILE": pki.leaf_ec.chain_pem,
           **pair_env(*leaves.values())}
    server = listener.serve(["--backend", server_backend, "-k", "3", *marker_prog(marker)], env)
    sres = server.wait()
    cres = client.wait()
    sres.assert_fatal(98, "unrecognized server name")
    assert not marker.exists()
    cres.assert_fatal(98, "unrecognized.name", strict=False)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
@pytest.mark.parametrize("server_backend", SERVER_BACKENDS)
@pytest.mark.parametrize("name", ["a.example", "b.example"])
def test_s_client_verifies_the_named_certificate(listener, pki, leaves, server_backend, name):
    argv = s_client_argv(listener.port, pki, "1.3", sni=name,
                         extra=["-verify_hostname", name])
    proc, out = start_client(argv)
    try:
        env = {"KEYFILE": pki.leaf_ec.key_pem, "CERTFILE": pki.leaf_ec.chain_pem,
               **pair_env(*leaves.values())}
        tlsd = listener.serve(["--backend", server_backend, "-k", "2", "sh", "-c",
                               'read l; echo "sni=$SSL_TLS_SNI_SERVERNAME"'], env)
        proc.stdin.write(b"x\n")
        proc.stdin.flush()
        m = out.wait_for(r"sni=(\S+)", 15)
        result = tlsd.wait()
    finally:
        finish_client(proc)
    assert m is not None, out.text
    assert m.group(1) == name
    result.assert_ok()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_s_client_sees_the_unrecognized_name_alert(listener, pki, leaves):
    proc, out = start_client(s_client_argv(listener.port, pki, "1.3", sni="zz.example"))
    try:
        tlsd = listener.serve(["-k", "2", "true"], pair_env(*leaves.values()))
        result = tlsd.wait()
        proc.wait(10)
    finally:
        finish_client(proc)
    result.assert_fatal(98, "unrecognized server name")
    assert proc.returncode != 0


# -- configuration errors --------------------------------------------------------------


def _run(args, env):
    return start_tlsd([str(a) for a in args], None, env).wait()


@pytest.mark.parametrize("server_backend", SERVER_BACKENDS)
@pytest.mark.parametrize("level", ["1", "2"])
def test_half_pair_is_usage(pki, leaves, server_backend, level):
    a = leaves["a.example"]
    env = {"KEYFILE": pki.leaf_ec.key_pem, "CERTFILE": pki.leaf_ec.chain_pem,
           "KEYFILE:a.example": a.key_pem}
    _run(["--backend", server_backend, "-k", level, "true"], env).assert_fatal(
        100, "CERTFILE:a.example")
    env = {"CERTFILE:a.example": a.chain_pem}
    _run(["--backend", server_backend, "-k", level, "true"], env).assert_fatal(
        100, "KEYFILE")


@pytest.mark.parametrize("server_backend", SERVER_BACKENDS)
@pytest.mark.parametrize("what", ["unreadable", "mismatch"])
def test_bad_pair_is_config_error(pki, leaves, tmp_path, server_backend, what):
    a, b = leaves["a.example"], leaves["b.example"]
    key = tmp_path / "absent.pem" if what == "unreadable" else b.key_pem
    env = {"KEYFILE:a.example": key, "CERTFILE:a.example": a.chain_pem}
    _run(["--backend", server_backend, "-k", "2", "true"], env).assert_fatal(96)


@pytest.mark.parametrize(
    ("env", "why"),
    [({"KEYFILE:bad name": "x", "CERTFILE:bad name": "y"}, "not a DNS name"),
     ({}, "no KEYFILE:name")],
    ids=["bad-name", "no-pair"],
)
def test_level_2_usage_errors(env, why):
    _run(["-k", "2", "true"], env).assert_fatal(100, why)


def test_level_1_still_needs_keyfile(pki, leaves):
    _run(["-k", "1", "true"], pair_env(*leaves.values())).assert_fatal(100, "KEYFILE")


def test_keep_env_keeps_the_pairs(listener, pki, leaves, tmp_path):
    env = {"KEYFILE": pki.leaf_ec.key_pem, "CERTFILE": pki.leaf_ec.chain_pem,
           **pair_env(*leaves.values())}
    sres, cres, sprobe, _ = _exchange(listener, pki, tmp_path, SERVER_BACKENDS[0],
                                      ["-k", "1", "-Z"], env, "a.example")
    sres.assert_ok()
    senv = sprobe.report()["env"]
    assert senv["KEYFILE:a.example"] == str(leaves["a.example"].key_pem)
    assert senv["CERTFILE:b.example"] == str(leaves["b.example"].chain_pem)
