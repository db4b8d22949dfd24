"""The child that becomes prog.

It is forked *before* the handshake (so that it is forked by the privileged
process and holds none of the unprivileged one's state), with prog's ends of
the two cleartext pipes on RFD/WFD and nothing else of tlsc's.  It waits on a
control pipe: EOF with nothing means "the handshake failed, go away";
otherwise the message is prog's environment and the child executes prog.  An
exec failure travels back on a close-on-exec pipe, so tlsc can exit 111 naming
prog instead of passing off the child's status as prog's.

tlsserver's -u/-g/-G (:class:`ProgIds`) are applied in the child, after the
message and before the exec: the child is forked by the privileged process,
so it still can.
"""

from __future__ import annotations

# ``_signal``, not ``signal``: the same functions and numbers without the enums
# that ``signal`` builds at import (~0.8 ms of every connection's start-up);
# the interpreter has loaded it before any module runs.
import _signal as signal
import errno
import fcntl
import os

from . import exitcodes
from .exitcodes import Fatal
from .log import flush_std

#: ``typing.TYPE_CHECKING`` without importing ``typing`` (see :mod:`tlsc.session`).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)  # Linux; 3.10+ names it
PIPE_SIZE = 1 << 20  #: what a pipe that has filled grows to (see grow_pipe)
#: A new pipe's size on Linux: a read of this much found it full (see tlsc.engine).
SMALL_PIPE = 1 << 16

#: Signals tlsc forwards to prog (docs/tlsc.rst, "Description").
FORWARDED = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)


if TYPE_CHECKING:  # a type only: defining a Protocol at run time needs ``typing``
    from typing import Protocol

    class Prog(Protocol):
        """prog as the lifecycle and the engine see it (:class:`Child`, or a prog already running).

        ``to_prog``/``from_prog`` are our ends of its cleartext pipes; ``start``
        hands it the environment describing the connection once the handshake is
        done; ``abandon`` lets it go after a failure; ``wait`` gives the exit code
        the command ends with.
        """

        to_prog: int
        from_prog: int

        def start(self, argv: Sequence[str], env: Mapping[str, str]) -> None: ...
        def abandon(self) -> None: ...
        def kill(self, sig: int) -> None: ...
        def wait(self) -> int: ...


class ProgIds:
    """The ids prog runs with (tlsserver -u/-g/-G/-U); None keeps ours."""

    __slots__ = ("gid", "groups", "uid")

    def __init__(
        self,
        uid: int | None = None,
        gid: int | None = None,
        groups: tuple[int, ...] | None = None,
    ) -> None:
        self.uid = uid
        self.gid = gid
        self.groups = groups

    def apply(self) -> None:
        """Supplementary groups, then gid, then uid: the order that leaves no way back."""
        if self.groups is not None:
            os.setgroups(list(self.groups))
        if self.gid is not None:
            os.setgid(self.gid)
        if self.uid is not None:
            os.setuid(self.uid)


_STAGES = {
    b"exec": "unable to exec {prog}",
    b"ids": "unable to set prog's user and group ids",
    b"setup": "unable to prepare prog's descriptors",
}


class _Process:
    """What both kinds of prog have in common: signalling it and reaping it."""

    __slots__ = ()
    pid: int  #: 0 while there is no process yet
    status: int | None  #: the wait status, once reaped

    def kill(self, sig: int) -> None:
        if self.pid and self.status is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def wait(self) -> int:
        """prog's exit code as tlsc will return it (128 + signal when killed)."""
        while self.status is None:
            try:
                _, self.status = os.waitpid(self.pid, 0)
            except InterruptedError:
                continue
            except ChildProcessError:
                self.status = 0
        return exitcodes.status_to_code(self.status)


