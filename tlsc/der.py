"""Just enough DER to read certificate files and the fields of a certificate.

The core never imports a crypto library, yet it must (a) split CADIR/CAFILE/
CERTFILE contents into DER certificates for any backend and (b) render the
peer's subject for ``SSL_PEER_CERT_SUBJECT`` identically whatever the backend.
Doing both here, once, is what makes the SSL_* values the same across
backends by construction.  Nothing here *trusts* a certificate: validation is
the backend's job.

A backend whose library does not expose a certificate's contents (the
``stdlib`` backend: Python's ``ssl`` gives DER and little else) reads the few
fields it needs here too (:func:`certificate_fields`, :func:`subject_alt_names`,
:func:`private_key_label`), so that the project keeps one DER reader.
"""

from __future__ import annotations

import binascii
import codecs
import sys

#: ``typing.TYPE_CHECKING`` without importing ``typing`` (see :mod:`tlsc.session`).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

try:
    # The interpreter's own SHA-256 (what hashlib falls back to): importing
    # hashlib has OpenSSL 3 list and fetch every digest it provides, ~2 ms and
    # 0.8 MiB of every start that does not otherwise need it, for one hash of
    # one certificate.
    # Asked for by version: a failed import is a walk of sys.path.
    if sys.version_info >= (3, 12):
        from _sha2 import sha256 as _sha256
    else:
        from _sha256 import sha256 as _sha256
except ImportError:  # a build without them
    from hashlib import sha256 as _sha256

__all__ = [
    "CertificateFields",
    "DERError",
    "certificate_fields",
    "certificates_in",
    "peer_cert_hash",
    "private_key_label",
    "subject_alt_names",
    "subject_rfc4514",
]


class DERError(ValueError):
    """Not the DER we expected."""


