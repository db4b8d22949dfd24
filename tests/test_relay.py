"""The relay: bulk data, close semantics, timeouts, garbage, signals."""

from __future__ import annotations

import fcntl
import hashlib
import os
import signal
import time
from importlib.metadata import entry_points

import pytest

from tests.support.progs import marker_prog
from tests.support.run import wait_for_file
from tlsc.child import PIPE_SIZE

MiB = 1 << 20


def bulk_size(backend: str) -> int:
    """64 MiB each way for backends built on a C library; pure-Python tlslite moves
    well under 1 MB/s, so it gets 1 MiB (TLSC_TEST_BULK_MIB overrides both)."""
    if "TLSC_TEST_BULK_MIB" in os.environ:
        return int(float(os.environ["TLSC_TEST_BULK_MIB"]) * MiB)
    return 64 * MiB if backend == "openssl" else 1 * MiB


def small_size(backend: str) -> int:
    return 8 * MiB if backend == "openssl" else 256 * 1024


def capabilities(backend: str):
    (ep,) = [e for e in entry_points(group="tlsc.backends") if e.name == backend]
    obj = ep.load()
    obj = obj() if isinstance(obj, type) else obj
    return obj.info().capabilities


@pytest.fixture
def datafile(tmp_path, backend):
    path = tmp_path / "data.bin"
    path.write_bytes(os.urandom(small_size(backend)))
    return path


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- bulk -----------------------------------------------------------------------------------

@pytest.mark.parametrize("tls", ["1.3", "1.2"])
def test_bulk_both_ways_at_once(tls, backend, tlsc, pki, pypeer, probe):
    n = bulk_size(backend)
    # Generous limits: pure-Python tlslite on a loaded machine can need more than the
    # peer's default 25 s, and a peer that gives up closes with data unread (EPIPE: 111).
    peer = pypeer(pki.leaf_ec, tls=tls, send_bytes=n, timeout=150)
    p = probe()
    r = tlsc.run(["-k", "localhost", *p.argv(f"bulk:{n}")], peer=peer.address, timeout=180)
    r.assert_ok()
    res = peer.result()
    bulk = p.report()["bulk"]
    assert res.get("error") is None, res
    assert res["received"] == n
    assert res["received_sha256"] == bulk["sent_sha256"], "client->server stream corrupted"
    assert bulk["received"] == n
    assert bulk["received_sha256"] == res["sent_sha256"], "server->client stream corrupted"


def test_echo_full_duplex(backend, tlsc, pki, pypeer, probe, datafile):
    """The server echoes while prog is still sending: both pipes have to keep moving."""
    peer = pypeer(pki.leaf_rsa, echo=True)
    p = probe()
    r = tlsc.run(["-k", "localhost", *p.argv(f"sendfile:{datafile}", "closew", "readall")],
                 peer=peer.address, timeout=60)
    r.assert_ok()
    assert p.report()["read"]["sha256"] == sha(datafile)
    assert peer.result()["received"] == datafile.stat().st_size


@pytest.mark.parametrize("close", [[], ["-S"]], ids=["-s", "-S"])
@pytest.mark.parametrize("tls", ["1.3", "1.2"])
def test_prog_exits_right_after_writing_nothing_lost(tls, close, tlsc, pki, pypeer, probe,
                                                     datafile):
    """prog writes and exits at once (no explicit close): tlsc still delivers it all."""
    peer = pypeer(pki.leaf_ec, tls=tls)
    p = probe()
    r = tlsc.run([*close, "-k", "localhost", *p.argv(f"sendfile:{datafile}", "exit:0")],
                 peer=peer.address, timeout=60)
    r.assert_ok()
    res = peer.result()
    assert res["received"] == datafile.stat().st_size
    assert res["received_sha256"] == sha(datafile)
    assert res["client_close"] == ("close_notify" if close or tls == "1.3" else "eof")


