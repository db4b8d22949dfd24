"""Trust anchors as users give them: many, in files of any name, looked up by name.

A system trust store (``CAFILE=/etc/ssl/certs/ca-certificates.crt``,
``CADIR=/etc/ssl/certs``) holds ~140 anchors, read on every connection, of
which a handshake needs one or two.  The core reads each distinct anchor once
and indexes it by subject name (:mod:`tlsc.anchors`); backends that can see
the chain before verifying it parse only the anchors it names.  Whatever a
backend does, the verification verdicts must not change: the first half
of this file checks the index itself, the second half real ``tlsc`` runs
against ``openssl s_server`` with every installed backend.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import run as runmod
from tests.support.peers import SServer
from tlsc.anchors import TrustAnchors
from tlsc.der import DERError, name_key, tbs_names
from tlsc.session import ClientConfig
from tlsc.testing import certs
from tlsc.testing.certs import der_tlv

NOW = dt.datetime.now(dt.timezone.utc)
WHEN = {"not_before": NOW - certs.DAY, "not_after": NOW + 30 * certs.DAY}
SYSTEM_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def pem(der: bytes) -> bytes:
    body = base64.encodebytes(der)
    return b"-----BEGIN CERTIFICATE-----\n" + body + b"-----END CERTIFICATE-----\n"


# -- names: compared as OpenSSL compares them ------------------------------------------

CN = bytes.fromhex("550403")  # commonName
O_ = bytes.fromhex("55040a")  # organizationName


def name(*rdns: list[tuple[bytes, int, bytes]]) -> bytes:
    """A Name's DER: each RDN a list of (OID content, string tag, value)."""
    return der_tlv(
        0x30,
        b"".join(
            der_tlv(
                0x31,
                b"".join(der_tlv(0x30, der_tlv(0x06, o) + der_tlv(t, v)) for o, t, v in rdn),
            )
            for rdn in rdns
        ),
    )


PRINTABLE, UTF8, IA5, BMP, NUMERIC = 0x13, 0x0C, 0x16, 0x1E, 0x12


@pytest.mark.parametrize(
    "other",
    [
        name([(O_, UTF8, b"Example")], [(CN, UTF8, b"Root CA")]),  # another string type
        name([(O_, PRINTABLE, b"EXAMPLE")], [(CN, PRINTABLE, b"root ca")]),  # ASCII case
        name([(O_, PRINTABLE, b" Example ")], [(CN, PRINTABLE, b"Root \t  CA")]),  # blanks
        name([(O_, BMP, "Example".encode("utf-16-be"))], [(CN, IA5, b"Root CA")]),
    ],
    ids=["string type", "case", "white space", "BMPString"],
)
def test_names_equal_as_openssl_sees_them(other: bytes) -> None:
    ours = name([(O_, PRINTABLE, b"Example")], [(CN, PRINTABLE, b"Root CA")])
    assert name_key(ours) == name_key(other)


@pytest.mark.parametrize(
    "other",
    [
        name([(O_, PRINTABLE, b"Example")], [(CN, PRINTABLE, b"Root CB")]),
        name([(CN, PRINTABLE, b"Root CA")], [(O_, PRINTABLE, b"Example")]),  # RDN order
        name([(O_, PRINTABLE, b"Example"), (CN, PRINTABLE, b"Root CA")]),  # one RDN of two
        name([(O_, PRINTABLE, b"Example")], [(CN, PRINTABLE, b"RootCA")]),  # a blank less
        name([(O_, UTF8, "Exämple".encode())], [(CN, UTF8, b"Root CA")]),
    ],
    ids=["value", "RDN order", "multi-valued RDN", "blank removed", "non-ASCII"],
)
def test_names_different_as_openssl_sees_them(other: bytes) -> None:
    ours = name([(O_, PRINTABLE, b"Example")], [(CN, PRINTABLE, b"Root CA")])
    assert name_key(ours) != name_key(other)


def test_name_details() -> None:
    # The attributes of one RDN in any order; a NumericString is not canonicalised.
    a = name([(O_, PRINTABLE, b"x"), (CN, PRINTABLE, b"y")])
    assert name_key(a) == name_key(name([(CN, PRINTABLE, b"Y"), (O_, UTF8, b"X")]))
    n = name([(CN, NUMERIC, b"12 34")])
    assert name_key(n) != name_key(name([(CN, NUMERIC, b"12  34")]))
    for bad in (b"", b"\x31\x00", der_tlv(0x30, der_tlv(0x31, der_tlv(0x30, b"\x06\x00")))):
        with pytest.raises(DERError):
            name_key(bad)


