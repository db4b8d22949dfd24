"""STARTTLS: the lifecycle of ucspitlsc and ucspitlsd (the UCSPI-TLS protocol).

Theory of operation
===================

Mail, IRC, XMPP, LDAP and FTP start in cleartext and switch to TLS on the
same connection.  prog speaks the cleartext part itself, so it must hold the
network descriptors, and nothing else may read from them until the switch:
a byte read ahead would be a byte of prog's lost.  Hence the layout, the one
of s6-ucspitlsc (the parent becomes prog, the child waits)::

    ucspitlsc ──fork──▶ child: the engine, waiting on the control socket
        │                 holds the network fds, never reads them before 'y'
        └─exec──▶ prog    network on 6/7 (ucspitlsc) or 0/1 (ucspitlsd),
                          SSLCTLFD, SSLREADFD, SSLWRITEFD set

1. Step 1 of the shared lifecycle (:func:`tlsc.client.prepare`,
   :func:`tlsc.server.prepare`) runs first: usage, configuration and
   credentials fail here, with their exit codes, before prog exists.
2. Two pipes (the tunnel) and a socket pair (the control socket) are made;
   the process forks.  The parent removes the TLS variables from its
   environment (unless -Z), sets ``SSLCTLFD``/``SSLREADFD``/``SSLWRITEFD``
   and executes prog: the command's pid is prog's, as a supervisor expects.
3. The child (the engine) keeps the network fds and its ends of the tunnel
   and blocks on one byte of the control socket.  It touches nothing else.

   * EOF (prog closed the socket, or exited): TLS declined, the engine exits 0
     and prog keeps the connection to itself.
   * ``y``: the engine closes the control socket; ``Y``: it shuts its reading
     side and keeps it to send the SSL_* variables back.
   * Any other byte: exit 100.

4. After ``y``/``Y`` the engine runs steps 2 to 6 of the shared lifecycle
   (:func:`tlsc.lifecycle.run_connection`) with :class:`RunningProg` as its prog:
   drop TLS_UID/TLS_GID, handshake under -K, then the relay between the
   network and the tunnel.  The first byte it reads from the network is the
   first byte after prog's cleartext, since prog stopped reading when it sent
   the command.  "Starting" prog means, here, sending ``Y``'s answer.  A failed
   handshake closes the tunnel (prog reads EOF on SSLREADFD) and the engine
   exits with the lifecycle's code and its one fatal line.

The engine is prog's child, so its exit code (0 after a clean session or a
refusal, 98 after a failed handshake, ...) is prog's to collect with wait();
the command's own code is prog's.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Mapping, Sequence

from . import client, config, exitcodes, server
from .exitcodes import Fatal
from .lifecycle import SSL_VARIABLES, Options, Prepared, run_connection
from .log import Log, flush_std
from .quick import guarded

#: Commands on the control socket (UCSPI-TLS).
START = b"y"
START_AND_REPORT = b"Y"


def run_client(opts: Options, log: Log) -> int:
    """ucspitlsc: tlsc's options, the server on ``opts.read_fd``/``opts.write_fd``."""
    return run(client.prepare(opts, log), opts, log)


def run_server(opts: Options, log: Log) -> int:
    """ucspitlsd: tlsd's options, the client on stdin/stdout."""
    return run(server.prepare(opts, log), opts, log)


class RunningProg:
    """prog as :func:`tlsc.lifecycle.run_connection` sees it when prog started first.

    prog is the engine's parent and has been running since the start; what
    remains of "starting" it is answering ``Y`` with the SSL_* variables.
    """

    def __init__(self, to_prog: int, from_prog: int, control: int) -> None:
        self.to_prog = to_prog  #: our end of prog's SSLREADFD
        self.from_prog = from_prog  #: our end of prog's SSLWRITEFD
        self.control = control  #: the control socket after ``Y``, else -1

    def start(self, argv: Sequence[str], env: Mapping[str, str]) -> None:
        """``Y``: the SSL_* variables of prog's would-be environment, on the control socket."""
        if self.control < 0:
            return
        report = b"".join(
            (name if name not in env else f"{name}={env[name]}").encode(
                "utf-8", "surrogateescape"
            )
            + b"\0"
            for name in SSL_VARIABLES
        )
        try:
            _write_all(self.control, report + b"\0")
        except OSError:
            pass  # prog closed the control socket: it no longer wants them
        self._close_control()

    def abandon(self) -> None:
        """The handshake failed: prog reads EOF on SSLREADFD (and on SSLCTLFD after ``Y``)."""
        for fd in (self.to_prog, self.from_prog):
            _close(fd)
        self.to_prog = self.from_prog = -1
        self._close_control()

    def kill(self, sig: int) -> None:
        """A signal for "prog": the engine is not prog's parent, so it ends itself with it."""
        flush_std()
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)

    def wait(self) -> int:
        """The engine's code after a clean session; prog's own is its parent's business."""
        return 0

    def _close_control(self) -> None:
        _close(self.control)
        self.control = -1


