"""STARTTLS scenarios (ucspitlsc, ucspitlsd): TLS on a connection that carried cleartext first.

Two kinds of peer, both speaking a little SMTP (greeting, EHLO, STARTTLS):

* ``ucspitlsd-<server>``, for every installed backend with the server role: an
  accept loop starting ``ucspitlsd --backend <server>`` per connection (the
  :class:`~tlsc.testing.tlsdpeers.TlsdPeer` loop) with :data:`SMTPD_PROG`.  The
  client backend under test speaks the cleartext part over the socket itself,
  then runs its session on the same socket, in process like every live
  scenario.  So the matrix is client-backend × server-backend here too.
* ``python-ssl``: a stdlib ``ssl`` STARTTLS server in a thread, and the backend
  under test inside a real ``ucspitlsc --backend <name>`` process with
  :data:`SMTP_CLIENT_PROG`.

What they prove: the first TLS byte is the first byte after the cleartext
(nothing read ahead and lost, a ClientHello sent with the STARTTLS command
included), bytes prog writes before the handshake is over arrive first, the
``Y`` answer's format and values (the session both ends negotiated), a refusal
leaves the connection in cleartext, and the engine's exit code, which both
progs pass on as their own (the engine is prog's child).
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
from collections.abc import Callable, Sequence

from tlsc.session import Backend

from .live import TIMEOUT, Link, LiveScenario, PyPeer, _files, _server_context
from .memory import HOST, client_config, handshake_pki
from .tlsdpeers import TlsdPeer, server_backends

__all__ = ["SMTPD_PROG", "SMTP_CLIENT_PROG", "peers", "run_starttls", "scenarios"]

UCSPITLSD = [sys.executable, "-c", "from tlsc.quick import ucspitlsd_main; ucspitlsd_main()"]
UCSPITLSC = [sys.executable, "-c", "from tlsc.quick import ucspitlsc_main; ucspitlsc_main()"]
#: Runs argv[2:] with the socket at fd argv[1] on fds 6 and 7, as tcpclient leaves it.
ON_6_7 = [sys.executable, "-c", r"""
import fcntl, os, sys
fd = fcntl.fcntl(int(sys.argv[1]), fcntl.F_DUPFD, 10)
os.close(int(sys.argv[1]))
os.dup2(fd, 6)
os.dup2(fd, 7)
os.close(fd)
os.execvp(sys.argv[2], sys.argv[2:])
"""]
NAMES = ("SSL_PROTOCOL", "SSL_CIPHER", "SSL_TLS_SNI_SERVERNAME", "SSL_PEER_CERT_HASH",
         "SSL_PEER_CERT_SUBJECT")

#: ucspitlsd's prog.  Cleartext is read one byte at a time (no read-ahead).  An
#: EHLO naming decline.test gets a refusal (454) and a cleartext echo; otherwise
#: STARTTLS gets 220 and ``Y``, a banner goes into the tunnel at once, and in
#: the tunnel "VARS" answers the ``Y`` answer in hex, "QUIT" ends.  prog exits
#: with the engine's exit code (it reaps it: the engine is its child).
SMTPD_PROG = [sys.executable, "-c", r"""
import os, sys
def line(fd):
    b = b""
    while not b.endswith(b"\n"):
        c = os.read(fd, 1)
        if not c:
            break
        b += c
    return b
def put(fd, data):
    while data:
        data = data[os.write(fd, data):]
put(1, b"220 conformance ESMTP\r\n")
decline = False
while True:
    l = line(0)
    v = l.strip().upper()
    if not l:
        sys.exit(3)
    if v.startswith(b"EHLO"):
        decline = v.endswith(b"DECLINE.TEST")
        put(1, b"250-conformance\r\n250 STARTTLS\r\n")
    elif v == b"STARTTLS":
        break
    else:
        put(1, b"500 what?\r\n")
ctl = int(os.environ["SSLCTLFD"])
if decline:
    put(1, b"454 TLS not available\r\n")
    os.close(ctl)
    while l := line(0):
        if l.strip().upper() == b"QUIT":
            put(1, b"221 bye\r\n")
            break
        put(1, b"250 clear " + l.strip() + b"\r\n")
