#!/usr/bin/env python3
"""Connection-rate benchmark: TLS servers that run a prog per connection.

    python bench/conn.py [--rounds N] [--seconds S] [--mem-conns M] [--tools T ...] [--json]

Contenders, each serving ``cat`` behind TLS on 127.0.0.1 with the same ECDSA
P-256 certificate: ``tlsserver`` on each installed backend, ``tlsd`` under
ucspi-tcp's ``tcpserver`` (an interpreter per connection), ``stunnel``
(server mode, ``exec``) and ``socat`` (``OPENSSL-LISTEN,fork`` ... ``EXEC``).
Every server is started once; the rounds are interleaved (A B C A B C ...).

Figures: full handshakes per second measured by ``openssl s_time -new``
(no resumption), one client and two clients at once, each for --seconds;
then memory: M connections are opened and kept open (each echoes a byte
through ``cat``, so prog runs), and the PSS of the server's whole process tree
(/proc/PID/smaps_rollup of the server and every descendant) is summed: total,
and per connection above the idle server.  For tlsserver, the server
process's own PSS before the rounds and after everything is reported too.
Medians, min-max, and ratios to --baseline (stunnel).  A benchmark: it
asserts nothing but that every handshake it counts succeeded.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from run import machine, sh, stats  # noqa: E402

PY = sys.executable
BIN = os.path.dirname(PY)
ALL_TOOLS = [
    "tlsserver-openssl",
    "tlsserver-stdlib",
    "tlsserver-tlslite",
    "tlsd-openssl",
    "tlsd-stdlib",
    "tlsd-tlslite",
    "stunnel",
    "socat",
]


def make_certs(d: str) -> None:
    """A self-signed ECDSA P-256 certificate for localhost / 127.0.0.1."""
    sh(
        "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", f"{d}/srv.key", "-out", f"{d}/srv.pem", "-days", "30",
        "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        "-addext", "basicConstraints=critical,CA:FALSE",
    )  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def script(name: str) -> str | None:
    cand = os.path.join(BIN, name)
    return cand if os.access(cand, os.X_OK) else shutil.which(name)


def backends() -> set[str]:
    tlsd = script("tlsd")
    if not tlsd:
        return set()
    out = subprocess.run([tlsd, "--list-backends"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def available(tool: str, installed: set[str]) -> str | None:
    """None if usable, else why not."""
    kind, _, backend = tool.partition("-")
    if kind in ("tlsserver", "tlsd"):
        if not script(kind):
            return f"{kind} not installed"
        if kind == "tlsd" and not shutil.which("tcpserver"):
            return "tcpserver (ucspi-tcp) not installed"
        return None if backend in installed else f"backend {backend} not installed"
    return None if shutil.which(tool) else f"{tool} not installed"


def _wait_port(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


class Contender:
    """One TLS server running ``cat`` per connection."""

    def __init__(self, name: str, d: str, maxconn: int) -> None:
        self.name, self.d = name, d
        env = dict(os.environ, KEYFILE=f"{d}/srv.key", CERTFILE=f"{d}/srv.pem")
        self.log = open(f"{d}/{name}.log", "wb")
        kind, _, backend = name.partition("-")
        cat = shutil.which("cat") or "/bin/cat"
        if kind == "tlsserver":
            argv = [script("tlsserver"), "-1", "--backend", backend, "-c", str(maxconn),
                    "127.0.0.1", "0", cat]  # fmt: skip
            self.proc = subprocess.Popen(
                argv, env=env, stdout=subprocess.PIPE, stderr=self.log,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
            line = self.proc.stdout.readline()
            if not line.strip().isdigit():
                raise RuntimeError(f"{name}: no port on stdout ({line!r})")
            self.port = int(line)
            self.proc.stdout.close()
            return
        self.port = free_port()
        if kind == "tlsd":
            argv = ["tcpserver", "-HRl0", "-c", str(maxconn), "-b", str(maxconn), "127.0.0.1",
                    str(self.port), script("tlsd"), "--backend", backend, cat]  # fmt: skip
        elif name == "stunnel":
            conf = f"{d}/stunnel.conf"
            with open(conf, "w") as f:
                f.write(
                    "foreground = yes\npid =\ndebug = 3\n[bench]\n"
                    f"accept = 127.0.0.1:{self.port}\nexec = {cat}\nexecArgs = cat\n"
                    f"cert = {d}/srv.pem\nkey = {d}/srv.key\n"
                )
            argv = ["stunnel", conf]
        elif name == "socat":
            argv = ["socat", f"OPENSSL-LISTEN:{self.port},bind=127.0.0.1,reuseaddr,fork,"
                    f"cert={d}/srv.pem,key={d}/srv.key,verify=0", f"EXEC:{cat}"]  # fmt: skip
        else:
            raise ValueError(name)
        self.proc = subprocess.Popen(
            argv, env=env, stdout=self.log, stderr=self.log,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        _wait_port(self.port, self.proc)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        try:
            os.killpg(self.proc.pid, 9)
        except (ProcessLookupError, PermissionError):
            pass
        self.log.close()


# -- handshakes per second ----------------------------------------------------------

S_TIME = re.compile(r"^(\d+) connections in [\d.]+s;", re.M)


def s_time(port: int, seconds: float) -> tuple[int, float, str]:
    """(handshakes, wall seconds, error) of one ``openssl s_time -new`` run."""
    t0 = time.monotonic()
    p = subprocess.run(
        ["openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-new", "-time",
         str(max(1, round(seconds)))],
        capture_output=True, text=True, timeout=seconds + 120,
    )  # fmt: skip
    wall = time.monotonic() - t0
    m = S_TIME.search(p.stdout)
    if p.returncode != 0 or m is None or "ERROR" in p.stdout:
        tail = (p.stdout + p.stderr).strip().splitlines()[-3:]
        return 0, wall, f"s_time exit {p.returncode}: {' / '.join(tail)}"
    return int(m.group(1)), wall, ""


def rate(port: int, seconds: float, clients: int) -> tuple[float | None, str]:
    """Handshakes per second with ``clients`` s_time processes at once."""
    results: list[tuple[int, float, str]] = []
    threads = [
        threading.Thread(target=lambda: results.append(s_time(port, seconds)))
        for _ in range(clients)
    ]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    errors = [e for _, _, e in results if e]
    if errors:
        return None, errors[0]
    return sum(n for n, _, _ in results) / wall, ""


# -- memory -----------------------------------------------------------------------------


def descendants(pid: int) -> list[int]:
    parent: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                parent[int(name)] = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(c for c, pp in parent.items() if pp == p)
    return out


def pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_pss_mib(pid: int) -> tuple[float, int]:
    pids = descendants(pid)
    return sum(pss_kib(p) for p in pids) / 1024, len(pids)


def open_connections(port: int, n: int) -> list[ssl.SSLSocket]:
    """``n`` connections, each through its handshake and one byte echoed by prog."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    conns = []
    for _ in range(n):
        c = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), 120))
        c.sendall(b"x")
        if c.recv(1) != b"x":
            raise RuntimeError("no echo")
        conns.append(c)
    return conns


