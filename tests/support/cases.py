"""Certificate files for end-to-end tests, from the one factory (tlsc.testing.certs).

:func:`write_pki` writes a root CA and one server chain per verification
failure class (expired, not yet valid, unknown CA, self-signed, signed by a
non-CA, weak key) plus a good one valid for ``localhost``, ``127.0.0.1`` and
``::1``, each as ``<name>.key`` and ``<name>.chain`` (leaf first, PEM), and the
root as ``root.pem``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from tlsc.testing.certs import DAY, Issued, issue

NAMES = {"dns": ("localhost",), "ips": ("127.0.0.1", "::1")}


def _write(directory: Path, name: str, leaf: Issued, *issuers: Issued) -> None:
    (directory / f"{name}.key").write_bytes(leaf.key_pem())
    (directory / f"{name}.chain").write_bytes(b"".join(c.pem for c in (leaf, *issuers)))


def write_pki(directory: Path) -> Path:
    """Write the files described above into ``directory``; returns it."""
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    valid = {"not_before": now - DAY, "not_after": now + 30 * DAY}
    root = issue("words root", ca=True, **valid)
    other_root = issue("other root", ca=True, slot=1, **valid)
    (directory / "root.pem").write_bytes(root.pem)
    _write(directory, "good", issue("localhost", issuer=root, slot=2, **NAMES, **valid), root)
    _write(directory, "other_name", issue("other", issuer=root, slot=2, dns=("other.test",),
                                          **valid), root)
    _write(directory, "expired", issue("localhost", issuer=root, slot=2, **NAMES,
                                       not_before=now - 30 * DAY, not_after=now - DAY), root)
    _write(directory, "not_yet_valid", issue("localhost", issuer=root, slot=2, **NAMES,
                                             not_before=now + DAY, not_after=now + 30 * DAY),
           root)
    _write(directory, "unknown_ca", issue("localhost", issuer=other_root, slot=2, **NAMES,
                                          **valid), other_root)
    _write(directory, "self_signed", issue("localhost", slot=3, **NAMES, **valid))
    not_ca = issue("not a CA", issuer=root, slot=4, ca=False, **valid)
    _write(directory, "by_non_ca", issue("localhost", issuer=not_ca, slot=2, **NAMES, **valid),
           not_ca, root)
    _write(directory, "weak_key", issue("localhost", issuer=root, key_kind="rsa1024", **NAMES,
                                        **valid), root)
    return directory