else:
    put(1, b"220 ready\r\n")
    put(ctl, b"Y")
    w = int(os.environ["SSLWRITEFD"])
    put(w, b"220 tls ready\r\n")
    answer = b""
    while chunk := os.read(ctl, 4096):
        answer += chunk
    os.close(ctl)
    r = os.fdopen(int(os.environ["SSLREADFD"]), "rb", buffering=0)
    while l := r.readline():
        v = l.strip().upper()
        if v == b"VARS":
            put(w, b"250 " + answer.hex().encode() + b"\r\n")
        elif v == b"QUIT":
            put(w, b"221 bye\r\n")
            break
        else:
            put(w, b"250 " + l.strip() + b"\r\n")
    os.close(w)
    while r.read(65536):
        pass
_, status = os.wait()
sys.exit(os.waitstatus_to_exitcode(status))
"""]

#: ucspitlsc's prog: the client side of the dialogue above, with ``Y``; it sends
#: "EHLO" into the tunnel at once (before the handshake is over), then the ``Y``
#: answer in hex ("VARS <hex>"), then "QUIT"; it exits with the engine's code.
SMTP_CLIENT_PROG = [sys.executable, "-c", r"""
import os, sys
def line(fd):
    b = b""
    while not b.endswith(b"\n"):
        c = os.read(fd, 1)
        if not c:
            sys.exit(90)
        b += c
    return b
def reply(fd):
    while (l := line(fd))[3:4] == b"-":
        pass
    return l
def put(fd, data):
    while data:
        data = data[os.write(fd, data):]
assert reply(6).startswith(b"220 ")
put(7, b"EHLO client.test\r\n")
assert reply(6).startswith(b"250 ")
put(7, b"STARTTLS\r\n")
assert reply(6).startswith(b"220 ")
ctl = int(os.environ["SSLCTLFD"])
put(ctl, b"Y")
r, w = int(os.environ["SSLREADFD"]), int(os.environ["SSLWRITEFD"])
put(w, b"EHLO client.test\r\n")
answer = b""
while chunk := os.read(ctl, 4096):
    answer += chunk
os.close(ctl)
if answer:
    assert reply(r).startswith(b"250 ")
    put(w, b"VARS " + answer.hex().encode() + b"\r\n")
    assert reply(r).startswith(b"250 ")
    put(w, b"QUIT\r\n")
    assert reply(r).startswith(b"221 ")
os.close(w)
while os.read(r, 65536):
    pass
