"""Turning pyOpenSSL exceptions into the interface's :class:`TLSError` classes.

pyOpenSSL raises ``SSL.Error`` whose first argument is OpenSSL's error queue,
a list of ``(library, function, reason)`` strings.  A fatal alert *received*
from the peer shows up as a reason like ``"sslv3 alert bad certificate"`` or
``"tlsv1 alert unknown ca"`` (``"tls alert ..."`` since OpenSSL 4); everything
else is something the peer sent that we could not accept: a record that
fails to decrypt (:attr:`Reason.BAD_RECORD`) or a protocol error.  The words
are the core's (:mod:`tlsc.reasons`); OpenSSL's own reason string follows
them as the detail, which is what a user will find when searching for it.
An alert's name is given in its one spelling (``certificate_required``).
"""

from __future__ import annotations

from OpenSSL import SSL

from tlsc.reasons import Reason, openssl_failure
from tlsc.session import AlertReceived, ProtocolError, TLSError

__all__ = ["classify", "reason_of"]


def reason_of(error: SSL.Error) -> str:
    """The most telling reason string in an ``SSL.Error``'s error queue."""
    queue = error.args[0] if error.args else None
    if isinstance(queue, list):
        for entry in queue:
            if isinstance(entry, tuple) and len(entry) == 3 and entry[2]:
                return str(entry[2])
    if error.args and not isinstance(queue, list):
        return " ".join(str(a) for a in error.args)
    return "unknown TLS error"


def classify(error: SSL.Error) -> TLSError:
    """:class:`AlertReceived` for an alert from the peer, else :class:`ProtocolError`.

    What OpenSSL's reason string means is :func:`tlsc.reasons.openssl_failure`'s
    to say, for this backend and the stdlib one alike.
    """
    reason, detail = openssl_failure(reason_of(error))
    return (AlertReceived if reason is Reason.ALERT else ProtocolError)(reason, detail)
