"""A UCSPI-TLS prog speaking a little SMTP, either side (tests/test_starttls.py).

    python starttls_prog.py server|client

Run under ``ucspitlsd`` (server: the connection on stdin/stdout) or ``ucspitlsc``
(client: the connection on fds 6/7).  The cleartext part is read one byte at a
time, so that nothing after a line is ever taken from the connection.
Environment:

* ``ST_CMD``: what to write on SSLCTLFD at the switch: ``y``, ``Y``, ``decline``
  (close it, go on in cleartext) or any other text (written as it is);
* ``ST_EARLY``: ``1``: write the first bytes for the tunnel at once after the
  command, before the handshake can have finished (client: EHLO; server: a
  banner line);
* ``ST_PAYLOAD``: bytes of the NOOP line the client sends through the tunnel;
* ``ST_REPORT``: a JSON file written at the end: what was seen, the
  ``Y`` answer, and the engine's exit code (the engine is our child).
"""

import json
import os
import sys

ROLE = sys.argv[1]
NET_R, NET_W = (0, 1) if ROLE == "server" else (6, 7)
CMD = os.environ.get("ST_CMD", "y")
EARLY = os.environ.get("ST_EARLY") == "1"
PAYLOAD = int(os.environ.get("ST_PAYLOAD", "1000"))
report: dict = {"seen": [], "clear": [], "env": {
    k: os.environ.get(k) for k in ("CAFILE", "KEYFILE", "CERTFILE", "KEYFILE:localhost")}}


def readline_unbuffered(fd: int) -> bytes:
    line = b""
    while not line.endswith(b"\n"):
        c = os.read(fd, 1)
        if not c:
            break
        line += c
    return line


def write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def finish(code: int = 0) -> None:
    """Reap the engine (our only child) and write the report."""
    _, status = os.wait()
    report["engine"] = os.waitstatus_to_exitcode(status)
    with open(os.environ["ST_REPORT"], "w") as f:
        json.dump(report, f)
    sys.exit(code)


def command() -> bool:
    """Send ST_CMD; True when a TLS tunnel is expected."""
    ctl = int(os.environ["SSLCTLFD"])
    if CMD == "decline":
        os.close(ctl)
        return False
    write(ctl, CMD.encode())
    if CMD == "Y":
        answer = b""
        while chunk := os.read(ctl, 4096):
            answer += chunk
        report["Y"] = answer.decode("utf-8", "surrogateescape")
    os.close(ctl)
    return CMD in ("y", "Y")


def tunnel() -> tuple:
    rfile = os.fdopen(int(os.environ["SSLREADFD"]), "rb", buffering=0)
    return rfile, int(os.environ["SSLWRITEFD"])


def drain(rfile) -> bytes:
    rest = b""
    while chunk := rfile.read(65536):
        rest += chunk
    return rest


def server() -> None:
    write(NET_W, b"220 starttls.test ESMTP\r\n")
    while True:
        line = readline_unbuffered(NET_R)
        report["clear"].append(line.decode("latin-1"))
        verb = line.strip().upper()
        if not line:
            finish(3)
        if verb.startswith((b"EHLO", b"HELO")):
            write(NET_W, b"250-starttls.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
        elif verb == b"STARTTLS":
            break
        elif verb == b"QUIT":
            write(NET_W, b"221 bye\r\n")
            finish()
        else:
            write(NET_W, b"250 clear " + line.strip() + b"\r\n")
    if CMD == "decline":
        write(NET_W, b"454 4.7.0 TLS not available\r\n")
        command()
        server_clear()
        return
    write(NET_W, b"220 2.0.0 Ready to start TLS\r\n")
    if not command():
        rfile, _ = tunnel()
        report["tunnel_rest"] = drain(rfile).decode("latin-1")
        finish()
    rfile, w = tunnel()
    if EARLY:
        write(w, b"220 tls banner, written before the handshake\r\n")
    while line := rfile.readline():
        report["seen"].append(line.decode("latin-1"))
        verb = line.strip().upper()
        if verb.startswith(b"EHLO"):
            write(w, b"250-starttls.test over tls\r\n250 AUTH PLAIN\r\n")
        elif verb == b"QUIT":
            write(w, b"221 bye\r\n")
            break
        elif verb == b"DATA":
            write(w, b"354 end with .\r\n")
            message = b""
            while (data := rfile.readline()) not in (b".\r\n", b""):
                message += data
            report["message"] = message.decode("latin-1")
            write(w, b"250 queued\r\n")
        else:
            write(w, b"250 " + line.strip() + b"\r\n")
    os.close(w)
    report["tunnel_rest"] = drain(rfile).decode("latin-1")
    finish()


def server_clear() -> None:
    """TLS declined: the connection is ours alone, in cleartext."""
    while line := readline_unbuffered(NET_R):
        report["clear"].append(line.decode("latin-1"))
        if line.strip().upper() == b"QUIT":
            write(NET_W, b"221 bye\r\n")
            break
        write(NET_W, b"250 clear " + line.strip() + b"\r\n")
    finish()


def read_reply(fd_or_file) -> list[str]:
    """One SMTP reply (its last line has a space after the code)."""
    lines = []
    while True:
        if isinstance(fd_or_file, int):
            line = readline_unbuffered(fd_or_file)
        else:
            line = fd_or_file.readline()
        if not line:
            lines.append("<EOF>")
            return lines
        lines.append(line.decode("latin-1"))
        if line[3:4] != b"-":
            return lines


def client() -> None:
    report["clear"] += read_reply(NET_R)
    write(NET_W, b"EHLO client.test\r\n")
    report["clear"] += read_reply(NET_R)
    if CMD == "decline":
        command()
        write(NET_W, b"NOOP still cleartext\r\n")
        report["clear"] += read_reply(NET_R)
        write(NET_W, b"QUIT\r\n")
        report["clear"] += read_reply(NET_R)
        finish()
    write(NET_W, b"STARTTLS\r\n")
    report["clear"] += read_reply(NET_R)
    tls = command()
    rfile, w = tunnel()
    payload = b"NOOP " + b"x" * PAYLOAD + b"\r\n"
    try:
        if EARLY or not tls:
            write(w, b"EHLO client.test\r\n")
        if tls:
            report["banner"] = read_reply(rfile) if EARLY else []
            if not EARLY:
                write(w, b"EHLO client.test\r\n")
            report["seen"] += read_reply(rfile)
            write(w, payload)
            echo = read_reply(rfile)
            report["payload_ok"] = echo == ["250 " + payload.decode().strip() + "\r\n"]
            write(w, b"QUIT\r\n")
            report["seen"] += read_reply(rfile)
    except BrokenPipeError:
        report["broken_pipe"] = True
    os.close(w)
    report["tunnel_rest"] = drain(rfile).decode("latin-1")
    finish()


server() if ROLE == "server" else client()
