"""``tlsc-conformance``: check that installed backends behave alike and as documented.

Runs the path-validation battery, the in-memory handshake scenarios and the
real-peer scenarios (``openssl s_server``, ``gnutls-serv``, a stdlib ``ssl``
peer, and ``tlsd-<backend>``: a real ``tlsd`` per connection for every
installed backend declaring the server role), the duplex battery among them
(real ``tlsc``/``tlsd`` moving data both ways while one side ends first, against
stdlib ``ssl`` servers and clients and against each ``tlsd``), for the named or
all installed backends, and prints the verdict, the failures with why, and one block per
peer (:mod:`tlsc.testing.report`): text that fits 100 columns, Markdown with
``--markdown``, JSON with ``--json``.  Exit 0 only when every cell not excused
by a capability the backend declares passes; 1 otherwise; 100 on bad usage,
and on an install without the test kit's requirements (the ``testing`` extra:
one line saying how to get it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tlsc-conformance", description=__doc__.splitlines()[0].strip("`").replace("``", "")
    )
    parser.add_argument("--backend", action="append", default=[], metavar="NAME",
                        help="backend to test (repeatable; default: every installed backend)")
    form = parser.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="print the result as JSON")
    form.add_argument("--markdown", action="store_true",
                      help="print the report as Markdown tables (to paste into an issue)")
    parser.add_argument("--no-live", action="store_true", help="skip the real-peer battery")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="one row per path-validation case")
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse's own exit 2 for bad usage: ours is 100
        return 0 if e.code in (0, None) else 100

    from tlsc.testing import missing, why_missing

    absent = missing()
    if absent:
        print(f"tlsc-conformance: fatal: {why_missing(absent)}", file=sys.stderr)
        return 100
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
        from tlsc.testing import report as render

        n = len(report.cells)
        verdict = "CONFORMANT" if report.ok else f"NOT CONFORMANT ({len(report.failures)} failed)"
        line = f"tlsc-conformance: {verdict}: {n} cells, {elapsed:.1f}s"
        draw = render.markdown if args.markdown else render.text
        print(draw(report, line, every_case=args.verbose))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
