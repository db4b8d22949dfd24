"""Run tlsserver as a supervisor would, and look at it from outside.

:class:`Server` starts ``tlsserver -1 ... ip 0 prog...`` (no shell in between:
the ``KEYFILE:name`` variables must survive), reads the port from its
readiness line, and keeps its stderr in a file.  Helpers read what a test
needs from /proc: the server's descriptors, its children and their states,
the listening socket's queues.  :func:`tls_client` is a stdlib-``ssl`` client
(OpenSSL) for the tests that need many connections from one process.
"""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

from tests.support.run import base_env

TLSSERVER = [sys.executable, "-c", "from tlsc.quick import tlsserver_main; tlsserver_main()"]
LINE = re.compile(r"^tlsserver: (fatal|warning|info|debug): ")


class Server:
    def __init__(
        self,
        args: list[str],
        prog: list[str],
        env: dict,
        logfile: Path,
        ip: str = "127.0.0.1",
        port: int = 0,
        ready: bool = True,
    ) -> None:
        full = base_env()
        for k, v in env.items():
            if v is None:
                full.pop(k, None)
            else:
                full[k] = str(v)
        self.logfile = logfile
        self.ip = ip
        argv = [*TLSSERVER, *(["-1"] if ready else []), *[str(a) for a in args], ip, str(port),
                *prog]
        self.argv = argv
        with open(logfile, "wb") as err:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=err, env=full, start_new_session=True)
        self.pid = self.proc.pid
        self.port = 0
        self.stdout_rest = b""
        if ready:
            line = self._read_stdout(20)
            assert line.endswith(b"\n") and line[:-1].isdigit(), (line, self.log())
            self.port = int(line)
            self.stdout_rest = self._read_stdout(10, until_eof=True)

    def _read_stdout(self, timeout: float, until_eof: bool = False) -> bytes:
        out = b""
        fd = self.proc.stdout.fileno()
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            r, _, _ = select.select([fd], [], [], 0.2)
            if not r:
                if self.proc.poll() is not None and not until_eof:
                    break
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                return out
            out += chunk
            if not until_eof and out.endswith(b"\n"):
                return out
        if until_eof:
            raise AssertionError(f"tlsserver kept stdout open: {out!r}")
        return out

    @property
    def address(self) -> tuple[str, int]:
        return (self.ip, self.port)

    def log(self) -> str:
        return self.logfile.read_text(errors="replace")

    def wait_log(self, pattern: str, timeout: float = 20, count: int = 1) -> list[re.Match]:
        """Wait until ``pattern`` matched ``count`` lines of the log; the matches."""
        rx = re.compile(pattern, re.MULTILINE)
        end = time.monotonic() + timeout
        while True:
            found = list(rx.finditer(self.log()))
            if len(found) >= count:
                return found
            if time.monotonic() > end:
                raise AssertionError(f"{pattern!r} x{count} not in the log:\n{self.log()}")
            time.sleep(0.05)

    def assert_clean_log(self) -> None:
        """Only tlsserver's own lines, no fatal one, no traceback."""
        text = self.log()
        assert "Traceback" not in text, text
        for line in text.splitlines():
            assert LINE.match(line), f"unexpected line {line!r}\n{text}"
            assert not line.startswith("tlsserver: fatal:"), text

    def signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def stop(self) -> int | None:
        """SIGTERM, wait; then kill whatever of its process group is left."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.stdout.close()
        return self.proc.returncode

    # -- /proc -------------------------------------------------------------------

    def fds(self) -> dict[str, str]:
        out = {}
        for name in os.listdir(f"/proc/{self.pid}/fd"):
            try:
                out[name] = os.readlink(f"/proc/{self.pid}/fd/{name}")
            except OSError:
                pass
        return out

    def children(self) -> dict[int, str]:
        """The server's children: pid -> state letter (Z: a zombie)."""
        return children_of(self.pid)

    def listen_queue(self) -> tuple[int, int]:
        """(connections waiting to be accepted, the backlog) of the listening socket."""
        return listen_queue(self.port)


def children_of(pid: int) -> dict[int, str]:
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            out[int(name)] = fields[0]
    return out


def listen_queue(port: int) -> tuple[int, int]:
    """(connections waiting to be accepted, the backlog) of the listening socket on ``port``.

    ``ss`` reads them from the kernel (inet_diag): Recv-Q and Send-Q of a LISTEN socket.
    """
    out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True,
                         timeout=10, check=True).stdout.split()
    assert out and out[0] == "LISTEN", f"no listening socket on port {port}: {out}"
    return int(out[1]), int(out[2])


def client_context(cafile: Path | str | None, cert: tuple | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cafile is None:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.load_verify_locations(str(cafile))
    if cert is not None:
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    return ctx


def tls_client(address: tuple[str, int], ctx: ssl.SSLContext, server_hostname: str = "localhost",
               timeout: float = 30, ragged_eof_ok: bool = True) -> ssl.SSLSocket:
    """A connected, handshaken client; ``ragged_eof_ok=False``: EOF without close_notify
    raises SSLEOFError instead of reading as b""."""
    sock = socket.create_connection(address, timeout)
    return ctx.wrap_socket(sock, server_hostname=server_hostname,
                           suppress_ragged_eofs=ragged_eof_ok)


def recv_all(conn: ssl.SSLSocket) -> bytes:
    out = b""
    while True:
        try:
            chunk = conn.recv(65536)
        except (ssl.SSLZeroReturnError, ConnectionResetError):
            break
        if not chunk:
            break
        out += chunk
    return out
