"""The handshake battery against every backend's *server* side: real ``tlsd`` processes.

Each installed backend declaring ``capabilities.server`` becomes a peer
``tlsd-<backend>``: a small accept loop on 127.0.0.1 (a thread) that starts
``tlsd --backend <backend>`` per connection with the socket on its stdin and
stdout, as a super-server would, KEYFILE/CERTFILE from the harness's
certificates, and a tiny prog that echoes lines and reports its SSL_*
variables on request.  Every client backend is driven against every such
peer, so the matrix is client-backend × server-backend.

Each battery ends with the duplex pair (:func:`tlsc.testing.duplex.pair_scenarios`):
a real ``tlsc`` of the client backend against the ``tlsd``, progs on both sides,
one ending first -- no byte lost.

TLS 1.3 only: neither a :class:`~tlsc.session.ClientConfig` nor tlsd can
restrict the protocol version, so the 1.2 echo cells that the binary peers
have are not repeated here.
"""

from __future__ import annotations

import functools
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence

from tlsc.names import is_ip_address
from tlsc.reasons import Reason
from tlsc.session import AlertReceived, Backend, TLSError, Truncated

from .live import TIMEOUT, LiveScenario, _files, _pump, drive
from .memory import HOST, check_words, handshake_pki

__all__ = [
    "BULK_BYTES",
    "TlsdPeer",
    "peers",
    "run_server_peers",
    "run_tlsd",
    "scenarios",
    "server_backends",
]

TLSD = [sys.executable, "-c", "from tlsc.tlsd import main; main()"]
#: Bytes each way in the bulk scenario; tlslite on either side is pure Python.
BULK_BYTES = 2 << 20
BULK_BYTES_SLOW = 256 << 10
SLOW = {"tlslite"}
#: tlsd's exit code when the client's certificate is missing or invalid under -y.
NO_CLIENT_CERT_RC = 98
#: What the client session must raise when tlsd -y refuses it for lack of a certificate:
#: tlsd's backend sends a fatal alert (every pair was seen to); a bare close would be
#: Truncated, garbage ProtocolError, and both fail the cell, naming what was raised.
REFUSALS = (AlertReceived,)

#: prog: echo each line; "env" lists the SSL_* variables then "end"; "bye" answers and exits.
ECHO_PROG = [sys.executable, "-c", r"""
import os, sys
out = sys.stdout.buffer
for line in sys.stdin.buffer:
    if line == b"env\n":
        for k in sorted(os.environ):
            if k.startswith("SSL_"):
                out.write(os.fsencode(k + "=" + os.environ[k] + "\n"))
        out.write(b"end\n")
    elif line == b"bye\n":
        out.write(b"bye\n")
        out.flush()
        break
    else:
        out.write(line)
    out.flush()
"""]
#: prog for bulk data: a byte-exact echo.
CAT_PROG = [sys.executable, "-c", r"""
import os
while data := os.read(0, 65536):
    while data:
        data = data[os.write(1, data):]
"""]


@functools.lru_cache(maxsize=1)
def server_backends() -> tuple[str, ...]:
    """Installed backends declaring the server role (and having ``server_context``)."""
    from .harness import backend_names, get_backend

    out = []
    for name in backend_names():
        b = get_backend(name)
        if b.info().capabilities.server and hasattr(b, "server_context"):
            out.append(name)
    return tuple(out)


def peers() -> list[str]:
    return [f"tlsd-{n}" for n in server_backends()]


class TlsdPeer:
    """An accept loop on 127.0.0.1 starting one ``tlsd`` per connection (in a thread).

    ``command`` replaces tlsd with another server command taking tlsd's options
    (ucspitlsd, :mod:`tlsc.testing.starttls`); ``flags`` are more of its options.

    :meth:`wait` gives the first tlsd's exit code and stderr; :meth:`stop`
    ends the loop and kills whatever tlsd (and prog) is still running.
    """

    def __init__(
        self,
        backend: str,
        kind: str = "ECDSA",
        *,
        require_client_cert: bool = False,
        prog: Sequence[str] = ECHO_PROG,
        flags: Sequence[str] = (),
        command: Sequence[str] = TLSD,
    ) -> None:
        f = _files()
        label = kind.lower()
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LC_ALL": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "KEYFILE": str(f[f"{label}.key"]),
            "CERTFILE": str(f[f"{label}.chain"]),
        }
        certs: list[str] = []  # tlsd asks for no client certificate (-Y: an optional one)
        if require_client_cert:
            certs = ["-y"]
            self.env["CAFILE"] = str(f["root"])
        self.argv = [*command, "--backend", backend, *certs, *flags, "--", *prog]
        self.lsock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.lsock.getsockname()[1])
        self.procs: list[tuple[subprocess.Popen[bytes], object]] = []
        self.started = threading.Event()
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        try:
            while not self.done.is_set():
                if not select.select([self.lsock], [], [], 0.05)[0]:
                    continue
                conn, _ = self.lsock.accept()
                with conn:
                    conn.setblocking(True)
                    err = tempfile.TemporaryFile()
                    proc = subprocess.Popen(
                        self.argv, stdin=conn.fileno(), stdout=conn.fileno(), stderr=err,
                        env=self.env, start_new_session=True,
                    )
                # tlsd holds the only copy of the socket now: its close is the FIN.
                self.procs.append((proc, err))
                self.started.set()
        except BaseException as e:  # reported by wait(); the client's view is the test
            self.error = e

    def wait(self, timeout: float = TIMEOUT) -> tuple[int, str]:
        """The first tlsd's exit code and stderr, once it has exited."""
        if not self.started.wait(timeout):
            raise AssertionError(f"tlsd was never started ({self.error!r})")
        proc, err = self.procs[0]
        try:
            rc = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"tlsd did not exit within {timeout}s") from None
        err.seek(0)  # type: ignore[attr-defined]
        return rc, err.read().decode("utf-8", "replace")  # type: ignore[attr-defined]

    def stop(self) -> None:
        self.done.set()
        self.thread.join(TIMEOUT)
        self.lsock.close()
        for proc, err in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            proc.wait(5)
            err.close()  # type: ignore[attr-defined]


