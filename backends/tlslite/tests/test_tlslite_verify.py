"""verify_chain: every verification rule, each accepted when right and refused when broken."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier
from tlsc.session import VerificationError
from tlsc.testing.certs import DAY, Chain, Issued, issue, name

from tlsc_tlslite.verify import ChainError, verify_chain

#: The moment every chain here is judged at, unless a test says otherwise.
NOW = dt.datetime(2030, 6, 15, 12, 0, 0, tzinfo=dt.timezone.utc)

#: This file's key names -> (key kind, slot) of ``tlsc.testing.certs.key``.  The same
#: name is the same key: the anchor "matched by subject and key" relies on it.
KEYS = {
    "rsa": ("rsa2048", 40),
    "rsa2": ("rsa2048", 41),
    "rsa3": ("rsa2048", 42),
    "rsa1024": ("rsa1024", 40),
    "ec256": ("p256", 40),
    "ec256-leaf": ("p256", 41),
    "ec384": ("p384", 40),
    "ed25519": ("ed25519", 40),
    "dsa": ("dsa2048", 40),
}
CA_USAGE = {"key_cert_sign", "crl_sign"}


def make_cert(
    cn: str,
    issuer: Issued | None = None,
    *,
    key_kind: str = "rsa",
    ca: bool | None = None,
    path_len: int | None = None,
    key_usage: Iterable[str] | None = None,
    eku: list[x509.ObjectIdentifier] | None = None,
    san: list[str] | None = None,
    not_before: dt.datetime = NOW - 30 * DAY,
    not_after: dt.datetime = NOW + 30 * DAY,
    **issue_options: Any,
) -> Issued:
    """:func:`tlsc.testing.certs.issue` with only the extensions asked for.

    ``ca`` None: no basicConstraints; no keyUsage, EKU or subjectAltName unless
    given (``san`` entries that parse as IP addresses become iPAddress).
    """
    kind, slot = KEYS[key_kind]
    names = list(san or ())
    ips = [s for s in names if _is_ip(s)]
    return issue(
        cn,
        issuer=issuer,
        key_kind=kind,
        slot=slot,
        ca=bool(ca),
        path_length=path_len,
        basic_constraints=None if ca is None else True,
        key_usage=None if key_usage is None else dict.fromkeys(key_usage, True),
        eku=eku,
        dns=[s for s in names if s not in ips],
        ips=ips,
        not_before=not_before,
        not_after=not_after,
        **issue_options,
    )


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def make_root(cn: str = "Test Root", **kw: Any) -> Issued:
    kw.setdefault("ca", True)
    kw.setdefault("key_usage", CA_USAGE)
    kw.setdefault("key_kind", "rsa")
    return make_cert(cn, None, **kw)


def make_inter(cn: str, issuer: Issued, **kw: Any) -> Issued:
    kw.setdefault("ca", True)
    kw.setdefault("key_usage", CA_USAGE)
    kw.setdefault("key_kind", "rsa2")
    return make_cert(cn, issuer, **kw)


def make_leaf(issuer: Issued | None, san: list[str] | None = None, **kw: Any) -> Issued:
    kw.setdefault("key_kind", "rsa3")
    kw.setdefault("key_usage", {"digital_signature", "key_encipherment"})
    kw.setdefault("eku", [ExtendedKeyUsageOID.SERVER_AUTH])
    kw.setdefault("ca", False)
    return make_cert("server.test", issuer, san=["server.test"] if san is None else san, **kw)


@pytest.fixture(scope="module")
def pki() -> Chain:
    """root -> intermediate -> leaf for server.test / 192.0.2.1, RSA, valid at NOW."""
    root = make_root()
    inter = make_inter("Test Intermediate", root)
    leaf = make_leaf(inter, san=["server.test", "*.wild.test", "192.0.2.1", "2001:db8::1"])
    return Chain(root, inter, leaf)


@pytest.fixture(scope="module")
def ec_pki() -> Chain:
    """The same shape with ECDSA keys (P-384 root, P-256 below)."""
    root = make_root("EC Root", key_kind="ec384", hash_alg=hashes.SHA384())
    inter = make_inter("EC Intermediate", root, key_kind="ec256", hash_alg=hashes.SHA384())
    leaf = make_leaf(inter, key_kind="ec256-leaf", key_usage={"digital_signature"})
    return Chain(root, inter, leaf)


UNKNOWN_CA = "^unknown certificate authority: "
NOT_A_CA = "^invalid CA certificate: "


def ok(chain, anchors, server_name="server.test", at=NOW):
    verify_chain(chain, anchors, server_name, at)


def refused(chain, anchors, server_name="server.test", at=NOW, *, match=None, alert=None):
    with pytest.raises(ChainError, match=match) as info:
        verify_chain(chain, anchors, server_name, at)
    assert isinstance(info.value, VerificationError)
    if alert is not None:
        assert info.value.alert == alert
    return info.value


# -- reaching an anchor ------------------------------------------------------------


def test_full_chain_to_root(pki: Chain):
    ok(pki.ders, [pki.root.der])
    ok(pki.ders + [pki.root.der], [pki.root.der])  # root sent too


def test_unknown_ca(pki: Chain):
    other = make_root("Other Root", key_kind="rsa2")
    refused(
        pki.ders, [other.der], match="unable to get local issuer certificate", alert="unknown_ca"
    )


def test_missing_intermediate(pki: Chain):
    refused([pki.leaf.der], [pki.root.der], match=UNKNOWN_CA, alert="unknown_ca")


def test_partial_chain_intermediate_anchor(pki: Chain):
    ok(pki.ders, [pki.inter.der])
    ok([pki.leaf.der], [pki.inter.der])


def test_leaf_as_anchor():
    leaf = make_leaf(None, ca=None)  # self-signed, no CA flag
    ok([leaf.der], [leaf.der])
    refused([leaf.der], [make_root("Unrelated", key_kind="rsa2").der], match="self-signed")


def test_anchor_matched_by_subject_and_key(pki: Chain):
    # The same intermediate (subject and key) re-issued self-signed: trusted as
    # the intermediate, although the chain's copy is signed by an unknown root.
    twin = make_cert(
        "Test Intermediate", None, key_kind="rsa2", ca=True, key_usage={"key_cert_sign"}
    )
    assert twin.der != pki.inter.der
    ok(pki.ders, [twin.der])
    # same subject, other key: not a match (the chain's real intermediate is
    # followed instead, and its issuer is unknown)
    impostor = make_cert(
        "Test Intermediate", None, key_kind="rsa", ca=True, key_usage={"key_cert_sign"}
    )
    refused(pki.ders, [impostor.der], match=UNKNOWN_CA, alert="unknown_ca")
    # ... and with nothing else to follow, the impostor is no issuer (its key
    # identifier is not the one the leaf names)
    refused([pki.leaf.der], [impostor.der], match=UNKNOWN_CA, alert="unknown_ca")


def test_anchor_self_signature_never_checked(pki: Chain):
    der = bytearray(pki.root.der)
    der[-5] ^= 0xFF  # corrupt the root's own signature
    ok(pki.ders, [bytes(der)])


def test_chain_out_of_order(pki: Chain):
    root = make_root("Order Root", key_kind="rsa")
    i1 = make_inter("Order I1", root)
    i2 = make_inter("Order I2", i1, key_kind="rsa")
    leaf = make_leaf(i2)
    ok([leaf.der, i1.der, i2.der], [root.der])


def test_bad_signature(pki: Chain):
    der = bytearray(pki.leaf.der)
    der[-5] ^= 0xFF
    refused([bytes(der), pki.inter.der], [pki.root.der], match="signature failure")


def test_garbage_certificate(pki: Chain):
    refused([b"\x30\x03\x02\x01\x00", pki.inter.der], [pki.root.der], match="parse")
    refused([], [pki.root.der], match="no certificate")


# -- validity -----------------------------------------------------------------


def test_validity_inclusive_bounds(pki: Chain):
    nb, na = NOW - 30 * DAY, NOW + 30 * DAY
    leaf = make_leaf(pki.inter, not_before=nb, not_after=na)
    chain = [leaf.der, pki.inter.der]
    ok(chain, [pki.root.der], at=nb)
    ok(chain, [pki.root.der], at=na)
    import datetime as dt

    second = dt.timedelta(seconds=1)
    refused(chain, [pki.root.der], at=na + second, match="has expired", alert="certificate_expired")
    refused(chain, [pki.root.der], at=nb - second, match="not yet valid", alert="bad_certificate")


def test_expired_intermediate_and_anchor():
    root = make_root("Dated Root", not_after=NOW + 365 * DAY)
    inter = make_inter("Dated Inter", root, not_after=NOW - DAY)
    leaf = make_leaf(inter)
    refused([leaf.der, inter.der], [root.der], match="has expired")
    ok([leaf.der, inter.der], [root.der], at=NOW - 2 * DAY)
    # the anchor's own dates count too
    old_root = make_root("Old Root", not_after=NOW - DAY)
    refused([make_leaf(old_root).der], [old_root.der], match="has expired")


# -- basic constraints, path length -------------------------------------------


def test_issuer_needs_ca_flag(pki: Chain):
    for ca in (None, False):
        inter = make_inter("Not a CA", pki.root, ca=ca)
        leaf = make_leaf(inter)
        refused([leaf.der, inter.der], [pki.root.der], match=NOT_A_CA, alert="unknown_ca")
    inter = make_inter("Is a CA", pki.root, ca=True)
    ok([make_leaf(inter).der, inter.der], [pki.root.der])


def test_anchor_as_issuer_needs_ca_flag():
    root = make_root("Flagless Root", ca=None)
    refused([make_leaf(root).der], [root.der], match=NOT_A_CA)


def test_path_len():
    root0 = make_root("Root pathlen 0", path_len=0)
    inter = make_inter("Below pathlen 0", root0)
    refused([make_leaf(inter).der, inter.der], [root0.der], match="path length")
    ok([make_leaf(root0).der], [root0.der])  # no intermediate: fine
    root1 = make_root("Root pathlen 1", path_len=1)
    inter1 = make_inter("Below pathlen 1", root1, path_len=0)
    ok([make_leaf(inter1).der, inter1.der], [root1.der])
    inter2 = make_inter("Second level", inter1, key_kind="rsa")
    refused([make_leaf(inter2).der, inter2.der, inter1.der], [root1.der], match="path length")


# -- key usage, extended key usage, critical extensions ----------------------------


def test_ca_key_usage(pki: Chain):
    inter = make_inter("No certsign", pki.root, key_usage={"crl_sign", "digital_signature"})
    refused([make_leaf(inter).der, inter.der], [pki.root.der], match="keyCertSign")
    # RFC 5280 4.2.1.3 (OpenSSL's strict mode): a CA carries keyUsage
    inter = make_inter("No KU at all", pki.root, key_usage=None)
    refused([make_leaf(inter).der, inter.der], [pki.root.der], match="CA without keyUsage")


def test_leaf_key_usage(pki: Chain):
    for usage in ({"digital_signature"}, {"key_encipherment"}, {"key_agreement"}):
        ok([make_leaf(pki.inter, key_usage=usage).der, pki.inter.der], [pki.root.der])
    ok([make_leaf(pki.inter, key_usage=None).der, pki.inter.der], [pki.root.der])
    bad = make_leaf(pki.inter, key_usage={"crl_sign"})
    refused(
        [bad.der, pki.inter.der], [pki.root.der], match="keyUsage", alert="unsupported_certificate"
    )


def test_leaf_extended_key_usage(pki: Chain):
    for eku in (
        [ExtendedKeyUsageOID.SERVER_AUTH],
        [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH],
        [ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE, ExtendedKeyUsageOID.SERVER_AUTH],
        None,
    ):
        ok([make_leaf(pki.inter, eku=eku).der, pki.inter.der], [pki.root.der])
    for eku in ([ExtendedKeyUsageOID.CLIENT_AUTH], [ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE]):
        # anyExtendedKeyUsage alone: refused, as OpenSSL's SSL-server purpose does
        bad = make_leaf(pki.inter, eku=eku)
        refused(
            [bad.der, pki.inter.der],
            [pki.root.der],
            match="serverAuth",
            alert="unsupported_certificate",
        )


def test_intermediate_extended_key_usage(pki: Chain):
    inter = make_inter("Client-only CA", pki.root, eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
    refused([make_leaf(inter).der, inter.der], [pki.root.der], match="serverAuth")
    inter = make_inter("Server CA", pki.root, eku=[ExtendedKeyUsageOID.SERVER_AUTH])
    ok([make_leaf(inter).der, inter.der], [pki.root.der])


def test_unknown_critical_extension(pki: Chain):
    ext = x509.UnrecognizedExtension(ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00")
    bad = make_leaf(pki.inter, extra=[(ext, True)])
    refused([bad.der, pki.inter.der], [pki.root.der], match="critical", alert="certificate_unknown")
    fine = make_leaf(pki.inter, extra=[(ext, False)])
    ok([fine.der, pki.inter.der], [pki.root.der])


# -- security level -------------------------------------------------------------


def test_small_rsa_key(pki: Chain):
    weak = make_leaf(pki.inter, key_kind="rsa1024")
    refused([weak.der, pki.inter.der], [pki.root.der], match="too weak")
    weak_inter = make_inter("Weak CA", pki.root, key_kind="rsa1024")
    refused([make_leaf(weak_inter).der, weak_inter.der], [pki.root.der], match="too weak")
    # the anchor's own key is judged too, never its self-signature
    weak_root = make_root("Weak Root", key_kind="rsa1024")
    refused([make_leaf(weak_root).der], [weak_root.der], match="too weak: RSA 1024")


def test_dsa_key(pki: Chain):
    refused([make_leaf(pki.inter, key_kind="dsa").der, pki.inter.der], [pki.root.der], match="DSA")


def test_sha1_signature(pki: Chain):
    weak = make_leaf(pki.inter, hash_alg=hashes.SHA1())
    refused([weak.der, pki.inter.der], [pki.root.der], match="too weak")
    # an anchor's own SHA-1 self-signature is fine
    root = make_root("SHA1 Root", hash_alg=hashes.SHA1())
    ok([make_leaf(root).der], [root.der])


def test_md5_signature(pki: Chain):
    weak = make_leaf(pki.inter, hash_alg=hashes.MD5())
    refused([weak.der, pki.inter.der], [pki.root.der], match="too weak")


# -- signature algorithms ------------------------------------------------------


def test_ecdsa_chain(ec_pki: Chain):
    ok(ec_pki.ders, [ec_pki.root.der])
    der = bytearray(ec_pki.leaf.der)
    der[-3] ^= 0x01
    refused([bytes(der), ec_pki.inter.der], [ec_pki.root.der], match="signature")


def test_rsa_pss_signature(pki: Chain):
    leaf = make_leaf(pki.inter, pss=True)
    ok([leaf.der, pki.inter.der], [pki.root.der])


def test_ed25519_signature():
    root = make_root("Ed Root", key_kind="ed25519")
    leaf = make_leaf(root)
    ok([leaf.der], [root.der])
    der = bytearray(leaf.der)
    der[-3] ^= 0x01
    refused([bytes(der)], [root.der], match="signature")


def test_sha384_and_sha512_rsa(pki: Chain):
    for alg in (hashes.SHA384(), hashes.SHA512()):
        ok([make_leaf(pki.inter, hash_alg=alg).der, pki.inter.der], [pki.root.der])


# -- names ------------------------------------------------------------------------


def test_names(pki: Chain):
    for good in ("server.test", "SERVER.test.", "a.wild.test", "192.0.2.1", "2001:db8::1"):
        ok(pki.ders, [pki.root.der], good)
    for bad in ("other.test", "a.b.wild.test", "wild.test", "192.0.2.2", "test"):
        e = refused(pki.ders, [pki.root.der], bad, match="not valid for", alert="bad_certificate")
        assert repr(bad) in str(e)
    ok(pki.ders, [pki.root.der], None)  # no -k: no name check


def test_ip_only_matches_ip_san(pki: Chain):
    leaf = make_leaf(pki.inter, san=["192.0.2.7"])
    ok([leaf.der, pki.inter.der], [pki.root.der], "192.0.2.7")
    # a dNSName that spells an address never matches the address
    spelled = make_cert(
        "192.0.2.7",
        pki.inter,
        key_kind="rsa3",
        extra=[(x509.SubjectAlternativeName([x509.DNSName("192.0.2.7")]), False)],
    )
    refused([spelled.der, pki.inter.der], [pki.root.der], "192.0.2.7", match="not valid")


def test_common_name_never_used(pki: Chain):
    cn_only = make_cert("server.test", pki.inter, key_kind="rsa3", san=None)
    refused([cn_only.der, pki.inter.der], [pki.root.der], "server.test", match="not valid")
    ok([cn_only.der, pki.inter.der], [pki.root.der], None)


def test_name_helper_used():
    assert name("x").rfc4514_string() == "CN=x,O=tlsc conformance"


def test_issuer_chosen_by_key_identifier_among_same_names(pki: Chain):
    """Two CAs with one name (key rollover): the one the leaf's key identifier names is used.

    As OpenSSL chooses (``ossl_x509_likely_issued``): a CA whose
    subjectKeyIdentifier is not the leaf's authorityKeyIdentifier is no issuer.
    """
    old = make_cert("Rollover CA", None, key_kind="rsa", ca=True, key_usage={"key_cert_sign"})
    new = make_cert("Rollover CA", None, key_kind="rsa2", ca=True, key_usage={"key_cert_sign"})
    leaf = make_leaf(new)
    ok([leaf.der], [old.der, new.der])
    ok([leaf.der], [new.der, old.der])
    refused([leaf.der], [old.der], match=UNKNOWN_CA, alert="unknown_ca")
    # without key identifiers to tell them apart, the first by name is the issuer
    # (the leaf then breaks the strict rules, which is checked before signatures)
    bare = make_leaf(new, key_ids=False)
    refused([bare.der], [old.der], match="authorityKeyIdentifier")
