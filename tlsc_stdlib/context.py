"""Building the ``_ssl._SSLContext`` a ``ClientConfig`` (tlsc) or ``ServerConfig`` (tlsd) wants.

One context per run, shared by its sessions.  Both roles get the same base:
TLS 1.2 minimum, no renegotiation, security level 2 (RSA keys under 2048
bits and SHA-1/MD5 signatures refused, the anchor's key included), partial
chains (any anchor, an intermediate or a leaf, ends a chain) and OpenSSL's
strict RFC 5280 mode.  OpenSSL's host check is never configured: the name is
:mod:`.checks`'s, with the same matcher as every backend; and OpenSSL never
reads a CN as a name, for name constraints either.

Trust anchors go into the store only when the peer's chain, seen by the
message callback before OpenSSL verifies it, can reach them
(:class:`StoreAnchors`): a system trust store is ~140 of them.

Files never touch a disk: the certificate chain and the private key are
handed to ``load_cert_chain`` as ``/proc/self/fd/N`` of anonymous memory
files (``memfd_create``), closed right after.

Failures are sorted by whose fault they are: the user's files →
:class:`ConfigError` (96), OpenSSL refusing to set itself up →
:class:`EngineError` (97).
"""

from __future__ import annotations

import _ssl
import binascii
import os

from tlsc.der import DERError, certificate_fields, private_key_label
from tlsc.session import ClientConfig, ConfigError, EngineError, ServerConfig, TrustAnchors, Warn
from tlsc.tlsmsg import CERTIFICATE, AnchorsOnDemand

from .checks import Anchors, Problem, chain_problem
from .errors import reason_of
from .session import StdlibServerSession, StdlibSession

#: ``typing.TYPE_CHECKING`` without importing ``typing`` (see tlsc_stdlib.session).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "Hooks",
    "StdlibClientContext",
    "StdlibServerContext",
    "build_client_context",
    "build_server_context",
]

#: Python's own default list (3.10+), the security level stated rather than assumed:
#: a Python built with another default must not lower it.
CIPHERS = "@SECLEVEL=2:ECDH+AESGCM:ECDH+CHACHA20:ECDH+AES:DHE+AES:!aNULL:!eNULL:!aDSS:!SHA1:!AESCCM"
VERIFY_FLAGS = _ssl.VERIFY_X509_PARTIAL_CHAIN | _ssl.VERIFY_X509_STRICT

#: subjectPublicKeyInfo algorithms of the KEYFILE keys we load: RSA, ECDSA, Ed25519.
KEY_TYPES = {
    "1.2.840.113549.1.1.1": "RSA",
    "1.2.840.113549.1.1.10": "RSA",  # RSASSA-PSS
    "1.2.840.10045.2.1": "ECDSA",
    "1.3.101.112": "Ed25519",
}
_KEY_NAMES = {"1.2.840.10040.4.1": "DSA", "1.3.101.113": "Ed448", "1.3.101.110": "X25519"}


