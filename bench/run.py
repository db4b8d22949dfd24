#!/usr/bin/env python3
"""tlsc benchmark: tlsc (openssl, stdlib, tlslite) against stunnel and socat on loopback.

    python bench/run.py [--size MiB] [--rounds N] [--tools T ...] [--json]

Every contender is put in front of the same TLS server (bench/server.py, stdlib
ssl = OpenSSL, TLS 1.3 pinned to one suite) and runs the same cleartext prog
(bench/prog.py, bench/echo.sh).  Runs are interleaved (A B C A B C ...) for
--rounds rounds; medians and min-max are printed with each contender's ratio to
--baseline.  A benchmark, not a test: it prints figures, it asserts nothing but
the sha256 of the bytes moved.

Setup is measured twice per round, interleaved: with the one anchor that signs
the server's certificate, and with a CA bundle (the system trust store,
--ca-bundle, plus that anchor), since a system trust store is what most users
give and it is read on every connection.

Beside tlsc's setup, in the same rounds, the setup of bench/floor_tunnel.py:
the least a Python TLS client can do (``import ssl``, one anchor, the
handshake, prog forked, a relay; nothing checked, nothing configurable).
What tlsc adds is its setup minus that floor, paired round by round.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import os
import platform
import select
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from pattern import digest  # noqa: E402

PY = sys.executable
MiB = 1 << 20
GiB = 1 << 30
SUITE = "TLS_AES_128_GCM_SHA256"
ALL_TOOLS = ["tlsc-openssl", "tlsc-stdlib", "tlsc-tlslite", "stunnel", "socat"]
SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
#: bench/floor_tunnel.py: setup only, sampled with every tlsc setup.
FLOOR_TUNNEL = "floor-tunnel"
TLSLITE_DIVISOR = 64  # tlslite is pure Python (< 1 MiB/s): it moves size/64


def sh(*argv: str, **kw) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kw).stdout


def make_certs(d: str) -> None:
    """A CA and a server certificate for localhost / 127.0.0.1 (RSA 2048)."""
    o = "openssl"
    sh(
        o,
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        f"{d}/ca.key",
        "-out",
        f"{d}/ca.pem",
        "-days",
        "30",
        "-subj",
        "/CN=tlsc bench CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    )
    sh(
        o,
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        f"{d}/srv.key",
        "-out",
        f"{d}/srv.pem",
        "-days",
        "30",
        "-subj",
        "/CN=localhost",
        "-CA",
        f"{d}/ca.pem",
        "-CAkey",
        f"{d}/ca.key",
        "-addext",
        "basicConstraints=critical,CA:FALSE",
        "-addext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
        "-addext",
        "extendedKeyUsage=serverAuth",
        "-addext",
        "keyUsage=critical,digitalSignature,keyEncipherment",
    )
    with open(f"{d}/openssl.cnf", "w") as f:
        f.write(
            "openssl_conf = init\n[init]\nssl_conf = ssl_sect\n"
            "[ssl_sect]\nsystem_default = sysdef\n"
            f"[sysdef]\nMinProtocol = TLSv1.3\nCiphersuites = {SUITE}\n"
        )


class Server:
    def __init__(self, d: str) -> None:
        portfile = f"{d}/port"
        env = dict(os.environ, OPENSSL_CONF=f"{d}/openssl.cnf")
        self.proc = subprocess.Popen(
            [PY, f"{HERE}/server.py", f"{d}/srv.pem", f"{d}/srv.key", portfile], env=env
        )
        for _ in range(500):
            if os.path.exists(portfile):
                break
            time.sleep(0.01)
        with open(portfile) as f:
            self.port = int(f.read())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def hold_fds() -> None:
    """Keep fds 6 and 7 on /dev/null, so that nothing else of ours is opened there."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (6, 7):
        if null != fd:
            os.dup2(null, fd, inheritable=False)
    if null not in (6, 7):
        os.close(null)


def which_tlsc() -> str | None:
    cand = os.path.join(os.path.dirname(PY), "tlsc")
    return cand if os.access(cand, os.X_OK) else shutil.which("tlsc")


