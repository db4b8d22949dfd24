"""The click command lines of ucspitlsc and ucspitlsd: tlsc's and tlsd's, renamed.

They are the very command objects of tlsc and tlsd under another name, help
and epilog (:func:`tlsc.cli.renamed`): an option added to tlsc or tlsd is an
option of its STARTTLS twin, parsed the same way.  Everyday command lines
never come here (:mod:`tlsc.quick` reads them); --help, --version,
--list-backends and usage errors do.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from . import cli, tlsd
from .starttls import run_client, run_server

_PROTOCOL = (
    "  prog starts at once, in cleartext, with the connection on {where} and\n"
    "  SSLCTLFD, SSLREADFD, SSLWRITEFD set (the control socket and the tunnel).\n"
    "  prog writes 'y' on SSLCTLFD to start TLS on the connection (it stops\n"
    "  using it directly), then talks through SSLREADFD and SSLWRITEFD; 'Y' also\n"
    "  sends back the SSL_* variables on SSLCTLFD after the handshake, as\n"
    "  NUL-terminated NAME=value strings (NAME alone when unset), then an empty\n"
    "  one.  Closing SSLCTLFD without a command declines TLS.\n"
    "  {removed} are removed unless -Z.\n"
    "  The TLS engine is prog's child: the exit codes below are its own;\n"
    "  after a clean session or a refusal it exits 0."
)

CLIENT = cli.renamed(
    cli.command,
    "ucspitlsc",
    "STARTTLS, client side: run prog in cleartext on the connection at fds 6/7, "
    "and the client side of TLS there when prog asks for it (UCSPI-TLS).",
    cli.make_epilog(cli.ENVIRONMENT, _PROTOCOL.format(
        where="its fds 6/7 (-6/-7)", removed="CADIR CAFILE CERTFILE KEYFILE TLS_UID TLS_GID"
    )),
)
SERVER = cli.renamed(
    tlsd.command,
    "ucspitlsd",
    "STARTTLS, server side: run prog in cleartext on the connection at stdin/stdout, "
    "and the server side of TLS there when prog asks for it (UCSPI-TLS).",
    cli.make_epilog(tlsd.ENVIRONMENT, _PROTOCOL.format(
        where="its stdin/stdout",
        removed="CADIR CAFILE CERTFILE KEYFILE, the :name pairs, TLS_UID TLS_GID",
    )),
)


def ucspitlsc_main(argv: Sequence[str] | None = None) -> None:
    sys.exit(cli.run_command(CLIENT, "ucspitlsc", argv, run_client))


def ucspitlsd_main(argv: Sequence[str] | None = None) -> None:
    sys.exit(cli.run_command(SERVER, "ucspitlsd", argv, run_server, tag_pid=True))
