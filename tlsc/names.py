"""What a name is, and server-name matching (RFC 6125): one verdict for every module.

This is the one place that decides whether a string is an IP address, a DNS
name, or neither: the -k check, the SNI sent (:func:`sni_for`), the SNI
received, tlsclient's default name, the backends and the test kit all ask
here.  An IP address is written in standard notation only (``192.0.2.1``,
``::1``): ``[::1]`` is a URL's way of writing a host, not an address, and not
a DNS name either, so it is refused as a name (tlsclient strips the brackets
of its *host* argument before it gets here).

Every backend extracts the subjectAltName entries with its own parser and asks
this module, so that ``openssl`` and ``tlslite`` can never disagree on whether a
certificate is valid for a name.  The rules, deliberately strict:

* an IP address (``-k 192.0.2.1``, ``-k ::1``) matches only iPAddress SANs, by
  value, never a dNSName that happens to spell it;
* a DNS name matches dNSName SANs case-insensitively, a trailing dot ignored;
* a wildcard is allowed only as the whole left-most label (``*.example.com``),
  matches exactly one non-empty label, and needs at least two labels after it
  (``*.com`` matches nothing);
* the subject CN is never consulted.
"""

from __future__ import annotations

#: ``typing.TYPE_CHECKING`` without importing ``typing`` (see :mod:`tlsc.session`).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from ipaddress import IPv4Address, IPv6Address

    IPAddress = IPv4Address | IPv6Address

__all__ = [
    "is_dns_name",
    "is_ip_address",
    "is_reference_name",
    "match_server_name",
    "parse_ip",
    "sni_for",
]

# No regular expressions here: these checks run on every start, and compiling
# their patterns cost more (~0.3 ms) than all the checks together.


def _numeric(name: str) -> bool:
    """Digits and dots only: an IPv4 address, or a name no DNS rule accepts."""
    return bool(name) and not name.strip("0123456789.")


def parse_ip(name: str) -> IPAddress | None:
    """The address ``name`` spells in standard notation, or None (no brackets: see above).

    Only a name with a colon (IPv6) or made of digits and dots (IPv4) can be
    an address; any other is answered without importing :mod:`ipaddress`,
    which a run with a DNS name never needs (it costs ~1 ms per start).
    """
    if ":" not in name and not _numeric(name):
        return None
    import ipaddress

    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


def is_ip_address(name: str) -> bool:
    """Is ``name`` an IPv4 or IPv6 address in standard notation?"""
    return parse_ip(name) is not None


def _label(label: str) -> bool:
    """1 to 63 ASCII letters, digits and hyphens, not starting or ending with a hyphen."""
    return (
        0 < len(label) <= 63
        and label[0] != "-"
        and label[-1] != "-"
        and label.isascii()
        and label.replace("-", "").isalnum()
    )


def is_dns_name(name: str) -> bool:
    """A host name by RFC 1123 letters-digits-hyphen rules (one trailing dot allowed).

    The same rule tlslite-ng applies to SNI, so that every backend and both
    directions (-k sent, SNI received) accept exactly the same names.  An
    all-numeric name could be mistaken for an address and is refused.
    """
    if not name or not name.isascii():
        return False
    if name.endswith("."):
        name = name[:-1]
    if not name or len(name) > 253 or _numeric(name):
        return False
    return all(_label(label) for label in name.split("."))


def is_reference_name(name: str) -> bool:
    """Can ``name`` be what a certificate is checked against: an IP address or a DNS name?"""
    return parse_ip(name) is not None or is_dns_name(name)


def sni_for(name: str | None) -> str | None:
    """The SNI to send for the reference name ``name``: a DNS name as is, else none.

    An IP address is never sent (RFC 6066), nor anything that is not a DNS name.
    """
    return name if name is not None and is_dns_name(name) else None


def _ip_from_san(value: bytes | str | IPAddress) -> IPAddress | None:
    """Only called for an IP reference name: :func:`parse_ip` imported ipaddress then."""
    import ipaddress

    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return value
    if isinstance(value, bytes):
        if len(value) in (4, 16):
            return ipaddress.ip_address(value)
        return None  # a network (name constraint form) or garbage: never matches
    return parse_ip(value)


def _normalise(name: str) -> str:
    name = name.lower()
    return name[:-1] if name.endswith(".") else name


def _dns_match(pattern: str, name: str) -> bool:
    pattern = _normalise(pattern)
    if not pattern or not name:
        return False
    if "*" not in pattern:
        return pattern == name
    labels = pattern.split(".")
    if labels[0] != "*" or any("*" in label for label in labels[1:]):
        return False
    if len(labels) < 3 or any(not label for label in labels[1:]):
        return False
    name_labels = name.split(".")
    if len(name_labels) != len(labels) or not name_labels[0]:
        return False
    return name_labels[1:] == labels[1:]


def match_server_name(
    name: str,
    dns_names: Iterable[str],
    ip_addresses: Iterable[bytes | str | IPAddress],
) -> bool:
    """Is a certificate whose SANs are ``dns_names`` / ``ip_addresses`` valid for ``name``?"""
    wanted_ip = parse_ip(name)
    if wanted_ip is not None:
        return any(_ip_from_san(v) == wanted_ip for v in ip_addresses)
    if not is_dns_name(name):
        return False  # a wildcard, a space or a newline in the name we check matches nothing
    wanted = _normalise(name)
    return any(_dns_match(pattern, wanted) for pattern in dns_names)
