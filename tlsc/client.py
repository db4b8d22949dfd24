"""The client role's configuration from the environment: tlsc, tlsclient, ucspitlsc.

Step 1 of the lifecycle for the client role: the usage checks (100 before
anything is printed), the trust anchors (or none, under --no-verify-cert), the
client certificate under -y, TLS_UID/TLS_GID; the backend's client context.
The rest is :mod:`tlsc.lifecycle`'s.
"""

from __future__ import annotations

import os

from . import config
from .lifecycle import (
    Options,
    Prepared,
    Usage,
    backend_name,
    check_fds,
    load_backend,
    new_context,
    run_connection,
)
from .log import Log
from .session import ClientConfig


def check_usage(opts: Options, log: Log, *, fds: bool = True) -> Usage:
    """Every usage error (100) of the client role, found before anything is printed.

    In the order of the lifecycle's first step: the command line (the backend it
    means: an unknown name is a usage error, and resolving it imports it, once,
    for the rest of the run), the network descriptors (111; ``fds=False`` for
    a caller that has none yet, tlsclient before it connects), the variables.
    Nothing here prints: the warnings come after, from :func:`prepare`.
    """
    env = os.environ
    backend = load_backend(backend_name(opts), log)
    if fds:
        check_fds(opts)
    if opts.verify:
        config.require_anchors(env)
    if opts.client_cert:
        config.require_credentials(env)
    return Usage(backend, config.read_identity(env))


def prepare(opts: Options, log: Log, usage: Usage | None = None) -> Prepared:
    """Step 1 of the lifecycle for the client role: everything read before any fork.

    ``usage``: what :func:`check_usage` found, when the caller ran it already
    (tlsclient does, before it connects).
    """
    env = os.environ
    if usage is None:
        usage = check_usage(opts, log)
    else:
        check_fds(opts)

    if opts.verify:
        anchors = config.read_anchors(env, log)
    else:
        anchors = []
        log.always_warn("--no-verify-cert: the server certificate is NOT verified")
    chain: list[bytes] = []
    key: bytes | None = None
    if opts.client_cert:
        chain, key = config.read_client_credentials(env)
    if opts.verify and not opts.servername:
        log.warn("no -k servername: no SNI is sent and the server name is not checked")

    backend = usage.backend
    cfg = ClientConfig(
        anchors=anchors,
        verify=opts.verify,
        server_name=opts.servername,
        cert_chain=chain,
        private_key=key,
    )
    context = new_context(backend.client_context, cfg, log)
    del key, cfg
    return Prepared(backend, context, usage.ident, peer="server")


def run(opts: Options, log: Log) -> int:
    """tlsc: the whole lifecycle on the connection at ``opts.read_fd``/``opts.write_fd``."""
    return run_connection(prepare(opts, log), opts, log)
