"""``tlsd [options] prog...``: the server side of TLS (spec section 6).

Started by a super-server (``tcpserver``, ``s6-tcpserver``) with the client
connection on its stdin/stdout: tlsd runs the server side of TLS there and
gives prog cleartext on *its* stdin/stdout.  tlsc's options are reused as
they are (the click option objects come from :mod:`tlsc.cli`); only -Y/-y
changes meaning: -y requires a client certificate valid under CADIR/CAFILE.
"""

from __future__ import annotations

from collections.abc import Sequence

import click

from . import __version__, cli
from .server import NET_READ_FD, NET_WRITE_FD, run

NAME = "tlsd"

_HELP = {
    "no_client_cert": "-Y (default): ask for no client certificate; "
    "-y: require one, valid under CADIR/CAFILE (clientAuth), else exit 98.",
}


def _params() -> list[click.Parameter]:
    return [
        *cli.reuse_params((*cli.COMMON, "list_backends", "show_version"), _HELP),
        click.Argument(["prog"], nargs=-1, type=click.UNPROCESSED, metavar="[--] PROG..."),
    ]


ENVIRONMENT = (
    ("KEYFILE", "required: the server's private key, DER or PEM (RSA, ECDSA, Ed25519)"),
    ("CERTFILE", "required: the server's certificate chain, leaf first, DER or PEM"),
    ("CADIR", "with -y: directory of trust anchors for client certificates (wins)"),
    ("CAFILE", "with -y: file of trust anchors for client certificates"),
    ("TLS_UID", "as root: numeric uid to drop to before the handshake"),
    ("TLS_GID", "as root: numeric gid to drop to (supplementary groups cleared)"),
    ("TLSC_BACKEND", "TLS backend to use when --backend is not given"),
)
EPILOG = cli.make_epilog(
    ENVIRONMENT,
    "  CADIR CAFILE CERTFILE KEYFILE TLS_UID TLS_GID are removed unless -Z;\n"
    "  SSL_PROTOCOL, SSL_CIPHER, SSL_TLS_SNI_SERVERNAME (the SNI the client sent),\n"
    "  SSL_PEER_CERT_HASH and SSL_PEER_CERT_SUBJECT (the client certificate, if any).\n"
    "  The client connection is on tlsd's stdin/stdout; prog reads cleartext on\n"
    "  its stdin and writes on its stdout.",
)


def _callback(
    backend: str | None,
    close_notify: bool,
    enforce: bool,
    no_client_cert: bool,
    keep_env: bool,
    verbosity: int,
    kimeout: int,
    list_backends: bool,
    show_version: bool,
    prog: tuple[str, ...],
) -> int | cli.Options:
    if show_version:
        click.echo(f"{click.get_current_context().info_name} {__version__}")
        return 0
    if list_backends:
        return cli.list_backends()
    if not prog:
        raise click.UsageError("missing prog")
    return cli.build_options(
        prog,
        backend=backend,
        close_notify=close_notify,
        enforce=enforce,
        no_client_cert=no_client_cert,
        keep_env=keep_env,
        verbosity=verbosity,
        kimeout=kimeout,
        read_fd=NET_READ_FD,
        write_fd=NET_WRITE_FD,
    )


command = click.Command(
    NAME,
    callback=_callback,
    params=_params(),
    context_settings={"allow_interspersed_args": False, "max_content_width": 100},
    epilog=EPILOG,
    help="Run the server side of TLS over stdin/stdout and give prog cleartext "
    "on its stdin/stdout.",
)


def main(argv: Sequence[str] | None = None) -> None:
    raise SystemExit(cli.run_command(command, NAME, argv, run))