class Contender:
    """How to launch one TLS client with a prog behind it."""

    def __init__(self, name: str, d: str, port: int, wrap: list[str]) -> None:
        self.name, self.d, self.port, self.wrap = name, d, port, wrap
        self.n = 0
        #: The trust anchors each contender is given: the one that signs the server.
        self.cafile = f"{d}/ca.pem"

    @property
    def fds(self) -> tuple[int, int]:
        return (6, 7) if self.name.startswith(("tlsc", FLOOR_TUNNEL)) else (0, 1)

    def launch(self, prog: list[str], log) -> subprocess.Popen:
        self.n += 1
        if self.name.startswith(("tlsc", FLOOR_TUNNEL)):
            if self.name == FLOOR_TUNNEL:
                argv = [PY, f"{HERE}/floor_tunnel.py"] + prog
            else:
                backend = self.name.split("-", 1)[1]
                wrap = [w.replace("{n}", str(self.n)) for w in self.wrap]  # one file per run
                argv = wrap + [which_tlsc(), "--backend", backend, "-k", "localhost", "--"] + prog
            env = dict(os.environ, CAFILE=self.cafile, SNI="localhost")
            # The network connection on fds 6/7, as tcpclient would leave it.
            # It is put there in this process (6 and 7 are held for it, see
            # hold_fds) rather than by a preexec_fn, which would make Popen
            # fork this big process instead of vfork-ing: a cost that is the
            # benchmark's, not tlsc's, and that the others do not pay.
            s = socket.create_connection(("127.0.0.1", self.port))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            os.dup2(s.fileno(), 6)
            os.dup2(s.fileno(), 7)
            try:
                return subprocess.Popen(
                    argv,
                    env=env,
                    pass_fds=(6, 7),
                    stdin=subprocess.DEVNULL,
                    stderr=log,
                )
            finally:
                s.close()
                hold_fds()
        if self.name == "stunnel":
            conf = f"{self.d}/stunnel-{self.n}.conf"
            with open(conf, "w") as f:
                f.write(
                    "foreground = yes\npid =\ndebug = 3\n[bench]\nclient = yes\n"
                    f"connect = 127.0.0.1:{self.port}\n"
                    f"exec = {prog[0]}\nexecArgs = {' '.join(prog)}\n"
                    f"CAfile = {self.cafile}\nverifyChain = yes\n"
                    "checkHost = localhost\nsni = localhost\n"
                )
            return subprocess.Popen(
                ["stunnel", conf], stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        if self.name == "socat":
            addr = (
                f"OPENSSL:127.0.0.1:{self.port},cafile={self.cafile},verify=1,"
                "commonname=localhost,snihost=localhost,nodelay"
            )
            return subprocess.Popen(
                ["socat", addr, "EXEC:" + " ".join(prog)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        raise ValueError(self.name)


def available(tool: str) -> str | None:
    """None if usable, else why not."""
    if tool.startswith("tlsc"):
        if not which_tlsc():
            return "tlsc not on PATH"
        backend = tool.split("-", 1)[1]
        out = subprocess.run(
            [which_tlsc(), "--list-backends"], capture_output=True, text=True
        ).stdout.split()
        return None if backend in out else f"backend {backend} not installed"
    if tool in ("stunnel", "socat"):
        return None if shutil.which(tool) else f"{tool} not installed"
    return "unknown tool"


def finish(p: subprocess.Popen, timeout: float, c: Contender | None = None) -> None:
    # stunnel's connect+exec service stays up after prog has gone (the process
    # keeps running with no session): once prog has reported, stop it.
    if c is not None and c.name == "stunnel":
        timeout = min(timeout, 0.3)
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.terminate()
        try:
            p.wait(2)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def transfer(c: Contender, mode: str, n: int, expected: str, timeout: float, log) -> dict:
    rf = f"{c.d}/result-{c.name}-{c.n}.json"
    r, w = c.fds
    prog = [PY, f"{HERE}/prog.py", str(r), str(w), mode, str(n), expected, rf]
    return _run_prog(c, prog, rf, timeout, log)


def idle(c: Contender, seconds: float, log) -> dict:
    rf = f"{c.d}/result-{c.name}-{c.n}.json"
    r, w = c.fds
    prog = [PY, f"{HERE}/prog.py", str(r), str(w), "idle", "0", "-", rf, str(seconds)]
    return _run_prog(c, prog, rf, seconds + 30, log)


def _run_prog(c: Contender, prog: list[str], rf: str, timeout: float, log) -> dict:
    if os.path.exists(rf):
        os.unlink(rf)
    p = c.launch(prog, log)
    deadline = time.monotonic() + timeout
    while not os.path.exists(rf) and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    finish(p, 5, c)
    if not os.path.exists(rf):
        return {"ok": False, "error": f"no result (exit {p.returncode})"}
    with open(rf) as f:
        return json.load(f)


def latency(c: Contender, log, cafile: str | None = None) -> dict:
    """Setup: launch to the first echoed line through the tunnel (``cafile``: other anchors)."""
    if cafile is not None:
        one, c.cafile = c.cafile, cafile
        try:
            return latency(c, log)
        finally:
            c.cafile = one
    fifo = f"{c.d}/fifo"
    if os.path.exists(fifo):
        os.unlink(fifo)
    os.mkfifo(fifo)
    rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    wfd = os.open(fifo, os.O_WRONLY)  # keep a writer: no EOF, only data wakes us
    try:
        r, w = c.fds
        t0 = time.monotonic()
        p = c.launch([f"{HERE}/echo.sh", str(r), str(w), fifo], log)
        ready, _, _ = select.select([rfd], [], [], 30)
        t1 = time.monotonic()
        line = os.read(rfd, 4096).decode().split() if ready else []
        finish(p, 5, c)
    finally:
        os.close(rfd)
        os.close(wfd)
    ok = len(line) == 2 and line[0] == "hello"
    return {"ok": ok, "seconds": t1 - t0, "cipher": line[1] if ok else None}


def editable_finder() -> bool:
    """Does every start of this Python import an editable install's finder module?"""
    code = "import sys; print(any(m.startswith('__editable__') for m in sys.modules))"
    return sh(PY, "-c", code).strip() == "True"


def stale_bytecode(tools: list[str]) -> list[str]:
    """The tlsc modules (core and the tools' backends) whose bytecode the import rejects.

    An editable install under PYTHONDONTWRITEBYTECODE recompiles each such
    module on every start (tens of ms), which an installed tlsc never pays.
    The test is the import system's own: the cache's recorded source mtime
    *and size* (compileall looks at the mtime only).  The packages are found
    without being imported: this process is the same Python as tlsc's.
    """
    stale = []
    for pkg in ["tlsc"] + [floor_module(t) for t in tools if t.startswith("tlsc-")]:
        spec = importlib.util.find_spec(pkg)
        for d in (spec.submodule_search_locations or []) if spec else []:
            for f in glob.glob(os.path.join(d, "**", "*.py"), recursive=True):
                if not _fresh_bytecode(f):
                    stale.append(f)
    return stale


def _fresh_bytecode(source: str) -> bool:
    try:
        with open(importlib.util.cache_from_source(source), "rb") as f:
            header = f.read(16)
    except OSError:
        return False
    st = os.stat(source)
    field = [int.from_bytes(header[i : i + 4], "little") for i in (4, 8, 12)]
    if header[:4] != importlib.util.MAGIC_NUMBER:
        return False
    if field[0] & 1:  # a hash-based cache: not judged by mtime
        return True
    return field[1] == int(st.st_mtime) & 0xFFFFFFFF and field[2] == st.st_size & 0xFFFFFFFF


def floor_module(tool: str) -> str:
    """The module whose import is ``tool``'s floor: its backend (tlsc-stdlib: tlsc_stdlib)."""
    return "tlsc_" + tool.split("-", 1)[1]


def make_bundle(d: str, system: str) -> tuple[str | None, int]:
    """(CA bundle file: ``system`` and the benchmark's CA, how many anchors it holds).

    None when there is no system trust store to copy: then the second setup
    figure is not measured.
    """
    if not system or not os.path.exists(system):
        return None, 0
    with open(system, "rb") as f:
        data = f.read()
    with open(f"{d}/ca.pem", "rb") as f:
        data += b"\n" + f.read()
    path = f"{d}/bundle.pem"
    with open(path, "wb") as f:
        f.write(data)
    return path, data.count(b"-----BEGIN CERTIFICATE-----")


def floor_sample(module: str) -> tuple[float, float] | None:
    """(wall seconds, peak RSS MiB) of ``python -c 'import MODULE'``; None if it failed.

    The time runs until the import is done (the child says so on a pipe), not
    until the interpreter has exited: the setup figure it is subtracted from
    stops at prog's reply too, while tlsc is still running.  The peak RSS is
    the child's own VmHWM, which it writes on the pipe: the ``ru_maxrss`` that
    ``wait4`` gives counts this big process's pages, copied at the fork.
    """
    code = (
        f"import os, {module}\n"
        "hwm = open('/proc/self/status').read().split('VmHWM:')[1].split()[0]\n"
        "os.write(1, hwm.encode() + b'\\n')\n"
    )
    t0 = time.monotonic()
    p = subprocess.Popen([PY, "-c", code], stdout=subprocess.PIPE)
    assert p.stdout is not None
    first = p.stdout.read(1)
    wall = time.monotonic() - t0
    hwm_kib = (first + p.stdout.read()).strip()
    p.stdout.close()
    _, status, _ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode or not hwm_kib.isdigit():
        return None
    return wall, int(hwm_kib) / 1024


def floor_stats(runs: list[tuple[float, float]]) -> dict:
    if not runs:
        return {"ok": False}
    return {
        "ok": True,
        "wall_ms": statistics.median(w for w, _ in runs) * 1e3,
        "rss_mib": statistics.median(r for _, r in runs),
    }


def stats(xs: list[float]) -> dict | None:
    if not xs:
        return None
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def machine() -> dict:
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break

    def ver(*argv: str) -> str:
        try:
            out = subprocess.run(argv, capture_output=True, text=True)
            return (out.stdout + out.stderr).strip().splitlines()[0]
        except (OSError, IndexError):
            return "-"

    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "python_ssl": ssl.OPENSSL_VERSION,
        "openssl": ver("openssl", "version"),
        "stunnel": next(
            (
                ln
                for ln in subprocess.run(
                    ["stunnel", "-version"], capture_output=True, text=True
                ).stderr.splitlines()
                if ln.startswith("stunnel")
            ),
            "-",
        )
        if shutil.which("stunnel")
        else "-",
        "socat": ver("socat", "-V").replace("socat by Gerhard Rieger", "").strip()
        if shutil.which("socat")
        else "-",
        "kernel": platform.release(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--size",
        type=float,
        default=1024,
        help="MiB per throughput transfer (tlsc-tlslite: size/64) [1024]",
    )
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds [5]")
    ap.add_argument("--tools", nargs="+", default=ALL_TOOLS, choices=ALL_TOOLS)
    ap.add_argument("--baseline", default="stunnel")
    ap.add_argument(
        "--rss-small",
        type=float,
        default=64,
        help="MiB of the small peak-RSS transfer (capped at --size) [64]",
    )
    ap.add_argument("--latency-samples", type=int, default=20)
    ap.add_argument(
        "--ca-bundle",
        default=SYSTEM_BUNDLE,
        help="the trust store of the second setup figure ('' for none) [%(default)s]",
    )
    ap.add_argument("--idle", type=float, default=10.0, help="idle seconds [10]")
    ap.add_argument("--floor-samples", type=int, default=20)
    ap.add_argument(
        "--wrap",
        default="",
        help="command prepended to tlsc (profilers); {n} becomes the run's number "
        "(1: the first download)",
    )
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    a = ap.parse_args(argv)
    for fd in (6, 7):
        try:
            os.fstat(fd)
        except OSError:
            continue
        ap.error(f"fd {fd} is open: the benchmark needs 6 and 7 for the tunnels")
    hold_fds()

    tools = []
    for t in a.tools:
        why = available(t)
        if why:
            print(f"skipping {t}: {why}", file=sys.stderr)
        else:
            tools.append(t)
    if any(t.startswith("tlsc-") for t in tools) and editable_finder():
        print(
            "note: this Python starts setuptools' editable-install import hook (~25 ms and "
            "2 MiB on every tlsc start, which an installed tlsc never pays); reinstall "
            "with scripts/install.sh (editable_mode=compat) for representative figures",
            file=sys.stderr,
        )
    stale = stale_bytecode(tools) if any(t.startswith("tlsc-") for t in tools) else []
    if stale:
        print(
            f"note: {len(stale)} tlsc modules have no up-to-date bytecode (e.g. {stale[0]}): "
            "each start recompiles them, which an installed tlsc never pays; run "
            "python -m compileall -f on them (scripts/install.sh does) for representative figures",
            file=sys.stderr,
        )
    size = int(a.size * MiB)
    small = int(min(a.rss_small, a.size) * MiB)

    def size_of(tool: str, n: int) -> int:
        return max(n // TLSLITE_DIVISOR, 1) if tool == "tlsc-tlslite" else n

    if "tlsc-tlslite" in tools:
        print(
            f"note: tlsc-tlslite moves 1/{TLSLITE_DIVISOR} of every size "
            f"({size_of('tlsc-tlslite', size) / MiB:g} MiB, RSS small "
            f"{size_of('tlsc-tlslite', small) / MiB:g} MiB): pure Python, < 1 MiB/s",
            file=sys.stderr,
        )

    d = tempfile.mkdtemp(prefix="tlsc-bench-")
    make_certs(d)
    bundle, bundle_anchors = make_bundle(d, a.ca_bundle)
    srv = Server(d)
    log = open(f"{d}/clients.log", "wb")
    digests: dict[int, str] = {}
    tunnel_runs: list[float] = []

    def dig(n: int) -> str:
        if n not in digests:
            digests[n] = digest(n)
        return digests[n]

    cs = {
        t: Contender(t, d, srv.port, a.wrap.split() if t.startswith("tlsc") else []) for t in tools
    }
    res: dict = {
        t: {
            "download": [],
            "upload": [],
            "cpu_download": [],
            "cpu_upload": [],
            "hwm_big": [],
            "hwm_small": [],
            "latency": [],
            "latency_bundle": [],
            "bundle_over_one": [],
            "over_floor": [],
            "over_tunnel": [],
            "idle": [],
            "verified": 0,
            "failed": 0,
            "ciphers": set(),
            "errors": [],
        }
        for t in tools
    }

    def record(t: str, mode: str, r: dict, n: int, big: bool) -> None:
        x = res[t]
        if not r.get("ok"):
            x["failed"] += 1
            x["errors"].append(f"{mode}: {r.get('error') or 'sha256 mismatch'}")
            return
        x["verified"] += 1
        if r.get("cipher"):
            x["ciphers"].add(r["cipher"])
        hwm = r["after"]["hwm_kib"] / 1024
        if big:
            x[mode].append(n / MiB / r["seconds"])
            x["cpu_" + mode].append(r["cpu"] / (n / GiB))
            x["hwm_big"].append(hwm)
        else:
            x["hwm_small"].append(hwm)

    try:
        for rnd in range(a.rounds):
            for mode in ("download", "upload"):
                for t in tools:
                    n = size_of(t, size)
                    tmo = 120 + n / MiB * (2 if t == "tlsc-tlslite" else 0.5)
                    r = transfer(cs[t], mode, n, dig(n), tmo, log)
                    record(t, mode, r, n, True)
                    print(
                        f"round {rnd + 1}/{a.rounds} {mode:8} {t:13} "
                        + (
                            f"{n / MiB / r['seconds']:8.1f} MiB/s cpu {r['cpu']:.2f}s"
                            if r.get("ok")
                            else f"FAILED {r.get('error', '')}"
                        ),
                        file=sys.stderr,
                    )
        for mode in ("download", "upload"):
            for t in tools:
                n = size_of(t, small)
                record(t, mode, transfer(cs[t], mode, n, dig(n), 600, log), n, False)
        # The floors are sampled in the same rounds as the setups they are
        # subtracted from, and the overhead is the median of each round's
        # difference: a slow spell of the machine hits both sides of it.
        # The same goes for the setup with the CA bundle, paired with the
        # one-anchor setup of the same round.
        floor_mods = [floor_module(t) for t in tools if t.startswith("tlsc-")]
        floor_runs: dict[str, list[tuple[float, float]]] = {m: [] for m in floor_mods}
        tunnel = Contender(FLOOR_TUNNEL, d, srv.port, []) if floor_mods else None
        for i in range(max(a.latency_samples, a.floor_samples)):
            this_round: dict[str, float] = {}
            for m in floor_mods if i < a.floor_samples else ():
                sample = floor_sample(m)
                if sample is not None:
                    floor_runs[m].append(sample)
                    this_round[f"tlsc-{m.split('_')[1]}"] = sample[0] * 1e3
            if tunnel is not None and i < a.latency_samples:
                r = latency(tunnel, log)
                if r["ok"]:
                    tunnel_runs.append(r["seconds"] * 1e3)
                    this_round[FLOOR_TUNNEL] = r["seconds"] * 1e3
            for t in tools if i < a.latency_samples else ():
                r = latency(cs[t], log)
                rb = latency(cs[t], log, bundle) if bundle else None
                for got in (r, rb):
                    if got is None:
                        continue
                    if got["ok"]:
                        res[t]["ciphers"].add(got["cipher"])
                    else:
                        res[t]["failed"] += 1
                        res[t]["errors"].append("latency: no reply")
                if r["ok"]:
                    res[t]["latency"].append(r["seconds"] * 1e3)
                    if t in this_round:
                        res[t]["over_floor"].append(r["seconds"] * 1e3 - this_round[t])
                    if t.startswith("tlsc-") and FLOOR_TUNNEL in this_round:
                        over = r["seconds"] * 1e3 - this_round[FLOOR_TUNNEL]
                        res[t]["over_tunnel"].append(over)
                if rb is not None and rb["ok"]:
                    res[t]["latency_bundle"].append(rb["seconds"] * 1e3)
                    if r["ok"]:
                        res[t]["bundle_over_one"].append((rb["seconds"] - r["seconds"]) * 1e3)
        for t in tools:
            r = idle(cs[t], a.idle, log)
            if r.get("ok"):
                res[t]["idle"].append(r["sched"] * 1e3)
                res[t]["ciphers"].add(r.get("cipher"))
            else:
                res[t]["failed"] += 1
                res[t]["errors"].append(f"idle: {r.get('error')}")
    finally:
        srv.stop()
        log.close()

    floors = {m: floor_stats(runs) for m, runs in floor_runs.items()}

    out = {
        "machine": machine(),
        "size_mib": a.size,
        "rounds": a.rounds,
        "rss_small_mib": small / MiB,
        "idle_seconds": a.idle,
        "latency_samples": a.latency_samples,
        "ca_bundle": a.ca_bundle if bundle else None,
        "ca_bundle_anchors": bundle_anchors,
        "tlslite_divisor": TLSLITE_DIVISOR,
        "baseline": a.baseline,
        "floors": floors,
        "floor_tunnel_setup_ms": stats(tunnel_runs),
        "workdir": d,
        "tools": {
            t: {
                "download_mibs": stats(x["download"]),
                "upload_mibs": stats(x["upload"]),
                "cpu_s_per_gib_download": stats(x["cpu_download"]),
                "cpu_s_per_gib_upload": stats(x["cpu_upload"]),
                "peak_rss_mib_small": max(x["hwm_small"], default=None),
                "peak_rss_mib_big": max(x["hwm_big"], default=None),
                "setup_ms": stats(x["latency"]),
                "setup_bundle_ms": stats(x["latency_bundle"]),
                "setup_bundle_over_one_ms": stats(x["bundle_over_one"]),
                "setup_over_floor_ms": stats(x["over_floor"]),
                "setup_over_tunnel_ms": stats(x["over_tunnel"]),
                "idle_cpu_ms": stats(x["idle"]),
                "bytes_verified": x["verified"],
                "failed": x["failed"],
                "errors": x["errors"],
                "ciphers": sorted(c for c in x["ciphers"] if c),
                "size_mib": size_of(t, size) / MiB,
            }
            for t, x in res.items()
        },
    }
    if a.json:
        print(json.dumps(out, indent=2))
    else:
        print_table(out)
    return 0 if all(x["failed"] == 0 for x in out["tools"].values()) else 1


def print_table(out: dict) -> None:
    m = out["machine"]
    tools = list(out["tools"])
    base = out["baseline"] if out["baseline"] in tools else None
    print(
        f"machine: {m['nproc']} x {m['cpu']}, kernel {m['kernel']}, "
        f"Python {m['python']} ({m['python_ssl']}), {m['openssl']}"
    )
    print(f"         {m['stunnel']}; socat {m['socat']}")
    print(
        f"size {out['size_mib']:g} MiB x {out['rounds']} rounds interleaved "
        f"(tlsc-tlslite: 1/{out['tlslite_divisor']} of each size); "
        f"RSS small {out['rss_small_mib']:g} MiB; setup: median of "
        f"{out['latency_samples']}; idle {out['idle_seconds']:g} s; "
        f"ratio = value / {base or '-'}"
    )
    rows = [
        ("download MiB/s", "download_mibs", True),
        ("upload MiB/s", "upload_mibs", True),
        ("CPU s/GiB download", "cpu_s_per_gib_download", True),
        ("CPU s/GiB upload", "cpu_s_per_gib_upload", True),
        ("peak RSS MiB (small)", "peak_rss_mib_small", False),
        ("peak RSS MiB (size)", "peak_rss_mib_big", False),
        ("setup ms", "setup_ms", True),
        ("setup ms, CA bundle", "setup_bundle_ms", True),
        ("idle CPU ms", "idle_cpu_ms", True),
    ]
    w = 34
    print(f"{'figure':22}" + "".join(f"{t:>{w}}" for t in tools))

    def val(v) -> float | None:
        return v["median"] if isinstance(v, dict) else v

    for label, key, has_range in rows:
        cells = []
        for t in tools:
            v = out["tools"][t][key]
            if v is None:
                cells.append("-")
                continue
            s = f"{val(v):.3g}" if val(v) < 100 else f"{val(v):.0f}"
            if has_range and isinstance(v, dict):
                s += f" [{v['min']:.3g}-{v['max']:.3g}]"
            b = out["tools"][base][key] if base else None
            if b is not None and val(b):
                s += f" {val(v) / val(b):.2f}x"
            cells.append(s)
        print(f"{label:22}" + "".join(f"{c:>{w}}" for c in cells))
    for label, key in (("bytes verified (runs)", "bytes_verified"), ("failed runs", "failed")):
        print(f"{label:22}" + "".join(f"{out['tools'][t][key]:>{w}}" for t in tools))
    print(
        f"{'cipher':22}"
        + "".join(f"{','.join(out['tools'][t]['ciphers']) or '-':>{w}}" for t in tools)
    )
    for mod, f in out["floors"].items():
        if f.get("ok"):
            t = "tlsc-" + mod.split("_")[1]
            x = out["tools"][t]
            extra = []
            over = x.get("setup_over_floor_ms")
            if over:
                extra.append(
                    f"setup - floor (median of {over['n']} paired rounds) {over['median']:.1f} ms"
                    f" [{over['min']:.1f} to {over['max']:.1f}]"
                )
            for k in ("small", "big"):
                rss = x[f"peak_rss_mib_{k}"]
                if rss is not None:
                    extra.append(f"RSS({k}) - floor {rss - f['rss_mib']:.1f} MiB")
            print(
                f"floor python -c 'import {mod}': {f['wall_ms']:.1f} ms, "
                f"{f['rss_mib']:.1f} MiB; " + "; ".join(extra)
            )
    tunnel = out.get("floor_tunnel_setup_ms")
    if tunnel:
        b = out["tools"][base]["setup_ms"] if base else None
        ratio = f" = {tunnel['median'] / b['median']:.2f}x {base}" if b else ""
        cells = [
            f"{t} {o['median']:+.1f} [{o['min']:+.1f} to {o['max']:+.1f}]"
            for t in tools
            if (o := out["tools"][t].get("setup_over_tunnel_ms"))
        ]
        print(
            f"floor tunnel (bench/floor_tunnel.py: import ssl, one anchor, handshake, prog, relay) "
            f"setup {tunnel['median']:.1f} ms [{tunnel['min']:.1f}-{tunnel['max']:.1f}]{ratio}; "
            "setup - floor tunnel, ms, median of the paired rounds: " + "; ".join(cells)
        )
    if out.get("ca_bundle"):
        cells = []
        for t in tools:
            over = out["tools"][t]["setup_bundle_over_one_ms"]
            if over:
                cells.append(
                    f"{t} {over['median']:+.1f} [{over['min']:+.1f} to {over['max']:+.1f}]"
                )
        print(
            f"CA bundle ({out['ca_bundle']} + the benchmark CA, {out['ca_bundle_anchors']} "
            f"anchors) - one anchor, ms, median of the paired rounds: " + "; ".join(cells)
        )
    for t in tools:
        for e in out["tools"][t]["errors"][:5]:
            print(f"error {t}: {e}")


if __name__ == "__main__":
    sys.exit(main())
