"""The fixtures themselves, checked with a stdlib ``ssl`` client (no tlsc involved).

If these fail, every end-to-end result is meaningless, so they run first.
"""

from __future__ import annotations

import socket
import ssl

import pytest
from cryptography import x509


def client_ctx(pki, tls: str | None = None, cafile=None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=str(cafile or pki.cafile))
    if tls == "1.2":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    elif tls == "1.3":
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    return ctx


@pytest.mark.parametrize("tls", ["1.2", "1.3"])
@pytest.mark.parametrize("leaf", ["leaf_rsa", "leaf_ec"])
def test_sserver_rev(pki, sserver, tls, leaf):
    srv = sserver(getattr(pki, leaf), tls=tls)
    ctx = client_ctx(pki, tls)
    with socket.create_connection(srv.address, 5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.settimeout(5)
            assert s.version() == f"TLSv{tls}"
            s.sendall(b"hello\n")
            assert s.recv(100) == b"olleh\n"


def test_pypeer_echo_and_close_notify(pki, pypeer):
    peer = pypeer(pki.leaf_ec, echo=True)
    ctx = client_ctx(pki)
    with socket.create_connection(peer.address, 5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.settimeout(5)
            s.sendall(b"ping\n")
            assert s.recv(100) == b"ping\n"
            s.unwrap()
    r = peer.result()
    assert r["client_close"] == "close_notify"
    assert r["sni"] == "localhost"
    assert r["received_head"] == "ping\n"


class MemClient:
    """A stdlib TLS client over memory BIOs: can half-close TCP without close_notify."""

    def __init__(self, ctx, address, server_hostname):
        self.raw = socket.create_connection(address, 5)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_hostname=server_hostname)
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.raw.sendall(self.out.read())
                self.inc.write(self.raw.recv(65536))
        self.raw.sendall(self.out.read())

    def send(self, data):
        self.obj.write(data)
        self.raw.sendall(self.out.read())

    def close_notify(self):
        try:
            self.obj.unwrap()
        except ssl.SSLWantReadError:
            pass
        self.raw.sendall(self.out.read())

    def read_all(self):
        data = b""
        while True:
            try:
                chunk = self.obj.read(65536)
            except ssl.SSLWantReadError:
                raw = self.raw.recv(65536)
                if not raw:
                    return data
                self.inc.write(raw)
                continue
            except ssl.SSLZeroReturnError:
                return data
            if not chunk:  # close_notify
                return data
            data += chunk


def test_pypeer_bare_eof_then_reply(pki, pypeer):
    peer = pypeer(pki.leaf_rsa, tls="1.2", reply_after_close="got {received} via {close}\n")
    ctx = client_ctx(pki, "1.2")
    c = MemClient(ctx, peer.address, "localhost")
    c.send(b"abc")
    c.raw.shutdown(socket.SHUT_WR)
    assert c.read_all() == b"got 3 via eof\n"
    c.raw.close()
    r = peer.result()
    assert r["client_close"] == "eof"
    assert r["sni"] == "localhost"


def test_pypeer_reply_after_close_notify_tls13(pki, pypeer):
    """The peer accepts TLS 1.3 half-close: our close_notify, then its reply."""
    peer = pypeer(pki.leaf_rsa, tls="1.3", reply_after_close="got {received} via {close}\n")
    c = MemClient(client_ctx(pki, "1.3"), peer.address, "localhost")
    c.send(b"abcd")
    c.close_notify()
    c.raw.shutdown(socket.SHUT_WR)
    assert c.read_all() == b"got 4 via close_notify\n"
    c.raw.close()
    r = peer.result()
    assert r["tcp_eof_after_close_notify"] is True
    assert r["client_close"] == "close_notify"


def test_pypeer_sends_then_eof_without_close_notify(pki, pypeer):
    peer = pypeer(pki.leaf_ec, send_bytes=100000, no_wait_client_close=True, close="eof")
    c = MemClient(client_ctx(pki), peer.address, "localhost")
    data = c.read_all()
    assert len(data) == 100000
    c.raw.close()
    r = peer.result()
    assert r["sent"] == 100000
    assert r["client_close"] == "eof"


def test_pypeer_client_cert_required(pki, pypeer):
    peer = pypeer(pki.leaf_ec, client_ca=pki.client_ca.cert_pem, client_cert="optional")
    ctx = client_ctx(pki)
    ctx.load_cert_chain(pki.client.cert_pem, pki.client.key_pem)
    with socket.create_connection(peer.address, 5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.settimeout(5)
            s.sendall(b"x")
            s.unwrap()
    r = peer.result()
    assert r["client_cert_sha256"] == pki.client.sha256.split(":")[1]


def test_pki_is_what_the_tests_claim(pki):
    """Independent sanity checks of the certificates the verification tests rely on."""
    assert pki.expired.cert.not_valid_after_utc < pki.leaf_rsa.cert.not_valid_before_utc.now(
        pki.leaf_rsa.cert.not_valid_before_utc.tzinfo)
    bc = pki.non_ca_issuer.cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.value.ca is False
    assert pki.sha1.cert.signature_hash_algorithm.name == "sha1"
    assert pki.rsa1024.cert.public_key().key_size == 1024
    assert "\n" in pki.injection.subject
    names = list(pki.cadir_der_unicode.iterdir())
    assert any(" " in n.name and "." not in n.name for n in names)