def memory(c: Contender, n: int) -> dict:
    idle, _ = tree_pss_mib(c.proc.pid)
    conns = open_connections(c.port, n)
    try:
        time.sleep(0.5)
        busy, procs = tree_pss_mib(c.proc.pid)
    finally:
        for conn in conns:
            conn.close()
    return {
        "idle_mib": idle,
        "total_mib": busy,
        "per_conn_mib": (busy - idle) / n if n else None,
        "processes": procs,
    }


# -- the run --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds [5]")
    ap.add_argument("--seconds", type=float, default=5, help="s_time run length [5]")
    ap.add_argument("--mem-conns", type=int, default=200, help="connections held open [200]")
    ap.add_argument("--tools", nargs="+", default=ALL_TOOLS, choices=ALL_TOOLS)
    ap.add_argument("--baseline", default="stunnel")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = ap.parse_args(argv)
    if not shutil.which("openssl"):
        print("bench/conn.py needs the openssl command", file=sys.stderr)
        return 2
    installed = backends()
    skipped = {t: why for t in args.tools if (why := available(t, installed))}
    tools = [t for t in args.tools if t not in skipped]
    maxconn = max(args.mem_conns + 20, 60)
    with tempfile.TemporaryDirectory(prefix="tlsc-bench-conn-") as d:
        make_certs(d)
        running: dict[str, Contender] = {}
        try:
            for t in tools:
                try:
                    running[t] = Contender(t, d, maxconn)
                except (RuntimeError, OSError) as e:
                    skipped[t] = f"did not start: {e}"
            tools = [t for t in tools if t in running]
            parent_before = {
                t: pss_kib(c.proc.pid) / 1024 for t, c in running.items()
                if t.startswith("tlsserver")
            }  # fmt: skip
            serial: dict[str, list[float]] = {t: [] for t in tools}
            parallel: dict[str, list[float]] = {t: [] for t in tools}
            errors: dict[str, list[str]] = {t: [] for t in tools}
            for r in range(args.rounds):
                order = tools[r % len(tools) :] + tools[: r % len(tools)] if tools else []
                for t in order:
                    for clients, into in ((1, serial), (2, parallel)):
                        value, err = rate(running[t].port, args.seconds, clients)
                        if value is None:
                            errors[t].append(err)
                        else:
                            into[t].append(value)
            mem = {}
            for t in tools:
                try:
                    mem[t] = memory(running[t], args.mem_conns)
                except (OSError, RuntimeError, ssl.SSLError) as e:
                    mem[t] = {"error": str(e)}
            parent_after = {t: pss_kib(running[t].proc.pid) / 1024 for t in parent_before}
        finally:
            for c in running.values():
                c.stop()
    out = {
        "machine": machine(),
        "rounds": args.rounds,
        "seconds": args.seconds,
        "mem_conns": args.mem_conns,
        "baseline": args.baseline,
        "skipped": skipped,
        "tools": {
            t: {
                "serial_hs": stats(serial[t]),
                "parallel2_hs": stats(parallel[t]),
                "errors": errors[t],
                "memory": mem.get(t),
                "server_pss_mib_before": parent_before.get(t),
                "server_pss_mib_after": parent_after.get(t),
            }
            for t in tools
        },
    }
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print_table(out)
    return 0


