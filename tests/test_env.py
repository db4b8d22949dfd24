"""prog's environment: SSL_* values computed independently, and cleaning."""

from __future__ import annotations

import os

import pytest

TLS_VARS = ["CADIR", "CAFILE", "KEYFILE", "CERTFILE", "TLS_UID", "TLS_GID"]


@pytest.mark.parametrize("leaf", ["leaf_rsa", "leaf_ec"])
@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_ssl_variables_match_what_the_server_negotiated(tls, leaf, tlsc, pki, pypeer, probe):
    """SSL_PROTOCOL/SSL_CIPHER equal what the stdlib-ssl server reports (OpenSSL names);
    the hash and subject are computed here with cryptography, not by tlsc."""
    cert = getattr(pki, leaf)
    peer = pypeer(cert, tls=tls, send_text="hi\n")
    p = probe()
    r = tlsc.run(["-k", "localhost", *p.argv("env", "readline", "closew", "readall")],
                 peer=peer.address)
    r.assert_ok()
    res = peer.result()
    env = p.report()["env"]
    assert env["SSL_PROTOCOL"] == res["version"] == f"TLSv{tls}"
    assert env["SSL_CIPHER"] == res["cipher"]
    assert env["SSL_PEER_CERT_HASH"] == cert.sha256
    assert env["SSL_PEER_CERT_HASH"].startswith("SHA256:")
    assert len(env["SSL_PEER_CERT_HASH"]) == 7 + 64
    assert env["SSL_PEER_CERT_SUBJECT"] == cert.subject
    assert env["SSL_TLS_SNI_SERVERNAME"] == "localhost" == res["sni"]


def test_subject_escaping(tlsc, pki, pypeer, probe):
    """leaf_rsa's subject needs RFC 4514 escapes (',' and '+')."""
    peer = pypeer(pki.leaf_rsa)
    p = probe()
    r = tlsc.run(["-k", "localhost", *p.argv("env")], peer=peer.address)
    r.assert_ok()
    subject = p.report()["env"]["SSL_PEER_CERT_SUBJECT"]
    assert subject == "CN=localhost,OU=R\\+D,O=Example\\, Inc.,C=FR" == pki.leaf_rsa.subject


@pytest.mark.parametrize("args", [[], ["-k", "127.0.0.1"], ["-k", "::1"]],
                         ids=["no -k", "-k ipv4", "-k ipv6"])
def test_no_sni_variable_when_no_sni_sent(args, tlsc, pki, pypeer, probe):
    """Removed even when tlsc itself inherited a stale value."""
    peer = pypeer(pki.leaf_ec)
    p = probe()
    r = tlsc.run([*args, *p.argv("env")], peer=peer.address,
                 env={"SSL_TLS_SNI_SERVERNAME": "stale.example.test"})
    r.assert_ok()
    assert peer.result()["sni"] is None, "SNI was sent"
    assert "SSL_TLS_SNI_SERVERNAME" not in p.report()["env"]


def test_ssl_variables_override_inherited_values(tlsc, pki, pypeer, probe):
    peer = pypeer(pki.leaf_ec, tls="1.3")
    p = probe()
    stale = {"SSL_PROTOCOL": "SSLv2", "SSL_CIPHER": "NULL", "SSL_PEER_CERT_HASH": "SHA256:00",
             "SSL_PEER_CERT_SUBJECT": "CN=stale", "SSL_TLS_SNI_SERVERNAME": "stale"}
    r = tlsc.run(["-k", "localhost", *p.argv("env")], peer=peer.address, env=stale)
    r.assert_ok()
    env = p.report()["env"]
    assert env["SSL_PROTOCOL"] == "TLSv1.3"
    assert env["SSL_CIPHER"] != "NULL"
    assert env["SSL_PEER_CERT_HASH"] == pki.leaf_ec.sha256
    assert env["SSL_PEER_CERT_SUBJECT"] == pki.leaf_ec.subject
    assert env["SSL_TLS_SNI_SERVERNAME"] == "localhost"


def test_subject_with_newline_cannot_smuggle_a_variable(tlsc, pki, pypeer, probe):
    """The injection leaf's O is 'evil\\nINJECTED=1'."""
    peer = pypeer(pki.injection)
    p = probe()
    r = tlsc.run(["-k", "localhost", *p.argv("env")], peer=peer.address)
    r.assert_no_traceback()
    if r.rc == 98:  # refusing the value outright is acceptable too
        assert not p.ran
        return
    r.assert_ok()
    env = p.report()["env"]
    assert "INJECTED" not in env
    assert env["SSL_PEER_CERT_SUBJECT"] == pki.injection.subject


def _tls_env(pki) -> dict[str, str]:
    env = {"CADIR": str(pki.cadir_pem_spaces), "CAFILE": str(pki.cafile),
           "KEYFILE": str(pki.client.key_pem), "CERTFILE": str(pki.client.cert_pem),
           "OTHER_VARIABLE": "kept as is"}
    if os.geteuid() == 0:
        env.update(TLS_UID="0", TLS_GID="0")  # as root: "drop" to root, a no-op
    else:
        env.update(TLS_UID="12345", TLS_GID="12345")  # ignored when not root
    return env


@pytest.mark.parametrize("flags", [[], ["-z"], ["-Z", "-z"], ["--no-keep-env"]],
                         ids=["default", "-z", "-Z -z", "--no-keep-env"])
def test_tls_variables_removed(flags, tlsc, pki, pypeer, probe):
    peer = pypeer(pki.leaf_ec)
    p = probe()
    env = _tls_env(pki)
    r = tlsc.run([*flags, "-k", "localhost", *p.argv("env")], peer=peer.address, env=env)
    r.assert_ok()
    got = p.report()["env"]
    for var in TLS_VARS:
        assert var not in got, f"{var} leaked into prog's environment"
    assert got["OTHER_VARIABLE"] == "kept as is"
    assert got["PATH"] == r.env["PATH"]


@pytest.mark.parametrize("flags", [["-Z"], ["-z", "-Z"], ["--keep-env"]],
                         ids=["-Z", "-z -Z", "--keep-env"])
def test_tls_variables_kept_with_Z(flags, tlsc, pki, pypeer, probe):
    peer = pypeer(pki.leaf_ec)
    p = probe()
    env = _tls_env(pki)
    r = tlsc.run([*flags, "-k", "localhost", *p.argv("env")], peer=peer.address, env=env)
    r.assert_ok()
    got = p.report()["env"]
    for var in TLS_VARS:
        assert got.get(var) == env[var], f"{var} not kept by {flags}"
    assert got["SSL_PEER_CERT_HASH"] == pki.leaf_ec.sha256
