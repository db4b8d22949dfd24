"""Handshake scenarios over real sockets against ``openssl s_server`` and ``gnutls-serv``.

The client session is driven in-process by :func:`drive`, a small poll loop
with a deadline (the core's job in production, kept minimal here).  The
servers are real binaries found on PATH; a scenario whose binary is missing
is reported by :func:`missing_peer` and skipped by the caller, since that is
the test machine's limit, not the backend's.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from tlsc.names import is_ip_address
from tlsc.reasons import ALERT_NAMES, Reason
from tlsc.session import (
    AlertReceived,
    Backend,
    ClientConfig,
    ProtocolError,
    Session,
    TLSError,
    Truncated,
)

from .certs import Issued
from .memory import HOST, HandshakePKI, check_words, client_config, handshake_pki

__all__ = ["SCENARIOS", "LiveScenario", "drive", "missing_peer", "run_live"]

TIMEOUT = 10.0
#: Peers and the binary each needs; "python-ssl" is a stdlib ``ssl``/socket peer in a thread.
BINARIES: dict[str, str | None] = {
    "openssl-s_server": "openssl",
    "gnutls-serv": "gnutls-serv",
    "python-ssl": None,
}
#: Bytes each way in the bulk scenario; tlslite is pure Python (~0.5 MiB/s).
BULK_BYTES = 8 << 20
BULK_BYTES_BY_BACKEND = {"tlslite": 256 << 10}
#: The deadline the handshake-timeout scenario gives the driver.
SHORT_TIMEOUT = 0.5


def missing_peer(peer: str) -> str | None:
    """Why ``peer`` cannot run here (its binary is not on PATH), or None."""
    exe = BINARIES[peer]
    if exe is None:
        return None
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
        if self.proc.stdout is not None and not self.proc.stdout.closed:
            # Keep what it printed (the log scenarios read it); the writer is dead, so EOF comes.
            fd = self.proc.stdout.fileno()
            while select.select([fd], [], [], 1.0)[0]:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                self.output += chunk
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


class Listening(Protocol):
    """Any peer listening on 127.0.0.1 (``tlsdpeers.TlsdPeer`` among them)."""

    port: int


class Link:
    """A session over a connected socket: the core's poll loop, reduced to what tests need."""

    def __init__(self, session: Session, port: int | socket.socket) -> None:
        """``port`` on 127.0.0.1, or a socket already connected (after a STARTTLS)."""
        self.s = session
        if isinstance(port, socket.socket):
            self.sock = port
        else:
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

    def handshake(self, timeout: float = TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
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


def drive(
    backend: Backend,
    server: Server | PyPeer | Listening,
    *,
    client_cert: bool = False,
    config: ClientConfig | None = None,
    timeout: float = TIMEOUT,
    wrap: Callable[[Session], Session] | None = None,
    sock: socket.socket | None = None,
) -> Link:
    """A handshake with ``server``, on a new connection or on ``sock`` (STARTTLS)."""
    if config is None:
        config = client_config(handshake_pki(), client_cert=client_cert)
    session = backend.client_context(config, lambda msg: None).session()
    link = Link(wrap(session) if wrap else session, server.port if sock is None else sock)
    try:
        link.handshake(timeout)
    except BaseException:
        link.close()
        raise
    return link


class PyPeer:
    """A one-connection server on 127.0.0.1 run by ``handler(conn, peer)`` in a thread.

    ``handler`` gets the accepted TCP socket (blocking, with a timeout); it may
    speak TLS through :func:`tls_accept` or write whatever bytes it likes.
    :attr:`done` is set by :meth:`stop`, for handlers that must wait for it.
    """

    def __init__(self, handler: Callable[[socket.socket, PyPeer], None]) -> None:
        self.handler = handler
        self.lsock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.lsock.getsockname()[1])
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.lsock.settimeout(TIMEOUT)
            conn, _ = self.lsock.accept()
            with conn:
                conn.settimeout(TIMEOUT)
                self.handler(conn, self)
        except BaseException as e:  # reported through .error; the client's view is the test
            self.error = e
        finally:
            self.lsock.close()

    def stop(self) -> None:
        self.done.set()
        self.thread.join(TIMEOUT)


