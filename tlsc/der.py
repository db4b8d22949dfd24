"""Just enough DER to read certificate files and a certificate's subject.

The core never imports a crypto library, yet it must (a) split CADIR/CAFILE/
CERTFILE contents into DER certificates for any backend and (b) render the
peer's subject for ``SSL_PEER_CERT_SUBJECT`` identically whatever the backend.
Doing both here, once, is what makes the SSL_* values the same across
backends by construction.  Nothing here *trusts* a certificate: validation is
the backend's job.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

__all__ = [
    "DERError",
    "certificates_in",
    "peer_cert_hash",
    "subject_rfc4514",
]


class DERError(ValueError):
    """Not the DER we expected."""


def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the element at ``pos``."""
    if pos + 2 > len(data):
        raise DERError("truncated element")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise DERError("high tag numbers are not used in certificates")
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 4 or pos + n > len(data):
            raise DERError("bad length")
        length = int.from_bytes(data[pos : pos + n], "big")
        pos += n
    if pos + length > len(data):
        raise DERError("truncated element")
    return tag, pos, pos + length


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    out = []
    while start < end:
        tag, cstart, cend = _tlv(data, start)
        out.append((tag, cstart, cend))
        start = cend
    return out


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


_PEM = re.compile(
    rb"-----BEGIN (?:X509 |TRUSTED )?CERTIFICATE-----\s*(.*?)"
    rb"-----END (?:X509 |TRUSTED )?CERTIFICATE-----",
    re.S,
)


def certificates_in(data: bytes) -> list[bytes]:
    """Every certificate in a file: all PEM blocks, else the file itself if it is DER."""
    if b"-----BEGIN" in data:
        out = []
        for m in _PEM.finditer(data):
            try:
                der = base64.b64decode(b"".join(m.group(1).split()), validate=True)
            except (binascii.Error, ValueError):
                continue
            out.append(der)
        return out
    return [data] if looks_like_der_certificate(data) else []


def peer_cert_hash(der: bytes) -> str:
    return "SHA256:" + hashlib.sha256(der).hexdigest()


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
        return body.decode("utf-16-be")
    if tag == 0x1C:  # UniversalString
        return body.decode("utf-32-be")
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


def subject_rfc4514(cert_der: bytes) -> str:
    """The certificate's subject as cryptography's ``Name.rfc4514_string()`` renders it."""
    try:
        _, s, e = _tlv(cert_der, 0)
        _, ts, te = _children(cert_der, s, e)[0]
        fields = _children(cert_der, ts, te)
        if fields and fields[0][0] == 0xA0:  # explicit [0] version
            fields = fields[1:]
        # serialNumber, signature, issuer, validity, subject
        _, ss, se = fields[4]
        return _name_rfc4514(cert_der, ss, se)
    except (DERError, IndexError, ValueError, UnicodeDecodeError) as e:
        raise DERError(f"cannot read the certificate subject: {e}") from None