_, status = os.wait()
sys.exit(os.waitstatus_to_exitcode(status))
"""]


def peers() -> list[str]:
    return [f"ucspitlsd-{n}" for n in server_backends()]


def parse_y(answer: bytes) -> dict[str, str | None]:
    """The ``Y`` answer: NUL-terminated ``NAME=value`` or ``NAME``, ended by an empty string."""
    assert answer.endswith(b"\0\0"), f"Y answer not ended by an empty string: {answer!r}"
    out: dict[str, str | None] = {}
    for item in answer[:-2].decode("utf-8", "surrogateescape").split("\0"):
        name, eq, value = item.partition("=")
        assert name in NAMES and name not in out, f"Y answer item {item!r}: {answer!r}"
        out[name] = value if eq else None
    assert tuple(out) == NAMES, f"Y answer names {tuple(out)}, want {NAMES}"
    return out


def _readline(sock: socket.socket) -> bytes:
    """One cleartext line, one byte at a time: the bytes after it may be TLS."""
    line = b""
    while not line.endswith(b"\n"):
        c = sock.recv(1)
        assert c, f"connection closed in cleartext after {line!r}"
        line += c
    return line


def _reply(sock: socket.socket) -> list[bytes]:
    lines = [_readline(sock)]
    while lines[-1][3:4] == b"-":
        lines.append(_readline(sock))
    return lines


def _cleartext(port: int, ehlo: bytes) -> socket.socket:
    """Connect, read the greeting, EHLO; the STARTTLS capability must be announced."""
    sock = socket.create_connection(("127.0.0.1", port), TIMEOUT)
    greeting = _reply(sock)
    assert greeting == [b"220 conformance ESMTP\r\n"], f"greeting {greeting!r}"
    sock.sendall(b"EHLO " + ehlo + b"\r\n")
    caps = _reply(sock)
    assert caps[-1] == b"250 STARTTLS\r\n", f"EHLO answer {caps!r}"
    return sock


def _starttls(server: str, pipelined: bool) -> Callable[[Backend], str]:
    """Cleartext SMTP, STARTTLS, then the client session on the same socket.

    ``pipelined``: the ClientHello leaves with the STARTTLS command, so it is
    in ucspitlsd's socket before prog has even answered: the engine must find
    it there, unread by prog.
    """

    def run(backend: Backend) -> str:
        peer = TlsdPeer(server, "ECDSA", prog=SMTPD_PROG, command=UCSPITLSD)
        try:
            sock = _cleartext(peer.port, b"client.test")
            config = client_config(handshake_pki(), server_name=HOST)
            session = backend.client_context(config, lambda msg: None).session()
            if pipelined:
                assert not session.do_handshake(), "handshake done before any input"
                sock.sendall(b"STARTTLS\r\n" + session.data_to_send())
            else:
                sock.sendall(b"STARTTLS\r\n")
            ready = _reply(sock)
            assert ready == [b"220 ready\r\n"], f"STARTTLS answer {ready!r}"
            link = Link(session, sock)
            link.handshake()
            banner = link.read_until(lambda d: d.endswith(b"\n"))
            assert banner == b"220 tls ready\r\n", f"first bytes through the tunnel: {banner!r}"
            link.send(b"VARS\r\n")
            got = link.read_until(lambda d: d.endswith(b"\n"))
            y = parse_y(bytes.fromhex(got[4:].strip().decode()))
            f = link.s.facts()
            want = {"SSL_PROTOCOL": f.protocol, "SSL_CIPHER": f.cipher,
                    "SSL_TLS_SNI_SERVERNAME": HOST, "SSL_PEER_CERT_HASH": None,
                    "SSL_PEER_CERT_SUBJECT": None}
            assert y == want, f"Y answer {y}, the client negotiated {want}"
            link.send(b"QUIT\r\n")
            bye = link.read_until(lambda d: d.endswith(b"\n"))
            assert bye == b"221 bye\r\n", f"QUIT answer {bye!r}"
            link.s.close_notify()
            link.flush()
            link.read_until(lambda d: False)  # ucspitlsd's close_notify, or EOF
            link.close()
            rc, err = peer.wait()
            assert "Traceback" not in err, f"ucspitlsd crashed: {err[-400:]!r}"
            assert rc == 0, f"ucspitlsd's prog (the engine's code) {rc}: {err.strip()[-300:]!r}"
            return f"{f.protocol} {f.cipher}"
        finally:
            peer.stop()

    return run


def _declined(server: str) -> Callable[[Backend], None]:
    """prog refuses STARTTLS: the connection stays in cleartext, the engine exits 0."""

    def run(backend: Backend) -> None:
        peer = TlsdPeer(server, "ECDSA", prog=SMTPD_PROG, command=UCSPITLSD)
        try:
            with _cleartext(peer.port, b"decline.test") as sock:
                sock.sendall(b"STARTTLS\r\n")
                assert _reply(sock) == [b"454 TLS not available\r\n"]
                sock.sendall(b"NOOP\r\nQUIT\r\n")
                got = _reply(sock) + _reply(sock)
                assert got == [b"250 clear NOOP\r\n", b"221 bye\r\n"], f"cleartext {got!r}"
            rc, err = peer.wait()
            assert rc == 0 and "Traceback" not in err, f"ucspitlsd exited {rc}: {err[-300:]!r}"
        finally:
            peer.stop()

    return run


def _ucspitlsc(backend: Backend) -> str:
    """The backend inside ``ucspitlsc``, against a stdlib ``ssl`` STARTTLS server."""
    seen: dict[str, object] = {}

    def handler(conn: socket.socket, peer: PyPeer) -> None:
        conn.sendall(b"220 conformance ESMTP\r\n")
        for verb in (b"EHLO", b"STARTTLS"):
            line = _readline(conn)
            assert line.upper().startswith(verb), f"cleartext: {line!r}, want {verb!r}"
            conn.sendall(b"250-conformance\r\n250 STARTTLS\r\n" if verb == b"EHLO"
                         else b"220 go ahead\r\n")
        ctx = _server_context()
        ctx.sni_callback = lambda obj, name, _: seen.update(sni=name)  # type: ignore[assignment]
        with ctx.wrap_socket(conn, server_side=True) as tls:
            seen.update(protocol=tls.version(), cipher=tls.cipher()[0])
            rfile = tls.makefile("rb")
            lines = []
            while line := rfile.readline():
                lines.append(line)
                if line.startswith(b"VARS "):
                    seen["y"] = bytes.fromhex(line[5:].strip().decode())
                tls.sendall(b"221 bye\r\n" if line.startswith(b"QUIT") else b"250 ok\r\n")
                if line.startswith(b"QUIT"):
                    break
            seen["lines"] = lines
            rfile.close()
            tls.unwrap()

    srv = PyPeer(handler)
    f = _files()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8",
           "CAFILE": str(f["root"])}
    sock = socket.create_connection(("127.0.0.1", srv.port), TIMEOUT)
    sock.setblocking(True)
    try:
        proc = subprocess.run(
            [*ON_6_7, str(sock.fileno()), *UCSPITLSC, "--backend", backend.name, "-k", HOST,
             "--", *SMTP_CLIENT_PROG],
            pass_fds=(sock.fileno(),), env=env, stdin=subprocess.DEVNULL,
            capture_output=True, timeout=TIMEOUT * 2)
    finally:
        sock.close()
        srv.stop()
    err = proc.stderr.decode("utf-8", "replace")
    assert "Traceback" not in err, f"ucspitlsc crashed: {err[-400:]!r}"
    assert proc.returncode == 0, f"ucspitlsc's prog (the engine's code) {proc.returncode}: {err!r}"
    if srv.error is not None and not isinstance(srv.error, (ssl.SSLError, OSError)):
        raise srv.error
    assert seen.get("lines", [b""])[0] == b"EHLO client.test\r\n", f"tunnel: {seen}"
    y = parse_y(seen["y"])  # type: ignore[arg-type]
    assert (y["SSL_PROTOCOL"], y["SSL_CIPHER"], y["SSL_TLS_SNI_SERVERNAME"]) == (
        seen["protocol"], seen["cipher"], seen["sni"]), f"Y answer {y}, server saw {seen}"
    pki = handshake_pki()
    assert y["SSL_PEER_CERT_SUBJECT"] == pki.ecdsa.cert.subject.rfc4514_string(), y
    return f"{y['SSL_PROTOCOL']} {y['SSL_CIPHER']}"


def starttls_scenarios(server: str) -> tuple[LiveScenario, ...]:
    """The battery for peer ``ucspitlsd-<server>``."""
    p = f"ucspitlsd-{server}"
    v13 = {"tls_versions": "TLSv1.3"}
    return (
        LiveScenario(f"{p}/starttls-Y", p, _starttls(server, False), dict(v13), dict(v13)),
        LiveScenario(f"{p}/starttls-clienthello-with-the-command", p,
                     _starttls(server, True), dict(v13), dict(v13)),
        LiveScenario(f"{p}/starttls-declined", p, _declined(server), {}, {}),
    )


PYTHON_SCENARIOS = (LiveScenario("python-ssl/ucspitlsc-starttls-Y", "python-ssl", _ucspitlsc),)


def scenarios() -> tuple[LiveScenario, ...]:
    """Every STARTTLS scenario: each ucspitlsd peer's, and ucspitlsc's."""
    return (*PYTHON_SCENARIOS, *(s for n in server_backends() for s in starttls_scenarios(n)))


def run_starttls(backends: Sequence[Backend]) -> list:
    """Every client backend through ucspitlsc, and against every ``ucspitlsd-<server>``."""
    from .harness import run_scenarios
    from .tlsdpeers import run_server_peers

    cells = run_scenarios(backends, PYTHON_SCENARIOS, "python-ssl")
    return cells + run_server_peers(backends, starttls_scenarios, "ucspitlsd")
