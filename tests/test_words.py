"""The same failure gets the same words from every backend, end to end.

For each failure class, every installed backend runs as a real
``tlsc`` (or ``tlsd``) process against a real peer (the stdlib-ssl server of
tests/support/pypeer.py, or a real ``tlsd``/``tlsc`` on the other end), and
the fatal lines are compared: each must be the expected ``<what failed>:
<words>``, possibly followed by ``: <detail>`` (a backend may add detail after
the words, never replace them), and the part before the detail must be the
same for every backend.  A backend installed tomorrow is covered by the same
table with no change here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import installed_backends
from tests.support import run as runmod
from tests.support.cases import write_pki
from tests.support.pair import run_pair
from tests.support.peers import PyPeer
from tests.support.progs import marker_prog

BACKENDS = installed_backends()
HANDSHAKE = "handshake failed"
#: A TLS record header and an HTTP answer: not TLS.
HTTP = (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n").hex()


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    return write_pki(tmp_path_factory.mktemp("words"))


@dataclass(frozen=True)
class Case:
    """One failure class: the peer to run, tlsc's extra arguments, the line it must print."""

    peer: dict[str, object]  #: PyPeer options; "chain": a chain name of write_pki
    args: tuple[str, ...]
    what: str  #: "<what failed>" of the fatal line (a regular expression)
    words: str  #: the words, exactly
    detail: str | None = None  #: when set, the detail too, exactly


CLIENT_CASES = {
    "expired": Case({"chain": "expired"}, ("-k", "localhost"), HANDSHAKE,
                    "certificate has expired"),
    "not yet valid": Case({"chain": "not_yet_valid"}, ("-k", "localhost"), HANDSHAKE,
                          "certificate is not yet valid"),
    "name mismatch": Case({"chain": "good"}, ("-k", "other.test"), HANDSHAKE,
                          "certificate name mismatch", "not valid for 'other.test'"),
    "unknown CA": Case({"chain": "unknown_ca"}, ("-k", "localhost"), HANDSHAKE,
                       "unknown certificate authority"),
    "self-signed leaf": Case({"chain": "self_signed"}, ("-k", "localhost"), HANDSHAKE,
                             "self-signed certificate"),
    "leaf signed by a non-CA": Case({"chain": "by_non_ca"}, ("-k", "localhost"), HANDSHAKE,
                                    "invalid CA certificate"),
    "weak key": Case({"chain": "weak_key", "seclevel0": True, "tls": "1.2"},
                     ("-k", "localhost"), HANDSHAKE, "certificate key too weak"),
    "fatal alert received": Case(
        {"chain": "good", "client_cert": "required", "client_ca": "root.pem", "tls": "1.2"},
        ("-k", "localhost"), HANDSHAKE, "the server sent a fatal alert", "handshake_failure"),
    "truncation under -J": Case(
        {"chain": "good", "send_text": "hello\\n", "close": "eof",
         "no_wait_client_close": True},
        ("-J", "-k", "localhost"), "connection truncated",
        "the server closed the connection without close_notify"),
    "handshake timeout": Case({"mode": "stall"}, ("-K", "700", "-k", "localhost"), HANDSHAKE,
                              "handshake timed out"),
    "garbage": Case({"mode": "garbage", "garbage": HTTP}, ("-k", "localhost"), HANDSHAKE,
                    "protocol error"),
}


def _split(line: str, prefix: str, what: str, words: str) -> tuple[str, str | None]:
    """(the line up to the words, the detail after them) or an AssertionError."""
    # tlsd's lines name the process after the kind: "tlsd: fatal: pid 123: ...".
    line = re.sub(r"^(\w+: fatal: )pid \d+: ", r"\1", line)
    m = re.match(rf"({re.escape(prefix)}: fatal: {what}: {re.escape(words)})(?:: (.+))?\Z", line)
    assert m, f"not '{prefix}: fatal: {what}: {words}[: detail]': {line!r}"
    return m.group(1), m.group(2)


