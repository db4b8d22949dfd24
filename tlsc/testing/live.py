"""Handshake scenarios over real sockets against ``openssl s_server`` and ``gnutls-serv``.

The client session is driven in-process by :func:`drive`, a small poll loop
with a deadline (the core's job in production, kept minimal here).  The
servers are real binaries found on PATH; a scenario whose binary is missing
is reported by :func:`missing_peer` and skipped by the caller, since that is
the test machine's limit, not the backend's.
"""

from __future__ import annotations

import functools
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tlsc.session import AlertReceived, Backend, Session, TLSError, Truncated

from .certs import Issued
from .memory import HandshakePKI, client_config, handshake_pki

__all__ = ["SCENARIOS", "LiveScenario", "drive", "missing_peer", "run_live"]

TIMEOUT = 10.0
BINARIES = {"openssl-s_server": "openssl", "gnutls-serv": "gnutls-serv"}


def missing_peer(peer: str) -> str | None:
    """Why ``peer`` cannot run here (its binary is not on PATH), or None."""
    exe = BINARIES[peer]
    return None if shutil.which(exe) else f"{exe} not found on PATH"


@functools.lru_cache(maxsize=1)
def _files() -> dict[str, Path]:
    """The handshake PKI as PEM files for the server binaries (one temp dir per process)."""
    pki = handshake_pki()
    d = Path(tempfile.mkdtemp(prefix="tlsc-conformance-"))
    out = {}
    for label, item in (("rsa", pki.rsa), ("ecdsa", pki.ecdsa)):
        out[f"{label}.crt"] = _write(d / f"{label}.crt", item.pem)
        out[f"{label}.chain"] = _write(d / f"{label}.chain", item.pem + pki.inter.pem)
        out[f"{label}.key"] = _write(d / f"{label}.key", item.key_pem())
    out["inter"] = _write(d / "inter.pem", pki.inter.pem)
    out["root"] = _write(d / "root.pem", pki.root.pem)
    return out


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


class Server:
    """A server binary on 127.0.0.1, in its own process group so it can be killed whole."""

    def __init__(self, argv: list[str], port: int | None = None) -> None:
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.output = b""
        if port is None:
            # s_server is listening once it says so; probing would use up -naccept 1.
            self.port = self._await(rb"ACCEPT [^\n]*:(\d+)")
            return
        self.port = port
        deadline = time.monotonic() + TIMEOUT
        while True:  # wait until it accepts connections
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"{argv[0]} did not start: {self.output!r}") from None
                time.sleep(0.05)

    def _await(self, pattern: bytes) -> int:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            m = re.search(pattern, self.output)
            if m:
                return int(m.group(1))
            r, _, _ = select.select([fd], [], [], 0.1)
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                self.output += chunk
        self.stop()
        raise RuntimeError(f"server did not announce its port: {self.output!r}")

    def command(self, line: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line)
        self.proc.stdin.flush()

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(5)
        for s in (self.proc.stdin, self.proc.stdout):
            if s is not None:
                s.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(peer: str, kind: str, version: str, *, require_client_cert: bool = False) -> Server:
    f = _files()
    label = kind.lower()
    if peer == "openssl-s_server":
        argv = ["openssl", "s_server", "-accept", "127.0.0.1:0", "-naccept", "1",
                "-cert", str(f[f"{label}.crt"]), "-key", str(f[f"{label}.key"]),
                "-cert_chain", str(f["inter"]), "-tls1_2" if version == "TLSv1.2" else "-tls1_3",
                "-rev"]
        if require_client_cert:
            argv += ["-Verify", "2", "-CAfile", str(f["root"])]
        return Server(argv)
    port = _free_port()
    vers = "+VERS-TLS1.2" if version == "TLSv1.2" else "+VERS-TLS1.3"
    argv = ["gnutls-serv", "--echo", "-p", str(port), "--x509certfile", str(f[f"{label}.chain"]),
            "--x509keyfile", str(f[f"{label}.key"]), f"--priority=NORMAL:-VERS-ALL:{vers}"]
    if require_client_cert:
        argv += ["-r", "--verify-client-cert", "--x509cafile", str(f["root"])]
    return Server(argv, port)


