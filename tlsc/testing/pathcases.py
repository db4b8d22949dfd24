"""The path-validation battery: chains with the verdict tlsc's verification rules demand.

Every case is a chain (leaf first, DER), trust anchors, a server name and a
moment, plus the verdict the rules require (docs/tlsc.rst, "Verification").
No handshake is involved: each backend's ``verify_chain`` runs the very rules
its handshake applies, so this battery reaches corners (inclusive validity
boundaries to the second, pathLen, critical extensions, broken DER) that would
be slow or impossible to stage through a TLS server.

Cases are generated once per process (:func:`cases` is cached); all dates are
relative to the fixed :data:`REF` and passed as ``at_time``, so verdicts never
depend on the wall clock.  A backend without a standalone verifier is judged
through handshakes at the wall clock (:mod:`.handshakepaths`): for it the
battery is generated around another moment, ``cases(ref)``, every date moving
with it and no verdict changing.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID as EKU
from cryptography.x509.oid import ExtensionOID, NameOID

from . import certs
from .certs import DAY, Issued, issue

__all__ = ["REF", "PathCase", "cases"]

#: The moment every case is judged at (``at_time``).
REF = dt.datetime(2030, 6, 15, 12, 0, 0, tzinfo=dt.timezone.utc)
SECOND = dt.timedelta(seconds=1)
NB = REF - 30 * DAY
NA = REF + 365 * DAY
HOST = "host.example"


@dataclass(frozen=True)
class PathCase:
    """One chain and the verdict tlsc's verification rules require for it."""

    name: str  #: unique, ``rule/variant``
    rule: str  #: the verification rule exercised
    chain: tuple[bytes, ...]  #: leaf first, DER
    anchors: tuple[bytes, ...]  #: trust anchors, DER
    server_name: str | None
    accept: bool
    at_time: dt.datetime = REF

    @property
    def expected(self) -> str:
        return "accept" if self.accept else "reject"


def _cert(cn: str, **kw: object) -> Issued:
    kw.setdefault("not_before", NB)
    kw.setdefault("not_after", NA)
    return issue(cn, **kw)  # type: ignore[arg-type]


class _PKI:
    """root -> inter, both RSA unless told; leaves hang under ``inter``."""

    def __init__(self, tag: str, root_kind: str = "rsa2048", inter_kind: str = "rsa2048") -> None:
        self.tag = tag
        self.root = _cert(f"{tag} Root", key_kind=root_kind, slot=1, ca=True)
        self.inter = _cert(f"{tag} Inter", key_kind=inter_kind, slot=2, ca=True, issuer=self.root)

    def leaf(self, **kw: object) -> Issued:
        kw.setdefault("issuer", self.inter)
        kw.setdefault("dns", (HOST,))
        return _cert(HOST, **kw)


class _Cases:
    def __init__(self) -> None:
        self.out: list[PathCase] = []

    def add(
        self,
        rule: str,
        variant: str,
        chain: Iterable[Issued | bytes],
        anchors: Iterable[Issued | bytes],
        accept: bool,
        server_name: str | None = HOST,
        at_time: dt.datetime | None = None,
    ) -> None:
        def der(x: Issued | bytes) -> bytes:
            return x if isinstance(x, bytes) else x.der

        self.out.append(
            PathCase(
                f"{rule}/{variant}",
                rule,
                tuple(der(c) for c in chain),
                tuple(der(a) for a in anchors),
                server_name,
                accept,
                REF if at_time is None else at_time,
            )
        )


LEAF_KINDS = ("rsa2048", "rsa3072", "p256", "p384", "p521", "ed25519")


def _good(c: _Cases) -> None:
    for root_kind in ("rsa2048", "p384"):
        for inter_kind in ("rsa2048", "p256", "ed25519"):
            p = _PKI(f"good {root_kind} {inter_kind}", root_kind, inter_kind)
            for lk in LEAF_KINDS:
                leaf = p.leaf(key_kind=lk)
                variant = f"{root_kind}/{inter_kind}/{lk}"
                c.add("good-chain", variant, [leaf, p.inter], [p.root], True)
    p = _PKI("hashes")
    for h in (hashes.SHA384(), hashes.SHA512(), hashes.SHA224()):
        c.add("good-chain", f"rsa-{h.name}", [p.leaf(hash_alg=h), p.inter], [p.root], True)
    c.add("good-chain", "rsa-pss", [p.leaf(pss=True), p.inter], [p.root], True)
    c.add("good-chain", "root-sent-too", [p.leaf(), p.inter, p.root], [p.root], True)
    c.add("good-chain", "no-name-check", [p.leaf(dns=("x.example",)), p.inter], [p.root], True,
          server_name=None)
    c.add("good-chain", "generalized-time-2051", [p.leaf(not_after=dt.datetime(
        2051, 1, 1, tzinfo=dt.timezone.utc)), p.inter], [p.root], True)
    c.add("good-chain", "unknown-noncritical-ext",
          [p.leaf(extra=[(certs.unknown_extension(), False)]), p.inter], [p.root], True)


def _validity(c: _Cases) -> None:
    p = _PKI("validity")
    lo, hi = REF - DAY, REF + DAY
    for where in ("leaf", "inter", "anchor"):
        root = _cert(f"validity {where} Root", key_kind="rsa2048", slot=1, ca=True,
                     **({"not_before": lo, "not_after": hi} if where == "anchor" else {}))
        inter = _cert(f"validity {where} Inter", key_kind="rsa2048", slot=2, ca=True, issuer=root,
                      **({"not_before": lo, "not_after": hi} if where == "inter" else {}))
        leaf = _cert(HOST, issuer=inter, dns=(HOST,),
                     **({"not_before": lo, "not_after": hi} if where == "leaf" else {}))
        for label, t, ok in (
            ("before-notBefore", lo - SECOND, False),
            ("at-notBefore", lo, True),
            ("inside", REF, True),
            ("at-notAfter", hi, True),
            ("after-notAfter", hi + SECOND, False),
            ("long-expired", hi + 400 * DAY, False),
            ("long-before", lo - 400 * DAY, False),
        ):
            c.add("validity", f"{where}/{label}", [leaf, inter], [root], ok, at_time=t)
    expired_anchor = p.leaf(not_after=REF - DAY)
    c.add("validity", "leaf-as-anchor-expired", [expired_anchor], [expired_anchor], False)


def _ca_flag(c: _Cases) -> None:
    p = _PKI("caflag")
    for variant, kw in (
        ("inter-ca-false", {"ca": False, "key_usage": {"key_cert_sign": True}}),
        ("inter-no-basic-constraints", {"basic_constraints": None}),
    ):
        bad = _cert("caflag bad Inter", key_kind="rsa2048", slot=3, issuer=p.root, eku=None, **kw)
        c.add("ca-flag", variant, [p.leaf(issuer=bad), bad], [p.root], False)
    not_ca = _cert("caflag leaf", issuer=p.inter, dns=("other.example",))
    c.add("ca-flag", "leaf-signed-by-leaf", [_cert(HOST, issuer=not_ca, dns=(HOST,)), not_ca,
                                             p.inter], [p.root], False)
    bad = _cert("caflag noncritical Inter", key_kind="rsa2048", slot=3, issuer=p.root, ca=True,
                basic_constraints=False)
    c.add("ca-flag", "inter-ca-noncritical", [p.leaf(issuer=bad), bad], [p.root], False)


