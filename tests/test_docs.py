"""The reference pages in docs/ cannot fall behind the commands.

Every console script of the core has a page ``docs/<name>.rst``; every option
its ``--help`` lists (what click, or argparse for tlsc-conformance, knows) is
documented there with an ``.. option::`` entry; and the man pages Sphinx builds
from them show every option when rendered by ``man -l``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib.metadata import distribution
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
BIN = Path(sys.executable).parent


def commands() -> list[str]:
    """The core distribution's console scripts, as installed."""
    eps = distribution("tlsc").entry_points
    return sorted(ep.name for ep in eps if ep.group == "console_scripts")


def help_options(name: str) -> set[str]:
    """Every option word the command's --help shows (short and long forms)."""
    out = subprocess.run(
        [str(BIN / name), "--help"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    options: set[str] = set()
    for line in out.splitlines():
        # Option lines start with the option itself (click: "  -S, --close-notify / -s, ...",
        # argparse: "  --backend NAME"); help text mentioning options is indented further.
        m = re.match(r"\s{2,24}(-[-\w]+.*?)(?:\s{2,}|$)", line)
        if not m:
            continue
        options.update(re.findall(r"(?<![\w-])(--?[A-Za-z0-9][-\w]*)", m.group(1)))
    return options


def documented(name: str) -> set[str]:
    text = (DOCS / f"{name}.rst").read_text()
    found: set[str] = set()
    for line in text.splitlines():
        if line.startswith(".. option::"):
            found.update(re.findall(r"(?<![\w-])(--?[A-Za-z0-9][-\w]*)", line))
    return found


@pytest.mark.parametrize("name", commands())
def test_every_option_has_its_entry(name: str) -> None:
    page = DOCS / f"{name}.rst"
    assert page.is_file(), f"{name} has no reference page {page}"
    shown = help_options(name)
    assert "--help" in shown and len(shown) > 3, f"could not read {name} --help: {shown}"
    missing = shown - documented(name)
    assert not missing, f"docs/{name}.rst lacks an .. option:: entry for {sorted(missing)}"


def test_help_options_reader_sees_all_of_tlsc() -> None:
    """The reader above is what the check stands on: it must see every form."""
    shown = help_options("tlsc")
    for word in ("-S", "--close-notify", "-s", "--no-close-notify", "-k", "--servername",
                 "-6", "--read-fd", "--no-verify-cert", "--list-backends", "--version"):
        assert word in shown


@pytest.fixture(scope="module")
def man_pages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("man")
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "-q", "-b", "man", str(DOCS), str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.mark.parametrize("name", commands())
def test_man_page_shows_every_option(name: str, man_pages: Path) -> None:
    page = man_pages / f"{name}.1"
    assert page.is_file(), sorted(p.name for p in man_pages.iterdir())
    rendered = subprocess.run(
        ["man", "-l", str(page)], capture_output=True, text=True, timeout=60,
        env={**os.environ, "MANWIDTH": "100", "MAN_KEEP_FORMATTING": "0", "PAGER": "cat"},
    ).stdout
    rendered = re.sub(r".\x08", "", rendered)  # overstrike bold/underline, if any
    assert name in rendered.splitlines()[0].lower()
    missing = {o for o in help_options(name) if o not in rendered}
    assert not missing, f"man -l {page.name} does not show {sorted(missing)}"
