"""The server role's configuration (docs/tlsd.rst): tlsd, tlsserver, ucspitlsd.

What the server role reads from its environment, and the server contexts
built from it:

* ``KEYFILE``/``CERTFILE``: the certificate presented (required unless -k 2);
* with -k 1 or more, every ``KEYFILE:name``/``CERTFILE:name`` pair: the
  certificate presented to a client whose SNI is ``name``;
* with -Y/-y, ``CADIR``/``CAFILE``: the anchors client certificates are
  verified against.

:func:`check_usage` finds every usage error first (100, before anything is
printed); :func:`prepare` (step 1 of the lifecycle) reads the files, as the
user we started as, and has the backend build one server context per
certificate (:func:`build_contexts`).  At -k 0 every connection's session
comes from the one context; at -k 1/2, :meth:`ServerContexts.choose` makes it
from the context the client's SNI names (:mod:`tlsc.clienthello`).  tlsd and
ucspitlsd run step 1 once per connection, tlsserver once at start and again
on SIGHUP.  The connection on fds 0 (read) and 1 (write); prog's cleartext
pipes take the same numbers in the child.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from . import config, exitcodes, registry
from .exitcodes import Fatal
from .handshake import UnrecognizedName
from .lifecycle import (
    Options,
    Prepared,
    Usage,
    backend_name,
    check_fds,
    load_backend,
    new_context,
    run_connection,
    session_of,
)
from .log import Log
from .session import ServerConfig

#: ``typing.TYPE_CHECKING`` without importing ``typing`` (see :mod:`tlsc.session`).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from .clienthello import ClientHello
    from .session import Backend, ServerContext, Session

    #: A certificate chain (DER each, leaf first) and a key file's content.
    Pair = tuple[list[bytes], bytes]

NET_READ_FD = 0
NET_WRITE_FD = 1

_CREDENTIALS_WHY = "tlsd needs them in the environment"


def _anchors_hint(opts: Options) -> str:
    flag = "-y" if opts.request_client_cert == "required" else "-Y"
    return f" ({flag} verifies client certificates with them)"


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


def _names(opts: Options, env: Mapping[str, str]) -> list[str]:
    """The named pairs -k uses (100 for a half pair, a bad name, or none at -k 2)."""
    if opts.sni_level < 1:
        return []
    names = config.named_credentials(env)
    if not names and opts.sni_level >= 2:
        raise Fatal(
            exitcodes.USAGE,
            "no KEYFILE:name/CERTFILE:name pair: -k 2 serves only named certificates",
        )
    return names


def check_usage(opts: Options, log: Log) -> Usage:
    """Every usage error (100) of the server role, found before anything is printed.

    The same order as :func:`tlsc.client.check_usage`.
    """
    env = os.environ
    backend = load_server_backend(backend_name(opts), log)
    check_fds(opts)
    if opts.sni_level < 2:
        config.require_credentials(env, _CREDENTIALS_WHY)
    _names(opts, env)
    if opts.request_client_cert != "none":
        config.require_anchors(env, _anchors_hint(opts))
    return Usage(backend, config.read_identity(env))


class ServerFiles:
    """What the server role read from its environment, before any backend parses it."""

    __slots__ = ("anchors", "default", "named")

    def __init__(
        self,
        default: Pair | None,
        named: dict[str, Pair],
        anchors: list[tuple[str, bytes]],
    ) -> None:
        self.default = default  #: KEYFILE/CERTFILE; None at -k 2
        self.named = named  #: by lower-case name
        self.anchors = anchors  #: with -Y/-y


def read_server_files(opts: Options, log: Log) -> ServerFiles:
    """KEYFILE/CERTFILE, the named pairs, the client-certificate anchors (96)."""
    env = os.environ
    default = None
    if opts.sni_level < 2:
        default = config.read_client_credentials(env, _CREDENTIALS_WHY)
    named = {
        name.lower(): config.read_client_credentials(env, _CREDENTIALS_WHY, ":" + name)
        for name in _names(opts, env)
    }
    anchors: list[tuple[str, bytes]] = []
    if opts.request_client_cert != "none":
        anchors = config.read_anchors(env, log, _anchors_hint(opts))
    return ServerFiles(default, named, anchors)


class ServerContexts:
    """One server context per certificate (KEYFILE/CERTFILE, then each named pair)."""

    __slots__ = ("default", "named")

    def __init__(self, default: ServerContext | None, named: dict[str, ServerContext]) -> None:
        self.default = default
        self.named = named

    def check(self) -> None:
        """Make one session of every context now: an engine failure is 97 at start."""
        for context in (self.default, *self.named.values()):
            if context is not None:
                session_of(context)

    def choose(self, hello: ClientHello) -> Session:
        """The context named by the client's SNI; else the default one (-k 1) or none (-k 2)."""
        name = hello.server_name
        context = self.named.get(name) if name is not None else None
        if context is None:
            context = self.default
        if context is None:
            if hello.problem is not None:
                # Not a ClientHello we can read: any context's parser says why.
                context = next(iter(self.named.values()))
            elif name is None:
                raise UnrecognizedName("no SNI sent")
            else:
                raise UnrecognizedName(f"no certificate for {name!r}")
        return session_of(context)


def build_contexts(backend: Backend, files: ServerFiles, opts: Options, log: Log) -> ServerContexts:
    """The backend's server contexts for ``files`` (96 / 97)."""

    def make(pair: Pair) -> ServerContext:
        chain, key = pair
        cfg = ServerConfig(
            cert_chain=chain,
            private_key=key,
            verify_client=opts.request_client_cert != "none",
            anchors=files.anchors,
            client_cert_optional=opts.request_client_cert == "optional",
        )
        return new_context(backend.server_context, cfg, log)

    default = make(files.default) if files.default is not None else None
    named = {name: make(pair) for name, pair in files.named.items()}
    return ServerContexts(default, named)


def prepare(opts: Options, log: Log, usage: Usage | None = None, check: bool = False) -> Prepared:
    """Step 1 of the lifecycle for the server role: everything read before any fork.

    ``check``: make a session of every context now (tlsserver: a backend that
    cannot is 97 at start, not in every connection).
    """
    if usage is None:
        usage = check_usage(opts, log)
    else:
        check_fds(opts)
    contexts = build_contexts(usage.backend, read_server_files(opts, log), opts, log)
    if check:
        contexts.check()
    choose = contexts.choose if opts.sni_level else None
    return Prepared(usage.backend, contexts.default, usage.ident, peer="client", choose=choose)


def run(opts: Options, log: Log) -> int:
    """tlsd: the whole lifecycle; ``opts.read_fd``/``opts.write_fd`` are 0 and 1."""
    return run_connection(prepare(opts, log), opts, log)
