"""Privileges and descriptors: TLS_UID/TLS_GID, what prog inherits."""

from __future__ import annotations

import os
import shutil
import stat
import sys
from pathlib import Path

import pytest

from tests.support.run import wait_for_file

NOBODY = 65534
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (CI runs as root)")


def proc_status(pid: int) -> dict[str, str]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            out[key] = value.strip()
    return out


def prog_fds(report: dict) -> dict[str, str]:
    """prog's descriptors, minus the one listdir used (gone when readlink ran)."""
    return {k: v for k, v in report["fds"].items() if v != "?"}


def assert_no_network_descriptor(report: dict) -> None:
    fds = prog_fds(report)
    assert set(fds) == {"0", "1", "2", "6", "7"}, f"prog inherited extra descriptors: {fds}"
    assert fds["6"].startswith("pipe:") and fds["7"].startswith("pipe:"), fds
    assert not any(v.startswith("socket:") for v in fds.values()), fds


def test_prog_sees_no_network_descriptor(tlsc, pki, pypeer, probe):
    peer = pypeer(pki.leaf_ec)
    p = probe()
    r = tlsc.run(["-k", "localhost", *p.argv("fds")], peer=peer.address)
    r.assert_ok()
    assert_no_network_descriptor(p.report())


def test_prog_sees_no_tlsc_descriptor_with_client_cert(tlsc, pki, pypeer, probe):
    """Key files, pipes and selectors of tlsc's own are not inherited either."""
    peer = pypeer(pki.leaf_ec, client_ca=pki.client_ca.cert_pem, client_cert="required")
    p = probe()
    r = tlsc.run(["-y", "-k", "localhost", *p.argv("fds")], peer=peer.address,
                 env={"CERTFILE": pki.client.cert_pem, "KEYFILE": pki.client.key_pem,
                      "CADIR": pki.cadir_pem_spaces})
    r.assert_ok()
    assert_no_network_descriptor(p.report())
    assert peer.result()["client_cert_sha256"] == pki.client.sha256.split(":")[1]


@root_only
@pytest.mark.parametrize("client_cert", [False, True], ids=["no client cert", "client cert"])
def test_drops_privileges_but_prog_keeps_them(client_cert, tlsc, pki, pypeer, probe, tmp_path):
    """TLS_UID/TLS_GID: tlsc itself runs as 65534 with no supplementary groups while
    connected; prog keeps root; the files (readable by root only) were read first."""
    cafile = Path(pki.cafile)
    assert any(not d.stat().st_mode & stat.S_IXOTH for d in cafile.parents), (
        "the test PKI must be out of an unprivileged user's reach")
    opts = {}
    env = {"TLS_UID": str(NOBODY), "TLS_GID": str(NOBODY)}
    flags = []
    if client_cert:
        opts = {"client_ca": pki.client_ca.cert_pem, "client_cert": "required"}
        env.update(CERTFILE=pki.client.cert_pem, KEYFILE=pki.client.key_pem)
        flags = ["-y"]
    peer = pypeer(pki.leaf_ec, **opts)
    p = probe()
    ready, go = tmp_path / "ready", tmp_path / "go"
    proc = tlsc.start([*flags, "-k", "localhost",
                       *p.argv("ids", "fds", f"touch:{ready}", f"waitfile:{go}",
                               "write:done")],
                      peer=peer.address, env=env)
    try:
        assert wait_for_file(ready, 10, proc), "prog did not start"
        status = proc_status(proc.pid)
    finally:
        go.touch()
    r = proc.wait(15)
    r.assert_ok()
    assert status["Uid"].split() == [str(NOBODY)] * 4, status["Uid"]
    assert status["Gid"].split() == [str(NOBODY)] * 4, status["Gid"]
    assert status.get("Groups", "") == "", f"supplementary groups kept: {status['Groups']}"
    rep = p.report()
    assert rep["ids"]["ppid"] == proc.pid, "prog is not tlsc's child"
    assert rep["ids"]["uid"] == rep["ids"]["euid"] == 0, "prog lost root"
    assert rep["ids"]["gid"] == 0
    assert_no_network_descriptor(rep)
    assert peer.result()["received_head"] == "done"


@root_only
def test_uid_only(tlsc, pki, pypeer, probe, tmp_path):
    peer = pypeer(pki.leaf_ec)
    p = probe()
    ready, go = tmp_path / "ready", tmp_path / "go"
    proc = tlsc.start(["-k", "localhost", *p.argv(f"touch:{ready}", f"waitfile:{go}")],
                      peer=peer.address, env={"TLS_UID": str(NOBODY)})
    try:
        assert wait_for_file(ready, 10, proc), "prog did not start"
        status = proc_status(proc.pid)
    finally:
        go.touch()
    proc.wait(15).assert_ok()
    assert status["Uid"].split() == [str(NOBODY)] * 4, status["Uid"]


def usable_by_others(path: Path) -> bool:
    path = path.resolve()
    if path.stat().st_mode & 0o005 != 0o005:
        return False
    return all(d.stat().st_mode & stat.S_IXOTH for d in path.parents)


@pytest.fixture
def world_readable(tmp_path, pki):
    """A CA file and a work dir that an unprivileged user can use."""
    d = Path(os.environ.get("TMPDIR", "/tmp")) / f"tlsc-test-{os.getpid()}-{tmp_path.name}"
    d.mkdir(mode=0o777)
    os.chmod(d, 0o777)
    shutil.copy(pki.cafile, d / "ca.pem")
    os.chmod(d / "ca.pem", 0o644)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@root_only
def test_tls_uid_ignored_when_not_root(backend, pki, pypeer, world_readable):
    """Not root: TLS_UID/TLS_GID are ignored, even when not numeric."""
    from tests.support import run as runmod
    from tests.support.progs import Probe

    for path in (Path(sys.executable), Path(__file__)):
        if not usable_by_others(path):
            pytest.skip(f"{path.resolve()} cannot be used by an unprivileged user here")
    peer = pypeer(pki.leaf_ec)
    p = Probe(world_readable, "probe")
    r = runmod.run(["--backend", backend, "-k", "localhost", *p.argv("ids", "write:x")],
                   peer=peer.address, user=NOBODY, cwd="/",
                   env={"CAFILE": world_readable / "ca.pem", "TLS_UID": "not-a-number",
                        "TLS_GID": "nor-this"})
    r.assert_ok()
    assert p.report()["ids"]["uid"] == NOBODY
