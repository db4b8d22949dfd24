"""The sans-I/O TLS session interface that every backend implements.

Theory of operation
===================

The core (``tlsc``) owns every file descriptor, the poll loop, the clock and the
child process.  A backend owns nothing but TLS state: it turns ciphertext into
plaintext and back, and answers questions about the connection.  It never reads
or writes a descriptor, never sleeps, never looks at the time except to check
certificate validity, and never prints: it *raises* and the core reports.

A backend module (registered in the entry-point group ``tlsc.backends``) exposes
one object satisfying :class:`Backend`.  The core calls::

    ctx = backend.client_context(config, warn)   # ConfigError -> 96, EngineError -> 97
    s = ctx.session()                             # one per connection

and then drives ``s`` with these calls, **draining** :meth:`Session.data_to_send`
after every one of them, *including calls that raised*: a fatal alert is
ciphertext too, and the peer deserves to read it.  (A run of ``read`` calls
is drained once at its end: nothing waits in between.)

``receive_data(data)``
    Ciphertext that arrived from the network.  ``b""`` means the network
    reached EOF.  Never raises: problems surface from the next
    ``do_handshake``/``read``.

``do_handshake() -> bool``
    Makes as much handshake progress as the received bytes allow.  ``True``
    once the handshake is complete (then and forever after).  ``False`` means
    "needs input": drain ``data_to_send``, wait for the network, call
    ``receive_data`` and try again.  Raises :class:`VerificationError` when the
    server certificate is not acceptable (the backend has already queued the
    matching alert), :class:`AlertReceived` when the peer aborted,
    :class:`ProtocolError` on garbage and :class:`Truncated` on EOF.
    Certificate and name checks happen *inside* the handshake, before a client
    certificate is sent.

``read(max_bytes) -> bytes | None``
    Plaintext, at most ``max_bytes``.  ``None`` means "needs input" (nothing
    decryptable is buffered).  ``b""`` means the peer sent close_notify: its
    data is over, cleanly and authentically.  When ``receive_data(b"")`` was
    called and nothing is buffered, ``read`` raises :class:`Truncated`: EOF
    without close_notify.  The core decides whether that is fatal (-J) or an
    ordinary end (-j).  Plaintext decrypted before an error is returned by the
    calls before the one that raises, never swallowed.

``write(data) -> None``
    Encrypts all of ``data`` into ``data_to_send``.  The backend does not bound
    its output: the core bounds it by not calling ``write`` while its own
    outgoing buffer is above its high-water mark.  Raises
    :class:`WriteClosed` when the session can no longer send (after our
    close_notify, or after the peer's when the backend lacks
    ``Capabilities.write_after_close_notify``).

``close_notify() -> None``
    Queues a close_notify alert.  Idempotent.  Further ``write`` calls raise
    :class:`WriteClosed`; ``read`` keeps working so the peer's last records and
    its own close_notify can still be collected.

``data_to_send() -> bytes``
    Everything the backend has produced for the network, all of it, at once.
    The core writes each flight in one ``write`` so that Nagle never splits a
    handshake flight.

``facts() -> Facts``
    Valid once the handshake is complete.

Who bounds the buffers: the core.  It feeds ``receive_data`` at most one read
(128 KiB) at a time and only when it has room for the plaintext that may come
out of it, and it pulls plaintext with ``read`` only while prog's pipe buffer
has room.  A backend buffers at most what it was given.

Errors and their words (the same failure gets the same words from every
backend).  A backend never words a failure: it raises one of the
classes below with a reason code from :mod:`tlsc.reasons` and, optionally, a
detail that the core prints *after* the words::

    raise VerificationError(Reason.EXPIRED)
    raise VerificationError(Reason.NAME_MISMATCH, reasons.not_valid_for(name))
    raise VerificationError(Reason.UNKNOWN_CA, "unable to get local issuer certificate")
    raise AlertReceived(Reason.ALERT, reasons.alert_name(library_text_or_number))
    raise ProtocolError(Reason.PROTOCOL, "not a TLS record")
    raise ProtocolError(Reason.BAD_RECORD, "bad record MAC")
    raise Truncated(Reason.TRUNCATED)

``error.reason`` and ``error.detail`` are what was raised; ``str(error)`` is
"words: detail".  Words that depend on the role ("the server sent a fatal
alert" in tlsc, "the client sent ..." in tlsd) are filled in by the core,
which knows its role (:func:`tlsc.reasons.describe`); a backend states the
fact (``Reason.ALERT``, detail the alert's RFC name) and nothing else.  The
handshake timeout (``Reason.TIMEOUT``) and an SNI that is not a DNS name
(``Reason.INVALID_SNI``) are the core's own findings.  A plain string in
place of a reason is accepted and becomes the detail of the class's
``default_reason``.

Close semantics, told apart: ``read`` returning ``b""`` is close_notify (clean);
``Truncated`` is EOF without close_notify (a truncation attack under -J); any
other :class:`TLSError` is a fatal error.

Trust anchors (``ClientConfig.anchors``, ``ServerConfig.anchors``) are a
:class:`TrustAnchors`: the ``(origin, DER)`` pairs of every distinct anchor
(whatever sequence of pairs a caller passes is made one), already sorted from
what is not a certificate, which the core reported.  A system trust store is
~140 of them and a handshake needs one or two, so parsing them all costs
every connection dearly.  A backend either loads them all, cheaply (one call
into its library, no per-certificate objects of ours), or, if it can see the
peer's chain before verifying it, loads only ``anchors.for_chain(chain)``
(or looks them up one by one: ``issuers_of``, ``with_subject_of``).  Names
are matched as OpenSSL matches them.  It warns (``warn``) about an anchor its
library refuses, skips it, and raises :class:`ConfigError` when it can use
none; a backend that parses lazily may instead find out in the handshake.

Start-up cost is part of the contract: the core imports nothing on a run but
what the run executes (see ``tests/test_startup.py``), and a backend should
do the same: no ``importlib.metadata`` and nothing else that only
``--list-backends`` or a type checker needs.
"""

