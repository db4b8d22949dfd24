"""The path battery through real handshakes, for a backend without a standalone verifier.

Theory of operation
===================

A backend whose library verifies chains only inside a handshake (``stdlib``:
Python's ``ssl`` has no verify call of its own) declares
``Capabilities.standalone_verifier = False``.  The harness then judges each
case of :mod:`.pathcases` by a real TLS handshake instead of ``verify_chain``:
the backend's client session, configured with the case's anchors and server
name, against an in-memory pyOpenSSL server presenting the case's chain.
The backend accepts the chain when its handshake completes; any
:class:`~tlsc.session.TLSError` is a refusal; anything else is an error.

**The server.**  It presents the case's leaf with its private key (found by
:func:`.certs.private_key_for`) and the other certificates as its chain, at
OpenSSL security level 0 so that it refuses to present nothing, in TLS 1.3.
A completed handshake is an acceptance.  A refusal counts only when a
*control* client that verifies nothing completes a handshake with the same
server: then the refusal is the backend's verdict on the chain, never a
server that could not have served anyone.  When the control fails too, TLS
1.2 is tried the same way (DHE-DSS carries a DSA leaf that TLS 1.3 cannot).
A chain no TLS library can load (broken DER, no certificate at all, a leaf
whose key is unknown) cannot be presented that way: a TLS 1.2 server's first flight is
plaintext, so its Certificate message is replaced on the wire by one holding
the case's bytes.  No control can complete such a handshake; the cell then
checks that the backend refuses with one of its typed errors.

**The clock.**  A handshake is judged at the wall clock, and the battery's
cases at 2030-06-15 (:data:`.pathcases.REF`).  So each case is staged from the
battery generated around the moment that puts the case's ``at_time`` at *now*
(``pathcases.cases(now - (at_time - REF))``: every date moves, no verdict
changes).  A case whose moment lies within :data:`MARGIN` of a notBefore or
notAfter of its certificates cannot be judged this way: the clock moves while
the battery is built and the handshake runs, and OpenSSL reads it to the
second.  Those cases (the validity rule's boundaries) are excused, by the
capability, with that reason.
"""

from __future__ import annotations

import atexit
import datetime as dt
import functools
import os
import tempfile
from collections.abc import Sequence

from cryptography import x509

from tlsc.session import Backend, ClientConfig, ConfigError, Session, TLSError

from . import certs, pathcases
from .harness import EXCUSED
from .pathcases import PathCase

__all__ = ["MARGIN", "judge", "staged"]

#: How close to a validity boundary a case's moment may be and still be judged at the
#: wall clock (generating the battery and running the handshakes take seconds to minutes).
MARGIN = dt.timedelta(hours=1)
ROUNDS = 30

#: RFC 7919's ffdhe2048 group, for a TLS 1.2 server whose leaf key is DSA (DHE-DSS).
FFDHE2048 = b"""-----BEGIN DH PARAMETERS-----
MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==
-----END DH PARAMETERS-----
"""


@functools.lru_cache(maxsize=1)
def _start() -> dt.datetime:
    """The moment this process first judged a case by handshake, to the second."""
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def staged(case: PathCase) -> PathCase:
    """``case`` rebuilt so that its moment is about now (see the module docstring)."""
    moment = _start() - (case.at_time - pathcases.REF)
    for c in pathcases.cases(moment):
        if c.name == case.name:
            return c
    raise KeyError(f"no case {case.name!r} in the battery")


def _near_boundary(case: PathCase) -> str | None:
    """Why ``case`` cannot be judged at the wall clock, or None when it can."""
    for der in (*case.chain, *case.anchors):
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError:
            continue
        for label, when in (
            ("notBefore", cert.not_valid_before_utc),
            ("notAfter", cert.not_valid_after_utc),
        ):
            gap = abs(when - case.at_time)
            if gap < MARGIN:
                return (
                    f"judged through handshakes at the wall clock: the case's moment is "
                    f"{int(gap.total_seconds())} s from a {label}, closer than a handshake "
                    "can be staged"
                )
    return None


# -- the server ------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _dh_file() -> str:
    """pyOpenSSL reads DH parameters from a file only: one per process, removed at exit."""
    f = tempfile.NamedTemporaryFile(prefix="tlsc-ffdhe2048-", suffix=".pem", delete=False)
    with f:
        f.write(FFDHE2048)
    atexit.register(os.unlink, f.name)
    return f.name


@functools.lru_cache(maxsize=1)
def _stand_in() -> certs.Issued:
    """The certificate a server rewriting its Certificate message is configured with."""
    now = _start()
    return certs.issue("stand-in", key_kind="p256", slot=31, dns=("stand-in.example",),
                       not_before=now - certs.DAY, not_after=now + certs.DAY)


class _Server:
    """A pyOpenSSL server in memory presenting a chain (see the module docstring)."""

    def __init__(self, chain: Sequence[bytes], version: str, rewrite: bool) -> None:
        from OpenSSL import SSL

        self.SSL = SSL
        self.rewrite = list(chain) if rewrite else None
        ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
        v = SSL.TLS1_3_VERSION if version == "TLSv1.3" else SSL.TLS1_2_VERSION
        ctx.set_min_proto_version(v)
        ctx.set_max_proto_version(v)
        ctx.set_cipher_list(b"ALL:@SECLEVEL=0")
        ctx.load_tmp_dh(_dh_file())
        if rewrite:
            leaf, key, extra = _stand_in().der, _stand_in().key, []
        else:
            leaf, key, extra = chain[0], certs.private_key_for(chain[0]), list(chain[1:])
        ctx.use_certificate(x509.load_der_x509_certificate(leaf))
        ctx.use_privatekey(key)
        for der in extra:
            ctx.add_extra_chain_cert(x509.load_der_x509_certificate(der))
        self.conn = SSL.Connection(ctx, None)
        self.conn.set_accept_state()
        self.first_flight = True

    def exchange(self, data: bytes) -> bytes:
        """Take the client's bytes, make progress, return the server's."""
        if data:
            self.conn.bio_write(data)
        try:
            self.conn.do_handshake()
        except self.SSL.Error:
            pass  # wants input, or failed: the client's side is what is judged
        out = b""
        while True:
            try:
                out += self.conn.bio_read(65536)
            except self.SSL.Error:
                break
        if out and self.rewrite is not None and self.first_flight:
            self.first_flight = False
            out = _with_certificates(out, self.rewrite)
        return out


