"""Trust anchors, read once by the core and looked up by subject name.

Theory of operation
===================

A system trust store is what most users give (``CAFILE=/etc/ssl/certs/
ca-certificates.crt``, ``CADIR=/etc/ssl/certs``): some 140 anchors, read on
every connection, of which a handshake needs one or two.  Parsing all of them
costs a TLS library milliseconds (OpenSSL decodes every public key) to tens
of milliseconds (pure Python), per connection.  So the core hands a backend
a :class:`TrustAnchors`, which is two things at once:

* the sequence of ``(origin, DER)`` pairs it always was, every distinct
  anchor once (a CADIR holding the bundle, the files and their hash links
  yields each certificate once), for a backend that loads them all: in one
  call if its library allows;
* an index by subject name, for a backend that can learn the peer's chain
  before it verifies it: :meth:`TrustAnchors.for_chain` gives the anchors a
  path builder could ever use for that chain, :meth:`TrustAnchors.issuers_of`
  and :meth:`TrustAnchors.with_subject_of` the ones for one certificate.
  Such a backend parses only those.

Names are compared as OpenSSL compares them (:func:`tlsc.der.name_key`), so a
backend that verifies with OpenSSL loses nothing by looking anchors up here;
a backend with its own path builder compares the candidates it gets with its
own rules, and can only end up stricter, never more lenient, than OpenSSL.

Reading an anchor costs a walk of its DER to its issuer and subject names.
A look-up canonicalises only the subjects that may match (a byte-wise test
that lets too many through, never too few: :meth:`TrustAnchors._named`), so
a backend that loads everything never pays for it, and one that looks up a
chain pays for a handful of names, not for the whole store.
"""

from __future__ import annotations

import codecs
from _collections_abc import Sequence  # = collections.abc's, loaded at start

from .der import DERError, name_key, tbs_names

#: ``typing.TYPE_CHECKING`` without importing ``typing`` (see :mod:`tlsc.session`).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

__all__ = ["TrustAnchors"]

Anchor = tuple[str, bytes]