def _server_context() -> ssl.SSLContext:
    f = _files()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(f["ecdsa.chain"]), str(f["ecdsa.key"]))
    return ctx


def _wait_closed(conn: socket.socket, peer: PyPeer) -> None:
    """Read and drop until the client closes or the scenario ends."""
    conn.settimeout(0.1)
    while not peer.done.is_set():
        try:
            if not conn.recv(65536):
                return
        except TimeoutError:
            continue
        except OSError:
            return


def tls_accept(conn: socket.socket) -> tuple[ssl.SSLObject, ssl.MemoryBIO]:
    """A stdlib TLS server handshake over memory BIOs on ``conn``: (object, outgoing BIO).

    Memory BIOs leave the raw socket in the handler's hands, so it can write
    bytes that are not TLS after a real handshake.
    """
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = _server_context().wrap_bio(inc, out, server_side=True)
    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            if out.pending:
                conn.sendall(out.read())
            data = conn.recv(65536)
            if not data:
                raise EOFError("client closed during the handshake") from None
            inc.write(data)
    if out.pending:
        conn.sendall(out.read())
    return obj, out


@dataclass(frozen=True)
class LiveScenario:
    name: str
    peer: str
    run: Callable[[Backend], object]
    needs: dict[str, object] = field(default_factory=dict)
    #: Capabilities the *server* backend must declare (``tlsd-<backend>`` peers only).
    server_needs: dict[str, object] = field(default_factory=dict)


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
            except Truncated as e:
                check_words(e, "EOF without close_notify", Reason.TRUNCATED)
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
        except AlertReceived as e:
            check_words(e, "the server's fatal alert", Reason.ALERT)
            if e.detail not in ALERT_NAMES.values():
                raise AssertionError(
                    f"alert named {e.detail!r}, not by its RFC name (tlsc.reasons.alert_name)"
                ) from None
            return
        except TLSError as e:
            raise AssertionError(f"expected AlertReceived, got {type(e).__name__}: {e}") from None
        finally:
            srv.stop()
        raise AssertionError("handshake succeeded although the server required a certificate")

    return run


def _sni_seen_by_openssl(output: bytes) -> str | None:
    """The SNI host name in ``s_server -tlsextdebug`` output, or None when none was sent."""
    lines = output.decode("latin-1").splitlines()
    for i, line in enumerate(lines):
        if 'extension "server name"' not in line:
            continue
        raw = b""
        for dump in lines[i + 1 :]:
            m = re.match(r"\s*[0-9a-f]{4} - ((?:[0-9a-f]{2}[ -])+)", dump)
            if not m:
                break
            raw += bytes.fromhex(m.group(1).replace("-", " "))
        # ServerNameList: list length (2), name type (1), name length (2), name.
        n = int.from_bytes(raw[3:5], "big")
        return raw[5 : 5 + n].decode("ascii", "replace")
    return None