class Hooks:
    """A context's message callback, for the session whose handshake is running (:attr:`current`).

    The message callback (``_SSLContext._msg_callback``, Python's debugging
    hook, present since 3.8; called with plain ints, ``ssl.py`` would make
    enums of them) sees every handshake message OpenSSL reads,
    decrypted, while OpenSSL reads it; the session sets :attr:`current` around
    each ``do_handshake``, the only place OpenSSL calls back from.  It passes on

    * the peer's Certificate message: the chain :mod:`.checks` judges, when
      the context verifies the peer;
    * the client's ClientHello (server role): the SNI it names.  Python's own
      ``sni_callback`` is not used: it decodes the name as ASCII and, on any
      other byte, aborts the handshake and prints a traceback, where the core
      must refuse such a name in its own words.  (Serving a certificate by
      name, were a backend ever to choose one, would be an ``sni_callback``
      setting ``ssl_object.context``; tlsd chooses the context itself.)

    It costs a Python call per record, so it is installed only while some
    session of the context is in its handshake: OpenSSL copies it into each
    SSL object at ``wrap_bio``, and Python skips the call once the context's
    callback is None again.
    """

    def __init__(
        self,
        ssl_context: _ssl._SSLContext,
        anchors: StoreAnchors | None,
        name: str | None = None,
        server: bool = False,
    ) -> None:
        self._wanted = anchors is not None or server
        if self._wanted and not hasattr(ssl_context, "_msg_callback"):
            raise EngineError("this Python's ssl module has no message callback")
        self._ctx = ssl_context
        self._anchors = anchors
        self._name = name
        self._server = server
        self._handshakes = 0
        self.current: StdlibSession | None = None

    @property
    def verifying(self) -> bool:
        """Does the context verify the peer (then the chain must be seen and judged)?"""
        return self._anchors is not None

    def problem(self, chain: Sequence[bytes]) -> Problem | None:
        assert self._anchors is not None
        return chain_problem(chain, self._anchors.checked, self._name)

    def started(self) -> None:
        if not self._wanted:
            return
        if self._handshakes == 0:
            self._ctx._msg_callback = self._on_message  # type: ignore[attr-defined]
        self._handshakes += 1

    def ended(self) -> None:
        if not self._wanted:
            return
        self._handshakes -= 1
        if self._handshakes == 0:
            self._ctx._msg_callback = None  # type: ignore[attr-defined]

    def _on_message(
        self,
        conn: object,
        direction: str,
        version: int,
        content_type: int,
        msg_type: int,
        data: bytes,
    ) -> None:
        session = self.current
        if session is None or direction != "read" or content_type != 22:
            return
        if msg_type == CERTIFICATE and self._anchors is not None:
            # Before OpenSSL verifies: the anchors this chain can reach, into the store.
            self._anchors.load_for(session.received_certificates(data, int(version)))
        elif msg_type == 1 and self._server:
            from tlsc.clienthello import host_name_in  # servers only: not on tlsc's path

            name = host_name_in(data)
            if name:
                # A name that is not ASCII is kept with its odd bytes escaped (the
                # core refuses it in its own words), as tlsc_openssl does.
                session.received_server_name(name.decode("ascii", "backslashreplace"))


class StdlibClientContext:
    """The :class:`tlsc.session.ClientContext`: one session per connection."""

    def __init__(self, ssl_context: _ssl._SSLContext, hooks: Hooks, sni: str | None) -> None:
        self.ssl_context = ssl_context
        self._hooks = hooks
        self._sni = sni

    def session(self) -> StdlibSession:
        return StdlibSession(self.ssl_context, self._hooks, self._sni)


class StdlibServerContext:
    """The :class:`tlsc.session.ServerContext`: one server session per connection."""

    def __init__(self, ssl_context: _ssl._SSLContext, hooks: Hooks) -> None:
        self.ssl_context = ssl_context
        self._hooks = hooks

    def session(self) -> StdlibServerSession:
        return StdlibServerSession(self.ssl_context, self._hooks)


def _engine(what: str, error: Exception) -> EngineError:
    detail = reason_of(error) if isinstance(error, _ssl.SSLError) else str(error)
    return EngineError(f"ssl: cannot {what}: {detail}")


