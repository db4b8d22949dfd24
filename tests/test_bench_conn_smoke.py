"""Smoke test of bench/conn.py: a tiny run completes and reports every figure.

Asserts behaviour only (the run finishes, every contender asked for is
measured, the memory figures are there); never a rate or a size.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("tlsc_openssl")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONN = os.path.join(ROOT, "bench", "conn.py")

pytestmark = pytest.mark.skipif(
    shutil.which("openssl") is None or shutil.which("stunnel") is None,
    reason="bench/conn.py needs the openssl command and stunnel",
)


def run(*extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, CONN, "--rounds", "1", "--seconds", "1", "--mem-conns", "3", *extra],
        capture_output=True, text=True, timeout=300,
    )


def test_json_has_every_figure():
    p = run("--tools", "tlsserver-openssl", "stunnel", "--json")
    assert p.returncode == 0, p.stdout + p.stderr
    out = json.loads(p.stdout)
    assert not out["skipped"], out["skipped"]
    for tool in ("tlsserver-openssl", "stunnel"):
        t = out["tools"][tool]
        assert not t["errors"], t["errors"]
        assert t["serial_hs"]["n"] == 1 and t["serial_hs"]["median"] > 0
        assert t["parallel2_hs"]["n"] == 1 and t["parallel2_hs"]["median"] > 0
        mem = t["memory"]
        assert mem["total_mib"] > mem["idle_mib"] > 0, mem
        assert mem["processes"] >= 3 + 1  # the server and at least a prog per connection
    server = out["tools"]["tlsserver-openssl"]
    assert server["server_pss_mib_before"] > 0 and server["server_pss_mib_after"] > 0


def test_table():
    p = run("--tools", "tlsserver-openssl", "stunnel")
    assert p.returncode == 0, p.stdout + p.stderr
    lines = p.stdout.splitlines()
    assert "tlsserver-openssl" in next(ln for ln in lines if ln.startswith("figure"))
    for label in ("handshakes/s, 1 client", "handshakes/s, 2 clients", "PSS MiB per conn",
                  "server PSS before->after"):
        row = next(ln for ln in lines if ln.startswith(label))
        assert row[22:].strip() and "-" != row[22:].split()[0], row
    assert next(ln for ln in lines if ln.startswith("failed runs")).endswith("0")
