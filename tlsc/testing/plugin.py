"""The ``tlsc`` pytest plugin (entry point ``pytest11: tlsc``).

Registered for every pytest run in an environment where tlsc is installed, so
it must cost nothing unless used: it imports only pytest and the registry
(packaging metadata), never a backend or a crypto library, at start-up.

* ``--tlsc-backend NAME`` (repeatable): restrict ``tlsc_backend`` to these backends.
* ``tlsc_backend``: a fixture parametrized over installed backends, yielding the
  backend object (imported on first use).
* :func:`require`: skip a test *only* because the backend declares it lacks a
  capability; a test cannot be excused for any other reason.
"""

from __future__ import annotations

from typing import Any

import pytest

__all__ = ["require"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tlsc", "tlsc backend conformance")
    group.addoption(
        "--tlsc-backend",
        action="append",
        default=[],
        metavar="NAME",
        help="run tlsc_backend tests for this backend only (repeatable; default: all installed)",
    )


def selected_backends(config: pytest.Config) -> list[str]:
    """The backends tlsc_backend runs over: --tlsc-backend, else every installed one."""
    from tlsc.registry import available

    asked: list[str] = config.getoption("--tlsc-backend") or []
    installed = sorted(available())
    if not asked:
        return installed
    missing = [n for n in asked if n not in installed]
    if missing:
        raise pytest.UsageError(
            f"--tlsc-backend {', '.join(missing)}: not installed (installed: {installed})"
        )
    return asked


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "tlsc_backend_name" not in metafunc.fixturenames:
        return
    names = selected_backends(metafunc.config)
    metafunc.parametrize(
        "tlsc_backend_name",
        names,
        scope="session",
    )


@pytest.fixture(scope="session")
def tlsc_backend_name(request: pytest.FixtureRequest) -> str:
    """The backend's name (parametrized by :func:`pytest_generate_tests`)."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def tlsc_backend(tlsc_backend_name: str) -> Any:
    """The backend object for ``tlsc_backend_name``, imported on first use."""
    from tlsc.testing.harness import get_backend

    try:
        return get_backend(tlsc_backend_name)
    except KeyError:
        pytest.fail(f"backend {tlsc_backend_name!r} is not installed")


def require(backend: Any, **needs: object) -> None:
    """Skip unless ``backend`` declares the capabilities in ``needs``.

    ``require(b, tls_versions="TLSv1.3")``, ``require(b, client_certificates=True)``.
    The excuse comes from ``backend.info().capabilities`` and nowhere else:
    a backend that claims a capability must pass the test.
    """
    from tlsc.testing.harness import excuse

    why = excuse(backend.info().capabilities, needs)
    if why is not None:
        pytest.skip(f"{backend.name}: {why}")
