"""The reason table (tlsc.reasons) and the error classes that carry it (tlsc.session)."""

from __future__ import annotations

import pytest

from tlsc.reasons import ALERT_NAMES, Reason, alert_name, describe, not_valid_for, words
from tlsc.session import (
    AlertReceived,
    ProtocolError,
    TLSError,
    Truncated,
    VerificationError,
    WriteClosed,
)


def test_words_then_detail() -> None:
    e = VerificationError(Reason.NAME_MISMATCH, not_valid_for("host.example"))
    assert e.reason is Reason.NAME_MISMATCH
    assert e.detail == "not valid for 'host.example'"
    assert str(e) == "certificate name mismatch: not valid for 'host.example'"
    assert str(VerificationError(Reason.EXPIRED)) == "certificate has expired"


def test_the_core_words_the_role() -> None:
    """A backend states the fact; tlsc says "the server", tlsd "the client"."""
    e = AlertReceived(Reason.ALERT, alert_name("certificate required"))
    assert describe(e, "server") == "the server sent a fatal alert: certificate_required"
    assert describe(e, "client") == "the client sent a fatal alert: certificate_required"
    assert str(e) == "the peer sent a fatal alert: certificate_required"
    assert describe(Truncated(Reason.TRUNCATED), "client") == (
        "the client closed the connection without close_notify"
    )


@pytest.mark.parametrize(
    ("cls", "reason"),
    [
        (TLSError, Reason.FAILURE),
        (VerificationError, Reason.INVALID_CERTIFICATE),
        (AlertReceived, Reason.ALERT),
        (ProtocolError, Reason.PROTOCOL),
        (Truncated, Reason.TRUNCATED),
        (WriteClosed, Reason.WRITE_CLOSED),
    ],
)
def test_a_plain_string_is_the_detail_of_the_class_reason(cls: type[TLSError], reason) -> None:
    """Third-party backends written before the table: the words are still the core's."""
    e = cls("something the library said")
    assert e.reason is reason
    assert e.detail == "something the library said"
    assert describe(e, "server") == f"{reason.words('server')}: something the library said"


def test_describe_of_a_foreign_exception_is_its_text() -> None:
    assert describe(ValueError("x"), "server") == "x"


def test_every_member_has_distinct_words_and_only_a_peer_placeholder() -> None:
    seen = set()
    for member in Reason:
        text = member.words("server")
        assert "{" not in text and text not in seen, member
        seen.add(text)
    assert words(Reason.TIMEOUT) == "handshake timed out"


@pytest.mark.parametrize(
    ("given", "name"),
    [
        (116, "certificate_required"),
        ("certificate required", "certificate_required"),  # OpenSSL, after "tlsv13 alert"
        ("tlsv13 alert certificate required", "certificate_required"),
        ("sslv3 alert bad certificate", "bad_certificate"),
        ("unknown ca", "unknown_ca"),
        ("unrecognized name", "unrecognized_name"),
        ("handshake_failure", "handshake_failure"),  # tlslite-ng's spelling already
        ("user cancelled", "user_canceled"),
        (250, "alert 250"),
    ],
)
def test_one_spelling_of_an_alert(given: int | str, name: str) -> None:
    assert alert_name(given) == name


def test_alert_names_are_rfc_names() -> None:
    assert ALERT_NAMES[20] == "bad_record_mac"
    assert all(n == n.lower() and " " not in n for n in ALERT_NAMES.values())


def test_openssl_words_are_mapped_once() -> None:
    """The two backends built on OpenSSL read its codes and reason strings through here."""
    from tlsc.reasons import openssl_failure, openssl_verify_error

    assert openssl_failure("sslv3 alert bad certificate") == (Reason.ALERT, "bad_certificate")
    assert openssl_failure("tls alert certificate required") == (
        Reason.ALERT, "certificate_required")
    assert openssl_failure("tlsv1 unrecognized name") == (Reason.ALERT, "unrecognized_name")
    assert openssl_failure("decryption failed or bad record mac")[0] is Reason.BAD_RECORD
    assert openssl_failure("wrong version number") == (Reason.PROTOCOL, "wrong version number")
    assert openssl_verify_error(10) == (Reason.EXPIRED, None)
    assert openssl_verify_error(20) == (Reason.UNKNOWN_CA, "unable to get local issuer certificate")
    assert openssl_verify_error(999, "odd") == (Reason.INVALID_CERTIFICATE, "odd")


def test_reason_behaves_as_the_enum_it_stands_for() -> None:
    """Reason is not built by ``enum`` (start-up cost), but does what an Enum of it would."""
    import copy
    import enum
    import pickle

    as_enum = enum.Enum("Reason", [(m.name, m.value) for m in Reason])
    assert [(m.name, m.value) for m in Reason] == [(m.name, m.value) for m in as_enum]
    assert len(Reason) == len(as_enum) > 20
    for member, twin in zip(Reason, as_enum, strict=True):
        assert isinstance(member, Reason)
        assert (repr(member), str(member)) == (repr(twin), str(twin))
        assert Reason[member.name] is member and Reason(member.value) is member
        assert Reason(member) is member
        assert pickle.loads(pickle.dumps(member)) is member
        assert copy.copy(member) is member and copy.deepcopy(member) is member
        assert member == member and hash(member) == hash(member)
    assert Reason.EXPIRED != Reason.NOT_YET_VALID
    assert Reason.EXPIRED != "certificate has expired"  # a member is not its value
    with pytest.raises(KeyError):
        Reason["words"]
    with pytest.raises(ValueError, match="is not a valid Reason"):
        Reason("no such words")
    with pytest.raises(ValueError):
        Reason([])  # unhashable: not a valid value either
    with pytest.raises(AttributeError):
        Reason.EXPIRED = Reason.TIMEOUT  # type: ignore[misc]
    with pytest.raises(AttributeError):
        Reason.EXPIRED.value = "other words"  # type: ignore[misc]
    assert Reason.ALERT.words("client") == "the client sent a fatal alert"
