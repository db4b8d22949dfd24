"""The relay's Outbox: chunks leave by writev, in order, whatever the kernel takes."""

from __future__ import annotations

import fcntl
import os
import random

import pytest

from tlsc.engine import IOV_MAX, Outbox

F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


@pytest.fixture
def pipe():
    r, w = os.pipe()
    os.set_blocking(w, False)
    yield r, w
    os.close(r)
    os.close(w)


def _drain(r: int, most: int) -> bytes:
    os.set_blocking(r, False)
    try:
        return os.read(r, most)
    except BlockingIOError:
        return b""


def test_partial_writes_keep_order_and_count(pipe):
    r, w = pipe
    fcntl.fcntl(w, F_SETPIPE_SZ, 4096)  # the kernel takes little at a time
    rng = random.Random(7)
    box = Outbox()
    sent = bytearray()
    for i in range(300):
        chunk = bytes([i % 251]) * rng.randint(1, 9000)
        box.append(chunk)
        sent += chunk
    got = bytearray()
    partial = 0
    while box:
        before = box.size
        try:
            box.write_to(w)
        except BlockingIOError:
            pass
        written = before - box.size
        if box.chunks and isinstance(box.chunks[0], memoryview):
            partial += 1  # a chunk was cut in the middle
        assert box.size == sum(len(c) for c in box.chunks)
        got += _drain(r, rng.randint(1, 5000))
        assert written >= 0
    got += _drain(r, 1 << 20)
    assert bytes(got) == bytes(sent)
    assert partial > 0, "the test never cut a chunk: it proves nothing"


def test_more_chunks_than_one_writev_takes(pipe):
    r, w = pipe
    box = Outbox()
    for i in range(3 * IOV_MAX + 5):
        box.append(bytes([i % 256]))
    box.write_to(w)
    assert box.size == 2 * IOV_MAX + 5  # one writev, IOV_MAX chunks
    while box:
        box.write_to(w)
    assert _drain(r, 1 << 20) == bytes(i % 256 for i in range(3 * IOV_MAX + 5))


def test_clear_and_truth(pipe):
    box = Outbox()
    assert not box and len(box) == 0
    box.append(b"abc")
    assert box and len(box) == 3
    box.clear()
    assert not box and box.chunks == []
