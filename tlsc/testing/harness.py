"""Run the batteries over backends and collect a result matrix.

A *cell* is one scenario run by one backend against one peer ("verify" for
the path battery, which has no peer).  A cell passes, fails, or is
*excused*: a backend is excused from a scenario only by a capability it
declares missing in ``info().capabilities`` (the documented differences
between backends live there, nowhere else).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from tlsc.reasons import Reason
from tlsc.registry import available, load
from tlsc.session import Backend, Capabilities, VerificationError

__all__ = [
    "Cell",
    "Report",
    "backend_names",
    "excuse",
    "get_backend",
    "path_judge",
    "run_path_battery",
    "run_path_handshakes",
]

PASS, FAIL, EXCUSED = "pass", "fail", "excused"

VerifyChain = Callable[[Sequence[bytes], Sequence[bytes], "str | None", "datetime | None"], None]


@dataclass
class Cell:
    """One scenario's outcome for one backend against one peer."""

    scenario: str
    backend: str
    peer: str
    status: str  #: "pass", "fail" or "excused"
    detail: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status != FAIL


@dataclass
class Report:
    """Every cell of a run, and the verdict the command exits with."""

    cells: list[Cell] = field(default_factory=list)

    @property
    def failures(self) -> list[Cell]:
        return [c for c in self.cells if c.status == FAIL]

    @property
    def ok(self) -> bool:
        return bool(self.cells) and not self.failures

    def extend(self, cells: Iterable[Cell]) -> None:
        self.cells.extend(cells)

    def as_json(self) -> dict[str, Any]:
        counts = {s: sum(c.status == s for c in self.cells) for s in (PASS, FAIL, EXCUSED)}
        return {"ok": self.ok, "counts": counts, "cells": [asdict(c) for c in self.cells]}


def backend_names() -> list[str]:
    """Installed backends, from packaging metadata only (nothing imported)."""
    return sorted(available())


def get_backend(name: str) -> Backend:
    """Import and return the installed backend ``name`` (KeyError if absent)."""
    return load(available()[name])


def excuse(capabilities: Capabilities, needs: dict[str, object]) -> str | None:
    """Why a scenario needing ``needs`` does not apply, or None when it does.

    ``needs`` maps a :class:`Capabilities` field to the value required: a bool
    must be true, a string must be in the tuple (``{"tls_versions": "TLSv1.3"}``).
    Unknown fields excuse nothing: a typo must not turn a test green.
    """
    for attr, want in needs.items():
        have = getattr(capabilities, attr)
        if isinstance(have, tuple):
            if want not in have:
                return f"declares {attr}={have!r} (no {want})"
        elif bool(have) != bool(want):
            return f"declares {attr}={have!r}"
    return None


def verify_chain_of(backend: Backend) -> VerifyChain:
    """The backend's standalone verifier: the ``verify_chain`` method of the Backend."""
    fn = getattr(backend, "verify_chain", None)
    if fn is None:
        raise TypeError(f"backend {backend.name!r} has no verify_chain method")
    return fn  # type: ignore[no-any-return]


#: The reasons a refusal under each rule of the path battery may give (the same
#: failure gets the same words from every backend).  A rule not listed here
#: (partial chains, whose cases fail for various reasons) needs a typed reason only.
RULE_REASONS: dict[str, frozenset[Reason]] = {
    "validity": frozenset({Reason.EXPIRED, Reason.NOT_YET_VALID}),
    # INVALID_CERTIFICATE: the strict structure's rules (a CA's basicConstraints
    # not critical, a CA without keyUsage) are refused under these rules too.
    "ca-flag": frozenset({Reason.NOT_A_CA, Reason.INVALID_CERTIFICATE}),
    "path-length": frozenset({Reason.PATH_LENGTH}),
    "key-usage": frozenset({Reason.KEY_USAGE, Reason.NOT_A_CA, Reason.INVALID_CERTIFICATE}),
    "extended-key-usage": frozenset({Reason.EXTENDED_KEY_USAGE}),
    "names": frozenset({Reason.NAME_MISMATCH}),
    "critical-extension": frozenset({Reason.CRITICAL_EXTENSION}),
    "malformed": frozenset({Reason.MALFORMED_CERTIFICATE, Reason.NO_PEER_CERTIFICATE}),
    "signature": frozenset({Reason.BAD_SIGNATURE}),
    "chain": frozenset({Reason.UNKNOWN_CA, Reason.CHAIN_TOO_LONG}),
    "weak-crypto": frozenset({Reason.WEAK_KEY, Reason.WEAK_SIGNATURE}),
}
#: What no refusal may be worded as: the words of an error a backend did not classify.
UNCLASSIFIED = frozenset({Reason.FAILURE})


