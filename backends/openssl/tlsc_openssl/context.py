"""Building the ``SSL.Context`` a :class:`tlsc.session.ClientConfig` describes.

One context per tlsc run, shared by its sessions.  Failures are sorted by
whose fault they are: the user's files → :class:`ConfigError` (96), OpenSSL
refusing to set itself up → :class:`EngineError` (97).
"""

from __future__ import annotations

from cryptography.hazmat.primitives.serialization import Encoding
from OpenSSL import SSL, crypto

from tlsc.session import ClientConfig, ConfigError, EngineError, Warn

from .credentials import load_anchors, load_client_credentials
from .errors import reason_of
from .session import OpenSSLSession
from .verify import STORE_FLAGS, Verifier

__all__ = ["OpenSSLClientContext", "build_context"]


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


def _new_context() -> SSL.Context:
    try:
        ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
        ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
        options = SSL.OP_NO_COMPRESSION
        # Renegotiation is refused (a TLS 1.2 server asking gets a no_renegotiation alert).
        options |= getattr(SSL, "OP_NO_RENEGOTIATION", 0)
        # Never OP_IGNORE_UNEXPECTED_EOF: truncation must stay detectable.
        ctx.set_options(options)
    except (SSL.Error, ValueError) as e:
        raise _engine("create a TLS client context", e) from None
    return ctx


def _configure_verification(ctx: SSL.Context, config: ClientConfig, warn: Warn) -> None:
    if not config.verify:
        ctx.set_verify(SSL.VERIFY_NONE)
        return
    anchors = load_anchors(config.anchors, warn)
    store = ctx.get_cert_store()
    if store is None:
        raise EngineError("OpenSSL: the context has no certificate store")
    anchor_der: set[bytes] = set()
    for cert in anchors:
        try:
            store.add_cert(crypto.X509.from_cryptography(cert))
        except crypto.Error:
            warn(f"{cert.subject.rfc4514_string() or 'anchor'}: refused by OpenSSL, skipped")
            continue
        anchor_der.add(cert.public_bytes(Encoding.DER))
    if not anchor_der:
        raise ConfigError("no usable trust anchor")
    try:
        store.set_flags(STORE_FLAGS)
    except crypto.Error as e:
        raise _engine("configure the certificate store", e) from None
    # Name checks are ours (tlsc.names, in the callback): OpenSSL's host check
    # is never configured.
    ctx.set_verify(SSL.VERIFY_PEER, Verifier(frozenset(anchor_der), config.server_name))


def _configure_client_certificate(ctx: SSL.Context, config: ClientConfig) -> None:
    if not config.cert_chain and config.private_key is None:
        return
    chain, key = load_client_credentials(config.cert_chain, config.private_key)
    try:
        ctx.use_certificate(chain[0])
        for extra in chain[1:]:
            ctx.add_extra_chain_cert(extra)
        ctx.use_privatekey(key)
        ctx.check_privatekey()
    except SSL.Error as e:
        # e.g. a key below OpenSSL's security level: still the user's files.
        raise ConfigError(f"client certificate or key refused by OpenSSL: {reason_of(e)}") from None


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