# -- the index -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def issued() -> dict[str, certs.Issued]:
    root = certs.issue("anchors root", ca=True, **WHEN)
    # The same subject as root, another key: a CA re-keyed under its old name.
    rekeyed = certs.issue("anchors root", ca=True, slot=7, **WHEN)
    inter = certs.issue("anchors intermediate", ca=True, issuer=root, slot=1, **WHEN)
    leaf = certs.issue("localhost", issuer=inter, dns=["localhost"], slot=2, **WHEN)
    # A root that cross-signed ours: an anchor above an anchor.
    top = certs.issue("anchors top", ca=True, slot=3, **WHEN)
    cross = certs.issue("anchors root", ca=True, issuer=top, **WHEN)
    return {"root": root, "rekeyed": rekeyed, "inter": inter, "leaf": leaf, "top": top,
            "cross": cross}


@pytest.fixture(scope="module")
def unrelated() -> list[certs.Issued]:
    """Forty CAs no chain of ours names (one key for all: keys are the slow part)."""
    return [certs.issue(f"unrelated CA {i}", ca=True, slot=9, **WHEN) for i in range(40)]


def test_index_finds_issuers_by_name(issued, unrelated) -> None:
    anchors = TrustAnchors([(f"u{i}", u.der) for i, u in enumerate(unrelated)])
    assert anchors.add("root", issued["root"].der)
    assert anchors.add("rekeyed", issued["rekeyed"].der)
    # Both candidates of the same name, in the order given: a verifier tries each.
    assert anchors.issuers_of(issued["inter"].der) == [
        ("root", issued["root"].der),
        ("rekeyed", issued["rekeyed"].der),
    ]
    assert anchors.issuers_of(issued["leaf"].der) == []  # the intermediate is no anchor
    assert anchors.with_subject_of(issued["root"].der) == anchors.issuers_of(issued["inter"].der)
    assert anchors.issuers_of(b"not a certificate") == []


def test_for_chain_is_what_a_path_builder_can_reach(issued, unrelated) -> None:
    anchors = TrustAnchors([(f"u{i}", u.der) for i, u in enumerate(unrelated)])
    for k in ("top", "cross", "root"):
        anchors.add(k, issued[k].der)
    chain = [issued["leaf"].der, issued["inter"].der]
    # root and its cross-signed twin are named by inter; top issued the twin.
    assert {o for o, _ in anchors.for_chain(chain)} == {"root", "cross", "top"}
    assert anchors.for_chain([issued["leaf"].der]) == []
    assert {o for o, _ in anchors.for_chain([unrelated[3].der])} == {"u3"}


def test_distinct_anchors_once_non_certificates_refused(issued) -> None:
    anchors = TrustAnchors()
    assert anchors.add("a", issued["root"].der)
    assert anchors.add("b", issued["root"].der)  # the same certificate again: kept once
    assert not anchors.add("junk", b"junk")
    assert not anchors.add("pem", pem(issued["root"].der))  # the core decodes PEM first
    assert list(anchors) == [("a", issued["root"].der)]
    # Backends get one, whatever sequence of pairs a config was given.
    config = ClientConfig(anchors=[("x", issued["inter"].der), ("y", issued["inter"].der)])
    assert isinstance(config.anchors, TrustAnchors) and len(config.anchors) == 1
    assert tbs_names(issued["inter"].der)[0] == tbs_names(issued["root"].der)[1]


# -- real runs, every installed backend ------------------------------------------------


@pytest.fixture(scope="module")
def server(issued, tmp_path_factory) -> Iterator[SServer]:
    """``openssl s_server -rev`` for localhost, sending leaf and intermediate."""
    d = tmp_path_factory.mktemp("anchors-server")
    (d / "leaf.pem").write_bytes(issued["leaf"].pem)
    (d / "leaf.key").write_bytes(issued["leaf"].key_pem())
    (d / "chain.pem").write_bytes(issued["inter"].pem)
    s = SServer(cert=d / "leaf.pem", key=d / "leaf.key", chain=d / "chain.pem")
    yield s
    s.stop()


