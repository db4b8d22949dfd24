"""The connection lifecycle (docs/tlsc.rst, "Description"), one for every command.

tlsc and tlsclient (client role), tlsd and tlsserver (server role), ucspitlsc
and ucspitlsd (STARTTLS) differ in how they read their configuration and
where the connection comes from; what happens to a connection is the same for
all of them, and lives here only:

1. Step 1, configuration: each role's ``prepare`` (:func:`tlsc.client.prepare`,
   :func:`tlsc.server.prepare`) checks the usage, reads the files, loads the
   backend and builds its context(s), and returns a :class:`Prepared`.
   Nothing is forked yet.
2. Step 2, :func:`begin`: make the session, fork the child that will become
   prog (it holds prog's ends of the cleartext pipes on the network's
   descriptor numbers and waits), drop privileges (TLS_UID/TLS_GID).  Not a
   byte has been read from or written to the network yet.
3. Steps 3 to 6, :meth:`Connection.serve`: the handshake under the -K
   deadline (a server whose certificate depends on the client's SNI first
   reads the ClientHello, :mod:`tlsc.clienthello`), prog's environment with
   the SSL_* variables describing the peer, prog executed, the relay, and
   prog's exit code (or :class:`~tlsc.exitcodes.Fatal`).

:func:`run_connection` is steps 2 to 6 back to back (tlsc, tlsd, ucspitls*).
tlsserver runs step 1 once in the server, and steps 2 and 3-6 in a forked
worker on either side of being handed a connection: the forks are done
before the client connects.

Options, :class:`Prepared` and the other records on the way to the
handshake are plain classes, not dataclasses, for the reason given in
:mod:`tlsc.session`.
"""

from __future__ import annotations

import os

from . import config, exitcodes, registry
from .child import spawn
from .der import DERError, peer_cert_hash, subject_rfc4514
from .engine import Engine, Settings
from .exitcodes import Fatal
from .handshake import Interrupted, handshake
from .log import Log
from .names import is_dns_name, is_ip_address
from .reasons import Reason
from .session import ConfigError, EngineError, Facts

#: ``typing.TYPE_CHECKING`` without importing ``typing`` (see :mod:`tlsc.session`).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import TypeVar

    from .child import Prog, ProgIds
    from .handshake import Chooser
    from .session import Backend, ClientContext, ServerContext, Session

    T = TypeVar("T")