def test_slow_reader_memory_stays_bounded(backend, tlsc, pki, pypeer, probe, tmp_path):
    """The server pushes a lot while prog does not read: tlsc must stop reading the
    network instead of buffering it all (flow control: memory stays bounded)."""
    n = 48 * MiB if backend == "openssl" else 2 * MiB
    peer = pypeer(pki.leaf_ec, send_bytes=n, no_wait_client_close=True)
    p = probe()
    proc, go = start_held(tlsc, peer, p, tmp_path, "readall")
    try:
        time.sleep(0.3)
        before = rss_kib(proc.pid)
        time.sleep(2.0)
        after = rss_kib(proc.pid)
    finally:
        go.touch()
    r = proc.wait(60)
    r.assert_ok()
    assert p.report()["read"]["bytes"] == n
    assert p.report()["read"]["sha256"] == peer.result()["sent_sha256"]
    assert after - before < 16 * 1024, f"tlsc grew by {after - before} KiB with a stalled reader"


def start_held(tlsc, peer, p, tmp_path, *then: str):
    """tlsc with a prog that reads nothing until ``go`` exists, then does ``then``.

    Returns ``(proc, go)`` once prog runs; the caller touches ``go``.
    """
    ready, go = tmp_path / "ready", tmp_path / "go"
    proc = tlsc.start(["-k", "localhost", *p.argv(f"touch:{ready}", f"waitfile:{go}", *then)],
                      peer=peer.address)
    if not wait_for_file(ready, 10, proc):
        go.touch()
        raise AssertionError("prog did not start")
    return proc, go


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


# -- prog's EOF: -s (half-close) and -S (close_notify, end) ------------------------------------

REPLY = "got {received} {sha256} via {close}\n"


def expected_reply(data: bytes, close: str) -> str:
    return f"got {len(data)} {hashlib.sha256(data).hexdigest()} via {close}\n"


@pytest.mark.parametrize("flags", [[], ["-s"], ["--no-close-notify"], ["-S", "-s"]],
                         ids=["default", "-s", "--no-close-notify", "-S -s"])
def test_half_close_tls13_reply_still_arrives(flags, tlsc, pki, pypeer, probe):
    """TLS 1.3 -s: close_notify (a half-close), TCP half-close, and the server's reply,
    sent only after it saw our end, still reaches prog."""
    peer = pypeer(pki.leaf_rsa, tls="1.3", reply_after_close=REPLY)
    p = probe()
    r = tlsc.run([*flags, "-k", "localhost", *p.argv("write:request 1.3", "closew", "readall")],
                 peer=peer.address)
    r.assert_ok()
    res = peer.result()
    assert res["client_close"] == "close_notify"
    assert res["tcp_eof_after_close_notify"] is True, "TCP was not half-closed"
    assert p.report()["read"]["head"] == expected_reply(b"request 1.3", "close_notify")


@pytest.mark.parametrize("flags", [[], ["-s"], ["-S", "-s"]], ids=["default", "-s", "-S -s"])
def test_half_close_tls12_reply_still_arrives(flags, tlsc, pki, pypeer, probe):
    """TLS 1.2 -s: a bare TCP half-close (no close_notify), and the reply still arrives."""
    peer = pypeer(pki.leaf_rsa, tls="1.2", reply_after_close=REPLY)
    p = probe()
    r = tlsc.run([*flags, "-k", "localhost", *p.argv("write:request 1.2", "closew", "readall")],
                 peer=peer.address)
    r.assert_ok()
    assert peer.result()["client_close"] == "eof"
    assert p.report()["read"]["head"] == expected_reply(b"request 1.2", "eof")


def test_half_close_after_a_large_request(backend, tlsc, pki, pypeer, probe, datafile):
    peer = pypeer(pki.leaf_ec, tls="1.3", reply_after_close=REPLY)
    p = probe()
    r = tlsc.run(["-k", "localhost", *p.argv(f"sendfile:{datafile}", "closew", "readall")],
                 peer=peer.address, timeout=60)
    r.assert_ok()
    assert p.report()["read"]["head"] == expected_reply(datafile.read_bytes(), "close_notify")


