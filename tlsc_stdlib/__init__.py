"""The ``stdlib`` backend of tlsc: Python's own ``ssl`` module over ``ssl.MemoryBIO``.

It ships with the core distribution (no third-party dependency), so that
installing tlsc alone gives a working tlsc, and it is the lightest backend to
start: importing it imports ``ssl`` and nothing else heavy.  The registry
imports it only when it is selected (lowest priority: openssl, tlslite, stdlib).

Modules, one concern each:

* :mod:`.context` -- ``ClientConfig``/``ServerConfig`` → ``ssl.SSLContext``;
* :mod:`.session` -- one connection, an ``SSLObject`` between two memory BIOs;
* :mod:`.checks`  -- the verification rules OpenSSL's flags cannot express;
* :mod:`.errors`  -- ``ssl.SSLError`` → the interface's exception classes.

What differs from the other backends, and why:

* no standalone verifier (``Capabilities.standalone_verifier`` is False):
  Python's ``ssl`` verifies chains only inside a handshake, so the
  conformance harness judges this backend's path validation through real
  handshakes;
* validity dates are OpenSSL's own (there is no verify callback to override
  them): the notAfter second itself already counts as expired, one second
  earlier than the inclusive end the other backends apply (README.md, "Backends").
"""

from __future__ import annotations

import ssl
import sys

from tlsc import __version__
from tlsc.session import BackendInfo, Capabilities, ClientConfig, ServerConfig, Warn

from .context import (
    StdlibClientContext,
    StdlibServerContext,
    build_client_context,
    build_server_context,
)

__all__ = ["CAPABILITIES", "StdlibBackend", "__version__", "backend"]

CAPABILITIES = Capabilities(
    tls_versions=("TLSv1.2", "TLSv1.3"),
    key_types=("RSA", "ECDSA", "Ed25519"),
    client_certificates=True,
    write_after_close_notify=True,  # TLS 1.3 half-close; TLS 1.2 raises WriteClosed
    server=True,
    standalone_verifier=False,
)


class StdlibBackend:
    """The :class:`tlsc.session.Backend` for Python's ``ssl`` module."""

    name = "stdlib"

    def info(self) -> BackendInfo:
        return BackendInfo(
            name=self.name,
            version=__version__,
            library="ssl",
            library_version=f"{sys.version.split()[0]} ({ssl.OPENSSL_VERSION})",
            capabilities=CAPABILITIES,
        )

    def client_context(self, config: ClientConfig, warn: Warn) -> StdlibClientContext:
        return build_client_context(config, warn)

    def server_context(self, config: ServerConfig, warn: Warn) -> StdlibServerContext:
        return build_server_context(config, warn)


backend = StdlibBackend()
