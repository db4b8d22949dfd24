"""The byte pattern the benchmark moves: one pseudo-random 1 MiB block, repeated."""

from __future__ import annotations

import hashlib
import random

BLOCK_SIZE = 1 << 20
_block: bytes | None = None


def block() -> bytes:
    global _block
    if _block is None:
        _block = random.Random(0x715C).randbytes(BLOCK_SIZE)
    return _block


def digest(n: int) -> str:
    """sha256 hex of the first n bytes of the repeated pattern."""
    h = hashlib.sha256()
    data = block()
    while n > 0:
        chunk = data if n >= BLOCK_SIZE else data[:n]
        h.update(chunk)
        n -= len(chunk)
    return h.hexdigest()