@pytest.mark.parametrize("flags", [["-S"], ["-s", "-S"], ["--close-notify"]],
                         ids=["-S", "-s -S", "--close-notify"])
@pytest.mark.parametrize("tls", ["1.3", "1.2"])
def test_S_sends_close_notify_and_ends_the_session(flags, tls, tlsc, pki, pypeer, probe):
    """-S: the server sees close_notify (TLS 1.2 too); what it sends afterwards is
    discarded and prog's fd 6 gets EOF at once."""
    peer = pypeer(pki.leaf_rsa, tls=tls, reply_after_close="too late\n")
    p = probe()
    r = tlsc.run([*flags, "-k", "localhost", *p.argv("write:bye", "closew", "readall")],
                 peer=peer.address)
    r.assert_ok()
    res = peer.result()
    assert res["client_close"] == "close_notify"
    assert res["received_head"] == "bye"
    assert p.report()["read"]["bytes"] == 0, p.report()["read"]


# -- the server's end: -J / -j, close_notify, writing after the peer's end ----------------------

@pytest.mark.parametrize("tls", ["1.3", "1.2"])
@pytest.mark.parametrize("flags", [["-J"], ["--enforce-close-notify"], ["-j", "-J"]],
                         ids=["-J", "--enforce-close-notify", "-j -J"])
def test_J_truncation_is_fatal(flags, tls, tlsc, pki, pypeer, probe):
    peer = pypeer(pki.leaf_ec, tls=tls, send_text="data\n", no_wait_client_close=True,
                  close="eof")
    p = probe()
    r = tlsc.run([*flags, "-k", "localhost", *p.argv("readall", "exit:0")], peer=peer.address)
    r.assert_fatal(98, r"trunc|close_notify|close notify|EOF", strict=False)
    assert p.report()["read"]["head"] == "data\n", "data before the truncation was lost"


@pytest.mark.parametrize("tls", ["1.3", "1.2"])
@pytest.mark.parametrize("flags", [[], ["-j"], ["-J", "-j"], ["--no-enforce-close-notify"]],
                         ids=["default", "-j", "-J -j", "--no-enforce-close-notify"])
def test_j_eof_is_a_normal_end(flags, tls, tlsc, pki, pypeer, probe):
    peer = pypeer(pki.leaf_ec, tls=tls, send_text="data\n", no_wait_client_close=True,
                  close="eof")
    p = probe()
    r = tlsc.run([*flags, "-k", "localhost", *p.argv("readall", "exit:5")], peer=peer.address)
    r.assert_ok(5)
    assert p.report()["read"]["head"] == "data\n"


@pytest.mark.parametrize("tls", ["1.3", "1.2"])
def test_J_with_close_notify_is_clean(tls, tlsc, pki, pypeer, probe):
    peer = pypeer(pki.leaf_ec, tls=tls, send_text="data\n", no_wait_client_close=True,
                  close="notify")
    p = probe()
    r = tlsc.run(["-J", "-k", "localhost", *p.argv("readall")], peer=peer.address)
    r.assert_ok()
    assert p.report()["read"]["head"] == "data\n"


def test_write_after_server_close_notify_tls13(backend, tlsc, pki, pypeer, probe):
    """TLS 1.3: after the server's close_notify prog gets EOF and may still write, and
    what it writes arrives: every backend we ship can (one that could not
    would be a defect, not a capability)."""
    peer = pypeer(pki.leaf_ec, tls="1.3", send_text="bye\n", no_wait_client_close=True,
                  close="notify")
    p = probe()
    r = tlsc.run(["-k", "localhost", *p.argv("readall", "write:after\\n", "exit:0")],
                 peer=peer.address)
    r.assert_ok()
    assert p.report()["read"]["head"] == "bye\n"
    res = peer.result()
    assert capabilities(backend).write_after_close_notify
    assert res["received_after_our_close_head"] == "after\n", res


