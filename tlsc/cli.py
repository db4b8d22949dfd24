"""The ``tlsc`` command line (docs/tlsc.rst, "Options"), parsed with click.

Option parsing stops at prog: ``allow_interspersed_args=False`` makes the
first non-option word, or ``--``, the start of prog's command line, and an
unknown option before it is an error rather than a program name.  Every usage
error becomes one ``tlsc: fatal:`` line and exit 100; every other failure is a
:class:`~tlsc.exitcodes.Fatal` turned into its own line and code.  No path
out of here prints a traceback.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import click

from . import __version__, exitcodes, registry
from .client import run
from .lifecycle import Options, build_options
from .log import Log
from .quick import guarded, tlsc_usage_problem

ENVIRONMENT = (
    ("CADIR", "directory of trust anchors, DER or PEM, any file names (wins)"),
    ("CAFILE", "file of trust anchors, PEM (or one DER certificate)"),
    ("CERTFILE", "with -y: client certificate chain, leaf first, DER or PEM"),
    ("KEYFILE", "with -y: client private key, DER or PEM"),
    ("TLS_UID", "as root: numeric uid to drop to before any network I/O"),
    ("TLS_GID", "as root: numeric gid to drop to (supplementary groups cleared)"),
    ("TLSC_BACKEND", "TLS backend to use when --backend is not given"),
)


def make_epilog(environment: Sequence[tuple[str, str]], prog_environment: str) -> str:
    """--help's epilog: the variables read, prog's environment, the exit codes."""
    return "\n\n".join(
        (
            "\b\nEnvironment:\n" + "\n".join(f"  {name:<13} {text}" for name, text in environment),
            "\b\nprog's environment:\n" + prog_environment,
            "\b\nExit codes:\n"
            + "\n".join(f"  {code:<7} {text}" for code, text in exitcodes.TABLE),
        )
    )


EPILOG = make_epilog(
    ENVIRONMENT,
    "  CADIR CAFILE CERTFILE KEYFILE TLS_UID TLS_GID are removed unless -Z;\n"
    "  SSL_PROTOCOL, SSL_CIPHER, SSL_TLS_SNI_SERVERNAME (when SNI was sent),\n"
    "  SSL_PEER_CERT_HASH and SSL_PEER_CERT_SUBJECT are set.\n"
    "  prog reads cleartext on its fd 6 and writes on its fd 7.",
)


def list_backends() -> int:
    for name, candidate in sorted(registry.available().items()):
        try:
            info = registry.load(candidate).info()
        except Exception as e:  # noqa: BLE001 - a broken backend is reported, not fatal
            click.echo(f"{name} - unavailable: {e}")
            continue
        caps = info.capabilities
        click.echo(
            f"{info.name} {info.version} {info.library} {info.library_version}"
            f" tls={','.join(caps.tls_versions)} keys={','.join(caps.key_types)}"
            f" client-cert={'yes' if caps.client_certificates else 'no'}"
            f" write-after-close-notify={'yes' if caps.write_after_close_notify else 'no'}"
        )
    return 0


@click.command(
    context_settings={"allow_interspersed_args": False, "max_content_width": 100},
    epilog=EPILOG,
    help="Run the client side of TLS over fds 6/7 and give prog cleartext on its fds 6/7.",
)
@click.option("--backend", metavar="NAME", help="TLS backend to use (see --list-backends).")
@click.option(
    "-S/-s",
    "--close-notify/--no-close-notify",
    "close_notify",
    default=False,
    help="On prog's EOF: -S send close_notify and end the session; "
    "-s (default) end only our direction (TLS 1.3: close_notify; TLS 1.2: TCP half-close).",
)
@click.option(
    "-J/-j",
    "--enforce-close-notify/--no-enforce-close-notify",
    "enforce",
    default=False,
    help="-J: a peer EOF without close_notify is fatal (98); -j (default): a normal end.",
)
@click.option(
    "-Y/-y",
    "--no-client-cert/--client-cert",
    "no_client_cert",
    default=True,
    help="-Y (default): send no client certificate; -y: send CERTFILE with KEYFILE.",
)
@click.option(
    "-Z/-z",
    "--keep-env/--no-keep-env",
    "keep_env",
    default=False,
    help="-Z: keep CADIR, CAFILE, KEYFILE, CERTFILE, TLS_UID, TLS_GID for prog; "
    "-z (default): remove them.",
)
@click.option(
    "-v",
    "--verbosity",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="0 fatal only, 1 warnings, 2 one info line per connection, 3 debug.",
)
@click.option(
    "-K",
    "--handshake-timeout",
    "kimeout",
    type=click.IntRange(min=0),
    default=0,
    metavar="MS",
    help="Handshake deadline in milliseconds, else exit 98; 0 (default) = none.",
)
@click.option(
    "-k",
    "--servername",
    metavar="NAME",
    help="Require a server certificate valid for NAME (DNS name or IP address); "
    "a DNS name is also sent as SNI.",
)
@click.option(
    "-6", "--read-fd", "rfd", type=int, default=6, metavar="FD", help="Network read fd [6]."
)
@click.option(
    "-7", "--write-fd", "wfd", type=int, default=7, metavar="FD", help="Network write fd [7]."
)
@click.option(
    "--no-verify-cert",
    is_flag=True,
    help="Do not verify the server certificate at all (a warning is always printed).",
)
@click.option("--list-backends", is_flag=True, help="List installed backends and exit.")
@click.option("--version", "show_version", is_flag=True, help="Print the version and exit.")
@click.argument("prog", nargs=-1, type=click.UNPROCESSED, metavar="[--] PROG...")
def command(
    backend: str | None,
    close_notify: bool,
    enforce: bool,
    no_client_cert: bool,
    keep_env: bool,
    verbosity: int,
    kimeout: int,
    servername: str | None,
    rfd: int,
    wfd: int,
    no_verify_cert: bool,
    list_backends: bool,
    show_version: bool,
    prog: tuple[str, ...],
) -> int | Options:
    if show_version:
        click.echo(f"{click.get_current_context().info_name} {__version__}")
        return 0
    if list_backends:
        return globals()["list_backends"]()
    if not prog:
        raise click.UsageError("missing prog")
    problem = tlsc_usage_problem(rfd=rfd, wfd=wfd, servername=servername)
    if problem:
        raise click.UsageError(problem)
    return build_options(
        prog,
        backend=backend,
        close_notify=close_notify,
        enforce=enforce,
        no_client_cert=no_client_cert,
        keep_env=keep_env,
        verbosity=verbosity,
        kimeout=kimeout,
        servername=servername,
        read_fd=rfd,
        write_fd=wfd,
        verify=not no_verify_cert,
    )


#: The options every command of ours shares with tlsc, by click parameter name
#: (-Y/-y are not among them: tlsd's ask for a client certificate, tlsc's send one).
COMMON = (
    "backend",
    "close_notify",
    "enforce",
    "keep_env",
    "verbosity",
    "kimeout",
)


def reuse_params(names: Sequence[str], helps: Mapping[str, str] | None = None) -> list:
    """tlsc's own option objects for tlsd and tlsclient: same names, same parsing.

    ``helps`` replaces the help text of some of them (on a copy, never tlsc's).
    """
    by_name = {p.name: p for p in command.params}
    out = []
    for name in names:
        param = by_name[name]
        if helps and name in helps:
            param = copy.copy(param)
            param.help = helps[name]
        out.append(param)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    sys.exit(run_command(command, "tlsc", argv, run))


def renamed(cmd: click.Command, name: str, help: str, epilog: str) -> click.Command:
    """``cmd``'s options and parsing under another name (ucspitlsc is tlsc's command line)."""
    other = copy.copy(cmd)
    other.name, other.help, other.epilog = name, help, epilog
    return other


def run_command(
    cmd: click.Command,
    name: str,
    argv: Sequence[str] | None,
    run: Callable[[Any, Log], int] | None = None,
    tag_pid: bool = False,
) -> int:
    """Run a click command of ours and turn every outcome into an exit code.

    A command whose callback returns options rather than an exit code (tlsc,
    tlsd, tlsserver) leaves the running to ``run(options, log)``, so that one
    command line serves two commands (tlsc and ucspitlsc, tlsd and ucspitlsd).
    Usage errors are one ``NAME: fatal: usage: ...`` line and 100; the rest is
    :func:`tlsc.quick.guarded`'s (``tag_pid`` included).
    """

    def body(log: Log) -> int:
        try:
            result = cmd.main(
                args=list(sys.argv[1:] if argv is None else argv),
                prog_name=name,
                standalone_mode=False,
            )
        except click.exceptions.Exit as e:
            return e.exit_code
        except click.exceptions.Abort:
            return 128 + 2
        except click.ClickException as e:
            log.fatal(f"usage: {e.format_message()} (see {name} --help)")
            return exitcodes.USAGE
        if isinstance(result, int):
            return result
        assert run is not None, f"{name}: its command line needs a runner"
        return run(result, log.at(result.verbosity))

    return guarded(name, body, tag_pid)
