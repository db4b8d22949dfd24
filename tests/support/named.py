"""Server certificates for given DNS names, for tlsd -k and tlsserver -k tests.

Made by the shared test PKI (:func:`tlsc.testing.pki.credential`) under the
``pki`` fixture's intermediate CA, so that a client trusting ``pki.cafile``
accepts each for its name and for nothing else.
"""

from __future__ import annotations

from pathlib import Path

from tlsc.testing.pki import PKI, Credential, credential


def named_leaf(directory: Path, pki: PKI, name: str) -> Credential:
    """A leaf for ``name`` only, labelled ``name`` (``.key_pem``, ``.chain_pem``, ``.sha256``)."""
    return credential(directory, name, issuer=pki.inter, dns=[name], ips=())


def pair_env(*leaves: Credential) -> dict[str, str]:
    """``KEYFILE:name`` / ``CERTFILE:name`` for each leaf (its label is its name)."""
    env: dict[str, str] = {}
    for leaf in leaves:
        env[f"KEYFILE:{leaf.label}"] = str(leaf.key_pem)
        env[f"CERTFILE:{leaf.label}"] = str(leaf.chain_pem)
    return env
