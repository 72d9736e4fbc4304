"""What every command shares: the parser class, the global options, and the rules that turn
``--dir``, ``--out`` and ``--config`` into paths (each mistake one :class:`UsageError` line).

Flag meanings, the same for every command:
    --dir DIR      the output folder (or ``s3://bucket/prefix`` store) holding the bundles
    --out FILE     the one file the command writes (report, export, evaluate)
    --config FILE  the config file (default ``$ATTEST_CONFIG``)
"""
from __future__ import annotations

import argparse
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from attest.errors import UsageError

log = logging.getLogger("attest")


def tell(args: argparse.Namespace | None, line: str, level: int = logging.INFO) -> None:
    """A line for the person (or job) running attest, on stderr: plain text, or with
    ``--log-format json`` one JSON log record like every other line, so that the stream stays
    one JSON object a line."""
    if args is not None and getattr(args, "log_format", "text") == "json":
        logging.getLogger("attest.cli").log(level, "%s", line)
    else:
        import sys
        print(line, file=sys.stderr)

DEMO_DIR = Path("attest-demo")      # where ``attest scan --demo`` writes, relative to the cwd


class Parser(argparse.ArgumentParser):
    """argparse that raises a one-line :class:`UsageError` (exit 2) instead of printing usage."""

    def error(self, message: str) -> None:  # type: ignore[override]
        where = self.prog if " " in self.prog else "attest"
        raise UsageError(f"{where}: {message} (see `{self.prog} --help`)")


def global_options(*, config: bool, top: bool = False) -> argparse.ArgumentParser:
    """The options accepted before or after the command. On the top-level parser they carry the
    defaults; on a command's parser they default to nothing, so that a value given before the
    command is not reset by the command's parser."""
    def default(value: Any) -> Any:
        return value if top else argparse.SUPPRESS
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("global options (before or after the command)")
    g.add_argument("-v", "--verbose", action="store_true", default=default(False),
                   help="debug logging, with every API call")
    g.add_argument("--log-format", choices=["text", "json"], default=default("text"),
                   help="log lines on stderr: text, or one JSON object a line (scan id, source, "
                        "scope, call, duration, outcome)")
    if config:
        g.add_argument("--config", metavar="FILE", default=default(None),
                       help="config file (default: $ATTEST_CONFIG)")
    return p


def add_command(sub: Any, name: str, *, help: str, description: str | None = None,
                config: bool = True) -> argparse.ArgumentParser:
    """A command's parser with the global options; ``config``: does --config mean something?"""
    p = sub.add_parser(name, help=help, description=description or help,
                       parents=[global_options(config=config)])
    p.set_defaults(uses_config=config, command_name=p.prog)
    return p


def add_dir(p: argparse.ArgumentParser, *, store: bool = True, alias: str | None = None) -> None:
    names = ["--dir"] + ([alias] if alias else [])
    p.add_argument(*names, dest="dir", metavar="DIR",
                   help="output folder holding the bundles" + (" or S3 store s3://bucket/prefix"
                                                               if store else "")
                   + " (default: the config's " + ("store, else its " if store else "")
                   + "output_dir, ./evidence; without a config and ./evidence, ./attest-demo "
                     "when the demo wrote bundles there)")


# --- --config ---------------------------------------------------------------------------------

def config_path(args: argparse.Namespace) -> str | None:
    """``--config``, else ``$ATTEST_CONFIG`` (empty counts as unset), else None."""
    from attest.config import config_file
    return config_file(getattr(args, "config", None))


def need_config(args: argparse.Namespace, command: str, what: str) -> str:
    path = config_path(args)
    if not path:
        raise UsageError(f"{command}: give --config FILE (or set ATTEST_CONFIG) with {what}")
    return path


# --- --dir: where the bundles are -----------------------------------------------------------

def demo_folder(args: argparse.Namespace) -> Path | None:
    """``./attest-demo`` when nothing else names a folder: no ``--config``, no ``$ATTEST_CONFIG``,
    no ``./evidence``, and the demo left bundles there (so the commands the demo suggests work
    when run plainly in the same folder)."""
    from attest.store import list_bundles
    if config_path(args) or Path("evidence").exists() or not list_bundles(DEMO_DIR):
        return None
    log.info("no --dir, no config and no ./evidence: using the demo's bundles in ./%s", DEMO_DIR)
    return DEMO_DIR


