"""The command lines of tlsc, tlsd and tlsserver read without click, for the hot path.

tlsc and tlsd run once per connection, so their start-up is latency that
every connection pays (tlsserver starts once, and shares the parser).
Importing click costs more than everything else the core imports (bench/:
~12 ms of the ~20 ms allowed above the backend's own import), and a real
command line needs none of it.

This parser is deliberately partial.  It knows the options of a table, in
the forms click accepts (``-S``, clusters like ``-Sj``, ``-v 2``, ``-v2``,
``--verbosity 2``, ``--verbosity=2``, ``--`` and the first non-option word
starting prog), and it answers ``None`` to anything it is not sure of: --help,
--version, --list-backends, an unknown option, a value that is not plain
digits, a value starting with ``-``, a usage error.  ``None`` hands the
command line to click (:mod:`tlsc.cli`), which then does everything, errors
and help included.  So the two cannot disagree on anything but what this
module accepts, and ``tests/test_quick.py`` checks that for generated command
lines against click's own parse, option table included.
"""

from __future__ import annotations

import gc
import os
import sys

from . import exitcodes
from .exitcodes import Fatal
from .log import Log

#: ``typing.TYPE_CHECKING`` without importing ``typing`` (see :mod:`tlsc.session`).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from .lifecycle import Options
    from .superserver import ServerOptions

Values = dict[str, object]
Flags = dict[str, tuple[str, object]]
ValueWords = dict[str, tuple[str, str]]

#: Flag words: word -> (parameter, value).  The parameter names are click's.
COMMON_FLAGS: Flags = {
    "-S": ("close_notify", True),
    "--close-notify": ("close_notify", True),
    "-s": ("close_notify", False),
    "--no-close-notify": ("close_notify", False),
    "-J": ("enforce", True),
    "--enforce-close-notify": ("enforce", True),
    "-j": ("enforce", False),
    "--no-enforce-close-notify": ("enforce", False),
    "-Z": ("keep_env", True),
    "--keep-env": ("keep_env", True),
    "-z": ("keep_env", False),
    "--no-keep-env": ("keep_env", False),
}
#: Words taking a value: word -> (parameter, kind); kind "str" or "uint".
COMMON_VALUES: ValueWords = {
    "--backend": ("backend", "str"),
    "-v": ("verbosity", "uint"),
    "--verbosity": ("verbosity", "uint"),
    "-K": ("kimeout", "uint"),
    "--handshake-timeout": ("kimeout", "uint"),
}
COMMON_DEFAULTS: Values = {
    "backend": None,
    "close_notify": False,
    "enforce": False,
    "keep_env": False,
    "verbosity": 1,
    "kimeout": 0,
}

TLSC_FLAGS: Flags = {
    **COMMON_FLAGS,
    "-Y": ("no_client_cert", True),
    "--no-client-cert": ("no_client_cert", True),
    "-y": ("no_client_cert", False),
    "--client-cert": ("no_client_cert", False),
    "--no-verify-cert": ("no_verify_cert", True),
}
TLSC_VALUES: ValueWords = {
    **COMMON_VALUES,
    "-k": ("servername", "str"),
    "--servername": ("servername", "str"),
    "-6": ("rfd", "uint"),
    "--read-fd": ("rfd", "uint"),
    "-7": ("wfd", "uint"),
    "--write-fd": ("wfd", "uint"),
}
TLSC_DEFAULTS: Values = {
    **COMMON_DEFAULTS,
    "no_client_cert": True,
    "servername": None,
    "rfd": 6,
    "wfd": 7,
    "no_verify_cert": False,
}

#: tlsd's -Y/-y are s6-tlsd's: ask for a client certificate (optional / required).
TLSD_FLAGS: Flags = {
    **COMMON_FLAGS,
    "--no-client-cert": ("request_client_cert", "none"),
    "-Y": ("request_client_cert", "optional"),
    "--client-cert": ("request_client_cert", "optional"),
    "-y": ("request_client_cert", "required"),
    "--mandatory-client-cert": ("request_client_cert", "required"),
}
TLSD_VALUES: ValueWords = {
    **COMMON_VALUES,
    "-k": ("sni_level", "uint"),
    "--sni-level": ("sni_level", "uint"),
}
TLSD_DEFAULTS: Values = {**COMMON_DEFAULTS, "request_client_cert": "none", "sni_level": 0}

#: tlsserver: tlsd's options plus s6-tcpserver's and s6-applyuidgid's.
TLSSERVER_FLAGS: Flags = {
    **TLSD_FLAGS,
    "-D": ("nodelay", True),
    "--nodelay": ("nodelay", True),
    "-d": ("nodelay", False),
    "--no-nodelay": ("nodelay", False),
    "-1": ("ready", True),
    "--print-port": ("ready", True),
    "-U": ("ids_from_env", True),
    "--ids-from-env": ("ids_from_env", True),
}
TLSSERVER_VALUES: ValueWords = {
    **TLSD_VALUES,
    "-c": ("maxconn", "uint"),
    "--max-connections": ("maxconn", "uint"),
    "-C": ("localmaxconn", "uint"),
    "--max-per-ip": ("localmaxconn", "uint"),
    "-b": ("backlog", "uint"),
    "--backlog": ("backlog", "uint"),
    "-u": ("uid", "uint"),
    "--uid": ("uid", "uint"),
    "-g": ("gid", "uint"),
    "--gid": ("gid", "uint"),
    "-G": ("groups", "str"),
    "--groups": ("groups", "str"),
}
TLSSERVER_DEFAULTS: Values = {
    **TLSD_DEFAULTS,
    "nodelay": True,
    "ready": False,
    "ids_from_env": False,
    "maxconn": 40,
    "localmaxconn": None,
    "backlog": None,
    "uid": None,
    "gid": None,
    "groups": None,
}


