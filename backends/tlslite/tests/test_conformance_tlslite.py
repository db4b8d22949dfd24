"""The tlslite backend against tlsc's conformance suite (what any backend author writes)."""

from tlsc.testing.suite import BackendConformance


class TestTlsliteConformance(BackendConformance):
    backend_name = "tlslite"