@pytest.mark.parametrize("tls,our_end", [("1.2", "eof"), ("1.3", "close_notify")])
def test_write_after_server_fin(tls, our_end, tlsc, pki, pypeer, probe):
    """A bare FIN from the server (-j) ends only its direction: prog gets EOF, and what
    it writes afterwards still reaches the server, followed by our usual -s end
    (TLS 1.2: a bare half-close; TLS 1.3: close_notify)."""
    peer = pypeer(pki.leaf_ec, tls=tls, send_text="bye\n", no_wait_client_close=True,
                  close="eof")
    p = probe()
    r = tlsc.run(["-k", "localhost", *p.argv("readall", "write:after\\n", "exit:0")],
                 peer=peer.address)
    r.assert_ok()
    assert p.report()["read"]["head"] == "bye\n"
    res = peer.result()
    assert res["received_after_our_close_head"] == "after\n", res
    assert res["client_close"] == our_end, res


# -- handshake timeout ------------------------------------------------------------------------

@pytest.mark.parametrize("flags", [["-K", "500"], ["--handshake-timeout=500"],
                                   ["-K", "0", "-K", "500"]],
                         ids=["-K 500", "--handshake-timeout=500", "-K 0 -K 500"])
def test_handshake_timeout(flags, tlsc, pypeer, tmp_path):
    peer = pypeer(mode="stall", timeout=15)
    marker = tmp_path / "ran"
    t0 = time.monotonic()
    r = tlsc.run([*flags, "-k", "localhost", *marker_prog(marker)], peer=peer.address,
                 timeout=15)
    elapsed = time.monotonic() - t0
    r.assert_fatal(98, r"time")
    assert not marker.exists()
    assert elapsed < 5, f"-K 500 took {elapsed:.1f}s"
    assert r.elapsed >= 0.45, f"gave up before the deadline ({r.elapsed:.2f}s)"


def test_no_handshake_timeout_by_default(tlsc, pypeer, tmp_path):
    peer = pypeer(mode="stall", timeout=15)
    marker = tmp_path / "ran"
    proc = tlsc.start(["-k", "localhost", *marker_prog(marker)], peer=peer.address)
    try:
        time.sleep(2.0)
        assert proc.alive(), "tlsc gave up on a slow handshake without -K"
    finally:
        proc.kill()
        proc.wait(10)
    assert not marker.exists()


def test_timeout_does_not_apply_after_handshake(tlsc, pki, pypeer, probe):
    peer = pypeer(pki.leaf_ec, delay=1.5, send_text="late\n", no_wait_client_close=True)
    p = probe()
    r = tlsc.run(["-K", "400", "-k", "localhost", *p.argv("readall")], peer=peer.address)
    r.assert_ok()
    assert p.report()["read"]["head"] == "late\n"


# -- garbage and abrupt ends -----------------------------------------------------------------

GARBAGE = {
    "http response": b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n".hex(),
    "binary noise": hashlib.sha512(b"noise").hexdigest() * 4,
    "bogus handshake record": "160303000502000001ff",
    "huge record length": "16030348ff" + "00" * 64,
    "fatal alert": "15030300020228",
}


@pytest.mark.parametrize("garbage", GARBAGE.values(), ids=GARBAGE.keys())
def test_garbage_instead_of_handshake(garbage, tlsc, pypeer, tmp_path):
    peer = pypeer(mode="garbage", garbage=garbage, drain=3)
    marker = tmp_path / "ran"
    r = tlsc.run(["-K", "5000", "-k", "localhost", *marker_prog(marker)], peer=peer.address)
    r.assert_fatal(98)
    assert not marker.exists()


def test_server_hangs_up_during_handshake(tlsc, pypeer, tmp_path):
    peer = pypeer(mode="hangup", drain=3)
    marker = tmp_path / "ran"
    r = tlsc.run(["-K", "5000", "-k", "localhost", *marker_prog(marker)], peer=peer.address)
    r.assert_fatal(98)
    assert not marker.exists()


