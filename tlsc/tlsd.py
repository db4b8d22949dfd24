"""``tlsd [options] prog...``: the server side of TLS, as s6-tlsd (docs/tlsd.rst).

Started by a super-server (``tcpserver``, ``s6-tcpserver``) with the client
connection on its stdin/stdout: tlsd runs the server side of TLS there and
gives prog cleartext on *its* stdin/stdout.  tlsc's common options are reused
as they are (the click option objects come from :mod:`tlsc.cli`); -Y/-y and -k
are tlsd's own, with s6-tlsd's meaning: ask for a client certificate
(optional, required), and choose the certificate by the client's SNI.
:data:`SERVER_PARAMS` is the whole server-role table, shared with tlsserver.

Every line tlsd prints carries its pid (``tlsd: info: pid 123: ...``), as the
super-server's own log lines about the connection do.
"""

from __future__ import annotations

from collections.abc import Sequence

import click

from . import __version__, cli
from .server import NET_READ_FD, NET_WRITE_FD, run

NAME = "tlsd"

#: The server role's own options (tlsd, tlsserver), by click parameter name.
SERVER_OWN = ("request_client_cert", "sni_level")


def server_params() -> list[click.Parameter]:
    """tlsc's common options plus the server role's -Y/-y and -k."""
    return [
        *cli.reuse_params(
            cli.COMMON,
            {
                "keep_env": "-Z: keep CADIR, CAFILE, KEYFILE, CERTFILE, every KEYFILE:name "
                "and CERTFILE:name, TLS_UID, TLS_GID for prog; -z (default): remove them."
            },
        ),
        click.Option(
            ["--no-client-cert", "request_client_cert"],
            flag_value="none",
            default=True,
            help="Ask for no client certificate (the default).",
        ),
        click.Option(
            ["-Y", "--client-cert", "request_client_cert"],
            flag_value="optional",
            help="Ask for a client certificate; a client without one is served, "
            "one with an invalid one is refused (98). Needs CADIR/CAFILE.",
        ),
        click.Option(
            ["-y", "--mandatory-client-cert", "request_client_cert"],
            flag_value="required",
            help="Require a client certificate valid under CADIR/CAFILE (clientAuth), else 98.",
        ),
        click.Option(
            ["-k", "--sni-level", "sni_level"],
            type=click.IntRange(min=0),
            default=0,
            show_default=True,
            metavar="SNILEVEL",
            help="0: present KEYFILE/CERTFILE; 1: the KEYFILE:name/CERTFILE:name pair "
            "whose name is the client's SNI, else KEYFILE/CERTFILE; 2: only the named "
            "pairs (no SNI or an unknown one: unrecognized_name alert, 98).",
        ),
    ]


def _params() -> list[click.Parameter]:
    return [
        *server_params(),
        *cli.reuse_params(("list_backends", "show_version")),
        click.Argument(["prog"], nargs=-1, type=click.UNPROCESSED, metavar="[--] PROG..."),
    ]


ENVIRONMENT = (
    ("KEYFILE", "the server's private key, DER or PEM (RSA, ECDSA, Ed25519); not with -k 2"),
    ("CERTFILE", "the server's certificate chain, leaf first, DER or PEM; not with -k 2"),
    ("KEYFILE:name", "with -k 1 or 2: the key for clients whose SNI is name"),
    ("CERTFILE:name", "with -k 1 or 2: the certificate chain for clients whose SNI is name"),
    ("CADIR", "with -Y/-y: directory of trust anchors for client certificates (wins)"),
    ("CAFILE", "with -Y/-y: file of trust anchors for client certificates"),
    ("TLS_UID", "as root: numeric uid to drop to before the handshake"),
    ("TLS_GID", "as root: numeric gid to drop to (supplementary groups cleared)"),
    ("TLSC_BACKEND", "TLS backend to use when --backend is not given"),
)
PROG_ENVIRONMENT = (
    "  CADIR CAFILE CERTFILE KEYFILE TLS_UID TLS_GID and every KEYFILE:name and\n"
    "  CERTFILE:name are removed unless -Z;\n"
    "  SSL_PROTOCOL, SSL_CIPHER, SSL_TLS_SNI_SERVERNAME (the SNI the client sent),\n"
    "  SSL_PEER_CERT_HASH and SSL_PEER_CERT_SUBJECT (the client certificate, if any)."
)
EPILOG = cli.make_epilog(
    ENVIRONMENT,
    PROG_ENVIRONMENT + "\n"
    "  The client connection is on tlsd's stdin/stdout; prog reads cleartext on\n"
    "  its stdin and writes on its stdout.",
)


def _callback(
    list_backends: bool, show_version: bool, prog: tuple[str, ...], **options: object
) -> int | cli.Options:
    if show_version:
        click.echo(f"{click.get_current_context().info_name} {__version__}")
        return 0
    if list_backends:
        return cli.list_backends()
    if not prog:
        raise click.UsageError("missing prog")
    return cli.build_options(prog, read_fd=NET_READ_FD, write_fd=NET_WRITE_FD, **options)


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
    raise SystemExit(cli.run_command(command, NAME, argv, run, tag_pid=True))
