"""tlsc-conformance's report: fits a terminal, failures first, Markdown for issues."""

from __future__ import annotations

from tlsc.testing.harness import EXCUSED, FAIL, PASS, Cell, Report
from tlsc.testing.report import WIDTH, markdown, text


def _report() -> Report:
    r = Report()
    for b in ("openssl", "stdlib", "tlslite", "a-third-party-backend"):
        for i in range(40):
            r.cells.append(Cell(f"verify:validity/case-{i}", b, "verify", PASS))
        r.cells.append(Cell("handshake-TLSv1.3-RSA", b, "openssl-s_server", PASS))
        r.cells.append(Cell("x" * 150, b, "gnutls-serv", PASS))
    r.cells.append(Cell("verify:names/wildcard-1", "tlslite", "verify", FAIL, "accepted"))
    r.cells.append(Cell("half-close", "stdlib", "gnutls-serv", EXCUSED, "capability"))
    r.cells.append(Cell("only-openssl", "openssl", "tlsd-openssl", FAIL, "lost 128 KiB"))
    return r


def test_text_fits_the_terminal_and_puts_failures_first() -> None:
    out = text(_report(), "tlsc-conformance: NOT CONFORMANT (2 failed)")
    lines = out.splitlines()
    assert all(len(line) <= WIDTH for line in lines), max(lines, key=len)
    assert lines[0].startswith("tlsc-conformance: NOT CONFORMANT")
    first_block = lines.index("path validation")
    fails = [i for i, line in enumerate(lines) if line.startswith("FAIL ")]
    assert len(fails) == 2 and max(fails) < first_block
    assert "lost 128 KiB" in out


def test_text_folds_the_battery_by_rule_and_marks_each_cell() -> None:
    lines = text(_report(), "v").splitlines()
    row = next(line for line in lines if line.startswith("verify:validity"))
    assert row.split()[1:] == ["ok", "40/40"] * 4
    names = next(line for line in lines if line.startswith("verify:names"))
    assert names.split()[-1] == "FAIL"
    # A scenario one backend ran shows one cell, not a row of dashes.
    only = next(line for line in lines if line.startswith("only-openssl"))
    assert only.split() == ["only-openssl", "FAIL"]
    assert any(line.startswith("half-close") and "n/a" in line for line in lines)


def test_every_case_on_demand() -> None:
    out = text(_report(), "v", every_case=True)
    assert "verify:validity/case-39" in out


def test_markdown_has_one_table_per_peer() -> None:
    out = markdown(_report(), "tlsc-conformance: NOT CONFORMANT (2 failed)")
    assert out.count("### ") == 4  # verify, openssl-s_server, gnutls-serv, tlsd-openssl
    assert "| scenario | a-third-party-backend | openssl | stdlib | tlslite |" in out
    assert "- `only-openssl` [openssl @ tlsd-openssl]: lost 128 KiB" in out


def test_bad_usage_is_100_and_help_is_0(capsys) -> None:  # noqa: ANN001 - pytest fixture
    from tlsc import conformance

    assert conformance.main(["--no-such-option"]) == 100
    assert conformance.main(["--json", "--markdown"]) == 100
    assert conformance.main(["--help"]) == 0
    assert "usage: tlsc-conformance" in capsys.readouterr().out