def _path_len(c: _Cases) -> None:
    for root_len, inter_lens, ok in (
        (0, [], True),
        (0, [None], False),
        (1, [None], True),
        (1, [None, None], False),
        (2, [None, None], True),
        (None, [0], True),
        (None, [0, None], False),
        (None, [1, None], True),
        (None, [1, 0], True),
        (None, [None, 0], True),
        (None, [2, 0, None], False),
        (1, [0], True),
        (3, [None, None, None], True),
        (2, [None, None, None], False),
    ):
        tag = f"pathlen {root_len} {inter_lens}"
        root = _cert(f"{tag} Root", key_kind="rsa2048", slot=1, ca=True, path_length=root_len)
        chain: list[Issued] = []
        up = root
        for i, n in enumerate(inter_lens):
            up = _cert(f"{tag} Inter{i}", key_kind="rsa2048", slot=2, ca=True, issuer=up,
                       path_length=n)
            chain.insert(0, up)
        leaf = _cert(HOST, issuer=up, dns=(HOST,))
        variant = f"root={root_len}/inters={'-'.join(str(x) for x in inter_lens) or 'none'}"
        c.add("path-length", variant, [leaf, *chain], [root], ok)


def _key_usage(c: _Cases) -> None:
    p = _PKI("ku")
    for kind in ("rsa2048", "p256"):
        for variant, ku, ok in (
            ("digital-signature", {"digital_signature": True}, True),
            ("key-encipherment", {"key_encipherment": True}, True),
            ("key-agreement", {"key_agreement": True}, True),
            ("cert-sign-only", {"key_cert_sign": True}, False),
            ("crl-sign-only", {"crl_sign": True}, False),
            ("content-commitment-only", {"content_commitment": True}, False),
            ("absent", None, True),
        ):
            c.add("key-usage", f"leaf-{kind}/{variant}",
                  [p.leaf(key_kind=kind, key_usage=ku), p.inter], [p.root], ok)
    for variant, ku, ok in (
        ("cert-sign", {"key_cert_sign": True}, True),
        ("no-cert-sign", {"digital_signature": True, "crl_sign": True}, False),
        ("absent", None, False),  # RFC 5280 4.2.1.3: a CA MUST have keyUsage (strict mode)
    ):
        inter = _cert(f"ku inter {variant}", key_kind="rsa2048", slot=2, ca=True, issuer=p.root,
                      key_usage=ku)
        c.add("key-usage", f"inter/{variant}", [p.leaf(issuer=inter), inter], [p.root], ok)


def _eku(c: _Cases) -> None:
    p = _PKI("eku")
    # OpenSSL's TLS purposes still honour Netscape's certificate type on a leaf
    for variant, bits, ok in (("ssl-server", 0x40, True), ("ssl-client-and-server", 0xC0, True),
                              ("smime-only", 0x20, False), ("ssl-client-only", 0x80, False)):
        c.add("extended-key-usage", f"leaf-ns-cert-type/{variant}",
              [p.leaf(extra=[(_ns_cert_type(bits), False)]), p.inter], [p.root], ok)
    for variant, eku, ok in (
        ("server-auth", (EKU.SERVER_AUTH,), True),
        ("server-and-client", (EKU.CLIENT_AUTH, EKU.SERVER_AUTH), True),
        ("client-auth-only", (EKU.CLIENT_AUTH,), False),
        ("code-signing-only", (EKU.CODE_SIGNING,), False),
        ("email-only", (EKU.EMAIL_PROTECTION,), False),
        ("absent", None, True),
    ):
        for kind in ("rsa2048", "p256"):
            c.add("extended-key-usage", f"leaf-{kind}/{variant}",
                  [p.leaf(key_kind=kind, eku=eku), p.inter], [p.root], ok)


def _ns_cert_type(bits: int) -> x509.UnrecognizedExtension:
    """Netscape's certificate type with these bits (0x40 SSL server, 0x80 SSL client)."""
    return x509.UnrecognizedExtension(x509.ObjectIdentifier("2.16.840.1.113730.1.1"),
                                      bytes([0x03, 0x02, 0x00, bits]))


def _names(c: _Cases) -> None:
    p = _PKI("names")
    table: list[tuple[str, tuple[str, ...], tuple[str, ...], str | None, bool]] = [
        ("dns-exact", (HOST,), (), HOST, True),
        ("dns-case-insensitive", (HOST,), (), "HOST.Example", True),
        ("dns-trailing-dot", (HOST,), (), HOST + ".", True),
        ("dns-second-san", ("a.example", HOST), (), HOST, True),
        ("dns-mismatch", (HOST,), (), "other.example", False),
        ("dns-subdomain", (HOST,), (), "www." + HOST, False),
        ("dns-parent", ("www." + HOST,), (), HOST, False),
        ("dns-suffix-trick", (HOST,), (), "evilhost.example", False),
        ("wildcard-one-label", ("*.wild.example",), (), "a.wild.example", True),
        ("wildcard-case", ("*.wild.example",), (), "A.WILD.example", True),
        ("wildcard-bare-domain", ("*.wild.example",), (), "wild.example", False),
        ("wildcard-two-labels", ("*.wild.example",), (), "a.b.wild.example", False),
        ("wildcard-tld", ("*.com",), (), "foo.com", False),
        ("wildcard-partial-prefix", ("f*.wild.example",), (), "foo.wild.example", False),
        ("wildcard-partial-suffix", ("*o.wild.example",), (), "foo.wild.example", False),
        ("wildcard-not-leftmost", ("a.*.example",), (), "a.b.example", False),
        ("wildcard-alone", ("*",), (), "foo", False),
        ("wildcard-does-not-match-ip", ("*.0.2.1",), (), "192.0.2.1", False),
        ("ipv4", (), ("192.0.2.1",), "192.0.2.1", True),
        ("ipv4-mismatch", (), ("192.0.2.1",), "192.0.2.2", False),
        ("ipv6", (), ("2001:db8::1",), "2001:db8::1", True),
        ("ipv6-other-spelling", (), ("2001:db8::1",), "2001:db8:0:0:0:0:0:1", True),
        ("ipv6-mismatch", (), ("2001:db8::1",), "2001:db8::2", False),
        ("ipv4-mapped-not-ipv4", (), ("::ffff:192.0.2.1",), "192.0.2.1", False),
        ("ip-as-dns-san-refused", ("192.0.2.1",), (), "192.0.2.1", False),
        ("dns-vs-ip-only", (), ("192.0.2.1",), HOST, False),
        ("ip-vs-dns-only", (HOST,), (), "192.0.2.1", False),
        ("mixed-sans-dns", (HOST,), ("192.0.2.1",), HOST, True),
        ("mixed-sans-ip", (HOST,), ("192.0.2.1",), "192.0.2.1", True),
        ("no-san-cn-not-used", (), (), HOST, False),
        ("no-san-no-name-check", (), (), None, True),
    ]
    for kind in ("rsa2048", "p256"):
        for variant, dns, ips, server_name, ok in table:
            leaf = p.leaf(key_kind=kind, dns=dns, ips=ips)
            c.add("names", f"{kind}/{variant}", [leaf, p.inter], [p.root], ok, server_name)


