"""Fixtures for the tlslite backend tests: certificate chains of each key type.

Certificates come from :mod:`tlsc.testing.certs` (the one factory of every test).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from tlsc.testing.certs import Chain, chain

# Test modules here import ``tlslite_peers`` by name; make that work whatever
# import mode or rootdir pytest runs with (other test trees have conftests too).
sys.path.insert(0, str(Path(__file__).resolve().parent))

@pytest.fixture(scope="session")
def pkis() -> dict[str, Chain]:
    """A chain valid now for server.test / 192.0.2.1 whose leaf has each key type: all RSA;
    P-384 root and P-256 intermediate above an ECDSA or an Ed25519 leaf."""
    return {
        "rsa": chain(),
        "ecdsa": chain(root_kind="p384", inter_kind="p256", leaf_kind="p256"),
        "ed25519": chain(root_kind="p384", inter_kind="p256", leaf_kind="ed25519"),
    }


@pytest.fixture(scope="session")
def rsa_pki(pkis: dict[str, Chain]) -> Chain:
    return pkis["rsa"]


@pytest.fixture(scope="session")
def ecdsa_pki(pkis: dict[str, Chain]) -> Chain:
    return pkis["ecdsa"]


@pytest.fixture(scope="session")
def ed25519_pki(pkis: dict[str, Chain]) -> Chain:
    return pkis["ed25519"]


@pytest.fixture(scope="session")
def other_pki() -> Chain:
    """A CA the RSA chain's ends do not trust (for unknown-CA client certificates)."""
    return chain(root_kind="p384", inter_kind="p256", leaf_kind="p256")