def parse(
    argv: Sequence[str],
    flags: Flags,
    values: ValueWords,
    defaults: Values,
) -> tuple[Values, tuple[str, ...]] | None:
    """(parameters, prog) as click would give them, or None: "ask click"."""
    out = dict(defaults)
    i = 0
    n = len(argv)
    while i < n:
        word = argv[i]
        i += 1
        if word == "--":
            break
        if not word.startswith("-") or word == "-":
            i -= 1  # prog starts here
            break
        if word.startswith("--"):
            name, eq, value = word.partition("=")
            if name in flags and not eq:
                param, flag = flags[name]
                out[param] = flag
                continue
            if name not in values:
                return None
            if not eq:
                if i >= n:
                    return None
                value = argv[i]
                i += 1
            param, kind = values[name]
            if not _take(out, param, kind, value):
                return None
            continue
        # A cluster of short options: flags, then at most one taking a value.
        for k in range(1, len(word)):
            short = "-" + word[k]
            if short in flags:
                param, flag = flags[short]
                out[param] = flag
                continue
            if short not in values:
                return None
            value = word[k + 1 :]
            if not value:
                if i >= n:
                    return None
                value = argv[i]
                i += 1
            param, kind = values[short]
            if not _take(out, param, kind, value):
                return None
            break
    prog = tuple(argv[i:])
    if not prog:
        return None
    return out, prog


def _take(out: Values, param: str, kind: str, value: str) -> bool:
    if not value or value.startswith("-"):
        return False
    if kind == "uint":
        if not (value.isascii() and value.isdigit()):
            return False
        out[param] = int(value)
    else:
        out[param] = value
    return True


def tlsc_usage_problem(rfd: int, wfd: int, servername: str | None, **_: object) -> str | None:
    """tlsc's checks of its parsed options, shared with click and tlsclient's command lines."""
    if rfd < 3 or wfd < 3:
        return "-6 and -7 take descriptors >= 3"
    if rfd == wfd:
        return "-6 and -7 must differ"
    if servername is not None:
        from .names import is_reference_name

        if not is_reference_name(servername):
            return f"invalid servername {servername!r}: not a DNS name or an IP address"
    return None


def tlsserver_usage_problem(
    words: Sequence[str], maxconn: int, localmaxconn: int | None, groups: str | None, **_: object
) -> str | None:
    """tlsserver's checks of its parsed options and ``ip port prog...``, shared with click."""
    from .superserver import parse_gid_list, split_words

    if maxconn < 1 or (localmaxconn is not None and localmaxconn < 1):
        return "-c and -C take a number >= 1"
    if groups is not None and parse_gid_list(groups) is None:
        return f"-G takes comma-separated numeric gids, not {groups!r}"
    _, problem = split_words(words)
    return problem


def guarded(
    name: str, body: Callable[[Log], int], tag_pid: bool = False, log: Log | None = None
) -> int:
    """Run ``body`` and turn every outcome into an exit code, with no traceback.

    A :class:`Fatal` is its own ``NAME: fatal:`` line and code; anything
    unexpected is one "internal error" line and 111.  ``tag_pid``: every line
    says ``pid N`` (a server's connection, told apart in a shared log).
    ``log``: print with this one (a forked process speaking for its parent).
    """
    ignore_warnings()
    if log is None:
        log = Log(name, 1, os.getpid() if tag_pid else None)
    try:
        code = body(log)
    except Fatal as e:
        log.fatal(e.message)
        code = e.code
    except KeyboardInterrupt:
        code = 128 + 2
    except Exception as e:  # noqa: BLE001 - the last line of defence against tracebacks
        log.fatal(f"internal error: {type(e).__name__}: {e}")
        code = exitcodes.SYSTEM
    return code if isinstance(code, int) else 0


def ignore_warnings() -> None:
    """stderr carries tlsc's own lines only, never a library's warnings.

    A library's DeprecationWarning about some certificate in a CA bundle is not
    one of tlsc's lines.  ``warnings`` is not imported for it when nothing has
    imported it yet (~0.5 ms of every start): the module applies
    ``sys.warnoptions`` when it is first imported, as it does ``-W ignore``,
    and every library that warns imports it.
    """
    warnings = sys.modules.get("warnings")
    if warnings is not None:
        warnings.simplefilter("ignore")  # type: ignore[attr-defined]
    elif "ignore" not in sys.warnoptions:
        sys.warnoptions.append("ignore")


