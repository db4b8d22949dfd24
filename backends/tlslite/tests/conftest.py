"""Fixtures for the tlslite backend tests; the factory lives in ``tlslite_certs``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes

# Test modules here import the factory by name; make that work whatever
# import mode or rootdir pytest runs with (other test trees have conftests too).
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tlslite_certs import PKI, make_inter, make_leaf, make_root  # noqa: E402


@pytest.fixture(scope="session")
def pki() -> PKI:
    """root -> intermediate -> leaf for server.test / 192.0.2.1, RSA, valid at NOW."""
    root = make_root()
    inter = make_inter("Test Intermediate", root)
    leaf = make_leaf(inter, san=["server.test", "*.wild.test", "192.0.2.1", "2001:db8::1"])
    return PKI(root, inter, leaf)


@pytest.fixture(scope="session")
def ec_pki() -> PKI:
    """The same shape with ECDSA keys (P-384 root, P-256 below)."""
    root = make_root("EC Root", key_kind="ec384", hash_alg=hashes.SHA384())
    inter = make_inter("EC Intermediate", root, key_kind="ec256", hash_alg=hashes.SHA384())
    leaf = make_leaf(inter, key_kind="ec256-leaf", key_usage={"digital_signature"})
    return PKI(root, inter, leaf)
