"""Building the ``SSL.Context`` a ``ClientConfig`` (tlsc) or ``ServerConfig`` (tlsd) describes.

One context per run, shared by its sessions.  Both roles share the base
options (TLS 1.2 minimum, no renegotiation, truncation detectable), the
trust-anchor store (filled as peers' chains reach its anchors, :mod:`.anchors`)
and the certificate/key loading; they differ in the method, what is verified
(the server's chain and name, or a client's chain with the clientAuth purpose
and no name) and where SNI goes.  Failures are sorted by whose fault they
are: the user's files → :class:`ConfigError` (96), OpenSSL refusing to set
itself up → :class:`EngineError` (97).
"""

from __future__ import annotations

from collections.abc import Sequence

from OpenSSL import SSL, crypto

from tlsc.session import ClientConfig, ConfigError, EngineError, ServerConfig, TrustAnchors, Warn

from .anchors import AT_ONCE, StoreAnchors, watch_certificates
from .credentials import load_client_credentials
from .errors import reason_of
from .policy import CLIENT_AUTH
from .session import OpenSSLServerSession, OpenSSLSession, record_server_name
from .verify import STORE_FLAGS, Verifier, configure_store

__all__ = ["OpenSSLClientContext", "OpenSSLServerContext", "build_context", "build_server_context"]


class OpenSSLClientContext:
    """The :class:`tlsc.session.ClientContext`: makes one session per connection."""

    def __init__(self, context: SSL.Context, sni: str | None, sni_wire: bytes | None) -> None:
        self.ssl_context = context
        self._sni = sni
        self._sni_wire = sni_wire

    def session(self) -> OpenSSLSession:
        return OpenSSLSession(self.ssl_context, self._sni, self._sni_wire)


def _engine(what: str, error: Exception) -> EngineError:
    detail = reason_of(error) if isinstance(error, SSL.Error) else str(error)
    return EngineError(f"OpenSSL: cannot {what}: {detail}")


class OpenSSLServerContext:
    """The :class:`tlsc.session.ServerContext`: makes one server session per connection."""

    def __init__(self, context: SSL.Context) -> None:
        self.ssl_context = context

    def session(self) -> OpenSSLServerSession:
        return OpenSSLServerSession(self.ssl_context)


def _new_context(method: int = SSL.TLS_CLIENT_METHOD, role: str = "client") -> SSL.Context:
    try:
        ctx = SSL.Context(method)
        ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
        options = SSL.OP_NO_COMPRESSION
        # Renegotiation is refused (a TLS 1.2 server asking gets a no_renegotiation alert).
        options |= getattr(SSL, "OP_NO_RENEGOTIATION", 0)
        # Never OP_IGNORE_UNEXPECTED_EOF: truncation must stay detectable.
        ctx.set_options(options)
    except (SSL.Error, ValueError) as e:
        raise _engine(f"create a TLS {role} context", e) from None
    return ctx


def _configure_verification(ctx: SSL.Context, config: ClientConfig, warn: Warn) -> None:
    if not config.verify:
        ctx.set_verify(SSL.VERIFY_NONE)
        return
    store = _trust(ctx, config.anchors, warn)
    # Name checks are ours (tlsc.names, in the callback): OpenSSL's host check
    # is never configured.
    ctx.set_verify(SSL.VERIFY_PEER, Verifier(_every_der(config.anchors), config.server_name, store))


def _every_der(anchors: TrustAnchors) -> frozenset[bytes]:
    """Every anchor's DER, for the :class:`Verifier` to tell an anchor when it sees one."""
    return frozenset(der for _origin, der in anchors)


def _trust(ctx: SSL.Context, anchors: TrustAnchors, warn: Warn) -> StoreAnchors:
    """Set the context's store up (partial chains) to take ``anchors``.

    A few go in at once; more, as chains reach them (:mod:`.anchors`).
    """
    if not anchors:
        raise ConfigError("no usable trust anchor")
    store = ctx.get_cert_store()
    if store is None:
        raise EngineError("OpenSSL: the context has no certificate store")
    try:
        configure_store(store, STORE_FLAGS)
    except (crypto.Error, MemoryError) as e:
        raise _engine("configure the certificate store", e) from None
    store_anchors = StoreAnchors(store, anchors, warn)
    if len(anchors) <= AT_ONCE:
        store_anchors.load_all()
    else:
        watch_certificates(ctx, store_anchors)
    return store_anchors


def _configure_client_certificate(ctx: SSL.Context, config: ClientConfig) -> None:
    if not config.cert_chain and config.private_key is None:
        return
    _use_credentials(ctx, config.cert_chain, config.private_key, "client")


def _use_credentials(
    ctx: SSL.Context, cert_chain: Sequence[bytes], private_key: bytes | None, role: str
) -> None:
    chain, key = load_client_credentials(cert_chain, private_key, role)
    try:
        ctx.use_certificate(chain[0])
        for extra in chain[1:]:
            ctx.add_extra_chain_cert(extra)
        ctx.use_privatekey(key)
        ctx.check_privatekey()
    except SSL.Error as e:
        # e.g. a key below OpenSSL's security level: still the user's files.
        raise ConfigError(f"{role} certificate or key refused by OpenSSL: {reason_of(e)}") from None


def _sni_wire(sni: str | None) -> bytes | None:
    """SNI is ASCII on the wire: an internationalised name goes as its A-labels."""
    if sni is None:
        return None
    try:
        return sni.encode("ascii")
    except UnicodeEncodeError:
        pass
    try:
        return sni.encode("idna")
    except UnicodeError:
        raise ConfigError(f"server name {sni!r} is not a valid DNS name") from None


def build_context(config: ClientConfig, warn: Warn) -> OpenSSLClientContext:
    """The client context for ``config``; see the module docstring for errors."""
    sni_wire = _sni_wire(config.sni)
    ctx = _new_context()
    _configure_verification(ctx, config, warn)
    _configure_client_certificate(ctx, config)
    return OpenSSLClientContext(ctx, config.sni, sni_wire)


def build_server_context(config: ServerConfig, warn: Warn) -> OpenSSLServerContext:
    """The server context for ``config`` (tlsd); errors as for :func:`build_context`.

    With ``verify_client`` a client certificate is asked for and judged by the
    same rules as a server's, with the clientAuth purpose and no name check; a
    client without one gets a certificate_required/handshake_failure alert,
    unless ``client_cert_optional``.  Any SNI is accepted and recorded for
    ``facts()``.
    """
    ctx = _new_context(SSL.TLS_SERVER_METHOD, "server")
    _use_credentials(ctx, config.cert_chain, config.private_key, "server")
    try:
        # One tlsd process serves one connection: a session cache would never be
        # hit, and an id context keeps TLS 1.2 resumption + client auth well defined.
        ctx.set_session_id(b"tlsd")
        ctx.set_session_cache_mode(SSL.SESS_CACHE_OFF)
        ctx.set_tlsext_servername_callback(record_server_name)
    except SSL.Error as e:
        raise _engine("configure the TLS server context", e) from None
    if config.verify_client:
        store = _trust(ctx, config.anchors, warn)
        verifier = Verifier(_every_der(config.anchors), None, store, purpose=CLIENT_AUTH)
        mode = SSL.VERIFY_PEER
        if not config.client_cert_optional:
            mode |= SSL.VERIFY_FAIL_IF_NO_PEER_CERT
        ctx.set_verify(mode, verifier)
    else:
        ctx.set_verify(SSL.VERIFY_NONE)
    return OpenSSLServerContext(ctx)