@pytest.mark.parametrize("tls", ["1.3", "1.2"])
def test_garbage_after_handshake_data_before_it_delivered(tls, tlsc, pki, pypeer, probe):
    bad_record = "1703030020" + "a5" * 32  # application data that cannot decrypt
    peer = pypeer(pki.leaf_ec, tls=tls, send_text="partial\n", no_wait_client_close=True,
                  close="garbage", garbage=bad_record, drain=3)
    p = probe()
    r = tlsc.run(["-k", "localhost", *p.argv("readall", "exit:0")], peer=peer.address)
    r.assert_fatal(98, strict=False)
    assert p.report()["read"]["head"] == "partial\n"


def test_connection_reset_after_data(tlsc, pki, pypeer, probe):
    """An RST is a failure of some kind; whatever the code, the stderr discipline holds."""
    peer = pypeer(pki.leaf_ec, send_text="x\n", no_wait_client_close=True, close="rst")
    p = probe()
    r = tlsc.run(["-k", "localhost", *p.argv("readall", "exit:0")], peer=peer.address)
    r.assert_no_traceback()
    assert r.rc in (0, 98, 111), r.describe()
    assert len(r.fatal) == (0 if r.rc == 0 else 1), r.describe()


# -- prog's exit status and signals -----------------------------------------------------------

@pytest.mark.parametrize("code", [0, 1, 42, 255])
def test_exit_code_is_progs(code, tlsc, pki, pypeer, probe):
    peer = pypeer(pki.leaf_ec)
    p = probe()
    r = tlsc.run(["-k", "localhost", *p.argv("write:x", f"exit:{code}")], peer=peer.address)
    r.assert_ok(code)


@pytest.mark.parametrize("sig", ["KILL", "TERM", "USR1"])
def test_prog_killed_by_signal(sig, tlsc, pki, pypeer, probe):
    peer = pypeer(pki.leaf_ec)
    p = probe()
    r = tlsc.run(["-k", "localhost", *p.argv("write:x", f"kill:{sig}")], peer=peer.address)
    r.assert_ok(128 + getattr(signal, "SIG" + sig))


TRAP = 'trap \'echo {sig} > "$1"; exit 7\' {sig}; touch "$2"; while :; do sleep 0.05; done'


@pytest.mark.parametrize("sig", ["TERM", "INT", "HUP", "QUIT", "USR1", "USR2"])
def test_signal_forwarded_to_prog(sig, tlsc, pki, pypeer, tmp_path):
    peer = pypeer(pki.leaf_ec)
    got, ready = tmp_path / "got", tmp_path / "ready"
    proc = tlsc.start(["-k", "localhost", "sh", "-c", TRAP.format(sig=sig), "sh", got, ready],
                      peer=peer.address)
    try:
        assert wait_for_file(ready, 10, proc), "prog did not start"
        proc.send_signal(getattr(signal, "SIG" + sig))
        r = proc.wait(10)
    finally:
        proc.kill()
    assert got.exists() and got.read_text().strip() == sig, r.describe()
    r.assert_ok(7)


def test_sigpipe_does_not_kill_tlsc(tlsc, pki, pypeer, probe, tmp_path):
    peer = pypeer(pki.leaf_ec)
    p = probe()
    ready, go = tmp_path / "ready", tmp_path / "go"
    proc = tlsc.start(["-k", "localhost", *p.argv(f"touch:{ready}", f"waitfile:{go}",
                                                  "write:still here", "exit:3")],
                      peer=peer.address)
    try:
        assert wait_for_file(ready, 10, proc)
        proc.send_signal(signal.SIGPIPE)
        time.sleep(0.3)
        assert proc.alive(), "SIGPIPE killed tlsc"
    finally:
        go.touch()
    r = proc.wait(10)
    r.assert_ok(3)
    assert peer.result()["received_head"] == "still here"


# -- other descriptors -------------------------------------------------------------------------

@pytest.mark.parametrize("flags", [["-6", "8", "-7", "9"], ["--read-fd=8", "--write-fd", "9"]],
                         ids=["-6 8 -7 9", "--read-fd --write-fd"])
