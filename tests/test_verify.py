"""Server certificate verification: every bad certificate -> 98, prog never runs.

The servers are real ``openssl s_server`` instances (security level 0, so that they
agree to serve weak certificates); the trust anchor is the test root CA unless said.
"""

from __future__ import annotations

import pytest

from tests.support.progs import marker_prog

WEAK_OK = ["-cipher", "DEFAULT:@SECLEVEL=0"]

# kind -> (certificate attribute of the PKI, regex the fatal line must match)
BAD = {
    "expired": ("expired", r"expired"),
    "not yet valid": ("not_yet_valid", r"not yet valid|not valid yet|future|notBefore"),
    "wrong name": ("wrong_name", r"name|mismatch|not valid for"),
    "unknown CA": ("unknown_ca", r"unknown|issuer|untrusted|trust|anchor|unable to get"),
    "self-signed leaf": ("self_signed", r"self[- ]signed|unknown|issuer|untrusted|trust|anchor"),
    "leaf signed by a non-CA": ("issued_by_non_ca",
                                r"\bCA\b|basic ?constraints|issuer|not a CA|invalid CA"),
    "CN only, no SAN": ("cn_only", r"name|mismatch|not valid for|subjectAltName|SAN"),
    "IP written as a DNS SAN": ("ip_as_dns", r"name|mismatch|not valid for"),
    "RSA 1024": ("rsa1024", r"key|small|weak|1024|bits"),
    "SHA-1 signature": ("sha1", r"sha-?1|digest|weak|signature|algorithm|insecure"),
    "EKU clientAuth only": ("client_auth_only",
                            r"usage|purpose|serverAuth|server auth|extended key"),
    "pathLen exceeded": ("pathlen_violation", r"path ?len|path length|constraint"),
    "unknown critical extension": ("unknown_critical", r"critical|extension"),
}


@pytest.mark.parametrize("tls", ["1.3", "1.2"])
@pytest.mark.parametrize("attr,why", BAD.values(), ids=BAD.keys())
def test_bad_server_certificate(attr, why, tls, tlsc, pki, sserver, tmp_path):
    cert = getattr(pki, attr)
    srv = sserver(cert, tls=tls, extra=WEAK_OK)
    marker = tmp_path / "ran"
    r = tlsc.run(["-k", "localhost", *marker_prog(marker)], peer=srv.address)
    r.assert_fatal(98, why)
    assert not marker.exists(), "prog was executed despite a failed verification"


@pytest.mark.parametrize("attr,name", [
    ("leaf_rsa", "localhost"),
    ("leaf_rsa", "LOCALHOST"),
    ("leaf_rsa", "localhost."),
    ("leaf_rsa", "127.0.0.1"),
    ("leaf_rsa", "::1"),
    ("leaf_ec", "0:0:0:0:0:0:0:1"),
    ("wildcard", "www.example.test"),
    ("wildcard", "A-B.Example.Test"),
])
def test_name_matches(attr, name, tlsc, pki, sserver, probe):
    srv = sserver(getattr(pki, attr))
    p = probe()
    r = tlsc.run(["-k", name, *p.argv("write:ok\\n", "readline")], peer=srv.address)
    r.assert_ok()
    assert p.report()["lines"] == ["ko\n"]


@pytest.mark.parametrize("attr,name", [
    ("leaf_rsa", "127.0.0.2"),
    ("leaf_rsa", "::2"),
    ("leaf_rsa", "localhost.localdomain"),
    ("leaf_rsa", "ocalhost"),
    ("wildcard", "example.test"),
    ("wildcard", "a.b.example.test"),
    ("wildcard", "www.example.test.evil"),
    ("ip_as_dns", "127.0.0.1"),
    ("wrong_name", "192.0.2.8"),
])
def test_name_mismatch(attr, name, tlsc, pki, sserver, tmp_path):
    srv = sserver(getattr(pki, attr))
    marker = tmp_path / "ran"
    r = tlsc.run(["-k", name, *marker_prog(marker)], peer=srv.address)
    r.assert_fatal(98, r"name|mismatch|not valid for")
    assert not marker.exists()


def test_ip_san_matches_by_value(tlsc, pki, sserver, probe):
    """wrong_name carries IP SAN 192.0.2.7 (and DNS other.example.test): -k with that
    address is accepted, which also shows the DNS/CN 'localhost' plays no part."""
    srv = sserver(pki.wrong_name)
    p = probe()
    r = tlsc.run(["-k", "192.0.2.7", *p.argv("write:ip\\n", "readline")], peer=srv.address)
    r.assert_ok()
    assert p.report()["lines"] == ["pi\n"]


