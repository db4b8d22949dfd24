"""Helpers for the load test: tcpserver + tlsd, many tlsclient processes, an RSS sampler.

Nothing here is specific to one backend.  ``TcpServer`` runs ucspi-tcp's
``tcpserver`` in front of ``tlsd`` (one tlsd per accepted connection, as in
production); ``RssSampler`` sums VmRSS/RssAnon over a set of processes found by
a predicate, in a background thread, and keeps the peak.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.run import base_env

BIN = Path(sys.executable).parent


def console_script(name: str) -> list[str]:
    """The venv's console script ``name``; else ``python -c`` its main()."""
    path = BIN / name
    if path.exists():
        return [str(path)]
    found = shutil.which(name)
    if found:
        return [found]
    module, func = {
        "tlsd": ("tlsc.quick", "tlsd_main"),
        "tlsclient": ("tlsc.tlsclient", "main"),
        "tlsc": ("tlsc.quick", "tlsc_main"),
    }[name]
    return [sys.executable, "-c", f"from {module} import {func}; {func}()"]


def raise_nofile(want: int = 8192) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TcpServer:
    """``tcpserver -c LIMIT -b BACKLOG -HRl0 127.0.0.1 PORT tlsd ARGS...`` (stderr to a file)."""

    def __init__(self, tlsd_args: list[str], env: dict[str, str], limit: int,
                 errfile: Path, tries: int = 3):
        self.errfile = errfile
        last = ""
        for _ in range(tries):
            self.port = _free_port()
            argv = ["tcpserver", "-v", "-c", str(limit), "-b", str(min(limit, 1024)),
                    "-HRl0", "127.0.0.1", str(self.port),
                    *console_script("tlsd"), *tlsd_args]
            full = base_env()
            full.update(env)
            self.err = open(errfile, "wb")
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=self.err,
                                         env=full, start_new_session=True)
            end = time.monotonic() + 10
            while time.monotonic() < end and self.proc.poll() is None:
                last = errfile.read_text(errors="replace")
                if "status: 0/" in last:
                    self.address = ("127.0.0.1", self.port)
                    return
                time.sleep(0.02)
            self.stop()
        raise RuntimeError(f"tcpserver did not start: {last}")

    def children(self) -> list[int]:
        return children_of(self.proc.pid)

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        self.err.close()


def _stat(pid: int) -> tuple[int, str] | None:
    """(ppid, comm) of ``pid``, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    comm = raw[raw.index("(") + 1: raw.rindex(")")]
    ppid = int(raw[raw.rindex(")") + 2:].split()[1])
    return ppid, comm


def children_of(parent: int) -> list[int]:
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st is not None and st[0] == parent:
                out.append(int(name))
    return out


def rss_kib(pid: int) -> tuple[int, int] | None:
    """(VmRSS, RssAnon) in KiB, None when the process is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/status") as f:
            text = f.read()
    except OSError:
        return None
    vals = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon"):
            vals[key] = int(value.split()[0])
    if "VmRSS" not in vals:
        return None
    return vals["VmRSS"], vals.get("RssAnon", 0)


def pss_kib(pid: int) -> int:
    """Proportional set size (shared pages divided among their users), 0 if unknown."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def is_python(pid: int) -> bool:
    """True while ``pid`` still runs the Python interpreter (tlsc/tlsd, not prog)."""
    try:
        return os.path.basename(os.readlink(f"/proc/{pid}/exe")).startswith("python")
    except OSError:
        return False


@dataclass
class Sample:
    t: float
    procs: int
    vmrss_kib: int
    anon_kib: int
    pss_kib: int = 0


@dataclass
class RssSampler:
    """Every ``interval`` s, sum VmRSS/RssAnon/Pss over the Python processes ``pids()`` lists."""

    pids: object  # callable returning an iterable of pids
    interval: float = 0.25
    samples: list[Sample] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            n = vm = anon = pss = 0
            for pid in list(self.pids()):
                if not is_python(pid):
                    continue
                got = rss_kib(pid)
                if got is None:
                    continue
                n += 1
                vm += got[0]
                anon += got[1]
                pss += pss_kib(pid)
            self.samples.append(Sample(time.monotonic() - self._t0, n, vm, anon, pss))
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    @property
    def peak(self) -> Sample:
        return max(self.samples, key=lambda s: s.vmrss_kib,
                   default=Sample(0.0, 0, 0, 0))

    @property
    def peak_procs(self) -> int:
        return max((s.procs for s in self.samples), default=0)
