"""No byte lost: tlsc and tlsd, started as commands, move data both
ways at once while one side ends first -- every installed backend, both roles, TLS 1.3
and 1.2, both orders, and every tlsc x tlsd pairing.

The runs are the conformance harness's duplex battery (:mod:`tlsc.testing.duplex`):
real processes on 127.0.0.1, stdlib ``ssl`` peers or a real tlsd, SHA-256 of every
byte each way.  When the peer ends first under TLS 1.3, prog's output written after
the peer's close_notify must all arrive (RFC 8446 6.1); under TLS 1.2 it must all be
discarded and nothing else (RFC 5246 7.2.1); the exits are clean.
"""

from __future__ import annotations

import pytest

from tlsc.testing import duplex, harness, tlsdpeers
from tlsc.testing.live import LiveScenario

ORDERS = ("peer-ends-first", "prog-ends-first")
VERSIONS = ("TLSv1.3", "TLSv1.2")


def _run(scenarios: tuple[LiveScenario, ...], name: str, backend: str) -> None:
    (scenario,) = [s for s in scenarios if s.name == name]
    b = harness.get_backend(backend)
    why = harness.excuse(b.info().capabilities, scenario.needs)
    if why is not None:
        pytest.skip(f"{backend} {why}")
    scenario.run(b)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("version", VERSIONS)
def test_tlsc_against_stdlib_server(backend: str, version: str, order: str) -> None:
    """tlsc --backend B, prog on its fds, against a stdlib ssl server doing the same."""
    _run(duplex.client_scenarios(), f"python-ssl/tlsc-duplex-{order}-{version}", backend)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("version", VERSIONS)
def test_tlsd_against_stdlib_client(backend: str, version: str, order: str) -> None:
    """tlsd --backend B, prog on its stdin/stdout, against a stdlib ssl client."""
    _run(duplex.server_scenarios(), f"python-ssl-client/tlsd-duplex-{order}-{version}",
         backend)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("server", tlsdpeers.server_backends())
def test_tlsc_against_tlsd(backend: str, server: str, order: str) -> None:
    """tlsc --backend B against tlsd --backend S, a prog on each side (TLS 1.3)."""
    name = f"tlsd-{server}/tlsc-duplex-{order}-TLSv1.3"
    _run(duplex.pair_scenarios(server), name, backend)
