"""The ``stdlib`` backend of tlsc: Python's own ``ssl`` module over ``MemoryBIO``.

It ships with the core distribution (no third-party dependency), so that
installing tlsc alone gives a working tlsc, and it is the lightest backend to
start.  The registry imports it only when it is selected (lowest priority:
openssl, tlslite, stdlib).

Why ``_ssl`` and not ``ssl``: Python's ``ssl`` module is two halves.  ``_ssl``
is the C binding of OpenSSL (contexts, SSL objects, ``MemoryBIO``, the error
classes); ``ssl.py`` re-exports it and adds sockets, enums and conveniences.
A session over memory BIOs needs the first half only, and importing the
second costs more than everything else tlsc does before its handshake: about
18 ms of a 49 ms start here (``socket``, ``enum``, ``re``, ``base64`` and the
enums it builds), for a program started once per connection.  So this backend
calls what ``ssl.py`` itself calls -- ``_SSLContext``, its ``_wrap_bio``,
``_msg_callback`` and ``_host_flags``, ``MemoryBIO``, the SSL object's
methods -- with the plain ints ``ssl.py`` would wrap in enums.  All of it has
been there, unchanged, since Python 3.8; ``tests/test_stdlib_backend.py``
pins that a run never imports ``ssl``.

Modules, one concern each:

* :mod:`.context` -- ``ClientConfig``/``ServerConfig`` → an ``_SSLContext``;
* :mod:`.session` -- one connection, an ``SSLObject`` between two memory BIOs;
* :mod:`.checks`  -- the verification rules OpenSSL's flags cannot express;
* :mod:`.errors`  -- ``SSLError`` → the interface's exception classes.

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

import _ssl
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
            library_version=f"{sys.version.split()[0]} ({_ssl.OPENSSL_VERSION})",
            capabilities=CAPABILITIES,
        )

    def client_context(self, config: ClientConfig, warn: Warn) -> StdlibClientContext:
        return build_client_context(config, warn)

    def server_context(self, config: ServerConfig, warn: Warn) -> StdlibServerContext:
        return build_server_context(config, warn)


backend = StdlibBackend()
