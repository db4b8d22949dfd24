"""Record real server flights into the seed corpus (``python -m tests.fuzz.record``).

Each backend's client session handshakes with an in-memory pyOpenSSL server
(TLS 1.2 and 1.3, RSA and ECDSA leaf); every chunk of bytes the server emits
after a client flight is one *flight*.  After the handshake the server sends
``hello`` and a close_notify: one last flight.  A seed file holds the flights
of one handshake, each as a 4-byte big-endian length and its bytes.

The certificates are made here, valid from 2020 to 2099, under a root saved
as ``anchor.der``; the fuzz target uses either ``verify=False`` or that anchor
with the name ``fuzz.example``.  A replayed flight never completes a handshake
(the transcript is another client's), so the outcome never depends on the
certificate dates anyway.  Keys are fresh on every run: the seeds change when
regenerated, which is fine, the corpus is a starting point, not an oracle.
"""

from __future__ import annotations

import datetime as dt
import struct
import sys
from pathlib import Path

CORPUS = Path(__file__).with_name("corpus")
HOST = "fuzz.example"
NOT_BEFORE = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
NOT_AFTER = dt.datetime(2099, 1, 1, tzinfo=dt.timezone.utc)


def pack(flights: list[bytes]) -> bytes:
    return b"".join(struct.pack("!I", len(f)) + f for f in flights)


def unpack(data: bytes) -> list[bytes]:
    out = []
    i = 0
    while i + 4 <= len(data):
        (n,) = struct.unpack_from("!I", data, i)
        out.append(data[i + 4:i + 4 + n])
        i += 4 + n
    return out


def load_corpus(directory: Path = CORPUS) -> dict[str, list[bytes]]:
    return {p.stem: unpack(p.read_bytes()) for p in sorted(directory.glob("*.bin"))}


def anchor(directory: Path = CORPUS) -> bytes:
    return (directory / "anchor.der").read_bytes()


def make_pki():
    from tlsc.testing.certs import issue

    span = {"not_before": NOT_BEFORE, "not_after": NOT_AFTER}
    root = issue("tlsc fuzz root", key_kind="p256", slot=41, ca=True, **span)
    rsa = issue(HOST, key_kind="rsa2048", slot=42, issuer=root, dns=(HOST,), **span)
    ecdsa = issue(HOST, key_kind="p256", slot=43, issuer=root, dns=(HOST,), **span)
    return root, rsa, ecdsa


def server(leaf, version: str):
    from OpenSSL import SSL

    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    v = {"TLSv1.2": SSL.TLS1_2_VERSION, "TLSv1.3": SSL.TLS1_3_VERSION}[version]
    ctx.set_min_proto_version(v)
    ctx.set_max_proto_version(v)
    ctx.set_options(SSL.OP_NO_TICKET)  # keep TLS 1.3 flights small: no NewSessionTicket
    ctx.use_certificate(leaf.cert)
    ctx.use_privatekey(leaf.key)
    conn = SSL.Connection(ctx, None)
    conn.set_accept_state()
    return conn


def _bio_drain(conn) -> bytes:
    from OpenSSL import SSL

    out = b""
    while True:
        try:
            out += conn.bio_read(65536)
        except SSL.WantReadError:
            return out


def record(backend, leaf, root, version: str) -> list[bytes]:
    """The server's flights of one complete handshake with ``backend``'s client."""
    from OpenSSL import SSL

    from tlsc.session import ClientConfig

    cfg = ClientConfig(anchors=(("fuzz-root", root.der),), server_name=HOST)
    client = backend.client_context(cfg, lambda m: None).session()
    srv = server(leaf, version)
    flights: list[bytes] = []
    done = False
    for _ in range(20):
        done = client.do_handshake()
        out = client.data_to_send()
        if out:
            srv.bio_write(out)
        try:
            srv.do_handshake()
        except SSL.WantReadError:
            pass
        back = _bio_drain(srv)
        if back:
            flights.append(back)
            client.receive_data(back)
        if done:
            break
    if not done:
        raise RuntimeError(f"{backend.name} {version}: no handshake")
    srv.sendall(b"hello")
    srv.shutdown()
    flights.append(_bio_drain(srv))
    return flights


def _hrr() -> bytes:
    """A HelloRetryRequest asking for secp256r1, with a 32-byte session id to echo."""
    magic = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")
    exts = bytes.fromhex("002b00020304" "003300020017")
    body = b"\x03\x03" + magic + b"\x20" + bytes(32) + b"\x13\x01\x00"
    body += len(exts).to_bytes(2, "big") + exts
    msg = b"\x02" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x03" + len(msg).to_bytes(2, "big") + msg


def main(argv: list[str]) -> int:
    from tests.fuzz.target import backends

    CORPUS.mkdir(exist_ok=True)
    for old in CORPUS.glob("*.bin"):
        old.unlink()
    root, rsa, ecdsa = make_pki()
    (CORPUS / "anchor.der").write_bytes(root.der)
    total = len(root.der)
    for name, backend in backends().items():
        for version in ("TLSv1.2", "TLSv1.3"):
            for kind, leaf in (("rsa", rsa), ("ecdsa", ecdsa)):
                flights = record(backend, leaf, root, version)
                path = CORPUS / f"{name}-{version[3:].replace('.', '')}-{kind}.bin"
                data = pack(flights)
                path.write_bytes(data)
                total += len(data)
                print(f"{path.name}: {len(flights)} flights, {len(data)} bytes")
    # Hand-made seeds: an alert, application data before any handshake, SSLv2-ish bytes.
    synthetic = {
        "synthetic-alert": [bytes.fromhex("15030300020228")],
        "synthetic-appdata-first": [bytes.fromhex("1703030010") + bytes(16)],
        "synthetic-hrr": [_hrr()],
    }
    for stem, flights in synthetic.items():
        data = pack(flights)
        (CORPUS / f"{stem}.bin").write_bytes(data)
        total += len(data)
    print(f"corpus: {total} bytes in {CORPUS}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
