"""Backend discovery and selection.

Backends are distributions that register an object in the entry-point group
``tlsc.backends``.  Listing them reads only packaging metadata; the selected
one alone is imported, so a run pays for one crypto library, never two.

Selection (docs/backends.rst, "Choosing one"): ``--backend NAME``, else
``TLSC_BACKEND``, else the installed backend with the highest priority.
Priorities of the backends this project ships are known here, so that picking
the default needs no import; a third-party backend ranks below them unless
named.

Start-up cost matters (tlsc runs once per connection), and reading every
installed distribution's metadata costs more than importing one backend.  So
:func:`resolve` tries the backends this project ships by their module name
first, in priority order, and scans entry points only for another name or
when none of ours is installed.

A name that is not installed is a usage error whose message says where the
backend comes from (:func:`install_hint`): for this project's backends, the
distribution and its directory in the source tree; for any other name, no
install command at all, since ``tlsc-<name>`` on a package index could be
anyone's.
"""

from __future__ import annotations

import sys

#: ``typing.TYPE_CHECKING`` without importing ``typing`` (see :mod:`tlsc.session`).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from .session import Backend

__all__ = [
    "GROUP",
    "BackendNotFound",
    "available",
    "install_hint",
    "load",
    "resolve",
    "select",
]

GROUP = "tlsc.backends"

#: Higher wins when nothing is named: openssl, then tlslite, then stdlib.
#: stdlib ships with the core, so it is always there as the fallback.
PRIORITY = {"openssl": 20, "tlslite": 10, "stdlib": 5}

#: The module of each backend this project ships, for the fast path.
MODULE = {"openssl": "tlsc_openssl", "tlslite": "tlsc_tlslite", "stdlib": "tlsc_stdlib"}

#: This project's backends: the distribution of each and where it lives in tlsc's
#: source tree (None: it ships inside the core distribution, tlsc).  A name not
#: in here is a third-party backend, and no install command is ever suggested
#: for it: ``tlsc-<name>`` is a name anyone could register on a package index.
DISTRIBUTION: dict[str, tuple[str, str | None]] = {
    "openssl": ("tlsc-openssl", "backends/openssl"),
    "tlslite": ("tlsc-tlslite", "backends/tlslite"),
    "stdlib": ("tlsc", None),
}


class BackendNotFound(Exception):
    """The backend asked for is not installed (or none is): exit 100."""


class Candidate:
    """An installed backend, found by its entry point and not imported yet."""

    __slots__ = ("entry_point", "name")

    def __init__(self, name: str, entry_point: EntryPoint) -> None:
        self.name = name
        self.entry_point = entry_point

    @property
    def priority(self) -> int:
        return PRIORITY.get(self.name, 0)


def available() -> dict[str, Candidate]:
    """Installed backends by name, without importing any of them."""
    from importlib.metadata import entry_points

    found: dict[str, Candidate] = {}
    for ep in entry_points(group=GROUP):
        found.setdefault(ep.name, Candidate(ep.name, ep))
    return found


def install_hint(name: str) -> str:
    """Where backend ``name`` comes from; an install command only for this project's own."""
    if name not in DISTRIBUTION:
        ours = ", ".join(sorted(DISTRIBUTION))
        return (
            f"it is not one of tlsc's own backends ({ours}): "
            "install a third-party backend as its own documentation says"
        )
    dist, path = DISTRIBUTION[name]
    if path is None:
        return (
            f"the {name} backend ships with tlsc itself (module tlsc_{name}): reinstall tlsc"
        )
    return (
        f"the {name} backend is the distribution {dist}, in {path}/ of tlsc's source tree "
        f"(from there: pip install ./{path})"
    )


def _missing_message(name: str, installed: dict[str, Candidate]) -> str:
    have = ", ".join(sorted(installed)) or "none"
    return f"backend {name!r} is not installed (installed: {have}); {install_hint(name)}"


def select(requested: str | None) -> Candidate:
    """The backend to use: the one named, else the highest-priority installed one."""
    installed = available()
    if requested:
        cand = installed.get(requested)
        if cand is None:
            raise BackendNotFound(_missing_message(requested, installed))
        return cand
    if not installed:
        raise BackendNotFound("no TLS backend is installed; " + install_hint("openssl"))
    return max(installed.values(), key=lambda c: (c.priority, c.name))


def load(candidate: Candidate) -> Backend:
    """Import the selected backend and return its backend object."""
    try:
        obj = candidate.entry_point.load()
    except ImportError as e:
        raise BackendNotFound(
            f"backend {candidate.name!r} is registered but cannot be imported ({e}); "
            + install_hint(candidate.name)
        ) from None
    return obj() if isinstance(obj, type) else obj


def _import_known(name: str) -> Backend | None:
    """Our own backend ``name`` by module, or None when it is not installed."""
    module = MODULE[name]
    try:
        __import__(module)  # importlib.import_module, without importing importlib
        mod = sys.modules[module]
    except ModuleNotFoundError as e:
        if e.name == module:
            return None
        raise BackendNotFound(
            f"backend {name!r} cannot be imported ({e}); " + install_hint(name)
        ) from None
    except ImportError as e:
        raise BackendNotFound(
            f"backend {name!r} cannot be imported ({e}); " + install_hint(name)
        ) from None
    return mod.backend


def resolve(requested: str | None) -> Backend:
    """The backend object to use, importing only that one (see the module docstring)."""
    if requested in MODULE:
        found = _import_known(requested)
        if found is not None:
            return found
    elif requested is None:
        for name in sorted(MODULE, key=lambda n: -PRIORITY[n]):
            found = _import_known(name)
            if found is not None:
                return found
    return load(select(requested))
