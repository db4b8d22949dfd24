"""The verification rules OpenSSL's flags cannot express, on the chain the peer sent.

Python's ``ssl`` has no verify callback: OpenSSL verifies the chain with the
flags and the security level the context sets (:mod:`.context`), and what
those cannot say is checked here, in pure Python over DER (:mod:`tlsc.der`):

* the name: the leaf's subjectAltName entries against ``-k`` through
  :func:`tlsc.names.match_server_name`, the matcher every backend uses
  (OpenSSL's own host check is never configured);
* DSA keys: security level 2 accepts a 2048-bit DSA key, tlsc refuses DSA
  anywhere on the path, anchor included.

Where the chain comes from: the context's message callback hands the session
every handshake message it reads, and :func:`tlsc.tlsmsg.certificates_in_message`
takes the certificates out of the peer's Certificate message (TLS 1.2 and 1.3
alike: the callback sees the decrypted message).  That is the chain as *sent*;
OpenSSL's verified path is not exposed before Python 3.13, so the path is
rebuilt here by names: from the leaf, issuer to subject, through the sent
certificates and the anchors, stopping at an anchor.  Every certificate so
reached is judged.  When names compared byte for byte reach no anchor (an
equivalent but differently encoded name), every certificate sent is judged
instead: the check may then refuse more than OpenSSL's path holds, never less.
"""

from __future__ import annotations

from tlsc.der import CertificateFields, DERError, certificate_fields, subject_alt_names
from tlsc.names import match_server_name
from tlsc.reasons import Reason, not_valid_for

#: ``typing.TYPE_CHECKING`` without importing ``typing`` (see :mod:`tlsc.session`).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = [
    "Anchors",
    "Problem",
    "chain_problem",
]

#: Why a chain is refused: the reason, and what the backend adds after its words.
Problem = tuple[Reason, "str | None"]

#: Public key algorithms refused anywhere on the path (id-dsa, and OIW's dsa).
_DSA = frozenset({"1.2.840.10040.4.1", "1.3.14.3.2.12"})


class _Cert:
    __slots__ = ("der", "fields")

    def __init__(self, der: bytes, fields: CertificateFields) -> None:
        self.der = der
        self.fields = fields


class Anchors:
    """The trust anchors in the context's store: their DER and the fields the path walk needs.

    Every anchor must be readable by :func:`tlsc.der.certificate_fields` (the
    context skips the others before OpenSSL sees them).
    """

    def __init__(self, anchors_der: Iterable[bytes]) -> None:
        self.der = frozenset(anchors_der)
        self.by_subject: dict[bytes, list[_Cert]] = {}
        for der in self.der:
            fields = certificate_fields(der)
            self.by_subject.setdefault(fields.subject, []).append(_Cert(der, fields))


def _path(chain: Sequence[_Cert], anchors: Anchors) -> list[_Cert]:
    """The certificates reachable from the leaf by issuer names, up to anchors (see above)."""
    sent: dict[bytes, list[_Cert]] = {}
    for c in chain:
        sent.setdefault(c.fields.subject, []).append(c)
    reached: dict[bytes, _Cert] = {}
    anchored = False
    todo = [chain[0]]
    while todo:
        c = todo.pop()
        if c.der in reached:
            continue
        reached[c.der] = c
        if c.der in anchors.der:
            anchored = True
            continue
        issuer = c.fields.issuer
        todo += [i for i in sent.get(issuer, []) + anchors.by_subject.get(issuer, []) if i is not c]
    if anchored:
        return list(reached.values())
    named = [a for c in chain for a in anchors.by_subject.get(c.fields.issuer, [])]
    return [*chain, *named]


def chain_problem(
    chain_der: Sequence[bytes], anchors: Anchors, server_name: str | None
) -> Problem | None:
    """Why a chain OpenSSL accepted must still be refused, or None.

    ``chain_der``: the certificates the peer sent, leaf first; ``server_name``:
    what the leaf must be valid for (None: no name check, as for a client
    certificate or without -k).
    """
    if not chain_der:
        return Reason.NO_PEER_CERTIFICATE, None
    try:
        chain = [_Cert(der, certificate_fields(der)) for der in chain_der]
        dns, ips = subject_alt_names(chain[0].fields)
    except DERError as e:
        return Reason.MALFORMED_CERTIFICATE, str(e)
    for c in _path(chain, anchors):
        if c.fields.key_algorithm in _DSA:
            return Reason.WEAK_KEY, "DSA keys are not accepted"
    if server_name is not None and not match_server_name(server_name, dns, ips):
        return Reason.NAME_MISMATCH, not_valid_for(server_name)
    return None
