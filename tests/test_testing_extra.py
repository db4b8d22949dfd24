"""The test kit on an install without cryptography: one line naming the ``testing`` extra.

The environment is the one tox's ``tlslite`` env describes: the core and the
tlslite backend, nothing else (no cryptography, no pyOpenSSL, no pytest), in a
fresh virtual environment (tests/support/minivenv.py).
"""

from __future__ import annotations

import subprocess
from importlib.metadata import requires
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.support.minivenv import make_venv

HINT = "the core's testing extra: from the source tree, pip install '.[testing]'"


@pytest.fixture(scope="module")
def core_and_tlslite(tmp_path_factory) -> Path:
    python = make_venv(tmp_path_factory.mktemp("venv") / "v", ["tlsc", "tlsc-tlslite"])
    probe = _run(python, "-c", "import importlib.util as u, sys; "
                 "sys.exit(any(u.find_spec(m) for m in ('cryptography', 'OpenSSL', 'pytest')))")
    assert probe.returncode == 0, "the environment is not free of cryptography/pyOpenSSL/pytest"
    return python


def _run(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # cwd "/": the source tree must not be importable from the working directory.
    return subprocess.run([str(python), *args], capture_output=True, text=True, cwd="/",
                          timeout=60, env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"})


def test_the_testing_extra_brings_what_the_kit_imports() -> None:
    extra = {Requirement(r).name for r in requires("tlsc") or ()
             if Requirement(r).marker is not None
             and Requirement(r).marker.evaluate({"extra": "testing"})
             and not Requirement(r).marker.evaluate({"extra": ""})}
    assert {"cryptography", "pyOpenSSL", "pytest"} <= extra, extra


def test_conformance_says_which_extra_in_one_line(core_and_tlslite: Path) -> None:
    r = _run(core_and_tlslite, "-m", "tlsc.conformance")
    assert r.returncode == 100, r
    assert r.stdout == ""
    assert r.stderr.splitlines() == [
        f"tlsc-conformance: fatal: the test kit needs cryptography and pyOpenSSL: {HINT}"
    ], r.stderr


def test_conformance_help_needs_nothing(core_and_tlslite: Path) -> None:
    r = _run(core_and_tlslite, "-m", "tlsc.conformance", "--help")
    assert r.returncode == 0 and "tlsc-conformance" in r.stdout, r


@pytest.mark.parametrize("module", ["tlsc.testing.certs", "tlsc.testing.suite"])
def test_the_kit_refuses_to_import_naming_the_extra(core_and_tlslite: Path, module) -> None:
    r = _run(core_and_tlslite, "-c", f"import {module}")
    assert r.returncode == 1
    assert r.stderr.splitlines()[-1].startswith("tlsc.testing.MissingTestKitRequirement: "
                                                "the test kit needs cryptography"), r.stderr
    assert HINT in r.stderr


def test_missing_backend_of_ours_names_distribution_and_source(core_and_tlslite: Path) -> None:
    """An uninstalled backend of this project: the usage error says how to install it."""
    r = _run(core_and_tlslite, "-m", "tlsc", "--backend", "openssl", "-k", "localhost", "true")
    assert r.returncode == 100, r
    (line,) = r.stderr.splitlines()
    assert line.startswith(
        "tlsc: fatal: unable to select a backend: backend 'openssl' is not installed "
        "(installed: "
    ), line
    assert line.endswith(
        "; the openssl backend is the distribution tlsc-openssl, in backends/openssl/ of "
        "tlsc's source tree (from there: pip install ./backends/openssl)"
    ), line