def _bulk_bytes(client: str, server: str) -> int:
    return BULK_BYTES_SLOW if {client, server} & SLOW else BULK_BYTES


def _ssl_env(link: object) -> dict[str, str]:
    """Ask prog for its SSL_* variables."""
    link.send(b"env\n")  # type: ignore[attr-defined]
    text = link.read_until(lambda d: d.endswith(b"end\n"))  # type: ignore[attr-defined]
    assert text.endswith(b"end\n"), f"prog's env report ended early: {text!r}"
    lines = text.decode("utf-8", "replace").splitlines()[:-1]
    return dict(ln.split("=", 1) for ln in lines)


def _finish(peer: TlsdPeer, link: object, rc_want: int = 0) -> None:
    """Close our side cleanly, then tlsd must exit ``rc_want`` without a traceback."""
    link.s.close_notify()  # type: ignore[attr-defined]
    link.flush()  # type: ignore[attr-defined]
    link.close()  # type: ignore[attr-defined]
    rc, err = peer.wait()
    assert "Traceback" not in err, f"tlsd crashed: {err[-400:]!r}"
    assert rc == rc_want, f"tlsd exited {rc}, want {rc_want}: {err.strip()[-300:]!r}"


def _echo(server: str, kind: str) -> Callable[[Backend], None]:
    def run(backend: Backend) -> None:
        peer = TlsdPeer(server, kind)
        try:
            link = drive(backend, peer)
            f = link.s.facts()
            assert f.protocol == "TLSv1.3", f"protocol {f.protocol!r}"
            pki = handshake_pki()
            leaf = pki.rsa if kind == "RSA" else pki.ecdsa
            assert f.peer_certificate == leaf.der, "peer_certificate is not the server's leaf"
            link.send(b"hello conformance\n")
            got = link.read_until(lambda d: d.endswith(b"\n"))
            assert got == b"hello conformance\n", f"echo: got {got!r}"
            env = _ssl_env(link)
            assert env.get("SSL_PROTOCOL") == "TLSv1.3", f"prog's SSL_PROTOCOL: {env}"
            assert env.get("SSL_CIPHER"), f"prog has no SSL_CIPHER: {env}"
            assert "SSL_PEER_CERT_SUBJECT" not in env, f"client certificate reported: {env}"
            _finish(peer, link)
        finally:
            peer.stop()

    return run


def _sni(server: str, name: str) -> Callable[[Backend], None]:
    """prog's SSL_TLS_SNI_SERVERNAME is ``name``, or unset when ``name`` is an IP address."""
    want = None if is_ip_address(name) else name

    def run(backend: Backend) -> None:
        from .memory import client_config

        peer = TlsdPeer(server, "RSA")
        try:
            link = drive(backend, peer, config=client_config(handshake_pki(), server_name=name))
            seen = _ssl_env(link).get("SSL_TLS_SNI_SERVERNAME")
            assert seen == want, f"server side saw SNI {seen!r}, want {want!r}"
            _finish(peer, link)
        finally:
            peer.stop()

    return run


def _client_cert(server: str) -> Callable[[Backend], None]:
    def run(backend: Backend) -> None:
        peer = TlsdPeer(server, "ECDSA", require_client_cert=True)
        try:
            link = drive(backend, peer, client_cert=True)
            env = _ssl_env(link)
            subject = env.get("SSL_PEER_CERT_SUBJECT", "")
            assert "conformance client" in subject, f"prog's SSL_PEER_CERT_SUBJECT: {env}"
            assert env.get("SSL_PEER_CERT_HASH"), f"prog has no SSL_PEER_CERT_HASH: {env}"
            _finish(peer, link)
        finally:
            peer.stop()

    return run


