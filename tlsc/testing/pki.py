"""A test PKI written to files, for end-to-end tests that run real programs.

tlsc, tlsd and the TLS peers they meet (``openssl s_server``, ``gnutls-serv``,
stunnel, a stdlib ``ssl`` server) read certificates and keys from files named
in their environment or on their command line.  :func:`build_pki` writes a
whole PKI into one directory and returns a :class:`PKI` that names every
file; :func:`credential` writes one more certificate into any directory.

Theory of operation: every certificate comes from :func:`.certs.issue` (the
one certificate factory) and is written at once by :func:`credential` as a
:class:`Credential`: certificate and PKCS#8 key in PEM and DER, the chain a
server sends (leaf then intermediates, never the self-signed root) and the
issuers alone (what ``s_server -cert_chain`` takes).  Each credential gets a
fresh key of its own, so no two certificates of the PKI can vouch for each
other by accident, and the whole PKI counts its validity periods from one
moment (:attr:`PKI.now`).  Expected values a test compares with tlsc's output
(``SSL_PEER_CERT_HASH``, ``SSL_PEER_CERT_SUBJECT``) are computed here from the
certificate, independently of any backend.

The PKI (the trust anchor is :attr:`PKI.cafile`, the root; leaves name
``localhost``, ``127.0.0.1`` and ``::1`` unless said otherwise)::

    root (RSA) -> inter (pathLen 0) -> leaf_rsa, leaf_ec, wildcard, expired,
                                       not_yet_valid, wrong_name, cn_only,
                                       ip_as_dns, rsa1024, sha1, client_auth_only,
                                       unknown_critical, injection, sub_ca -> pathlen_violation
    root -> non_ca_issuer -> issued_by_non_ca
    other_root -> unknown_ca          self_signed
    client_ca -> client (ECDSA), client_rsa      (clientAuth only)
    inter -> inter_clients["rsa" | "ecdsa" | "ed25519"]   (clientAuth only)

plus trust-anchor files (PEM, DER, a bundle, junk, empty, a bad key) and
CADIR layouts whose file names have spaces, no extension or non-ASCII
characters, among junk, sub-directories and symbolic links.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from . import certs
from .certs import DAY, Issued

__all__ = [
    "LOCAL_DNS",
    "LOCAL_IPS",
    "PKI",
    "Credential",
    "build_pki",
    "credential",
]

#: The names every leaf answers to unless told otherwise: the loopback host.
LOCAL_DNS: tuple[str, ...] = ("localhost",)
LOCAL_IPS: tuple[str, ...] = ("127.0.0.1", "::1")

_UNSET: Any = object()


@dataclass(frozen=True)
class Credential:
    """A certificate and its key, and the files :func:`credential` wrote them to."""

    label: str  #: the stem of every file name
    issued: Issued
    dir: Path
    issuer: Credential | None = None

    @property
    def cert(self) -> x509.Certificate:
        return self.issued.cert

    @property
    def key(self) -> certs.PrivateKey:
        return self.issued.key

    # -- facts computed from the certificate, independently of tlsc ------------

    @property
    def der(self) -> bytes:
        return self.issued.der

    @property
    def sha256(self) -> str:
        """What tlsc must put in ``SSL_PEER_CERT_HASH`` for this certificate."""
        return "SHA256:" + hashlib.sha256(self.der).hexdigest()

    @property
    def subject(self) -> str:
        """What tlsc must put in ``SSL_PEER_CERT_SUBJECT`` (RFC 4514)."""
        return self.cert.subject.rfc4514_string()

    # -- files ----------------------------------------------------------------

    def _path(self, suffix: str) -> Path:
        return self.dir / f"{self.label}.{suffix}"

    @property
    def cert_pem(self) -> Path:
        return self._path("crt.pem")

    @property
    def cert_der(self) -> Path:
        return self._path("crt.der")

    @property
    def key_pem(self) -> Path:
        return self._path("key.pem")

    @property
    def key_der(self) -> Path:
        return self._path("key.der")

    @property
    def chain_pem(self) -> Path:
        """Leaf then every issuer up to (excluding) the self-signed root: a server's CERTFILE."""
        return self._path("chain.pem")

    @property
    def issuers_pem(self) -> Path:
        """The chain minus the leaf: what ``s_server -cert_chain`` wants."""
        return self._path("issuers.pem")

    def served_chain(self) -> list[Credential]:
        """This certificate then its issuers (the root excluded): what a server sends."""
        return [self, *self.issuers()]

    def issuers(self) -> list[Credential]:
        """The issuers a server sends after this certificate (the root excluded)."""
        out = []
        up = self.issuer
        while up is not None and up.cert.issuer != up.cert.subject:
            out.append(up)
            up = up.issuer
        return out

    def write(self) -> Credential:
        """Write every file; return self."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cert_pem.write_bytes(self.issued.pem)
        self.cert_der.write_bytes(self.der)
        self.key_pem.write_bytes(self.issued.key_pem())
        self.key_der.write_bytes(self.issued.key_der())
        issuers = b"".join(up.issued.pem for up in self.issuers())
        self.chain_pem.write_bytes(self.issued.pem + issuers)
        self.issuers_pem.write_bytes(issuers)
        return self


def credential(
    directory: Path,
    label: str,
    *,
    issuer: Credential | None,
    cn: str | None = None,
    key_kind: str = "p256",
    ca: bool = False,
    dns: Sequence[str] = LOCAL_DNS,
    ips: Sequence[str] = LOCAL_IPS,
    eku: Sequence[x509.ObjectIdentifier] | None = _UNSET,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    **issue_options: Any,
) -> Credential:
    """A certificate for ``cn`` (default: ``label``) signed by ``issuer``, written to files.

    ``issuer=None`` makes it self-signed.  It is valid from a day ago for 30
    days, names the loopback host (``dns``, ``ips``) and, unless ``eku`` says
    otherwise, a leaf is for servers only (EKU serverAuth) and a CA has no
    EKU.  Every other keyword goes to :func:`.certs.issue` (``subject``,
    ``path_length``, ``extra``, ``hash_alg``...).
    """
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    if eku is _UNSET:
        eku = None if ca else (ExtendedKeyUsageOID.SERVER_AUTH,)
    issued = certs.issue(
        cn if cn is not None else label,
        issuer=issuer.issued if issuer is not None else None,
        key_kind=key_kind,
        slot=None,
        ca=ca,
        dns=dns,
        ips=ips,
        eku=eku,
        not_before=not_before or now - DAY,
        not_after=not_after or now + 30 * DAY,
        **issue_options,
    )
    return Credential(label, issued, directory, issuer).write()


@dataclass(frozen=True)
class PKI:
    """Every credential and trust-anchor file of :func:`build_pki` (see the module docstring)."""

    dir: Path
    now: dt.datetime  #: the moment the PKI was made: validity periods count from it
    root: Credential
    inter: Credential
    leaf_rsa: Credential  #: its subject has RFC 4514 specials: "Example, Inc.", "R+D"
    leaf_ec: Credential
    wildcard: Credential  #: ``*.example.test`` only
    expired: Credential
    not_yet_valid: Credential
    wrong_name: Credential  #: CN=localhost, SANs other.example.test and 192.0.2.7
    other_root: Credential
    unknown_ca: Credential  #: under other_root, which no anchor file holds
    self_signed: Credential
    non_ca_issuer: Credential  #: a leaf of root...
    issued_by_non_ca: Credential  #: ... that signed this one
    cn_only: Credential  #: CN=localhost, no subjectAltName
    ip_as_dns: Credential  #: the dNSName "127.0.0.1", no iPAddress
    rsa1024: Credential
    sha1: Credential  #: signed with ecdsa-with-SHA1
    client_auth_only: Credential
    sub_ca: Credential  #: a CA under inter, whose pathLen is 0...
    pathlen_violation: Credential  #: ... so this leaf of it is invalid
    unknown_critical: Credential  #: carries an unknown critical extension
    injection: Credential  #: its subject has a newline and "INJECTED=1"
    client_ca: Credential  #: a root of its own, for client certificates
    client: Credential
    client_rsa: Credential
    #: client certificates issued by inter (the servers' own CA), by key type:
    #: "rsa", "ecdsa", "ed25519"; clientAuth only, like ``client``
    inter_clients: dict[str, Credential]
    # trust-anchor files and directories
    cafile: Path  #: the root only
    cafile_inter: Path  #: the intermediate only (a partial chain)
    cafile_bundle: Path  #: other_root + root, PEM concatenated
    cafile_der: Path  #: the root in DER
    junk: Path  #: a file that holds no certificate
    empty: Path
    bad_key: Path  #: garbage in a PEM private-key frame
    cadir_pem_spaces: Path  #: the root as "my root ca.pem" among junk and a sub-directory
    cadir_der_unicode: Path  #: the root in DER under a non-ASCII name, a link to it, junk
    cadir_junk_only: Path
    cadir_empty: Path
    cadir_symlink_only: Path  #: the only anchor is a symlink to a file elsewhere


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _cadirs(d: Path, root: Credential, other_root: Credential) -> dict[str, Path]:
    """CADIR layouts with odd names, junk, sub-directories and symbolic links.

    None of the junk may stop a good anchor from being used, and a directory
    of nothing but junk must count as no anchor at all.
    """
    a = d / "cadir pem spaces"
    a.mkdir()
    _write(a / "my root ca.pem", root.cert_pem.read_bytes())
    _write(a / "README", b"junk: no certificate in here\n")
    _write(a / "other", other_root.cert_pem.read_bytes())
    (a / "subdir").mkdir()

    b = d / "cadir_der_unicode"
    b.mkdir()
    _write(b / "racine é ✓", root.der)  # DER, non-ASCII name, no extension
    _write(b / "zz junk.crt", b"\x00\x01garbage\xff" * 10)
    (b / "link to root").symlink_to(b / "racine é ✓")

    c = d / "cadir_junk_only"
    c.mkdir()
    _write(c / "junk.pem", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    _write(c / "notes", b"hello\n")

    s = d / "cadir_symlink_only"
    s.mkdir()
    (s / "anchor").symlink_to(root.cert_pem)

    e = d / "cadir_empty"
    e.mkdir()
    return {
        "cadir_pem_spaces": a,
        "cadir_der_unicode": b,
        "cadir_junk_only": c,
        "cadir_symlink_only": s,
        "cadir_empty": e,
    }


def build_pki(directory: Path) -> PKI:
    """Write the PKI described in the module docstring into ``directory``."""
    d = directory
    d.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)

    def cred(label: str, issuer: Credential | None, **kw: Any) -> Credential:
        # One moment for the whole PKI: a leaf's notAfter is its issuer's, to the second.
        kw.setdefault("not_before", now - DAY)
        kw.setdefault("not_after", now + 30 * DAY)
        return credential(d, label, issuer=issuer, **kw)

    def ca(label: str, issuer: Credential | None, cn: str, **kw: Any) -> Credential:
        return cred(label, issuer, cn=cn, ca=True, dns=(), ips=(), **kw)

    root = ca("root", None, "tlsc test root CA", key_kind="rsa2048", not_after=now + 3650 * DAY)
    inter = ca("inter", root, "tlsc test intermediate CA", path_length=0)
    other_root = ca("other_root", None, "some other root CA")
    sub_ca = ca("sub_ca", inter, "sub CA")  # inter has pathLen 0: sub_ca may issue nothing
    client_ca = ca("client_ca", None, "tlsc test client CA")
    non_ca_issuer = cred("non_ca_issuer", root, cn="not a CA")
    client_only = {"dns": ("client.example.test",), "ips": (),
                   "eku": (ExtendedKeyUsageOID.CLIENT_AUTH,)}
    pki = PKI(
        dir=d,
        now=now,
        root=root,
        inter=inter,
        leaf_rsa=cred(
            "leaf_rsa", inter, key_kind="rsa2048",
            subject=x509.Name([
                x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example, Inc."),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "R+D"),
                x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
            ]),
        ),
        leaf_ec=cred("leaf_ec", inter, subject=certs.name("localhost", org="EC leaf")),
        wildcard=cred("wildcard", inter, cn="*.example.test", dns=("*.example.test",), ips=()),
        expired=cred("expired", inter, not_before=now - 60 * DAY, not_after=now - 2 * DAY),
        not_yet_valid=cred("not_yet_valid", inter, not_before=now + 2 * DAY,
                           not_after=now + 60 * DAY),
        wrong_name=cred("wrong_name", inter, cn="localhost", dns=("other.example.test",),
                        ips=("192.0.2.7",)),
        other_root=other_root,
        unknown_ca=cred("unknown_ca", other_root),
        self_signed=cred("self_signed", None, cn="localhost"),
        non_ca_issuer=non_ca_issuer,
        issued_by_non_ca=cred("issued_by_non_ca", non_ca_issuer),
        cn_only=cred("cn_only", inter, cn="localhost", dns=(), ips=()),
        ip_as_dns=cred("ip_as_dns", inter, dns=("127.0.0.1",), ips=()),
        rsa1024=cred("rsa1024", inter, key_kind="rsa1024"),
        sha1=cred("sha1", inter, hash_alg=hashes.SHA1()),
        client_auth_only=cred("client_auth_only", inter,
                              eku=(ExtendedKeyUsageOID.CLIENT_AUTH,)),
        sub_ca=sub_ca,
        pathlen_violation=cred("pathlen_violation", sub_ca),
        unknown_critical=cred("unknown_critical", inter,
                              extra=[(certs.unknown_extension(), True)]),
        injection=cred("injection", inter,
                       subject=certs.name("localhost", org="evil\nINJECTED=1")),
        client_ca=client_ca,
        client=cred("client", client_ca, cn="tlsc test client", **client_only),
        client_rsa=cred("client_rsa", client_ca, cn="tlsc test RSA client",
                        key_kind="rsa2048", **client_only),
        inter_clients={
            kind: cred(f"inter_client_{kind}", inter, cn=f"inter client {kind}",
                       key_kind=key_kind, **client_only)
            for kind, key_kind in (("rsa", "rsa2048"), ("ecdsa", "p256"), ("ed25519", "ed25519"))
        },
        cafile=root.cert_pem,
        cafile_inter=inter.cert_pem,
        cafile_bundle=_write(d / "bundle.pem",
                             other_root.cert_pem.read_bytes() + root.cert_pem.read_bytes()),
        cafile_der=root.cert_der,
        junk=_write(d / "junk.txt", b"this is not a certificate\n" * 20),
        empty=_write(d / "empty.pem", b""),
        bad_key=_write(d / "bad.key", b"-----BEGIN PRIVATE KEY-----\nnope\n"
                                      b"-----END PRIVATE KEY-----\n"),
        **_cadirs(d, root, other_root),
    )
    return pki
