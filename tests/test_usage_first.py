"""A usage error (100) is found before anything else is printed: its line is the only one.

Each command line below has a usage error (a backend that does not exist, by
--backend or TLSC_BACKEND) *and* something that would otherwise have printed
first: the ``no -k servername`` warning, the --no-verify-cert warning, a
CADIR entry that cannot be read, a connection that cannot be made.  The fatal
line must be the only line on stderr.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

from tests.support import run as runmod
from tests.support.cases import write_pki
from tests.support.pair import tcp_pair
from tests.support.progs import marker_prog
from tests.support.serve import free_port, start_tlsd

UCSPITLSC = [sys.executable, "-c", "from tlsc.quick import ucspitlsc_main; ucspitlsc_main()"]
UCSPITLSD = [sys.executable, "-c", "from tlsc.quick import ucspitlsd_main; ucspitlsd_main()"]
UNKNOWN = "nonexistent"


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    d = write_pki(tmp_path_factory.mktemp("usage"))
    cadir = d / "cadir"
    cadir.mkdir()
    (cadir / "root.pem").write_bytes((d / "root.pem").read_bytes())
    os.symlink(d / "no-such-file", cadir / "dangling.pem")  # "skipping ...": a warning
    return d


def _selection(how: str) -> tuple[list[str], dict[str, str]]:
    """(arguments, environment) naming the unknown backend ``how``: by flag or variable."""
    if how == "flag":
        return ["--backend", UNKNOWN], {}
    return [], {"TLSC_BACKEND": UNKNOWN}


def _assert_only_the_usage_line(name: str, rc: int, stderr: str, marker: Path) -> None:
    lines = stderr.splitlines()
    assert rc == 100, stderr
    assert len(lines) == 1, stderr
    # tlsd's lines (and ucspitlsd's) name the process: "tlsd: fatal: pid 123: ..."
    assert re.match(
        rf"{name}: fatal: (pid \d+: )?unable to select a backend: "
        rf"backend {UNKNOWN!r} is not installed",
        lines[0],
    ), stderr
    assert not marker.exists()


HOW = ["flag", "variable"]


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize(
    ("name", "cmd", "extra", "env"),
    [
        ("tlsc", runmod.TLSC, [], {}),  # no -k: the warning
        ("tlsc", runmod.TLSC, ["--no-verify-cert"], {"CAFILE": None}),  # always warned
        ("tlsc", runmod.TLSC, ["-v", "2", "-k", "localhost"], {"CADIR": "cadir"}),
        ("ucspitlsc", UCSPITLSC, [], {}),
    ],
    ids=["tlsc-no-k", "tlsc-no-verify-cert", "tlsc-cadir-skip", "ucspitlsc-no-k"],
)
def test_client_side(name, cmd, extra, env, how, files, tmp_path) -> None:
    args, sel_env = _selection(how)
    full_env = {"CAFILE": files / "root.pem", **sel_env}
    for k, v in env.items():
        full_env[k] = files / v if v == "cadir" else v
    marker = tmp_path / "ran"
    client, server = tcp_pair()
    server.close()
    r = runmod.run([*args, *extra, *marker_prog(marker)], peer=client, env=full_env, cmd=cmd)
    _assert_only_the_usage_line(name, r.rc, r.stderr, marker)


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize(("name", "cmd"), [("tlsd", None), ("ucspitlsd", UCSPITLSD)])
def test_server_side(name, cmd, how, files, tmp_path) -> None:
    """-y with a CADIR holding an entry that cannot be read (a warning when read)."""
    args, sel_env = _selection(how)
    env = {"KEYFILE": files / "good.key", "CERTFILE": files / "good.chain",
           "CADIR": files / "cadir", **sel_env}
    marker = tmp_path / "ran"
    client, server = tcp_pair()
    try:
        if cmd is None:
            t = start_tlsd([*args, "-y", "-v", "2", *marker_prog(marker)], server, env)
            res = t.wait()
            rc, stderr = res.rc, res.stderr
        else:
            r = runmod.run([*args, "-y", "-v", "2", *marker_prog(marker)], peer=server, env=env,
                           cmd=cmd, fds=(0, 1))
            rc, stderr = r.rc, r.stderr
    finally:
        client.close()
    _assert_only_the_usage_line(name, rc, stderr, marker)


@pytest.mark.parametrize("how", HOW)
def test_tlsclient_before_it_connects(how, files, tmp_path) -> None:
    """Nothing listens on the port: a connection attempt would print 'unable to connect'."""
    args, sel_env = _selection(how)
    marker = tmp_path / "ran"
    r = runmod.run([*args, "127.0.0.1", str(free_port()), *marker_prog(marker)],
                   cmd=runmod.TLSCLIENT, env={"CAFILE": files / "root.pem", **sel_env})
    _assert_only_the_usage_line("tlsclient", r.rc, r.stderr, marker)
