"""Servers for tlsc to talk to: real ``openssl s_server`` and the scriptable Python peer."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

PYPEER = Path(__file__).with_name("pypeer.py")


class _Reader(threading.Thread):
    """Collects a pipe's lines; lets a caller wait for a line that matches."""

    def __init__(self, stream):
        super().__init__(daemon=True)
        self.stream = stream
        self.lines: list[str] = []
        self.cond = threading.Condition()
        self.done = False
        self.start()

    def run(self) -> None:
        for raw in iter(self.stream.readline, b""):
            with self.cond:
                self.lines.append(raw.decode("utf-8", "replace"))
                self.cond.notify_all()
        with self.cond:
            self.done = True
            self.cond.notify_all()

    def wait_for(self, pattern: str, timeout: float) -> re.Match | None:
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        seen = 0
        with self.cond:
            while True:
                for line in self.lines[seen:]:
                    m = rx.search(line)
                    if m:
                        return m
                seen = len(self.lines)
                left = end - time.monotonic()
                if self.done or left <= 0:
                    return None
                self.cond.wait(left)

    @property
    def text(self) -> str:
        with self.cond:
            return "".join(self.lines)


class _Server:
    proc: subprocess.Popen
    port: int

    def _spawn(self, argv: list[str], ready: str, timeout: float = 10.0) -> None:
        self.argv = argv
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.out = _Reader(self.proc.stdout)
        self.err = _Reader(self.proc.stderr)
        m = self.out.wait_for(ready, timeout)
        if m is None:
            self.stop()
            raise RuntimeError(f"server did not start: {argv}\nstdout: {self.out.text}\n"
                               f"stderr: {self.err.text}")
        self.port = int(m.group(1))
        self.address = ("127.0.0.1", self.port)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        for reader in (self.out, self.err):
            reader.join(2)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                stream.close()
            except OSError:
                pass


class SServer(_Server):
    """``openssl s_server`` on 127.0.0.1, an ephemeral port, any extra options.

    ``mode="rev"``: every line received is sent back reversed (``-rev``).
    """

    def __init__(self, *, cert: Path, key: Path, chain: Path | None = None,
                 tls: str | None = None, mode: str = "rev", extra: list[str] = ()):
        argv = ["openssl", "s_server", "-accept", "127.0.0.1:0", "-cert", str(cert),
                "-key", str(key)]
        if chain is not None and chain.stat().st_size:
            argv += ["-cert_chain", str(chain)]
        if tls == "1.2":
            argv.append("-tls1_2")
        elif tls == "1.3":
            argv.append("-tls1_3")
        if mode == "rev":
            argv.append("-rev")
        argv += list(extra)
        self._spawn(argv, r"^ACCEPT \S+:(\d+)")

    @property
    def output(self) -> str:
        return self.out.text + self.err.text


class PyPeer(_Server):
    """The stdlib-ssl peer of pypeer.py; see its options there."""

    def __init__(self, *, cert: Path | None = None, key: Path | None = None, **opts):
        argv = [sys.executable, str(PYPEER)]
        if cert is not None:
            argv += ["--cert", str(cert), "--key", str(key)]
        for k, v in opts.items():
            flag = "--" + k.replace("_", "-")
            if v is True:
                argv.append(flag)
            elif v is False or v is None:
                continue
            else:
                argv += [flag, str(v)]
        self._result: dict | None = None
        self._spawn(argv, r"^READY (\d+)")

    def result(self, timeout: float = 15.0) -> dict:
        if self._result is None:
            m = self.out.wait_for(r"^RESULT (.*)$", timeout)
            if m is None:
                self.stop()
                raise AssertionError(f"python peer gave no result within {timeout}s; "
                                     f"stderr: {self.err.text}")
            self._result = json.loads(m.group(1))
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.stop()
        return self._result
