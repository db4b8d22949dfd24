"""The openssl backend against tlsc's conformance suite (what any backend author writes)."""

from tlsc.testing.suite import BackendConformance


class TestOpenSSLConformance(BackendConformance):
    backend_name = "openssl"
