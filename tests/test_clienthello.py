"""tlsc.clienthello: the SNI read from real ClientHellos, however they arrive."""

from __future__ import annotations

import ssl

from hypothesis import given, settings
from hypothesis import strategies as st

from tlsc.clienthello import LIMIT, ClientHello


def client_hello(server_name: str | None) -> bytes:
    """The first flight of Python's ssl (OpenSSL) client, SNI ``server_name``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=server_name)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def read(data: bytes, step: int | None = None) -> ClientHello:
    hello = ClientHello()
    step = step or len(data) or 1
    for i in range(0, len(data), step):
        hello.feed(data[i : i + step])
        if hello.done:
            break
    return hello


def test_the_name_is_read_lower_case():
    data = client_hello("Www.Example.ORG")
    hello = read(data)
    assert hello.done and hello.problem is None
    assert hello.server_name == "www.example.org"
    assert bytes(hello.data) == data


def test_no_sni():
    hello = read(client_hello(None))
    assert hello.done and hello.problem is None and hello.server_name is None


def test_one_byte_at_a_time_and_every_byte_kept():
    data = client_hello("a.example")
    hello = ClientHello()
    for i in range(len(data)):
        assert not hello.done
        hello.feed(data[i : i + 1])
    assert hello.done and hello.server_name == "a.example"
    hello.feed(b"more")
    assert bytes(hello.data) == data + b"more"


def _records(message: bytes, size: int) -> bytes:
    out = b""
    for i in range(0, len(message), size):
        part = message[i : i + size]
        out += bytes((22, 3, 1)) + len(part).to_bytes(2, "big") + part
    return out


def test_a_hello_split_over_several_records():
    data = client_hello("split.example")
    message = data[5:]
    hello = read(_records(message, 7))
    assert hello.done and hello.problem is None and hello.server_name == "split.example"


def test_garbage_and_eof_are_problems_not_names():
    for junk in (b"GET / HTTP/1.0\r\n\r\n", b"\x16\x02\x00\x00\x01x",
                 bytes((22, 3, 1, 0, 4, 2, 0, 0, 0))):
        hello = read(junk)
        assert hello.done and hello.problem and hello.server_name is None, junk
    hello = ClientHello()
    hello.feed(client_hello("x.example")[:20])
    hello.feed(b"")
    assert hello.done and hello.eof and hello.problem


def test_a_truncated_body_is_malformed():
    data = client_hello("t.example")
    message = bytearray(data[5:])
    # Claim the message ends just after the random: the session id is cut off.
    body = bytes(message[4 : 4 + 34])
    msg = bytes((1,)) + len(body).to_bytes(3, "big") + body
    hello = read(_records(msg, 500))
    assert hello.done and hello.problem == "malformed ClientHello"


def test_too_large():
    msg = bytes((1,)) + (LIMIT + 1).to_bytes(3, "big")
    hello = read(_records(msg, 100))
    assert hello.done and hello.problem == "the ClientHello is too large"


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=600), step=st.integers(min_value=1, max_value=64))
def test_never_raises_on_anything(data, step):
    hello = read(data, step)
    assert bytes(hello.data) == data[: len(hello.data)]


@settings(max_examples=200, deadline=None)
@given(pos=st.integers(min_value=0, max_value=10_000), bit=st.integers(0, 7))
def test_mutated_hellos_never_raise(pos, bit):
    data = bytearray(client_hello("m.example"))
    data[pos % len(data)] ^= 1 << bit
    hello = read(bytes(data), 13)  # must not raise, whatever the flipped bit hit
    assert bytes(hello.data) == bytes(data)[: len(hello.data)]


def test_the_message_reader_a_backend_uses_reads_the_same_name():
    """host_name_in (the stdlib backend's message callback) and ClientHello read one name.

    The callback sees the handshake message without its record header; the
    name comes raw (the backend keeps the client's case), and a message cut
    short, or not a ClientHello, has none.
    """
    from tlsc.clienthello import host_name_in

    for name in ("Www.Example.ORG", "a.example", None):
        data = client_hello(name)
        message = data[5 : 5 + int.from_bytes(data[3:5], "big")]
        raw = host_name_in(message)
        assert raw == (name.encode() if name else None)
        assert read(data).server_name == (name.lower() if name else None)
        for cut in (1, 4, 40, len(message) - 1):
            assert host_name_in(message[:cut]) is None
    data = client_hello("a.example")
    message = data[5 : 5 + int.from_bytes(data[3:5], "big")]
    assert host_name_in(message) == b"a.example"
    assert host_name_in(b"\x02" + message[1:]) is None  # a ServerHello's type
