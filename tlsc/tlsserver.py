"""``tlsserver [options] ip port prog...``: the TLS super-server (docs/tlsserver.rst).

s6-tlsserver is s6-tcpserver in front of s6-tlsd; so is this: tlsd's options
(the same click objects, :func:`tlsc.tlsd.server_params`) plus the listening
and limit options of a tcpserver and the ids prog runs with.  What it does is
:mod:`tlsc.superserver`'s; each connection runs tlsd's lifecycle.
"""

from __future__ import annotations

from collections.abc import Sequence

import click

from . import __version__, cli, exitcodes
from .quick import tlsserver_usage_problem
from .superserver import ServerOptions, run, server_options
from .tlsd import ENVIRONMENT, PROG_ENVIRONMENT, server_params

NAME = "tlsserver"


def _params() -> list[click.Parameter]:
    return [
        *server_params(),
        click.Option(
            ["-c", "--max-connections", "maxconn"],
            type=click.IntRange(min=0),
            default=40,
            show_default=True,
            metavar="MAXCONN",
            help="Connections served at once; past it, new ones wait in the backlog.",
        ),
        click.Option(
            ["-C", "--max-per-ip", "localmaxconn"],
            type=click.IntRange(min=0),
            metavar="LOCALMAXCONN",
            help="Connections served at once per client address; past it, a new one "
            "waits, accepted, until one of that address's ends.  [default: MAXCONN]",
        ),
        click.Option(
            ["-b", "--backlog", "backlog"],
            type=click.IntRange(min=0),
            metavar="BACKLOG",
            help="Listen backlog.  [default: the system's maximum]",
        ),
        click.Option(
            ["-D/-d", "--nodelay/--no-nodelay", "nodelay"],
            default=True,
            help="-D (default): TCP_NODELAY on every connection; -d: Nagle's algorithm left on.",
        ),
        click.Option(
            ["-1", "--print-port", "ready"],
            is_flag=True,
            help="Once listening, print the port and a newline on stdout, then close stdout.",
        ),
        click.Option(
            ["-u", "--uid", "uid"],
            type=click.IntRange(min=0),
            metavar="UID",
            help="Run prog with this uid.",
        ),
        click.Option(
            ["-g", "--gid", "gid"],
            type=click.IntRange(min=0),
            metavar="GID",
            help="Run prog with this gid.",
        ),
        click.Option(
            ["-G", "--groups", "groups"],
            metavar="GIDLIST",
            help="Run prog with these supplementary groups (comma-separated gids).",
        ),
        click.Option(
            ["-U", "--ids-from-env", "ids_from_env"],
            is_flag=True,
            help="Take prog's ids from UID, GID and GIDLIST (removed from its "
            "environment); -u/-g/-G win over them.",
        ),
        *cli.reuse_params(("list_backends", "show_version")),
        click.Argument(["words"], nargs=-1, type=click.UNPROCESSED, metavar="IP PORT [--] PROG..."),
    ]


EPILOG = "\n\n".join(
    (
        "\b\nIP is an IPv4 or IPv6 address (0.0.0.0 or :: for every address of a family), "
        "PORT\na number (0: any free port, see -1) or a TCP service name.",
        "\b\nEnvironment read:\n"
        + "\n".join(f"  {name:<13} {text}" for name, text in ENVIRONMENT)
        + "\n  UID GID GIDLIST with -U: prog's ids",
        "\b\nprog's environment:\n"
        "  PROTO=TCP, TCPLOCALIP, TCPLOCALPORT, TCPREMOTEIP, TCPREMOTEPORT;\n"
        "  TCPREMOTEHOST, TCPLOCALHOST and TCPREMOTEINFO are removed;\n" + PROG_ENVIRONMENT,
        "\b\nSignals: SIGHUP reloads the credentials for later connections (a failure keeps\n"
        "the old ones); SIGTERM and SIGINT stop listening and exit 0, connections in\n"
        "progress go on to their end.",
        "\b\nExit codes (the server): 0 after SIGTERM/SIGINT; 96 97 100 at start as tlsd;\n"
        "111 unable to bind or listen.  Each connection's process exits as tlsd:\n"
        + "\n".join(f"  {code:<7} {text}" for code, text in exitcodes.TABLE),
    )
)


def _callback(
    list_backends: bool, show_version: bool, words: tuple[str, ...], **params: object
) -> int | ServerOptions:
    if show_version:
        click.echo(f"{NAME} {__version__}")
        return 0
    if list_backends:
        return cli.list_backends()
    problem = tlsserver_usage_problem(words, **params)  # type: ignore[arg-type]
    if problem:
        raise click.UsageError(problem)
    return server_options(params, words)


command = click.Command(
    NAME,
    callback=_callback,
    params=_params(),
    context_settings={"allow_interspersed_args": False, "max_content_width": 100},
    epilog=EPILOG,
    help="Listen on IP port PORT; for every connection, run the server side of TLS "
    "and give prog cleartext on its stdin/stdout (tlsd's lifecycle in a process of "
    "its own, forked from a server that loaded the backend and the credentials once).",
)


def main(argv: Sequence[str] | None = None) -> None:
    raise SystemExit(cli.run_command(command, NAME, argv, run))