def _critical(c: _Cases) -> None:
    p = _PKI("critical")
    crit = [(certs.unknown_extension(), True)]
    c.add("critical-extension", "leaf-unknown-critical", [p.leaf(extra=crit), p.inter], [p.root],
          False)
    inter = _cert("critical Inter", key_kind="rsa2048", slot=2, ca=True, issuer=p.root, extra=crit)
    c.add("critical-extension", "inter-unknown-critical", [p.leaf(issuer=inter), inter], [p.root],
          False)
    for i, oid in enumerate(("1.2.3.4", "2.999.1", "1.3.6.1.4.1.11129.2.4.99")):
        ext = [(certs.unknown_extension(oid), True)]
        c.add("critical-extension", f"leaf-critical-{i}", [p.leaf(extra=ext), p.inter], [p.root],
              False)
        c.add("critical-extension", f"leaf-noncritical-{i}",
              [p.leaf(extra=[(certs.unknown_extension(oid), False)]), p.inter], [p.root], True)
    c.add("critical-extension", "leaf-ku-noncritical",
          [p.leaf(key_usage_critical=False), p.inter], [p.root], True)
    # Extensions OpenSSL knows and, as tlsc never asks for policy or CRL checks,
    # accepts critical without acting on them; every backend must do the same.
    policy = x509.ObjectIdentifier("2.23.140.1.2.1")
    policies = x509.CertificatePolicies([x509.PolicyInformation(policy, None)])
    dp = x509.CRLDistributionPoints([x509.DistributionPoint(
        [x509.UniformResourceIdentifier("http://crl.example/ca.crl")], None, None, None)])
    for variant, ext in (
        ("certificate-policies", policies),
        ("policy-constraints", x509.PolicyConstraints(require_explicit_policy=0,
                                                      inhibit_policy_mapping=None)),
        ("policy-mappings", x509.UnrecognizedExtension(  # cryptography has no class for it
            x509.ObjectIdentifier("2.5.29.33"),
            bytes.fromhex("3012" "3010" "060667810c010201" "060667810c010202"))),
        ("inhibit-any-policy", x509.InhibitAnyPolicy(0)),
        ("crl-distribution-points", dp),
    ):
        inter = _cert(f"critical {variant} Inter", key_kind="rsa2048", slot=2, ca=True,
                      issuer=p.root, extra=[(ext, True)])
        c.add("critical-extension", f"inter-known-critical-{variant}",
              [p.leaf(issuer=inter), inter], [p.root], True)
    c.add("critical-extension", "leaf-known-critical-certificate-policies",
          [p.leaf(extra=[(policies, True)]), p.inter], [p.root], True)
    c.add("critical-extension", "leaf-known-critical-ns-cert-type",
          [p.leaf(extra=[(_ns_cert_type(0x40), True)]), p.inter], [p.root], True)
    aia = x509.AuthorityInformationAccess([x509.AccessDescription(
        x509.oid.AuthorityInformationAccessOID.CA_ISSUERS,
        x509.UniformResourceIdentifier("http://ca.example/ca.crt"))])
    c.add("critical-extension", "leaf-authority-information-access-critical",
          [p.leaf(extra=[(aia, True)]), p.inter], [p.root], False)


