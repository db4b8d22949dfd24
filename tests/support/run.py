"""Run tlsc as tcpclient would: a connected socket on its fds 6 and 7, a controlled env."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

LAUNCH = Path(__file__).with_name("launch.py")
TLSC = [sys.executable, "-m", "tlsc"]
TLSCLIENT = [sys.executable, "-m", "tlsc.tlsclient"]
DEFAULT_TIMEOUT = 20.0

#: What tlsc itself may print on stderr: fatal, warning and info lines, nothing else.
TLSC_LINE = re.compile(r"^tlsc: (fatal|warning|info): ")
FATAL_LINE = re.compile(r"^tlsc: fatal: .+: .+")


def base_env() -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LC_ALL": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


@dataclass
class Result:
    argv: list[str]
    rc: int
    stdout: str
    stderr: str
    elapsed: float
    env: dict[str, str] = field(repr=False, default_factory=dict)

    @property
    def lines(self) -> list[str]:
        return self.stderr.splitlines()

    @property
    def fatal(self) -> list[str]:
        return [ln for ln in self.lines if ln.startswith("tlsc: fatal:")]

    @property
    def warnings(self) -> list[str]:
        return [ln for ln in self.lines if ln.startswith("tlsc: warning:")]

    @property
    def infos(self) -> list[str]:
        return [ln for ln in self.lines if ln.startswith("tlsc: info:")]

    def describe(self) -> str:
        return (f"command: {self.argv}\nrc: {self.rc} (after {self.elapsed:.2f}s)\n"
                f"stdout: {self.stdout!r}\nstderr:\n{self.stderr}")

    def assert_no_traceback(self) -> None:
        assert "Traceback" not in self.stderr, self.describe()
        assert "Traceback" not in self.stdout, self.describe()

    def assert_ok(self, rc: int = 0) -> None:
        """prog ran and tlsc exited with its code, no fatal line, no traceback."""
        self.assert_no_traceback()
        assert not self.fatal, self.describe()
        assert self.rc == rc, self.describe()

    def assert_fatal(self, rc: int, why: str | None = None, *, strict: bool = True) -> str:
        """tlsc failed with ``rc`` and exactly one ``tlsc: fatal: what: why`` line.

        ``why`` is a regular expression searched (case-insensitively) in that line.
        ``strict``: prog never ran, so every stderr line must be tlsc's own.
        """
        self.assert_no_traceback()
        assert self.rc == rc, self.describe()
        assert len(self.fatal) == 1, self.describe()
        line = self.fatal[0]
        if why is not None:
            assert re.search(why, line, re.IGNORECASE), (
                f"fatal line does not say why ({why!r}):\n" + self.describe())
        if strict:
            for ln in self.lines:
                assert TLSC_LINE.match(ln), f"unexpected stderr line {ln!r}\n" + self.describe()
        assert line.startswith("tlsc: fatal: ") and len(line) > 20, self.describe()
        return line

    def assert_fatal_format(self) -> None:
        """The single fatal line has the documented shape ``tlsc: fatal: <what failed>: <why>``."""
        assert len(self.fatal) == 1, self.describe()
        assert FATAL_LINE.match(self.fatal[0]), (
            "fatal line is not 'tlsc: fatal: <what failed>: <why>':\n" + self.describe())


class Running:
    """A tlsc process started by :func:`start`; ``pid`` is tlsc's own pid."""

    def __init__(self, argv, proc: subprocess.Popen, env, started: float):
        self.argv = argv
        self.proc = proc
        self.env = env
        self.started = started

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send_signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = DEFAULT_TIMEOUT) -> Result:
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            rc = self.proc.poll()
            self.kill()
            out, err = self.proc.communicate(timeout=5)
            what = ("tlsc did not finish" if rc is None else
                    f"tlsc exited ({rc}) but left its stdout/stderr open (an orphaned prog?)")
            raise AssertionError(
                f"{what} within {timeout}s: {self.argv}\n"
                f"stderr so far:\n{err.decode('utf-8', 'replace')}") from None
        return Result(self.argv, self.proc.returncode, out.decode("utf-8", "replace"),
                      err.decode("utf-8", "replace"), time.monotonic() - self.started,
                      self.env)

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def alive(self) -> bool:
        return self.proc.poll() is None


def start(
    args: list[str],
    *,
    peer: tuple[str, int] | socket.socket | None = None,
    env: dict[str, str | None] | None = None,
    fds: tuple[int, ...] = (6, 7),
    cmd: list[str] | None = None,
    user: int | None = None,
    cwd: str | Path | None = None,
) -> Running:
    """Start ``tlsc args...`` with a connection to ``peer`` on ``fds``.

    ``peer`` None: tlsc gets no network descriptor at all.
    ``env``: added to a minimal base environment; a None value removes a variable.
    """
    full_env = base_env()
    for k, v in (env or {}).items():
        if v is None:
            full_env.pop(k, None)
        else:
            full_env[k] = str(v)
    argv = (cmd or TLSC) + [str(a) for a in args]
    sock = None
    if peer is not None:
        sock = peer if isinstance(peer, socket.socket) else socket.create_connection(peer, 5)
        sock.settimeout(None)
        launch = [sys.executable, "-S", str(LAUNCH), str(sock.fileno()),
                  ",".join(str(fd) for fd in fds), "--"]
        pass_fds: tuple[int, ...] = (sock.fileno(),)
    else:
        launch = [sys.executable, "-S", str(LAUNCH), "-", "", "--"]
        pass_fds = ()
    kwargs = {}
    if user is not None:
        kwargs.update(user=user, group=user, extra_groups=[])
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            launch + argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=full_env, pass_fds=pass_fds,
            start_new_session=True, cwd=cwd, **kwargs,
        )
    finally:
        if sock is not None:
            sock.close()  # tlsc must hold the only reference: its close is the FIN
    return Running(argv, proc, full_env, started)


def run(args: list[str], *, timeout: float = DEFAULT_TIMEOUT, **kw) -> Result:
    return start(args, **kw).wait(timeout)


def wait_for_file(path: Path, timeout: float = 10.0, proc: Running | None = None) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists():
            return True
        if proc is not None and not proc.alive():
            return path.exists()
        time.sleep(0.02)
    return False
