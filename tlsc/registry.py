"""Backend discovery and selection.

Backends are distributions that register an object in the entry-point group
``tlsc.backends``.  Listing them reads only packaging metadata; the selected
one alone is imported, so a run pays for one crypto library, never two.

Selection (spec section 5): ``--backend NAME``, else ``TLSC_BACKEND``, else the
installed backend with the highest priority.  Priorities of the backends this
project ships are known here, so that picking the default needs no import;
a third-party backend ranks below them unless named.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from .session import Backend

__all__ = [
    "GROUP",
    "BackendNotFound",
    "available",
    "install_hint",
    "load",
    "select",
]

GROUP = "tlsc.backends"

#: Higher wins when nothing is named.  openssl before tlslite (spec section 5).
PRIORITY = {"openssl": 20, "tlslite": 10}

#: The distribution that provides each backend we know of.
DISTRIBUTION = {"openssl": "tlsc-openssl", "tlslite": "tlsc-tlslite"}


class BackendNotFound(Exception):
    """The backend asked for is not installed (or none is): exit 100."""


@dataclass(frozen=True)
class Candidate:
    name: str
    entry_point: EntryPoint

    @property
    def priority(self) -> int:
        return PRIORITY.get(self.name, 0)


def available() -> dict[str, Candidate]:
    """Installed backends by name, without importing any of them."""
    found: dict[str, Candidate] = {}
    for ep in entry_points(group=GROUP):
        found.setdefault(ep.name, Candidate(ep.name, ep))
    return found


def install_hint(name: str) -> str:
    dist = DISTRIBUTION.get(name, f"tlsc-{name}")
    return f"pip install {dist}  (or: pip install 'tlsc[{name}]')"


def _missing_message(name: str, installed: dict[str, Candidate]) -> str:
    have = ", ".join(sorted(installed)) or "none"
    return f"backend {name!r} is not installed (installed: {have}); install it with: " + (
        install_hint(name)
    )


def select(requested: str | None) -> Candidate:
    """The backend to use: the one named, else the highest-priority installed one."""
    installed = available()
    if requested:
        cand = installed.get(requested)
        if cand is None:
            raise BackendNotFound(_missing_message(requested, installed))
        return cand
    if not installed:
        raise BackendNotFound(
            "no TLS backend is installed; install one with: " + install_hint("openssl")
        )
    return max(installed.values(), key=lambda c: (c.priority, c.name))


def load(candidate: Candidate) -> Backend:
    """Import the selected backend and return its backend object."""
    try:
        obj = candidate.entry_point.load()
    except ImportError as e:
        raise BackendNotFound(
            f"backend {candidate.name!r} is registered but cannot be imported ({e}); "
            "reinstall it with: " + install_hint(candidate.name)
        ) from None
    return obj() if isinstance(obj, type) else obj
