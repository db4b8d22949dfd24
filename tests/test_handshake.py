"""Handshakes against real ``openssl s_server``: TLS 1.2/1.3, RSA/ECDSA, SNI, client certs."""

from __future__ import annotations

import shutil
import sys

import pytest

from tests.support import run as runmod
from tests.support.progs import marker_prog

# One pinned suite per case, so SSL_CIPHER has exactly one right answer.
SUITES = {
    ("1.3", "leaf_rsa"): "TLS_AES_256_GCM_SHA384",
    ("1.3", "leaf_ec"): "TLS_AES_128_GCM_SHA256",
    ("1.2", "leaf_rsa"): "ECDHE-RSA-AES256-GCM-SHA384",
    ("1.2", "leaf_ec"): "ECDHE-ECDSA-AES128-GCM-SHA256",
}


def pin(tls: str, suite: str) -> list[str]:
    return ["-ciphersuites", suite] if tls == "1.3" else ["-cipher", suite]


def ending(tls: str) -> list[str]:
    """How prog's EOF must end the session for s_server to take it well.

    Under TLS 1.2 the default -s is a bare TCP half-close (as s6-tlsc does), which
    OpenSSL 3's s_server answers with a fatal decode_error alert -> 98 (a TLS error).
    A TLS 1.2 client that wants a clean end against such servers uses -S."""
    return ["-S"] if tls == "1.2" else []


@pytest.mark.parametrize("leaf", ["leaf_rsa", "leaf_ec"])
@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_handshake_and_data_against_s_server(tls, leaf, tlsc, pki, sserver, probe):
    cert = getattr(pki, leaf)
    suite = SUITES[(tls, leaf)]
    srv = sserver(cert, tls=tls, extra=pin(tls, suite))
    p = probe()
    r = tlsc.run([*ending(tls), "-k", "localhost",
                  *p.argv("write:hello world\\n", "readline", "env")], peer=srv.address)
    r.assert_ok()
    rep = p.report()
    assert rep["lines"] == ["dlrow olleh\n"]
    env = rep["env"]
    assert env["SSL_PROTOCOL"] == f"TLSv{tls}"
    assert env["SSL_CIPHER"] == suite
    assert env["SSL_PEER_CERT_HASH"] == cert.sha256
    assert env["SSL_PEER_CERT_SUBJECT"] == cert.subject


@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_default_half_close_against_s_server(tls, tlsc, pki, sserver, probe):
    """-s (the default): TLS 1.3 ends our direction with close_notify: a clean run.
    TLS 1.2 ends it with a bare TCP half-close, which s_server (OpenSSL 3) answers
    with a fatal alert.  prog has its reply either way; whether the alert arrives
    before tlsc notices that prog closed its input is a race, so under TLS 1.2
    the run ends clean (0) or with that alert (98), never anything else."""
    srv = sserver(pki.leaf_rsa, tls=tls)
    p = probe()
    r = tlsc.run(["-k", "localhost", *p.argv("write:hello\\n", "readline")], peer=srv.address)
    assert p.report()["lines"] == ["olleh\n"]
    if tls == "1.3" or r.rc == 0:
        r.assert_ok()
    else:
        r.assert_fatal(98, "alert")


@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_handshake_with_ip_servername(tls, tlsc, pki, sserver, probe):
    srv = sserver(pki.leaf_ec, tls=tls)
    p = probe()
    r = tlsc.run([*ending(tls), "-k", "127.0.0.1", *p.argv("write:abc\\n", "readline")],
                 peer=srv.address)
    r.assert_ok()
    assert p.report()["lines"] == ["cba\n"]


def test_server_sends_no_chain_but_anchor_is_root(tlsc, pki, sserver, tmp_path):
    """The server omits its intermediate: no path to the root, so 98 and prog never runs."""
    srv = sserver(pki.leaf_ec, chain=False)
    marker = tmp_path / "ran"
    r = tlsc.run(["-k", "localhost", *marker_prog(marker)], peer=srv.address)
    r.assert_fatal(98)
    assert not marker.exists()


# -- SNI as the server sees it --------------------------------------------------------------

@pytest.fixture
def sni_server(pki, sserver):
    """s_server that switches to leaf_rsa when the client sends SNI 'localhost' (else
    serves leaf_ec) and logs the SNI it received (-msg)."""
    def make(tls: str = "1.3"):
        return sserver(pki.leaf_ec, tls=tls, extra=[
            "-servername", "localhost", "-cert2", str(pki.leaf_rsa.cert_pem),
            "-key2", str(pki.leaf_rsa.key_pem), "-msg"])
    return make


@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_sni_is_sent_for_a_dns_name(tls, tlsc, pki, sni_server, probe):
    srv = sni_server(tls)
    p = probe()
    # leaf_rsa is served only on SNI, and the chain of ctx2 lacks the intermediate:
    # trust the intermediate directly (partial chain).
    r = tlsc.run([*ending(tls), "-k", "localhost", *p.argv("write:x\\n", "readline", "env")],
                 peer=srv.address, env={"CAFILE": pki.cafile_inter})
    r.assert_ok()
    assert 'Hostname in TLS extension: "localhost"' in srv.output
    env = p.report()["env"]
    assert env["SSL_PEER_CERT_HASH"] == pki.leaf_rsa.sha256, "server did not switch on SNI"
    assert env["SSL_TLS_SNI_SERVERNAME"] == "localhost"