def _sni(peer: str, name: str) -> Callable[[Backend], None]:
    """The server must see ``name`` as SNI, or no SNI at all when ``name`` is an IP address."""
    want = None if is_ip_address(name) else name

    def run(backend: Backend) -> None:
        f = _files()
        config = client_config(handshake_pki(), server_name=name)
        if peer == "openssl-s_server":
            srv = Server(["openssl", "s_server", "-accept", "127.0.0.1:0", "-naccept", "1",
                          "-cert", str(f["rsa.crt"]), "-key", str(f["rsa.key"]),
                          "-cert_chain", str(f["inter"]), "-tlsextdebug", "-rev"])
        else:
            port = _free_port()
            srv = Server(["gnutls-serv", "--http", "-p", str(port),
                          "--x509certfile", str(f["rsa.chain"]),
                          "--x509keyfile", str(f["rsa.key"])], port)
        try:
            link = drive(backend, srv, config=config)
            f_ = link.s.facts()
            assert f_.server_name == want, f"facts().server_name {f_.server_name!r}, want {want!r}"
            if peer == "openssl-s_server":
                link.send(b"sni\n")
                link.read_until(lambda d: d.endswith(b"\n"))
                link.close()
                srv.stop()
                seen = _sni_seen_by_openssl(srv.output)
            else:
                link.send(b"GET / HTTP/1.0\r\n\r\n")
                page = link.read_until(lambda d: False)
                link.close()
                m = re.search(rb"Server Name: ([^<]*)<", page)
                assert b"Session ID" in page, f"not gnutls-serv's session page: {page[:200]!r}"
                seen = m.group(1).decode() if m else None
            assert seen == want, f"server saw SNI {seen!r}, want {want!r}"
        finally:
            srv.stop()

    return run


def _peer_close_notify(peer: str) -> Callable[[Backend], None]:
    """An HTTP server that ends with close_notify: the page, then ``read`` returns b''."""

    def run(backend: Backend) -> None:
        f = _files()
        if peer == "openssl-s_server":
            srv = Server(["openssl", "s_server", "-accept", "127.0.0.1:0", "-naccept", "1",
                          "-cert", str(f["ecdsa.crt"]), "-key", str(f["ecdsa.key"]),
                          "-cert_chain", str(f["inter"]), "-www"])
        else:
            port = _free_port()
            srv = Server(["gnutls-serv", "--http", "-p", str(port),
                          "--x509certfile", str(f["ecdsa.chain"]),
                          "--x509keyfile", str(f["ecdsa.key"])], port)
        try:
            link = drive(backend, srv)
            link.send(b"GET / HTTP/1.0\r\n\r\n")
            try:
                page = link.read_until(lambda d: False)  # returns only at close_notify
            except Truncated:
                raise AssertionError("the server's close_notify was reported as Truncated"
                                     ) from None
            assert page.startswith(b"HTTP/1.0 200"), f"page: {page[:80]!r}"
            assert page.rstrip().lower().endswith(b"</html>"), f"page end: {page[-80:]!r}"
            got = link.s.read(65536)
            assert got == b"", f"read after close_notify returned {got!r} (must stay b'')"
            link.close()
        finally:
            srv.stop()

    return run


def _half_close(peer: str) -> Callable[[Backend], None]:
    """TLS 1.3: we send data, close_notify and a TCP half-close; the peer still answers,
    then answers our close_notify with its own (it saw it)."""

    def run(backend: Backend) -> None:
        srv = start(peer, "ECDSA", "TLSv1.3")
        try:
            link = drive(backend, srv)
            link.s.write(b"half close\n")
            link.s.close_notify()
            link.flush()
            link.sock.shutdown(socket.SHUT_WR)
            got = link.read_until(lambda d: d.endswith(b"\n"))
            want = b"esolc flah\n" if peer == "openssl-s_server" else b"half close\n"
            assert got == want, f"reply after our close_notify: {got!r}"
            try:
                rest = link.read_until(lambda d: False)
            except Truncated:
                raise AssertionError("the peer did not answer our close_notify") from None
            assert rest == b"", f"unexpected data {rest!r}"
            link.close()
        finally:
            srv.stop()

    return run


def _garbage_handshake(backend: Backend) -> None:
    """A plain TCP server answering the ClientHello with an HTTP error page."""

    def handler(conn: socket.socket, peer: PyPeer) -> None:
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/html\r\n"
                     b"Content-Length: 44\r\n\r\n<html><body>400 Bad Request</body></html>\n\n")
        _wait_closed(conn, peer)

    srv = PyPeer(handler)
    try:
        drive(backend, srv)
    except ProtocolError as e:
        check_words(e, "an HTTP answer to the ClientHello", Reason.PROTOCOL)
        return
    except TLSError as e:
        raise AssertionError(f"expected ProtocolError, got {type(e).__name__}: {e}") from None
    finally:
        srv.stop()
    raise AssertionError("handshake succeeded against an HTTP server")


