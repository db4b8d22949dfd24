"""The relay keeps its chunk-sized buffers on the heap (tlsc.engine.raise_malloc_thresholds).

Without it, glibc serves every block of 128 KiB or more (one read of CHUNK)
with a fresh mmap and trims the heap's top after each round: page faults on
every chunk, a third of the stdlib backend's upload CPU in bench/run.py.
mallinfo2 tells how many bytes live in mmapped blocks, so the test sees the
allocator's decision itself, not a timing.
"""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from tlsc.engine import CHUNK

pytestmark = pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="the thresholds are glibc's"
)

PROBE = """
import ctypes, sys

class Mallinfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
        "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Mallinfo2
if sys.argv[1] == "primed":
    from tlsc.engine import raise_malloc_thresholds
    raise_malloc_thresholds()
before = libc.mallinfo2().hblkhd
block = b"x" * int(sys.argv[2])
during = libc.mallinfo2().hblkhd
print(during - before)
"""


#: Bigger than any one block of the relay's (a read of CHUNK, a session's output).
BLOCK = 3 * CHUNK // 2


def mmapped_bytes_for_a_block(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode, str(BLOCK)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(out)


def test_a_block_is_mmapped_by_default() -> None:
    """The premise: unprimed, glibc mmaps such a block (else the next test proves nothing)."""
    assert mmapped_bytes_for_a_block("plain") > 0


def test_a_block_stays_on_the_heap_once_primed() -> None:
    assert mmapped_bytes_for_a_block("primed") == 0
