"""The conformance harness itself: green for both backends, red when a rule is broken."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys

import pytest

from tlsc.reasons import Reason
from tlsc.session import (
    AlertReceived,
    Capabilities,
    ClientConfig,
    ProtocolError,
    TLSError,
    Truncated,
    VerificationError,
)
from tlsc.testing import duplex, harness, live, memory, starttls, tlsdpeers
from tlsc.testing.pathcases import cases

BACKENDS = ["openssl", "tlslite"]
ORDERS = ("peer-ends-first", "prog-ends-first")
VERSIONS = ("TLSv1.2", "TLSv1.3")

# These tests compare the project's two backends with each other, so they need
# both; tox's one-backend environments run the conformance stubs in backends/.
pytestmark = pytest.mark.skipif(
    not {"openssl", "tlslite"} <= set(importlib.metadata.entry_points(group="tlsc.backends").names),
    reason="comparing the two shipped backends needs both installed",
)


def test_battery_is_big_and_covers_both_verdicts() -> None:
    cs = cases()
    assert len(cs) >= 200
    assert {c.expected for c in cs} == {"accept", "reject"}
    assert len({c.name for c in cs}) == len(cs)


@pytest.mark.parametrize("name", BACKENDS)
def test_path_battery_passes(name: str) -> None:
    cells = harness.run_path_battery([harness.get_backend(name)])
    assert not [c for c in cells if not c.ok], [c for c in cells if not c.ok][:5]


@pytest.mark.parametrize("name", BACKENDS)
def test_path_battery_passes_through_handshakes(name: str) -> None:
    """Every case again, as a real handshake against a server presenting the chain."""
    cells = harness.run_path_handshakes([harness.get_backend(name)])
    assert not [c for c in cells if not c.ok], [c for c in cells if not c.ok][:5]
    # only the cases a handshake at the wall clock cannot stage are excused
    excused = {c.scenario for c in cells if c.status == "excused"}
    assert excused and all(s.startswith("verify:validity/") for s in excused), excused


def test_backends_agree() -> None:
    backends = [harness.get_backend(n) for n in BACKENDS]
    cells = harness.run_path_battery(backends)
    cells += harness.run_path_handshakes(backends)
    cells += harness.run_scenarios(backends, memory.SCENARIOS, "memory")
    assert harness.disagreements(cells) == []


def test_handshake_battery_catches_a_handshake_that_accepts_anything() -> None:
    """A backend whose handshakes verify nothing: the handshake battery must turn red."""
    import dataclasses

    lax = _Wrapped(harness.get_backend("openssl"), _Proxy,
                   lambda config: dataclasses.replace(config, verify=False))
    rules = {"rfc5280-structure", "name-constraints", "anchor-key-strength"}
    cells = harness.run_path_handshakes([lax], [c for c in cases() if c.rule in rules])
    failed = {c.scenario.split("/")[0] for c in cells if not c.ok}
    assert failed == {f"verify:{r}" for r in rules}


class _AcceptAll:
    """A backend whose verify_chain accepts everything: the battery must catch it."""

    name = "accept-all"

    def __init__(self, real: object) -> None:
        self.real = real

    def info(self) -> object:
        return self.real.info()  # type: ignore[attr-defined]

    def verify_chain(self, *args: object) -> None:
        return None


def test_broken_rule_turns_red() -> None:
    cells = harness.run_path_battery([_AcceptAll(harness.get_backend("openssl"))])
    failed = {c.scenario.split("/")[0] for c in cells if not c.ok}
    assert {"verify:validity", "verify:names", "verify:weak-crypto", "verify:chain"} <= failed


def test_capability_excuses_only_what_is_declared() -> None:
    caps = Capabilities(tls_versions=("TLSv1.2", "TLSv1.3"), client_certificates=False)
    assert harness.excuse(caps, {"client_certificates": True})
    assert harness.excuse(caps, {"tls_versions": "TLSv1.3"}) is None
    assert harness.excuse(caps, {"tls_versions": "SSLv3"})


@pytest.mark.parametrize("name", harness.backend_names())
def test_every_shipped_backend_writes_after_peer_close_notify(name: str) -> None:
    """Not writing after the peer's TLS 1.3 close_notify is a defect, not a
    capability; the scenarios proving it need nothing else of a backend."""
    assert harness.get_backend(name).info().capabilities.write_after_close_notify


def test_command_json_exit_0() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tlsc.conformance", "--json"],
        capture_output=True, text=True, timeout=900,  # a hang bound, not a speed check
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["ok"] is True and doc["counts"]["fail"] == 0
    installed = harness.backend_names()  # every installed backend, stdlib included
    assert {c["backend"] for c in doc["cells"]} == set(installed)
    servers = [n for n in installed if harness.get_backend(n).info().capabilities.server]
    assert "openssl" in servers
    tlsd_peers = {f"tlsd-{n}" for n in servers}
    assert {"verify", "pyopenssl-memory", "openssl-s_server", "gnutls-serv", "python-ssl",
            "python-ssl-client", *tlsd_peers} <= {c["peer"] for c in doc["cells"]}
    names = {c["scenario"] for c in doc["cells"]}
    for want in ("gnutls-serv/sni-dns-name", "openssl-s_server/sni-none-for-ip",
                 "openssl-s_server/peer-close-notify-is-clean", "gnutls-serv/half-close-TLSv1.3",
                 "python-ssl/garbage-in-handshake", "python-ssl/garbage-after-handshake",
                 "python-ssl/handshake-timeout", "python-ssl/bulk-echo-TLSv1.3",
                 "write-after-peer-close-notify-TLSv1.3", "peer-close-notify-answered-TLSv1.2",
                 *(f"python-ssl/tlsc-duplex-{o}-{v}" for o in ORDERS for v in VERSIONS),
                 *(f"python-ssl-client/tlsd-duplex-{o}-{v}" for o in ORDERS for v in VERSIONS)):
        assert want in names, want
    # No byte lost: every duplex cell of every backend passes (none is excused).
    duplex_cells = [c for c in doc["cells"] if "-duplex-" in c["scenario"]]
    assert {c["status"] for c in duplex_cells} == {"pass"}, [
        c for c in duplex_cells if c["status"] != "pass"
    ]
    # Every client backend against every backend's server side (a real tlsd), all green:
    # every backend declares every capability these scenarios need, so nothing is excused.
    tlsd_cells = [c for c in doc["cells"] if c["peer"] in tlsd_peers]
    battery = ("echo-TLSv1.3-RSA", "echo-TLSv1.3-ECDSA", "sni-dns-name", "sni-none-for-ip",
               "client-cert-required-present", "client-cert-required-absent",
               "peer-close-notify-after-prog-exit", "bulk-echo-TLSv1.3",
               *(f"tlsc-duplex-{o}-TLSv1.3" for o in ORDERS))
    assert {(c["backend"], c["scenario"]) for c in tlsd_cells} == {
        (b, f"{p}/{s}") for b in installed for p in tlsd_peers for s in battery
    }
    assert {c["status"] for c in tlsd_cells} == {"pass"}, [
        c for c in tlsd_cells if c["status"] != "pass"
    ]
    # Refused for lack of a client certificate: the same way, whichever pair.
    refusals = {c["detail"].split(" (")[0] for c in tlsd_cells
                if c["scenario"].endswith("/client-cert-required-absent")}
    assert refusals == {"AlertReceived at the first read"}, refusals
    # STARTTLS: every client backend in ucspitlsc and against every backend's ucspitlsd.
    starttls_peers = {f"ucspitlsd-{n}" for n in servers}
    starttls_cells = [c for c in doc["cells"] if c["peer"] in starttls_peers
                      or c["scenario"] == "python-ssl/ucspitlsc-starttls-Y"]
    battery = ("starttls-Y", "starttls-clienthello-with-the-command", "starttls-declined")
    assert {(c["backend"], c["scenario"]) for c in starttls_cells} == {
        (b, f"{p}/{s}") for b in installed for p in starttls_peers for s in battery
    } | {(b, "python-ssl/ucspitlsc-starttls-Y") for b in installed}
    assert {c["status"] for c in starttls_cells} == {"pass"}, [
        c for c in starttls_cells if c["status"] != "pass"
    ]
    assert doc["seconds"] > 0  # reported; never asserted against a bound (a shared machine)


def test_command_exits_nonzero_when_a_backend_is_broken(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tlsc import conformance

    real = harness.get_backend
    monkeypatch.setattr(
        harness, "get_backend", lambda n: _AcceptAll(real(n)) if n == "tlslite" else real(n)
    )
    monkeypatch.setattr(harness, "run_scenarios", lambda *a, **k: [])
    monkeypatch.setattr("tlsc.testing.live.run_live", lambda b: [])
    rc = conformance.main(["--backend", "tlslite", "--no-live"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "NOT CONFORMANT" in out


def test_command_unknown_backend_is_usage_error() -> None:
    from tlsc import conformance

    assert conformance.main(["--backend", "nosuch"]) == 100


# -- the live battery catches broken behaviour ---------------------------------


class _Wrapped:
    """A real backend whose sessions go through ``wrap`` (and configs through ``config``)."""

    def __init__(self, real: object, wrap: object, config: object = None) -> None:
        self.real, self.wrap, self.config = real, wrap, config
        self.name = real.name  # type: ignore[attr-defined]

    def info(self) -> object:
        return self.real.info()  # type: ignore[attr-defined]

    def client_context(self, config: object, warn: object) -> object:
        if self.config is not None:
            config = self.config(config)  # type: ignore[operator]
        ctx = self.real.client_context(config, warn)  # type: ignore[attr-defined]
        wrap = self.wrap

        class Ctx:
            def session(self) -> object:
                return wrap(ctx.session())  # type: ignore[operator]

        return Ctx()


class _Proxy:
    def __init__(self, inner: object) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


class _GarbageIsTruncated(_Proxy):
    def do_handshake(self) -> bool:
        try:
            return self.inner.do_handshake()  # type: ignore[attr-defined,no-any-return]
        except ProtocolError as e:
            raise Truncated(str(e)) from e

    def read(self, n: int) -> bytes | None:
        try:
            return self.inner.read(n)  # type: ignore[attr-defined,no-any-return]
        except ProtocolError as e:
            raise Truncated(str(e)) from e


class _CloseNotifyIsTruncated(_Proxy):
    def read(self, n: int) -> bytes | None:
        got = self.inner.read(n)  # type: ignore[attr-defined]
        if got == b"":
            raise Truncated("EOF")
        return got  # type: ignore[no-any-return]


class _NoCloseNotify(_Proxy):
    def close_notify(self) -> None:
        return None


class _Corrupting(_Proxy):
    def read(self, n: int) -> bytes | None:
        got = self.inner.read(n)  # type: ignore[attr-defined]
        return bytes([got[0] ^ 1]) + got[1:] if got else got  # type: ignore[no-any-return]


def _no_sni(config: ClientConfig) -> ClientConfig:
    return ClientConfig(
        anchors=config.anchors,
        verify=config.verify,
        server_name=None,
        cert_chain=config.cert_chain,
        private_key=config.private_key,
        extra=config.extra,
    )


def _live_failures(backend: object, *names: str) -> set[str]:
    every = (*live.SCENARIOS, *tlsdpeers.scenarios(), *starttls.scenarios())
    todo = [s for s in every if s.name in names]
    assert len(todo) == len(names), "a scenario was renamed"
    cells = []
    for peer in {s.peer for s in todo}:
        if peer in live.BINARIES and live.missing_peer(peer):
            pytest.skip(live.missing_peer(peer))
        cells += harness.run_scenarios([backend], [s for s in todo if s.peer == peer], peer)
    return {c.scenario for c in cells if not c.ok}


@pytest.mark.parametrize("name", BACKENDS)
def test_live_garbage_mapped_to_truncated_turns_red(name: str) -> None:
    b = _Wrapped(harness.get_backend(name), _GarbageIsTruncated)
    names = ("python-ssl/garbage-in-handshake", "python-ssl/garbage-after-handshake")
    assert _live_failures(b, *names) == set(names)


def test_live_close_notify_mapped_to_truncated_turns_red() -> None:
    b = _Wrapped(harness.get_backend("openssl"), _CloseNotifyIsTruncated)
    names = ("openssl-s_server/peer-close-notify-is-clean",
             "gnutls-serv/peer-close-notify-is-clean")
    assert _live_failures(b, *names) == set(names)


def test_live_missing_close_notify_turns_half_close_red() -> None:
    b = _Wrapped(harness.get_backend("openssl"), _NoCloseNotify)
    names = ("openssl-s_server/half-close-TLSv1.3", "gnutls-serv/half-close-TLSv1.3")
    assert _live_failures(b, *names) == set(names)


def test_live_missing_sni_turns_red() -> None:
    b = _Wrapped(harness.get_backend("openssl"), _Proxy, _no_sni)
    names = ("openssl-s_server/sni-dns-name", "gnutls-serv/sni-dns-name")
    assert _live_failures(b, *names) == set(names)


def test_live_corrupted_bulk_turns_red() -> None:
    b = _Wrapped(harness.get_backend("openssl"), _Corrupting)
    assert _live_failures(b, "python-ssl/bulk-echo-TLSv1.3") == {"python-ssl/bulk-echo-TLSv1.3"}


def test_live_handshake_timeout_is_a_timeout_not_an_error() -> None:
    class Refusing(_Proxy):
        def do_handshake(self) -> bool:
            raise ProtocolError("gave up at once")

    b = _Wrapped(harness.get_backend("openssl"), Refusing)
    assert _live_failures(b, "python-ssl/handshake-timeout") == {"python-ssl/handshake-timeout"}


# -- the server side: every backend's tlsd ---------------------------------------


def _tlsd(scenario: str) -> tuple[str, ...]:
    peers = tlsdpeers.peers()
    assert "tlsd-openssl" in peers
    return tuple(f"{p}/{scenario}" for p in peers)


def test_tlsd_peers_follow_the_server_capability() -> None:
    want = [n for n in harness.backend_names()
            if harness.get_backend(n).info().capabilities.server]
    assert tlsdpeers.server_backends() == tuple(want)
    assert {s.peer for s in tlsdpeers.scenarios()} == {f"tlsd-{n}" for n in want}


@pytest.mark.parametrize("name", BACKENDS)
def test_tlsd_missing_sni_turns_red(name: str) -> None:
    b = _Wrapped(harness.get_backend(name), _Proxy, _no_sni)
    names = _tlsd("sni-dns-name")
    assert _live_failures(b, *names) == set(names)


def test_tlsd_sni_cells_green_unwrapped() -> None:
    names = _tlsd("sni-dns-name") + _tlsd("sni-none-for-ip")
    assert _live_failures(harness.get_backend("openssl"), *names) == set()


def test_tlsd_close_notify_mapped_to_truncated_turns_red() -> None:
    b = _Wrapped(harness.get_backend("openssl"), _CloseNotifyIsTruncated)
    names = _tlsd("peer-close-notify-after-prog-exit")
    assert _live_failures(b, *names) == set(names)


class _AlertIsClose(_Proxy):
    def read(self, n: int) -> bytes | None:
        try:
            return self.inner.read(n)  # type: ignore[attr-defined,no-any-return]
        except AlertReceived:
            return b""


def test_tlsd_swallowed_refusal_turns_red() -> None:
    b = _Wrapped(harness.get_backend("openssl"), _AlertIsClose)
    names = _tlsd("client-cert-required-absent")
    assert _live_failures(b, *names) == set(names)


# -- STARTTLS: ucspitlsc, and every backend's ucspitlsd ----------------------------


def _starttls(scenario: str) -> tuple[str, ...]:
    peers = starttls.peers()
    assert "ucspitlsd-openssl" in peers
    return tuple(f"{p}/{scenario}" for p in peers)


def test_starttls_peers_follow_the_server_capability() -> None:
    want = {f"ucspitlsd-{n}" for n in harness.backend_names()
            if harness.get_backend(n).info().capabilities.server}
    assert {s.peer for s in starttls.scenarios()} == want | {"python-ssl"}


@pytest.mark.parametrize("name", BACKENDS)
def test_starttls_cells_green(name: str) -> None:
    names = tuple(s.name for s in starttls.scenarios())
    assert _live_failures(harness.get_backend(name), *names) == set()


def test_starttls_missing_sni_turns_red() -> None:
    """The Y answer is checked against what the client asked for: SNI included."""
    b = _Wrapped(harness.get_backend("openssl"), _Proxy, _no_sni)
    names = _starttls("starttls-Y") + _starttls("starttls-clienthello-with-the-command")
    assert _live_failures(b, *names) == set(names)


class _LosesFirstBytes(_Proxy):
    """Drops the first plaintext record: what a relay that read ahead would do."""

    lost = False

    def read(self, n: int) -> bytes | None:
        got = self.inner.read(n)  # type: ignore[attr-defined]
        if got and not self.lost:
            self.lost = True
            return self.inner.read(n)  # type: ignore[attr-defined,no-any-return]
        return got  # type: ignore[no-any-return]


def test_starttls_lost_first_bytes_turn_red() -> None:
    b = _Wrapped(harness.get_backend("openssl"), _LosesFirstBytes)
    names = _starttls("starttls-Y")
    assert _live_failures(b, *names) == set(names)


# -- the duplex battery (no byte lost) catches a relay that loses or leaks data -------


def _patched(main: str, relay: str) -> list[str]:
    """tlsc or tlsd (``main``) whose engine's relay is called as ``relay`` says."""
    return [sys.executable, "-c", "import tlsc.engine as e\nreal = e.Engine.relay\n"
            f"e.Engine.relay = lambda self, can, tls13: {relay}\n"
            f"from tlsc.quick import {main}\n{main}()"]


