"""What a connection's start-up imports: only what the handshake needs.

tlsc starts once per connection, so every module it imports is latency that
every connection pays.  These tests pin the modules the core leaves out of a
run (the reasons are where each one is deferred): click, the entry-point
scan's ``importlib.metadata`` (and ``importlib`` itself: ``__import__`` does),
``dataclasses`` (and the ``inspect``/``ast`` it drags in), ``typing``,
``ipaddress`` (for a DNS name), ``datetime``,
``hashlib`` (the peer certificate's hash uses the interpreter's own SHA-256),
``signal`` (the core uses ``_signal``: no enums to build), ``enum`` (the
reasons are a light enum of their own) and what it brings (``functools``,
``collections``), ``socket`` (``_socket``, at the end only), ``warnings``
(``sys.warnoptions`` instead), ``re`` on the core's own path (no pattern is
compiled at start; a backend's library may bring it), and the core's own
modules that only --help or a type checker need.

Two views, both on real interpreters: the core's own import graph on the fast
path (a fresh interpreter, no backend), and a real ``tlsc`` run against
``openssl s_server`` for each installed backend, where whatever the run imports
beyond what importing the backend itself imports is the core's doing.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import run as runmod
from tests.support.peers import SServer
from tlsc.testing import certs

#: Never imported by a run of the core.
CUT = {
    "click",
    "importlib",
    "importlib.metadata",
    "dataclasses",
    "inspect",
    "typing",
    "ipaddress",
    "datetime",
    "hashlib",
    "signal",
    "enum",
    "functools",
    "collections",
    "socket",
    "warnings",
    "ssl",
    "tlsc.cli",
    "tlsc.protocols",
}

def _modules(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sys.modules))"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    return set(out.split())


def test_fast_path_imports_none_of_the_cut_modules() -> None:
    """Parse an everyday command line and import everything a run executes, as tlsc does."""
    got = _modules(
        "import tlsc.quick as q\n"
        "p = q.parse(['-v', '2', '-k', 'example.com', '--', 'prog'], q.TLSC.flags,"
        " q.TLSC.values, q.TLSC.defaults)\n"
        "opts = q.TLSC.options(*p)\n"
        "assert opts.servername == 'example.com' and list(opts.prog) == ['prog']\n"
        "import tlsc.client, tlsc.config, tlsc.engine, tlsc.registry\n"
        "from tlsc.session import ClientConfig\n"
        "assert ClientConfig(server_name=opts.servername).sni == 'example.com'\n"
    )
    assert "tlsc.client" in got
    assert not (CUT | {"re"}) & got, sorted((CUT | {"re"}) & got)


def test_the_protocol_classes_are_still_there() -> None:
    """tlsc.session still exports the Protocols (imported on first use)."""
    from tlsc import protocols, session
    from tlsc.session import Backend, ClientContext, ServerContext, Session

    assert (Backend, ClientContext, ServerContext, Session) == (
        protocols.Backend, protocols.ClientContext, protocols.ServerContext, protocols.Session
    )
    with pytest.raises(AttributeError):
        session.NoSuchThing  # noqa: B018


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[SServer, Path]]:
    """``openssl s_server -rev`` for localhost, and the CAFILE that trusts it."""
    d = tmp_path_factory.mktemp("startup")
    now = dt.datetime.now(dt.timezone.utc)
    when = {"not_before": now - certs.DAY, "not_after": now + 30 * certs.DAY}
    ca = certs.issue("startup CA", ca=True, **when)
    leaf = certs.issue("localhost", issuer=ca, dns=["localhost"], slot=1, **when)
    (d / "ca.pem").write_bytes(ca.pem)
    (d / "leaf.pem").write_bytes(leaf.pem)
    (d / "leaf.key").write_bytes(leaf.key_pem())
    s = SServer(cert=d / "leaf.pem", key=d / "leaf.key")
    yield s, d / "ca.pem"
    s.stop()


#: tlsc, with sys.modules written to $MODULES_OUT when it exits.
RECORDING_TLSC = [
    sys.executable,
    "-c",
    "import atexit, os, sys\n"
    "def dump():\n"
    "    with open(os.environ['MODULES_OUT'], 'w') as f:\n"
    "        f.write(' '.join(sys.modules))\n"
    "atexit.register(dump)\n"
    "from tlsc.quick import tlsc_main\n"
    "tlsc_main()\n",
]


def test_a_real_run_imports_only_what_its_backend_brings(
    backend: str, server: tuple[SServer, Path], tmp_path: Path
) -> None:
    out = tmp_path / "modules"
    prog = ["sh", "-c", 'echo hello >&7; read -r line <&6; echo "$line"']
    r = runmod.run(
        ["--backend", backend, "-k", "localhost", "--", *prog],
        peer=server[0].address,
        env={"CAFILE": server[1], "MODULES_OUT": out},
        cmd=RECORDING_TLSC,
    )
    r.assert_ok()
    assert r.stdout == "olleh\n", r.describe()
    ran = set(out.read_text().split())
    # The backend, imported as tlsc imports it, with everything it brings along.
    brought = _modules(f"from tlsc import registry; registry.resolve({backend!r})")
    assert "tlsc.engine" in ran and brought - {"tlsc.registry"} <= ran
    assert not CUT & (ran - brought), sorted(CUT & (ran - brought))