class Child(_Process):
    """The forked child, waiting to become prog (a :class:`Prog`)."""

    __slots__ = ("_control", "_exec_errors", "from_prog", "pid", "status", "to_prog")

    def __init__(
        self, pid: int, to_prog: int, from_prog: int, control: int, exec_errors: int
    ) -> None:
        self.pid = pid
        #: Our end of prog's fd RFD (we write cleartext for prog here).
        self.to_prog = to_prog
        #: Our end of prog's fd WFD (we read prog's cleartext here).
        self.from_prog = from_prog
        self._control = control
        self._exec_errors = exec_errors
        self.status: int | None = None

    def start(self, argv: Sequence[str], env: Mapping[str, str]) -> None:
        """Let the child exec prog; raise Fatal(111) if the exec failed."""
        message = b"\0".join(
            k.encode("utf-8", "surrogateescape") + b"=" + v.encode("utf-8", "surrogateescape")
            for k, v in env.items()
        )
        try:
            view = memoryview(message + b"\0")
            while view:
                n = os.write(self._control, view)
                view = view[n:]
        except OSError:
            pass  # the child died; its status tells why
        finally:
            os.close(self._control)
            self._control = -1
        report = b""
        while True:
            try:
                chunk = os.read(self._exec_errors, 4096)
            except InterruptedError:
                continue
            if not chunk:
                break
            report += chunk
        os.close(self._exec_errors)
        self._exec_errors = -1
        if report:
            self.wait()
            code, _, stage = report.partition(b":")
            err = int(code) if code.isdigit() else errno.ENOEXEC
            what = _STAGES.get(stage, _STAGES[b"setup"]).format(prog=argv[0])
            raise Fatal(exitcodes.SYSTEM, f"{what}: {os.strerror(err)}")

    def abandon(self) -> None:
        """The handshake failed: the child exits without executing prog."""
        for fd in (self._control, self._exec_errors, self.to_prog, self.from_prog):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._control = self._exec_errors = self.to_prog = self.from_prog = -1
        self.wait()


class Spawned(_Process):
    """prog started at :meth:`start` by ``posix_spawn``, with no waiting child (a :class:`Prog`).

    For a process that drops no privileges and gives prog no other ids
    (tlsserver's workers without TLS_UID/TLS_GID or -u/-g/-G): there the
    waiting child forked in advance buys nothing, and forking a process that
    holds a TLS library costs a copy of its page tables and a copy-on-write
    fault for every page either side then writes.  ``posix_spawn`` is a
    vfork: nothing is copied.  What prog sees is the same: its pipes on RFD/WFD,
    0-2, nothing else, SIGPIPE and the forwarded signals at their defaults,
    and an exec failure is our 111 naming it.
    """

    __slots__ = ("_pin", "_pout", "from_prog", "pid", "rfd", "status", "to_prog", "wfd")

    def __init__(self, rfd: int, wfd: int) -> None:
        try:
            self._pin, self.to_prog = _pipe()  # prog reads on rfd
            self.from_prog, self._pout = _pipe()  # prog writes on wfd
        except OSError as e:
            raise Fatal(exitcodes.SYSTEM, f"unable to create pipes: {e.strerror}") from None
        self.rfd, self.wfd = rfd, wfd
        self.pid = 0
        self.status: int | None = None

    def start(self, argv: Sequence[str], env: Mapping[str, str]) -> None:
        """Execute prog now; raise Fatal(111) if that failed."""
        flush_std()
        try:
            self.pid = os.posix_spawnp(
                argv[0],
                list(argv),
                env,
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, self._pin, self.rfd),
                    (os.POSIX_SPAWN_DUP2, self._pout, self.wfd),
                ],
                setsigdef=(*FORWARDED, signal.SIGPIPE, signal.SIGCHLD),
                setsigmask=(),
            )
        except OSError as e:
            raise Fatal(exitcodes.SYSTEM, f"unable to exec {argv[0]}: {e.strerror}") from None
        finally:
            self._close_prog_ends()

    def _close_prog_ends(self) -> None:
        for fd in (self._pin, self._pout):
            if fd >= 0:
                os.close(fd)
        self._pin = self._pout = -1

    def abandon(self) -> None:
        """No prog after all (the handshake failed): there is nothing to wait for."""
        self._close_prog_ends()
        for fd in (self.to_prog, self.from_prog):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.to_prog = self.from_prog = -1
        if self.pid:
            self.wait()


def _pipe() -> tuple[int, int]:
    r, w = os.pipe2(os.O_CLOEXEC)
    return r, w