def _ratio(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return ""
    return f" {value / base:.2f}x"


def print_table(out: dict) -> None:
    tools = out["tools"]
    base = tools.get(out["baseline"], {})
    m = out["machine"]
    print(f"# {m['nproc']} cpu {m['cpu']}, Python {m['python']}, {m['openssl']}, "
          f"{m['stunnel']}, socat {m['socat']}, kernel {m['kernel']}")  # fmt: skip
    print(f"# {out['rounds']} rounds x {out['seconds']} s, interleaved; medians [min-max], "
          f"ratio to {out['baseline']}")  # fmt: skip
    width = 22
    print(f"{'figure':<{width}}" + "".join(f"{t:>26}" for t in tools))

    def row(label: str, cell) -> None:  # noqa: ANN001
        print(f"{label:<{width}}" + "".join(f"{cell(t):>26}" for t in tools))

    for key, label in (("serial_hs", "handshakes/s, 1 client"),
                       ("parallel2_hs", "handshakes/s, 2 clients")):  # fmt: skip

        def hs(t: str, key: str = key) -> str:
            s = tools[t][key]
            if s is None:
                return "-"
            b = (base.get(key) or {}).get("median")
            return f"{s['median']:.0f} [{s['min']:.0f}-{s['max']:.0f}]{_ratio(s['median'], b)}"

        row(label, hs)

    def mem(field: str, fmt: str):  # noqa: ANN202
        def cell(t: str) -> str:
            m = tools[t]["memory"] or {}
            v = m.get(field)
            return "-" if v is None else fmt.format(v)

        return cell

    n = out["mem_conns"]
    row("PSS MiB, idle", mem("idle_mib", "{:.1f}"))
    row(f"PSS MiB, {n} open", mem("total_mib", "{:.1f}"))
    row("PSS MiB per conn", mem("per_conn_mib", "{:.2f}"))
    row(f"processes, {n} open", mem("processes", "{}"))

    def parent(t: str) -> str:
        b, a = tools[t]["server_pss_mib_before"], tools[t]["server_pss_mib_after"]
        return "-" if b is None else f"{b:.1f} -> {a:.1f}"

    row("server PSS before->after", parent)
    failures = {t: len(v["errors"]) for t, v in tools.items() if v["errors"]}
    print(f"failed runs: {sum(failures.values())}" + (f" {failures}" if failures else ""))
    for t, v in tools.items():
        for e in v["errors"][:2]:
            print(f"  {t}: {e}")
        if v["memory"] and "error" in v["memory"]:
            print(f"  {t} memory: {v['memory']['error']}")
    for t, why in out["skipped"].items():
        print(f"skipped {t}: {why}")


if __name__ == "__main__":
    raise SystemExit(main())
