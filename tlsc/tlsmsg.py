"""The peer's chain from a message callback, and the trust anchors it reaches, for all backends.

Theory of operation
===================

A backend built on OpenSSL can learn the peer's certificate chain *before*
OpenSSL verifies it only through OpenSSL's message callback, which hands over
each handshake message as it was received (decrypted, in TLS 1.3 too).  Both
OpenSSL backends (``stdlib``, through Python's ``ssl``; ``openssl``, through
pyOpenSSL's bindings) take the chain out of the Certificate message there
(:func:`certificates_in_message`), and put into their library's store the
trust anchors that chain can reach (:meth:`tlsc.anchors.TrustAnchors.for_chain`),
and only those: a system trust store is ~140 anchors, which cost OpenSSL
milliseconds to decode on every connection, for the one or two a handshake
uses.  :class:`AnchorsOnDemand`, one per context, hands each anchor out once,
the first time a chain reaches it, so that a second connection adds nothing
twice and an unusable anchor is warned about once; a chain that cannot be read
gets every anchor, so that the library judges it as it would have without all
this (and refuses it, in the same words as before).

One reader here, in the core, so that every backend reads the same chain;
nothing here needs (or may import) a crypto library.

Layout read (RFC 5246 7.4.2, RFC 8446 4.4.2), the 4-byte header included::

    handshake:  type 11 | length(3) | body
    TLS 1.2:    certificate_list<0..2^24-1> of ASN.1Cert<1..2^24-1>
    TLS 1.3:    certificate_request_context<0..2^8-1>
                certificate_list<0..2^24-1> of
                    cert_data<1..2^24-1> | extensions<0..2^16-1>
"""

from __future__ import annotations

#: ``typing.TYPE_CHECKING`` without importing ``typing`` (a stdlib run never imports it).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from .anchors import Anchor, TrustAnchors

__all__ = [
    "AnchorsOnDemand",
    "CERTIFICATE",
    "COMPRESSED_CERTIFICATE",
    "MessageError",
    "certificates_in_message",
    "vector",
]

#: Handshake message types: Certificate, and RFC 8879's CompressedCertificate,
#: which carries the same chain compressed (a backend that cannot read it must
#: act as if it never saw the chain).
CERTIFICATE = 11
COMPRESSED_CERTIFICATE = 25

_TLS13 = 0x0304


class MessageError(ValueError):
    """A handshake message that does not have the structure of RFC 5246/8446."""


def vector(data: bytes, pos: int, width: int, what: str = "message") -> tuple[bytes, int]:
    """The vector with a ``width``-byte length at ``pos``, and where it ends.

    Raises :class:`MessageError` ("truncated ``what``") when ``data`` ends
    before the vector does.
    """
    if pos + width > len(data):
        raise MessageError(f"truncated {what}")
    n = int.from_bytes(data[pos : pos + width], "big")
    end = pos + width + n
    if end > len(data):
        raise MessageError(f"truncated {what}")
    return data[pos + width : end], end


def certificates_in_message(message: bytes, version: int) -> list[bytes]:
    """The DER certificates of a Certificate handshake message (its 4-byte header included).

    ``version`` is the negotiated protocol (0x0304 for TLS 1.3, whose entries
    carry extensions and whose list follows a request context).  Nothing is
    checked about the certificates themselves: they are the bytes sent.
    """
    what = "Certificate message"
    body, end = vector(message, 1, 3, what)
    if message[:1] != bytes((CERTIFICATE,)) or end != len(message):
        raise MessageError("not a Certificate message")
    pos = 0
    if version == _TLS13:
        _context, pos = vector(body, 0, 1, what)
    entries, end = vector(body, pos, 3, what)
    if end != len(body):
        raise MessageError("trailing bytes in the Certificate message")
    out: list[bytes] = []
    pos = 0
    while pos < len(entries):
        cert, pos = vector(entries, pos, 3, what)
        if version == _TLS13:
            _extensions, pos = vector(entries, pos, 2, what)
        out.append(cert)
    return out


class AnchorsOnDemand:
    """The anchors of a :class:`~tlsc.anchors.TrustAnchors` not yet handed to a store."""

    __slots__ = ("_anchors", "_given")

    def __init__(self, anchors: TrustAnchors) -> None:
        self._anchors = anchors
        self._given: set[bytes] = set()

    def take_for(self, chain_der: Sequence[bytes] | None) -> list[Anchor]:
        """The anchors ``chain_der`` can reach (``TrustAnchors.for_chain``) not taken yet.

        ``None`` (the chain could not be read, or was never seen): every
        anchor not taken yet, so that the library judges the chain with all
        of them, as it would have without this class.
        """
        found = self._anchors if chain_der is None else self._anchors.for_chain(chain_der)
        new = [(origin, der) for origin, der in found if der not in self._given]
        self._given.update(der for _origin, der in new)
        return new