def test_without_k_no_name_check_but_a_warning(tlsc, pki, sserver, probe):
    srv = sserver(pki.wrong_name)
    p = probe()
    r = tlsc.run(p.argv("write:x\\n", "readline"), peer=srv.address)
    r.assert_ok()
    assert p.report()["lines"] == ["x\n"]
    assert r.warnings, "no warning about the missing -k at -v 1:\n" + r.describe()


def test_without_k_chain_is_still_verified(tlsc, pki, sserver, tmp_path):
    srv = sserver(pki.unknown_ca)
    marker = tmp_path / "ran"
    r = tlsc.run(marker_prog(marker), peer=srv.address)
    r.assert_fatal(98)
    assert not marker.exists()


def test_no_verify_cert_accepts_anything_and_warns_even_quiet(tlsc, pki, sserver, probe):
    srv = sserver(pki.self_signed, extra=WEAK_OK)
    p = probe()
    r = tlsc.run(["--no-verify-cert", "-v", "0", "-k", "wrong.example.test",
                  *p.argv("write:nv\\n", "readline")], peer=srv.address, env={"CAFILE": None})
    r.assert_ok()
    assert p.report()["lines"] == ["vn\n"]
    assert len(r.warnings) >= 1, "--no-verify-cert must warn at -v 0:\n" + r.describe()


# -- trust anchors --------------------------------------------------------------------------

ANCHORS = {
    "CAFILE root PEM": {"CAFILE": "cafile"},
    "CAFILE root DER": {"CAFILE": "cafile_der"},
    "CAFILE bundle of two roots": {"CAFILE": "cafile_bundle"},
    "CAFILE intermediate only (partial chain)": {"CAFILE": "cafile_inter"},
    "CADIR odd names, PEM, junk, subdir": {"CADIR": "cadir_pem_spaces", "CAFILE": None},
    "CADIR unicode DER no extension, junk, symlink": {"CADIR": "cadir_der_unicode",
                                                      "CAFILE": None},
    "CADIR whose only anchor is a symlink": {"CADIR": "cadir_symlink_only", "CAFILE": None},
    "CADIR wins over a junk CAFILE": {"CADIR": "cadir_pem_spaces", "CAFILE": "junk"},
}


@pytest.mark.parametrize("env", ANCHORS.values(), ids=ANCHORS.keys())
@pytest.mark.parametrize("leaf", ["leaf_rsa", "leaf_ec"])
def test_trust_anchors(env, leaf, tlsc, pki, sserver, probe):
    srv = sserver(getattr(pki, leaf))
    p = probe()
    env = {k: (None if v is None else getattr(pki, v)) for k, v in env.items()}
    r = tlsc.run(["-k", "localhost", *p.argv("write:anchor\\n", "readline")],
                 peer=srv.address, env=env)
    r.assert_ok()
    assert p.report()["lines"] == ["rohcna\n"]


def test_partial_chain_server_sends_leaf_only(tlsc, pki, sserver, probe):
    """The intermediate is the anchor: the leaf alone reaches it."""
    srv = sserver(pki.leaf_ec, chain=False)
    p = probe()
    r = tlsc.run(["-k", "localhost", *p.argv("write:pc\\n", "readline")], peer=srv.address,
                 env={"CAFILE": pki.cafile_inter})
    r.assert_ok()
    assert p.report()["lines"] == ["cp\n"]


def test_anchor_is_the_other_root_only(tlsc, pki, sserver, tmp_path):
    srv = sserver(pki.leaf_ec)
    marker = tmp_path / "ran"
    r = tlsc.run(["-k", "localhost", *marker_prog(marker)], peer=srv.address,
                 env={"CAFILE": pki.other_root.cert_pem})
    r.assert_fatal(98)
    assert not marker.exists()


def test_cadir_files_without_certificates_are_reported_at_v2(tlsc, pki, sserver, probe):
    """A CADIR file holding no certificate is skipped; at -v 2 a tlsc line names it."""
    srv = sserver(pki.leaf_ec)
    p = probe()
    r = tlsc.run(["-v", "2", "-k", "localhost", *p.argv("write:w\\n", "readline")],
                 peer=srv.address, env={"CADIR": pki.cadir_pem_spaces, "CAFILE": None})
    r.assert_ok()
    assert any("README" in ln for ln in r.warnings + r.infos), r.describe()


def test_cadir_junk_files_silent_at_v1(tlsc, pki, sserver, probe):
    srv = sserver(pki.leaf_ec)
    p = probe()
    r = tlsc.run(["-k", "localhost", *p.argv("write:w\\n", "readline")],
                 peer=srv.address, env={"CADIR": pki.cadir_pem_spaces, "CAFILE": None})
    r.assert_ok()
    assert not any("README" in ln for ln in r.lines), r.describe()
