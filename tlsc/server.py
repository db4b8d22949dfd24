"""The tlsd lifecycle (spec section 6): tlsc's, with the server role.

The client connection is on fds 0 (read) and 1 (write); prog's cleartext
pipes take the same numbers in the child, so prog reads and writes its
stdin/stdout and never sees the network.  Configuration differs from tlsc's
(KEYFILE/CERTFILE always, CADIR/CAFILE only with -y), the rest is
:func:`tlsc.client.run_connection`: fork, drop privileges, handshake, SSL_*
variables describing the *client*, relay.
"""

from __future__ import annotations

import os

from . import config, exitcodes, registry
from .client import (
    Options,
    Prepared,
    Usage,
    backend_name,
    check_fds,
    load_backend,
    new_context,
    run_connection,
)
from .exitcodes import Fatal
from .log import Log
from .session import ServerConfig

#: ``typing.TYPE_CHECKING`` without importing ``typing`` (see :mod:`tlsc.session`).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from .session import Backend

NET_READ_FD = 0
NET_WRITE_FD = 1


def _has_server_role(backend: Backend) -> bool:
    return bool(backend.info().capabilities.server) and hasattr(backend, "server_context")


def load_server_backend(name: str | None, log: Log) -> Backend:
    """The backend named, which must have the server role; else the best one that has it."""
    backend = load_backend(name, log)
    if _has_server_role(backend):
        return backend
    if name:
        raise Fatal(
            exitcodes.USAGE,
            f"unable to select a backend: backend {name!r} has no server role (tlsd)",
        )
    ranked = sorted(registry.available().values(), key=lambda c: (c.priority, c.name))
    for candidate in reversed(ranked):
        try:
            other = registry.load(candidate)
        except registry.BackendNotFound:
            continue
        if _has_server_role(other):
            log.debug(f"backend: {candidate.name} (the first with the server role)")
            return other
    raise Fatal(
        exitcodes.USAGE, "unable to select a backend: no installed backend has the server role"
    )


_CREDENTIALS_WHY = "tlsd needs them in the environment"
_ANCHORS_HINT = " (-y verifies client certificates with them)"


def check_usage(opts: Options, log: Log) -> Usage:
    """Every usage error (100) of the server role, found before anything is printed.

    The same order as :func:`tlsc.client.check_usage`.
    """
    env = os.environ
    backend = load_server_backend(backend_name(opts), log)
    check_fds(opts)
    config.require_credentials(env, _CREDENTIALS_WHY)
    if opts.client_cert:
        config.require_anchors(env, _ANCHORS_HINT)
    return Usage(backend, config.read_identity(env))


def prepare(opts: Options, log: Log, usage: Usage | None = None) -> Prepared:
    """Step 1 of the lifecycle for the server role; ``opts.client_cert`` is -y."""
    env = os.environ
    if usage is None:
        usage = check_usage(opts, log)
    else:
        check_fds(opts)

    chain, key = config.read_client_credentials(env, _CREDENTIALS_WHY)
    anchors: list[tuple[str, bytes]] = []
    if opts.client_cert:
        anchors = config.read_anchors(env, log, _ANCHORS_HINT)

    backend = usage.backend
    cfg = ServerConfig(
        cert_chain=chain, private_key=key, verify_client=opts.client_cert, anchors=anchors
    )
    context = new_context(backend.server_context, cfg, log)
    del key, cfg
    return Prepared(backend, context, usage.ident, peer="client")


def run(opts: Options, log: Log) -> int:
    """tlsd: the whole lifecycle; ``opts.read_fd``/``opts.write_fd`` are 0 and 1."""
    return run_connection(prepare(opts, log), opts, log)
