"""Load: many concurrent tunnels, every byte checked (tcpserver + tlsd <-> tlsclient).

Server side: ucspi-tcp ``tcpserver`` starting one ``tlsd`` per connection with
``cat`` as prog (an echo).  Client side: N ``tlsclient`` processes started at
once, each one's prog sending its own random file (distinct per tunnel) and
hashing what comes back; the echo must be byte-identical for every tunnel.

The CI form runs ``TLSC_LOAD_TUNNELS`` (default 50) tunnels of
``TLSC_LOAD_KIB`` (default 256) KiB with the openssl backend, and a short form
with tlslite.  ``TLSC_LOAD_TUNNELS=200`` is the full run.  The figures (wall
time, peak summed VmRSS / RssAnon of the tlsc and tlsd processes, per tunnel)
are printed (``pytest -s``) and attached to the test report.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
import time
from importlib.metadata import entry_points

import pytest

from tests.support.load import RssSampler, TcpServer, console_script, raise_nofile
from tests.support.run import base_env

pytestmark = pytest.mark.skipif(shutil.which("tcpserver") is None,
                                reason="ucspi-tcp tcpserver not installed")

BACKENDS = {ep.name for ep in entry_points(group="tlsc.backends")}

# prog for tlsclient: send $1 while reading back exactly $3 bytes, hashed into $2; only
# then end the connection.  (Not "send, EOF, read the echo": a backend that declares it
# cannot write after the peer's close_notify would make tlsd discard cat's late output,
# by design.)
CLIENT_PROG = ('{ cat "$1" >&7; } & '
               'head -c "$3" <&6 | sha256sum | cut -d" " -f1 >"$2"; wait; exec 7>&-')


def env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


FORMS = {
    "openssl": (env_int("TLSC_LOAD_TUNNELS", 50), env_int("TLSC_LOAD_KIB", 256)),
    "tlslite": (env_int("TLSC_LOAD_TLSLITE_TUNNELS", 10), env_int("TLSC_LOAD_TLSLITE_KIB", 16)),
}


def run_load(backend: str, tunnels: int, kib: int, pki, tmp_path, record) -> None:
    raise_nofile(max(4096, tunnels * 16))
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    expect = {}
    rng = random.Random(0x715C)
    for i in range(tunnels):
        blob = rng.randbytes(kib * 1024)
        (data_dir / f"{i}.in").write_bytes(blob)
        expect[i] = hashlib.sha256(blob).hexdigest()

    budget = 60 + tunnels * (1.2 if backend == "openssl" else 3.0) + kib * tunnels / 2000
    srv = TcpServer(["--backend", backend, "-v", "1", "--", "cat"],
                    {"KEYFILE": str(pki.leaf_ec.key_pem), "CERTFILE": str(pki.leaf_ec.chain_pem)},
                    limit=tunnels + 20, errfile=tmp_path / "tcpserver.err")
    clients: dict[int, subprocess.Popen] = {}
    errs = {}
    env = base_env()
    env["CAFILE"] = str(pki.cafile)

    def tracked():
        yield from (p.pid for p in clients.values() if p.returncode is None)
        yield from srv.children()

    sampler = RssSampler(tracked, interval=0.5).start()
    t0 = time.monotonic()
    wall = 0.0
    try:
        for i in range(tunnels):
            errs[i] = open(tmp_path / f"{i}.err", "wb")
            clients[i] = subprocess.Popen(
                [*console_script("tlsclient"), "--backend", backend, "-T", "30000",
                 "localhost", str(srv.port), "sh", "-c", CLIENT_PROG, "prog",
                 str(data_dir / f"{i}.in"), str(data_dir / f"{i}.out"), str(kib * 1024)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errs[i],
                env=env, start_new_session=True)
        deadline = t0 + budget
        for p in clients.values():
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        wall = time.monotonic() - t0
        # tlsd ends after its client: give the server side a moment to drain.
        end = time.monotonic() + 15
        while time.monotonic() < end and any(True for _ in srv.children()):
            time.sleep(0.1)
    finally:
        sampler.stop()
        for p in clients.values():
            if p.poll() is None:
                p.kill()
                p.wait(5)
        for f in errs.values():
            f.close()
        leftover_server = srv.children()
        srv.stop()

    failures = []
    for i, p in clients.items():
        out = data_dir / f"{i}.out"
        got = out.read_text().strip() if out.exists() else None
        if p.returncode != 0 or got != expect[i]:
            err = (tmp_path / f"{i}.err").read_text(errors="replace")
            failures.append(f"tunnel {i}: rc={p.returncode} sha={'ok' if got == expect[i] else got}"
                            f" stderr={err[-300:]!r}")
    server_err = (tmp_path / "tcpserver.err").read_text(errors="replace")
    server_bad = [ln for ln in server_err.splitlines()
                  if ln.startswith("tlsd:") or "Traceback" in ln]
    peak = sampler.peak
    figures = (f"backend={backend} tunnels={tunnels} KiB each={kib} wall={wall:.1f}s "
               f"peak procs={sampler.peak_procs} "
               f"peak sum VmRSS={peak.vmrss_kib / 1024:.0f} MiB "
               f"(RssAnon {peak.anon_kib / 1024:.0f} MiB, Pss {peak.pss_kib / 1024:.0f} MiB) "
               f"over {peak.procs} processes; "
               f"per tunnel VmRSS={peak.vmrss_kib / 1024 / tunnels:.1f} MiB "
               f"RssAnon={peak.anon_kib / 1024 / tunnels:.1f} MiB "
               f"Pss={peak.pss_kib / 1024 / tunnels:.1f} MiB; "
               f"samples={len(sampler.samples)}")
    print("\nLOAD " + figures)
    record("load", figures)
    assert not failures, f"{len(failures)}/{tunnels} tunnels failed ({figures}):\n" + \
        "\n".join(failures[:20])
    assert not server_bad, "tlsd complained:\n" + "\n".join(server_bad[:20])
    assert not leftover_server, f"tlsd processes still running after the run: {leftover_server}"
    assert sampler.samples and peak.procs > 0, "the RSS sampler saw no process"


@pytest.mark.parametrize("load_backend", sorted(BACKENDS & set(FORMS)))
def test_concurrent_tunnels_checksummed(load_backend, pki, tmp_path, record_property):
    tunnels, kib = FORMS[load_backend]
    run_load(load_backend, tunnels, kib, pki, tmp_path, record_property)