def _new_context(protocol: int, role: str) -> _ssl._SSLContext:
    try:
        ctx = _ssl._SSLContext(protocol)
        ctx.minimum_version = _ssl.PROTO_TLSv1_2
        ctx.options |= _ssl.OP_NO_COMPRESSION | _ssl.OP_NO_RENEGOTIATION
        # Never OP_IGNORE_UNEXPECTED_EOF: truncation must stay detectable.
        ctx.options &= ~getattr(_ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
        ctx.set_ciphers(CIPHERS)
        ctx.verify_flags |= VERIFY_FLAGS
        # X509_CHECK_FLAG_NEVER_CHECK_SUBJECT: the subject's CN is never a name, not
        # even for name constraints (OpenSSL checks a leaf's CN against them when the
        # leaf has no DNS subjectAltName, unless told never to).
        # (ssl.SSLContext.hostname_checks_common_name = False, which sets this flag.)
        ctx._host_flags |= _ssl.HOSTFLAG_NEVER_CHECK_SUBJECT
    except (_ssl.SSLError, ValueError) as e:
        raise _engine(f"create a TLS {role} context", e) from None
    return ctx


class StoreAnchors:
    """A context's trust anchors, put in its store when a peer's chain names them.

    Python's ``ssl`` has no verify callback, but the message callback
    (:class:`Hooks`) sees the peer's Certificate message before OpenSSL
    verifies it.  The anchors that chain can reach by name
    (:meth:`tlsc.anchors.TrustAnchors.for_chain`: what OpenSSL's chain builder
    can find, and nothing else) go into the store then, in one call.  Loading
    a system trust store (~140 anchors) up front cost ~20 ms per connection,
    OpenSSL 3.0 decoding every public key, for the one or two a handshake uses.
    An anchor that turns out unusable is reported when a chain first names it.
    """

    def __init__(self, ctx: _ssl._SSLContext, anchors: TrustAnchors, warn: Warn) -> None:
        self._ctx = ctx
        self._pending = AnchorsOnDemand(anchors)
        self._warn = warn
        #: What :mod:`.checks` walks: the anchors in the store.
        self.checked = Anchors(())

    def load_for(self, chain_der: Sequence[bytes] | None) -> None:
        """Put the anchors ``chain_der`` can reach in the store (None: every anchor)."""
        usable = _into_store(self._ctx, self._pending.take_for(chain_der), self._warn)
        if usable:
            self.checked = Anchors([*self.checked.der, *usable])


def _into_store(
    ctx: _ssl._SSLContext, anchors: Sequence[tuple[str, bytes]], warn: Warn
) -> list[bytes]:
    """Put the usable ``anchors`` in the context's store; their DER.  The others: warned, skipped.

    Usable: tlsc.der reads it (so that :mod:`.checks` can walk to it: an
    extension twice, say, is refused here) and OpenSSL takes it.  All at once;
    one by one only when OpenSSL refuses one, to name it.
    """
    readable: list[tuple[str, bytes]] = []
    for origin, der in anchors:
        try:
            certificate_fields(der)
        except DERError as e:
            warn(f"{origin}: not a usable certificate ({e}), skipped")
            continue
        readable.append((origin, der))
    usable = [der for _origin, der in readable]
    try:
        if usable:
            ctx.load_verify_locations(cadata=b"".join(usable))
    except (_ssl.SSLError, ValueError):
        usable = []
        for origin, der in readable:
            try:
                ctx.load_verify_locations(cadata=der)
            except (_ssl.SSLError, ValueError):
                warn(f"{origin}: not a certificate, skipped")
                continue
            usable.append(der)
    return usable


def _trust(ctx: _ssl._SSLContext, anchors: TrustAnchors, warn: Warn) -> StoreAnchors:
    if not anchors:
        raise ConfigError("no usable trust anchor")
    return StoreAnchors(ctx, anchors, warn)


class _memory_file:  # noqa: N801 - used as a function: ``with _memory_file(...) as path``
    """A path to ``data`` that lives in memory only (Linux ``memfd_create``), closed on exit.

    A class rather than :func:`contextlib.contextmanager`: nothing else on a
    stdlib run imports contextlib, and tlsc starts once per connection.
    """

    def __init__(self, data: bytes, name: str) -> None:
        self.data = data
        self.name = name
        self.fd = -1

    def __enter__(self) -> str:
        try:
            self.fd = os.memfd_create(self.name, os.MFD_CLOEXEC)
        except (AttributeError, OSError) as e:
            raise EngineError(f"cannot create an in-memory file for the {self.name}: {e}") from None
        try:
            view = memoryview(self.data)
            while view:
                view = view[os.write(self.fd, view) :]
        except BaseException:
            self.__exit__()
            raise
        return f"/proc/self/fd/{self.fd}"

    def __exit__(self, *exc: object) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _pem(label: str, der: bytes) -> bytes:
    body = binascii.b2a_base64(der, newline=False)
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    head, tail = f"-----BEGIN {label}-----", f"-----END {label}-----\n"
    return b"\n".join([head.encode(), *lines, tail.encode()])


_ENCRYPTED = "private key is encrypted; an unencrypted key is required"
_INVALID_KEY = "private key: not a valid DER or PEM private key"


def _key_pem(data: bytes) -> bytes:
    """The key file's content as PEM (DER is labelled by its structure); encrypted refused."""
    if b"-----BEGIN" in data:
        if b"ENCRYPTED" in data:  # "ENCRYPTED PRIVATE KEY", or a "Proc-Type: 4,ENCRYPTED" header
            raise ConfigError(_ENCRYPTED)
        return data
    try:
        label = private_key_label(data)
    except DERError:
        raise ConfigError(_INVALID_KEY) from None
    if label.startswith("ENCRYPTED"):
        raise ConfigError(_ENCRYPTED)
    return _pem(label, data)


class _EncryptedKey(Exception):
    """Raised by the password callback: OpenSSL asked for a password we do not have."""


def _no_password() -> str:
    raise _EncryptedKey


def _use_credentials(
    ctx: _ssl._SSLContext, chain: Sequence[bytes], key: bytes | None, role: str
) -> None:
    """Load a certificate chain (leaf first, DER) and its key, checked to match.

    ``role`` ("client" for tlsc -y, "server" for tlsd) only words the messages.
    """
    if not chain:
        raise ConfigError(f"{role} certificate: no certificate given")
    if key is None:
        raise ConfigError(f"{role} certificate: no private key given")
    for i, der in enumerate(chain, 1):
        try:
            fields = certificate_fields(der)
        except DERError:
            raise ConfigError(f"{role} certificate #{i}: not a valid certificate") from None
        if i == 1 and fields.key_algorithm not in KEY_TYPES:
            kind = _KEY_NAMES.get(fields.key_algorithm, fields.key_algorithm)
            raise ConfigError(
                f"private key: unsupported key type {kind} (RSA, ECDSA or Ed25519 required)"
            )
    certs = b"".join(_pem("CERTIFICATE", der) for der in chain)
    key_pem = _key_pem(key)
    try:
        with (
            _memory_file(certs, "certificate chain") as certfile,
            _memory_file(key_pem, "private key") as keyfile,
        ):
            ctx.load_cert_chain(certfile, keyfile, password=_no_password)
    except _EncryptedKey:
        raise ConfigError(_ENCRYPTED) from None
    except _ssl.SSLError as e:
        reason = reason_of(e)
        if "key values mismatch" in reason:
            raise ConfigError(f"private key does not match the {role} certificate") from None
        if e.library == "PEM" or "no start line" in reason or "decoder" in reason:
            raise ConfigError(_INVALID_KEY) from None
        # e.g. a key below security level 2: still the user's files.
        raise ConfigError(f"{role} certificate or key refused by OpenSSL: {reason}") from None
    except OSError as e:  # /proc/self/fd not there (a chroot without /proc)
        raise EngineError(f"cannot hand the {role} credentials to OpenSSL: {e}") from None
    finally:
        del key_pem


def build_client_context(config: ClientConfig, warn: Warn) -> StdlibClientContext:
    """The client context for ``config``; see the module docstring for errors."""
    sni = config.sni
    if sni is not None and not sni.isascii():
        raise ConfigError(f"server name {sni!r} is not a valid DNS name")
    ctx = _new_context(_ssl.PROTOCOL_TLS_CLIENT, "client")
    ctx.check_hostname = False  # the name is checked by .checks, never by OpenSSL
    anchors = None
    if config.verify:
        ctx.verify_mode = _ssl.CERT_REQUIRED
        anchors = _trust(ctx, config.anchors, warn)
    else:
        ctx.verify_mode = _ssl.CERT_NONE
    if config.cert_chain or config.private_key is not None:
        _use_credentials(ctx, config.cert_chain, config.private_key, "client")
    return StdlibClientContext(ctx, Hooks(ctx, anchors, config.server_name), sni)


def build_server_context(config: ServerConfig, warn: Warn) -> StdlibServerContext:
    """The server context for ``config`` (tlsd); errors as for :func:`build_client_context`.

    With ``verify_client`` a client certificate is asked for and judged by the
    same rules as a server's, with the clientAuth purpose (OpenSSL's server
    default) and no name check; a client without one is refused unless the
    config says the certificate is optional (``client_cert_optional``).  One
    tlsd serves one connection: no session cache, no tickets.
    """
    ctx = _new_context(_ssl.PROTOCOL_TLS_SERVER, "server")
    try:
        ctx.options |= _ssl.OP_NO_TICKET
        ctx.num_tickets = 0
    except (_ssl.SSLError, ValueError) as e:
        raise _engine("configure the TLS server context", e) from None
    _use_credentials(ctx, config.cert_chain, config.private_key, "server")
    anchors = None
    if config.verify_client:
        optional = bool(getattr(config, "client_cert_optional", False))
        ctx.verify_mode = _ssl.CERT_OPTIONAL if optional else _ssl.CERT_REQUIRED
        anchors = _trust(ctx, config.anchors, warn)
    return StdlibServerContext(ctx, Hooks(ctx, anchors, server=True))