def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the element at ``pos``.

    Every read of a certificate goes through here (~11 calls for each anchor of
    a system trust store, on every start): one ``len``, and a one- or two-byte
    length (nearly all of them) read without a slice and ``int.from_bytes``.
    """
    size = len(data)
    if pos + 2 > size:
        raise DERError("truncated element")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise DERError("high tag numbers are not used in certificates")
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 4 or pos + n > size:
            raise DERError("bad length")
        if n == 1:
            length = data[pos]
        elif n == 2:
            length = data[pos] << 8 | data[pos + 1]
        else:
            length = int.from_bytes(data[pos : pos + n], "big")
        pos += n
    if pos + length > size:
        raise DERError("truncated element")
    return tag, pos, pos + length


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    out = []
    while start < end:
        tag, cstart, cend = _tlv(data, start)
        out.append((tag, cstart, cend))
        start = cend
    return out


def _element(data: bytes, start: int, end: int, index: int) -> bytes:
    """The ``index``-th element (header included) among those from ``start`` to ``end``."""
    for _ in range(index):
        start = _tlv(data, start)[2]
    if start >= end:
        raise DERError("missing element")
    return data[start : _tlv(data, start)[2]]


def looks_like_der_certificate(data: bytes) -> bool:
    """A SEQUENCE of SEQUENCEs spanning the whole input: worth handing to a backend."""
    try:
        tag, start, end = _tlv(data, 0)
        if tag != 0x30 or end != len(data):
            return False
        kids = _children(data, start, end)
    except DERError:
        return False
    return len(kids) == 3 and kids[0][0] == 0x30 and kids[1][0] == 0x30 and kids[2][0] == 0x03


#: The armour of a certificate block; a body is what lies between a BEGIN and
#: the next dash, when an END follows it.  Found with ``bytes.find`` rather than
#: a regular expression: compiling one cost ~0.25 ms of every start.
_PEM_BEGINS = tuple(f"-----BEGIN {k}CERTIFICATE-----".encode() for k in ("", "X509 ", "TRUSTED "))
_PEM_ENDS = tuple(b.replace(b"BEGIN", b"END") for b in _PEM_BEGINS)


def _pem_bodies(data: bytes) -> Iterator[bytes]:
    """The body of every certificate block, in order (no dash inside a body).

    One at a time: a system trust store's bodies are ~200 KiB, and holding
    them all before decoding any cost page faults (~0.1 ms a start).
    """
    at = data.find(b"-----BEGIN ")
    while at >= 0:
        nxt = at + 1
        for begin in _PEM_BEGINS:
            if data.startswith(begin, at):
                body = at + len(begin)
                dash = data.find(b"-", body)
                for end in _PEM_ENDS if dash >= 0 else ():
                    if data.startswith(end, dash):
                        yield data[body:dash]
                        nxt = dash + len(end)
                        break
                break
        at = data.find(b"-----BEGIN ", nxt)


#: What a PEM body may hold: base64, line breaks and blanks.
_PEM_BODY = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/= \t\n\r\v\f"


def certificates_in(data: bytes) -> list[bytes]:
    """Every certificate in a file: all PEM blocks, else the file itself if it is DER.

    A PEM block whose body is not base64 (stray characters, bad padding) is
    skipped.  A system trust store is ~150 blocks, read on every connection,
    hence C-level passes over each body (``translate`` deletes every allowed
    byte: anything left is a stray) rather than splitting and joining lines.
    """
    if b"-----BEGIN" in data:
        out = []
        for body in _pem_bodies(data):
            if body.translate(None, _PEM_BODY):
                continue
            try:
                out.append(binascii.a2b_base64(body))
            except binascii.Error:
                continue
        return out
    return [data] if looks_like_der_certificate(data) else []


def tbs_names(cert_der: bytes) -> tuple[bytes, bytes]:
    """(issuer, subject) of a certificate, each the DER of its Name.

    Checks the certificate's outline on the way (a SEQUENCE of TBSCertificate,
    algorithm and BIT STRING spanning the input, and the TBSCertificate's
    fields up to the subject public key): enough to tell a certificate from
    anything else, not a validation.
    """
    tag, pos, end = _tlv(cert_der, 0)
    if tag != 0x30 or end != len(cert_der):
        raise DERError("not a certificate: not a SEQUENCE spanning the input")
    ttag, pos, tbs_end = _tlv(cert_der, pos)
    atag, _, alg_end = _tlv(cert_der, tbs_end)
    stag, _, sig_end = _tlv(cert_der, alg_end)
    if (ttag, atag, stag) != (0x30, 0x30, 0x03) or sig_end != end:
        raise DERError("not a certificate")
    tag, _, field_end = _tlv(cert_der, pos)
    if tag == 0xA0:  # explicit [0] version
        tag, _, field_end = _tlv(cert_der, field_end)
    if tag != 0x02 or field_end > tbs_end:  # serialNumber
        raise DERError("not a certificate: not a TBSCertificate")
    # signature, issuer, validity, subject, subjectPublicKeyInfo: where each starts
    starts = []
    for _ in range(5):
        starts.append(field_end)
        tag, _, field_end = _tlv(cert_der, field_end)
        if tag != 0x30 or field_end > tbs_end:
            raise DERError("not a certificate: not a TBSCertificate")
    return cert_der[starts[1] : starts[2]], cert_der[starts[3] : starts[4]]


def name_key(name_der: bytes) -> tuple[tuple[tuple[bytes, int, bytes], ...], ...]:
    """A Name, reduced so that two names are equal exactly when OpenSSL says they are.

    OpenSSL compares names (X509_NAME_cmp: chain building, store look-ups) by a
    canonical form: each string value converted to UTF-8, leading and trailing
    white space dropped, inner runs of it made one space, ASCII letters in
    lower case; other value types as they are; the attributes of one RDN in
    any order.  This is that form, as one tuple per RDN of sorted
    ``(OID, tag, value)`` (tag 0x0C, UTF8String, for every string type).
    """
    try:
        tag, start, end = _tlv(name_der, 0)
        if tag != 0x30 or end != len(name_der):
            raise DERError("a Name is a SEQUENCE")
        rdns = []
        for rtag, rs, re_ in _children(name_der, start, end):
            if rtag != 0x31:
                raise DERError("RDN is not a SET")
            attrs = []
            for atag, as_, ae in _children(name_der, rs, re_):
                kids = _children(name_der, as_, ae)
                if atag != 0x30 or len(kids) != 2 or kids[0][0] != 0x06:
                    raise DERError("attribute is not a SEQUENCE of an OID and a value")
                (_, os_, oe), (vtag, vs, ve) = kids
                value = name_der[vs:ve]
                if vtag in _CANONICAL:
                    value = b" ".join(_CANONICAL[vtag](value).split()).lower()
                    vtag = 0x0C
                attrs.append((name_der[os_:oe], vtag, value))
            rdns.append(tuple(sorted(attrs)))
        return tuple(rdns)
    except (ValueError, UnicodeError) as e:
        raise DERError(f"not a Name: {e}") from None


def _utf8(value: bytes) -> bytes:
    value.decode("utf-8")  # OpenSSL refuses a name that is not UTF-8 where it says so
    return value


def _latin1(value: bytes) -> bytes:
    return value if value.isascii() else value.decode("latin-1").encode("utf-8")


#: The string types OpenSSL canonicalises (ASN1_MASK_CANON), to UTF-8.  The
#: one-byte types are read as Latin-1, as OpenSSL does; NumericString is not
#: among them.  UTF-16/32 go through ``codecs``' functions, never
#: ``decode("utf-16-be")``: a codec looked up by name is imported from disk on
#: first use, and after TLS_UID/TLS_GID dropped privileges the Python library
#: may be out of reach (LookupError).
_CANONICAL = {
    0x0C: _utf8,  # UTF8String
    0x13: _latin1,  # PrintableString
    0x14: _latin1,  # T61String
    0x16: _latin1,  # IA5String
    0x1A: _latin1,  # VisibleString
    0x1E: lambda v: codecs.utf_16_be_decode(v, "strict", True)[0].encode("utf-8"),  # BMPString
    0x1C: lambda v: codecs.utf_32_be_decode(v, "strict", True)[0].encode("utf-8"),  # Universal
}


def peer_cert_hash(der: bytes) -> str:
    return "SHA256:" + _sha256(der).hexdigest()


# -- subject rendering, byte-for-byte as cryptography's Name.rfc4514_string() --

_SHORT = {
    "2.5.4.3": "CN",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.6": "C",
    "2.5.4.9": "STREET",
    "0.9.2342.19200300.100.1.25": "DC",
    "0.9.2342.19200300.100.1.1": "UID",
}


def _oid(body: bytes) -> str:
    if not body:
        raise DERError("empty OID")
    parts: list[int] = []
    value = 0
    for b in body:
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            parts.append(value)
            value = 0
    first = parts[0]
    head = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    return ".".join(str(p) for p in head + parts[1:])


def _string(tag: int, body: bytes) -> str | bytes:
    if tag == 0x0C:  # UTF8String
        return body.decode("utf-8")
    if tag in (0x13, 0x16, 0x12, 0x1A):  # Printable, IA5, Numeric, Visible
        return body.decode("ascii", "strict")
    if tag == 0x14:  # T61String: treated as Latin-1, as cryptography does
        return body.decode("latin-1")
    if tag == 0x1E:  # BMPString
        return codecs.utf_16_be_decode(body, "strict", True)[0]
    if tag == 0x1C:  # UniversalString
        return codecs.utf_32_be_decode(body, "strict", True)[0]
    if tag == 0x03:  # BIT STRING (x500UniqueIdentifier): the bits, as bytes
        return body[1:]
    raise DERError(f"unsupported string type {tag:#x}")


def _escape(val: str | bytes) -> str:
    if not val:
        return ""
    if isinstance(val, bytes):
        return "#" + val.hex()
    for ch in ("\\", '"', "+", ",", ";", "<", ">"):
        val = val.replace(ch, "\\" + ch)
    val = val.replace("\0", "\\00")
    if val[0] == "#" or (val[0] == " " and len(val) > 1):
        val = "\\" + val
    if val[-1] == " ":
        val = val[:-1] + "\\ "
    return val


def _name_rfc4514(data: bytes, start: int, end: int) -> str:
    rdns = []
    for tag, s, e in _children(data, start, end):
        if tag != 0x31:
            raise DERError("RDN is not a SET")
        attrs = []
        for atag, as_, ae in _children(data, s, e):
            if atag != 0x30:
                raise DERError("attribute is not a SEQUENCE")
            (otag, os_, oe), (vtag, vs, ve) = _children(data, as_, ae)[:2]
            if otag != 0x06:
                raise DERError("attribute type is not an OID")
            oid = _oid(data[os_:oe])
            attrs.append(f"{_SHORT.get(oid, oid)}={_escape(_string(vtag, data[vs:ve]))}")
        rdns.append("+".join(attrs))
    return ",".join(reversed(rdns))


def _tbs(cert_der: bytes) -> tuple[int, int, int]:
    """(start, end of the TBSCertificate's content, index of serialNumber among its fields)."""
    tag, s, e = _tlv(cert_der, 0)
    if tag != 0x30 or e != len(cert_der):
        raise DERError("not a certificate")
    tbs_tag, ts, te = _tlv(cert_der, s)
    if tbs_tag != 0x30:
        raise DERError("not a certificate")
    first = _tlv(cert_der, ts)[0] if ts < te else None
    return ts, te, 1 if first == 0xA0 else 0  # explicit [0] version, or v1


def _tbs_fields(cert_der: bytes) -> list[tuple[int, int, int]]:
    """The TBSCertificate's fields from serialNumber on (the explicit version skipped)."""
    ts, te, skip = _tbs(cert_der)
    fields = _children(cert_der, ts, te)[skip:]
    if len(fields) < 6:
        raise DERError("truncated TBSCertificate")
    return fields


def subject_rfc4514(cert_der: bytes) -> str:
    """The certificate's subject as cryptography's ``Name.rfc4514_string()`` renders it."""
    try:
        # serialNumber, signature, issuer, validity, subject
        _, ss, se = _tbs_fields(cert_der)[4]
        return _name_rfc4514(cert_der, ss, se)
    except (DERError, IndexError, ValueError, UnicodeDecodeError) as e:
        raise DERError(f"cannot read the certificate subject: {e}") from None


# -- the fields a backend without a certificate parser needs --------------------

_SUBJECT_ALT_NAME = "2.5.29.17"


class CertificateFields:
    """What :func:`certificate_fields` reads from a certificate, undecoded where possible.

    A plain class (no ``dataclasses``: this module is on tlsc's start-up path).
    """

    __slots__ = ("extensions", "issuer", "key_algorithm", "subject")

    def __init__(
        self,
        issuer: bytes,
        subject: bytes,
        key_algorithm: str,
        extensions: dict[str, tuple[bool, bytes]],
    ) -> None:
        self.issuer = issuer  #: the issuer Name, DER (compare as bytes to another's ``subject``)
        self.subject = subject  #: the subject Name, DER
        self.key_algorithm = key_algorithm  #: the subjectPublicKeyInfo algorithm, a dotted OID
        #: extnID (dotted OID) -> (critical, extnValue's content)
        self.extensions = extensions


def certificate_fields(cert_der: bytes) -> CertificateFields:
    """Issuer, subject, public key algorithm and extensions of a DER certificate.

    Raises :class:`DERError` when the certificate does not have the structure
    of RFC 5280 section 4.1 (signatures and values are not checked).
    """
    try:
        fields = _tbs_fields(cert_der)
        ktag, ks, ke = fields[5]
        if ktag != 0x30:
            raise DERError("subjectPublicKeyInfo is not a SEQUENCE")
        atag, as_, ae = _children(cert_der, ks, ke)[0]
        otag, os_, oe = _children(cert_der, as_, ae)[0]
        if atag != 0x30 or otag != 0x06:
            raise DERError("bad public key algorithm")
        extensions: dict[str, tuple[bool, bytes]] = {}
        for tag, s, _e in fields[6:]:
            if tag != 0xA3:  # issuerUniqueID [1] / subjectUniqueID [2]
                continue
            _, ls, le = _tlv(cert_der, s)
            for xtag, xs, xe in _children(cert_der, ls, le):
                parts = _children(cert_der, xs, xe)
                if xtag != 0x30 or not 2 <= len(parts) <= 3 or parts[0][0] != 0x06:
                    raise DERError("bad extension")
                critical = len(parts) == 3 and cert_der[parts[1][1] : parts[1][2]] != b"\x00"
                vtag, vs, ve = parts[-1]
                if vtag != 0x04:
                    raise DERError("extension value is not an OCTET STRING")
                oid = _oid(cert_der[parts[0][1] : parts[0][2]])
                if oid in extensions:
                    raise DERError(f"extension {oid} appears twice")
                extensions[oid] = (critical, cert_der[vs:ve])
        ts, te, skip = _tbs(cert_der)
        return CertificateFields(
            issuer=_element(cert_der, ts, te, skip + 2),
            subject=_element(cert_der, ts, te, skip + 4),
            key_algorithm=_oid(cert_der[os_:oe]),
            extensions=extensions,
        )
    except IndexError:
        raise DERError("truncated certificate") from None


def subject_alt_names(fields: CertificateFields) -> tuple[list[str], list[bytes]]:
    """The subjectAltName dNSName and iPAddress entries (``([], [])`` without the extension).

    Names are decoded as Latin-1 so that an invalid (non-ASCII) dNSName is kept
    as a string that matches nothing rather than refused here; addresses are
    the raw octets (4 or 16 of them for a certificate's own address).
    """
    value = fields.extensions.get(_SUBJECT_ALT_NAME)
    if value is None:
        return [], []
    der = value[1]
    tag, s, e = _tlv(der, 0)
    if tag != 0x30 or e != len(der):
        raise DERError("subjectAltName is not a SEQUENCE")
    dns: list[str] = []
    ips: list[bytes] = []
    for gtag, gs, ge in _children(der, s, e):
        if gtag == 0x82:  # [2] IMPLICIT IA5String dNSName
            dns.append(der[gs:ge].decode("latin-1"))
        elif gtag == 0x87:  # [7] IMPLICIT OCTET STRING iPAddress
            ips.append(der[gs:ge])
    return dns, ips


def private_key_label(key_der: bytes) -> str:
    """The PEM label a DER private key goes under, told by its structure.

    ``PRIVATE KEY`` (PKCS #8), ``RSA PRIVATE KEY`` (PKCS #1), ``EC PRIVATE KEY``
    (SEC 1) or ``ENCRYPTED PRIVATE KEY`` (PKCS #8 encrypted).  Raises
    :class:`DERError` for anything else.
    """
    tag, s, e = _tlv(key_der, 0)
    if tag != 0x30 or e != len(key_der):
        raise DERError("not a private key")
    kids = _children(key_der, s, e)
    if len(kids) >= 2 and kids[0][0] == 0x30 and kids[1][0] == 0x04:
        return "ENCRYPTED PRIVATE KEY"
    if len(kids) >= 3 and kids[0][0] == 0x02:
        second = kids[1][0]
        if second == 0x30 and kids[2][0] == 0x04:
            return "PRIVATE KEY"
        if second == 0x02 and len(kids) >= 9:
            return "RSA PRIVATE KEY"
        if second == 0x04:
            return "EC PRIVATE KEY"
    raise DERError("not a private key")
