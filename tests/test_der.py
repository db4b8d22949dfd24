"""tlsc.der, the core's one DER reader, against what ``cryptography`` says of the same bytes."""

from __future__ import annotations

import datetime as dt
import ipaddress

import pytest
from cryptography.hazmat.primitives import serialization

from tlsc import der
from tlsc.der import (
    DERError,
    certificate_fields,
    private_key_label,
    subject_alt_names,
    subject_rfc4514,
)
from tlsc.testing import certs

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
SPAN = {"not_before": NOW - certs.DAY, "not_after": NOW + certs.DAY}
ALGORITHMS = {
    "rsa2048": "1.2.840.113549.1.1.1",
    "p256": "1.2.840.10045.2.1",
    "ed25519": "1.3.101.112",
    "dsa2048": "1.2.840.10040.4.1",
}


@pytest.mark.parametrize("kind", sorted(ALGORITHMS))
def test_certificate_fields(kind: str) -> None:
    root = certs.issue("Der Root", key_kind="p256", slot=61, ca=True, **SPAN)
    leaf = certs.issue("der.example", key_kind=kind, slot=62, issuer=root,
                       dns=("der.example", "*.der.example"), ips=("192.0.2.7", "2001:db8::7"),
                       extra=[(certs.unknown_extension(), True)], **SPAN)
    f = certificate_fields(leaf.der)
    assert f.key_algorithm == ALGORITHMS[kind]
    assert f.issuer == root.cert.subject.public_bytes() == certificate_fields(root.der).subject
    assert f.subject == leaf.cert.subject.public_bytes()
    for ext in leaf.cert.extensions:
        critical, value = f.extensions[ext.oid.dotted_string]
        assert critical == ext.critical and value == ext.value.public_bytes()
    dns, ips = subject_alt_names(f)
    assert dns == ["der.example", "*.der.example"]
    assert [ipaddress.ip_address(a) for a in ips] == [
        ipaddress.ip_address("192.0.2.7"), ipaddress.ip_address("2001:db8::7")]


def test_no_subject_alt_name() -> None:
    c = certs.issue("no san", key_kind="p256", slot=62, **SPAN)
    assert subject_alt_names(certificate_fields(c.der)) == ([], [])


def _elements(data: bytes, start: int, end: int) -> list[bytes]:
    """The whole elements (header included) one after another from ``start`` to ``end``."""
    out = []
    while start < end:
        stop = der._tlv(data, start)[2]
        out.append(data[start:stop])
        start = stop
    return out


def _inside(element: bytes) -> tuple[int, int]:
    _, s, e = der._tlv(element, 0)
    return s, e


def test_extension_twice_is_refused() -> None:
    leaf = certs.issue("der.example", key_kind="p256", slot=62, dns=("a.example",), **SPAN)
    tbs, alg, sig = _elements(leaf.der, *_inside(leaf.der))
    fields = _elements(tbs, *_inside(tbs))
    wrapper = fields[-1]
    (sequence,) = _elements(wrapper, *_inside(wrapper))
    extensions = _elements(sequence, *_inside(sequence))
    doubled = [extensions[0], *extensions]
    fields[-1] = certs.der_tlv(0xA3, certs.der_tlv(0x30, b"".join(doubled)))
    bad = certs.der_tlv(0x30, certs.der_tlv(0x30, b"".join(fields)) + alg + sig)
    assert certificate_fields(leaf.der)  # the original reads
    with pytest.raises(DERError, match="twice"):
        certificate_fields(bad)


def test_not_a_certificate() -> None:
    for junk in (b"", b"\x30\x03\x02\x01\x00", b"\x30\x82\x01\x00" + b"\xa5" * 40):
        with pytest.raises(DERError):
            certificate_fields(junk)


@pytest.mark.parametrize("cn", ["plain.example", "A, B + C", " #host ", "caf\u00e9"])
def test_subject_rendering(cn: str) -> None:
    c = certs.issue(cn, key_kind="p256", slot=62, **SPAN)
    assert subject_rfc4514(c.der) == c.cert.subject.rfc4514_string()


@pytest.mark.parametrize(("kind", "fmt", "label"), [
    ("p256", "PKCS8", "PRIVATE KEY"),
    ("p256", "TraditionalOpenSSL", "EC PRIVATE KEY"),
    ("rsa2048", "TraditionalOpenSSL", "RSA PRIVATE KEY"),
    ("rsa2048", "PKCS8", "PRIVATE KEY"),
    ("ed25519", "PKCS8", "PRIVATE KEY"),
])
def test_private_key_label(kind: str, fmt: str, label: str) -> None:
    key = certs.key(kind, 63)
    der = key.private_bytes(serialization.Encoding.DER,
                            getattr(serialization.PrivateFormat, fmt),
                            serialization.NoEncryption())
    assert private_key_label(der) == label


def test_private_key_label_encrypted_and_junk() -> None:
    key = certs.key("p256", 63)
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.BestAvailableEncryption(b"pw"))
    assert private_key_label(der) == "ENCRYPTED PRIVATE KEY"
    for junk in (b"", b"\x30\x03\x02\x01\x00", b"not der at all"):
        with pytest.raises(DERError):
            private_key_label(junk)


def test_pem_blocks_are_found_as_the_armour_pattern_finds_them() -> None:
    """tlsc.der finds PEM blocks with ``bytes.find``; it finds what the armour's regex finds.

    The regex is the rule (a BEGIN line of one of three labels, a body with no
    dash, an END of one of the three); the hand-written scan replaced it to
    spare every start its compilation.  Inputs are built from the pieces
    where the two could part: markers of every label, truncated markers,
    dashes, bodies, nothing between blocks.
    """
    import re

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from tlsc.der import _pem_bodies

    armour = re.compile(
        rb"-----BEGIN (?:X509 |TRUSTED )?CERTIFICATE-----([^-]*)"
        rb"-----END (?:X509 |TRUSTED )?CERTIFICATE-----"
    )
    labels = [b"", b"X509 ", b"TRUSTED ", b"RSA ", b"X509"]
    markers = [
        b"-----" + w + b" " + k + b"CERTIFICATE-----" for w in (b"BEGIN", b"END") for k in labels
    ]
    pieces = st.sampled_from(
        [*markers, *(m[:-2] for m in markers), b"-", b"--", b"-----", b"QUJD", b"\n", b"x"]
    )

    @settings(max_examples=3000, deadline=None)
    @given(st.lists(pieces, max_size=12).map(b"".join))
    def check(data: bytes) -> None:
        assert list(_pem_bodies(data)) == armour.findall(data), data

    check()
