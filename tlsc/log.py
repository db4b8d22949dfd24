"""Diagnostics on stderr: ``NAME: fatal|warning|info|debug: ...``, by verbosity.

Levels (``-v``): 0 fatal only, 1 warnings, 2 one info line per
connection and close reasons, 3+ debug trace.  Messages never carry key
material: callers pass reasons, never file contents.
"""

from __future__ import annotations

import os
import sys


class Log:
    def __init__(self, name: str = "tlsc", verbosity: int = 1, pid: int | None = None) -> None:
        """``pid``: every line says ``pid N:`` after its kind, so that the lines of
        concurrent connections (tlsd, tlsserver) can be told apart in one log."""
        self.name = name
        self.verbosity = verbosity
        self.pid = pid
        self._tag = f"pid {pid}: " if pid is not None else ""

    def at(self, verbosity: int) -> Log:
        """The same log (name, pid) at another verbosity."""
        return Log(self.name, verbosity, self.pid)

    def _emit(self, kind: str, msg: str) -> None:
        # One write per line so that lines from concurrent processes never interleave.
        line = f"{self.name}: {kind}: {self._tag}{msg}".replace("\n", " ") + "\n"
        try:
            os.write(2, line.encode("utf-8", "backslashreplace"))
        except OSError:
            pass

    def fatal(self, msg: str) -> None:
        self._emit("fatal", msg)

    def always_warn(self, msg: str) -> None:
        """A warning printed at every verbosity, -v 0 included (--no-verify-cert)."""
        self._emit("warning", msg)

    def warn(self, msg: str) -> None:
        if self.verbosity >= 1:
            self._emit("warning", msg)

    def info(self, msg: str) -> None:
        if self.verbosity >= 2:
            self._emit("info", msg)

    def debug(self, msg: str) -> None:
        if self.verbosity >= 3:
            self._emit("debug", msg)


def flush_std() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