def _records(data: bytes) -> list[tuple[int, bytes]]:
    out = []
    while data:
        n = int.from_bytes(data[3:5], "big")
        out.append((data[0], data[5 : 5 + n]))
        data = data[5 + n :]
    return out


def _vector(body: bytes, width: int) -> bytes:
    return len(body).to_bytes(width, "big") + body


def _with_certificates(flight: bytes, chain: Sequence[bytes]) -> bytes:
    """A TLS 1.2 server's first flight with its Certificate message holding ``chain``."""
    stream = b"".join(body for kind, body in _records(flight) if kind == 22)
    out = b""
    while stream:
        kind, n = stream[0], int.from_bytes(stream[1:4], "big")
        body, stream = stream[4 : 4 + n], stream[4 + n :]
        if kind == 11:
            body = _vector(b"".join(_vector(der, 3) for der in chain), 3)
        message = bytes([kind]) + _vector(body, 3)
        for i in range(0, len(message), 16384):
            out += b"\x16\x03\x03" + _vector(message[i : i + 16384], 2)
    return out


# -- handshakes ------------------------------------------------------------------


class _Control:
    """A pyOpenSSL client that verifies nothing: can this server complete a handshake at all?"""

    def __init__(self, version: str) -> None:
        from OpenSSL import SSL

        self.SSL = SSL
        ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
        v = SSL.TLS1_3_VERSION if version == "TLSv1.3" else SSL.TLS1_2_VERSION
        ctx.set_min_proto_version(v)
        ctx.set_max_proto_version(v)
        ctx.set_cipher_list(b"ALL:@SECLEVEL=0")
        ctx.set_verify(SSL.VERIFY_NONE)
        self.conn = SSL.Connection(ctx, None)
        self.conn.set_connect_state()

    def step(self, data: bytes) -> tuple[bool, bytes]:
        if data:
            self.conn.bio_write(data)
        try:
            self.conn.do_handshake()
            done = True
        except self.SSL.WantReadError:
            done = False
        out = b""
        while True:
            try:
                out += self.conn.bio_read(65536)
            except self.SSL.Error:
                break
        return done, out


def _control_completes(chain: Sequence[bytes], version: str) -> bool:
    try:
        server, client = _Server(chain, version, rewrite=False), _Control(version)
        data = b""
        for _ in range(ROUNDS):
            done, out = client.step(data)
            data = server.exchange(out)
            if done:
                return True
    except Exception:  # noqa: BLE001 - the server cannot load or serve this chain
        return False
    return False


def _loadable(chain: Sequence[bytes]) -> bool:
    if not chain or certs.private_key_for(chain[0]) is None:
        return False
    try:
        for der in chain:
            x509.load_der_x509_certificate(der)
    except ValueError:
        return False
    return True


def _handshake(session: Session, server: _Server) -> None:
    data = b""
    for _ in range(ROUNDS):
        if data:
            session.receive_data(data)
        try:
            done = session.do_handshake()
        finally:
            data = server.exchange(session.data_to_send())
        if done:
            return
        if not data:
            raise AssertionError("the handshake stalled: neither side has anything to send")
    raise AssertionError("the handshake did not complete")


def _attempt(backend: Backend, case: PathCase, version: str, rewrite: bool) -> tuple[str, str]:
    """The backend's handshake against the case's server: ("accept" | "reject" | "error", why)."""
    anchors = [(f"anchor #{i}", der) for i, der in enumerate(case.anchors, 1)]
    config = ClientConfig(anchors=anchors, server_name=case.server_name)
    try:
        session = backend.client_context(config, lambda msg: None).session()
    except ConfigError as e:
        return "reject", f"refused at configuration: {e}"
    except Exception as e:  # anything else is a bug, not a verdict
        return "error", f"{type(e).__name__}: {e}"
    try:
        _handshake(session, _Server(case.chain, version, rewrite))
    except TLSError as e:
        return "reject", f"{type(e).__name__}: {e}"
    except Exception as e:
        return "error", f"{type(e).__name__}: {e}"
    return "accept", ""


def judge(backend: Backend, case: PathCase) -> tuple[str, str]:
    """("accept" | "reject" | "error" | "excused", detail) for one case, by handshake."""
    why = _near_boundary(case)  # the same for the case as staged: every date moves alike
    if why is not None:
        return EXCUSED, why
    case = staged(case)
    if _loadable(case.chain):
        for version in ("TLSv1.3", "TLSv1.2"):
            verdict, detail = _attempt(backend, case, version, rewrite=False)
            if verdict != "reject" or _control_completes(case.chain, version):
                return verdict, f"{detail} [{version} server]".lstrip()
        note = "no handshake completes with it"
    else:
        note = "no TLS library can load it"
    verdict, detail = _attempt(backend, case, "TLSv1.2", rewrite=True)
    where = f"[TLSv1.2 Certificate message rewritten: {note}]"
    if verdict == "accept":
        return "error", f"a handshake completed with a chain no server could present {where}"
    return verdict, f"{detail} {where}"
