"""Fixtures for the tlsc end-to-end tests.

Everything here runs real processes on real sockets: ``openssl s_server`` and a
stdlib-``ssl`` peer (tests/support/pypeer.py) on 127.0.0.1, and tlsc started
the way tcpclient starts it, with the connection on its fds 6 and 7.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import pytest

from tests.support import run as runmod
from tests.support.peers import PyPeer, SServer
from tests.support.progs import Probe
from tlsc.testing.pki import PKI, Credential, build_pki


def installed_backends() -> list[str]:
    return sorted({ep.name for ep in entry_points(group="tlsc.backends")})


def pytest_generate_tests(metafunc):
    if getattr(metafunc.cls, "backend_name", None):
        return  # a BackendConformance subclass: its own ``backend`` fixture names one
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", installed_backends(), scope="session")


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> PKI:
    return build_pki(tmp_path_factory.mktemp("pki"))


class Tlsc:
    """tlsc bound to one backend, with CAFILE=root CA unless told otherwise."""

    def __init__(self, backend: str | None, pki: PKI):
        self.backend = backend
        self.pki = pki

    def _prepare(self, args, env):
        full = {"CAFILE": str(self.pki.cafile)}
        full.update(env or {})
        pre = ["--backend", self.backend] if self.backend else []
        return pre + [str(a) for a in args], full

    def run(self, args, *, env=None, **kw) -> runmod.Result:
        args, env = self._prepare(args, env)
        return runmod.run(args, env=env, **kw)

    def start(self, args, *, env=None, **kw) -> runmod.Running:
        args, env = self._prepare(args, env)
        return runmod.start(args, env=env, **kw)


@pytest.fixture
def tlsc(backend, pki) -> Tlsc:
    return Tlsc(backend, pki)


@pytest.fixture
def tlsc_plain(pki) -> Tlsc:
    """tlsc without --backend: for usage errors that happen before a backend is chosen."""
    return Tlsc(None, pki)


@pytest.fixture
def sserver():
    """Factory: ``sserver(leaf, tls="1.3", extra=[...])`` -> a running openssl s_server."""
    started: list[SServer] = []

    def make(leaf: Credential, *, tls: str | None = None, mode: str = "rev",
             chain: Path | None | bool = True, extra=()) -> SServer:
        if chain is True:
            chain = leaf.issuers_pem
        elif chain is False:
            chain = None
        s = SServer(cert=leaf.cert_pem, key=leaf.key_pem, chain=chain, tls=tls, mode=mode,
                    extra=list(extra))
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


@pytest.fixture
def pypeer():
    """Factory: ``pypeer(leaf, tls="1.2", send_text=..., close="eof", ...)`` (see pypeer.py)."""
    started: list[PyPeer] = []

    def make(leaf: Credential | None = None, **opts) -> PyPeer:
        if leaf is not None:
            opts.setdefault("cert", leaf.chain_pem)
            opts.setdefault("key", leaf.key_pem)
        p = PyPeer(**opts)
        started.append(p)
        return p

    yield make
    for p in started:
        p.stop()


@pytest.fixture
def probe(tmp_path):
    """Factory: ``probe(name)`` -> a Probe writing its report under tmp_path."""
    def make(name: str = "probe") -> Probe:
        return Probe(tmp_path, name)

    return make
