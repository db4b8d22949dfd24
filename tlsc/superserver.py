"""tlsserver's accept loop: pre-loaded, pre-forked, one process per connection.

Theory of operation
===================

::

    tlsserver (the server)         listens, accepts, hands out, reaps; no TLS
     ├─ worker, idle               session made, TLS_UID/TLS_GID dropped,
     │  (└─ prog's child)          waiting on its socketpair for a connection
     ├─ worker, serving            one connection, tlsd's lifecycle, then exit
     │   └─ prog
     ...

The server runs step 1 of the lifecycle, :func:`tlsc.server.prepare` (the
backend imported, every server context built from KEYFILE, CERTFILE, the
``:name`` pairs and CADIR/CAFILE), before it listens.  A worker is a fork of
the server, so it has all of that without reading a file: it runs step 2,
:func:`tlsc.lifecycle.begin`, at once (its session, the fork of prog's
waiting child, the privilege drop), then blocks on its end of a socketpair.
When neither side changes ids (no TLS_UID/TLS_GID, no -u/-g/-G), there is no
waiting child: prog is spawned after the handshake (:class:`tlsc.child.Spawned`,
a vfork), which spares every connection a fork of this large process and the
copy-on-write faults that follow it.
The server accepts a connection, passes the descriptor to the
oldest idle worker (SCM_RIGHTS, with the peer's address), closes its own
copy, and forks a replacement.  The worker puts the connection on fds 0/1 and
runs :meth:`tlsc.lifecycle.Connection.serve`: tlsd's lifecycle, the same code.
So a client's handshake waits for no fork and no import; the forks happen
while the previous client is being served.

Limits.  ``-c MAXCONN``: at most that many workers serve at once; at the
limit the listening socket is not polled, and new connections wait in the
kernel's backlog.  ``-C LOCALMAXCONN`` needs the client's address, so a
connection over its address's limit is accepted and *parked* (the server
holds its descriptor, nothing is sent) until one of that address's
connections ends; while MAXCONN connections are parked the server stops
accepting too.  Nothing is ever refused with an error.

Signals only write to a self-pipe (``signal.set_wakeup_fd``) and set a flag;
the loop acts on them: SIGCHLD reaps (every worker, busy or idle, is
waited for: no zombie), SIGHUP re-reads the credentials (a failure keeps the
old ones, with a warning) and replaces the idle workers, which hold the old
contexts; SIGTERM/SIGINT close the listening socket and exit 0, leaving the
connections in progress to their end.

Descriptors the server holds: 0-2, the listening socket, the self-pipe, one
socketpair end per idle worker, and parked connections.  A worker starts by
closing everything else it inherited.  Nothing grows with the number of
connections served.
"""

from __future__ import annotations

import errno
import gc
import os
import select
import signal
import socket
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NoReturn

from . import exitcodes, ucspi
from .child import ProgIds, Spawned
from .exitcodes import Fatal
from .lifecycle import Options, Prepared, begin, build_options
from .log import Log, flush_std
from .names import parse_ip
from .server import NET_READ_FD, NET_WRITE_FD

__all__ = [
    "IDLE_WORKERS",
    "Limits",
    "Server",
    "ServerOptions",
    "listen",
    "server_options",
    "run",
    "split_words",
]

#: Workers kept forked and waiting (fewer when MAXCONN leaves no room for them).
IDLE_WORKERS = 2
#: After a worker died before it was given a connection, wait this long before
#: forking another one (a broken setup must not turn into a fork loop).
BACKOFF = 1.0
MAX_FD = 1 << 20


@dataclass(frozen=True)
class Limits:
    maxconn: int = 40  #: -c
    localmaxconn: int = 40  #: -C, per client address
    nodelay: bool = True  #: -D / -d


@dataclass
class _Busy:
    """A worker serving a connection."""

    ip: str
    port: int


