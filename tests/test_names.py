"""One place decides what a name is (tlsc.names): the -k check, the SNI sent, tlsclient.

``[::1]`` and ``[127.0.0.1]`` are neither a DNS name nor an IP address: a usage
error (100, one line, nothing else printed, prog never run), never a name that
passes the check and is then sent as SNI.
"""

from __future__ import annotations

import pytest

from tests.support import run as runmod
from tests.support.cases import write_pki
from tests.support.pair import run_pair
from tests.support.progs import marker_prog
from tlsc.names import is_ip_address, is_reference_name, parse_ip, sni_for
from tlsc.session import ClientConfig

BRACKETED = ["[::1]", "[127.0.0.1]"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_pki(tmp_path_factory.mktemp("names"))


@pytest.mark.parametrize("name", BRACKETED)
def test_brackets_make_no_name(name: str) -> None:
    assert parse_ip(name) is None and not is_ip_address(name)
    assert not is_reference_name(name)
    assert sni_for(name) is None
    assert ClientConfig(server_name=name).sni is None


@pytest.mark.parametrize(
    ("name", "sni"),
    [("::1", None), ("127.0.0.1", None), ("localhost", "localhost"), ("a.example.", "a.example.")],
)
def test_sni_sent_for_a_reference_name(name: str, sni: str | None) -> None:
    assert is_reference_name(name)
    assert ClientConfig(server_name=name).sni == sni_for(name) == sni


@pytest.mark.parametrize("name", BRACKETED)
def test_bracketed_servername_is_a_usage_error(backend, name, files, tmp_path) -> None:
    """Against a real tlsd serving a certificate valid for 127.0.0.1 and ::1."""
    marker = tmp_path / "ran"
    r = run_pair(
        ["--backend", backend, "-k", name, *marker_prog(marker)],
        ["--backend", backend, "true"],
        client_env={"CAFILE": files / "root.pem"},
        server_env={"KEYFILE": files / "good.key", "CERTFILE": files / "good.chain"},
    )
    assert r.client.rc == 100, r.client.describe()
    assert r.client.lines == [
        f"tlsc: fatal: usage: invalid servername {name!r}: not a DNS name or an IP address"
        " (see tlsc --help)"
    ], r.client.describe()
    assert not marker.exists()


@pytest.mark.parametrize("name", BRACKETED)
def test_tlsclient_bracketed_servername_is_a_usage_error(name, files, tmp_path) -> None:
    """tlsclient: refused before it connects (nothing listens on the port it is given)."""
    marker = tmp_path / "ran"
    r = runmod.run(
        ["-k", name, "127.0.0.1", "1", *marker_prog(marker)],
        cmd=runmod.TLSCLIENT,
        env={"CAFILE": files / "root.pem"},
    )
    assert r.rc == 100, r.describe()
    assert r.lines == [
        f"tlsclient: fatal: usage: invalid servername {name!r}: not a DNS name or an IP"
        " address (see tlsclient --help)"
    ], r.describe()
    assert not marker.exists()


def test_dns_name_rule_is_rfc_1123_ldh() -> None:
    """The hand-written checks of tlsc.names give the verdicts of the LDH rule's regex.

    tlsc.names spells the rule without ``re`` (compiling it cost more than the
    checks, on every start); this holds it to the pattern it replaced, over
    names built from the characters where the rule's edges are.
    """
    import re

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from tlsc.names import is_dns_name

    label = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)\Z")
    numeric = re.compile(r"[0-9.]+\Z")

    def by_regex(name: str) -> bool:
        if not name or not name.isascii():
            return False
        name = name[:-1] if name.endswith(".") else name
        if not name or len(name) > 253 or numeric.match(name):
            return False
        return all(label.match(part) for part in name.split("."))

    chars = st.sampled_from(list("aZ09-._ é\n*"))
    labels = st.one_of(
        st.text(chars, max_size=5),
        st.integers(60, 66).map(lambda n: "a" * n),
    )
    names = st.lists(labels, max_size=5).map(".".join)

    @settings(max_examples=2000, deadline=None)
    @given(names)
    def check(name: str) -> None:
        assert is_dns_name(name) == by_regex(name), name

    check()
    for name in ("localhost", "a-b.example.", "-a", "a-", "1.2.3.4", "1.2.3.4.", "0x1", ""):
        assert is_dns_name(name) == by_regex(name), name