#: The engine told that the backend cannot write after the peer's close_notify: prog's
#: later output is discarded, as it was with tlslite before TLS 1.3 half-close.
DISCARDING = "real(self, False, tls13)"
#: The engine taking TLS 1.2 for 1.3: the peer's close_notify goes unanswered.
NOT_TLS12 = "real(self, can, True)"


def _duplex_failures(relay: str, *names: str) -> set[str]:
    b = harness.get_backend("openssl")
    tlsc, tlsd = _patched("tlsc_main", relay), _patched("tlsd_main", relay)
    batteries = [(duplex.client_scenarios(tlsc), "python-ssl"),
                 (duplex.server_scenarios(tlsd), "python-ssl-client"),
                 (duplex.pair_scenarios("openssl", tlsc=tlsc), "tlsd-openssl")]
    cells = []
    for scenarios, peer in batteries:
        cells += harness.run_scenarios([b], [s for s in scenarios if s.name in names], peer)
    assert len(cells) == len(names), "a scenario was renamed"
    return {c.scenario for c in cells if not c.ok}


def test_duplex_discarding_relay_turns_red() -> None:
    """Discarding prog's output after the peer's close_notify is caught under TLS 1.3,
    and is what TLS 1.2 requires (those cells stay green)."""
    lost = {"python-ssl/tlsc-duplex-peer-ends-first-TLSv1.3",
            "python-ssl-client/tlsd-duplex-peer-ends-first-TLSv1.3",
            "tlsd-openssl/tlsc-duplex-peer-ends-first-TLSv1.3"}
    allowed = {"python-ssl/tlsc-duplex-peer-ends-first-TLSv1.2",
               "python-ssl-client/tlsd-duplex-peer-ends-first-TLSv1.2"}
    assert _duplex_failures(DISCARDING, *lost, *allowed) == lost


