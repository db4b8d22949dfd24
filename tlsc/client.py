"""The tlsc lifecycle (spec section 3), from checked options to prog's exit code."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from . import config, exitcodes, registry
from .child import spawn
from .der import DERError, peer_cert_hash, subject_rfc4514
from .engine import Engine, Interrupted, Settings
from .exitcodes import Fatal
from .log import Log
from .names import is_dns_name, is_ip_address
from .reasons import Reason
from .session import ClientConfig, ConfigError, EngineError, Facts

#: ``typing.TYPE_CHECKING`` without importing ``typing`` (see :mod:`tlsc.session`).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TypeVar

    from .child import Prog
    from .session import Backend, ClientContext, ServerContext, Session

    T = TypeVar("T")


class Options:
    """A command line, checked: what :func:`run` and :func:`run_connection` follow.

    Options, :class:`Prepared` and the other records on the way to the
    handshake are plain classes, not dataclasses, for the reason given in
    :mod:`tlsc.session`.
    """

    __slots__ = (
        "backend",
        "client_cert",
        "close_notify_on_eof",
        "enforce_close_notify",
        "handshake_timeout_ms",
        "keep_env",
        "prog",
        "read_fd",
        "servername",
        "verbosity",
        "verify",
        "write_fd",
    )

    def __init__(
        self,
        prog: Sequence[str],
        backend: str | None = None,
        close_notify_on_eof: bool = False,  # -S
        enforce_close_notify: bool = False,  # -J
        client_cert: bool = False,  # -y
        keep_env: bool = False,  # -Z
        verbosity: int = 1,
        handshake_timeout_ms: int = 0,
        servername: str | None = None,
        read_fd: int = 6,
        write_fd: int = 7,
        verify: bool = True,
    ) -> None:
        self.prog = prog
        self.backend = backend
        self.close_notify_on_eof = close_notify_on_eof
        self.enforce_close_notify = enforce_close_notify
        self.client_cert = client_cert
        self.keep_env = keep_env
        self.verbosity = verbosity
        self.handshake_timeout_ms = handshake_timeout_ms
        self.servername = servername
        self.read_fd = read_fd
        self.write_fd = write_fd
        self.verify = verify


def build_options(
    prog: Sequence[str],
    *,
    backend: str | None,
    close_notify: bool,
    enforce: bool,
    no_client_cert: bool,
    keep_env: bool,
    verbosity: int,
    kimeout: int,
    **rest: object,
) -> Options:
    """:class:`Options` from the :data:`tlsc.cli.COMMON` options plus command-specific ones."""
    return Options(
        prog=prog,
        backend=backend,
        close_notify_on_eof=close_notify,
        enforce_close_notify=enforce,
        client_cert=not no_client_cert,
        keep_env=keep_env,
        verbosity=verbosity,
        handshake_timeout_ms=kimeout,
        **rest,  # type: ignore[arg-type]
    )


def check_fd(fd: int, what: str) -> None:
    try:
        os.fstat(fd)
    except OSError:
        raise Fatal(exitcodes.SYSTEM, f"unable to use {what} {fd}: not open") from None


def load_backend(name: str | None, log: Log):  # noqa: ANN201 - a Backend
    try:
        backend = registry.resolve(name)
    except registry.BackendNotFound as e:
        raise Fatal(exitcodes.USAGE, f"unable to select a backend: {e}") from None
    log.debug(f"backend: {backend.name}")
    return backend


#: The variables describing the connection (spec section 3.4), in this order.
SSL_VARIABLES = (
    "SSL_PROTOCOL",
    "SSL_CIPHER",
    "SSL_TLS_SNI_SERVERNAME",
    "SSL_PEER_CERT_HASH",
    "SSL_PEER_CERT_SUBJECT",
)


def ssl_variables(facts: Facts) -> dict[str, str | None]:
    """The SSL_* variables of spec section 3.4; None means "remove it"."""
    cert = facts.peer_certificate
    subject: str | None = None
    if cert is not None:
        try:
            subject = subject_rfc4514(cert)
        except DERError as e:
            raise Fatal(exitcodes.TLS, f"peer certificate: {e}") from None
    if facts.server_name is not None and not is_dns_name(facts.server_name):
        # Only a server can receive one; every backend must refuse it the same way.
        raise Fatal(exitcodes.TLS, f"handshake failed: {Reason.INVALID_SNI.words('client')}")
    return {
        "SSL_PROTOCOL": facts.protocol,
        "SSL_CIPHER": facts.cipher,
        "SSL_TLS_SNI_SERVERNAME": facts.server_name,
        "SSL_PEER_CERT_HASH": peer_cert_hash(cert) if cert is not None else None,
        "SSL_PEER_CERT_SUBJECT": subject,
    }


def _with_exit_codes(make: Callable[..., T], *args: object) -> T:
    """``make(*args)``, a backend's call, with the exit codes of spec section 4."""
    try:
        return make(*args)
    except ConfigError as e:
        raise Fatal(exitcodes.CONFIG, f"unable to load the TLS configuration: {e}") from None
    except EngineError as e:
        raise Fatal(exitcodes.ENGINE, f"unable to set up the TLS engine: {e}") from None


