"""prog command lines for tlsc: the probe script and a few shell one-liners."""

from __future__ import annotations

import json
import sys
from pathlib import Path

PROBE = Path(__file__).with_name("probe.py")


class Probe:
    """``python probe.py OUT actions...``: see probe.py; ``report()`` reads OUT."""

    def __init__(self, workdir: Path, name: str = "probe"):
        self.out = workdir / f"{name}.json"

    def argv(self, *actions: str, fds: tuple[int, int] | None = None) -> list[str]:
        argv = [sys.executable, str(PROBE)]
        if fds is not None:
            argv += ["--fds", f"{fds[0]},{fds[1]}"]
        return argv + [str(self.out), *actions]

    @property
    def ran(self) -> bool:
        return self.out.exists()

    def report(self) -> dict:
        assert self.out.exists(), "prog did not run (no report written)"
        return json.loads(self.out.read_text())


def marker_prog(marker: Path) -> list[str]:
    """A prog whose only effect is to create ``marker``: proof that it was executed."""
    return ["sh", "-c", 'touch "$1"', "sh", str(marker)]
