"""Sphinx configuration: the reference pages as HTML and as section-1 man pages.

Build (CI does, with warnings as errors)::

    sphinx-build -W -b html docs build/docs/html
    sphinx-build -W -b man docs build/docs/man
"""

from __future__ import annotations

project = "tlsc"
author = "The tlsc developers"
copyright = "2026, The tlsc developers"  # noqa: A001 - Sphinx's name
release = "0.1.0"

extensions: list[str] = []
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_static_path: list[str] = []

#: One man page per command (section 1) and one for the backends (section 7).
man_pages = [
    ("tlsc", "tlsc", "run the client side of TLS over fds 6/7 for a cleartext prog", [author], 1),
    ("tlsd", "tlsd", "run the server side of TLS over stdin/stdout for a cleartext prog",
     [author], 1),
    ("tlsclient", "tlsclient", "open a TCP connection and run tlsc on it", [author], 1),
    ("tlsserver", "tlsserver", "TLS super-server: listen, and run tlsd's lifecycle per connection",
     [author], 1),
    ("ucspitlsc", "ucspitlsc", "STARTTLS for a client prog (UCSPI-TLS)", [author], 1),
    ("ucspitlsd", "ucspitlsd", "STARTTLS for a server prog (UCSPI-TLS)", [author], 1),
    ("tlsc-conformance", "tlsc-conformance", "check that TLS backends behave alike",
     [author], 1),
    ("backends", "tlsc-backends", "the crypto backends of tlsc and how to write one",
     [author], 7),
]
man_show_urls = False