@pytest.mark.parametrize("args", [["-k", "127.0.0.1"], ["-k", "::1"], []],
                         ids=["ipv4 name", "ipv6 name", "no -k"])
def test_no_sni_for_ip_address_or_without_k(args, tlsc, pki, sni_server, probe):
    srv = sni_server()
    p = probe()
    r = tlsc.run([*args, *p.argv("write:x\\n", "readline", "env")], peer=srv.address,
                 env={"CAFILE": pki.cafile_inter})
    r.assert_ok()
    assert p.report()["lines"] == ["x\n"]
    assert "Hostname in TLS extension" not in srv.output
    env = p.report()["env"]
    assert env["SSL_PEER_CERT_HASH"] == pki.leaf_ec.sha256
    assert "SSL_TLS_SNI_SERVERNAME" not in env


def test_sni_wildcard_name(tlsc, pki, sserver, probe):
    srv = sserver(pki.wildcard, extra=["-servername", "www.example.test", "-cert2",
                                       str(pki.wildcard.cert_pem), "-key2",
                                       str(pki.wildcard.key_pem), "-msg"])
    p = probe()
    r = tlsc.run(["-k", "www.example.test", *p.argv("write:x\\n", "readline", "env")],
                 peer=srv.address, env={"CAFILE": pki.cafile_inter})
    r.assert_ok()
    assert 'Hostname in TLS extension: "www.example.test"' in srv.output
    assert p.report()["env"]["SSL_TLS_SNI_SERVERNAME"] == "www.example.test"


# -- client certificates --------------------------------------------------------------------

def client_cert_server(sserver, pki, tls):
    return sserver(pki.leaf_ec, tls=tls, extra=[
        "-Verify", "1", "-verify_return_error", "-CAfile", str(pki.client_ca.cert_pem)])


@pytest.mark.parametrize("tls", ["1.2", "1.3"])
@pytest.mark.parametrize("client,cert_fmt,key_fmt", [
    ("client", "pem", "pem"), ("client", "pem", "der"), ("client", "der", "der"),
    ("client", "der", "pem"), ("client_rsa", "pem", "der"), ("client_rsa", "der", "pem"),
])
def test_client_certificate(client, cert_fmt, key_fmt, tls, tlsc, pki, sserver, probe):
    c = getattr(pki, client)
    srv = client_cert_server(sserver, pki, tls)
    p = probe()
    r = tlsc.run([*ending(tls), "-y", "-k", "localhost",
                  *p.argv("write:client\\n", "readline")],
                 peer=srv.address,
                 env={"CERTFILE": getattr(c, f"cert_{cert_fmt}"),
                      "KEYFILE": getattr(c, f"key_{key_fmt}")})
    r.assert_ok()
    assert p.report()["lines"] == ["tneilc\n"]


@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_client_certificate_long_option(tls, tlsc, pki, sserver, probe):
    srv = client_cert_server(sserver, pki, tls)
    p = probe()
    r = tlsc.run([*ending(tls), "--client-cert", "--servername=localhost",
                  *p.argv("write:ab\\n", "readline")],
                 peer=srv.address,
                 env={"CERTFILE": pki.client.chain_pem, "KEYFILE": pki.client.key_pem})
    r.assert_ok()
    assert p.report()["lines"] == ["ba\n"]


@pytest.mark.parametrize("flags", [[], ["-Y"], ["-y", "-Y"]], ids=["default", "-Y", "-y -Y"])
@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_no_client_certificate_is_refused_by_server(flags, tls, tlsc, pki, sserver, probe):
    """-Y (default, and last-wins) sends no certificate: a server that requires one
    aborts, and tlsc exits 98 (under TLS 1.3 the alert may come after our Finished,
    so prog may have started; it never gets the server's data)."""
    srv = client_cert_server(sserver, pki, tls)
    p = probe()
    r = tlsc.run([*flags, "-k", "localhost", *p.argv("write:client\\n", "readline")],
                 peer=srv.address,
                 env={"CERTFILE": pki.client.cert_pem, "KEYFILE": pki.client.key_pem})
    r.assert_fatal(98, strict=False)
    if p.ran:
        assert p.report()["lines"] in ([""], [])


# -- started by a real UCSPI client --------------------------------------------------------

@pytest.mark.skipif(shutil.which("tcpclient") is None, reason="ucspi-tcp tcpclient not installed")
def test_under_ucspi_tcpclient(backend, pki, sserver, probe):
    srv = sserver(pki.leaf_rsa)
    p = probe()
    cmd = ["tcpclient", "-RHl0", "127.0.0.1", str(srv.port), sys.executable, "-m", "tlsc",
           "--backend", backend, "-k", "localhost"]
    r = runmod.run(p.argv("write:ucspi\\n", "readline", "env"), cmd=cmd,
                   env={"CAFILE": pki.cafile})
    r.assert_ok()
    rep = p.report()
    assert rep["lines"] == ["ipscu\n"]
    assert rep["env"]["TCPREMOTEPORT"] == str(srv.port)  # tcpclient's variables pass through
    assert rep["env"]["SSL_PEER_CERT_HASH"] == pki.leaf_rsa.sha256
