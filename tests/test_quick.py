"""The click-free fast path of tlsc's and tlsd's command lines (tlsc/quick.py).

It may only accept what click accepts, and read it the same way: checked
here against click's own parse of generated command lines, and against the
click commands' option tables, so that an option added to one and not the
other fails a test.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import click
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tlsc import cli, quick, tlsd, tlsserver

#: Options click handles alone, on purpose: they are not the hot path.
DELEGATED = {"--help", "--version", "--list-backends"}

CASES = [
    (cli.command, quick.TLSC_FLAGS, quick.TLSC_VALUES, quick.TLSC_DEFAULTS),
    (tlsd.command, quick.TLSD_FLAGS, quick.TLSD_VALUES, quick.TLSD_DEFAULTS),
    (tlsserver.command, quick.TLSSERVER_FLAGS, quick.TLSSERVER_VALUES, quick.TLSSERVER_DEFAULTS),
]
IDS = ["tlsc", "tlsd", "tlsserver"]
#: The positional parameter: prog..., or (tlsserver) ip port prog...
POSITIONAL = ("prog", "words")


def _click_words(cmd: click.Command) -> tuple[set[str], set[str]]:
    flags: set[str] = set()
    values: set[str] = set()
    for p in cmd.get_params(click.Context(cmd)):
        if not isinstance(p, click.Option):
            continue
        words = set(p.opts) | set(p.secondary_opts)
        (flags if p.is_flag else values).update(words)
    return flags - DELEGATED, values - DELEGATED


@pytest.mark.parametrize("cmd,flags,values,defaults", CASES, ids=IDS)
def test_tables_match_the_click_commands(cmd, flags, values, defaults):
    click_flags, click_values = _click_words(cmd)
    assert set(flags) == click_flags
    assert set(values) == click_values
    ctx = cmd.make_context(cmd.name or "tlsc", ["--", "prog"])
    expected = {k: v for k, v in ctx.params.items()
                if k not in (*POSITIONAL, "list_backends", "show_version")}
    assert defaults == expected


def _word(flags: dict, values: dict) -> st.SearchStrategy[list[str]]:
    shorts = sorted(w for w in (*flags, *values) if not w.startswith("--"))
    longs = sorted(w for w in (*flags, *values) if w.startswith("--"))
    value = st.sampled_from(["0", "2", "7", "12", "-1", "", "x", "+3", " 4", "1_0", "٣",
                             "localhost", "a b", "--", "-S", "openssl", "tlslite"])
    cluster = st.lists(st.sampled_from([w[1] for w in shorts] + ["q", "-"]),
                       min_size=1, max_size=4).map(lambda cs: "-" + "".join(cs))
    return st.one_of(
        st.sampled_from(shorts + longs + ["--", "-", "--bogus", "--help", "--version"])
        .map(lambda w: [w]),
        st.tuples(st.sampled_from(shorts + longs), value).map(list),
        st.tuples(st.sampled_from(longs), value).map(lambda t: [f"{t[0]}={t[1]}"]),
        st.tuples(st.sampled_from([w for w in shorts if w in values]), value)
        .map(lambda t: [t[0] + t[1]]),
        st.tuples(cluster, value).map(list),
        cluster.map(lambda c: [c]),
    )


def _command_line(flags: dict, values: dict) -> st.SearchStrategy[list[str]]:
    prog = st.lists(st.sampled_from(["cat", "-x", "--", "-S", "prog arg"]), max_size=3)
    return st.tuples(st.lists(_word(flags, values), max_size=6), prog).map(
        lambda t: [w for ws in t[0] for w in ws] + t[1]
    )


def _agrees_with_click(cmd: click.Command, argv: list[str], flags, values, defaults) -> bool:
    parsed = quick.parse(argv, flags, values, defaults)
    if parsed is None:
        return False
    params, prog = parsed
    ctx = cmd.make_context(cmd.name or "tlsc", list(argv))  # must not raise
    got = dict(ctx.params)
    assert not got.pop("list_backends") and not got.pop("show_version")
    assert next(got.pop(k) for k in POSITIONAL if k in got) == prog
    assert got == params
    return True


@pytest.mark.parametrize("cmd,flags,values,defaults", CASES, ids=IDS)
@settings(max_examples=1500, deadline=None)
@given(data=st.data())
def test_accepted_command_lines_read_as_click_reads_them(cmd, flags, values, defaults, data):
    argv = data.draw(_command_line(flags, values))
    _agrees_with_click(cmd, argv, flags, values, defaults)


@pytest.mark.parametrize(
    "argv",
    [
        ["-k", "localhost", "--", "cat"],
        ["-Sjv2", "-kexample.org", "cat", "-S"],
        ["--backend=openssl", "--verbosity", "3", "-K", "5000", "-y", "-Z", "prog"],
        ["-6", "3", "-7", "4", "--no-verify-cert", "-S", "-s", "prog"],
        ["--handshake-timeout=0", "--servername", "a.example", "-v0", "prog", "--", "x"],
    ],
)
def test_everyday_command_lines_take_the_fast_path(argv):
    assert _agrees_with_click(cli.command, argv, quick.TLSC_FLAGS, quick.TLSC_VALUES,
                              quick.TLSC_DEFAULTS)


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"], ["--version"], ["--list-backends"], [], ["-S"], ["--", ],
        ["-v", "-1", "cat"], ["-v", "x", "cat"], ["-k", "", "cat"], ["-kx"],
        ["--bogus", "cat"], ["-q", "cat"], ["--close-notify=yes", "cat"], ["-v"],
        ["-6", "7", "cat"], ["-6", "2", "cat"], ["-k", "-S", "cat"],
    ],
)
def test_everything_else_goes_to_click(argv):
    parsed = quick.parse(argv, quick.TLSC_FLAGS, quick.TLSC_VALUES, quick.TLSC_DEFAULTS)
    assert parsed is None or quick.tlsc_usage_problem(**parsed[0]) is not None


SCRIPT = textwrap.dedent(
    """\
    import os, sys
    for fd in (6, 7):
        try:
            os.close(fd)
        except OSError:
            pass
    from tlsc.quick import {main}
    try:
        {main}(sys.argv[1:])
    except SystemExit as e:
        print(e.code, "click" in sys.modules, file=sys.stderr)
    """
)


def test_the_fast_path_never_imports_click():
    # fd 6 closed: tlsc stops at its first check (111), after the whole parse.
    p = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(main="tlsc_main"), "-k", "localhost", "--", "true"],
        capture_output=True, text=True, timeout=60,
    )
    lines = p.stderr.splitlines()
    assert lines[0] == "tlsc: fatal: unable to use network read fd 6: not open"
    assert lines[-1] == "111 False"


def test_usage_errors_still_come_from_click():
    p = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(main="tlsc_main"), "-6", "2", "true"],
        capture_output=True, text=True, timeout=60,
    )
    lines = p.stderr.splitlines()
    assert lines[0] == (
        "tlsc: fatal: usage: -6 and -7 take descriptors >= 3 (see tlsc --help)"
    )
    assert lines[-1] == "100 True"


@pytest.mark.parametrize("warnings_first", [True, False], ids=["imported", "not-yet"])
def test_no_library_warning_reaches_stderr(tmp_path, warnings_first: bool) -> None:
    """guarded() silences warnings whether or not ``warnings`` was imported before it.

    When it was not, nothing imports it for the purpose: ``sys.warnoptions``
    does the job when a library first imports it.
    """
    lib = tmp_path / "noisy.py"
    lib.write_text("import warnings\nwarnings.warn('about some certificate', UserWarning)\n")
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        if {warnings_first}:
            import warnings
        from tlsc import quick
        def body(log):
            imported = 'warnings' in sys.modules
            import noisy
            print('imported before the library:', imported)
            return 0
        sys.exit(quick.guarded('tlsc', body))
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"imported before the library: {warnings_first}"
    assert run.stderr == ""
