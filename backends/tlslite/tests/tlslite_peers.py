"""pyOpenSSL peers for the tlslite session tests: contexts and a memory-BIO end.

A uniquely named module (not ``conftest``) so that test files can import it
while other backends' test directories have conftests of their own.
"""

from __future__ import annotations

import tempfile
from typing import Any

import pytest
from OpenSSL import SSL
from tlsc.session import Truncated, WriteClosed
from tlsc.testing.certs import Issued

VERSIONS = {"1.2": SSL.TLS1_2_VERSION, "1.3": SSL.TLS1_3_VERSION}

#: Key types as the tests name them -> key kinds of ``tlsc.testing.certs``.
KEY_KINDS = {"rsa": "rsa2048", "ecdsa": "p256", "ed25519": "ed25519"}


def openssl_context(
    version: str | None,
    *,
    identity: tuple[Issued, Issued] | None = None,
    anchor: Issued | None = None,
    verify_mode: int = SSL.VERIFY_PEER,
) -> SSL.Context:
    """TLS 1.2+ (exactly ``version`` if given), presenting ``identity`` (leaf,
    intermediate) and verifying the peer against ``anchor`` with ``verify_mode``."""
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_min_proto_version(VERSIONS[version] if version else SSL.TLS1_2_VERSION)
    if version:
        ctx.set_max_proto_version(VERSIONS[version])
    if identity is not None:
        leaf, inter = identity
        ctx.use_certificate(leaf.cert)
        ctx.use_privatekey(leaf.key)
        ctx.add_extra_chain_cert(inter.cert)
    if anchor is not None:
        with tempfile.NamedTemporaryFile(suffix=".pem") as f:
            f.write(anchor.pem)
            f.flush()
            ctx.load_verify_locations(f.name)
        ctx.set_verify(verify_mode, lambda *a: a[-1])
    return ctx


class OpenSSLEnd:
    """A pyOpenSSL connection over memory BIOs, driven like a ``tlsc.session.Session``."""

    def __init__(self, conn: SSL.Connection) -> None:
        self.conn = conn

    def receive_data(self, data: bytes) -> None:
        self.conn.bio_write(data)

    def data_to_send(self) -> bytes:
        out = b""
        while True:
            try:
                chunk = self.conn.bio_read(65536)
            except SSL.WantReadError:
                return out
            if not chunk:
                return out
            out += chunk

    def do_handshake(self) -> bool:
        try:
            self.conn.do_handshake()
        except SSL.WantReadError:
            return False
        return True

    def read(self, max_bytes: int) -> bytes | None:
        try:
            return self.conn.recv(max_bytes)
        except SSL.WantReadError:
            return None
        except SSL.ZeroReturnError:
            return b""

    def write(self, data: bytes) -> None:
        self.conn.sendall(data)

    def close_notify(self) -> None:
        self.conn.shutdown()


def pass_on(src: Any, dst: Any) -> None:
    """Everything ``src`` has for the network, to ``dst`` (never b"": that is EOF)."""
    data = src.data_to_send()
    if data:
        dst.receive_data(data)


# -- close scenarios, the same for our client and our server ------------------------------
#
# ``ours`` is a tlsc session of this backend, ``theirs`` its peer (an OpenSSLEnd or
# another session), both past the handshake.


def check_peer_close_notify(ours: Any, theirs: Any, *, tls13: bool) -> None:
    """The peer's last data then its close_notify: a clean end of its data.

    TLS 1.3 (RFC 8446 6.1): only the peer's direction ends; nothing is answered
    for us, we keep writing and the peer reads it, until our own close_notify.
    TLS 1.2: the connection is over; our close_notify answers it, no writing after.
    """
    theirs.write(b"last words")
    theirs.close_notify()
    pass_on(theirs, ours)
    assert ours.read(4) == b"last"
    assert ours.read(100) == b" words"
    assert ours.read(100) == b""
    assert ours.read(100) == b""
    if tls13:
        assert ours.data_to_send() == b"", "the peer's TLS 1.3 close_notify was answered"
        ours.write(b"still talking")
        pass_on(ours, theirs)
        assert theirs.read(100) == b"still talking"
        ours.close_notify()
    else:
        with pytest.raises(WriteClosed):
            ours.write(b"too late")
    pass_on(ours, theirs)
    assert theirs.read(100) == b""


def check_truncation(ours: Any, theirs: Any) -> None:
    """EOF without close_notify: the data first, then Truncated, again and again."""
    theirs.write(b"data")
    pass_on(theirs, ours)
    ours.receive_data(b"")
    assert ours.read(100) == b"data"
    with pytest.raises(Truncated):
        ours.read(100)
    with pytest.raises(Truncated):
        ours.read(100)


def check_our_close_notify(ours: Any, theirs: Any, *, half_close: bool) -> None:
    """Our close_notify (idempotent) ends our writing; ``half_close``: the peer,
    which must be able to (TLS 1.3 OpenSSL), still answers and we still read."""
    ours.write(b"request")
    ours.close_notify()
    ours.close_notify()
    with pytest.raises(WriteClosed):
        ours.write(b"more")
    pass_on(ours, theirs)
    assert theirs.read(100) == b"request"
    assert theirs.read(100) == b""
    if half_close:
        theirs.write(b"response")
        theirs.close_notify()
        pass_on(theirs, ours)
        assert ours.read(100) == b"response"
        assert ours.read(100) == b""
    assert ours.data_to_send() == b""  # no second close_notify after ours


def read_all(end: Any) -> bytes:
    """Everything ``end`` can give now (up to "needs input" or close_notify)."""
    out = b""
    while True:
        chunk = end.read(65536)
        if not chunk:  # None: needs input; b"": close_notify
            return out
        out += chunk


def check_data_both_ways(ours: Any, theirs: Any) -> None:
    """Bulk data each way, bigger than a record, then nothing more to read."""
    payload = bytes(range(256)) * 100
    ours.write(payload)
    pass_on(ours, theirs)
    assert read_all(theirs) == payload
    theirs.write(b"hello " * 5000)
    pass_on(theirs, ours)
    assert read_all(ours) == b"hello " * 5000
    assert ours.read(10) is None


def read_bytewise(ours: Any, data: bytes) -> bytes:
    """Feed ``data`` one byte at a time, reading 3 bytes at most each time."""
    got = b""
    for byte in data:
        ours.receive_data(bytes([byte]))
        chunk = ours.read(3)
        while chunk:
            got += chunk
            chunk = ours.read(3)
    return got