def spawn(argv: Sequence[str], rfd: int, wfd: int, ids: ProgIds | None = None) -> Child:
    """Fork the waiting child; prog's pipes end up on its ``rfd`` and ``wfd``."""
    try:
        prog_in_r, prog_in_w = _pipe()  # tlsc writes, prog reads on rfd
        prog_out_r, prog_out_w = _pipe()  # prog writes on wfd, tlsc reads
        ctl_r, ctl_w = _pipe()
        err_r, err_w = _pipe()
    except OSError as e:
        raise Fatal(exitcodes.SYSTEM, f"unable to create pipes: {e.strerror}") from None
    flush_std()
    try:
        pid = os.fork()
    except OSError as e:
        raise Fatal(exitcodes.SYSTEM, f"unable to fork: {e.strerror}") from None
    if pid == 0:  # pragma: no cover - runs in the child, checked by the tests' results
        _child(argv, rfd, wfd, prog_in_r, prog_out_w, ctl_r, err_w, ids)
    for fd in (prog_in_r, prog_out_w, ctl_r, err_w):
        os.close(fd)
    return Child(pid, prog_in_w, prog_out_r, ctl_w, err_r)


def grow_pipe(fd: int) -> None:
    """Give a pipe that has filled ``PIPE_SIZE`` bytes of room; the kernel may refuse.

    prog's pipes are made at the kernel's size (64 KiB) and grown only once
    one fills, i.e. once the connection moves data in bulk: a 1 MiB pipe
    means far fewer poll rounds per MiB (downloads through 64 KiB pipes ran
    about 12% slower in a paired run).  Not at creation, because Linux
    counts every pipe's size against its user: past
    ``fs.pipe-user-pages-soft`` (64 MiB, i.e. 32 connections holding two
    1 MiB pipes each) every new pipe of that user, prog's own and other
    programs' included, is cut to 8 KiB and can no longer grow.  An idle or
    interactive connection, most of a busy server's, now holds 128 KiB of
    that budget.  ``fd`` may not be a pipe at all (a prog already running
    may hand us a socket): the kernel says no, and that is fine.
    """
    try:
        fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_SIZE)
    except OSError:
        pass


def _child(
    argv: Sequence[str],
    rfd: int,
    wfd: int,
    pin: int,
    pout: int,
    ctl: int,
    err: int,
    ids: ProgIds | None,
) -> None:  # pragma: no cover - child side
    report = err  # always a valid descriptor for telling the parent what failed
    stage = "setup"
    try:
        for sig in (*FORWARDED, signal.SIGPIPE, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        # Move everything we keep above any number we are about to overwrite.
        high = max(rfd, wfd, 2) + 1
        pin = fcntl.fcntl(pin, fcntl.F_DUPFD_CLOEXEC, high)
        pout = fcntl.fcntl(pout, fcntl.F_DUPFD_CLOEXEC, high)
        ctl = fcntl.fcntl(ctl, fcntl.F_DUPFD_CLOEXEC, high)
        err = report = fcntl.fcntl(err, fcntl.F_DUPFD_CLOEXEC, high)
        os.dup2(pin, rfd)
        os.dup2(pout, wfd)
        keep = sorted({0, 1, 2, rfd, wfd, ctl, err})
        lo = 3
        for fd in keep:
            if fd >= lo:
                os.closerange(lo, fd)
                lo = fd + 1
        os.closerange(lo, 1 << 20)
        chunks = []
        while True:
            try:
                chunk = os.read(ctl, 65536)
            except InterruptedError:
                continue
            if not chunk:
                break
            chunks.append(chunk)
        os.close(ctl)
        message = b"".join(chunks)
        if not message:
            os._exit(0)  # the handshake failed: prog is never executed
        env = {}
        for item in message.split(b"\0"):
            if item:
                k, _, v = item.partition(b"=")
                env[k] = v
        if ids is not None:
            stage = "ids"
            ids.apply()
        stage = "exec"
        os.execvpe(argv[0], list(argv), env)
    except BaseException as e:
        # Whatever failed before prog ran is reported, so that tlsc exits 111
        # instead of passing a bare 127 off as prog's own exit code.
        code = e.errno if isinstance(e, OSError) and e.errno else errno.EIO
        try:
            os.write(report, f"{code}:{stage}".encode())
        except OSError:
            pass
    os._exit(127)
