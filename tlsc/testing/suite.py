"""``BackendConformance``: the conformance suite a backend's own tests subclass.

A backend author writes::

    from tlsc.testing.suite import BackendConformance

    class TestConformance(BackendConformance):
        backend_name = "mybackend"

and pytest runs, against that backend: every path-validation case (one test
each, with its expected verdict; by ``verify_chain``, or by real handshakes for
a backend declaring no standalone verifier), every in-memory handshake
scenario, the real-peer scenarios whose server binary is on PATH, the STARTTLS
scenarios (the backend inside ucspitlsc, and against every installed backend's
ucspitlsd), and the duplex battery (``tlsc``/``tlsd --backend <yours>`` moving
data both ways while one side ends first: no byte lost).  Scenarios the
backend declares it cannot do (``info().capabilities``) are skipped, nothing
else.
The ``tlsc`` pytest plugin (installed with tlsc) supplies the fixtures.
"""

from __future__ import annotations

from typing import Any, ClassVar

from . import PYTEST, require

require(PYTEST)  # the testing extra, named, rather than a bare ModuleNotFoundError

import pytest  # noqa: E402

from . import duplex, live, memory, starttls  # noqa: E402
from .harness import EXCUSED, excuse, get_backend, handshake_judge, path_judge  # noqa: E402
from .pathcases import cases  # noqa: E402

__all__ = ["BackendConformance"]


def _ids(items: Any) -> list[str]:
    return [i.name for i in items]


class BackendConformance:
    """Subclass and set :attr:`backend_name`; the tests below then run for that backend."""

    backend_name: ClassVar[str] = ""

    @pytest.fixture(scope="class")
    @classmethod
    def backend(cls, request: pytest.FixtureRequest) -> Any:
        if not cls.backend_name:
            pytest.fail("set backend_name on your BackendConformance subclass")
        asked = request.config.getoption("--tlsc-backend", default=None)
        if asked and cls.backend_name not in asked:
            pytest.skip(f"--tlsc-backend does not name {cls.backend_name}")
        try:
            return get_backend(cls.backend_name)
        except KeyError:
            pytest.fail(f"backend {cls.backend_name!r} is not installed")

    @pytest.mark.parametrize("case", cases(), ids=_ids(cases()))
    def test_path_validation(self, backend: Any, case: Any) -> None:
        verdict, reason = path_judge(backend)(case)
        if verdict == EXCUSED:
            pytest.skip(reason)
        want = case.expected
        assert verdict == want, f"{case.name}: expected {want}, got {verdict} {reason}"

    @pytest.mark.parametrize("case", cases(), ids=_ids(cases()))
    def test_path_validation_by_handshake(self, backend: Any, case: Any) -> None:
        """The same case through a real handshake: one verdict, handshake or not."""
        if not backend.info().capabilities.standalone_verifier:
            pytest.skip("judged through handshakes by test_path_validation already")
        verdict, reason = handshake_judge(backend)(case)
        if verdict == EXCUSED:
            pytest.skip(reason)
        want = case.expected
        assert verdict == want, f"{case.name}: expected {want}, got {verdict} {reason}"

    @pytest.mark.parametrize("scenario", memory.SCENARIOS, ids=_ids(memory.SCENARIOS))
    def test_memory_handshake(self, backend: Any, scenario: Any) -> None:
        why = excuse(backend.info().capabilities, scenario.needs)
        if why is not None:
            pytest.skip(why)
        scenario.run(backend)

    @pytest.mark.parametrize("scenario", live.SCENARIOS, ids=_ids(live.SCENARIOS))
    def test_live_handshake(self, backend: Any, scenario: Any) -> None:
        why = excuse(backend.info().capabilities, scenario.needs)
        if why is not None:
            pytest.skip(why)
        missing = live.missing_peer(scenario.peer)
        if missing:
            pytest.skip(missing)
        scenario.run(backend)

    @pytest.mark.parametrize("scenario", starttls.scenarios(), ids=_ids(starttls.scenarios()))
    def test_starttls(self, backend: Any, scenario: Any) -> None:
        why = excuse(backend.info().capabilities, scenario.needs)
        if why is None and scenario.server_needs:
            server = get_backend(scenario.peer.split("-", 1)[1])
            why = excuse(server.info().capabilities, scenario.server_needs)
        if why is not None:
            pytest.skip(why)
        scenario.run(backend)

    _DUPLEX = (*duplex.client_scenarios(), *duplex.server_scenarios())

    @pytest.mark.parametrize("scenario", _DUPLEX, ids=_ids(_DUPLEX))
    def test_duplex_no_byte_lost(self, backend: Any, scenario: Any) -> None:
        why = excuse(backend.info().capabilities, scenario.needs)
        if why is not None:
            pytest.skip(why)
        scenario.run(backend)