def listen(ip: str, port: int, backlog: int) -> socket.socket:
    """The listening socket (111 when it cannot be had)."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as e:
        raise Fatal(exitcodes.SYSTEM, f"unable to create a socket: {e.strerror}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((ip, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError as e:
        sock.close()
        raise Fatal(
            exitcodes.SYSTEM, f"unable to bind to {ip} port {port}: {e.strerror or e}"
        ) from None
    return sock


def _send_connection(ctrl: int, conn: int, ip: str, port: int) -> None:
    s = socket.socket(fileno=ctrl)
    try:
        socket.send_fds(s, [f"{ip} {port}".encode()], [conn])
    finally:
        s.detach()


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


class Server:
    """The accept loop; see the module docstring."""

    def __init__(
        self,
        listener: socket.socket,
        opts: Options,
        limits: Limits,
        prepared: Prepared,
        reload: Callable[[], Prepared],
        prog_ids: ProgIds | None,
        drop_from_env: tuple[str, ...],
        log: Log,
    ) -> None:
        self.local_ip, self.local_port = listener.getsockname()[:2]
        self.lsock = listener
        self.listener = listener.fileno()
        self.opts = opts
        self.limits = limits
        self.prepared = prepared
        self.reload = reload
        self.prog_ids = prog_ids
        self.drop_from_env = drop_from_env
        self.log = log
        self.idle: dict[int, int] = {}  #: worker pid -> our end of its socketpair
        self.busy: dict[int, _Busy] = {}  #: worker pid -> its connection
        self.retired: set[int] = set()  #: idle workers told to go (reload, stop)
        self.per_ip: dict[str, int] = {}
        self.parked: deque[tuple[int, str, int]] = deque()  #: (fd, ip, port)
        self.backoff_until = 0.0
        self.signals: set[int] = set()

    # -- signals ----------------------------------------------------------------

    def _install_signals(self) -> int:
        r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.wakeup_r, self.wakeup_w = r, w
        signal.set_wakeup_fd(w, warn_on_full_buffer=False)

        def note(signum: int, frame: object) -> None:
            self.signals.add(signum)

        for sig in (signal.SIGCHLD, signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, note)
        return r

    def _drain_wakeup(self) -> None:
        try:
            while os.read(self.wakeup_r, 512):
                pass
        except OSError:
            pass

    # -- the loop -------------------------------------------------------------------

    def run(self) -> int:
        self._install_signals()
        # What every worker inherits (the backend, the contexts) is never
        # collected: out of the collector's sight, it is not copied into each
        # worker by a collection touching its pages.  The collector itself is
        # on in the server (tlsc.quick starts with it off), for the little the
        # server allocates per connection.
        gc.collect()
        gc.freeze()
        gc.enable()
        self.log.info(f"listening on {self.local_ip} port {self.local_port}")
        poller = select.poll()
        poller.register(self.wakeup_r, select.POLLIN)
        accepting = False
        while True:
            self._refill()
            want = self._can_accept()
            if want != accepting:
                if want:
                    poller.register(self.listener, select.POLLIN)
                else:
                    poller.unregister(self.listener)
                accepting = want
            timeout = None
            if self.backoff_until and len(self.idle) < self._idle_target():
                timeout = max(1, int((self.backoff_until - time.monotonic()) * 1000))
            events = poller.poll(timeout)
            if self.signals:
                self._drain_wakeup()
                signals, self.signals = self.signals, set()
                if signal.SIGCHLD in signals:
                    self._reap()
                if signal.SIGTERM in signals or signal.SIGINT in signals:
                    name = "SIGTERM" if signal.SIGTERM in signals else "SIGINT"
                    return self._stop(name)
                if signal.SIGHUP in signals:
                    self._reload()
            if any(fd == self.listener for fd, _ in events):
                self._accept()
            self._dispatch()

    def _can_accept(self) -> bool:
        return len(self.busy) < self.limits.maxconn and len(self.parked) < self.limits.maxconn

    def _idle_target(self) -> int:
        return max(0, min(IDLE_WORKERS, self.limits.maxconn - len(self.busy)))

    def _refill(self) -> None:
        if self.backoff_until:
            if time.monotonic() < self.backoff_until:
                return
            self.backoff_until = 0.0
        while len(self.idle) < self._idle_target():
            self._fork_worker()

    def _accept(self) -> None:
        while self._can_accept():
            try:
                conn, addr = self.lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in (errno.ECONNABORTED, errno.EPROTO):
                    continue
                # EMFILE, ENOBUFS...: the connection stays in the backlog; say so once
                # per wakeup and let the loop come back (an exit would hurt more).
                self.log.warn(f"unable to accept: {e.strerror}")
                return
            self.parked.append((conn.detach(), addr[0], addr[1]))

    def _dispatch(self) -> None:
        """Hand parked connections to idle workers, in order, within the limits."""
        local = self.limits.localmaxconn
        skipped: deque[tuple[int, str, int]] = deque()
        while self.parked and self.idle and len(self.busy) < self.limits.maxconn:
            fd, ip, port = self.parked.popleft()
            if self.per_ip.get(ip, 0) >= local:
                skipped.append((fd, ip, port))
                continue
            if not self._hand_over(fd, ip, port):
                skipped.append((fd, ip, port))
                break
        skipped.extend(self.parked)
        self.parked = skipped

    def _hand_over(self, fd: int, ip: str, port: int) -> bool:
        while self.idle:
            pid = next(iter(self.idle))
            ctrl = self.idle.pop(pid)
            try:
                _send_connection(ctrl, fd, ip, port)
            except OSError:
                _close(ctrl)  # it died idle; SIGCHLD will tell
                continue
            _close(ctrl)
            _close(fd)
            self.busy[pid] = _Busy(ip, port)
            self.per_ip[ip] = self.per_ip.get(ip, 0) + 1
            self.log.info(
                f"start pid {pid} remote {ip} port {port}"
                f" count {len(self.busy)}/{self.limits.maxconn}"
            )
            return True
        return False

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            busy = self.busy.pop(pid, None)
            if busy is not None:
                left = self.per_ip[busy.ip] - 1
                if left:
                    self.per_ip[busy.ip] = left
                else:
                    del self.per_ip[busy.ip]
                code = exitcodes.status_to_code(status)
                self.log.info(
                    f"end pid {pid} remote {busy.ip} port {busy.port} exitcode {code}"
                    f" count {len(self.busy)}/{self.limits.maxconn}"
                )
                continue
            if pid in self.retired:
                self.retired.discard(pid)
                continue
            ctrl = self.idle.pop(pid, None)
            if ctrl is not None:
                _close(ctrl)
                code = exitcodes.status_to_code(status)
                self.log.warn(f"worker pid {pid} exited before serving (exitcode {code})")
                self.backoff_until = time.monotonic() + BACKOFF

    def _reload(self) -> None:
        try:
            prepared = self.reload()
        except Fatal as e:
            self.log.warn(f"unable to reload the credentials, keeping the old ones: {e.message}")
            return
        self.prepared = prepared
        self._retire_idle()
        gc.collect()
        gc.freeze()
        self.log.info("credentials reloaded")

    def _retire_idle(self) -> None:
        for pid, ctrl in self.idle.items():
            _close(ctrl)  # EOF: the worker exits without executing prog
            self.retired.add(pid)
        self.idle.clear()

    def _stop(self, name: str) -> int:
        self.lsock.close()
        for fd, _, _ in self.parked:
            _close(fd)
        self.parked.clear()
        self._retire_idle()
        self.log.info(f"{name}: exiting, {len(self.busy)} connections still running")
        return 0

    # -- workers ------------------------------------------------------------------

    def _fork_worker(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        a, b = ours.detach(), theirs.detach()
        flush_std()
        try:
            pid = os.fork()
        except OSError as e:
            _close(a)
            _close(b)
            self.log.warn(f"unable to fork: {e.strerror}")
            self.backoff_until = time.monotonic() + BACKOFF
            return
        if pid == 0:  # pragma: no cover - the worker, checked by the tests' results
            self._worker(b)
        _close(b)
        self.idle[pid] = a

    def _worker(self, ctrl: int) -> NoReturn:  # pragma: no cover - runs in the worker
        code = exitcodes.SYSTEM
        log = self.log
        try:
            signal.set_wakeup_fd(-1)
            for sig in (signal.SIGCHLD, signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, signal.SIG_DFL)
            # Everything of the server's (listening socket, self-pipe, other
            # workers' socketpairs, parked connections) goes, by number.  The
            # server's objects that own one of them (the listening socket) stay
            # referenced until os._exit, so they never close a reused number.
            os.closerange(3, ctrl)
            os.closerange(ctrl + 1, MAX_FD)
            log = Log(log.name, log.verbosity, os.getpid())
            code = self._serve_one(ctrl, log)
        except Fatal as e:
            log.fatal(e.message)
            code = e.code
        except BaseException as e:  # noqa: BLE001 - the worker's last line of defence
            log.fatal(f"internal error: {type(e).__name__}: {e}")
        flush_std()
        os._exit(code)

    def _serve_one(self, ctrl: int, log: Log) -> int:  # pragma: no cover - in the worker
        ident = self.prepared.ident
        prog = None
        if self.prog_ids is None and ident.uid is None and ident.gid is None:
            # No privilege changes on either side: prog is spawned at exec time
            # (see child.Spawned), which saves a fork of this big process.
            prog = Spawned(NET_READ_FD, NET_WRITE_FD)
        conn = begin(self.prepared, self.opts, prog, self.prog_ids)
        try:
            s = socket.socket(fileno=ctrl)
            try:
                msg, fds, _, _ = socket.recv_fds(s, 512, 1)
            finally:
                s.close()
        except BaseException:
            conn.abandon()
            raise
        if not fds:
            conn.abandon()  # retired: no connection for us
            return 0
        fd = fds[0]
        os.dup2(fd, NET_READ_FD)
        os.dup2(fd, NET_WRITE_FD)
        os.close(fd)
        ip, _, port = msg.decode().partition(" ")
        env = dict(os.environ)
        for name in self.drop_from_env:
            env.pop(name, None)
        sock = socket.socket(fileno=os.dup(NET_READ_FD))
        try:
            if self.limits.nodelay:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            local = sock.getsockname()
        except OSError:
            local = (self.local_ip, self.local_port)
        finally:
            sock.close()
        ucspi.apply(env, ucspi.variables(local, (ip, port)))
        return conn.serve(log, env)


@dataclass(frozen=True)
class ServerOptions:
    """tlsserver's command line: tlsd's options (``conn``) and its own."""

    conn: Options  #: every connection's, as tlsd's
    ip: str
    port: int
    limits: Limits = Limits()
    backlog: int = socket.SOMAXCONN  #: -b
    ready: bool = False  #: -1
    uid: int | None = None  #: -u
    gid: int | None = None  #: -g
    groups: tuple[int, ...] | None = None  #: -G
    ids_from_env: bool = False  #: -U

    @property
    def verbosity(self) -> int:
        return self.conn.verbosity


#: -U reads these, and removes them from prog's environment.
ID_VARIABLES = ("UID", "GID", "GIDLIST")


def parse_gid_list(text: str) -> tuple[int, ...] | None:
    """``-G``/``GIDLIST``: comma-separated numeric gids (empty: none); None if malformed."""
    if not text:
        return ()
    parts = text.split(",")
    if not all(p.isascii() and p.isdigit() for p in parts):
        return None
    return tuple(int(p) for p in parts)


def prog_ids(sopts: ServerOptions, env: Mapping[str, str]) -> ProgIds | None:
    """The ids prog runs with: -u/-g/-G, else (with -U) UID/GID/GIDLIST (100 if bad)."""
    uid, gid, groups = sopts.uid, sopts.gid, sopts.groups
    if sopts.ids_from_env:

        def number(var: str) -> int | None:
            value = env.get(var)
            if not value:
                return None
            if not (value.isascii() and value.isdigit()):
                raise Fatal(exitcodes.USAGE, f"invalid {var} for -U: {value!r} is not numeric")
            return int(value)

        uid = uid if uid is not None else number("UID")
        gid = gid if gid is not None else number("GID")
        if groups is None and "GIDLIST" in env:
            groups = parse_gid_list(env["GIDLIST"])
            if groups is None:
                raise Fatal(exitcodes.USAGE, f"invalid GIDLIST for -U: {env['GIDLIST']!r}")
    if uid is None and gid is None and groups is None:
        return None
    return ProgIds(uid, gid, groups)


def _sane_std_fds() -> None:
    """0, 1 and 2 open, so that no socket of ours can take their numbers."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)