def quiet_collector() -> None:
    """No garbage collection until the relay starts.

    Start-up allocates what lives to the end (modules, the TLS context), and
    the collections that those allocations trigger cost ~6 ms per run here,
    for nothing.  :meth:`tlsc.engine.Engine.relay` freezes what exists then
    and turns the collector back on.
    """
    gc.disable()


def _tlsc_options(params: Values, prog: tuple[str, ...]) -> Options | None:
    """tlsc's (and ucspitlsc's) Options, or None for a usage problem (click reports it)."""
    if tlsc_usage_problem(**params) is not None:  # type: ignore[arg-type]
        return None
    from .lifecycle import build_options

    rest = dict(params)
    no_verify = rest.pop("no_verify_cert")
    rfd, wfd = rest.pop("rfd"), rest.pop("wfd")
    return build_options(prog, read_fd=rfd, write_fd=wfd, verify=not no_verify, **rest)


def _tlsd_options(params: Values, prog: tuple[str, ...]) -> Options | None:
    """tlsd's (and ucspitlsd's) Options: the connection on stdin/stdout."""
    from .lifecycle import build_options
    from .server import NET_READ_FD, NET_WRITE_FD

    return build_options(prog, read_fd=NET_READ_FD, write_fd=NET_WRITE_FD, **params)


def _tlsserver_options(params: Values, words: tuple[str, ...]) -> ServerOptions | None:
    """tlsserver's options (``words``: ip port prog...), or None for a usage problem."""
    if tlsserver_usage_problem(words, **params) is not None:  # type: ignore[arg-type]
        return None
    from .superserver import server_options

    return server_options(params, words)


class CommandLine:
    """One command line's table, and how its parse becomes :class:`Options`.

    A plain class: this module is the start of every run, and ``dataclasses``
    would cost it several ms (see :mod:`tlsc.session`).
    """

    __slots__ = ("defaults", "flags", "options", "values")

    def __init__(
        self,
        flags: Flags,
        values: ValueWords,
        defaults: Values,
        options: Callable[[Values, tuple[str, ...]], Options | ServerOptions | None],
    ) -> None:
        self.flags = flags
        self.values = values
        self.defaults = defaults
        self.options = options


TLSC = CommandLine(TLSC_FLAGS, TLSC_VALUES, TLSC_DEFAULTS, _tlsc_options)
TLSD = CommandLine(TLSD_FLAGS, TLSD_VALUES, TLSD_DEFAULTS, _tlsd_options)
TLSSERVER = CommandLine(TLSSERVER_FLAGS, TLSSERVER_VALUES, TLSSERVER_DEFAULTS, _tlsserver_options)


def _load(path: str) -> Callable:
    """``module:attribute``, imported only now (click and the lifecycle stay unimported)."""
    module, _, attr = path.partition(":")
    __import__(module)  # importlib.import_module without importing importlib (0.2 ms)
    return getattr(sys.modules[module], attr)  # type: ignore[no-any-return]


def main(
    name: str,
    argv: Sequence[str] | None,
    line: CommandLine,
    run: str,
    fallback: str,
    tag_pid: bool = False,
) -> None:
    """Command ``name``: ``line`` parsed here when it can be, then ``run(options, log)``.

    Anything this parser is not sure of goes to ``fallback(argv)``, the click
    command line of the same command, which then does everything.  ``tag_pid``:
    see :func:`guarded`.
    """
    quiet_collector()
    args = list(sys.argv[1:] if argv is None else argv)
    parsed = parse(args, line.flags, line.values, line.defaults)
    opts = None if parsed is None else line.options(*parsed)
    if opts is None:
        _load(fallback)(args)
        return
    runner = _load(run)
    sys.exit(guarded(name, lambda log: runner(opts, log.at(opts.verbosity)), tag_pid))


def tlsc_main(argv: Sequence[str] | None = None) -> None:
    """The ``tlsc`` command."""
    main("tlsc", argv, TLSC, "tlsc.client:run", "tlsc.cli:main")


def tlsd_main(argv: Sequence[str] | None = None) -> None:
    """The ``tlsd`` command."""
    main("tlsd", argv, TLSD, "tlsc.server:run", "tlsc.tlsd:main", tag_pid=True)


def ucspitlsc_main(argv: Sequence[str] | None = None) -> None:
    """The ``ucspitlsc`` command: tlsc's command line, STARTTLS's lifecycle."""
    main("ucspitlsc", argv, TLSC, "tlsc.starttls:run_client", "tlsc.ucspitls:ucspitlsc_main")


def ucspitlsd_main(argv: Sequence[str] | None = None) -> None:
    """The ``ucspitlsd`` command: tlsd's command line, STARTTLS's lifecycle."""
    main(
        "ucspitlsd",
        argv,
        TLSD,
        "tlsc.starttls:run_server",
        "tlsc.ucspitls:ucspitlsd_main",
        tag_pid=True,
    )


def tlsserver_main(argv: Sequence[str] | None = None) -> None:
    """The ``tlsserver`` command."""
    main("tlsserver", argv, TLSSERVER, "tlsc.superserver:run", "tlsc.tlsserver:main")