def _garbage_after_handshake(backend: Backend) -> None:
    """A real TLS 1.3 handshake (stdlib ssl), a record of data, then raw junk on the socket."""

    def handler(conn: socket.socket, peer: PyPeer) -> None:
        obj, out = tls_accept(conn)
        obj.write(b"hello\n")
        conn.sendall(out.read())
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n" + bytes(range(256)) * 4)
        _wait_closed(conn, peer)

    srv = PyPeer(handler)
    try:
        link = drive(backend, srv)
        got = link.read_until(lambda d: d.endswith(b"\n"))
        assert got == b"hello\n", f"data before the junk: {got!r}"
        try:
            rest = link.read_until(lambda d: False)
        except ProtocolError as e:
            check_words(e, "junk after the handshake", Reason.PROTOCOL)
            link.close()
            return
        except AlertReceived as e:
            check_words(e, "junk after the handshake", Reason.ALERT)
            link.close()
            return
        except TLSError as e:
            raise AssertionError(
                f"expected ProtocolError, got {type(e).__name__}: {e}"
            ) from None
        raise AssertionError(f"junk after the handshake read as a clean close ({rest!r})")
    finally:
        srv.stop()


class _Counting:
    """A session proxy counting ``do_handshake`` calls (a spinning loop would show)."""

    def __init__(self, inner: Session) -> None:
        self.inner = inner
        self.calls = 0

    def do_handshake(self) -> bool:
        self.calls += 1
        return self.inner.do_handshake()

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def _handshake_timeout(backend: Backend) -> None:
    """A server that accepts and never answers: the driver's deadline must end it, quietly."""

    def handler(conn: socket.socket, peer: PyPeer) -> None:
        _wait_closed(conn, peer)

    srv = PyPeer(handler)
    counted: list[_Counting] = []

    def wrap(s: Session) -> Session:
        counted.append(_Counting(s))
        return counted[0]  # type: ignore[return-value]

    t0, c0 = time.monotonic(), time.process_time()
    try:
        drive(backend, srv, timeout=SHORT_TIMEOUT, wrap=wrap)
    except AssertionError as e:
        if "timed out" not in str(e):
            raise
    except TLSError as e:
        raise AssertionError(f"silent server: expected a timeout, got {type(e).__name__}: {e}"
                             ) from None
    else:
        raise AssertionError("handshake completed against a silent server")
    finally:
        srv.stop()
    wall, cpu = time.monotonic() - t0, time.process_time() - c0
    assert wall < SHORT_TIMEOUT + 2.0, f"deadline {SHORT_TIMEOUT}s, took {wall:.2f}s"
    calls = counted[0].calls
    assert calls <= 2, f"do_handshake called {calls} times without input (spinning)"
    assert cpu < SHORT_TIMEOUT * 0.8, f"{cpu:.2f}s CPU while waiting {wall:.2f}s (spinning)"


def _pump(link: Link, n: int) -> None:
    """``n`` bytes through an echoing peer, both ways at once, checked by sha256."""
    payload = hashlib.shake_256(b"tlsc bulk").digest(n)
    sent = received = 0
    digest = hashlib.sha256()
    out = bytearray()
    deadline = time.monotonic() + 30.0
    while received < n:
        while sent < n and len(out) < 256 << 10:
            link.s.write(payload[sent : sent + 16384])
            sent = min(n, sent + 16384)
            out += link.s.data_to_send()
        left = deadline - time.monotonic()
        assert left > 0, f"timed out: sent {sent}, echoed {received} of {n}"
        r, w, _ = select.select([link.sock], [link.sock] if out else [], [], left)
        if w:
            del out[: link.sock.send(out)]
        if r:
            data = link.sock.recv(65536)
            assert data, f"server closed after echoing {received} of {n} bytes"
            link.s.receive_data(data)
            while (chunk := link.s.read(65536)) is not None:
                assert chunk != b"", f"close_notify after {received} of {n} bytes"
                digest.update(chunk)
                received += len(chunk)
            out += link.s.data_to_send()
    assert received == n, f"echoed {received} bytes, sent {n}"
    want = hashlib.sha256(payload).hexdigest()
    assert digest.hexdigest() == want, "echoed data differs (sha256)"


