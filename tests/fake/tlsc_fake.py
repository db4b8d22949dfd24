"""A fake TLS backend: the session interface's semantics without the crypto.

Honest for everything the core does (handshake progress, records, close_notify
versus EOF, alerts, write-after-close rules), useless as security.  Putting
this directory on PYTHONPATH registers it as backend ``fake`` through its
dist-info, exactly the way a real backend is found.  Some of its errors carry a reason
code (:mod:`tlsc.reasons`), others a plain string, as a backend written
before the reason table would: the core must word both.

Wire format, shared with :class:`FakeServer` in the tests:
  client -> "HELLO <sni or ->\\n";  server -> "OK <protocol> <cipher>\\n"
  records: one type byte, 4-byte big-endian length, payload;
  types: D data, C close_notify, A fatal alert (payload = reason).
"""

from __future__ import annotations

import os
import struct

from tlsc.reasons import Reason, alert_name
from tlsc.session import (
    AlertReceived,
    BackendInfo,
    Capabilities,
    ClientConfig,
    Facts,
    ProtocolError,
    Truncated,
    VerificationError,
    WriteClosed,
)

HEADER = struct.Struct(">cI")
MAX_RECORD = 16384


def record(kind: bytes, payload: bytes = b"") -> bytes:
    return HEADER.pack(kind, len(payload)) + payload


class FakeSession:
    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self.inbuf = bytearray()
        self.out = bytearray()
        self.eof = False
        self.hello_sent = False
        self.done = False
        self.protocol = ""
        self.cipher = ""
        self.sent_close = False
        self.peer_closed = False
        # TLSC_FAKE_NO_HALF_CLOSE=1 behaves like a backend that cannot write
        # after the peer's close_notify.
        self.half_close = os.environ.get("TLSC_FAKE_NO_HALF_CLOSE") != "1"

    def receive_data(self, data: bytes) -> None:
        if data:
            self.inbuf += data
        else:
            self.eof = True

    def data_to_send(self) -> bytes:
        out = bytes(self.out)
        self.out.clear()
        return out

    def do_handshake(self) -> bool:
        if self.done:
            return True
        if not self.hello_sent:
            self.out += f"HELLO {self.config.sni or '-'}\n".encode()
            self.hello_sent = True
        nl = self.inbuf.find(b"\n")
        if nl < 0:
            if self.eof:
                raise Truncated("EOF during the handshake")
            if len(self.inbuf) > 200:
                raise ProtocolError("garbage instead of a server hello")
            return False
        line = bytes(self.inbuf[:nl]).decode("ascii", "replace").split()
        del self.inbuf[: nl + 1]
        if len(line) == 2 and line[0] == "BADCERT":
            self.out += record(b"A", b"bad_certificate")
            if line[1] == "expired":
                raise VerificationError(Reason.EXPIRED)
            raise VerificationError(Reason.INVALID_CERTIFICATE, line[1])
        if len(line) != 3 or line[0] != "OK":
            raise ProtocolError("garbage instead of a server hello")
        self.protocol, self.cipher = line[1], line[2]
        self.done = True
        return True

    def read(self, max_bytes: int) -> bytes | None:
        if len(self.inbuf) < HEADER.size:
            if self.eof:
                if self.inbuf:
                    raise ProtocolError("EOF inside a record header")
                raise Truncated("EOF without close_notify")
            return None
        kind, length = HEADER.unpack_from(self.inbuf)
        if length > MAX_RECORD or kind not in (b"D", b"C", b"A"):
            raise ProtocolError("bad record")
        if len(self.inbuf) < HEADER.size + length:
            if self.eof:
                raise ProtocolError("EOF inside a record")
            return None
        payload = bytes(self.inbuf[HEADER.size : HEADER.size + length])
        if kind == b"D" and length > max_bytes:
            # hand out part of the record, keep the rest framed
            del self.inbuf[HEADER.size : HEADER.size + max_bytes]
            self.inbuf[: HEADER.size] = HEADER.pack(b"D", length - max_bytes)
            return payload[:max_bytes]
        del self.inbuf[: HEADER.size + length]
        if kind == b"C":
            self.peer_closed = True
            return b""
        if kind == b"A":
            raise AlertReceived(Reason.ALERT, alert_name(payload.decode("ascii", "replace")))
        return payload

    def write(self, data: bytes) -> None:
        if self.sent_close or (self.peer_closed and not self.half_close):
            raise WriteClosed("session closed for writing")
        for i in range(0, len(data), MAX_RECORD):
            self.out += record(b"D", data[i : i + MAX_RECORD])

    def close_notify(self) -> None:
        if not self.sent_close:
            self.sent_close = True
            self.out += record(b"C")

    def facts(self) -> Facts:
        return Facts(self.protocol, self.cipher, None, self.config.sni)


class FakeContext:
    def __init__(self, config: ClientConfig) -> None:
        self.config = config

    def session(self) -> FakeSession:
        return FakeSession(self.config)


class FakeBackend:
    name = "fake"

    def info(self) -> BackendInfo:
        return BackendInfo(
            "fake", "0.1", "none", "0", Capabilities(tls_versions=("TLSv1.2", "TLSv1.3"))
        )

    def client_context(self, config: ClientConfig, warn) -> FakeContext:  # noqa: ANN001
        return FakeContext(config)


backend = FakeBackend()