def words_problem(rule: str, error: VerificationError) -> str | None:
    """Why ``error``'s words are wrong for a refusal under ``rule``, or None."""
    allowed = RULE_REASONS.get(rule)
    reason = error.reason
    if reason in UNCLASSIFIED or (allowed is not None and reason not in allowed):
        want = " or ".join(sorted(r.name for r in allowed)) if allowed else "a classified reason"
        return f"worded as {reason.name} ({error}), want {want}"
    return None


def judge(verify: VerifyChain, case: Any) -> tuple[str, str]:
    """("accept" | "reject" | "reject, wrong words" | "error", reason) for one path case.

    A refusal counts as "reject" only when its reason is one of the words
    allowed for the case's rule (:data:`RULE_REASONS`).
    """
    try:
        verify(list(case.chain), list(case.anchors), case.server_name, case.at_time)
    except VerificationError as e:
        problem = words_problem(getattr(case, "rule", ""), e)
        if problem is not None:
            return "reject, wrong words", problem
        return "reject", str(e)
    except Exception as e:  # anything else is a bug, not a verdict
        return "error", f"{type(e).__name__}: {e}"
    return "accept", ""


def path_judge(backend: Backend) -> Callable[[Any], tuple[str, str]]:
    """How ``backend`` is judged on a path case: ("accept" | "reject" | "error" | "excused", why).

    By its ``verify_chain``, unless it declares no standalone verifier: then by
    real handshakes (:mod:`.handshakepaths`), which excuse the cases a
    handshake at the wall clock cannot stage.
    """
    if backend.info().capabilities.standalone_verifier:
        verify = verify_chain_of(backend)
        return lambda case: judge(verify, case)
    return handshake_judge(backend)


def _path_cells(
    backends: Sequence[Backend],
    cases: Sequence[Any] | None,
    peer: str,
    judge_of: Callable[[Backend], Callable[[Any], tuple[str, str]]],
) -> list[Cell]:
    if cases is None:
        from .pathcases import cases as all_cases

        cases = all_cases()
    cells = []
    for b in backends:
        judge_case = judge_of(b)
        for case in cases:
            t0 = time.perf_counter()
            verdict, reason = judge_case(case)
            ok = verdict == case.expected
            if verdict == EXCUSED:
                status, detail = EXCUSED, reason
            else:
                status = PASS if ok else FAIL
                detail = reason if ok else f"expected {case.expected}, got {verdict} {reason}"
            cells.append(
                Cell(
                    "verify:" + case.name,
                    b.name,
                    peer,
                    status,
                    detail.strip(),
                    time.perf_counter() - t0,
                )
            )
    return cells


def handshake_judge(backend: Backend) -> Callable[[Any], tuple[str, str]]:
    """``backend`` judged on a path case by a real handshake (:mod:`.handshakepaths`)."""
    from . import handshakepaths

    return lambda case: handshakepaths.judge(backend, case)


def run_path_handshakes(
    backends: Sequence[Backend], cases: Sequence[Any] | None = None
) -> list[Cell]:
    """Every path case through a real handshake of every backend (peer ``handshake``).

    The same battery as :func:`run_path_battery`, judged the way a user meets
    it: the backend's client session against a server presenting the case's
    chain.  For a backend with a standalone verifier this proves that the
    handshake and ``verify_chain`` reach one verdict; across backends,
    :func:`disagreements` compares them case by case.
    """
    return _path_cells(backends, cases, "handshake", handshake_judge)