class Link:
    """A session over a connected socket: the core's poll loop, reduced to what tests need."""

    def __init__(self, session: Session, port: int) -> None:
        self.s = session
        self.sock = socket.create_connection(("127.0.0.1", port), TIMEOUT)
        self.sock.setblocking(False)
        self.eof = False

    def flush(self) -> None:
        data = self.s.data_to_send()
        if data:
            self.sock.setblocking(True)
            try:
                self.sock.sendall(data)
            except OSError:
                pass  # the peer is gone; the session will say why
            finally:
                self.sock.setblocking(False)

    def wait_input(self, deadline: float) -> None:
        if self.eof:
            raise AssertionError("waiting for input after EOF")
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("timed out")
        r, _, _ = select.select([self.sock], [], [], left)
        if not r:
            raise AssertionError("timed out waiting for the server")
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
        self.s.receive_data(data)

    def handshake(self) -> None:
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                done = self.s.do_handshake()
            finally:
                self.flush()
            if done:
                return
            self.wait_input(deadline)

    def read_until(self, want: Callable[[bytes], bool]) -> bytes:
        """Plaintext until ``want(data)``; returns at close_notify too (data so far)."""
        deadline = time.monotonic() + TIMEOUT
        data = b""
        while not want(data):
            try:
                chunk = self.s.read(65536)
            finally:
                self.flush()
            if chunk == b"":
                return data
            if chunk is None:
                self.wait_input(deadline)
            else:
                data += chunk
        return data

    def send(self, data: bytes) -> None:
        self.s.write(data)
        self.flush()

    def close(self) -> None:
        self.sock.close()


def drive(backend: Backend, server: Server, *, client_cert: bool = False) -> Link:
    cctx = backend.client_context(client_config(handshake_pki(), client_cert=client_cert),
                                  lambda msg: None)
    link = Link(cctx.session(), server.port)
    link.handshake()
    return link


@dataclass(frozen=True)
class LiveScenario:
    name: str
    peer: str
    run: Callable[[Backend], None]
    needs: dict[str, object] = field(default_factory=dict)


def _echo(
    peer: str, kind: str, version: str, client_cert: bool = False
) -> Callable[[Backend], None]:
    def run(backend: Backend) -> None:
        srv = start(peer, kind, version, require_client_cert=client_cert)
        try:
            link = drive(backend, srv, client_cert=client_cert)
            f = link.s.facts()
            assert f.protocol == version, f"protocol {f.protocol!r}"
            pki: HandshakePKI = handshake_pki()
            leaf: Issued = pki.rsa if kind == "RSA" else pki.ecdsa
            assert f.peer_certificate == leaf.der, "peer_certificate is not the server's leaf"
            link.send(b"hello conformance\n")
            got = link.read_until(lambda d: d.endswith(b"\n"))
            want = b"ecnamrofnoc olleh\n" if peer == "openssl-s_server" else b"hello conformance\n"
            assert got == want, f"echo: got {got!r}"
            link.close()
        finally:
            srv.stop()

    return run


def _truncated(peer: str) -> Callable[[Backend], None]:
    def run(backend: Backend) -> None:
        srv = start(peer, "ECDSA", "TLSv1.3")
        try:
            link = drive(backend, srv)
            link.send(b"x\n")
            link.read_until(lambda d: d.endswith(b"\n"))
            srv.stop()  # killed: FIN without close_notify
            try:
                link.read_until(lambda d: False)
            except Truncated:
                return
            except TLSError as e:
                raise AssertionError(f"expected Truncated, got {type(e).__name__}: {e}") from None
            raise AssertionError("EOF without close_notify was reported as a clean close")
        finally:
            srv.stop()

    return run


def _alert(peer: str) -> Callable[[Backend], None]:
    def run(backend: Backend) -> None:
        srv = start(peer, "RSA", "TLSv1.2", require_client_cert=True)
        try:
            drive(backend, srv, client_cert=False)
        except AlertReceived:
            return
        except TLSError as e:
            raise AssertionError(f"expected AlertReceived, got {type(e).__name__}: {e}") from None
        finally:
            srv.stop()
        raise AssertionError("handshake succeeded although the server required a certificate")

    return run


def _scenarios() -> tuple[LiveScenario, ...]:
    out: list[LiveScenario] = []
    for peer in BINARIES:
        for v in ("TLSv1.2", "TLSv1.3"):
            for k in ("RSA", "ECDSA"):
                out.append(LiveScenario(f"{peer}/echo-{v}-{k}", peer, _echo(peer, k, v),
                                        {"tls_versions": v}))
            out.append(LiveScenario(f"{peer}/client-cert-{v}", peer, _echo(peer, "RSA", v, True),
                                    {"tls_versions": v, "client_certificates": True}))
        out.append(LiveScenario(f"{peer}/eof-is-truncated", peer, _truncated(peer),
                                {"tls_versions": "TLSv1.3"}))
        out.append(LiveScenario(f"{peer}/fatal-alert-no-client-cert", peer, _alert(peer),
                                {"tls_versions": "TLSv1.2"}))
    return tuple(out)


SCENARIOS = _scenarios()


def run_live(backends: Sequence[Backend]) -> list:
    """Every live scenario whose server binary is present, for every backend."""
    from .harness import EXCUSED, Cell, run_scenarios

    cells = []
    for peer in BINARIES:
        todo = [s for s in SCENARIOS if s.peer == peer]
        why = missing_peer(peer)
        if why:
            cells += [Cell(s.name, b.name, peer, EXCUSED, why) for b in backends for s in todo]
        else:
            cells += run_scenarios(backends, todo, peer)
    return cells