def _no_client_cert(server: str) -> Callable[[Backend], str]:
    """tlsd -y, no client certificate: the client sees a refusal, tlsd exits 98.

    Under TLS 1.3 the client's handshake is complete before the server has
    judged its (empty) Certificate message, so the refusal may come at the
    first read; the cell's detail records what was raised, and where.
    """

    def run(backend: Backend) -> str:
        peer = TlsdPeer(server, "ECDSA", require_client_cert=True)
        where = "handshake"
        try:
            try:
                link = drive(backend, peer, client_cert=False)
                where = "first read"
                try:
                    link.send(b"hello\n")
                    got = link.read_until(lambda d: d.endswith(b"\n"))
                finally:
                    link.close()
            except REFUSALS as e:
                check_words(e, f"tlsd -y's refusal at the {where}", Reason.ALERT)
                seen = f"{type(e).__name__} at the {where} ({e})"
            except TLSError as e:
                raise AssertionError(
                    f"refused with {type(e).__name__} at the {where}, want AlertReceived: {e}"
                ) from None
            else:
                raise AssertionError(f"tlsd -y served a client without a certificate ({got!r})")
            rc, err = peer.wait()
            assert "Traceback" not in err, f"tlsd crashed: {err[-400:]!r}"
            assert rc == NO_CLIENT_CERT_RC, f"tlsd exited {rc}, want 98: {err.strip()[-300:]!r}"
            return f"{seen}; tlsd exited {rc}"
        finally:
            peer.stop()

    return run


def _close_notify(server: str) -> Callable[[Backend], None]:
    """prog exits after "bye": tlsd sends close_notify (TLS 1.3), read returns b''."""

    def run(backend: Backend) -> None:
        peer = TlsdPeer(server, "ECDSA")
        try:
            link = drive(backend, peer)
            link.send(b"bye\n")
            try:
                got = link.read_until(lambda d: False)  # returns only at close_notify
            except Truncated:
                raise AssertionError("tlsd closed without close_notify after prog exited"
                                     ) from None
            assert got == b"bye\n", f"data before close_notify: {got!r}"
            again = link.s.read(65536)
            assert again == b"", f"read after close_notify returned {again!r} (must stay b'')"
            link.close()
            rc, err = peer.wait()
            assert rc == 0 and "Traceback" not in err, f"tlsd exited {rc}: {err[-300:]!r}"
        finally:
            peer.stop()

    return run


def _bulk(server: str) -> Callable[[Backend], None]:
    def run(backend: Backend) -> None:
        peer = TlsdPeer(server, "ECDSA", prog=CAT_PROG)
        try:
            link = drive(backend, peer)
            _pump(link, _bulk_bytes(backend.name, server))
            _finish(peer, link)
        finally:
            peer.stop()

    return run


def tlsd_scenarios(server: str) -> tuple[LiveScenario, ...]:
    """The battery for peer ``tlsd-<server>``; ``needs`` are the client's, server_needs tlsd's."""
    p = f"tlsd-{server}"
    v13 = {"tls_versions": "TLSv1.3"}
    certs = {**v13, "client_certificates": True}
    out = [
        LiveScenario(f"{p}/echo-TLSv1.3-{k}", p, _echo(server, k), dict(v13),
                     {**v13, "key_types": k})
        for k in ("RSA", "ECDSA")
    ]
    out += [
        LiveScenario(f"{p}/sni-dns-name", p, _sni(server, HOST), dict(v13), dict(v13)),
        LiveScenario(f"{p}/sni-none-for-ip", p, _sni(server, "127.0.0.1"), dict(v13), dict(v13)),
        LiveScenario(f"{p}/client-cert-required-present", p, _client_cert(server), dict(certs),
                     dict(certs)),
        LiveScenario(f"{p}/client-cert-required-absent", p, _no_client_cert(server), dict(v13),
                     dict(certs)),
        LiveScenario(f"{p}/peer-close-notify-after-prog-exit", p, _close_notify(server),
                     dict(v13), dict(v13)),
        LiveScenario(f"{p}/bulk-echo-TLSv1.3", p, _bulk(server), dict(v13), dict(v13)),
    ]
    from .duplex import pair_scenarios  # duplex builds on this module

    return (*out, *pair_scenarios(server))


def scenarios() -> tuple[LiveScenario, ...]:
    """Every tlsd scenario, for every installed backend with the server role."""
    return tuple(s for n in server_backends() for s in tlsd_scenarios(n))


def run_tlsd(backends: Sequence[Backend]) -> list:
    """Every client backend against every ``tlsd-<server>`` peer."""
    return run_server_peers(backends, tlsd_scenarios, "tlsd")


def run_server_peers(
    backends: Sequence[Backend],
    battery: Callable[[str], Sequence[LiveScenario]],
    prefix: str,
) -> list:
    """Every client backend against ``battery(server)``, peer ``<prefix>-<server>``, for
    every server backend.

    A cell is excused by the client's declared capabilities (``needs``) or by
    the server backend's (``server_needs``), nothing else.
    """
    from .harness import EXCUSED, Cell, excuse, get_backend, run_scenarios

    cells = []
    for server in server_backends():
        caps = get_backend(server).info().capabilities
        todo = []
        for s in battery(server):
            why = excuse(caps, s.server_needs)
            if why is None:
                todo.append(s)
            else:
                cells += [Cell(s.name, b.name, s.peer, EXCUSED, f"server {server} {why}")
                          for b in backends]
        cells += run_scenarios(backends, todo, f"{prefix}-{server}")
    return cells