def _ready(port: int) -> None:
    """-1: the port and a newline on stdout, then stdout closed (fd 1 kept on /dev/null)."""
    flush_std()
    try:
        os.write(1, f"{port}\n".encode())
    except OSError:
        pass
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.close(null)


def run(sopts: ServerOptions, log: Log) -> int:
    """tlsserver: configuration (100/96/97), the listening socket (111), then the loop."""
    from .server import prepare

    _sane_std_fds()
    opts = sopts.conn
    prepared = prepare(opts, log, check=True)
    ids = prog_ids(sopts, os.environ)

    def reload() -> Prepared:
        return prepare(opts, log, check=True)

    listener = listen(sopts.ip, sopts.port, sopts.backlog)
    if sopts.ready:
        _ready(listener.getsockname()[1])
    server = Server(
        listener,
        opts,
        sopts.limits,
        prepared,
        reload,
        ids,
        ID_VARIABLES if sopts.ids_from_env else (),
        log,
    )
    return server.run()


def split_words(words: Sequence[str]) -> tuple[tuple[str, int, list[str]] | None, str | None]:
    """``ip port [--] prog...`` → ((ip, port, prog), None), or (None, the usage problem)."""
    if len(words) < 2:
        return None, "missing ip and port"
    ip, port_text, prog = words[0], words[1], list(words[2:])
    if prog[:1] == ["--"]:
        prog = prog[1:]
    if not prog:
        return None, "missing prog"
    if ip.startswith("[") and ip.endswith("]"):
        ip = ip[1:-1]
    if parse_ip(ip) is None:
        return None, f"not an IP address: {words[0]!r}"
    if port_text.isascii() and port_text.isdigit():
        port = int(port_text)
        if port > 65535:
            return None, f"port out of range: {port_text}"
    else:
        try:
            port = socket.getservbyname(port_text, "tcp")
        except (OSError, UnicodeError):
            return None, f"not a port number or a known TCP service: {port_text!r}"
    return (str(parse_ip(ip)), port, prog), None