def _malformed(c: _Cases) -> None:
    p = _PKI("malformed")
    leaf = p.leaf()
    good = leaf.der
    for variant, bad in (
        ("truncated-leaf", good[: len(good) // 2]),
        ("garbage-leaf", b"\x30\x82\x01\x00" + b"\xa5" * 40),
        ("empty-leaf", b""),
        ("not-der", b"-----BEGIN CERTIFICATE-----\n"),
        ("trailing-bytes", good + b"\x00\x00"),
        ("wrong-outer-length", good[:2] + bytes([good[2], (good[3] + 1) & 0xFF]) + good[4:]),
    ):
        c.add("malformed", variant, [bad, p.inter], [p.root], False)
    c.add("malformed", "truncated-inter", [good, p.inter.der[:100]], [p.root], False)
    c.add("malformed", "empty-chain", [], [p.root], False)


def _signatures(c: _Cases) -> None:
    for kind in ("rsa2048", "p256", "ed25519"):
        p = _PKI(f"sig {kind}", "rsa2048", kind)
        leaf = p.leaf()
        c.add("signature", f"{kind}/leaf-bit-flipped",
              [certs.corrupt_signature(leaf.der), p.inter], [p.root], False)
        c.add("signature", f"{kind}/inter-bit-flipped",
              [leaf, certs.corrupt_signature(p.inter.der)], [p.root], False)
        wrong = certs.key(kind, 9)
        c.add("signature", f"{kind}/leaf-signed-by-other-key",
              [p.leaf(signer_key=wrong), p.inter], [p.root], False)
    p = _PKI("sig anchor")
    c.add("signature", "anchor-self-signature-not-checked",
          [p.leaf(), p.inter], [certs.corrupt_signature(p.root.der)], True)


def _chains(c: _Cases) -> None:
    for n in (1, 2, 3, 4, 5, 6, 7, 8):
        root = _cert(f"long {n} Root", key_kind="rsa2048", slot=1, ca=True)
        inters: list[Issued] = []
        up = root
        for i in range(n):
            up = _cert(f"long {n} Inter{i}", key_kind="rsa2048", slot=2, ca=True, issuer=up)
            inters.insert(0, up)
        leaf = _cert(HOST, issuer=up, dns=(HOST,))
        c.add("chain", f"length-{n}-intermediates", [leaf, *inters], [root], True)
        if n >= 3:
            c.add("chain", f"length-{n}-shuffled", [leaf, *reversed(inters)], [root], True)
            c.add("chain", f"length-{n}-missing-middle",
                  [leaf, *inters[:1], *inters[2:]], [root], False)
            c.add("chain", f"length-{n}-anchor-in-middle", [leaf, *inters], [inters[1]], True)
    p = _PKI("chain")
    other = _PKI("chain other")
    c.add("chain", "missing-intermediate", [p.leaf()], [p.root], False)
    c.add("chain", "unknown-root", [p.leaf(), p.inter], [other.root], False)
    c.add("chain", "no-anchors", [p.leaf(), p.inter], [], False)
    c.add("chain", "unrelated-extra-cert", [p.leaf(), other.inter, p.inter], [p.root], True)
    c.add("chain", "several-anchors", [p.leaf(), p.inter], [other.root, p.root], True)
    c.add("chain", "garbage-anchor-ignored", [p.leaf(), p.inter], [b"junk", p.root], True)
    lookalike = _cert("chain Root", key_kind="rsa2048", slot=7, ca=True)
    c.add("chain", "lookalike-root-other-key", [p.leaf(), p.inter], [lookalike], False)


def _anchors(c: _Cases) -> None:
    p = _PKI("anchors")
    leaf = p.leaf()
    c.add("partial-chain", "intermediate-anchor", [leaf, p.inter], [p.inter], True)
    c.add("partial-chain", "intermediate-anchor-not-sent", [leaf], [p.inter], True)
    c.add("partial-chain", "leaf-anchor", [leaf, p.inter], [leaf], True)
    c.add("partial-chain", "leaf-anchor-alone", [leaf], [leaf], True)
    c.add("partial-chain", "leaf-anchor-name-mismatch", [leaf], [leaf], False, "other.example")
    ss = _cert(HOST, dns=(HOST,), key_kind="p256", slot=5)
    c.add("partial-chain", "self-signed-leaf-untrusted", [ss], [p.root], False)
    c.add("partial-chain", "self-signed-leaf-anchored", [ss], [ss], True)
    c.add("partial-chain", "other-leaf-anchor", [leaf], [p.leaf(slot=4)], False)
    dead_root = _cert("anchors dead Root", key_kind="rsa2048", slot=1, ca=True,
                      not_after=REF - DAY)
    inter = _cert("anchors Inter under dead root", key_kind="rsa2048", slot=2, ca=True,
                  issuer=dead_root)
    c.add("partial-chain", "inter-anchor-below-expired-root",
          [p.leaf(issuer=inter), inter, dead_root], [inter], True)
    c.add("partial-chain", "expired-root-anchor", [p.leaf(issuer=inter), inter], [dead_root],
          False)


def _weak(c: _Cases) -> None:
    p = _PKI("weak")
    c.add("weak-crypto", "leaf-rsa1024", [p.leaf(key_kind="rsa1024"), p.inter], [p.root], False)
    weak_inter = _cert("weak Inter 1024", key_kind="rsa1024", slot=2, ca=True, issuer=p.root)
    c.add("weak-crypto", "inter-rsa1024", [p.leaf(issuer=weak_inter), weak_inter], [p.root], False)
    weak_root = _cert("weak Root 1024", key_kind="rsa1024", slot=1, ca=True)
    inter = _cert("weak Inter under 1024 root", key_kind="rsa2048", slot=2, ca=True,
                  issuer=weak_root)
    c.add("weak-crypto", "anchor-rsa1024", [p.leaf(issuer=inter), inter], [weak_root], False)
    c.add("weak-crypto", "leaf-rsa1024-as-anchor",
          *(lambda lf: ([lf], [lf]))(p.leaf(key_kind="rsa1024", slot=3)), False)
    for digest in ("sha1", "md5"):
        c.add("weak-crypto", f"leaf-rsa-{digest}",
              [certs.resign(p.leaf(), p.inter, digest), p.inter], [p.root], False)
        c.add("weak-crypto", f"inter-rsa-{digest}",
              [p.leaf(), certs.resign(p.inter, p.root, digest)], [p.root], False)
        sha1_root = certs.resign(p.root, p.root, digest)
        c.add("weak-crypto", f"anchor-self-signed-{digest}-exempt",
              [p.leaf(), p.inter], [sha1_root], True)
    ec = _PKI("weak ec", "p256", "p256")
    c.add("weak-crypto", "leaf-ecdsa-sha1",
          [certs.resign(ec.leaf(), ec.inter, "sha1"), ec.inter], [ec.root], False)
    c.add("weak-crypto", "leaf-rsa2048-ok", [p.leaf(key_kind="rsa2048"), p.inter], [p.root], True)
    c.add("weak-crypto", "leaf-dsa", [p.leaf(key_kind="dsa2048"), p.inter], [p.root], False)
    dsa_inter = _cert("weak Inter DSA", key_kind="dsa2048", slot=2, ca=True, issuer=p.root)
    c.add("weak-crypto", "inter-dsa", [p.leaf(issuer=dsa_inter), dsa_inter], [p.root], False)


def _structure(c: _Cases) -> None:
    """RFC 5280's structural rules, as OpenSSL's strict mode applies them."""
    rule = "rfc5280-structure"
    p = _PKI("structure")

    def inter(tag: str, **kw: object) -> Issued:
        kw.setdefault("issuer", p.root)
        return _cert(f"structure {tag} Inter", key_kind="rsa2048", slot=3, ca=True, **kw)

    def root(tag: str, **kw: object) -> Issued:
        return _cert(f"structure {tag} Root", key_kind="rsa2048", slot=4, ca=True, **kw)

    def via_inter(variant: str, i: Issued, ok: bool) -> None:
        c.add(rule, variant, [p.leaf(issuer=i), i], [p.root], ok)

    def via_root(variant: str, r: Issued, ok: bool) -> None:
        i = inter(f"under {variant}", issuer=r)
        c.add(rule, variant, [p.leaf(issuer=i), i], [r], ok)

    # authorityKeyIdentifier (4.2.1.1): a key id in every certificate below the anchor
    c.add(rule, "leaf-without-aki", [p.leaf(aki=None), p.inter], [p.root], False)
    c.add(rule, "leaf-aki-without-key-id", [p.leaf(aki="issuer-serial"), p.inter], [p.root],
          False)
    c.add(rule, "leaf-without-key-ids", [p.leaf(key_ids=False), p.inter], [p.root], False)
    via_inter("inter-without-aki", inter("no aki", aki=None), False)
    via_inter("inter-aki-without-key-id", inter("aki serial", aki="issuer-serial"), False)
    c.add(rule, "inter-anchor-without-aki", [p.leaf(issuer=(i := inter("anchor no aki",
          aki=None))), i], [i], True)
    c.add(rule, "leaf-anchor-without-key-ids", *(lambda lf: ([lf], [lf]))(p.leaf(key_ids=False)),
          True)
    c.add(rule, "aki-critical", [p.leaf(aki_critical=True), p.inter], [p.root], False)
    # subjectKeyIdentifier (4.2.1.2): in every CA, anchors included; a leaf may omit it
    via_inter("inter-without-ski", inter("no ski", ski=False), False)
    via_root("root-without-ski", root("no ski", ski=False), False)
    c.add(rule, "leaf-without-ski", [p.leaf(ski=False), p.inter], [p.root], True)
    via_inter("ski-critical", inter("ski critical", ski_critical=True), False)
    # basicConstraints (4.2.1.9): present and critical in every CA, anchors included
    via_root("root-without-basic-constraints", root("no bc", basic_constraints=None), False)
    via_root("root-basic-constraints-noncritical", root("bc noncritical", basic_constraints=False),
             False)
    via_inter("inter-basic-constraints-noncritical",
              inter("bc noncritical", basic_constraints=False), False)
    c.add(rule, "leaf-basic-constraints-noncritical",
          [p.leaf(basic_constraints=False), p.inter], [p.root], True)
    c.add(rule, "leaf-without-basic-constraints",
          [p.leaf(basic_constraints=None), p.inter], [p.root], True)
    # keyUsage (4.2.1.3): present in a CA; keyCertSign only in a CA
    via_root("root-without-key-usage", root("no ku", key_usage=None), False)
    via_inter("inter-without-key-usage", inter("no ku", key_usage=None), False)
    c.add(rule, "leaf-key-usage-cert-sign",
          [p.leaf(key_usage={"digital_signature": True, "key_cert_sign": True}), p.inter],
          [p.root], False)
    c.add(rule, "leaf-no-basic-constraints-key-usage-cert-sign",
          [p.leaf(basic_constraints=None,
                  key_usage={"digital_signature": True, "key_cert_sign": True}), p.inter],
          [p.root], False)
    via_inter("inter-path-length-without-cert-sign",
              inter("pathlen no certsign", path_length=0,
                    key_usage={"digital_signature": True, "crl_sign": True}), False)
    # names (4.1.2.4, 4.1.2.6, 4.2.1.6): a CA's subject, every issuer, non-empty
    empty = x509.Name([])
    via_inter("inter-empty-subject", inter("empty", subject=empty), False)
    via_root("root-empty-subject", root("empty", subject=empty), False)
    c.add(rule, "leaf-empty-subject-critical-san",
          [p.leaf(subject=empty, san_critical=True), p.inter], [p.root], True)
    c.add(rule, "leaf-empty-subject-noncritical-san",
          [p.leaf(subject=empty), p.inter], [p.root], False)
    c.add(rule, "leaf-empty-subject-no-san",
          [p.leaf(subject=empty, dns=()), p.inter], [p.root], False, server_name=None)
    c.add(rule, "leaf-empty-san", [p.leaf(dns=(), extra=[(x509.SubjectAlternativeName([]),
          False)]), p.inter], [p.root], False, server_name=None)
    # no extension twice (4.2), known to OpenSSL or not, anywhere in the chain
    san, bc = ExtensionOID.SUBJECT_ALTERNATIVE_NAME, ExtensionOID.BASIC_CONSTRAINTS
    unknown = x509.ObjectIdentifier("1.3.6.1.4.1.55555.1")
    with_unknown = [(certs.unknown_extension(), False)]
    c.add(rule, "leaf-san-twice", [certs.duplicate_extension(p.leaf(), p.inter, san), p.inter],
          [p.root], False)
    c.add(rule, "leaf-eku-twice", [certs.duplicate_extension(
        p.leaf(), p.inter, ExtensionOID.EXTENDED_KEY_USAGE), p.inter], [p.root], False)
    c.add(rule, "leaf-unknown-extension-twice",
          [certs.duplicate_extension(p.leaf(extra=with_unknown), p.inter, unknown), p.inter],
          [p.root], False)
    via_inter("inter-basic-constraints-twice",
              certs.duplicate_extension(inter("bc twice"), p.root, bc), False)
    via_inter("inter-unknown-extension-twice", certs.duplicate_extension(
        inter("unknown twice", extra=with_unknown), p.root, unknown), False)
    r = root("unknown twice", extra=with_unknown)
    via_root("root-unknown-extension-twice", certs.duplicate_extension(r, None, unknown), False)
    # an EC key's curve named, never spelled out (RFC 5480 2.1.1)
    spelled = certs.explicit_curve(
        _cert("structure explicit Inter", key_kind="p256", slot=5, ca=True, issuer=p.root),
        p.root)
    via_inter("inter-ec-explicit-curve", spelled, False)
    c.add(rule, "leaf-ec-explicit-curve",
          [certs.explicit_curve(p.leaf(key_kind="p256"), p.inter), p.inter], [p.root], False)


def _anchor_strength(c: _Cases) -> None:
    """An anchor's key meets the strength rules; its self-signature is never checked."""
    rule = "anchor-key-strength"
    for kind, ok in (("rsa1024", False), ("p192", False), ("rsa2048", True), ("p256", True),
                     ("ed25519", True)):
        root = _cert(f"strength {kind} Root", key_kind=kind, slot=21, ca=True)
        inter = _cert(f"strength {kind} Inter", key_kind="rsa2048", slot=2, ca=True, issuer=root)
        leaf = _cert(HOST, issuer=inter, dns=(HOST,))
        c.add(rule, f"root-{kind}", [leaf, inter], [root], ok)
        c.add(rule, f"root-{kind}-sent-too", [leaf, inter, root], [root], ok)
    p = _PKI("strength")
    for kind, ok in (("rsa1024", False), ("p192", False), ("p384", True)):
        inter = _cert(f"strength {kind} Inter", key_kind=kind, slot=22, ca=True, issuer=p.root)
        leaf = _cert(HOST, issuer=inter, dns=(HOST,))
        c.add(rule, f"inter-anchor-{kind}", [leaf, inter], [inter], ok)
        c.add(rule, f"inter-{kind}", [leaf, inter], [p.root], ok)
        alone = p.leaf(key_kind=kind, slot=23)
        c.add(rule, f"leaf-anchor-{kind}", [alone], [alone], ok)
        c.add(rule, f"leaf-{kind}", [alone, p.inter], [p.root], ok)


def _nc(permitted: Sequence[x509.GeneralName] | None = None,
        excluded: Sequence[x509.GeneralName] | None = None) -> x509.NameConstraints:
    return x509.NameConstraints(
        permitted_subtrees=list(permitted) if permitted else None,
        excluded_subtrees=list(excluded) if excluded else None,
    )


def _raw_nc(permitted: bytes = b"", excluded: bytes = b"") -> x509.UnrecognizedExtension:
    """A nameConstraints extension from hand-made DER subtrees (what cryptography refuses)."""
    body = b""
    if permitted:
        body += certs.der_tlv(0xA0, permitted)
    if excluded:
        body += certs.der_tlv(0xA1, excluded)
    return x509.UnrecognizedExtension(ExtensionOID.NAME_CONSTRAINTS, certs.der_tlv(0x30, body))


def _subtree(base: bytes, minimum: int | None = None, maximum: int | None = None) -> bytes:
    """One GeneralSubtree: ``base`` (a DER GeneralName), then [0] minimum, [1] maximum."""
    body = base
    if minimum is not None:
        body += certs.der_tlv(0x80, bytes([minimum]))
    if maximum is not None:
        body += certs.der_tlv(0x81, bytes([maximum]))
    return certs.der_tlv(0x30, body)


def _dns(name: str) -> bytes:
    return certs.der_tlv(0x82, name.encode())


def _dn(rfc4514: str) -> x509.DirectoryName:
    return x509.DirectoryName(x509.Name.from_rfc4514_string(rfc4514))


def _net(cidr: str) -> x509.IPAddress:
    return x509.IPAddress(ipaddress.ip_network(cidr))


def _name_constraints(c: _Cases) -> None:
    """nameConstraints (RFC 5280 4.2.1.10): permitted and excluded subtrees, every type."""
    rule = "name-constraints"
    root = _cert("nc Root", key_kind="rsa2048", slot=1, ca=True)

    def constrained(tag: str, nc: x509.ExtensionType, critical: bool = True,
                    issuer: Issued | None = None, **kw: object) -> Issued:
        return _cert(f"nc {tag} Inter", key_kind="rsa2048", slot=2, ca=True,
                     issuer=issuer or root, extra=[(nc, critical)], **kw)

    def leaf(inter: Issued, dns: Sequence[str] = (), ips: Sequence[str] = (),
             **kw: object) -> Issued:
        cn = dns[0] if dns else ips[0] if ips else "no name"
        return _cert(cn, issuer=inter, dns=dns, ips=ips, **kw)

    def case(variant: str, inter: Issued, lf: Issued, ok: bool, name: str | None) -> None:
        c.add(rule, variant, [lf, inter], [root], ok, server_name=name)

    # dNSName: whole labels added on the left; a leading '.' means strictly below
    ex = constrained("permit example.com", _nc([x509.DNSName("example.com")]))
    for variant, host, ok in (
        ("dns-permitted-exact", "example.com", True),
        ("dns-permitted-subdomain", "www.example.com", True),
        ("dns-permitted-deep-subdomain", "a.b.example.com", True),
        ("dns-permitted-case-insensitive", "WWW.Example.COM", True),
        ("dns-permitted-suffix-trick", "notexample.com", False),
        ("dns-permitted-other-domain", "example.org", False),
        ("dns-permitted-parent", "com", False),
    ):
        case(variant, ex, leaf(ex, (host,)), ok, host.lower() if ok else None)
    case("dns-permitted-second-san-outside", ex,
         leaf(ex, ("www.example.com", "www.example.org")), False, "www.example.com")
    case("dns-permitted-wildcard-san", ex, leaf(ex, ("*.example.com",)), True, "a.example.com")
    dot = constrained("permit .example.com", _nc([x509.DNSName(".example.com")]))
    case("dns-permitted-leading-dot-below", dot, leaf(dot, ("www.example.com",)), True,
         "www.example.com")
    case("dns-permitted-leading-dot-itself", dot, leaf(dot, ("example.com",)), False, None)
    no = constrained("exclude example.com", _nc(excluded=[x509.DNSName("example.com")]))
    case("dns-excluded-subdomain", no, leaf(no, ("www.example.com",)), False, None)
    case("dns-excluded-exact", no, leaf(no, ("example.com",)), False, None)
    case("dns-excluded-other", no, leaf(no, ("www.example.org",)), True, "www.example.org")
    case("dns-excluded-suffix-trick", no, leaf(no, ("notexample.com",)), True, "notexample.com")
    case("dns-excluded-wildcard-san", no, leaf(no, ("*.example.com",)), False, None)
    both = constrained("permit and exclude", _nc([x509.DNSName("example.com")],
                                                 [x509.DNSName("bad.example.com")]))
    case("dns-permitted-and-excluded", both, leaf(both, ("www.bad.example.com",)), False, None)
    case("dns-permitted-not-excluded", both, leaf(both, ("www.example.com",)), True,
         "www.example.com")
    noncrit = constrained("exclude noncritical", _nc(excluded=[x509.DNSName("example.com")]),
                          critical=False)
    case("dns-excluded-noncritical-enforced", noncrit, leaf(noncrit, ("www.example.com",)),
         False, None)
    # iPAddress: address and mask; IPv4 and IPv6 never match each other
    v4 = constrained("permit 192.0.2.0/24", _nc([_net("192.0.2.0/24")]))
    case("ipv4-permitted-inside", v4, leaf(v4, ips=("192.0.2.1",)), True, "192.0.2.1")
    case("ipv4-permitted-outside", v4, leaf(v4, ips=("192.0.3.1",)), False, None)
    case("ipv4-permitted-ipv6-san", v4, leaf(v4, ips=("2001:db8::1",)), False, None)
    case("ipv4-permitted-dns-san-unconstrained", v4, leaf(v4, ("www.example.com",)), True,
         "www.example.com")
    v4x = constrained("exclude 192.0.2.0/24", _nc(excluded=[_net("192.0.2.0/24")]))
    case("ipv4-excluded-inside", v4x, leaf(v4x, ips=("192.0.2.200",)), False, None)
    case("ipv4-excluded-outside", v4x, leaf(v4x, ips=("198.51.100.1",)), True, "198.51.100.1")
    case("ipv4-excluded-dns-san-unconstrained", v4x, leaf(v4x, ("www.example.com",)), True,
         "www.example.com")
    v6 = constrained("permit 2001:db8::/32", _nc([_net("2001:db8::/32")]))
    case("ipv6-permitted-inside", v6, leaf(v6, ips=("2001:db8:1::1",)), True, "2001:db8:1::1")
    case("ipv6-permitted-outside", v6, leaf(v6, ips=("2001:db9::1",)), False, None)
    v6x = constrained("exclude ::1/128", _nc(excluded=[_net("::1/128")]))
    case("ipv6-excluded-host", v6x, leaf(v6x, ips=("::1",)), False, None)
    case("ipv6-excluded-other-host", v6x, leaf(v6x, ips=("::2",)), True, "::2")
    # directoryName: leading RDNs of the subject (and of directoryName SANs)
    org = constrained("permit O", _nc([_dn("O=tlsc conformance")]))
    case("dn-permitted-subject", org, leaf(org, ("www.example.com",)), True, "www.example.com")
    upper = constrained("permit O upper", _nc([_dn("O=TLSC  Conformance")]))
    case("dn-permitted-subject-case-and-space-insensitive", upper,
         leaf(upper, ("www.example.com",)), True, "www.example.com")
    other = constrained("permit O other", _nc([_dn("O=someone else")]))
    case("dn-permitted-subject-outside", other, leaf(other, ("www.example.com",)), False, None)
    case("dn-permitted-san-outside", org,
         leaf(org, ("www.example.com",), san=[_dn("O=someone else,CN=x")]), False, None)
    exact = constrained("exclude O CN", _nc(excluded=[_dn("CN=evil.example,O=tlsc conformance")]))
    case("dn-excluded-subject", exact, leaf(exact, ("evil.example",)), False, None)
    case("dn-excluded-other-subject", exact, leaf(exact, ("good.example",)), True, "good.example")
    case("dn-permitted-empty-subject-skipped", other,
         leaf(other, ("www.example.com",), subject=x509.Name([]), san_critical=True), True,
         "www.example.com")
    # rfc822Name and URI, where the chain has them
    mail = constrained("permit mail", _nc([x509.RFC822Name("example.com")]))
    case("email-permitted-host", mail,
         leaf(mail, ("www.example.org",), san=[x509.RFC822Name("admin@example.com")]), True,
         "www.example.org")
    case("email-permitted-other-host", mail,
         leaf(mail, ("www.example.org",), san=[x509.RFC822Name("admin@example.org")]), False,
         None)
    subject_mail = x509.Name([x509.NameAttribute(NameOID.EMAIL_ADDRESS, "admin@example.org"),
                              x509.NameAttribute(NameOID.COMMON_NAME, "mail")])
    case("email-permitted-subject-address-outside", mail,
         leaf(mail, ("www.example.org",), subject=subject_mail), False, None)
    case("email-permitted-dns-san-unconstrained", mail, leaf(mail, ("www.example.org",)), True,
         "www.example.org")
    # an SmtpUTF8Mailbox otherName (RFC 8398) is judged by rfc822Name constraints, by host
    smtp = x509.ObjectIdentifier("1.3.6.1.5.5.7.8.9")

    def mailbox(address: str) -> x509.OtherName:
        return x509.OtherName(smtp, certs.der_tlv(0x0C, address.encode()))

    for variant, inter, address, ok in (
        ("mailbox-permitted-host", mail, "admin@example.com", True),
        ("mailbox-permitted-other-host", mail, "admin@example.org", False),
        ("mailbox-permitted-subdomain", mail, "admin@www.example.com", False),
    ):
        case(variant, inter, leaf(inter, ("www.example.org",), san=[mailbox(address)]), ok,
             "www.example.org" if ok else None)
    mail_no = constrained("exclude mail", _nc(excluded=[x509.RFC822Name("example.com")]))
    case("mailbox-excluded-host", mail_no,
         leaf(mail_no, ("www.example.org",), san=[mailbox("admin@example.com")]), False, None)
    uri = constrained("exclude uri", _nc(excluded=[x509.UniformResourceIdentifier(
        ".example.com")]))
    case("uri-excluded-host", uri, leaf(uri, ("www.example.org",), san=[
        x509.UniformResourceIdentifier("https://www.example.com:8443/x")]), False, None)
    case("uri-excluded-other-host", uri, leaf(uri, ("www.example.org",), san=[
        x509.UniformResourceIdentifier("https://www.example.org/x")]), True, "www.example.org")
    # every certificate below the constraining CA, and every constraint above it
    deep = constrained("permit example.com (root of two)", _nc([x509.DNSName("example.com")]))
    below = _cert("nc below Inter", key_kind="rsa2048", slot=3, ca=True, issuer=deep,
                  dns=("ca.example.org",))
    c.add(rule, "inter-san-outside-constraint-above", [leaf(below, ("www.example.com",)), below,
          deep], [root], False)
    narrow = _cert("nc narrow Inter", key_kind="rsa2048", slot=3, ca=True, issuer=deep,
                   extra=[(_nc([x509.DNSName("shop.example.com")]), True)])
    c.add(rule, "narrowed-by-second-constraint", [leaf(narrow, ("www.example.com",)), narrow,
          deep], [root], False)
    c.add(rule, "within-both-constraints", [leaf(narrow, ("a.shop.example.com",)), narrow,
          deep], [root], True, server_name="a.shop.example.com")
    constrained_root = _cert("nc constrained Root", key_kind="rsa2048", slot=4, ca=True,
                             extra=[(_nc([x509.DNSName("example.com")]), True)])
    plain = _cert("nc plain Inter", key_kind="rsa2048", slot=2, ca=True, issuer=constrained_root)
    c.add(rule, "anchor-constraint-enforced", [leaf(plain, ("www.example.org",)), plain],
          [constrained_root], False)
    c.add(rule, "anchor-constraint-met", [leaf(plain, ("www.example.com",)), plain],
          [constrained_root], True, server_name="www.example.com")
    # a self-issued intermediate (key rollover) is not subject to the constraints above it;
    # a self-issued leaf is
    rollover = _cert("nc Root", key_kind="rsa2048", slot=5, ca=True, issuer=constrained_root,
                     subject=constrained_root.cert.subject, dns=("rollover.example.org",))
    c.add(rule, "self-issued-inter-exempt", [leaf(rollover, ("www.example.com",)), rollover],
          [constrained_root], True, server_name="www.example.com")
    c.add(rule, "self-issued-inter-leaf-still-checked",
          [leaf(rollover, ("www.example.org",)), rollover], [constrained_root], False)
    # forms nobody can judge are refused when a name of that form is present
    oid = x509.ObjectIdentifier("1.3.6.1.4.1.55555.3")
    other_nc = constrained("exclude othername", _nc([x509.DNSName("example.com")],
                                                    [x509.OtherName(oid, b"\x05\x00")]))
    case("othername-constraint-othername-san", other_nc,
         leaf(other_nc, ("www.example.com",), san=[x509.OtherName(oid, b"\x05\x00")]), False,
         None)
    case("othername-constraint-no-othername-san", other_nc, leaf(other_nc, ("www.example.com",)),
         True, "www.example.com")
    rid = constrained("exclude registeredid", _nc(excluded=[x509.RegisteredID(oid)]))
    case("registeredid-constraint-registeredid-san", rid,
         leaf(rid, ("www.example.com",), san=[x509.RegisteredID(oid)]), False, None)
    # malformed subtrees: refused, never guessed at
    for variant, raw in (
        ("subtree-minimum-1", _raw_nc(_subtree(_dns("example.com"), minimum=1))),
        ("subtree-maximum", _raw_nc(_subtree(_dns("example.com"), maximum=3))),
        ("dns-constraint-wildcard", _raw_nc(_subtree(_dns("*.example.com")))),
        ("ip-constraint-without-mask", _raw_nc(_subtree(certs.der_tlv(0x87, bytes([192, 0, 2,
                                                                                   1]))))),
    ):
        bad = constrained(variant, raw)
        case(variant, bad, leaf(bad, ("www.example.com",), ips=("192.0.2.1",)), False, None)
    # a leaf's own nameConstraints constrain nothing
    c.add(rule, "leaf-with-name-constraints",
          [_cert("www.example.com", issuer=ex, dns=("www.example.com",),
                 name_constraints=_nc([x509.DNSName("other.example")])), ex], [root], True,
          server_name="www.example.com")


def _common_name(c: _Cases) -> None:
    """The subject's CN is never a name: not for -k, not for name constraints."""
    rule = "cn-never-used"
    root = _cert("cn Root", key_kind="rsa2048", slot=1, ca=True)
    local = _cert("cn exclude localhost Inter", key_kind="rsa2048", slot=2, ca=True, issuer=root,
                  extra=[(_nc(excluded=[x509.DNSName("localhost")]), True)])
    permit = _cert("cn permit example.com Inter", key_kind="rsa2048", slot=3, ca=True,
                   issuer=root, extra=[(_nc([x509.DNSName("example.com")]), True)])
    for variant, inter, cn, dns, ips, name in (
        ("excluded-cn-ip-san", local, "test.localhost", (), ("127.0.0.1",), "127.0.0.1"),
        ("excluded-cn-ipv6-san", local, "localhost", (), ("::1",), "::1"),
        ("excluded-cn-dns-san", local, "test.localhost", ("www.example.com",), (),
         "www.example.com"),
        ("permitted-cn-outside-ip-san", permit, "evil.example.org", (), ("192.0.2.1",),
         "192.0.2.1"),
        ("permitted-cn-outside-no-san", permit, "evil.example.org", (), (), None),
        ("permitted-cn-outside-dns-san", permit, "evil.example.org", ("www.example.com",), (),
         "www.example.com"),
    ):
        lf = _cert(cn, issuer=inter, dns=dns, ips=ips)
        c.add(rule, variant, [lf, inter], [root], True, server_name=name)
    p = _PKI("cn")
    for variant, cn, dns, name in (
        ("name-in-cn-only", HOST, (), HOST),
        ("name-in-cn-not-san", HOST, ("other.example",), HOST),
        ("ip-in-cn-only", "192.0.2.1", (), "192.0.2.1"),
    ):
        c.add(rule, variant, [_cert(cn, issuer=p.inter, dns=dns), p.inter], [p.root], False,
              server_name=name)


def _path_building(c: _Cases) -> None:
    """Several candidate issuers: the one OpenSSL's chain builder takes, on every backend.

    OpenSSL builds one path: at each step an anchor first, else the certificates
    as sent, keeping the candidates whose subject is the issuer's name, whose
    subjectKeyIdentifier is the authorityKeyIdentifier (when both exist) and
    whose key type fits the signature, and of those the first valid at the
    verification time (else the one that expired last).  It never comes back
    to try another candidate once a later rule fails, and Python's ``ssl``
    (the stdlib backend) cannot make it: so no backend does (every backend
    gives one verdict), and these cases pin what that path is.
    """
    rule = "path-building"
    root = _cert("pb Root", key_kind="rsa2048", slot=1, ca=True)
    inter = _cert("pb Inter", key_kind="rsa2048", slot=2, ca=True, issuer=root)
    leaf = _cert(HOST, issuer=inter, dns=(HOST,))
    other_key = _cert("pb Inter", key_kind="rsa2048", slot=3, ca=True, issuer=root)
    c.add(rule, "same-subject-other-key-first", [leaf, other_key, inter], [root], True)
    c.add(rule, "same-subject-other-key-only", [leaf, other_key], [root], False)
    old = _cert("pb Inter", key_kind="rsa2048", slot=2, ca=True, issuer=root,
                not_before=NB - 400 * DAY, not_after=NB - DAY)
    c.add(rule, "same-key-expired-first", [leaf, old, inter], [root], True)
    c.add(rule, "same-key-expired-last", [leaf, inter, old], [root], True)
    c.add(rule, "same-key-expired-only", [leaf, old], [root], False)
    older = _cert("pb Inter", key_kind="rsa2048", slot=2, ca=True, issuer=root,
                  not_before=NB - 800 * DAY, not_after=NB - 400 * DAY)
    c.add(rule, "same-key-both-expired", [leaf, older, old], [root], False)
    old_root = _cert("pb Root", key_kind="rsa2048", slot=1, ca=True,
                     not_before=NB - 400 * DAY, not_after=NB - DAY)
    c.add(rule, "anchors-same-key-expired-first", [leaf, inter], [old_root, root], True)
    c.add(rule, "anchors-same-key-expired-only", [leaf, inter], [old_root], False)
    # the "chain of pain": an expired cross-certificate of the trusted root is sent along
    root2 = _cert("pb Root Two", key_kind="rsa2048", slot=4, ca=True)
    cross = _cert("pb Root", key_kind="rsa2048", slot=1, ca=True, issuer=root2,
                  not_before=NB - 400 * DAY, not_after=NB - DAY)
    c.add(rule, "expired-cross-certificate-sent", [leaf, inter, cross], [root, root2], True)
    c.add(rule, "expired-cross-certificate-only-path", [leaf, inter, cross], [root2], False)
    # the same intermediate certified by an unknown root and by the trusted one
    stranger = _cert("pb Stranger Root", key_kind="rsa2048", slot=5, ca=True)
    by_stranger = _cert("pb Inter", key_kind="rsa2048", slot=2, ca=True, issuer=stranger)
    c.add(rule, "cross-signed-trusted-first", [leaf, inter, by_stranger], [root], True)
    c.add(rule, "cross-signed-untrusted-first", [leaf, by_stranger, inter], [root], False)
    # candidates alike but for their constraints: the first one decides
    excluded = _cert("pb Inter", key_kind="rsa2048", slot=2, ca=True, issuer=root,
                     name_constraints=x509.NameConstraints(None, [x509.DNSName(HOST)]))
    c.add(rule, "constrained-candidate-first", [leaf, excluded, inter], [root], False)
    c.add(rule, "constrained-candidate-last", [leaf, inter, excluded], [root], True)
    inter1 = _cert("pb Upper", key_kind="rsa2048", slot=6, ca=True, issuer=root)
    inter1_len0 = _cert("pb Upper", key_kind="rsa2048", slot=6, ca=True, issuer=root,
                        path_length=0)
    inter2 = _cert("pb Lower", key_kind="rsa2048", slot=7, ca=True, issuer=inter1)
    low_leaf = _cert(HOST, issuer=inter2, dns=(HOST,))
    c.add(rule, "path-length-candidate-first", [low_leaf, inter2, inter1_len0, inter1], [root],
          False)
    c.add(rule, "path-length-candidate-last", [low_leaf, inter2, inter1, inter1_len0], [root],
          True)


GENERATORS: tuple[Callable[[_Cases], None], ...] = (
    _good, _validity, _ca_flag, _path_len, _key_usage, _eku, _names, _critical, _malformed,
    _signatures, _chains, _anchors, _weak, _structure, _anchor_strength, _name_constraints,
    _common_name, _path_building,
)


@functools.lru_cache(maxsize=8)
def cases(ref: dt.datetime = REF) -> tuple[PathCase, ...]:
    """Every case, generated once per process and ``ref`` (a second or two, mostly RSA keys).

    ``ref`` is the moment the battery is built around (the :data:`REF` every
    generator reads, with :data:`NB` and :data:`NA`).  They are rebound while
    the generators run, so every date a case derives from them moves with it:
    the same cases, the same verdicts, judged at another moment.
    """
    global REF, NB, NA
    saved = REF, NB, NA
    REF, NB, NA = ref, ref - (saved[0] - saved[1]), ref + (saved[2] - saved[0])
    try:
        c = _Cases()
        for gen in GENERATORS:
            gen(c)
    finally:
        REF, NB, NA = saved
    names = [x.name for x in c.out]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise AssertionError(f"duplicate case names: {sorted(dupes)}")
    return tuple(c.out)
