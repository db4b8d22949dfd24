"""Smoke test of bench/run.py: a tiny run completes and prints every figure.

Asserts behaviour only (the run finishes, bytes are verified, the table is
complete for tlsc-openssl); never timings.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys

import pytest

from tlsc.testing import certs

# The benchmark's figures are for the openssl backend; an environment without it
# (tox's tlslite envs) has nothing to measure here.
pytest.importorskip("tlsc_openssl")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = os.path.join(ROOT, "bench", "run.py")
TINY = [
    "--size",
    "1",
    "--rounds",
    "1",
    "--idle",
    "0.5",
    "--latency-samples",
    "2",
    "--floor-samples",
    "2",
    "--rss-small",
    "0.5",
]

pytestmark = pytest.mark.skipif(
    shutil.which("openssl") is None, reason="bench needs the openssl command"
)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> str:
    """A small CA bundle standing in for the system trust store (which CI may lack)."""
    now = dt.datetime.now(dt.timezone.utc)
    path = tmp_path_factory.mktemp("bench") / "bundle.pem"
    path.write_bytes(
        b"".join(
            certs.issue(f"bench bundle CA {i}", ca=True, not_before=now - certs.DAY,
                        not_after=now + certs.DAY).pem
            for i in range(3)
        )
    )
    return str(path)


def run(bundle: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, RUN, *TINY, "--ca-bundle", bundle, *extra],
        capture_output=True, text=True, timeout=180,
    )


def test_table_has_every_figure_for_tlsc_openssl(bundle):
    p = run(bundle, "--tools", "tlsc-openssl", "--baseline", "tlsc-openssl")
    assert p.returncode == 0, p.stdout + p.stderr
    lines = p.stdout.splitlines()
    header = next(ln for ln in lines if ln.startswith("figure"))
    assert "tlsc-openssl" in header
    for label in (
        "download MiB/s",
        "upload MiB/s",
        "CPU s/GiB download",
        "CPU s/GiB upload",
        "peak RSS MiB (small)",
        "peak RSS MiB (size)",
        "setup ms",
        "setup ms, CA bundle",
        "idle CPU ms",
    ):
        row = next(ln for ln in lines if ln.startswith(label + " "))
        assert row[22:].strip() not in ("", "-"), row
    paired = next(ln for ln in lines if ln.startswith(f"CA bundle ({bundle} "))
    assert "4 anchors" in paired and "tlsc-openssl " in paired, paired
    verified = next(ln for ln in lines if ln.startswith("bytes verified"))
    assert int(verified.split()[-1]) == 4  # 2 timed + 2 small transfers
    failed = next(ln for ln in lines if ln.startswith("failed runs"))
    assert int(failed.split()[-1]) == 0
    assert "TLS_AES_128_GCM_SHA256" in next(ln for ln in lines if ln.startswith("cipher"))
    assert "floor python -c 'import tlsc_openssl'" in p.stdout
    tunnel = next(ln for ln in lines if ln.startswith("floor tunnel ("))
    assert " = " in tunnel and "x tlsc-openssl" in tunnel and "tlsc-openssl " in tunnel, tunnel


def test_json_output(bundle):
    p = run(
        bundle,
        "--tools", "tlsc-openssl", "--baseline", "tlsc-openssl", "--json", "--latency-samples", "1"
    )
    assert p.returncode == 0, p.stdout + p.stderr
    out = json.loads(p.stdout)
    t = out["tools"]["tlsc-openssl"]
    assert t["failed"] == 0 and t["bytes_verified"] == 4
    for key in (
        "download_mibs",
        "upload_mibs",
        "cpu_s_per_gib_download",
        "cpu_s_per_gib_upload",
        "setup_ms",
        "setup_bundle_ms",
        "setup_bundle_over_one_ms",
        "idle_cpu_ms",
    ):
        assert t[key] is not None and t[key]["n"] >= 1, key
    assert t["peak_rss_mib_small"] > 0 and t["peak_rss_mib_big"] > 0
    assert out["floors"]["tlsc_openssl"]["ok"]
    assert out["floor_tunnel_setup_ms"]["n"] == 1
    assert t["setup_over_tunnel_ms"]["n"] == 1


def test_shares_charges_samples_to_the_innermost_python_frame(tmp_path):
    raw = tmp_path / "profile.raw"
    raw.write_text(
        "<module> (tlsc:6);Engine._step (tlsc/engine.py:365);poll (libc.so.6) 3\n"
        "<module> (tlsc:6);Engine._pump (tlsc/engine.py:404);"
        "OpenSSLSession.read (tlsc_openssl/session.py:104);"
        "Connection.recv (OpenSSL/SSL.py:2358);ossl_aes_gcm (_rust.abi3.so) 4\n"
        "<module> (tlsc:6);Engine._pump (tlsc/engine.py:404);"
        "OpenSSLSession.data_to_send (tlsc_openssl/session.py:157) 1\n"
        "<module> (tlsc:6);_find_and_load (<frozen importlib._bootstrap>:1176) 2\n"
    )
    p = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bench", "shares.py"), str(raw)],
        capture_output=True, text=True, timeout=60,
    )
    assert p.returncode == 0, p.stderr
    got = {ln[:14].strip(): ln[14:].strip() for ln in p.stdout.splitlines()}
    assert got == {
        "TLS library": "40.0%",
        "backend glue": "10.0%",
        "tlsc core": "30.0%",
        "startup": "20.0%",
        "other": "0.0%",
        "samples": "10",
    }