from __future__ import annotations

from _collections_abc import Callable  # = collections.abc's, loaded at start

from .anchors import TrustAnchors
from .names import sni_for
from .reasons import Reason, words

#: ``typing.TYPE_CHECKING`` without importing ``typing`` (about 1 ms of every
#: start); type checkers treat any name ``TYPE_CHECKING`` as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from .protocols import Backend, ClientContext, ServerContext, Session

__all__ = [
    "AlertReceived",
    "Backend",
    "BackendInfo",
    "Capabilities",
    "ClientConfig",
    "ClientContext",
    "ConfigError",
    "EngineError",
    "Facts",
    "ProtocolError",
    "Reason",
    "ServerConfig",
    "ServerContext",
    "Session",
    "TLSError",
    "Truncated",
    "TrustAnchors",
    "VerificationError",
    "Warn",
    "WriteClosed",
]

Warn = Callable[[str], None]


def __getattr__(name: str) -> object:
    """The Protocol classes, from :mod:`tlsc.protocols` on first use.

    They exist for type checkers and ``isinstance``; a run needs none of them,
    and defining them needs ``typing``.
    """
    if name in ("Backend", "ClientContext", "ServerContext", "Session"):
        from . import protocols

        return getattr(protocols, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# -- errors -----------------------------------------------------------------
#
# Local configuration problems (96, 97) are distinct from remote TLS failures
# (98) so that the exit code of each falls out of the type.


class ConfigError(Exception):
    """Trust anchors, certificate or key are unreadable or invalid: exit 96."""


class EngineError(Exception):
    """The backend could not set up its TLS engine: exit 97."""


class TLSError(Exception):
    """A TLS failure on this connection: exit 98.

    ``TLSError(reason, detail=None)``: ``reason`` is a :class:`tlsc.reasons.Reason`
    (the core's words), ``detail`` what the backend adds after them.  ``str()``
    is the words, then ``: detail``; the core words its fatal line with
    :func:`tlsc.reasons.describe`, which also names the peer's role.  A plain
    string instead of a Reason (older third-party backends) becomes the
    detail of the class's :attr:`default_reason`.
    """

    #: The reason of an error raised with a plain string.
    default_reason: Reason = Reason.FAILURE

    def __init__(self, reason: Reason | str, detail: str | None = None) -> None:
        if isinstance(reason, Reason):
            self.reason, self.detail = reason, detail
        else:
            text = f"{reason}: {detail}" if detail else str(reason)
            self.reason, self.detail = self.default_reason, text or None
        super().__init__(self.reason, self.detail)

    def __str__(self) -> str:
        return words(self.reason, self.detail)


class VerificationError(TLSError):
    """The peer's certificate chain or name was not acceptable."""

    default_reason = Reason.INVALID_CERTIFICATE


class AlertReceived(TLSError):
    """The peer sent a fatal alert: :attr:`Reason.ALERT`, detail its name (``alert_name``)."""

    default_reason = Reason.ALERT


class ProtocolError(TLSError):
    """The peer sent something that is not valid TLS, or a record failed to decrypt."""

    default_reason = Reason.PROTOCOL


class Truncated(TLSError):
    """The network reached EOF without a close_notify."""

    default_reason = Reason.TRUNCATED


class WriteClosed(TLSError):
    """The session can no longer send application data."""

    default_reason = Reason.WRITE_CLOSED


# -- data -------------------------------------------------------------------
#
# Plain classes, not dataclasses: importing ``dataclasses`` (it pulls in
# ``inspect``, ``ast``, ``dis``, ``tokenize``) and generating each class's
# methods cost several ms of every connection.  Treat instances as read-only.


class Capabilities:
    """What a backend can do; the documented differences between backends live here."""

    __slots__ = (
        "client_certificates",
        "key_types",
        "server",
        "standalone_verifier",
        "tls_versions",
        "write_after_close_notify",
    )

    def __init__(
        self,
        tls_versions: tuple[str, ...],
        key_types: tuple[str, ...] = ("RSA", "ECDSA"),
        client_certificates: bool = True,
        write_after_close_notify: bool = True,
        server: bool = False,
        standalone_verifier: bool = True,
    ) -> None:
        self.tls_versions = tls_versions
        self.key_types = key_types
        self.client_certificates = client_certificates
        #: Can we still send application data after the peer's close_notify
        #: (TLS 1.3 half-close)?  If not, prog's later output is discarded.
        self.write_after_close_notify = write_after_close_notify
        self.server = server
        #: Does the backend have :meth:`Backend.verify_chain`, its handshake's
        #: verification rules without a handshake?  False (the stdlib backend:
        #: Python's ``ssl`` verifies only inside a handshake): the conformance
        #: harness judges its path battery through real handshakes instead
        #: (:mod:`tlsc.testing.handshakepaths`).
        self.standalone_verifier = standalone_verifier


class BackendInfo:
    """What ``tlsc --list-backends`` prints about a backend."""

    __slots__ = ("capabilities", "library", "library_version", "name", "version")

    def __init__(
        self,
        name: str,
        version: str,
        library: str,
        library_version: str,
        capabilities: Capabilities,
    ) -> None:
        self.name = name
        self.version = version
        self.library = library
        self.library_version = library_version
        self.capabilities = capabilities


class ClientConfig:
    """Everything a backend needs to build a client context, already read by the core.

    The core reads the files (it owns descriptors and error reporting); the
    backend parses their contents (it owns the crypto library).
    """

    __slots__ = ("anchors", "cert_chain", "extra", "private_key", "server_name", "verify")

    def __init__(
        self,
        anchors: Iterable[tuple[str, bytes]] = (),
        verify: bool = True,
        server_name: str | None = None,
        cert_chain: Sequence[bytes] = (),
        private_key: bytes | None = None,
        extra: dict[str, str] | None = None,
    ) -> None:
        #: Trust anchors, one DER certificate each, with where it came from (for
        #: messages), looked up by subject name when the backend wants (see above).
        self.anchors = TrustAnchors.of(anchors)
        #: False under --no-verify-cert: accept any server certificate.
        self.verify = verify
        #: -k: a DNS name or an IP address literal the server certificate must match.
        self.server_name = server_name
        #: -y: the client certificate chain, leaf first, DER each.
        self.cert_chain = cert_chain
        #: -y: the private key file's content, DER or PEM.
        self.private_key = private_key
        self.extra = {} if extra is None else extra

    @property
    def sni(self) -> str | None:
        """The name to send as SNI: -k when it is a DNS name (:func:`tlsc.names.sni_for`)."""
        return sni_for(self.server_name)


class ServerConfig:
    """What ``tlsd`` hands a backend to build a server context."""

    __slots__ = ("anchors", "cert_chain", "client_cert_optional", "private_key", "verify_client")

    def __init__(
        self,
        cert_chain: Sequence[bytes],
        private_key: bytes,
        verify_client: bool = False,
        anchors: Iterable[tuple[str, bytes]] = (),
        client_cert_optional: bool = False,
    ) -> None:
        #: KEYFILE/CERTFILE: the server's chain, leaf first, DER each, and its key file's content.
        self.cert_chain = cert_chain
        self.private_key = private_key
        #: -Y/-y: ask for a client certificate and verify it under ``anchors`` (clientAuth);
        #: one that does not pass fails the handshake.
        self.verify_client = verify_client
        #: -y: the anchors client certificates must chain to, as ``ClientConfig.anchors``.
        self.anchors = TrustAnchors.of(anchors)
        #: -Y: with ``verify_client``, a client that sends no certificate is served
        #: (``facts().peer_certificate`` is None); otherwise (-y) it is refused.
        self.client_cert_optional = client_cert_optional


class Facts:
    """Connection facts, the same strings from every backend."""

    __slots__ = ("cipher", "peer_certificate", "protocol", "server_name")

    def __init__(
        self,
        protocol: str,
        cipher: str,
        peer_certificate: bytes | None,
        server_name: str | None,
    ) -> None:
        self.protocol = protocol  #: "TLSv1.2" or "TLSv1.3"
        self.cipher = cipher  #: OpenSSL naming, e.g. "TLS_AES_128_GCM_SHA256"
        self.peer_certificate = peer_certificate  #: the peer's leaf certificate, DER
        self.server_name = server_name  #: the SNI sent (client) or received (server)
