"""Name constraints (RFC 5280 4.2.1.10), judged the way OpenSSL judges them.

Theory of operation
===================

A CA's nameConstraints extension lists *permitted* and *excluded* subtrees
of names; every certificate below that CA in a path must have its names
inside a permitted subtree (of the same type, when the CA permits any of that
type) and outside every excluded one.  tlsc wants the same verdict from
every backend, and the openssl backend's verdict is OpenSSL's, so this
module follows OpenSSL 3's ``NAME_CONSTRAINTS_check`` rule for rule:

* the names of a certificate are its subject (a directoryName, when not
  empty), the emailAddress attributes of that subject (rfc822Name) and every
  subjectAltName entry.  The subject's common name is *never* a DNS name here
  (not even for name constraints; the openssl backend sets
  ``X509_CHECK_FLAG_NEVER_CHECK_SUBJECT`` for the same effect);
* the constraints of every certificate above (anchor included) apply; a
  self-issued certificate that is not the leaf is skipped (RFC 5280 6.1.3 (b):
  key rollover certificates);
* matching, per type: dNSName by whole labels added on the left (a leading
  '.' in the constraint: strictly below), ASCII case-insensitive; rfc822Name
  as a mailbox, a host or (leading '.') a domain; URI by the host part;
  iPAddress by address and mask, IPv4 never matching IPv6; directoryName by
  leading RDNs;
* a subtree with a minimum or maximum, a name of a form this module (and
  OpenSSL) cannot judge under a constraint of that same form, and a name
  that does not parse as its form are refused rather than guessed at,
  whether the extension is critical or not (name constraints bind either way).

:func:`violation` returns the first problem found, from the anchor down, as
OpenSSL reports it; None means the path is clean.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from asn1crypto import x509

__all__ = ["violation"]

#: otherName type id of SmtpUTF8Mailbox (RFC 8398): judged against rfc822Name
#: constraints, by host (OpenSSL's ``nc_email_eai``).
_SMTP_UTF8_MAILBOX = "1.3.6.1.5.5.7.8.9"

_OK, _OUTSIDE = "ok", "outside"


def violation(path: Sequence[x509.Certificate]) -> str | None:
    """Why ``path`` (leaf first, anchor last) breaks a name constraint, or None."""
    last = len(path) - 1
    for i in range(last, -1, -1):
        cert = path[i]
        if i != 0 and cert.subject == cert.issuer:
            continue  # self-issued intermediate: not subject to constraints
        for j in range(last, i, -1):
            constraints = path[j].name_constraints_value
            if constraints is None:
                continue
            problem = _check(cert, constraints)
            if problem:
                return f"{problem} (depth {i}, constraint at depth {j})"
    return None


def _names(cert: x509.Certificate) -> Iterator[tuple[str, object]]:
    """(form, value) of every name of ``cert`` that constraints apply to."""
    subject = cert.subject
    if subject.chosen:
        yield "directory_name", subject
        for rdn in subject.chosen:
            for atv in rdn:
                if atv["type"].native == "email_address":
                    yield "rfc822_name", atv["value"]
    for name in cert.subject_alt_name_value or ():
        yield name.name, name.chosen


def _check(cert: x509.Certificate, constraints: x509.NameConstraints) -> str | None:
    for form, value in _names(cert):
        problem = _match(form, value, constraints)
        if problem:
            return problem
    return None


def _subtrees(constraints: x509.NameConstraints, which: str) -> list[x509.GeneralSubtree]:
    subtrees = constraints[which]
    return list(subtrees) if subtrees.native is not None else []


def _is_mailbox(form: str, value: object) -> bool:
    """Is this an SmtpUTF8Mailbox otherName (judged as an rfc822Name)?"""
    return form == "other_name" and value["type_id"].dotted == _SMTP_UTF8_MAILBOX  # type: ignore[index]


def _same_form(form: str, value: object, base: x509.GeneralName) -> bool:
    if _is_mailbox(form, value):
        return base.name == "rfc822_name"
    if base.name != form:
        return False
    if form == "other_name":
        return bool(base.chosen["type_id"].dotted == value["type_id"].dotted)  # type: ignore[index]
    return True


def _match(form: str, value: object, constraints: x509.NameConstraints) -> str | None:
    """OpenSSL's ``nc_match``: permitted (if any of this form), then excluded."""
    seen = matched = False
    for subtree in _subtrees(constraints, "permitted_subtrees"):
        base = subtree["base"]
        if not _same_form(form, value, base):
            continue
        if not _plain(subtree):
            return "a name constraint with a minimum or maximum cannot be judged"
        seen = True
        if matched:
            continue
        verdict = _single(form, value, base.chosen)
        if verdict == _OK:
            matched = True
        elif verdict != _OUTSIDE:
            return verdict
    if seen and not matched:
        return f"{_show(form, value)} is not in a permitted subtree"
    for subtree in _subtrees(constraints, "excluded_subtrees"):
        base = subtree["base"]
        if not _same_form(form, value, base):
            continue
        if not _plain(subtree):
            return "a name constraint with a minimum or maximum cannot be judged"
        verdict = _single(form, value, base.chosen)
        if verdict == _OK:
            return f"{_show(form, value)} is in an excluded subtree"
        if verdict != _OUTSIDE:
            return verdict
    return None


def _plain(subtree: x509.GeneralSubtree) -> bool:
    """RFC 5280: minimum MUST be zero and maximum absent (OpenSSL refuses otherwise)."""
    return subtree["minimum"].native == 0 and subtree["maximum"].native is None


