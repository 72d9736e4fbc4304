"""The ``attest`` command line: the only package that parses arguments or exits the process.

    __init__.py   main(), the parser, exit codes, the README's command table
    common.py     the parser class, global options, --dir / --out / --config rules
    scan.py       scan, controls
    evaluate.py   verify, evaluate
    reports.py    report, history, diff, export
    evidence.py   evidence add, evidence list
    admin.py      keys public, store check, permissions

Exit codes are listed in :data:`EXIT_CODES` (and by ``attest --help``).
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import sys
from typing import Any, Iterator, NoReturn, Sequence

from attest import __version__
from attest.cli.common import Parser, global_options, tell
from attest.errors import AttestError, UsageError

log = logging.getLogger("attest")

EXIT_CODES = {
    0: "every control passes (or is not applicable, excepted or skipped); other commands: done",
    1: "some control fails; for verify and export: a bundle or the chain does not verify",
    2: "bad usage or config: one line on stderr names the file, line, key or path",
    3: "some evidence could not be collected or judged, or the bundle could not be uploaded",
    4: "internal error (a bug: please report it with the output of `attest -v ...`)",
    130: "interrupted (Ctrl-C) or stopped (SIGTERM); evidence collected so far is kept in a hidden .<ts>.incomplete/ folder",
    141: "stdout was closed early (`attest ... | head`); nothing is lost",
}
CLOSED_PIPE = 141        # what a shell reports for a process ended by SIGPIPE (128 + 13)

# command modules, in the order `attest --help` lists them
MODULES = ("scan", "evaluate", "reports", "evidence", "admin")


def build_parser() -> argparse.ArgumentParser:
    import importlib
    epilog = "exit codes:\n" + "\n".join(f"  {code:<4} {text}" for code, text in EXIT_CODES.items())
    epilog += ("\n\n`attest` without a command prints this help and exits 2. "
               "`attest COMMAND --help` explains each command's arguments.")
    p = Parser(prog="attest", description="SOC 2 evidence collector and readiness scanner",
               epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter,
               parents=[global_options(config=True, top=True)])
    p.add_argument("--version", action="version", version=f"attest {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser,
                           help="`attest COMMAND --help` explains its arguments")
    for name in MODULES:
        importlib.import_module(f"attest.cli.{name}").register(sub)
    return p


class Stopped(KeyboardInterrupt):
    """SIGTERM (what Kubernetes and CI runners send), handled like Ctrl-C."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Stopped()


def main(argv: Sequence[str] | None = None) -> int:
    """The command line. Called without ``argv`` it is the program (the ``attest`` script): an
    interrupted scan then ends at once, abandoning reads still in flight."""
    code = _main(argv)
    if argv is None and code == 130 and threading.active_count() > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)   # collector threads may be blocked in a read: do not wait for them
    return code


def _main(argv: Sequence[str] | None) -> int:
    args = logged = None
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)
        # Ctrl-C stops a scan (exit 130) even when attest was started with SIGINT ignored
        # (a parent's inherited disposition, e.g. a background job or a test harness)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        parser = build_parser()
        args, extra = parser.parse_known_args(sys.argv[1:] if argv is None else list(argv))
        if args.command is None and not extra:
            parser.print_help(sys.stderr)
            return 2
        name = getattr(args, "command_name", "attest")
        if (args.config or "--config" in extra) and not getattr(args, "uses_config", False):
            raise UsageError(f"{name} reads no config; drop --config")
        if extra:
            raise UsageError(f"{name}: unrecognized arguments: {' '.join(extra)} "
                             f"(see `{name} --help`)")
        from attest.logs import setup
        setup(args.verbose, args.log_format)
        logged = args            # from here, --log-format json turns these lines into records
        code = int(args.func(args))
        sys.stdout.flush()          # here, where a closed pipe is caught, not at interpreter exit
        return code
    except AttestError as exc:
        tell(logged, f"attest: error: {exc}", logging.ERROR)
        return exc.exit_code
    except BrokenPipeError:
        _quiet_stdout()
        return CLOSED_PIPE
    except KeyboardInterrupt as exc:
        scan = args is not None and getattr(args, "command", None) == "scan"
        how = "stopped (SIGTERM)" if isinstance(exc, Stopped) else "interrupted"
        kept = getattr(exc, "kept", None)
        line = f"attest: {how}; no bundle was written" if scan else f"attest: {how}"
        if kept:
            line += f"; the {kept[0]} evidence files collected so far are kept in {kept[1]}"
        tell(logged, line, logging.ERROR)
        return 130
    except Exception as exc:  # a bug: one line for the nightly log, the traceback with -v
        log.debug("internal error", exc_info=True)
        tell(logged, f"attest: internal error: {type(exc).__name__}: {exc} (run with -v for "
                     "details)", logging.ERROR)
        return 4


def run() -> NoReturn:
    """``python -m attest``: run :func:`main` and exit with its code."""
    sys.exit(main())


def _quiet_stdout() -> None:
    """The reader of stdout went away (``| head``): point stdout at /dev/null so that Python's
    final flush does not complain on stderr."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (under test capture)
        pass


# --- the README's command table, generated from the parser -----------------------------------

def _leaves(sub: argparse._SubParsersAction, prefix: str) -> Iterator[tuple[str, argparse.ArgumentParser, str]]:
    helps = {a.dest: a.help for a in sub._choices_actions}
    for name, parser in sub.choices.items():
        nested = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if nested:
            yield from _leaves(nested[0], f"{prefix} {name}")
        else:
            yield f"{prefix} {name}", parser, parser.description or helps.get(name) or ""


def _usage(action: argparse.Action) -> str:
    if action.choices and not isinstance(action, argparse._SubParsersAction):
        value = "\\|".join(map(str, action.choices))
    else:
        value = action.metavar or action.dest.upper()
    if not action.option_strings:
        return value if action.required or action.nargs not in ("?", "*") else f"[{value}]"
    flag = next((o for o in action.option_strings if o.startswith("--")), action.option_strings[0])
    text = flag if action.nargs == 0 else f"{flag} {value}"
    return text if action.required else f"[{text}]"


def command_rows() -> list[tuple[str, str]]:
    """(usage, what it does) for every command: arguments, then options, then ``--config`` where
    it means something (-v and --log-format, accepted everywhere, are left out)."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    rows = []
    for name, leaf, text in _leaves(sub, "attest"):
        actions = [a for a in leaf._actions if a.dest not in ("help", "verbose", "log_format")]
        ordered = ([a for a in actions if not a.option_strings]
                   + [a for a in actions if a.option_strings and a.dest != "config"]
                   + [a for a in actions if a.dest == "config"])
        rows.append((" ".join([name, *map(_usage, ordered)]), text))
    return rows


def commands_markdown() -> str:
    """The table between the ``commands`` markers of README.md (a test keeps them equal)."""
    lines = ["| command | what it does |", "|---|---|"]
    lines += [f"| `{usage}` | {text} |" for usage, text in command_rows()]
    return "\n".join(lines)

