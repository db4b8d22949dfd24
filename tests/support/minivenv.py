"""A fresh virtual environment holding only some distributions, without a package index.

:func:`make_venv` creates a venv (no pip) and "installs" the distributions
named, and everything they require, by linking the files each one's RECORD
lists (package directories, modules, its .dist-info, an editable install's
.pth and finder) from this interpreter's site-packages into the new one.  The
result imports exactly what ``pip install`` of those distributions would make
importable, and nothing else (no cryptography unless something requires it),
in a few milliseconds rather than the minute a resolver and two wheel builds
take on a loaded machine.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from collections.abc import Iterable
from importlib.metadata import Distribution, distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


def _installed(name: str) -> Distribution:
    """The distribution ``name`` installed in this interpreter's site-packages.

    Only there: a source tree on sys.path (the working directory, with its
    ``tlsc.egg-info``) is not an installation.
    """
    here = sysconfig.get_paths()["purelib"]
    for dist in distributions(name=name, path=[here]):
        return dist
    raise AssertionError(f"{name} is not installed in {here}")


def closure(names: Iterable[str]) -> set[str]:
    """``names`` and every distribution they require (no extras), canonical names."""
    todo = [canonicalize_name(n) for n in names]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for text in _installed(name).requires or ():
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(req.name))
    return seen


def _site_packages(venv: Path) -> Path:
    py = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return venv / "lib" / py / "site-packages"


def make_venv(venv: Path, names: Iterable[str]) -> Path:
    """A venv at ``venv`` with the distributions ``names`` (and their requirements) only.

    Returns its python.
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = _site_packages(venv)
    here = Path(sysconfig.get_paths()["purelib"])
    for name in sorted(closure(names)):
        dist = _installed(name)
        tops = {f.parts[0] for f in dist.files or () if f.parts[0] not in ("..", "__pycache__")}
        for top in sorted(tops):
            source = Path(dist.locate_file(top))
            if source.exists() and source.parent == here:
                target = site / top
                if not target.exists():
                    target.symlink_to(source)
    return venv / "bin" / "python"