def run_path_battery(backends: Sequence[Backend], cases: Sequence[Any] | None = None) -> list[Cell]:
    """Every path case through every backend's ``verify_chain`` (or handshakes, see path_judge).

    A cell fails when the verdict differs from the case's, when the backend
    raised anything but :class:`VerificationError`, when a refusal's words are
    not those its rule allows (:func:`judge`), or when backends word one
    refusal differently.  Disagreement on verdicts is then
    implied (each is compared with the same expectation); :func:`disagreements`
    lists it explicitly.
    """
    cells = _path_cells(backends, cases, "verify", path_judge)
    _same_words(cells)
    return cells


def _words(detail: str) -> str | None:
    """The core's words at the start of a refusal's text (what follows is the backend's).

    None when the text does not start with a reason's words (a refusal judged
    by handshake is reported with its error's class name first).
    """
    for reason in sorted(Reason, key=lambda r: -len(r.words())):
        if detail == reason.words() or detail.startswith(reason.words() + ": "):
            return reason.words()
    return None


def _same_words(cells: list[Cell]) -> None:
    """Refusals of one case must read the same from every backend: the others fail if not."""
    by_case: dict[str, list[Cell]] = {}
    for c in cells:
        if c.status == PASS and c.detail:
            by_case.setdefault(c.scenario, []).append(c)
    for group in by_case.values():
        said = {c.backend: _words(c.detail) for c in group}
        said = {name: words for name, words in said.items() if words is not None}
        if len(set(said.values())) > 1:
            text = "; ".join(f"{name}: {words!r}" for name, words in sorted(said.items()))
            for c in group:
                c.status, c.detail = FAIL, f"backends word this refusal differently ({text})"


def disagreements(cells: Sequence[Cell]) -> list[str]:
    """Scenarios (with their peer) where backends' statuses differ."""
    by: dict[tuple[str, str], set[str]] = {}
    for c in cells:
        if c.status != EXCUSED:
            by.setdefault((c.scenario, c.peer), set()).add(c.status)
    return sorted(f"{s} [{p}]" for (s, p), st in by.items() if len(st) > 1)


def run_scenarios(backends: Sequence[Backend], scenarios: Sequence[Any], peer: str) -> list[Cell]:
    """Handshake scenarios (:class:`tlsc.testing.memory.Scenario`-like) for every backend.

    A scenario the backend's declared capabilities rule out is *excused*;
    any exception other than an AssertionError is reported as a failure too,
    with its type, since a backend must only raise the interface's errors.
    """
    cells = []
    for b in backends:
        caps = b.info().capabilities
        for s in scenarios:
            why = excuse(caps, s.needs)
            if why is not None:
                cells.append(Cell(s.name, b.name, peer, EXCUSED, why))
                continue
            t0 = time.perf_counter()
            try:
                said = s.run(b)
            except AssertionError as e:
                status, detail = FAIL, str(e) or "assertion failed"
            except Exception as e:
                status, detail = FAIL, f"{type(e).__name__}: {e}"
            else:  # a scenario may return a note on what it saw (kept as the detail)
                status, detail = PASS, said if isinstance(said, str) else ""
            cells.append(Cell(s.name, b.name, peer, status, detail, time.perf_counter() - t0))
    return cells


def run_all(names: Sequence[str] | None = None, *, live: bool = True) -> Report:
    """Both batteries (path validation, in-memory handshakes, real peers) for ``names``."""
    from . import memory

    chosen = list(names) if names else backend_names()
    backends = [get_backend(n) for n in chosen]
    report = Report()
    report.extend(run_path_battery(backends))
    report.extend(run_path_handshakes(backends))
    report.extend(run_scenarios(backends, memory.SCENARIOS, "pyopenssl-memory"))
    if live:
        from . import live as live_mod

        report.extend(live_mod.run_live(backends))
    return report