def new_context(make_context, cfg, log: Log) -> ClientContext | ServerContext:  # noqa: ANN001
    """``make_context(cfg, warn)``: the backend's context for either role."""
    return _with_exit_codes(make_context, cfg, log.warn)


class Prepared:
    """What step 1 of the lifecycle leaves for the connection (tlsc, tlsd, ucspitls*).

    Built before any fork, as the user the command was started as: the backend,
    its context (files read, keys parsed), the identity to drop to.  The
    session itself is made by :func:`run_connection`, at the last moment.
    """

    __slots__ = ("backend", "context", "ident", "peer")

    def __init__(
        self,
        backend: Backend,
        context: ClientContext | ServerContext,
        ident: config.Identity,
        peer: str,
    ) -> None:
        self.backend = backend
        self.context = context
        self.ident = ident
        #: Who is at the other end: "server" (tlsc) or "client" (tlsd).  The core, not
        #: the backend, words the role-dependent reasons (``the server sent a fatal alert``).
        self.peer = peer

    def session(self) -> Session:
        return _with_exit_codes(self.context.session)


class Usage:
    """What the usage checks found: the backend meant (imported once) and the identity."""

    __slots__ = ("backend", "ident")

    def __init__(self, backend: Backend, ident: config.Identity) -> None:
        self.backend = backend
        self.ident = ident


def backend_name(opts: Options) -> str | None:
    """--backend, else TLSC_BACKEND, else None (the best installed one)."""
    return opts.backend or os.environ.get("TLSC_BACKEND") or None


def check_fds(opts: Options) -> None:
    """The network descriptors must be open (111)."""
    check_fd(opts.read_fd, "network read fd")
    check_fd(opts.write_fd, "network write fd")


def check_usage(opts: Options, log: Log, *, fds: bool = True) -> Usage:
    """Every usage error (100) of the client role, found before anything is printed.

    In the order of spec section 3, step 1: the command line (the backend it
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


def run_connection(
    prepared: Prepared, opts: Options, log: Log, prog: Prog | None = None
) -> int:
    """Steps 2 to 6 of the lifecycle, the same for every command (spec sections 3, 6).

    Fork the waiting child with its pipes on ``opts.read_fd``/``opts.write_fd``
    (the network's numbers: 6/7 for tlsc, 0/1 for tlsd), drop privileges, run the
    handshake, give prog the SSL_* variables describing the peer, relay.

    ``prog``: a prog that is already running (ucspitlsc/ucspitlsd, which call
    this once prog has asked for TLS).  Its :meth:`Prog.start` receives the
    environment prog would have been executed with; the exit code is its
    :meth:`Prog.wait`'s.
    """
    env = os.environ
    session = prepared.session()
    child = prog if prog is not None else spawn(opts.prog, opts.read_fd, opts.write_fd)
    settings = Settings(
        close_notify_on_eof=opts.close_notify_on_eof,
        enforce_close_notify=opts.enforce_close_notify,
        handshake_timeout_ms=opts.handshake_timeout_ms,
    )
    try:
        config.drop_privileges(prepared.ident)
        engine = Engine(session, opts.read_fd, opts.write_fd, child, settings, log, prepared.peer)
        engine.handshake()
        facts = session.facts()
        ssl_vars = ssl_variables(facts)
        prog_env = config.prog_environment(env, opts.keep_env, ssl_vars)
    except Interrupted as e:
        child.kill(e.signum)
        child.abandon()
        return 128 + e.signum
    except BaseException:
        child.abandon()
        raise
    peer = ssl_vars["SSL_PEER_CERT_SUBJECT"] or "no certificate"
    sni = f", SNI {facts.server_name}" if facts.server_name else ""
    log.info(f"{facts.protocol} {facts.cipher}, peer {peer}{sni}")
    if opts.servername and is_ip_address(opts.servername):
        log.debug(f"{opts.servername} is an IP address: checked against IP SANs, no SNI")
    child.start(opts.prog, prog_env)
    caps = prepared.backend.info().capabilities
    return engine.relay(caps.write_after_close_notify, facts.protocol == "TLSv1.3")
