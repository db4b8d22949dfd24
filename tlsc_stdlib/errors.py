"""Python ``ssl`` exceptions as the interface's :class:`~tlsc.session.TLSError` classes.

``ssl.SSLCertVerificationError`` carries OpenSSL's ``X509_V_ERR_*`` code; any
other ``ssl.SSLError`` OpenSSL's reason string (``"[SSL: WRONG_VERSION_NUMBER]
wrong version number (_ssl.c:1006)"``).  Both mean what they mean for the
openssl backend, which reads the same library: :mod:`tlsc.reasons` maps them
once for both (:func:`~tlsc.reasons.openssl_verify_error`,
:func:`~tlsc.reasons.openssl_failure`).
"""

from __future__ import annotations

import re
import ssl

from tlsc.reasons import Reason, openssl_failure, openssl_verify_error
from tlsc.session import AlertReceived, ProtocolError, TLSError, VerificationError

__all__ = ["classify", "reason_of"]

#: "[SSL: REASON] the reason (_ssl.c:1006)" -> "the reason".  A pattern, compiled on
#: the first failure (``re`` caches it) rather than at every start.
_MESSAGE = r"^\[[^\]]*\] (.*?)(?: \(_ssl\.c:\d+\))?$"


def reason_of(error: ssl.SSLError) -> str:
    """OpenSSL's reason string in an ``ssl.SSLError`` ("wrong version number")."""
    text = str(error.args[1]) if len(error.args) > 1 else str(error)
    match = re.match(_MESSAGE, text)
    return match.group(1) if match else text


def classify(error: ssl.SSLError) -> TLSError:
    """The interface's error for ``error``: verification, received alert, or protocol."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return VerificationError(*openssl_verify_error(error.verify_code, error.verify_message))
    reason, detail = openssl_failure(reason_of(error))
    return (AlertReceived if reason is Reason.ALERT else ProtocolError)(reason, detail)