def test_custom_network_fds(flags, tlsc, pki, sserver, probe):
    srv = sserver(pki.leaf_rsa, tls="1.3")
    p = probe()
    r = tlsc.run([*flags, "-k", "localhost",
                  *p.argv("write:fds\\n", "readline", "fds", fds=(8, 9))],
                 peer=srv.address, fds=(8, 9))
    r.assert_ok()
    rep = p.report()
    assert rep["lines"] == ["sdf\n"]
    fds = {k: v for k, v in rep["fds"].items() if v != "?"}
    assert fds["8"].startswith("pipe:") and fds["9"].startswith("pipe:"), fds
    assert "6" not in fds and "7" not in fds, fds


# -- prog's pipes: grown only once one fills (tlsc.child.grow_pipe) ---------------------------

F_GETPIPE_SZ = getattr(fcntl, "F_GETPIPE_SZ", 1032)


def new_pipe_size() -> int:
    """What the kernel gives this user's new pipes (64 KiB unless the user is over budget)."""
    r, w = os.pipe()
    try:
        return fcntl.fcntl(w, F_GETPIPE_SZ)
    finally:
        os.close(r)
        os.close(w)


def prog_pipe_size(tlsc_pid: int, fd: int) -> int:
    """The size of the pipe on prog's ``fd``, looked at from outside through /proc."""
    with open(f"/proc/{tlsc_pid}/task/{tlsc_pid}/children") as f:
        (prog,) = f.read().split()
    pipe = os.open(f"/proc/{prog}/fd/{fd}", os.O_RDONLY | os.O_NONBLOCK)
    try:
        return fcntl.fcntl(pipe, F_GETPIPE_SZ)
    finally:
        os.close(pipe)


def test_pipes_keep_the_kernels_size_on_a_short_exchange(tlsc, pki, pypeer, probe):
    """An interactive connection never fills a pipe: it does not spend its user's pipe
    budget (past 64 MiB, every new pipe of the user is cut to 8 KiB)."""
    peer = pypeer(pki.leaf_ec, echo=True)
    p = probe()
    r = tlsc.run(["-k", "localhost", *p.argv("write:hello\\n", "readline", "pipes")],
                 peer=peer.address)
    r.assert_ok()
    assert p.report()["lines"] == ["hello\n"]
    assert p.report()["pipes"] == [new_pipe_size()] * 2


def test_the_pipe_to_prog_grows_once_it_fills(tlsc, pki, pypeer, probe, tmp_path):
    n = 1 * MiB
    peer = pypeer(pki.leaf_ec, send_bytes=n, no_wait_client_close=True)
    p = probe()
    proc, go = start_held(tlsc, peer, p, tmp_path, "readall", "pipes")
    try:
        # prog reads nothing until "go": the server's data fills its pipe.
        end = time.monotonic() + 30
        while prog_pipe_size(proc.pid, 6) == new_pipe_size() and time.monotonic() < end:
            time.sleep(0.05)
    finally:
        go.touch()
    r = proc.wait(60)
    r.assert_ok()
    rep = p.report()
    assert rep["read"]["bytes"] == n
    assert rep["read"]["sha256"] == peer.result()["sent_sha256"]
    assert rep["pipes"] == [PIPE_SIZE, new_pipe_size()]


def test_the_pipe_from_prog_grows_once_it_fills(tlsc, pki, pypeer, probe, datafile):
    """prog writes 64 KiB at a time, so tlsc's first read finds a full 64 KiB pipe."""
    peer = pypeer(pki.leaf_ec)
    p = probe()
    r = tlsc.run(["-k", "localhost", *p.argv(f"sendfile:{datafile}", "pipes", "closew")],
                 peer=peer.address, timeout=60)
    r.assert_ok()
    assert peer.result()["received"] == datafile.stat().st_size
    assert p.report()["pipes"] == [new_pipe_size(), PIPE_SIZE]