def run(backend: str, server: SServer, env: dict, *opts: str) -> runmod.Result:
    prog = ["sh", "-c", 'echo hello >&7; read -r line <&6; echo "$line"']
    return runmod.run(
        ["--backend", backend, *opts, "-k", "localhost", "--", *prog],
        peer=server.address,
        env={"CADIR": None, "CAFILE": None, **env},
    )


def ok(r: runmod.Result) -> None:
    r.assert_ok()
    assert r.stdout == "olleh\n", r.describe()


def cadir(d: Path, files: dict[str, bytes]) -> Path:
    d.mkdir()
    for name, data in files.items():
        (d / name).write_bytes(data)
    return d


def test_cadir_of_many_files_of_any_name(backend, server, issued, unrelated, tmp_path) -> None:
    """Like /etc/ssl/certs: files, a bundle of them all, hash links, a README."""
    files = {f"unrelated {i}.pem": pem(u.der) for i, u in enumerate(unrelated)}
    files["root, as DER"] = issued["root"].der
    files["ca-bundle.crt"] = b"".join(pem(u.der) for u in unrelated[:20]) + pem(
        issued["root"].der
    ) + b"".join(pem(u.der) for u in unrelated[20:])
    files["README"] = b"This directory holds trust anchors.\n"
    d = cadir(tmp_path / "certs", files)
    os.symlink("root, as DER", d / "0a1b2c3d.0")
    (d / "subdir").mkdir()
    r = run(backend, server, {"CADIR": d}, "-v", "2")
    ok(r)
    assert r.warnings == [], r.describe()
    assert [ln for ln in r.infos if "no certificate" in ln] == [
        f"tlsc: info: skipping {d}/README: no certificate in it"
    ]


def test_cafile_bundle_with_the_system_store(backend, server, issued, unrelated, tmp_path):
    """The user's real bundle (when there is one) with ours in the middle of strangers."""
    system = SYSTEM_BUNDLE.read_bytes() if SYSTEM_BUNDLE.exists() else b""
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(
        system + b"".join(pem(u.der) for u in unrelated) + pem(issued["root"].der)
    )
    ok(run(backend, server, {"CAFILE": bundle}))
    bundle.write_bytes(system + b"".join(pem(u.der) for u in unrelated))
    r = run(backend, server, {"CAFILE": bundle})
    r.assert_fatal(98, r"unknown|issuer|anchor")


def test_duplicate_subjects_with_different_keys(backend, server, issued, tmp_path) -> None:
    """The wrong key comes first (file order): the right one must still be tried."""
    both = cadir(tmp_path / "both", {"a-rekeyed.pem": issued["rekeyed"].pem,
                                     "b-root.pem": issued["root"].pem})
    ok(run(backend, server, {"CADIR": both}))
    wrong = cadir(tmp_path / "wrong", {"a-rekeyed.pem": issued["rekeyed"].pem})
    r = run(backend, server, {"CADIR": wrong})
    r.assert_fatal(98, r"signature|unknown|issuer|anchor")


@pytest.mark.parametrize("anchor", ["inter", "leaf"])
def test_partial_chain_among_many(backend, server, issued, unrelated, anchor, tmp_path) -> None:
    """The anchor is the intermediate, or the leaf itself: the chain ends there."""
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(b"".join(pem(u.der) for u in unrelated) + issued[anchor].pem)
    ok(run(backend, server, {"CAFILE": bundle}))


def test_pem_block_that_is_not_a_certificate(backend, server, issued, tmp_path) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(pem(b"\x30\x03\x02\x01\x00") + pem(issued["root"].der))
    r = run(backend, server, {"CAFILE": bundle})
    ok(r)
    assert r.warnings == [f"tlsc: warning: {bundle}: not a certificate, skipped"], r.describe()


def test_no_usable_anchor_at_all(backend, server, tmp_path) -> None:
    d = cadir(tmp_path / "junk", {"README": b"nothing here\n",
                                  "junk.pem": pem(b"\x30\x03\x02\x01\x00")})
    run(backend, server, {"CADIR": d}).assert_fatal(96, r"no usable certificate")


# -- the look-up's byte-wise shortcut never loses a match --------------------------------