def test_duplex_tls12_close_notify_unanswered_turns_red() -> None:
    names = ("python-ssl/tlsc-duplex-peer-ends-first-TLSv1.2",
             "python-ssl-client/tlsd-duplex-peer-ends-first-TLSv1.2")
    assert _duplex_failures(NOT_TLS12, *names) == set(names)


# -- the words: a backend must raise the core's reasons, not just the right classes --------


class _Reworded(_Proxy):
    """Every error re-raised as the same class with the words of an older backend."""

    def _again(self, e: TLSError) -> TLSError:
        text = f"received fatal alert: {e.detail}" if isinstance(e, AlertReceived) else str(e)
        return type(e)(Reason.FAILURE, text)

    def do_handshake(self) -> bool:
        try:
            return self.inner.do_handshake()  # type: ignore[attr-defined,no-any-return]
        except TLSError as e:
            raise self._again(e) from e

    def read(self, n: int) -> bytes | None:
        try:
            return self.inner.read(n)  # type: ignore[attr-defined,no-any-return]
        except TLSError as e:
            raise self._again(e) from e


WORDED_MEMORY = {
    "eof-is-truncated",
    "eof-in-handshake-is-truncated",
    "garbage-is-protocol-error",
    "fatal-alert-is-alert-received",
    "unknown-ca-refused",
    "name-mismatch-refused",
}


