"""Configuration from the environment (docs/tlsc.rst, "Environment read"), read once,
before the fork.

Files are read here, as the user tlsc was started as (root, typically), so that
nothing needs reading after privileges are dropped.  What can be a usage error
(a required variable unset, a non-numeric TLS_UID) is found by the ``require_*``
functions and :func:`read_identity`, which print nothing, so that a command can
find every usage error before it prints its first warning (a usage error is the
only line printed).  Parsing the crypto material is the backend's job; this
module only finds certificates in files and reports unreadable ones with the
right exit code.
"""

from __future__ import annotations

import os
import stat

from . import exitcodes
from .anchors import TrustAnchors
from .der import certificates_in
from .exitcodes import Fatal
from .log import Log
from .names import is_dns_name

#: ``typing.TYPE_CHECKING`` without importing ``typing`` (see :mod:`tlsc.session`).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

#: Removed from prog's environment unless -Z.
TLS_VARIABLES = ("CADIR", "CAFILE", "KEYFILE", "CERTFILE", "TLS_UID", "TLS_GID")
#: tlsd's per-name credentials, ``KEYFILE:name`` / ``CERTFILE:name``: removed unless -Z too.
NAMED_PREFIXES = ("KEYFILE:", "CERTFILE:")


class Identity:
    """TLS_UID / TLS_GID, when running as root; None means keep.

    A plain class for the reason given in :mod:`tlsc.session`.
    """

    __slots__ = ("gid", "uid")

    def __init__(self, uid: int | None = None, gid: int | None = None) -> None:
        self.uid = uid
        self.gid = gid

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Identity):
            return NotImplemented
        return (self.uid, self.gid) == (other.uid, other.gid)

    def __hash__(self) -> int:
        return hash((self.uid, self.gid))

    def __repr__(self) -> str:
        return f"Identity(uid={self.uid!r}, gid={self.gid!r})"


