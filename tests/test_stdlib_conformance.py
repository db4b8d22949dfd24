"""The stdlib backend against tlsc's conformance suite (its path battery through handshakes)."""

from tlsc.testing.suite import BackendConformance


class TestStdlibConformance(BackendConformance):
    backend_name = "stdlib"
