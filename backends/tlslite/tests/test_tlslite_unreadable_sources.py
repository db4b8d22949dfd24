"""A handshake must not need to read Python source files.

Under TLS_UID tlsc drops privileges before the handshake, and the sources of a
root-only installation (a venv under /root, a 0700 .tox) are then unreadable.
tlslite-ng's deprecation wrapper on its AES class read the caller's source on
every construction and crashed with TypeError there ("prog did not start" in
tests/test_privileges.py under tox).  Here the unreadable sources are what
inspect gets to see: no lines.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("OpenSSL")  # the peer of tlsc.testing.memory

SCRIPT = textwrap.dedent(
    """\
    import linecache
    linecache.getlines = lambda *args, **kwargs: []  # every source unreadable
    import tlsc_tlslite
    from tlsc.testing.memory import Pair, handshake_pki
    pki = handshake_pki()
    for version in ("TLSv1.3", "TLSv1.2"):
        pair = Pair(tlsc_tlslite.backend, [pki.ecdsa, pki.inter], version=version)
        pair.handshake()
        pair.server_send(b"ping")
        assert pair.client_read() == b"ping"
        print(pair.client.facts().protocol)
    """
)


def test_handshake_reads_no_source_file():
    p = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["TLSv1.3", "TLSv1.2"]
