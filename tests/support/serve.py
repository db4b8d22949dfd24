"""Run tlsd as a UCSPI super-server would: one accepted connection on its stdin/stdout.

:class:`Listener` is the tiny accept loop: a socket on 127.0.0.1 that a client
(openssl s_client, gnutls-cli, tlsc) connects to; :meth:`Listener.serve` accepts
one connection and starts tlsd with it on fds 0 and 1, as tcpserver does.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

from tests.support.run import DEFAULT_TIMEOUT, base_env

TLSD = [sys.executable, "-c", "from tlsc.tlsd import main; main()"]
TLSD_LINE = re.compile(r"^tlsd: (fatal|warning|info): ")
FATAL_LINE = re.compile(r"^tlsd: fatal: .+: .+")


@dataclass
class TlsdResult:
    argv: list[str]
    rc: int
    stderr: str

    @property
    def fatal(self) -> list[str]:
        return [ln for ln in self.stderr.splitlines() if ln.startswith("tlsd: fatal:")]

    def describe(self) -> str:
        return f"tlsd {self.argv}\nrc: {self.rc}\nstderr:\n{self.stderr}"

    def assert_ok(self, rc: int = 0) -> None:
        assert "Traceback" not in self.stderr, self.describe()
        assert not self.fatal, self.describe()
        assert self.rc == rc, self.describe()

    def assert_fatal(self, rc: int, why: str | None = None) -> str:
        """Exactly one ``tlsd: fatal: what: why`` line, only tlsd's own lines, ``rc``."""
        assert "Traceback" not in self.stderr, self.describe()
        assert self.rc == rc, self.describe()
        assert len(self.fatal) == 1, self.describe()
        assert FATAL_LINE.match(self.fatal[0]), self.describe()
        for ln in self.stderr.splitlines():
            assert TLSD_LINE.match(ln), f"unexpected stderr line {ln!r}\n" + self.describe()
        if why is not None:
            assert re.search(why, self.fatal[0], re.IGNORECASE), self.describe()
        return self.fatal[0]


class RunningTlsd:
    def __init__(self, argv: list[str], proc: subprocess.Popen):
        self.argv = argv
        self.proc = proc

    def wait(self, timeout: float = DEFAULT_TIMEOUT) -> TlsdResult:
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate(timeout=5)
            raise AssertionError(
                f"tlsd did not finish within {timeout}s: {self.argv}\n"
                f"stderr so far:\n{err.decode('utf-8', 'replace')}"
            ) from None
        return TlsdResult(self.argv, self.proc.returncode, err.decode("utf-8", "replace"))

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def tlsd_env(env: dict[str, str | None] | None) -> dict[str, str]:
    full = base_env()
    for k, v in (env or {}).items():
        if v is None:
            full.pop(k, None)
        else:
            full[k] = str(v)
    return full


def start_tlsd(args: list[str], conn: socket.socket | None, env=None) -> RunningTlsd:
    """tlsd with ``conn`` on stdin and stdout (None: /dev/null); the parent's copy is closed."""
    argv = TLSD + [str(a) for a in args]
    fd = conn.fileno() if conn is not None else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(
            argv, stdin=fd, stdout=fd, stderr=subprocess.PIPE, env=tlsd_env(env),
            start_new_session=True,
        )
    finally:
        if conn is not None:
            conn.close()  # tlsd must hold the only reference: its close is the FIN
    return RunningTlsd(argv, proc)


class Listener:
    """A listening socket on 127.0.0.1; ``serve`` accepts one connection into tlsd."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(10)
        self.port = self.sock.getsockname()[1]
        self.address = ("127.0.0.1", self.port)
        self.running: list[RunningTlsd] = []

    def serve(self, args: list[str], env=None) -> RunningTlsd:
        conn, _ = self.sock.accept()
        conn.settimeout(None)
        t = start_tlsd(args, conn, env)
        self.running.append(t)
        return t

    def close(self) -> None:
        for t in self.running:
            t.kill()
        self.sock.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False