class TrustAnchors(Sequence[Anchor]):
    """Distinct trust anchors, ``(origin, DER)`` each, in the order they were added."""

    __slots__ = ("_anchors", "_keys", "_lowered", "_names", "_seen")

    def __init__(self, anchors: Iterable[Anchor] = ()) -> None:
        self._anchors: list[Anchor] = []
        #: (issuer, subject) of each anchor, the DER of each Name.
        self._names: list[tuple[bytes, bytes]] = []
        self._seen: set[bytes] = set()
        #: Canonical subjects (tlsc.der.name_key) of the anchors that needed one.
        self._keys: dict[int, object] = {}
        #: Every subject, lowered, end to end, and where each ends (:meth:`_holding`).
        self._lowered: tuple[bytes, list[int]] | None = None
        for origin, der in anchors:
            self.add(origin, der)

    @classmethod
    def of(cls, anchors: Iterable[Anchor]) -> TrustAnchors:
        """``anchors`` itself if it is a TrustAnchors, else a TrustAnchors of its pairs."""
        return anchors if isinstance(anchors, TrustAnchors) else cls(anchors)

    def add(self, origin: str, der: bytes) -> bool:
        """Add one anchor; False if ``der`` is not a certificate (it is not added).

        "A certificate" is judged by its outline (:func:`tlsc.der.tbs_names`),
        not validated.  One already present (same DER) is not added again and
        counts as added: its first origin is kept.
        """
        der = bytes(der)
        if der in self._seen:
            return True
        try:
            names = tbs_names(der)
        except DERError:
            return False
        self._seen.add(der)
        self._anchors.append((origin, der))
        self._names.append(names)
        self._lowered = None  # made again at the next look-up
        return True

    def contains_der(self, der: bytes) -> bool:
        """Is the certificate ``der`` one of the anchors?"""
        return der in self._seen

    def __len__(self) -> int:
        return len(self._anchors)

    def __getitem__(self, i):  # noqa: ANN001, ANN204 - Sequence's index or slice
        return self._anchors[i]

    def __iter__(self) -> Iterator[Anchor]:
        return iter(self._anchors)

    def __repr__(self) -> str:
        return f"<TrustAnchors: {len(self._anchors)}>"

    # -- look-ups ---------------------------------------------------------------

    def _named(self, name_der: bytes) -> list[int]:
        """The anchors whose subject OpenSSL would call equal to ``name_der``, in order.

        Canonicalising every anchor's subject (:func:`tlsc.der.name_key`) cost
        more than the rest of reading a system trust store, for the one or two
        names a handshake looks up.  So an anchor's subject is canonicalised
        only when it may match: byte-identical to the name (the usual case:
        an issuer field copied from the CA's subject), or holding every word
        of the name's string values (:func:`_words`) once lowered.  That test
        only ever lets too many through, never too few, so the result is the
        one a full index would give.  Testing every word on every subject
        still cost ~0.3 ms a name on a system store, so the subjects tested
        are only those :meth:`_holding` finds first.
        """
        try:
            key = name_key(name_der)
        except DERError:
            return []
        words = _words(key)
        found = []
        for i in self._holding(words) if words else range(len(self._names)):
            subject = self._names[i][1]
            if subject != name_der:
                if words:
                    lowered = subject.lower()
                    if not all(any(w in lowered for w in forms) for forms in words):
                        continue
                if self._key(i) != key:
                    continue
            found.append(i)
        return found

    def _holding(self, words: list[tuple[bytes, ...]]) -> list[int]:
        """The anchors whose subject, lowered, holds a form of the longest of ``words``.

        Every subject holds every word when it is byte-identical to the name
        looked up, or canonically equal to it: no match is missed, and the
        longest word is usually the rarest.  All the subjects, lowered, are one
        byte string (made at the first look-up) searched by ``bytes.find``,
        each occurrence counted for the subject it lies in.  They are joined
        by a blank, which no form of a word holds (words are split at blanks,
        and a UTF-16/32 form holds only zeros besides the word's own bytes), so
        no occurrence runs from one subject into the next.
        """
        if self._lowered is None:
            ends = []
            at = 0
            for _, subject in self._names:
                at += len(subject)
                ends.append(at)  # where the blank after it is
                at += 1
            self._lowered = b" ".join(subject for _, subject in self._names).lower(), ends
        text, ends = self._lowered
        found = set()
        for form in max(words, key=lambda forms: len(forms[0])):
            i = 0
            at = text.find(form)
            while at >= 0:
                while ends[i] <= at:  # occurrences come in order: so do their subjects
                    i += 1
                found.add(i)
                at = text.find(form, ends[i])  # one is enough: on to the next subject
        return sorted(found)

    def _key(self, i: int) -> object:
        """The canonical subject of anchor ``i`` (None if unreadable), computed once."""
        if i not in self._keys:
            try:
                self._keys[i] = name_key(self._names[i][1])
            except DERError:
                self._keys[i] = None  # a name OpenSSL would refuse too: never a candidate
        return self._keys[i]

    def with_subject(self, name_der: bytes) -> list[Anchor]:
        """The anchors whose subject is ``name_der`` (the DER of a Name)."""
        return [self._anchors[i] for i in self._named(name_der)]

    def issuers_of(self, cert_der: bytes) -> list[Anchor]:
        """The anchors that may have issued ``cert_der``: subject = its issuer.

        Several when a CA was re-keyed under the same name: try each.  None
        for bytes that are not a certificate.
        """
        try:
            issuer, _ = tbs_names(cert_der)
        except DERError:
            return []
        return self.with_subject(issuer)

    def with_subject_of(self, cert_der: bytes) -> list[Anchor]:
        """The anchors with ``cert_der``'s subject: the ones that may *be* it (partial chains)."""
        try:
            _, subject = tbs_names(cert_der)
        except DERError:
            return []
        return self.with_subject(subject)

    def for_chain(self, chain_der: Sequence[bytes]) -> list[Anchor]:
        """Every anchor a path builder could use for the chain ``chain_der`` (any order).

        The anchors named as the subject or the issuer of a certificate of the
        chain, and the anchors that issued those, and so on up: whatever
        OpenSSL's chain building can reach by name, and nothing else.
        """
        wanted: list[bytes] = []
        for der in chain_der:
            try:
                wanted.extend(tbs_names(der))
            except DERError:
                continue
        found: set[int] = set()
        while wanted:
            for i in self._named(wanted.pop()):
                if i not in found:
                    found.add(i)
                    wanted.append(self._names[i][0])  # who issued this anchor?
        return [self._anchors[i] for i in sorted(found)]


def _words(key: tuple) -> list[tuple[bytes, ...]]:
    """What a subject's raw DER, lowered, must hold to be canonically equal to ``key``.

    One entry per ASCII word of the name's canonical string values, each in the
    forms a string type can carry it: as it is (the one-byte types and
    UTF8String: canonicalisation only lowers ASCII and folds white space, so
    the word's bytes are in the value), UTF-16 (BMPString) and UTF-32
    (UniversalString), whose ASCII characters ``bytes.lower`` lowers too.
    Words with other characters are left out (Latin-1 values are re-encoded):
    fewer words only let more subjects through to the exact comparison.
    (``codecs``' functions, not ``str.encode``: see :mod:`tlsc.der` on codecs
    after a privilege drop.)
    """
    out = []
    for rdn in key:
        for _oid, tag, value in rdn:
            if tag != 0x0C:  # not a canonicalised string: compared as it is
                continue
            for word in value.split(b" "):
                if word and word.isascii():
                    text = word.decode("ascii")
                    utf16 = codecs.utf_16_be_encode(text)[0]
                    out.append((word, utf16, codecs.utf_32_be_encode(text)[0]))
    return out