def _show(form: str, value: object) -> str:
    try:
        if form == "directory_name":
            return f"directoryName {value.human_friendly!r}"  # type: ignore[attr-defined]
        if form == "ip_address":
            return f"iPAddress {value.native}"  # type: ignore[attr-defined]
        return f"{form} {_ia5(value).decode('ascii', 'replace')!r}"
    except Exception:  # only for messages
        return form


def _ia5(value: object) -> bytes:
    """The raw bytes of an IA5String name (OpenSSL compares bytes, not decoded text)."""
    return bytes(value.contents or b"")  # type: ignore[attr-defined]


def _single(form: str, value: object, base: object) -> str:
    """_OK, _OUTSIDE, or a reason to refuse: OpenSSL's ``nc_match_single``."""
    if form == "dns_name":
        return _dns(_ia5(value), _ia5(base))
    if form == "rfc822_name":
        return _email(_ia5(value), _ia5(base))
    if _is_mailbox(form, value):
        return _mailbox(value["value"], _ia5(base))  # type: ignore[index]
    if form == "uniform_resource_identifier":
        return _uri(_ia5(value), _ia5(base))
    if form == "ip_address":
        return _ip(_ia5(value), _ia5(base))
    if form == "directory_name":
        return _dn(value, base)  # type: ignore[arg-type]
    return f"a name constraint on {form} cannot be judged"


def _dns(name: bytes, base: bytes) -> str:
    if not base:
        return _OK  # the empty name matches everything
    if len(name) < len(base):
        return _OUTSIDE
    if len(name) > len(base):
        tail = name[len(name) - len(base) :]
        if not base.startswith(b".") and name[len(name) - len(base) - 1 : -len(base)] != b".":
            return _OUTSIDE
        name = tail
    return _OK if name.lower() == base.lower() else _OUTSIDE


def _email(name: bytes, base: bytes) -> str:
    at = name.rfind(b"@")
    if at < 0:
        return "an rfc822Name without '@' cannot be judged"
    base_at = base.rfind(b"@")
    if base_at < 0 and base.startswith(b"."):  # a domain: any host below it
        if len(name) > len(base) and name[-len(base) :].lower() == base.lower():
            return _OK
        return _OUTSIDE
    host_base = base
    if base_at >= 0:
        if base_at > 0:  # a mailbox: local parts compared exactly
            if base[:base_at] != name[:at]:
                return _OUTSIDE
        host_base = base[base_at + 1 :]
    return _OK if name[at + 1 :].lower() == host_base.lower() else _OUTSIDE


def _mailbox(value: object, base: bytes) -> str:
    """An SmtpUTF8Mailbox against an rfc822Name constraint, by host (RFC 8398 6)."""
    inner = value.parsed if hasattr(value, "parsed") else value  # type: ignore[attr-defined]
    if getattr(inner, "tag", None) != 12:  # a UTF8String
        return "an SmtpUTF8Mailbox that is not a UTF8String cannot be judged"
    name = bytes(inner.contents or b"")  # type: ignore[attr-defined]
    at = name.rfind(b"@")
    if at < 0 or b"\x00" in base:
        return "an SmtpUTF8Mailbox without '@' cannot be judged"
    domain = base.startswith(b".")
    try:  # the constraint's A-labels as U-labels: the mailbox spells its host in UTF-8
        host = base[1:] if domain else base
        host = host.decode("ascii").encode("ascii").decode("idna").encode("utf-8")
    except UnicodeError:
        return "an rfc822Name constraint that is not a host name cannot be judged"
    if domain:
        # OpenSSL prefixes a '.' to the conversion of the whole constraint, its own
        # leading '.' included, so that a domain constraint matches no mailbox at all;
        # the same verdict as the openssl and stdlib backends matters more here.
        return _OUTSIDE
    return _OK if name[at + 1 :].lower() == host.lower() else _OUTSIDE


def _uri(name: bytes, base: bytes) -> str:
    colon = name.find(b":")
    if colon < 3 or name[colon + 1 : colon + 3] != b"//":
        return "a URI without an authority cannot be judged"
    host = name[colon + 3 :]
    end = host.find(b":")
    if end < 0:
        end = host.find(b"/")
    if end >= 0:
        host = host[:end]
    if not host:
        return "a URI without a host cannot be judged"
    if base.startswith(b"."):
        if len(host) > len(base) and host[-len(base) :].lower() == base.lower():
            return _OK
        return _OUTSIDE
    return _OK if host.lower() == base.lower() else _OUTSIDE


def _ip(address: bytes, network: bytes) -> str:
    if len(address) not in (4, 16) or len(network) not in (8, 32):
        return "an iPAddress name or constraint of the wrong length cannot be judged"
    if 2 * len(address) != len(network):
        return _OUTSIDE  # IPv4 never matches IPv6
    base, mask = network[: len(address)], network[len(address) :]
    same = all((a & m) == (b & m) for a, b, m in zip(address, base, mask, strict=True))
    return _OK if same else _OUTSIDE


def _dn(name: x509.Name, base: x509.Name) -> str:
    """Is ``base`` the leading RDNs of ``name`` (compared as RFC 4518 prepares them)?"""
    mine, theirs = list(name.chosen), list(base.chosen)
    if len(theirs) > len(mine):
        return _OUTSIDE
    return _OK if all(a == b for a, b in zip(mine, theirs[: len(mine)], strict=False)) else _OUTSIDE
