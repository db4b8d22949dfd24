"""A conformance report people can read: text for a terminal, Markdown for an issue.

A run has hundreds of cells (scenario × backend × peer) and most
scenario/peer pairs apply to a few backends only, so a single matrix is
mostly empty and far wider than a terminal.  The report is laid out instead
as:

* the verdict line first, then the failures, each with why, since they are
  what a reader came for;
* one block per peer (the path battery, the in-memory peer, each real
  server), with one row per scenario and one column per backend; a row
  appears only where some backend ran it, and a cell says ``ok``, ``FAIL``,
  ``n/a`` (excused by a declared capability) or nothing (not run);
* the path battery folded to one row per rule (``ok 40/40``) unless asked
  for every case.

Every line of the text form fits :data:`WIDTH` columns: a scenario name too
long to share its line with the cells stands on a line of its own above
them, and a backend name wider than its column is cut with ``…``.  The
Markdown form has the same blocks as tables, for pasting into an issue.
``--json`` (the machine form) is not made here: it is
:meth:`tlsc.testing.harness.Report.as_json`, unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .harness import EXCUSED, FAIL, Cell, Report

__all__ = ["WIDTH", "blocks", "markdown", "text"]

WIDTH = 100
#: The peer name of the path battery's cells.
VERIFY_PEER = "verify"


@dataclass(frozen=True)
class Block:
    """One peer's scenarios: ``rows`` of (scenario, {backend: mark})."""

    title: str
    backends: tuple[str, ...]
    rows: tuple[tuple[str, dict[str, str]], ...]


def _mark(statuses: Sequence[str]) -> str:
    if not statuses:
        return ""
    if any(s == FAIL for s in statuses):
        return "FAIL"
    if all(s == EXCUSED for s in statuses):
        return "n/a"
    return "ok"


def _rule(scenario: str) -> str:
    """``verify:validity/expired-leaf`` → ``verify:validity``."""
    return scenario.split("/", 1)[0]


def blocks(report: Report, *, every_case: bool = False) -> list[Block]:
    """The report's cells grouped by peer, then by scenario (or rule), then by backend."""
    backends = tuple(sorted({c.backend for c in report.cells}))
    by_peer: dict[str, dict[str, dict[str, list[str]]]] = {}
    for c in report.cells:
        folded = c.peer == VERIFY_PEER and not every_case
        row = _rule(c.scenario) if folded else c.scenario
        by_peer.setdefault(c.peer, {}).setdefault(row, {}).setdefault(c.backend, []).append(
            c.status
        )
    out = []
    for peer, rows in by_peer.items():
        title = "path validation" if peer == VERIFY_PEER else f"peer {peer}"
        done = []
        for name, cells in rows.items():
            marks = {}
            for b, statuses in cells.items():
                mark = _mark(statuses)
                if len(statuses) > 1 and mark != "n/a":
                    passed = sum(s != FAIL for s in statuses)
                    mark = f"{mark} {passed}/{len(statuses)}"
                marks[b] = mark
            done.append((name, marks))
        out.append(Block(title, backends, tuple(done)))
    return out


def _failure_lines(failures: Sequence[Cell]) -> list[str]:
    return [f"FAIL {c.scenario} [{c.backend} @ {c.peer}]: {c.detail}" for c in failures]


def _fit(name: str, width: int) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def text(report: Report, verdict: str, *, every_case: bool = False) -> str:
    """The terminal form: verdict, failures, then one block per peer, within WIDTH columns."""
    lines = [verdict]
    fails = _failure_lines(report.failures)
    if fails:
        lines.append("")
        lines.extend(_fit(line, WIDTH) for line in fails)
    for block in blocks(report, every_case=every_case):
        marks = [m for _, row in block.rows for m in row.values()]
        col = max([len(m) for m in marks] + [min(14, max(map(len, block.backends)))]) + 2
        heads = [_fit(b, col - 1) for b in block.backends]
        room = WIDTH - col * len(block.backends)
        fitting = [len(name) for name, _ in block.rows if len(name) + 2 <= room]
        name_width = max(fitting, default=room - 2) + 2
        lines.append("")
        lines.append(block.title)
        lines.append(" " * name_width + "".join(h.ljust(col) for h in heads).rstrip())
        for name, row in block.rows:
            cells = "".join(row.get(b, "").ljust(col) for b in block.backends)
            if len(name) + 2 > name_width:
                # Too long to share its line: the name alone, its cells below it.
                lines.append(_fit(name, WIDTH))
                name = ""
            lines.append((name.ljust(name_width) + cells).rstrip())
    return "\n".join(lines)


def markdown(report: Report, verdict: str, *, every_case: bool = False) -> str:
    """The same blocks as Markdown tables, to paste into an issue."""
    lines = [f"**{verdict}**"]
    fails = report.failures
    if fails:
        lines.append("")
        lines.append("Failures:")
        lines.append("")
        lines.extend(
            f"- `{c.scenario}` [{c.backend} @ {c.peer}]: {c.detail.replace('|', '/')}"
            for c in fails
        )
    for block in blocks(report, every_case=every_case):
        lines.append("")
        lines.append(f"### {block.title}")
        lines.append("")
        lines.append("| scenario | " + " | ".join(block.backends) + " |")
        lines.append("|---|" + "---|" * len(block.backends))
        for name, marks in block.rows:
            cells = " | ".join(marks.get(b, "") or " " for b in block.backends)
            lines.append(f"| `{name}` | {cells} |")
    return "\n".join(lines)