ENCODINGS = {
    UTF8: lambda s: s.encode("utf-8"),
    PRINTABLE: lambda s: s.encode("latin-1"),
    IA5: lambda s: s.encode("latin-1"),
    0x14: lambda s: s.encode("latin-1"),  # T61String, read as Latin-1
    BMP: lambda s: s.encode("utf-16-be"),
    0x1C: lambda s: s.encode("utf-32-be"),  # UniversalString
    NUMERIC: lambda s: s.encode("latin-1"),  # compared as it is
}
OIDS = [CN, O_, bytes.fromhex("550406")]


def fake_certificate(subject: bytes) -> bytes:
    """Just the outline tlsc.der.tbs_names reads, with ``subject`` as issuer and subject."""
    tbs = der_tlv(
        0x30,
        der_tlv(0x02, b"\x01")
        + der_tlv(0x30, b"")
        + subject
        + der_tlv(0x30, b"")
        + subject
        + der_tlv(0x30, b""),
    )
    return der_tlv(0x30, tbs + der_tlv(0x30, b"") + der_tlv(0x03, b"\x00"))


def spellings(draw, text: str) -> tuple[int, bytes]:
    """One way to write ``text`` in a Name: a string type, ASCII case, blanks."""
    from hypothesis import strategies as st

    if draw(st.booleans()):
        text = "".join(c.swapcase() if draw(st.booleans()) else c for c in text)
    if draw(st.booleans()):
        text = draw(st.sampled_from([" ", "\t", "  "])).join(text.split(" "))
        text = draw(st.sampled_from(["", " "])) + text + draw(st.sampled_from(["", "  "]))
    tag = draw(st.sampled_from(sorted(ENCODINGS)))
    return tag, ENCODINGS[tag](text)


def test_look_up_finds_what_canonical_comparison_finds() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    values = st.text(alphabet="aBc Zä1", min_size=1, max_size=8)
    shapes = st.lists(
        st.lists(st.tuples(st.sampled_from(OIDS), values), min_size=1, max_size=2),
        min_size=1,
        max_size=3,
    )

    @st.composite
    def written(draw, shape):
        return name(*[[(o, *spellings(draw, v)) for o, v in rdn] for rdn in shape])

    @given(st.data(), st.lists(shapes, min_size=1, max_size=4))
    @settings(max_examples=300, deadline=None)
    def check(data, shape_list):
        # Several spellings of a few names: some equal to the wanted one, most not.
        subjects = [data.draw(written(s)) for s in shape_list for _ in range(3)]
        anchors = TrustAnchors()
        for i, subject in enumerate(subjects):
            anchors.add(f"a{i}", fake_certificate(subject))
        wanted = data.draw(written(data.draw(st.sampled_from(shape_list))))
        try:
            key = name_key(wanted)
        except DERError:
            assert anchors.with_subject(wanted) == []
            return
        expected = []
        for origin, der in anchors:
            try:
                if name_key(tbs_names(der)[1]) == key:
                    expected.append((origin, der))
            except DERError:
                pass
        assert anchors.with_subject(wanted) == expected

    check()


def test_no_codec_is_imported_by_a_look_up() -> None:
    """After TLS_UID/TLS_GID the Python library may be unreadable: a codec looked up by
    name then fails (LookupError), so names are compared without importing any."""
    import subprocess
    import sys

    bmp = name([(O_, BMP, "Example".encode("utf-16-be"))], [(CN, 0x1C, "CA".encode("utf-32-be"))])
    code = f"""
import sys
from tlsc.anchors import _words
from tlsc.der import name_key
bmp = {bmp!r}
_words(name_key(bmp))
print(sorted(m for m in sys.modules if m.startswith("encodings.")))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    imported = set(eval(out.stdout))  # noqa: S307 - our own subprocess's list of names
    assert not imported - {"encodings.aliases", "encodings.utf_8"}, imported


def test_no_form_of_a_word_holds_a_blank() -> None:
    """The look-up searches every subject at once, joined by blanks: no word may hold one,
    or an occurrence could run from one subject into the next."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from tlsc.anchors import _words

    values = st.text(alphabet=" \t\n\r\x0b\x0cAb1ä\x00 ", min_size=1, max_size=12)

    @given(st.lists(st.tuples(st.sampled_from(sorted(ENCODINGS)), values), min_size=1))
    @settings(max_examples=200, deadline=None)
    def check(attrs):
        written = name(*[[(CN, tag, ENCODINGS[tag](text))] for tag, text in attrs])
        try:
            key = name_key(written)
        except DERError:
            return
        for forms in _words(key):
            assert all(b" " not in form for form in forms), forms

    check()