def _bulk(version: str) -> Callable[[Backend], None]:
    """Bulk data both ways at once through a stdlib ssl echo server, checked by sha256."""

    def run(backend: Backend) -> None:
        n = BULK_BYTES_BY_BACKEND.get(backend.name, BULK_BYTES)

        def handler(conn: socket.socket, peer: PyPeer) -> None:
            ctx = _server_context()
            v = ssl.TLSVersion.TLSv1_2 if version == "TLSv1.2" else ssl.TLSVersion.TLSv1_3
            ctx.minimum_version = ctx.maximum_version = v
            with ctx.wrap_socket(conn, server_side=True) as t:
                while data := t.recv(65536):
                    t.sendall(data)

        srv = PyPeer(handler)
        try:
            link = drive(backend, srv)
            assert link.s.facts().protocol == version, f"protocol {link.s.facts().protocol!r}"
            _pump(link, n)
            link.close()
        finally:
            srv.stop()

    return run


def _scenarios() -> tuple[LiveScenario, ...]:
    out: list[LiveScenario] = []
    for peer in ("openssl-s_server", "gnutls-serv"):
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
        out.append(LiveScenario(f"{peer}/sni-dns-name", peer, _sni(peer, HOST)))
        out.append(LiveScenario(f"{peer}/sni-none-for-ip", peer, _sni(peer, "127.0.0.1")))
        out.append(LiveScenario(f"{peer}/peer-close-notify-is-clean", peer,
                                _peer_close_notify(peer)))
        out.append(LiveScenario(f"{peer}/half-close-TLSv1.3", peer, _half_close(peer),
                                {"tls_versions": "TLSv1.3"}))
    py = "python-ssl"
    out.append(LiveScenario(f"{py}/garbage-in-handshake", py, _garbage_handshake))
    out.append(LiveScenario(f"{py}/garbage-after-handshake", py, _garbage_after_handshake,
                            {"tls_versions": "TLSv1.3"}))
    out.append(LiveScenario(f"{py}/handshake-timeout", py, _handshake_timeout))
    for v in ("TLSv1.2", "TLSv1.3"):
        out.append(LiveScenario(f"{py}/bulk-echo-{v}", py, _bulk(v), {"tls_versions": v}))
    return tuple(out)


SCENARIOS = _scenarios()


def run_live(backends: Sequence[Backend]) -> list:
    """Every live scenario whose server binary is present, for every backend; the
    duplex battery (tlsc and tlsd against stdlib ``ssl`` peers); then every backend
    against every backend's server side (``tlsd-<backend>``), and the STARTTLS
    scenarios (``ucspitlsd-<backend>``, ucspitlsc)."""
    from .duplex import client_scenarios, server_scenarios
    from .harness import EXCUSED, Cell, run_scenarios

    cells = []
    for peer in BINARIES:
        todo = [s for s in SCENARIOS if s.peer == peer]
        why = missing_peer(peer)
        if why:
            cells += [Cell(s.name, b.name, peer, EXCUSED, why) for b in backends for s in todo]
        else:
            cells += run_scenarios(backends, todo, peer)
    cells += run_scenarios(backends, client_scenarios(), "python-ssl")
    cells += run_scenarios(backends, server_scenarios(), "python-ssl-client")
    from .starttls import run_starttls
    from .tlsdpeers import run_tlsd

    return cells + run_tlsd(backends) + run_starttls(backends)