def _folder_to_read(value: str, what: str) -> str | Path:
    if value.startswith("s3://"):
        return value
    path = Path(value)
    if path.is_file():
        raise UsageError(f"{what} {value}: is a file; give the folder that holds the bundles")
    if not path.is_dir():
        raise UsageError(f"{what} {value}: no such folder")
    return path


def bundle_location(args: argparse.Namespace) -> str | Path:
    """The folder or S3 store a reading command works on: ``--dir``, else the demo's folder (see
    :func:`demo_folder`), else the config's store, else its output folder."""
    if getattr(args, "dir", None):
        return _folder_to_read(args.dir, "--dir")
    demo = demo_folder(args)
    if demo is not None:
        return demo
    from attest.config import location_for
    where = location_for(None, config_path(args))
    if not str(where).startswith("s3://") and not Path(where).is_dir():
        raise UsageError(f"{where}: no such folder, so no bundles yet (run `attest scan`, or "
                         "give --dir DIR)")
    return where


def output_dir(args: argparse.Namespace, *, write: bool) -> Path:
    """The local output folder (where the manual evidence store lives): ``--dir``, else the demo's
    folder (see :func:`demo_folder`), else the config's output_dir. ``write``: checked writable."""
    if getattr(args, "dir", None):
        if args.dir.startswith("s3://"):
            raise UsageError(f"--dir {args.dir}: must be a local folder here")
        out, what = Path(args.dir), f"--dir {args.dir}"
    else:
        from attest.config import output_dir_for
        out = demo_folder(args) or output_dir_for(None, config_path(args))
        what = f"output folder {out}"
    if write:
        return writable_folder(out, what)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{what}: is a file; give a folder")
    return out


def one_target(args: argparse.Namespace, positional: str | None, name: str) -> str | Path:
    """A command's bundle or folder: the positional argument, else ``--dir`` and its defaults."""
    if positional and getattr(args, "dir", None):
        raise UsageError(f"give {name} or --dir, not both")
    return target(positional, name) if positional else bundle_location(args)


def target(value: str, what: str) -> str | Path:
    """A positional bundle or folder argument: ``s3://...`` or an existing local folder."""
    if value.startswith("s3://"):
        return value
    path = Path(value)
    if path.is_file():
        raise UsageError(f"{what} {value}: is a file; give a bundle folder, a folder of bundles, "
                         "or s3://bucket/prefix")
    if not path.exists():
        raise UsageError(f"{what} {value}: no such bundle or folder")
    return path


# --- writing -----------------------------------------------------------------------------------

def _probe(folder: Path, what: str) -> None:
    """Fail now, before any work, when nothing can be written in ``folder``."""
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".attest-probe-"):
            pass
    except OSError as exc:
        raise UsageError(f"{what}: cannot write in {folder}: {exc.strerror or exc}") from None


def writable_folder(path: Path, what: str) -> Path:
    """A folder a command may create and write in: not a file, under no file, writable."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"{what}: is a file; give a folder")
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{what}: {existing} is a file, not a folder")
    _probe(existing, what)
    return path


def output_file(value: str, flag: str = "--out") -> Path:
    """The file a command writes: local, not a folder, not inside a bundle, in an existing,
    writable folder. Checked before the command does any work."""
    from attest.store import writable_output
    what = f"{flag} {value}"
    path = writable_output(value, flag)
    given_parent = Path(value).expanduser().parent
    if not path.parent.exists():
        raise UsageError(f"{what}: the folder {given_parent} does not exist")
    if not path.parent.is_dir():
        raise UsageError(f"{what}: {given_parent} is a file, not a folder")
    _probe(path.parent, what)
    return path


def write_file(path: Path, data: str | bytes) -> None:
    """Write the file a command produces; an OS error is one line, not a traceback."""
    try:
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    except OSError as exc:
        raise UsageError(f"{path}: cannot write: {exc.strerror or exc}") from None


def parse_day(value: str, flag: str) -> Any:
    from datetime import date
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{flag} {value}: not a date; expected YYYY-MM-DD (e.g. 2026-01-31)") \
            from None
