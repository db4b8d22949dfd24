"""Fuzzing of the network side (mutated server flights), CI-sized by default.

Three layers, each for every installed backend:

* **replay**: recorded server flights (``tests/fuzz/corpus``, regenerate with
  ``python -m tests.fuzz.record``) mutated over their TLS record structure and fed
  to a fresh client session, cut into random receive_data chunks, then EOF;
* **live**: a real pyOpenSSL server in memory whose N-th flight is mutated in
  transit, so the mutation meets a client in a genuine state (after key exchange,
  after the handshake);
* **process**: a sample through the whole ``tlsc`` process against a TCP server on
  127.0.0.1 that replays a mutated flight.

Only :class:`TLSError` subclasses may escape a session (98 at process level), within a
time bound and a memory bound per input.  ``TLSC_FUZZ_EXAMPLES=N`` sets the number of
replay inputs per backend (live and process inputs scale with it) for a longer run;
``tests/fuzz/regressions/*.json`` are replayed on every run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from tests.fuzz import mutate, process, record, target
from tests.fuzz.target import ReplayInput

EXAMPLES = int(os.environ.get("TLSC_FUZZ_EXAMPLES", "150"))
LIVE_EXAMPLES = max(10, EXAMPLES // 4)
PROCESS_EXAMPLES = max(5, EXAMPLES // 15)
REGRESSIONS = Path(__file__).parent / "fuzz" / "regressions"

CORPUS = record.load_corpus()
ANCHOR = record.anchor()
BACKENDS = target.backends()

FUZZ = settings(
    max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much],
)

backend_names = pytest.mark.parametrize("backend_name", sorted(BACKENDS))

# -- strategies -------------------------------------------------------------------------------

ops = st.lists(
    st.tuples(st.sampled_from(sorted(mutate.OPS)), st.integers(0, 1 << 20),
              st.integers(0, 1 << 16), st.integers(0, 1 << 16)),
    min_size=1, max_size=4,
)
cuts = st.one_of(st.just(()), st.lists(st.integers(1, 600), min_size=1, max_size=4).map(tuple))


@st.composite
def replay_inputs(draw) -> tuple[ReplayInput, list]:
    seed = draw(st.sampled_from(sorted(CORPUS)))
    flights = list(CORPUS[seed])
    if len(flights) > 1 and draw(st.booleans()):
        flights = [b"".join(flights)]  # later flights right behind the first
    which = draw(st.integers(0, len(flights) - 1))
    chosen = draw(ops)
    flights[which] = mutate.apply_all(flights[which], chosen)
    inp = ReplayInput(seed, tuple(flights), draw(cuts), verify=draw(st.booleans()),
                      fixup=draw(st.sampled_from([True, True, False])))
    return inp, chosen


def replay_json(inp: ReplayInput, chosen) -> str:
    return json.dumps({"kind": "replay", "seed": inp.seed, "ops": [list(o) for o in chosen],
                       "flights": [f.hex() for f in inp.flights], "cuts": list(inp.cuts),
                       "verify": inp.verify, "fixup": inp.fixup})


def check(outcome: target.Outcome, what: str) -> None:
    """Anything but a TLSError already failed the test; here: the bounds."""
    assert outcome.elapsed < target.TIME_LIMIT, f"{what}: slow input: {outcome.describe()}"
    assert outcome.peak < target.MEMORY_LIMIT, f"{what}: memory: {outcome.describe()}"


def _run(fn, *args, describe: str):
    try:
        return fn(*args)
    except (target.Hang, AssertionError) as e:
        raise AssertionError(f"{type(e).__name__}: {e}\ninput: {describe}") from e
    except Exception as e:  # the finding: an exception that is not a TLSError
        raise AssertionError(
            f"non-TLSError escaped: {type(e).__name__}: {e}\ninput: {describe}") from e


# -- the seeds themselves, and the regressions -------------------------------------------------


@backend_names
@pytest.mark.parametrize("seed", sorted(CORPUS))
@pytest.mark.parametrize("verify", [False, True])
def test_corpus_seed_is_a_clean_error(backend_name, seed, verify):
    """An unmodified replayed flight: another client's transcript, always a TLSError."""
    inp = ReplayInput(seed, tuple(CORPUS[seed]), verify=verify)
    o = _run(target.run_replay, BACKENDS[backend_name], inp, ANCHOR, describe=seed)
    check(o, seed)
    assert o.error is not None and not o.handshake_done, o.describe()


