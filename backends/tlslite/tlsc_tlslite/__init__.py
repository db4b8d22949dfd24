"""tlsc backend ``tlslite``: tlslite-ng, pure Python, with our own X.509 verifier.

The entry point ``tlsc.backends: tlslite`` names :data:`backend`.  Importing
this package imports tlslite-ng, asn1crypto and python-ecdsa only, never
``cryptography``/pyOpenSSL: a packager who installs this backend alone gets a
TLS client and server without any compiled crypto.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import partial

from tlsc.session import (
    BackendInfo,
    Capabilities,
    ClientConfig,
    ConfigError,
    ServerConfig,
    TrustAnchors,
    Warn,
)

from .keys import load_credentials
from .session import (
    TlsliteClientContext,
    TlsliteContext,
    TlsliteServerContext,
    TlsliteServerSession,
    TlsliteSession,
    make_settings,
)
from .verify import TrustStore, verify_chain

__all__ = ["CAPABILITIES", "TlsliteBackend", "backend", "verify_chain"]

__version__ = "0.1.0"

CAPABILITIES = Capabilities(
    tls_versions=("TLSv1.2", "TLSv1.3"),
    key_types=("RSA", "ECDSA", "Ed25519"),
    client_certificates=True,
    # TLS 1.3 half-close: we keep sending after the peer's close_notify.
    write_after_close_notify=True,
    server=True,
)


def _trust_store(anchors: TrustAnchors, warn: Warn) -> TrustStore:
    """The anchors, parsed when a handshake needs them; none at all is a ConfigError.

    An anchor that does not parse is reported (``warn``) and skipped when a
    chain first names it, in the handshake, not here: here nothing is parsed.
    """
    if not anchors:
        raise ConfigError("no usable trust anchor in CADIR/CAFILE")
    return TrustStore(anchors, warn)


def _library_version() -> str:
    """tlslite-ng's own version string (not its packaging metadata).

    The core calls :meth:`TlsliteBackend.info` on every connection, for the
    capabilities; ``importlib.metadata`` would add more than 10 ms to each.
    """
    import tlslite

    return str(getattr(tlslite, "__version__", "unknown"))


class TlsliteBackend:
    """The object registered under ``tlsc.backends``; satisfies ``tlsc.session.Backend``."""

    name = "tlslite"

    def info(self) -> BackendInfo:
        return BackendInfo(
            name=self.name,
            version=__version__,
            library="tlslite-ng",
            library_version=_library_version(),
            capabilities=CAPABILITIES,
        )

    def client_context(self, config: ClientConfig, warn: Warn) -> TlsliteClientContext:
        """Parse anchors and credentials once; ConfigError (96) / EngineError (97) on failure."""
        verifier = None
        if config.verify:
            store = _trust_store(config.anchors, warn)
            server_name = config.server_name

            def verifier(chain_der: list[bytes]) -> None:
                store.verify(chain_der, server_name)

        cert_chain = private_key = None
        if config.cert_chain or config.private_key is not None:
            if config.private_key is None:
                raise ConfigError("KEYFILE: no private key given for the client certificate")
            cert_chain, private_key = load_credentials(config.cert_chain, config.private_key)
        settings = make_settings()
        return TlsliteContext(
            partial(TlsliteSession, settings, verifier, config.sni, cert_chain, private_key)
        )

    def server_context(self, config: ServerConfig, warn: Warn) -> TlsliteServerContext:
        """:meth:`tlsc.session.Backend.server_context`: the same checks, the other role.

        With ``verify_client`` the client's chain is verified as a server's
        would be, but for the clientAuth purpose and with no name check; with
        ``client_cert_optional`` too, a client that sends none is served.
        """
        verifier = None
        if config.verify_client:
            store = _trust_store(config.anchors, warn)

            def verifier(chain_der: list[bytes]) -> None:
                store.verify(chain_der, None, peer="client")

        cert_chain, private_key = load_credentials(config.cert_chain, config.private_key)
        settings = make_settings()
        return TlsliteContext(
            partial(
                TlsliteServerSession,
                settings,
                verifier,
                cert_chain,
                private_key,
                config.client_cert_optional,
            )
        )

    def verify_chain(
        self,
        chain_der: Sequence[bytes],
        anchors_der: Sequence[bytes],
        server_name: str | None = None,
        at_time: datetime | None = None,
    ) -> None:
        """:meth:`tlsc.session.Backend.verify_chain`: the module-level :func:`verify_chain`.

        A method so that the conformance harness can reach it through the
        backend object the entry point names, like every other backend call.
        """
        verify_chain(list(chain_der), list(anchors_der), server_name, at_time)


backend = TlsliteBackend()
