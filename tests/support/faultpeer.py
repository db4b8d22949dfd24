#!/usr/bin/env python3
"""A misbehaving TLS server for tests/test_faults.py (stdlib ``ssl``, own process).

Listens on 127.0.0.1, prints ``READY <port>``, serves one connection, prints
``HANDSHAKE <version>`` once the handshake is done (not in rst-handshake mode)
and ``RESULT <json>`` at the end.  Modes:

    rst-handshake  read the ClientHello, then reset the connection (SO_LINGER 0)
    rst-mid        handshake, send --text, read one line from the client
                   (reported), then reset the connection
    noread         handshake, then never read again (the test kills us)
    flood          handshake, then send random bytes as fast as the client takes
                   them, printing ``SENT <n>`` every 0.1 s, until the connection
                   fails or closes
    sink           handshake, send --text, wait --read-delay seconds, then read
                   everything until the client's close_notify or EOF; reports bytes,
                   sha256, and how the stream ended
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import ssl
import struct
import sys
import threading
import time


def rst(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--mode", required=True,
                   choices=["rst-handshake", "rst-mid", "noread", "flood", "sink"])
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--tls", choices=["1.2", "1.3", "any"], default="any")
    p.add_argument("--text", default="")
    p.add_argument("--rcvbuf", type=int, default=0)
    p.add_argument("--read-delay", type=float, default=0.0)
    p.add_argument("--timeout", type=float, default=30.0)
    a = p.parse_args()
    result: dict = {}
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    if a.rcvbuf:
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, a.rcvbuf)
    lsock.listen(1)
    print(f"READY {lsock.getsockname()[1]}", flush=True)
    lsock.settimeout(a.timeout)
    raw, _ = lsock.accept()
    lsock.close()
    raw.settimeout(a.timeout)
    try:
        if a.mode == "rst-handshake":
            result["hello_bytes"] = len(raw.recv(65536))
            rst(raw)
            return 0
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        if a.tls != "any":
            v = ssl.TLSVersion.TLSv1_2 if a.tls == "1.2" else ssl.TLSVersion.TLSv1_3
            ctx.minimum_version = ctx.maximum_version = v
        ctx.load_cert_chain(a.cert, a.key)
        tls = ctx.wrap_socket(raw, server_side=True, suppress_ragged_eofs=False)
        print(f"HANDSHAKE {tls.version()}", flush=True)
        if a.text:
            tls.sendall(a.text.encode())
        if a.mode == "rst-mid":
            line = b""
            while not line.endswith(b"\n"):
                c = tls.recv(1)
                if not c:
                    break
                line += c
            result["line"] = line.decode("latin-1")
            rst(tls)  # wrap_socket() detached raw
        elif a.mode == "noread":
            time.sleep(a.timeout)
        elif a.mode == "flood":
            sent = [0]
            stop = threading.Event()

            def report() -> None:
                while not stop.wait(0.1):
                    print(f"SENT {sent[0]}", flush=True)

            threading.Thread(target=report, daemon=True).start()
            chunk = os.urandom(16384)
            try:
                while True:
                    n = tls.send(chunk)
                    sent[0] += n
            except (OSError, ssl.SSLError) as e:
                result["send_error"] = f"{type(e).__name__}: {e}"
            stop.set()
            result["sent"] = sent[0]
        elif a.mode == "sink":
            time.sleep(a.read_delay)
            h = hashlib.sha256()
            n = 0
            try:
                while True:
                    data = tls.recv(65536)
                    if not data:
                        result["close"] = "close_notify_or_eof"
                        break
                    n += len(data)
                    h.update(data)
            except (OSError, ssl.SSLError) as e:
                result["recv_error"] = f"{type(e).__name__}: {e}"
            result["received"] = n
            result["sha256"] = h.hexdigest()
    except Exception as e:  # noqa: BLE001 - report, never hang the test
        result["error"] = f"{type(e).__name__}: {e}"
    finally:
        print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
