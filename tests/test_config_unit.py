"""config.read_identity without root: TLS_UID/TLS_GID are not even parsed.

The end-to-end version of this runs tlsc as an unprivileged user, which needs
an interpreter that user may execute; this one holds wherever the tests run.
"""

from __future__ import annotations

import pytest

from tlsc import config, exitcodes
from tlsc.exitcodes import Fatal


def test_identity_ignored_when_not_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config.os, "geteuid", lambda: 1000)
    env = {"TLS_UID": "not-a-number", "TLS_GID": "nor-this"}
    assert config.read_identity(env) == config.Identity()


def test_identity_read_and_checked_as_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config.os, "geteuid", lambda: 0)
    assert config.read_identity({"TLS_UID": "65534", "TLS_GID": "65533"}) == config.Identity(
        65534, 65533
    )
    with pytest.raises(Fatal) as e:
        config.read_identity({"TLS_UID": "nobody"})
    assert e.value.code == exitcodes.USAGE and "TLS_UID" in e.value.message


def test_prog_environment_refuses_nul_and_removes_unset() -> None:
    base = {"CAFILE": "x", "SSL_TLS_SNI_SERVERNAME": "stale", "PATH": "/bin"}
    env = config.prog_environment(base, False, {"SSL_TLS_SNI_SERVERNAME": None, "A": "b=c\nd"})
    assert env == {"PATH": "/bin", "A": "b=c\nd"}
    with pytest.raises(Fatal) as e:
        config.prog_environment(base, True, {"SSL_PEER_CERT_SUBJECT": "CN=a\0b"})
    assert e.value.code == exitcodes.TLS
