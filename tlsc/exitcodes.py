"""Exit codes (docs/tlsc.rst, "Exit status") and the one exception that carries them.

Every failure that ends tlsc is raised as :class:`Fatal` with its code and a
"what failed: why" message; only the CLI's top level turns it into the single
``tlsc: fatal:`` line and the exit.  That keeps the one-line, no-traceback
discipline in one place.
"""

from __future__ import annotations

import os

CONFIG = 96  #: trust anchors, certificate or key unreadable or invalid
ENGINE = 97  #: the backend could not set up its TLS engine
TLS = 98  #: handshake, verification, timeout, alert, corrupt record, truncation under -J
USAGE = 100  #: bad option, missing prog, missing variable, unknown backend
SYSTEM = 111  #: a system call failed: fd not open, fork/pipe/exec, read/write error

TABLE = (
    ("prog's", "the connection closed cleanly: prog's exit code, or 128+signal"),
    (str(CONFIG), "TLS configuration error: trust anchors, certificate or key"),
    (str(ENGINE), "the TLS backend could not set up its engine"),
    (
        str(TLS),
        "TLS error: handshake, verification, timeout, fatal alert, bad record, -J truncation",
    ),
    (str(USAGE), "wrong usage: bad option, missing prog or variable, unknown backend"),
    (str(SYSTEM), "system call failed: fd not open, fork/pipe/exec, read/write error"),
)


class Fatal(Exception):
    """Ends tlsc with ``code`` after printing ``tlsc: fatal: <message>``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def status_to_code(status: int) -> int:
    """prog's wait status as the shell reports it: its code, or 128 + signal."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code
