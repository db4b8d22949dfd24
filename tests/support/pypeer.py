#!/usr/bin/env python3
"""A scriptable TLS server for the tlsc tests, built on the stdlib ``ssl`` module.

Run as a separate process (so that a hung peer can always be killed), it
listens on 127.0.0.1, prints ``READY <port>``, serves exactly one connection
and prints ``RESULT <json>`` describing what it saw, then exits.

The TLS engine is an :class:`ssl.SSLObject` over memory BIOs and the socket
is driven by hand, which lets the peer tell apart a client close_notify from a
bare TCP EOF, keep writing after either, send raw garbage, reset the connection,
or stall without handshaking.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import select
import socket
import ssl
import struct
import sys
import time

CHUNK = 65536
HIGH_WATER = 1 << 20


class Peer:
    def __init__(self, sock: socket.socket, args, result: dict):
        self.sock = sock
        self.sock.setblocking(False)
        self.args = args
        self.r = result
        self.rawin = bytearray()
        self.wbuf = bytearray()
        self.tcp_eof = False
        self.obj: ssl.SSLObject | None = None
        self.inc = ssl.MemoryBIO()
        self.outb = ssl.MemoryBIO()
        self.recv_hash = hashlib.sha256()
        self.sent_hash = hashlib.sha256()
        self.echo_backlog = bytearray()
        self.we_closed = False
        r = self.r
        r.update(received=0, received_head="", sent=0, client_close=None,
                 tcp_eof_after_close_notify=None, received_after_our_close=0,
                 received_after_our_close_head="")
        self.deadline = time.monotonic() + args.timeout

    # -- raw socket -------------------------------------------------------------
    def left(self) -> float:
        t = self.deadline - time.monotonic()
        if t <= 0:
            raise TimeoutError("peer timeout")
        return t

    def collect(self) -> None:
        if self.obj is not None:
            self.wbuf += self.outb.read()

    def io(self, timeout: float = 0.2, want_read: bool = True) -> None:
        self.collect()
        rl = [self.sock] if want_read and not self.tcp_eof else []
        wl = [self.sock] if self.wbuf else []
        if not rl and not wl:
            time.sleep(min(timeout, 0.01))
            return
        rr, ww, _ = select.select(rl, wl, [], min(timeout, self.left()))
        if ww:
            try:
                n = self.sock.send(self.wbuf)
                del self.wbuf[:n]
            except (BlockingIOError, InterruptedError):
                pass
        if rr:
            try:
                data = self.sock.recv(CHUNK)
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionResetError:
                self.r["reset_by_client"] = True
                data = b""
            if data:
                self.rawin += data
            else:
                self.tcp_eof = True

    def flush(self, limit: float = 5.0) -> None:
        end = time.monotonic() + limit
        self.collect()
        while self.wbuf and time.monotonic() < end:
            self.io(0.2, want_read=False)
            self.collect()

    # -- TLS ----------------------------------------------------------------------
    def feed(self) -> None:
        if self.rawin:
            self.inc.write(bytes(self.rawin))
            self.rawin.clear()

    def read_app(self) -> bytes:
        """Decrypt whatever has arrived; note close_notify and bare EOF."""
        self.feed()
        out = bytearray()
        while self.r["client_close"] is None:
            try:
                data = self.obj.read(CHUNK)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                self.r["client_close"] = "close_notify"
                break
            if not data:
                self.r["client_close"] = "close_notify"
                break
            out += data
        if self.tcp_eof and self.r["client_close"] is None and not self.rawin:
            self.r["client_close"] = "eof"
        if out:
            self.account(bytes(out))
        return bytes(out)

    def account(self, data: bytes) -> None:
        r = self.r
        if self.we_closed:
            r["received_after_our_close"] += len(data)
            if len(r["received_after_our_close_head"]) < 4096:
                r["received_after_our_close_head"] += data[:4096].decode("latin-1")
        r["received"] += len(data)
        self.recv_hash.update(data)
        if len(r["received_head"]) < 4096:
            r["received_head"] += data[: 4096 - len(r["received_head"])].decode("latin-1")
        if self.args.echo and not self.we_closed:
            self.echo_backlog += data

    def write_app(self, data: bytes) -> None:
        self.obj.write(data)
        self.sent_hash.update(data)
        self.r["sent"] += len(data)
        self.collect()

    def pump(self) -> None:
        """One round of I/O and processing, honouring the echo backlog."""
        if self.echo_backlog and len(self.wbuf) < HIGH_WATER:
            data = bytes(self.echo_backlog[:CHUNK])
            del self.echo_backlog[:CHUNK]
            self.write_app(data)
        self.io(0.2, want_read=len(self.wbuf) < HIGH_WATER and len(self.echo_backlog) < HIGH_WATER)
        if self.obj is not None and self.r["client_close"] is None:
            self.read_app()

    def handshake(self, ctx: ssl.SSLContext) -> bool:
        self.obj = ctx.wrap_bio(self.inc, self.outb, server_side=True)
        while True:
            self.feed()
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                if self.tcp_eof:
                    self.r["error"] = "client closed during handshake"
                    return False
                self.io(0.2)
            except (ssl.SSLError, OSError) as e:
                self.r["error"] = f"handshake: {e}"
                self.flush(1.0)
                return False
        self.r["version"] = self.obj.version()
        self.r["cipher"] = self.obj.cipher()[0]
        der = self.obj.getpeercert(binary_form=True)
        self.r["client_cert_sha256"] = hashlib.sha256(der).hexdigest() if der else None
        self.flush(2.0)
        return True

    # -- phases ---------------------------------------------------------------------
    def wait_client_close(self) -> None:
        while self.r["client_close"] is None:
            self.pump()
        while self.echo_backlog:
            self.pump()

    def send_phase(self) -> None:
        a = self.args
        if a.delay:
            end = time.monotonic() + a.delay
            while time.monotonic() < end:
                self.pump()
        if a.send_text:
            self.write_app(a.send_text.encode())
        remaining = a.send_bytes
        while remaining > 0:
            if len(self.wbuf) < HIGH_WATER:
                chunk = os.urandom(min(CHUNK, remaining))
                remaining -= len(chunk)
                self.write_app(chunk)
            self.pump()
        self.flush(a.timeout)

    def close_phase(self) -> None:
        a = self.args
        while self.echo_backlog and self.r["client_close"] is None:
            self.pump()
        self.flush(a.timeout)
        if a.close == "rst":
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.sock.close()
            return
        if a.close == "notify":
            # Only with nothing left to decrypt: SSL_shutdown may otherwise eat records.
            self.read_app()
            try:
                self.obj.unwrap()
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as e:
                self.r["unwrap_error"] = str(e)
            self.we_closed = True
            self.flush(5.0)
        elif a.close == "garbage":
            self.wbuf += bytes.fromhex(a.garbage)
            self.flush(5.0)
        elif a.close == "eof":
            self.we_closed = True
        if a.close == "none":
            return
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        # Drain: the client may go on writing after our end (TLS 1.3, TCP half-close).
        end = time.monotonic() + a.drain
        while not self.tcp_eof and time.monotonic() < end:
            self.io(0.1)
            if self.obj is not None and self.r["client_close"] is None:
                self.read_app()
        if self.obj is not None and self.r["client_close"] is None:
            self.read_app()


def make_context(a) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if a.seclevel0:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    if a.ciphers:
        ctx.set_ciphers(a.ciphers)
    if a.tls == "1.2":
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    elif a.tls == "1.3":
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(a.cert, a.key)
    if a.client_cert != "none":
        ctx.load_verify_locations(cafile=a.client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED if a.client_cert == "required" else ssl.CERT_OPTIONAL
    return ctx


def serve(a, result: dict) -> None:
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(4)
    ctx = make_context(a) if a.mode == "tls" else None
    if ctx is not None:
        def sni_cb(obj, server_name, c):
            result["sni_seen"] = True
            result["sni"] = server_name
            return None

        ctx.sni_callback = sni_cb
    print(f"READY {lsock.getsockname()[1]}", flush=True)
    lsock.settimeout(a.timeout)
    conn, _ = lsock.accept()
    lsock.close()
    peer = Peer(conn, a, result)
    result["sni"] = None
    try:
        if a.mode == "stall":
            # Accept, never answer; report how the client gave up.
            while not peer.tcp_eof:
                peer.io(0.2)
                peer.rawin.clear()
            result["client_gave_up_after"] = round(a.timeout - peer.left(), 3)
            return
        if a.mode in ("garbage", "hangup"):
            while not peer.rawin and not peer.tcp_eof:
                peer.io(0.2)
            result["client_hello_bytes"] = len(peer.rawin)
            if a.mode == "garbage":
                peer.wbuf += bytes.fromhex(a.garbage)
                peer.flush(5.0)
            conn.shutdown(socket.SHUT_WR)
            end = time.monotonic() + a.drain
            while not peer.tcp_eof and time.monotonic() < end:
                peer.io(0.1)
            return
        if not peer.handshake(ctx):
            return
        peer.send_phase()
        if a.reply_after_close is not None:
            while result["client_close"] is None:
                peer.pump()
            if result["client_close"] == "close_notify":
                end = time.monotonic() + 3.0
                while not peer.tcp_eof and time.monotonic() < end:
                    peer.io(0.1)
                result["tcp_eof_after_close_notify"] = peer.tcp_eof
            reply = a.reply_after_close.format(
                received=result["received"], sha256=peer.recv_hash.hexdigest(),
                close=result["client_close"])
            peer.write_app(reply.encode())
            peer.flush(5.0)
        elif a.wait_client_close:
            peer.wait_client_close()
        peer.close_phase()
    except TimeoutError:
        result["error"] = "peer timeout"
    except (ssl.SSLError, OSError) as e:
        result["error"] = f"{type(e).__name__}: {e}"
    finally:
        result["received_sha256"] = peer.recv_hash.hexdigest()
        result["sent_sha256"] = peer.sent_hash.hexdigest()
        try:
            conn.close()
        except OSError:
            pass


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--mode", choices=["tls", "stall", "garbage", "hangup"], default="tls")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--tls", choices=["1.2", "1.3", "any"], default="any")
    p.add_argument("--ciphers")
    p.add_argument("--seclevel0", action="store_true")
    p.add_argument("--client-ca")
    p.add_argument("--client-cert", choices=["none", "optional", "required"], default="none")
    p.add_argument("--delay", type=float, default=0.0)
    p.add_argument("--send-text", default="")
    p.add_argument("--send-bytes", type=int, default=0)
    p.add_argument("--echo", action="store_true")
    p.add_argument("--reply-after-close")
    p.add_argument("--no-wait-client-close", dest="wait_client_close", action="store_false")
    p.add_argument("--close", choices=["notify", "eof", "rst", "garbage", "none"],
                   default="notify")
    p.add_argument("--garbage", default="")
    p.add_argument("--drain", type=float, default=5.0)
    p.add_argument("--timeout", type=float, default=25.0)
    a = p.parse_args(argv)
    result: dict = {}
    try:
        serve(a, result)
    except Exception as e:  # report, never hang the test
        result["error"] = f"{type(e).__name__}: {e}"
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
