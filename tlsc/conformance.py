"""``tlsc-conformance``: prove that installed backends behave as spec section 5 demands.

Runs the path-validation battery, the in-memory handshake scenarios and the
real-peer scenarios (``openssl s_server``, ``gnutls-serv``, a stdlib ``ssl``
peer, and ``tlsd-<backend>``: a real ``tlsd`` per connection for every
installed backend declaring the server role) for the named or all installed
backends, prints a matrix (rows: scenarios, columns: client backend × peer)
and a one-line verdict.  Exit 0 only when every cell not excused by a
capability the backend declares passes; 1 otherwise; 100 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

__all__ = ["main"]


def _matrix(report: object, verbose: bool) -> str:
    from tlsc.testing.harness import FAIL, Report

    assert isinstance(report, Report)
    columns = sorted({(c.backend, c.peer) for c in report.cells}, key=lambda x: (x[1], x[0]))
    rows: dict[str, dict[tuple[str, str], str]] = {}
    for c in report.cells:
        rows.setdefault(c.scenario, {})[(c.backend, c.peer)] = c.status
    mark = {"pass": "ok", "fail": "FAIL", "excused": "n/a"}
    heads = [f"{b}@{p}" for b, p in columns]
    width = max([len(s) for s in rows] + [8])
    lines = []
    # The path battery has hundreds of rows: summarised per rule unless -v.
    summary: dict[str, dict[tuple[str, str], list[int]]] = {}
    for scenario, cells in rows.items():
        if scenario.startswith("verify:") and not verbose:
            rule = "verify:" + scenario[len("verify:") :].split("/")[0] + "/*"
            for col, st in cells.items():
                tally = summary.setdefault(rule, {}).setdefault(col, [0, 0])
                tally[0] += st != FAIL
                tally[1] += 1
            continue
        summary[scenario] = {col: [-1, 0, st] for col, st in cells.items()}  # type: ignore[misc]
    width = max([len(s) for s in summary] + [8])
    lines.append(" " * width + "  " + "  ".join(h.ljust(24) for h in heads))
    for scenario, cells in summary.items():
        out = []
        for col in columns:
            v = cells.get(col)
            if v is None:
                text = "-"
            elif v[0] == -1:
                text = mark[v[2]]  # type: ignore[index]
            else:
                text = "ok" if v[0] == v[1] else "FAIL"
                text += f" {v[0]}/{v[1]}"
            out.append(text.ljust(24))
        lines.append(scenario.ljust(width) + "  " + "  ".join(out))
    for c in report.failures:
        lines.append(f"FAIL {c.scenario} [{c.backend}@{c.peer}]: {c.detail}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tlsc-conformance", description=__doc__.splitlines()[0])
    parser.add_argument("--backend", action="append", default=[], metavar="NAME",
                        help="backend to test (repeatable; default: every installed backend)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--no-live", action="store_true", help="skip the real-peer battery")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="one row per path-validation case")
    args = parser.parse_args(argv)

    from tlsc.testing.harness import backend_names, run_all

    installed = backend_names()
    unknown = [n for n in args.backend if n not in installed]
    if unknown or not installed:
        print(f"tlsc-conformance: fatal: backend not installed: {', '.join(unknown) or 'any'} "
              f"(installed: {', '.join(installed) or 'none'})", file=sys.stderr)
        return 100
    t0 = time.monotonic()
    report = run_all(args.backend or installed, live=not args.no_live)
    elapsed = time.monotonic() - t0
    if args.json:
        doc = report.as_json()
        doc["seconds"] = round(elapsed, 2)
        print(json.dumps(doc, indent=1))
    else:
        print(_matrix(report, args.verbose))
        n = len(report.cells)
        verdict = "CONFORMANT" if report.ok else f"NOT CONFORMANT ({len(report.failures)} failed)"
        print(f"tlsc-conformance: {verdict}: {n} cells, {elapsed:.1f}s")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
