"""Trust anchors into the context's store only when the peer's chain can reach them.

Theory of operation
===================

A system trust store (``CAFILE=/etc/ssl/certs/ca-certificates.crt``) is ~145
anchors, and OpenSSL decoding every one of them (``d2i_X509`` and
``X509_STORE_add_cert``) cost ~10 ms of every connection's start, for the one
or two a handshake uses.  So the context's store starts empty, and an anchor
goes in when a peer's chain first names it.

pyOpenSSL offers no hook between receiving the peer's chain and verifying it;
OpenSSL's message callback is one.  OpenSSL calls it with each handshake
message it received (decrypted, in TLS 1.3 too), after reading the whole
message and before processing it, so before it verifies the chain the
Certificate message carries.  pyOpenSSL does not wrap that callback, but the
binding it runs on (``cryptography``'s, which :func:`.verify.configure_store`
uses too) has ``SSL_CTX_set_msg_callback``: :func:`watch_certificates`
installs a cffi callback there.  On the peer's Certificate message it takes
the chain out (:func:`tlsc.tlsmsg.certificates_in_message`, the reader the
stdlib backend uses too) and :class:`StoreAnchors` puts the anchors that chain
can reach by name (:meth:`tlsc.anchors.TrustAnchors.for_chain`: what
OpenSSL's chain builder can find, and nothing else) into the store, each one
once per context (:class:`tlsc.tlsmsg.AnchorsOnDemand`).  The store is the
context's, shared by its sessions: no session is needed to do it.

Where the chain cannot be read (a malformed message, a CompressedCertificate
this code cannot inflate, anything raised in the callback), every anchor goes
in, and OpenSSL judges the chain as it did before all this: the handshake
then fails, or not, in the same words.  An anchor OpenSSL refuses is warned
about, in the same words as before, when a chain first reaches it; "no usable
trust anchor" at start-up (96) means no anchor passed the core's outline check
(:meth:`tlsc.anchors.TrustAnchors.add`), as for the stdlib backend.

OpenSSL copies the callback into each SSL object it makes from the context
and calls it for every record, application data included (~1 µs each, a
record is up to 16 KiB: +0.1 to +0.3 s of CPU per GiB relayed, measured);
the binding has no ``SSL_set_msg_callback`` to take it off once the
handshake is done, so it is kept as cheap as a Python call can be for those.
The cffi callback object lives as long as the ``SSL.Context`` it is
installed in (an attribute of it: pyOpenSSL's connections hold their
context), and no Python exception ever leaves it.

That price buys nothing for a handful of anchors, whose decoding costs far
less: up to :data:`AT_ONCE` anchors go into the store when the context is
made (:meth:`StoreAnchors.load_all`), and no callback is installed.  What
the user hears stays the same: an anchor OpenSSL refuses is named when a
chain reaches it, which the context's verify callback tells
(:meth:`StoreAnchors.reached`, called with each certificate OpenSSL verifies).
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.hazmat.bindings.openssl.binding import Binding
from OpenSSL import SSL, crypto

from tlsc.anchors import TrustAnchors
from tlsc.session import Warn
from tlsc.tlsmsg import (
    CERTIFICATE,
    COMPRESSED_CERTIFICATE,
    AnchorsOnDemand,
    MessageError,
    certificates_in_message,
)

from .verify import add_anchors

__all__ = ["AT_ONCE", "StoreAnchors", "watch_certificates"]

ffi = Binding.ffi
_SIGNATURE = "void(int, int, int, const void *, size_t, SSL *, void *)"

#: Up to this many anchors are all loaded when the context is made, with no message callback.
AT_ONCE = 16


class StoreAnchors:
    """A context's trust anchors, put in its store when a peer's chain reaches them."""

    def __init__(self, store: crypto.X509Store, anchors: TrustAnchors, warn: Warn) -> None:
        self._store = store
        self._pending = AnchorsOnDemand(anchors)
        self._warn = warn
        #: Refused by OpenSSL at :meth:`load_all`, told when a chain reaches them.
        self._refused: AnchorsOnDemand | None = None
        self._why: dict[bytes, str] = {}

    def load_for(self, chain_der: Sequence[bytes] | None) -> None:
        """Put the anchors ``chain_der`` can reach in the store (None: every anchor)."""
        add_anchors(self._store, self._pending.take_for(chain_der), self._warn)

    def load_all(self) -> None:
        """Every anchor into the store now; the refusals wait for :meth:`reached`."""
        refused = []
        for origin, der in self._pending.take_for(None):
            said: list[str] = []
            if not add_anchors(self._store, [(origin, der)], said.append):
                refused.append((origin, der))
                self._why[der] = said[0]
        if refused:
            self._refused = AnchorsOnDemand(TrustAnchors(refused))

    def reached(self, cert_der: bytes) -> None:
        """A chain holds ``cert_der``: warn of the refused anchors it reaches, once each."""
        if self._refused is not None:
            for _origin, der in self._refused.take_for([cert_der]):
                self._warn(self._why[der])


def watch_certificates(ctx: SSL.Context, anchors: StoreAnchors) -> None:
    """Have ``anchors`` see every Certificate message a session of ``ctx`` receives."""

    def on_message(
        write_p: int, version: int, content_type: int, buf: object, length: int,
        ssl: object, arg: object,
    ) -> None:
        if content_type != 22 or write_p or not length:  # 22: SSL3_RT_HANDSHAKE
            return  # every record comes here: the usual case first, and cheap
        try:
            kind = ffi.cast("const unsigned char *", buf)[0]
            if kind == CERTIFICATE:
                try:
                    chain: list[bytes] | None = certificates_in_message(
                        ffi.buffer(buf, length)[:], version
                    )
                except MessageError:
                    chain = None  # OpenSSL refuses it too, in its own words
                anchors.load_for(chain)
            elif kind == COMPRESSED_CERTIFICATE:
                anchors.load_for(None)
        except Exception:  # noqa: BLE001 - never into OpenSSL; all anchors, as before
            try:
                anchors.load_for(None)
            except Exception:  # noqa: BLE001, S110
                pass

    callback = ffi.callback(_SIGNATURE, on_message, onerror=_swallow)
    Binding.lib.SSL_CTX_set_msg_callback(ctx._context, callback)
    ctx._tlsc_msg_callback = callback  # type: ignore[attr-defined]  # alive as long as ctx


def _swallow(exc_type: object, exc_value: object, traceback: object) -> None:
    """What cffi calls if anything still escaped ``on_message``: nothing reaches OpenSSL."""