class Options:
    """A command line, checked: what the lifecycle follows; each command fills its role's part."""

    __slots__ = (
        "backend",
        "client_cert",
        "close_notify_on_eof",
        "enforce_close_notify",
        "handshake_timeout_ms",
        "keep_env",
        "prog",
        "read_fd",
        "request_client_cert",
        "servername",
        "sni_level",
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
        client_cert: bool = False,  # tlsc -y: send CERTFILE with KEYFILE
        keep_env: bool = False,  # -Z
        verbosity: int = 1,
        handshake_timeout_ms: int = 0,
        servername: str | None = None,  # tlsc -k
        read_fd: int = 6,
        write_fd: int = 7,
        verify: bool = True,  # not --no-verify-cert
        request_client_cert: str = "none",  # tlsd: "none", -Y "optional", -y "required"
        sni_level: int = 0,  # tlsd -k
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
        self.request_client_cert = request_client_cert
        self.sni_level = sni_level


def build_options(
    prog: Sequence[str],
    *,
    backend: str | None,
    close_notify: bool,
    enforce: bool,
    keep_env: bool,
    verbosity: int,
    kimeout: int,
    no_client_cert: bool | None = None,
    **rest: object,
) -> Options:
    """:class:`Options` from the :data:`tlsc.cli.COMMON` options plus command-specific ones.

    ``no_client_cert`` is tlsc's -Y/-y (click's parameter name); the server
    role passes ``request_client_cert`` and ``sni_level`` in ``rest``.
    """
    if no_client_cert is not None:
        rest["client_cert"] = not no_client_cert
    return Options(
        prog=prog,
        backend=backend,
        close_notify_on_eof=close_notify,
        enforce_close_notify=enforce,
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


#: The variables describing the connection (docs/tlsc.rst, "Environment of prog"),
#: in this order.
SSL_VARIABLES = (
    "SSL_PROTOCOL",
    "SSL_CIPHER",
    "SSL_TLS_SNI_SERVERNAME",
    "SSL_PEER_CERT_HASH",
    "SSL_PEER_CERT_SUBJECT",
)


def ssl_variables(facts: Facts) -> dict[str, str | None]:
    """The SSL_* variables of prog's environment; None means "remove it"."""
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
    """``make(*args)``, a backend's call, its errors turned into exit codes 96 and 97."""
    try:
        return make(*args)
    except ConfigError as e:
        raise Fatal(exitcodes.CONFIG, f"unable to load the TLS configuration: {e}") from None
    except EngineError as e:
        raise Fatal(exitcodes.ENGINE, f"unable to set up the TLS engine: {e}") from None


def new_context(make_context, cfg, log: Log) -> ClientContext | ServerContext:  # noqa: ANN001
    """``make_context(cfg, warn)``: the backend's context for either role."""
    return _with_exit_codes(make_context, cfg, log.warn)


def session_of(context: ClientContext | ServerContext) -> Session:
    """``context.session()``, its errors turned into exit codes 96 and 97."""
    return _with_exit_codes(context.session)


class Prepared:
    """What step 1 of the lifecycle leaves for the connection (every command).

    Built before any fork, as the user the command was started as: the backend,
    its context (files read, keys parsed), the identity to drop to.  The
    session itself is made by :func:`begin`, at the last moment.
    """

    __slots__ = ("backend", "choose", "context", "ident", "peer")

    def __init__(
        self,
        backend: Backend,
        context: ClientContext | ServerContext | None,
        ident: config.Identity,
        peer: str,
        choose: Chooser | None = None,
    ) -> None:
        self.backend = backend
        #: The context sessions come from; None when ``choose`` always decides (tlsd -k 2).
        self.context = context
        self.ident = ident
        #: Who is at the other end: "server" (tlsc) or "client" (tlsd).  The core, not
        #: the backend, words the role-dependent reasons (``the server sent a fatal alert``).
        self.peer = peer
        #: tlsd -k 1/2: the session is chosen by the client's SNI (see tlsc.clienthello).
        self.choose = choose

    def session(self) -> Session | None:
        """The connection's session, or None when ``choose`` makes it from the ClientHello."""
        if self.choose is not None or self.context is None:
            return None
        return session_of(self.context)


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


class Connection:
    """Step 2 done: the session made, prog's child waiting, privileges dropped."""

    __slots__ = ("child", "opts", "prepared", "session")

    def __init__(
        self, prepared: Prepared, opts: Options, session: Session | None, child: Prog
    ) -> None:
        self.prepared = prepared
        self.opts = opts
        self.session = session
        self.child = child

    def abandon(self) -> None:
        """No connection after all: the child exits without executing prog."""
        self.child.abandon()

    def serve(self, log: Log, env: Mapping[str, str] | None = None) -> int:
        """Steps 3 to 6 on ``opts.read_fd``/``opts.write_fd``; the command's exit code.

        ``env``: prog's environment before the TLS variables are removed and
        the SSL_* ones set (default: ours).
        """
        opts, child, prepared = self.opts, self.child, self.prepared
        settings = Settings(
            close_notify_on_eof=opts.close_notify_on_eof,
            enforce_close_notify=opts.enforce_close_notify,
            handshake_timeout_ms=opts.handshake_timeout_ms,
        )
        try:
            session = handshake(
                self.session,
                prepared.choose,
                opts.read_fd,
                opts.write_fd,
                child,
                settings.handshake_timeout_ms,
                log,
                prepared.peer,
            )
            facts = session.facts()
            ssl_vars = ssl_variables(facts)
            prog_env = config.prog_environment(
                os.environ if env is None else env, opts.keep_env, ssl_vars
            )
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
        engine = Engine(session, opts.read_fd, opts.write_fd, child, settings, log, prepared.peer)
        return engine.relay(caps.write_after_close_notify, facts.protocol == "TLSv1.3")


def begin(
    prepared: Prepared,
    opts: Options,
    prog: Prog | None = None,
    prog_ids: ProgIds | None = None,
) -> Connection:
    """Step 2: the session, prog's waiting child (unless ``prog`` runs already), the drop.

    The child is forked by the privileged process, so prog keeps the
    privileges we were started with (or takes ``prog_ids``, tlsserver's
    -u/-g/-G); the handshake runs without them.
    """
    session = prepared.session()
    child = prog if prog is not None else spawn(opts.prog, opts.read_fd, opts.write_fd, prog_ids)
    try:
        config.drop_privileges(prepared.ident)
    except BaseException:
        child.abandon()
        raise
    return Connection(prepared, opts, session, child)


def run_connection(prepared: Prepared, opts: Options, log: Log, prog: Prog | None = None) -> int:
    """Steps 2 to 6 of the lifecycle, the same for every command, client or server role.

    Fork the waiting child with its pipes on ``opts.read_fd``/``opts.write_fd``
    (the network's numbers: 6/7 for tlsc, 0/1 for tlsd), drop privileges, run the
    handshake, give prog the SSL_* variables describing the peer, relay.

    ``prog``: a prog that is already running (ucspitlsc/ucspitlsd, which call
    this once prog has asked for TLS).  Its :meth:`Prog.start` receives the
    environment prog would have been executed with; the exit code is its
    :meth:`Prog.wait`'s.
    """
    return begin(prepared, opts, prog).serve(log)
