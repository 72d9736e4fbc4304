"""The ``attest`` command line. The only module that exits the process.

Exit codes: 0 every control passes; 1 some control fails (or, for verify/export, a bundle does not
verify); 2 bad usage or config; 3 some evidence could not be collected or judged; 4 internal error.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from attest import __version__
from attest.errors import AttestError, UsageError
from collectors import SOURCES

log = logging.getLogger("attest")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        raise UsageError(message)


def _setup_logging(verbose: bool) -> None:
    level = logging.DEBUG if verbose else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("attest")
    root.handlers[:] = [handler]
    root.setLevel(level)
    # SDK loggers propagate to the root logger, which has no handler here, so only their warnings
    # show (collectors keep secret-bearing SDK loggers quiet themselves). werkzeug would add a
    # handler of its own and print every request the demo's moto server answers.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="attest", description="SOC 2 evidence collector and readiness scanner")
    p.add_argument("--version", action="version", version=f"attest {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser("scan", help="collect evidence, evaluate controls, write a bundle")
    s.add_argument("--config", help="config file (default: $ATTEST_CONFIG, else defaults: the "
                                    "default AWS credential chain in all enabled regions)")
    s.add_argument("--out", help="output directory for bundles (overrides output_dir)")
    s.add_argument("--demo", action="store_true",
                   help="scan a fictional company on local servers: no credentials, no network")
    s.add_argument("--format", choices=["table", "json", "csv", "junit"], default="table",
                   help="what to print on stdout (default: a summary table)")

    c = sub.add_parser("controls", help="list the control catalog")
    c.add_argument("--source", help=f"only this source ({', '.join(SOURCES)})")
    c.add_argument("--criterion", help="only controls mapped to this criterion (CC6.1) or family (CC6)")
    c.add_argument("--format", choices=["table", "json", "markdown"], default="table")

    v = sub.add_parser("verify", help="recompute every hash of a bundle (or all in a dir) and the chain")
    v.add_argument("target", help="a bundle folder, or an output folder of bundles")
    v.add_argument("--allow-pruned", action="store_true",
                   help="accept that bundles older than the oldest one present were deleted")

    e = sub.add_parser("evaluate", help="re-run the controls on a bundle's stored evidence, offline")
    e.add_argument("bundle")
    e.add_argument("--out", help="write the fresh results JSON here (never into the bundle)")
    e.add_argument("--config", help="take control parameters from this config instead of the bundle's")

    pm = sub.add_parser("permissions", help="print the least-privilege policy a source needs")
    pm.add_argument("source", help="e.g. aws")

    from reports import commands  # report, history, diff, export, evidence: declared there
    commands.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        _setup_logging(args.verbose)
        return int(args.func(args) if hasattr(args, "func") else COMMANDS[args.command](args))
    except AttestError as exc:
        print(f"attest: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("attest: interrupted; no bundle was written", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: one line for the nightly log, the traceback with -v
        log.debug("internal error", exc_info=True)
        print(f"attest: internal error: {type(exc).__name__}: {exc} (run with -v for details)",
              file=sys.stderr)
        return 4


def cmd_scan(args: argparse.Namespace) -> int:
    from attest.config import load_config
    from attest.model import utcnow
    from attest.progress import progress_reporter
    from attest.scan import run_scan
    config_path = args.config or os.environ.get("ATTEST_CONFIG")
    now = utcnow()
    demo = None
    if args.demo:
        from attest.demo import start_demo
        demo = start_demo(now)
        config = load_config(config_path, overrides=demo.config)
        out = Path(args.out or "attest-demo")
        from attest.demo.manual import seed_manual
        seed_manual(out, now)
    else:
        config = load_config(config_path)
        out = Path(args.out) if args.out else config.output_dir
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: output path exists and is not a directory")
    exceptions = _load_exceptions(config)
    try:
        with progress_reporter() as step:
            outcome = run_scan(config, out_dir=out, progress=step, demo=bool(demo),
                               exceptions=exceptions)
    finally:
        if demo:
            demo.stop()
    _print_results(outcome.results, args.format)
    print(f"bundle: {outcome.bundle}\nreport: {outcome.bundle / 'report.html'}", file=sys.stderr)
    return outcome.exit_code


def _load_exceptions(config: Any) -> Any:
    from attest.exceptions import load_exceptions
    return load_exceptions(config)


def _print_results(results: dict[str, Any], fmt: str) -> None:
    if fmt == "json":
        sys.stdout.write(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
        return
    if fmt in ("csv", "junit"):
        from reports import formats
        sys.stdout.write(formats.FORMATS[fmt](results))
        return
    from rich.console import Console
    from rich.table import Table
    table = Table(title=f"attest scan {results['scan']['bundle']}  readiness "
                        f"{results['summary']['readiness']}%")
    for col in ("control", "criteria", "status", "failing / errors"):
        table.add_column(col)
    colors = {"pass": "green", "fail": "red", "error": "yellow", "excepted": "cyan"}
    for c in results["controls"]:
        bad = sum(1 for f in c["findings"] if f["status"] in ("fail", "error"))
        st = c["status"]
        table.add_row(c["id"], ", ".join(c["criteria"]),
                      f"[{colors.get(st, 'dim')}]{st}[/]", str(bad) if bad else "")
    Console(soft_wrap=True, width=max(100, Console().width)).print(table)
    print(" ".join(f"{k}={v}" for k, v in results["summary"]["counts"].items() if v))


def cmd_controls(args: argparse.Namespace) -> int:
    from controls import load_catalog, select
    chosen = select(load_catalog(), source=args.source, criterion=args.criterion)
    if not chosen:
        raise UsageError("no control matches that filter")
    if args.format == "json":
        print(json.dumps([c.model_dump(mode="json") for c in chosen], indent=2))
    elif args.format == "markdown":
        print("| id | criteria | severity | checks |\n|---|---|---|---|")
        for c in chosen:
            print(f"| `{c.id}` | {', '.join(c.criteria)} | {c.severity} | {c.title} |")
    else:
        from rich.console import Console
        from rich.table import Table
        table = Table(title=f"{len(chosen)} controls")
        for col in ("id", "criteria", "severity", "title"):
            table.add_column(col, overflow="fold")
        for c in chosen:
            table.add_row(c.id, ", ".join(c.criteria), c.severity, c.title)
        Console(width=max(120, Console().width)).print(table)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from attest.manifest import verify
    bundles, problems = verify(args.target, allow_pruned=args.allow_pruned)
    for p in problems:
        print(f"FAIL {p}")
    if problems:
        print(f"attest: verify failed: {len(problems)} problem(s) in {len(bundles)} bundle(s)",
              file=sys.stderr)
        return 1
    print(f"OK: {len(bundles)} bundle(s) verified, every file hash and the chain match")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from attest.engine import evaluate
    from attest.manifest import verify_bundle
    from attest.model import parse_time
    from attest.scan import exit_code_for, summarize
    from attest.store import is_bundle, load_evidence, read_results
    from controls import load_catalog
    bundle = Path(args.bundle)
    if not is_bundle(bundle):
        raise UsageError(f"{bundle}: not a bundle (no manifest.json)")
    problems = verify_bundle(bundle)
    if problems:
        raise UsageError(f"{bundle}: does not verify, refusing to evaluate: {problems[0]}")
    stored = read_results(bundle)
    if args.config:
        from attest.config import load_config
        config = load_config(args.config)
        params, exceptions = config.model.controls, _load_exceptions(config)
    else:
        from attest.exceptions import ExceptionSet
        params, exceptions = stored["scan"].get("params", {}), ExceptionSet.from_results(stored)
    skipped = {s: v.get("detail", "skipped") for s, v in stored["scan"].get("sources", {}).items()
               if v.get("status") == "skipped"}
    now = parse_time(stored["scan"]["started_at"])
    results = evaluate(load_catalog(), load_evidence(bundle), params, now, skipped, exceptions)
    controls = [r.to_json() for r in results]
    fresh = {"scan": {**stored["scan"], "re_evaluated_from": bundle.name}, "summary": summarize(controls),
             "controls": controls}
    if exceptions is not None:
        fresh["exceptions"] = exceptions.to_json(now)
    before = {c["id"]: c["status"] for c in stored["controls"]}
    changed = [(c["id"], before.get(c["id"]), c["status"]) for c in controls
               if before.get(c["id"]) != c["status"]]
    _print_results(fresh, "table")
    for cid, old, new in changed:
        print(f"changed: {cid}: {old} -> {new}")
    if not changed:
        print("same statuses as the stored results")
    if args.out:
        Path(args.out).write_text(json.dumps(fresh, indent=2, ensure_ascii=False), encoding="utf-8")
    return exit_code_for(fresh)


def cmd_permissions(args: argparse.Namespace) -> int:
    from collectors import SOURCES, load_collector
    if args.source not in SOURCES:
        raise UsageError(f"unknown source {args.source!r} (known: {', '.join(SOURCES)})")
    document = getattr(load_collector(args.source), "permissions_document", None)
    if document is None:
        raise UsageError(f"{args.source}: no policy document; see the README for its credentials")
    sys.stdout.write(document())
    return 0


COMMANDS = {"scan": cmd_scan, "controls": cmd_controls, "verify": cmd_verify, "evaluate": cmd_evaluate,
            "permissions": cmd_permissions}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
