"""The ``openssl`` backend of tlsc: OpenSSL through pyOpenSSL, over memory BIOs.

Registered in the ``tlsc.backends`` entry-point group as ``backend``, an
object satisfying :class:`tlsc.session.Backend`.  Besides the interface it
exports :func:`verify_chain`, the handshake's verification rules without a
handshake, for the conformance harness.

Modules, one concern each:

* :mod:`.context`     -- ``ClientConfig``/``ServerConfig`` → ``SSL.Context``;
* :mod:`.credentials` -- parsing the certificate chain and key bytes;
* :mod:`.anchors`     -- trust anchors into the store when the peer's chain reaches them;
* :mod:`.verify`      -- OpenSSL's chain checks + the policy, callback and standalone;
* :mod:`.policy`      -- the verification rules OpenSSL does not apply as we want;
* :mod:`.session`     -- one connection over memory BIOs;
* :mod:`.errors`      -- OpenSSL error queue → the interface's exception classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import OpenSSL
from OpenSSL import SSL

from tlsc.session import BackendInfo, Capabilities, ClientConfig, ServerConfig, Warn

from .context import (
    OpenSSLClientContext,
    OpenSSLServerContext,
    build_context,
    build_server_context,
)
from .verify import verify_chain

__all__ = ["OpenSSLBackend", "__version__", "backend", "verify_chain"]

__version__ = "0.1.0"

CAPABILITIES = Capabilities(
    tls_versions=("TLSv1.2", "TLSv1.3"),
    key_types=("RSA", "ECDSA", "Ed25519"),
    client_certificates=True,
    write_after_close_notify=True,  # TLS 1.3 half-close; TLS 1.2 raises WriteClosed
    server=True,
)


class OpenSSLBackend:
    """The :class:`tlsc.session.Backend` for OpenSSL."""

    name = "openssl"

    def info(self) -> BackendInfo:
        openssl = SSL.OpenSSL_version(SSL.OPENSSL_VERSION).decode("ascii", "replace")
        return BackendInfo(
            name=self.name,
            version=__version__,
            library="pyOpenSSL",
            library_version=f"{OpenSSL.__version__} ({openssl})",
            capabilities=CAPABILITIES,
        )

    def client_context(self, config: ClientConfig, warn: Warn) -> OpenSSLClientContext:
        return build_context(config, warn)

    def server_context(self, config: ServerConfig, warn: Warn) -> OpenSSLServerContext:
        return build_server_context(config, warn)

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


backend = OpenSSLBackend()