@pytest.mark.parametrize("name", BACKENDS)
def test_memory_scenarios_check_the_words(name: str) -> None:
    b = _Wrapped(harness.get_backend(name), _Reworded)
    cells = harness.run_scenarios([b], memory.SCENARIOS, "memory")
    failed = {c.scenario for c in cells if not c.ok}
    assert failed == WORDED_MEMORY, failed
    assert all("worded as FAILURE" in c.detail for c in cells if not c.ok), cells


def test_live_scenarios_check_the_words() -> None:
    b = _Wrapped(harness.get_backend("openssl"), _Reworded)
    names = ("openssl-s_server/eof-is-truncated", "openssl-s_server/fatal-alert-no-client-cert",
             "python-ssl/garbage-in-handshake", "python-ssl/garbage-after-handshake")
    assert _live_failures(b, *names) == set(names)


def test_tlsd_refusal_checks_the_words() -> None:
    b = _Wrapped(harness.get_backend("openssl"), _Reworded)
    names = _tlsd("client-cert-required-absent")
    assert _live_failures(b, *names) == set(names)


class _VerifierProxy:
    """A real backend whose verify_chain's refusals go through ``reword``."""

    def __init__(self, real: object, name: str, reword: object) -> None:
        self.real, self.name, self.reword = real, name, reword

    def info(self) -> object:
        return self.real.info()  # type: ignore[attr-defined]

    def verify_chain(self, *args: object) -> None:
        try:
            self.real.verify_chain(*args)  # type: ignore[attr-defined]
        except VerificationError as e:
            raise self.reword(e) from e  # type: ignore[operator]


