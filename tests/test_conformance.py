"""The conformance harness itself: green for both backends, red when a rule is broken."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tlsc.testing import harness, memory
from tlsc.testing.pathcases import cases

BACKENDS = ["openssl", "tlslite"]


def test_battery_is_big_and_covers_both_verdicts() -> None:
    cs = cases()
    assert len(cs) >= 200
    assert {c.expected for c in cs} == {"accept", "reject"}
    assert len({c.name for c in cs}) == len(cs)


@pytest.mark.parametrize("name", BACKENDS)
def test_path_battery_passes(name: str) -> None:
    cells = harness.run_path_battery([harness.get_backend(name)])
    assert not [c for c in cells if not c.ok], [c for c in cells if not c.ok][:5]


def test_backends_agree() -> None:
    cells = harness.run_path_battery([harness.get_backend(n) for n in BACKENDS])
    cells += harness.run_scenarios([harness.get_backend(n) for n in BACKENDS], memory.SCENARIOS,
                                   "memory")
    assert harness.disagreements(cells) == []


class _AcceptAll:
    """A backend whose verify_chain accepts everything: the battery must catch it."""

    name = "accept-all"

    def __init__(self, real: object) -> None:
        self.real = real

    def info(self) -> object:
        return self.real.info()  # type: ignore[attr-defined]

    def verify_chain(self, *args: object) -> None:
        return None


def test_broken_rule_turns_red() -> None:
    cells = harness.run_path_battery([_AcceptAll(harness.get_backend("openssl"))])
    failed = {c.scenario.split("/")[0] for c in cells if not c.ok}
    assert {"verify:validity", "verify:names", "verify:weak-crypto", "verify:chain"} <= failed


def test_capability_excuses_only_what_is_declared() -> None:
    caps = harness.get_backend("tlslite").info().capabilities
    assert harness.excuse(caps, {"write_after_close_notify": True})
    assert harness.excuse(caps, {"tls_versions": "TLSv1.3"}) is None
    assert harness.excuse(caps, {"tls_versions": "SSLv3"})


def test_command_json_exit_0() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tlsc.conformance", "--json"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["ok"] is True and doc["counts"]["fail"] == 0
    assert {c["backend"] for c in doc["cells"]} == set(BACKENDS)
    assert {"verify", "pyopenssl-memory", "openssl-s_server", "gnutls-serv"} <= {
        c["peer"] for c in doc["cells"]
    }


def test_command_exits_nonzero_when_a_backend_is_broken(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tlsc import conformance

    real = harness.get_backend
    monkeypatch.setattr(
        harness, "get_backend", lambda n: _AcceptAll(real(n)) if n == "tlslite" else real(n)
    )
    monkeypatch.setattr(harness, "run_scenarios", lambda *a, **k: [])
    monkeypatch.setattr("tlsc.testing.live.run_live", lambda b: [])
    rc = conformance.main(["--backend", "tlslite", "--no-live"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "NOT CONFORMANT" in out


def test_command_unknown_backend_is_usage_error() -> None:
    from tlsc import conformance

    assert conformance.main(["--backend", "nosuch"]) == 100
