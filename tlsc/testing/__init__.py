"""tlsc's backend conformance harness: what proves that every backend behaves the same.

Ships in the core wheel so that a third-party backend can prove itself with the
very battery the bundled backends pass.  Nothing here is imported by ``tlsc``
itself, and the submodules import ``cryptography``/``pyOpenSSL``/``pytest``
only when used: a production install never pays for them.

* :mod:`.certs`     -- the certificate factory of every test (keys generated once per process);
* :mod:`.pki`       -- a whole test PKI written to files, for end-to-end tests;
* :mod:`.pathcases` -- the path-validation battery: cases with expected verdicts;
* :mod:`.memory`    -- handshake checks against an in-memory pyOpenSSL server;
* :mod:`.live`      -- handshake checks over real sockets against real servers;
* :mod:`.duplex`    -- no byte lost: real tlsc/tlsd, data both ways, one side ending first;
* :mod:`.harness`   -- runs batteries over backends and builds the result matrix;
* :mod:`.suite`     -- :class:`BackendConformance`, the pytest base class;
* :mod:`.plugin`    -- the pytest plugin (``tlsc_backend`` fixture, ``--tlsc-backend``).

What the kit needs beyond the core comes with the core's ``testing`` extra
(from the source tree, ``pip install '.[testing]'``: cryptography, pyOpenSSL, pytest).  Without it,
``tlsc-conformance`` says so in one line (:func:`missing`, :data:`HINT`) and the
kit's modules refuse to import with the same words, never a bare
``ModuleNotFoundError`` from deep inside.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

__all__ = ["HINT", "MissingTestKitRequirement", "missing", "require"]

#: (import name, distribution) of what the kit imports beyond the core.
REQUIREMENTS = (("cryptography", "cryptography"), ("OpenSSL", "pyOpenSSL"))
#: What :mod:`.suite` needs besides (pytest loads :mod:`.plugin` itself).
PYTEST = (("pytest", "pytest"),)
#: How to get them.
HINT = "the core's testing extra: from the source tree, pip install '.[testing]'"


class MissingTestKitRequirement(ImportError):
    """The test kit was used without the ``testing`` extra."""


def missing(extra: Sequence[tuple[str, str]] = ()) -> list[str]:
    """The distributions of :data:`REQUIREMENTS` (and ``extra``) that cannot be imported.

    Nothing is imported to find out.
    """
    wanted = (*REQUIREMENTS, *extra)
    return [dist for module, dist in wanted if importlib.util.find_spec(module) is None]


def why_missing(names: list[str]) -> str:
    """``the test kit needs X and Y: <HINT>``."""
    return f"the test kit needs {' and '.join(names)}: {HINT}"


def require(extra: Sequence[tuple[str, str]] = ()) -> None:
    """Raise :class:`MissingTestKitRequirement` (saying how to fix it) if anything is missing."""
    names = missing(extra)
    if names:
        raise MissingTestKitRequirement(why_missing(names))