def _slurp(path: str, size: int | None = None) -> bytes:
    """A whole file, ``size`` bytes expected (a stat's st_size), through plain system calls.

    A CADIR is read file by file on every connection, and a Python file object
    per file cost more than the reading itself.  Without ``size``, the open
    file's own (64 KiB if it has none: a pipe), so that a system trust store
    (~215 KiB) comes in one read rather than in pieces joined (~0.15 ms).
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if size is None:
            size = os.fstat(fd).st_size or 65536
        chunks = []
        while chunk := os.read(fd, max(size, 4096) + 1):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _read(path: str, what: str) -> bytes:
    try:
        return _slurp(path)
    except OSError as e:
        raise Fatal(exitcodes.CONFIG, f"unable to read {what} {path}: {e.strerror}") from None


def require_anchors(
    env: Mapping[str, str], hint: str = " (or use --no-verify-cert)"
) -> tuple[str, str]:
    """("CADIR", path) or ("CAFILE", path), CADIR winning; both unset is a usage error.

    ``hint`` ends the message when both are unset.
    """
    cadir = env.get("CADIR")
    if cadir:
        return "CADIR", cadir
    cafile = env.get("CAFILE")
    if not cafile:
        raise Fatal(exitcodes.USAGE, f"no trust anchors: set CADIR or CAFILE{hint}")
    return "CAFILE", cafile


def read_anchors(
    env: Mapping[str, str], log: Log, hint: str = " (or use --no-verify-cert)"
) -> TrustAnchors:
    """Trust anchors from CADIR (wins) or CAFILE.

    Every distinct certificate once (:class:`TrustAnchors`): a CADIR such as
    /etc/ssl/certs holds each anchor two or three times (its file, its hash
    link, the bundle), and a file reached again through another name (same
    inode) is not even read again.
    """
    source, location = require_anchors(env, hint)
    anchors = TrustAnchors()
    if source == "CADIR":
        cadir = location
        try:
            names = sorted(os.listdir(cadir))
        except OSError as e:
            raise Fatal(exitcodes.CONFIG, f"unable to read CADIR {cadir}: {e.strerror}") from None
        read: set[tuple[int, int]] = set()
        for name in names:
            path = os.path.join(cadir, name)
            try:
                st = os.stat(path)
                if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) in read:
                    continue
                read.add((st.st_dev, st.st_ino))
                data = _slurp(path, st.st_size)
            except OSError as e:
                log.warn(f"skipping {path}: {e.strerror}")
                continue
            _add_anchors(anchors, path, data, log)
        where = f"CADIR {cadir}"
    else:
        cafile = location
        _add_anchors(anchors, cafile, _read(cafile, "CAFILE"), log)
        where = f"CAFILE {cafile}"
    if not anchors:
        raise Fatal(
            exitcodes.CONFIG, f"unable to load trust anchors: no usable certificate in {where}"
        )
    return anchors


def _add_anchors(anchors: TrustAnchors, path: str, data: bytes, log: Log) -> None:
    """The certificates of one file; a file with none is skipped (a warning at -v 2)."""
    found = certificates_in(data)
    if not found:
        log.info(f"skipping {path}: no certificate in it")
    for der in found:
        if not anchors.add(path, der):
            log.warn(f"{path}: not a certificate, skipped")


def require_credentials(
    env: Mapping[str, str], why: str = "-y needs them in the environment", suffix: str = ""
) -> tuple[str, str]:
    """(CERTFILE, KEYFILE): -y (tlsd: always) requires both; one unset is a usage error.

    ``suffix`` names a pair of tlsd's instead (``":name"``: ``CERTFILE:name``...).
    """
    cvar, kvar = "CERTFILE" + suffix, "KEYFILE" + suffix
    certfile, keyfile = env.get(cvar), env.get(kvar)
    missing = [n for n, v in ((cvar, certfile), (kvar, keyfile)) if not v]
    if missing:
        raise Fatal(exitcodes.USAGE, f"missing {' and '.join(missing)}: {why}")
    assert certfile and keyfile
    return certfile, keyfile


def read_client_credentials(
    env: Mapping[str, str], why: str = "-y needs them in the environment", suffix: str = ""
) -> tuple[list[bytes], bytes]:
    """-y (tlsd: always): the chain from CERTFILE and the key from KEYFILE, both required.

    ``suffix``: as for :func:`require_credentials`.
    """
    certfile, keyfile = require_credentials(env, why, suffix)
    cvar, kvar = "CERTFILE" + suffix, "KEYFILE" + suffix
    chain = certificates_in(_read(certfile, cvar))
    if not chain:
        raise Fatal(exitcodes.CONFIG, f"unable to load {cvar} {certfile}: no certificate in it")
    return chain, _read(keyfile, kvar)


def named_credentials(env: Mapping[str, str]) -> list[str]:
    """The names of tlsd's ``KEYFILE:name`` / ``CERTFILE:name`` pairs (``-k SNILEVEL``).

    Each name must be a DNS name and have both halves (else 100); names are
    case-insensitive, so two spellings of one name are refused too.  Returned
    as spelled in the variables, sorted; the files are not read here.
    """
    seen: dict[str, str] = {}
    for var in env:
        prefix = next((p for p in NAMED_PREFIXES if var.startswith(p)), None)
        if prefix is None:
            continue
        name = var[len(prefix) :]
        if not is_dns_name(name):
            raise Fatal(exitcodes.USAGE, f"invalid {var}: {name!r} is not a DNS name")
        other = seen.setdefault(name.lower(), name)
        if other != name:
            raise Fatal(exitcodes.USAGE, f"{other!r} and {name!r} name the same server twice")
    for name in seen.values():
        require_credentials(env, f"{name} needs both halves of its pair", ":" + name)
    return sorted(seen.values())


def _numeric(env: Mapping[str, str], var: str) -> int | None:
    value = env.get(var)
    if value is None or value == "":
        return None
    if not value.isascii() or not value.isdigit():
        raise Fatal(exitcodes.USAGE, f"invalid {var}: must be a numeric id, not {value!r}")
    return int(value)


def read_identity(env: Mapping[str, str]) -> Identity:
    """TLS_UID / TLS_GID: only meaningful, and only read, when running as root."""
    if os.geteuid() != 0:
        return Identity()
    return Identity(uid=_numeric(env, "TLS_UID"), gid=_numeric(env, "TLS_GID"))


def drop_privileges(ident: Identity) -> None:
    """Groups, then gid, then uid: the order that leaves no way back."""
    try:
        if ident.gid is not None:
            os.setgroups([])
            os.setgid(ident.gid)
        if ident.uid is not None:
            if ident.gid is None:
                os.setgroups([])
            os.setuid(ident.uid)
    except OSError as e:
        raise Fatal(exitcodes.SYSTEM, f"unable to drop privileges: {e.strerror}") from None


def prog_environment(
    base: Mapping[str, str], keep_tls_vars: bool, ssl_vars: Mapping[str, str | None]
) -> dict[str, str]:
    """prog's environment: TLS variables removed unless -Z, SSL_* set or removed.

    A value holding NUL could not be passed through execve intact; refusing it
    is the only safe answer (exit 98).
    """
    env = dict(base)
    if not keep_tls_vars:
        for var in TLS_VARIABLES:
            env.pop(var, None)
        for var in [v for v in env if v.startswith(NAMED_PREFIXES)]:
            del env[var]
    for key, value in ssl_vars.items():
        if value is None:
            env.pop(key, None)
            continue
        if "\0" in value:
            raise Fatal(exitcodes.TLS, f"refusing {key}: its value holds a NUL byte")
        env[key] = value
    return env