def server_options(params: Mapping[str, object], words: Sequence[str]) -> ServerOptions:
    """tlsserver's options from checked parameters (click's names) and ``ip port prog...``."""
    split, problem = split_words(words)
    if split is None:
        raise Fatal(exitcodes.USAGE, f"usage: {problem}")
    ip, port, prog = split
    p = dict(params)

    def number(name: str) -> int | None:
        value = p.pop(name)
        return None if value is None else int(value)  # type: ignore[call-overload]

    maxconn = number("maxconn") or 1
    local = number("localmaxconn")
    backlog = number("backlog")
    uid, gid = number("uid"), number("gid")
    groups = p.pop("groups")
    nodelay, ready, from_env = (
        bool(p.pop("nodelay")),
        bool(p.pop("ready")),
        bool(p.pop("ids_from_env")),
    )
    limits = Limits(maxconn, maxconn if local is None else min(maxconn, local), nodelay)
    return ServerOptions(
        conn=build_options(prog, read_fd=NET_READ_FD, write_fd=NET_WRITE_FD, **p),  # type: ignore[arg-type]
        ip=ip,
        port=port,
        limits=limits,
        backlog=socket.SOMAXCONN if backlog is None else backlog,
        ready=ready,
        uid=uid,
        gid=gid,
        groups=parse_gid_list(str(groups)) if groups is not None else None,
        ids_from_env=from_env,
    )
