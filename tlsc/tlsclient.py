"""``tlsclient [options] host port prog...``: connect, then run tlsc (docs/tlsclient.rst).

The s6-tlsclient of this project: resolve ``host``, open a TCP connection to the
first address that answers (every address in turn, IPv4 and IPv6, each under the
connect timeout), set the UCSPI variables as a tcpclient would (``PROTO=TCP``,
``TCPREMOTEIP``, ``TCPREMOTEPORT``, ``TCPLOCALIP``, ``TCPLOCALPORT``), put the
socket on the network descriptors (6 and 7, or -6/-7) and run the tlsc engine in
this same process (:func:`tlsc.client.prepare` and :func:`tlsc.client.run_connection`),
no second interpreter.  Every usage error, the backend's name included, is found
before the connection is attempted (:func:`tlsc.client.check_usage`).

Every tlsc option is accepted with the same name and meaning; the click option
objects are taken from :mod:`tlsc.cli` rather than defined twice.  The name check
defaults to ``host`` (a DNS name is also sent as SNI, an IP address is checked
against the IP SANs and never sent); ``-k NAME`` overrides it, ``-H`` turns the
default off.  A failed connection is one ``tlsclient: fatal: unable to connect to
HOST port PORT: <why>`` line and exit 111; usage errors exit 100; everything else
is tlsc's own exit code, with lines prefixed ``tlsclient:``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence

import click

from . import __version__, cli, exitcodes, ucspi
from .client import check_usage, prepare, run_connection
from .exitcodes import Fatal
from .log import Log
from .names import is_ip_address
from .quick import tlsc_usage_problem

NAME = "tlsclient"
DEFAULT_CONNECT_TIMEOUT_MS = 10000

#: tlsc's own options, reused as they are (same names, same meaning); only the help
#: of -k and -6/-7 changes, to say what they mean here.
_OWN = (
    "no_client_cert",
    "servername",
    "rfd",
    "wfd",
    "no_verify_cert",
    "list_backends",
    "show_version",
)
_HELP = {
    "servername": "Require a server certificate valid for NAME (DNS name or IP address); "
    "a DNS name is also sent as SNI.  Default: HOST, unless -H.",
    "rfd": "Put the connection on this read fd instead of 6; "
    "prog gets its cleartext pipe on the same number.",
    "wfd": "Put the connection on this write fd instead of 7; "
    "prog gets its cleartext pipe on the same number.",
}


def _shared_params() -> list[click.Parameter]:
    return cli.reuse_params((*cli.COMMON, *_OWN), _HELP)


_ENVIRONMENT_SET = (
    ("PROTO", "TCP"),
    ("TCPREMOTEIP", "the server's address"),
    ("TCPREMOTEPORT", "the server's port"),
    ("TCPLOCALIP", "our local address"),
    ("TCPLOCALPORT", "our local port"),
)
EPILOG = "\n\n".join(
    (
        "\b\nHOST is a DNS name or an IPv4/IPv6 address; every address it resolves to is "
        "tried\nin turn until one accepts the connection. PORT is a number or a service "
        "name.",
        "\b\nEnvironment read:\n"
        + "\n".join(f"  {name:<13} {text}" for name, text in cli.ENVIRONMENT),
        "\b\nprog's environment:\n"
        + "\n".join(f"  {name:<13} {text}" for name, text in _ENVIRONMENT_SET)
        + "\n"
        "  TCPREMOTEHOST, TCPREMOTEINFO and TCPLOCALHOST are removed;\n"
        "  CADIR CAFILE CERTFILE KEYFILE TLS_UID TLS_GID are removed unless -Z;\n"
        "  SSL_PROTOCOL, SSL_CIPHER, SSL_TLS_SNI_SERVERNAME (when SNI was sent),\n"
        "  SSL_PEER_CERT_HASH and SSL_PEER_CERT_SUBJECT are set.\n"
        "  prog reads cleartext on its fd 6 and writes on its fd 7.",
        "\b\nExit codes:\n"
        + "\n".join(f"  {code:<7} {text}" for code, text in exitcodes.TABLE)
        + f"\n  {'':<7} (111 also: unable to connect, including timeout and unknown host)",
    )
)


def parse_port(text: str) -> int:
    if text.isdigit():
        port = int(text)
        if 0 < port < 65536:
            return port
        raise click.UsageError(f"port out of range: {text}")
    try:
        return socket.getservbyname(text, "tcp")
    except (OSError, UnicodeError):
        raise click.UsageError(f"not a port number or a known TCP service: {text!r}") from None


def default_servername(host: str) -> str:
    """The name to check when -k is not given: host, minus a final dot."""
    name = host[:-1] if host.endswith(".") and not is_ip_address(host) else host
    return name


def connect(host: str, port: int, family: int, timeout_ms: int, log: Log) -> socket.socket:
    """The first address of ``host`` that accepts a TCP connection within the timeout."""

    def fail(why: str) -> Fatal:
        return Fatal(exitcodes.SYSTEM, f"unable to connect to {host} port {port}: {why}")

    try:
        infos = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    except socket.gaierror as e:
        raise fail(f"unable to resolve {host}: {e.strerror}") from None
    except (UnicodeError, ValueError) as e:
        raise fail(f"unable to resolve {host}: {e}") from None
    seen: set = set()
    errors: list[str] = []
    timeout = timeout_ms / 1000 if timeout_ms else None
    for fam, kind, proto, _, addr in infos:
        if (fam, addr) in seen:
            continue
        seen.add((fam, addr))
        log.debug(f"connecting to {addr[0]} port {addr[1]}")
        try:
            sock = socket.socket(fam, kind, proto)
        except OSError as e:
            errors.append(f"{addr[0]}: {e.strerror or e}")
            continue
        try:
            sock.settimeout(timeout)
            sock.connect(addr)
            sock.settimeout(None)  # blocking again, as a tcpclient hands it over
        except TimeoutError as e:
            sock.close()
            why = e.strerror if e.strerror and not timeout_ms else None
            errors.append(f"{addr[0]}: {why or f'connection timed out after {timeout_ms} ms'}")
            continue
        except OSError as e:
            sock.close()
            errors.append(f"{addr[0]}: {(e.strerror or str(e)).lower()}")
            continue
        except BaseException:
            sock.close()
            raise
        log.debug(f"connected to {addr[0]} port {addr[1]}")
        return sock
    if not errors:
        raise fail("no address found")
    if len(errors) == 1:
        raise fail(errors[0].partition(": ")[2])
    raise fail("; ".join(errors))


def install(sock: socket.socket, rfd: int, wfd: int) -> None:
    """Put the connection on ``rfd`` and ``wfd`` and nowhere else."""
    fd = sock.detach()
    for target in (rfd, wfd):
        if target != fd:
            os.dup2(fd, target)
        else:
            os.set_inheritable(fd, True)
    if fd not in (rfd, wfd):
        os.close(fd)


@click.command(
    context_settings={"allow_interspersed_args": False, "max_content_width": 100},
    epilog=EPILOG,
    help="Connect to HOST port PORT over TCP, run the client side of TLS on the "
    "connection and give prog cleartext on its fds 6/7 (tlsc over a connection "
    "of its own).",
    params=[
        *_shared_params(),
        click.Option(
            ["-H", "--no-default-servername", "no_default_name"],
            is_flag=True,
            help="Do not check the certificate against HOST nor send it as SNI (-k still applies).",
        ),
        click.Option(
            ["-T", "--connect-timeout", "connect_timeout"],
            type=click.IntRange(min=0),
            default=DEFAULT_CONNECT_TIMEOUT_MS,
            show_default=True,
            metavar="MS",
            help="Give up on each address after MS milliseconds; 0 = the system's limit.",
        ),
        click.Option(["-4", "--ipv4", "ipv4"], is_flag=True, help="Connect over IPv4 only."),
        click.Option(
            ["--ipv6", "ipv6"],
            is_flag=True,
            help="Connect over IPv6 only (no short form: -6 is tlsc's read fd).",
        ),
        click.Argument(
            ["args"], nargs=-1, type=click.UNPROCESSED, metavar="HOST PORT [--] PROG..."
        ),
    ],
)
def command(**kw) -> int:
    if kw["show_version"]:
        click.echo(f"{NAME} {__version__}")
        return 0
    if kw["list_backends"]:
        return cli.list_backends()
    args: tuple[str, ...] = kw["args"]
    if len(args) < 2:
        raise click.UsageError("missing host and port")
    host, port_text, prog = args[0], args[1], list(args[2:])
    if prog[:1] == ["--"]:
        prog = prog[1:]
    if not prog:
        raise click.UsageError("missing prog")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or "\0" in host:
        raise click.UsageError("host must be a non-empty name or address")
    port = parse_port(port_text)
    rfd, wfd = kw["rfd"], kw["wfd"]
    servername = kw["servername"]
    if kw["ipv4"] and kw["ipv6"]:
        raise click.UsageError("-4 and --ipv6 exclude each other")
    if servername is None and not kw["no_default_name"]:
        servername = default_servername(host)
    problem = tlsc_usage_problem(rfd=rfd, wfd=wfd, servername=servername)
    if problem:
        raise click.UsageError(problem)
    family = socket.AF_INET if kw["ipv4"] else socket.AF_INET6 if kw["ipv6"] else 0

    opts = cli.build_options(
        prog,
        **{name: kw[name] for name in cli.COMMON},
        no_client_cert=kw["no_client_cert"],
        servername=servername,
        read_fd=rfd,
        write_fd=wfd,
        verify=not kw["no_verify_cert"],
    )
    log = Log(NAME, opts.verbosity)
    # Every usage error before the connection is attempted: its line is the only one.
    usage = check_usage(opts, log, fds=False)
    sock = connect(host, port, family, kw["connect_timeout"], log)
    try:
        values = ucspi.of_socket(sock)
        install(sock, rfd, wfd)
    except OSError as e:
        sock.close()
        raise Fatal(
            exitcodes.SYSTEM, f"unable to set up the connection to {host} port {port}: {e.strerror}"
        ) from None
    ucspi.apply(os.environ, values)
    return run_connection(prepare(opts, log, usage), opts, log)


def main(argv: Sequence[str] | None = None) -> None:
    raise SystemExit(cli.run_command(command, NAME, argv))


if __name__ == "__main__":
    main()