def _regressions() -> list[Path]:
    return sorted(REGRESSIONS.glob("*.json"))


@backend_names
@pytest.mark.parametrize("path", _regressions(), ids=lambda p: p.stem)
def test_regression(backend_name, path):
    case = json.loads(path.read_text())
    b = BACKENDS[backend_name]
    if case["kind"] == "replay":
        if "flights" in case:  # the exact bytes of a finding
            flights = [bytes.fromhex(f) for f in case["flights"]]
        else:  # hand-picked: the mutation, applied to the seed's first flight
            flights = list(CORPUS[case["seed"]])
            flights[0] = mutate.apply_all(flights[0], [tuple(x) for x in case["ops"]])
        inp = ReplayInput(case["seed"], tuple(flights), tuple(case["cuts"]), case["verify"],
                          case.get("fixup", True))
        o = _run(target.run_replay, b, inp, ANCHOR, describe=path.name)
    else:
        o = _run(target.run_live, b, case["version"], case["key"], case["verify"],
                 case["flight"], [tuple(x) for x in case["ops"]], case["cuts"],
                 describe=path.name)
    check(o, path.name)


# -- fuzzing ------------------------------------------------------------------------------------


@backend_names
@FUZZ
@given(case=replay_inputs())
def test_fuzz_replay(backend_name, case):
    inp, chosen = case
    desc = replay_json(inp, chosen)
    note(desc)
    o = _run(target.run_replay, BACKENDS[backend_name], inp, ANCHOR, describe=desc)
    check(o, desc)
    assert not o.handshake_done, f"a replayed flight completed a handshake: {desc}"


@backend_names
@settings(FUZZ, max_examples=LIVE_EXAMPLES)
@given(version=st.sampled_from(["TLSv1.2", "TLSv1.3"]), key=st.sampled_from(["rsa", "ecdsa"]),
       verify=st.booleans(), flight=st.integers(0, 2), chosen=ops, cut=cuts)
def test_fuzz_live(backend_name, version, key, verify, flight, chosen, cut):
    desc = json.dumps({"kind": "live", "version": version, "key": key, "verify": verify,
                       "flight": flight, "ops": [list(o) for o in chosen], "cuts": list(cut)})
    note(desc)
    o = _run(target.run_live, BACKENDS[backend_name], version, key, verify, flight, chosen,
             cut, describe=desc)
    check(o, desc)


@backend_names
@settings(FUZZ, max_examples=PROCESS_EXAMPLES)
@given(case=replay_inputs())
def test_fuzz_process(backend_name, case):
    """A sample through the real tlsc: 98 (111 for a reset), one fatal line, no traceback."""
    inp, chosen = case
    desc = replay_json(inp, chosen)
    note(desc)
    r = process.replay_server_run(backend_name, list(inp.flights))
    r.assert_no_traceback()
    assert r.rc in (98, 111), f"{desc}\n{r.describe()}"
    r.assert_fatal(r.rc)
    r.assert_fatal_format()


# -- the harness itself -------------------------------------------------------------------------


class _FakeSession:
    def __init__(self, behaviour: str):
        self.behaviour = behaviour

    def receive_data(self, data):
        pass

    def do_handshake(self):
        if self.behaviour == "crash":
            raise IndexError("read past the end")
        if self.behaviour == "hang":
            while True:
                pass
        return False

    def read(self, n):
        return None

    def data_to_send(self):
        return b""


class _FakeBackend:
    name = "fake"

    def __init__(self, behaviour: str):
        self.behaviour = behaviour

    def client_context(self, cfg, warn):
        return self

    def session(self):
        return _FakeSession(self.behaviour)


@pytest.mark.parametrize("behaviour,expected", [
    ("crash", "non-TLSError escaped: IndexError"),
    ("hang", "Hang: input took more than"),
    ("stall", "after EOF the session still says 'needs input'"),
])
def test_harness_reports_findings(behaviour, expected):
    inp = ReplayInput("x", (b"\x16\x03\x03\x00\x00",))
    with pytest.raises(AssertionError, match=expected):
        _run(target.run_replay, _FakeBackend(behaviour), inp, ANCHOR, 0.5, describe="x")
