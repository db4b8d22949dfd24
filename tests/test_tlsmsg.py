"""The Certificate message as both OpenSSL backends' message callbacks see it (tlsc.tlsmsg)."""

from __future__ import annotations

import pytest

from tlsc.anchors import TrustAnchors
from tlsc.testing import certs
from tlsc.tlsmsg import AnchorsOnDemand, MessageError, certificates_in_message, vector


def vec(b: bytes, w: int) -> bytes:
    return len(b).to_bytes(w, "big") + b


@pytest.fixture(scope="module")
def ders() -> list[bytes]:
    return certs.chain("tlsmsg.test").ders


def test_certificate_message_tls12_and_tls13(ders: list[bytes]) -> None:
    tls12 = b"".join(vec(d, 3) for d in ders)
    tls13 = b"".join(vec(d, 3) + vec(b"", 2) for d in ders)
    assert certificates_in_message(b"\x0b" + vec(vec(tls12, 3), 3), 0x0303) == ders
    assert certificates_in_message(b"\x0b" + vec(b"\x00" + vec(tls13, 3), 3), 0x0304) == ders
    # TLS 1.3: a request context (a client's answer to a CertificateRequest), an extension.
    tls13 = vec(ders[0], 3) + vec(b"\x00\x05\x00\x00", 2)
    assert certificates_in_message(b"\x0b" + vec(vec(b"ctx", 1) + vec(tls13, 3), 3),
                                   0x0304) == ders[:1]
    # No certificate at all (a client without one) is an empty chain, not an error.
    assert certificates_in_message(b"\x0b" + vec(vec(b"", 3), 3), 0x0303) == []


@pytest.mark.parametrize(("message", "words"), [
    (b"\x0b" + vec(vec(vec(b"x" * 10, 3), 3)[:-1], 3), "truncated Certificate message"),
    (b"\x0b\x00\x00", "truncated Certificate message"),
    (b"\x0b" + vec(vec(b"", 3) + b"!", 3), "trailing bytes in the Certificate message"),
    (b"\x0b" + vec(vec(b"", 3), 3) + b"!", "not a Certificate message"),
    (b"\x0c" + vec(vec(b"", 3), 3), "not a Certificate message"),
])
def test_malformed_certificate_messages(message: bytes, words: str) -> None:
    with pytest.raises(MessageError, match=f"^{words}$"):
        certificates_in_message(message, 0x0303)


def test_vector() -> None:
    assert vector(b"\x00\x02ab!", 0, 2) == (b"ab", 4)
    with pytest.raises(MessageError, match="^truncated ClientHello$"):
        vector(b"\x00\x03ab", 0, 2, "ClientHello")


def test_on_demand_hands_out_each_anchor_once() -> None:
    """What a backend filling its store as chains arrive is given: each anchor once."""
    chain = certs.chain("tlsmsg.test")
    when = {"not_before": chain.root.cert.not_valid_before_utc,
            "not_after": chain.root.cert.not_valid_after_utc}
    strangers = [certs.issue(f"stranger {i}", ca=True, slot=9, **when) for i in range(3)]
    anchors = TrustAnchors([(f"s{i}", s.der) for i, s in enumerate(strangers)])
    anchors.add("root", chain.root.der)
    pending = AnchorsOnDemand(anchors)
    assert pending.take_for(chain.ders) == [("root", chain.root.der)]
    assert pending.take_for(chain.ders) == []  # the next connection: in the store already
    # An unreadable chain (None): every anchor not given yet.
    assert [o for o, _ in pending.take_for(None)] == ["s0", "s1", "s2"]
    assert pending.take_for(None) == pending.take_for([strangers[1].der]) == []