def _peer(case: Case, files: Path) -> PyPeer:
    opts = dict(case.peer)
    chain = opts.pop("chain", None)
    if "client_ca" in opts:
        opts["client_ca"] = files / str(opts["client_ca"])
    if chain is not None:
        return PyPeer(cert=files / f"{chain}.chain", key=files / f"{chain}.key", **opts)
    return PyPeer(**opts)


def _tlsc_line(backend: str, case: Case, files: Path, tmp_path: Path) -> str:
    peer = _peer(case, files)
    marker = tmp_path / f"ran-{backend}"
    prog = ["sh", "-c", 'touch "$1"; cat <&6 >/dev/null', "sh", str(marker)]
    if case.what == HANDSHAKE:
        prog = marker_prog(marker)
    try:
        r = runmod.run(["--backend", backend, *case.args, *prog], peer=peer.address,
                       env={"CAFILE": files / "root.pem"})
    finally:
        peer.stop()
    r.assert_no_traceback()
    assert r.rc == 98, r.describe()
    assert len(r.fatal) == 1, r.describe()
    if case.what == HANDSHAKE:
        assert not marker.exists(), "prog ran although the handshake failed"
    return r.fatal[0]


@pytest.mark.parametrize("failure", CLIENT_CASES, ids=list(CLIENT_CASES))
def test_tlsc_says_the_same_thing_with_every_backend(failure: str, files, tmp_path) -> None:
    case = CLIENT_CASES[failure]
    lines = {b: _tlsc_line(b, case, files, tmp_path) for b in BACKENDS}
    heads = {}
    for backend, line in lines.items():
        heads[backend], detail = _split(line, "tlsc", case.what, case.words)
        if case.detail is not None:
            assert detail == case.detail, f"{backend}: detail {detail!r} in {line!r}"
    assert len(set(heads.values())) == 1, f"backends disagree: {lines}"


# -- the server's side: tlsd names the client -------------------------------------------


def _tlsd_line(server: str, client_args: list[str], server_args: list[str], files: Path,
               tmp_path: Path, client_env: dict | None = None) -> str:
    marker = tmp_path / f"ran-{server}"
    r = run_pair(
        client_args,
        ["--backend", server, *server_args, *marker_prog(marker)],
        client_env={"CAFILE": files / "root.pem", **(client_env or {})},
        server_env={"KEYFILE": files / "good.key", "CERTFILE": files / "good.chain",
                    "CAFILE": files / "root.pem"},
    )
    assert "Traceback" not in r.server.stderr, r.server.describe()
    assert r.server.rc == 98, r.server.describe()
    assert len(r.server.fatal) == 1, r.server.describe()
    assert not marker.exists(), "tlsd's prog ran although the handshake failed"
    return r.server.fatal[0]


SERVER_CASES: dict[str, tuple[Callable[[str], list[str]], list[str], str, str, str | None]] = {
    # (tlsc's arguments given a client backend, tlsd's arguments, what, words, detail)
    "no client certificate under -y": (
        lambda b: ["--backend", b, "-k", "localhost", "sh", "-c", "cat <&6"], ["-y"],
        HANDSHAKE, "the client sent no certificate", None),
    "fatal alert received": (
        lambda b: ["--backend", b, "-k", "other.test", "true"], [],
        HANDSHAKE, "the client sent a fatal alert", None),
}


@pytest.mark.parametrize("failure", SERVER_CASES, ids=list(SERVER_CASES))
def test_tlsd_says_the_same_thing_with_every_backend(failure: str, files, tmp_path) -> None:
    """One client (the first installed backend) against every backend's tlsd."""
    client_args, server_args, what, words, detail = SERVER_CASES[failure]
    client = BACKENDS[0]
    lines = {s: _tlsd_line(s, client_args(client), server_args, files, tmp_path)
             for s in BACKENDS}
    heads = {}
    details = set()
    for backend, line in lines.items():
        heads[backend], said = _split(line, "tlsd", what, words)
        details.add(said)
        if detail is not None:
            assert said == detail, f"{backend}: detail {said!r} in {line!r}"
    assert len(set(heads.values())) == 1, f"backends disagree: {lines}"
    if words.endswith("fatal alert"):
        # One client, one alert: its name is spelt one way by every server backend.
        assert len(details) == 1 and None not in details, f"alert named differently: {lines}"
