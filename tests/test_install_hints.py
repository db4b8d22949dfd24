"""Backend install hints that cannot mislead (tlsc/registry.py).

A name that is not one of this project's backends gets no install command at
all (``tlsc-<name>`` is a name anyone could register on a package index); one of
ours is named by its distribution and its place in the source tree.
"""

from __future__ import annotations

import pytest

from tests.support import run as runmod
from tests.support.pair import tcp_pair
from tlsc import registry

OURS = {"openssl": "backends/openssl", "tlslite": "backends/tlslite"}


@pytest.mark.parametrize("name", sorted(OURS))
def test_our_backend_is_named_by_distribution_and_source_path(name: str) -> None:
    hint = registry.install_hint(name)
    assert f"distribution tlsc-{name}" in hint
    assert f"pip install ./{OURS[name]}" in hint


def test_the_stdlib_backend_ships_with_the_core() -> None:
    hint = registry.install_hint("stdlib")
    assert "ships with tlsc" in hint and "pip install" not in hint


@pytest.mark.parametrize("name", ["nosuchtls", "boringssl", "Openssl"])
def test_no_install_command_for_a_name_that_is_not_ours(name: str) -> None:
    hint = registry.install_hint(name)
    assert "pip" not in hint and f"tlsc-{name}" not in hint and "tlsc[" not in hint, hint
    assert "openssl, stdlib, tlslite" in hint  # what ours are


@pytest.mark.parametrize("how", ["flag", "variable"])
def test_unknown_backend_line_suggests_nothing_to_install(how: str, tmp_path) -> None:
    client, server = tcp_pair()
    server.close()
    args, env = (["--backend", "nosuchtls"], {}) if how == "flag" else ([], {
        "TLSC_BACKEND": "nosuchtls"})
    r = runmod.run([*args, "-k", "localhost", "true"], peer=client,
                   env={"CAFILE": tmp_path / "none.pem", **env})
    line = r.assert_fatal(100)
    assert "nosuchtls" in line and "not installed" in line, line
    assert "pip" not in line and "tlsc-nosuchtls" not in line and "tlsc[" not in line, line