def test_path_battery_checks_the_words() -> None:
    """Right verdicts in an older backend's words (a plain string): red."""
    old = _VerifierProxy(harness.get_backend("openssl"), "old-words",
                         lambda e: VerificationError(f"certificate verify failed: {e}"))
    cells = harness.run_path_battery([old])
    failed = {c.scenario.split("/")[0] for c in cells if not c.ok}
    assert {"verify:validity", "verify:names", "verify:weak-crypto", "verify:chain"} <= failed
    assert all("worded as INVALID_CERTIFICATE" in c.detail for c in cells if not c.ok)


def test_backends_must_word_one_refusal_alike() -> None:
    """Words each allowed by the rule, but different from another backend's: red for both."""
    swapped = {Reason.EXPIRED: Reason.NOT_YET_VALID, Reason.NOT_YET_VALID: Reason.EXPIRED}

    def swap(e: VerificationError) -> VerificationError:
        return VerificationError(swapped.get(e.reason, e.reason), e.detail)

    real = harness.get_backend("openssl")
    dated = {c.scenario for c in harness.run_path_battery([real])
             if c.detail.startswith(("certificate has expired", "certificate is not yet valid"))}
    assert "verify:validity/leaf/after-notAfter" in dated
    cells = harness.run_path_battery([real, _VerifierProxy(real, "swapped", swap)])
    failed = {(c.scenario, c.backend) for c in cells if not c.ok}
    assert failed == {(s, b) for s in dated for b in ("openssl", "swapped")}