def run(prepared: Prepared, opts: Options, log: Log) -> int:
    """Fork the engine, execute prog in this process (steps 2 and 3 above)."""
    _sanitize_std()
    try:
        tunnel_in = os.pipe2(os.O_CLOEXEC)  # engine writes [1], prog reads [0]: SSLREADFD
        tunnel_out = os.pipe2(os.O_CLOEXEC)  # prog writes [1]: SSLWRITEFD, engine reads [0]
        ctl_prog, ctl_engine = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    except OSError as e:
        raise Fatal(exitcodes.SYSTEM, f"unable to create the tunnel: {e.strerror}") from None
    flush_std()
    try:
        pid = os.fork()
    except OSError as e:
        raise Fatal(exitcodes.SYSTEM, f"unable to fork: {e.strerror}") from None
    if pid == 0:  # pragma: no cover - the engine; checked by the tests' results
        for fd in (tunnel_in[0], tunnel_out[1]):
            os.close(fd)
        ctl_prog.close()
        control = ctl_engine.detach()
        code = guarded(  # lines tagged as the parent's (tlsd's pid N is prog's, here)
            log.name,
            lambda _: _engine(prepared, opts, log, tunnel_in[1], tunnel_out[0], control),
            log=log,
        )
        flush_std()
        os._exit(code)
    for fd in (tunnel_in[1], tunnel_out[0]):
        os.close(fd)
    ctl_engine.close()
    control = ctl_prog.detach()
    env = config.prog_environment(
        os.environ, opts.keep_env, dict.fromkeys(SSL_VARIABLES)
    )  # the SSL_* variables come later, on the control socket, with 'Y'
    env["SSLCTLFD"] = str(control)
    env["SSLREADFD"] = str(tunnel_in[0])
    env["SSLWRITEFD"] = str(tunnel_out[1])
    for fd in (control, tunnel_in[0], tunnel_out[1]):
        os.set_inheritable(fd, True)
    for sig in (signal.SIGPIPE, getattr(signal, "SIGXFSZ", signal.SIGPIPE)):
        signal.signal(sig, signal.SIG_DFL)  # Python ignores them; prog must not inherit that
    flush_std()
    try:
        os.execvpe(opts.prog[0], list(opts.prog), env)
    except OSError as e:
        # The engine must not outlive us waiting for a command that cannot come.
        os.close(control)
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
        raise Fatal(
            exitcodes.SYSTEM, f"unable to exec {opts.prog[0]}: {e.strerror or e}"
        ) from None
    raise AssertionError("unreachable")  # pragma: no cover


def _engine(
    prepared: Prepared, opts: Options, log: Log, to_prog: int, from_prog: int, control: int
) -> int:
    """The child: wait for prog's command, then the shared lifecycle (step 4 above)."""
    for fd in (0, 1):  # ucspitlsc: the caller's stdin/stdout are prog's, not ours to hold
        if fd not in (opts.read_fd, opts.write_fd):
            _to_devnull(fd)
    try:
        command = _read_command(control)
    except OSError as e:
        raise Fatal(
            exitcodes.SYSTEM, f"unable to read from the control socket: {e.strerror}"
        ) from None
    if not command:
        log.info("prog declined TLS: the control socket closed without a command")
        return 0
    if command == START:
        _close(control)
        control = -1
    elif command == START_AND_REPORT:
        sock = socket.socket(fileno=control)
        try:
            sock.shutdown(socket.SHUT_RD)  # prog's next word on it is not ours to read
        except OSError:
            pass
        sock.detach()
    else:
        raise Fatal(
            exitcodes.USAGE,
            f"unable to start TLS: command {command!r} on the control socket is not y or Y",
        )
    log.info(f"prog asked for TLS ({command.decode()})")
    prog = RunningProg(to_prog, from_prog, control)
    return run_connection(prepared, opts, log, prog)


def _read_command(control: int) -> bytes:
    """One byte from the control socket; b"" at EOF (prog closed it, or exited)."""
    try:
        return os.read(control, 1)
    except ConnectionResetError:
        return b""


def _sanitize_std() -> None:
    """0, 1 and 2 open (on /dev/null if need be), so the tunnel never takes those numbers."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            _to_devnull(fd)


def _to_devnull(fd: int) -> None:
    null = os.open(os.devnull, os.O_RDWR)
    if null != fd:
        os.dup2(null, fd)
        os.close(null)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _close(fd: int) -> None:
    if fd >= 0:
        try:
            os.close(fd)
        except OSError:
            pass
