"""Python's ``ssl`` exceptions (``_ssl``'s: the same classes) as the interface's errors.

``_ssl.SSLCertVerificationError`` carries OpenSSL's ``X509_V_ERR_*`` code; any
other ``_ssl.SSLError`` OpenSSL's reason string (``"[SSL: WRONG_VERSION_NUMBER]
wrong version number (_ssl.c:1006)"``).  Both mean what they mean for the
openssl backend, which reads the same library: :mod:`tlsc.reasons` maps them
once for both (:func:`~tlsc.reasons.openssl_verify_error`,
:func:`~tlsc.reasons.openssl_failure`).
"""

from __future__ import annotations

import _ssl

from tlsc.reasons import Reason, openssl_failure, openssl_verify_error
from tlsc.session import AlertReceived, ProtocolError, TLSError, VerificationError

__all__ = ["classify", "reason_of"]


def reason_of(error: _ssl.SSLError) -> str:
    """OpenSSL's reason string in an ``_ssl.SSLError`` ("wrong version number")."""
    text = str(error.args[1]) if len(error.args) > 1 else str(error)
    return _words(text)


def _words(text: str) -> str:
    """ "[SSL: REASON] the reason (_ssl.c:1006)" -> "the reason"; any other text as it is.

    Written out rather than a regular expression because nothing else on a
    stdlib run imports ``re``; tests/test_stdlib_backend.py holds it to the
    pattern it replaced, ``^\\[[^\\]]*\\] (.*?)(?: \\(_ssl\\.c:\\d+\\))?$``.
    """
    close = text.find("]")
    if not text.startswith("[") or text[close + 1 : close + 2] != " ":
        return text
    words = text[close + 2 :]
    words = words[:-1] if words.endswith("\n") else words  # where "$" also matches
    if "\n" in words:
        return text
    at = words.rfind(" (_ssl.c:")
    if at >= 0 and words.endswith(")") and words[at + 9 : -1].isdecimal():
        return words[:at]
    return words


def classify(error: _ssl.SSLError) -> TLSError:
    """The interface's error for ``error``: verification, received alert, or protocol."""
    if isinstance(error, _ssl.SSLCertVerificationError):
        return VerificationError(*openssl_verify_error(error.verify_code, error.verify_message))
    reason, detail = openssl_failure(reason_of(error))
    return (AlertReceived if reason is Reason.ALERT else ProtocolError)(reason, detail)
