"""tlsc: a UCSPI TLS client wrapper (s6-tlsc in Python) with pluggable backends.

The core never imports a crypto library; see :mod:`tlsc.session` for the
interface a backend implements.
"""

__version__ = "0.1.0"
