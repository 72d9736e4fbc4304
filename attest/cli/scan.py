"""``attest scan`` and ``attest controls``."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attest.cli.common import DEMO_DIR, add_command, config_path, tell, writable_folder
from attest.errors import AttestError, UsageError

if TYPE_CHECKING:
    from attest.results import Results

log = logging.getLogger("attest")

SCAN_EXITS = {0: "every control passes", 1: "some controls fail",
              3: "some evidence could not be collected or judged (controls in error)"}


def register(sub: Any) -> None:
    from attest.sources import source_names
    s = add_command(sub, "scan", help="collect evidence, evaluate controls, write a bundle",
                    description="collect, evaluate, write (and sign, and upload) a bundle")
    s.add_argument("--dir", "--out", dest="dir", metavar="DIR",
                   help="output folder for bundles (default: the config's output_dir, else "
                        "./evidence; with --demo ./attest-demo); --out is an older name for it")
    s.add_argument("--demo", action="store_true",
                   help="scan a fictional company on local servers: no credentials, no network")
    s.add_argument("--format", choices=["table", "json", "csv", "junit"], default="table",
                   help="what to print on stdout (default: a summary table)")
    s.add_argument("--fail-on", choices=["any", "regression"], default="any",
                   help="any (default): exit 1 when a control fails, 3 when evidence is missing; "
                        "regression: exit 1 only when a control that passed on the previous scan "
                        "now fails or errors (3 still when the bundle could not be stored)")
    s.add_argument("--allow-unsafe-store", action="store_true",
                   help="scan even when the S3 store is not versioned or is public")
    s.add_argument("--only", metavar="SOURCES",
                   help="only these sources, comma-separated (e.g. aws,github); the others are "
                        "skipped")
    s.add_argument("--controls", metavar="IDS",
                   help="only these controls, comma-separated; only their sources run and, for "
                        "AWS, only the evidence they read is collected")
    s.add_argument("--shard", metavar="I/N",
                   help="collect only shard I of N (counted from 0, as a Kubernetes Indexed "
                        "Job's JOB_COMPLETION_INDEX) into DIR/.shards/<night>/I-of-N/, judging "
                        "nothing; `attest merge` seals the night's shards as one bundle")
    s.set_defaults(func=cmd_scan)

    m = add_command(sub, "merge", help="seal the shards of a sharded scan into one bundle",
                    description="check the shards `attest scan --shard I/N` wrote (each file "
                                "against its shard.json, every unit collected once), judge the "
                                "union of their evidence and seal ONE bundle per night, as a scan "
                                "does (signed, uploaded, alerts); a unit no shard collected is "
                                "error")
    m.add_argument("--dir", dest="dir", metavar="DIR",
                   help="output folder: shards are read from DIR/.shards/, the bundle is written "
                        "to DIR (default: the config's output_dir, else ./evidence)")
    m.add_argument("--shards", nargs="+", metavar="FOLDER",
                   help="the shard folders to merge, or folders holding them such as "
                        "DIR/.shards/2026-11-22 (default: every shard under DIR/.shards/)")
    m.add_argument("--wait", type=_seconds, default=0, metavar="SECONDS",
                   help="first wait up to SECONDS for every shard of tonight (the UTC day) to be "
                        "there; then merge what is there")
    m.add_argument("--format", choices=["table", "json", "csv", "junit"], default="table",
                   help="what to print on stdout (default: a summary table)")
    m.add_argument("--fail-on", choices=["any", "regression"], default="any",
                   help="as for scan")
    m.add_argument("--allow-unsafe-store", action="store_true",
                   help="seal even when the S3 store is not versioned or is public")
    m.set_defaults(func=cmd_merge)

    c = add_command(sub, "controls", help="list the control catalog", description="the control catalog",
                    config=False)
    c.add_argument("--source", help=f"only the controls of this source ({', '.join(source_names())})")
    c.add_argument("--criterion",
                   help="only controls mapped to this criterion (CC6.1) or family (CC6)")
    c.add_argument("--format", choices=["table", "json", "markdown"], default="table",
                   help="a table (default), JSON, or the README's markdown table")
    c.set_defaults(func=cmd_controls)


def cmd_scan(args: argparse.Namespace) -> int:
    from attest.config import load_config
    from attest.model import utcnow
    from attest.progress import progress_reporter
    from attest.scan import run_scan
    path = config_path(args)
    if args.dir and args.dir.startswith("s3://"):
        raise UsageError(f"--dir {args.dir}: a scan writes to a local folder; name the S3 store "
                         "with store: in the config")
    if args.shard is not None:
        if args.only is not None or args.controls is not None:
            raise UsageError("--shard with --only or --controls: a sharded night collects every "
                             "source, so that its merge is a whole scan; drop one of them")
        return _cmd_shard(args, path)
    # an unknown source or control is a mistake found before any work (no demo started yet)
    selection = _selection(args)
    demo = public_key = None
    if args.demo:
        out = writable_folder(Path(args.dir or DEMO_DIR), f"--dir {args.dir or DEMO_DIR}")
        from attest.demo import start_demo
        from collectors.manual.demo import demo_signing_key
        from controls import load_catalog
        now = utcnow()
        chosen = selection.sources(load_catalog())   # only the selected sources' fakes
        # first: without the demo extra, nothing is written
        demo = start_demo(now, tuple(sorted(chosen)) if chosen is not None else None)
        try:
            key, public_key = demo_signing_key(out)
            config = load_config(path, overrides={
                **demo.config, "signing": {"private_key_path": str(key.resolve())}})
            demo.prepare(out)
        except BaseException:
            demo.stop()
            raise
    else:
        config = load_config(path)
        out = Path(args.dir) if args.dir else config.output_dir
        writable_folder(out, f"--dir {args.dir}" if args.dir else
                        f"{config.path}: output_dir {config.model.output_dir}" if config.path else
                        f"output folder {out}")
    from attest.exceptions import load_exceptions
    try:
        exceptions = load_exceptions(config)
    except BaseException:
        if demo:
            demo.stop()
        raise
    where = config.model.store or str(out.resolve())
    try:
        with progress_reporter() as step:
            outcome = run_scan(config, out_dir=out, progress=step, demo=bool(demo),
                               exceptions=exceptions, allow_unsafe_store=args.allow_unsafe_store,
                               selection=selection)
    except KeyboardInterrupt:
        raise
    except Exception as exc:   # the scan could not run: the alert channels hear of it
        _alert(config, None, None, where, scan_failure=f"{type(exc).__name__}: {exc}"
               if not isinstance(exc, AttestError) else str(exc))
        raise
    finally:
        if demo:
            demo.stop()
    return _finish(args, config, outcome, where, demo=demo, out=out, public_key=public_key)


def _finish(args: argparse.Namespace, config: Any, outcome: Any, where: str, *, demo: Any = None,
            out: Path | None = None, public_key: Path | None = None) -> int:
    """After a bundle is sealed (by a scan or a merge): alerts, the results on stdout, where the
    bundle is, and the exit code with its meaning on stderr."""
    _alert(config, outcome.results, outcome.previous, where,
           scan_failure=f"the bundle could not be uploaded: {outcome.store_error}"
           if outcome.store_error else None)
    closed: BrokenPipeError | None = None
    try:
        print_results(outcome.results, args.format)
        sys.stdout.flush()
    except BrokenPipeError as exc:   # `| head`: the bundle is written; still say where it is
        closed = exc
    tell(args, f"bundle: {outcome.bundle}")
    tell(args, f"report: {outcome.bundle / 'report.html'}")
    if outcome.store_error:
        tell(args, f"attest: error: the bundle was not uploaded to {outcome.store} (kept in "
                   f"{outcome.bundle}; the next scan uploads it): {outcome.store_error}",
             logging.ERROR)
    elif outcome.store:
        tell(args, f"store: {outcome.store}/{outcome.bundle.name}/")
    code = outcome.exit_code
    if args.fail_on == "regression" and not outcome.store_error:
        from attest.alerts import regressions
        regressed = regressions(outcome.previous, outcome.results)
        for change in regressed:
            tell(args, f"regression: {change.id}: {change.before} -> {change.after}",
                 logging.WARNING)
        code = 1 if regressed else 0
        meaning = "a control regressed since the previous scan" if regressed else \
            "no control regressed since the previous scan"
    elif outcome.store_error:
        meaning = "the bundle could not be uploaded to the store"
    else:
        meaning = SCAN_EXITS.get(code, "see `attest --help`")
        if demo and code == 1:
            meaning += ", as the demo intends"
    if closed is not None:
        from attest.cli import CLOSED_PIPE
        tell(args, f"exit {CLOSED_PIPE}: stdout was closed before the results were printed (the "
                   f"scan itself: exit {code}, {meaning})")
        raise closed
    tell(args, f"exit {code}: {meaning}")
    if demo and out is not None and public_key is not None:
        tell(args, demo_next_steps(out, public_key, outcome.bundle.name))
    return code


def _seconds(value: str) -> int:
    try:
        seconds = int(value)
    except ValueError:
        seconds = -1
    if seconds < 0:
        raise argparse.ArgumentTypeError(f"{value}: expected a whole number of seconds, 0 or more")
    return seconds


def _cmd_shard(args: argparse.Namespace, path: str | None) -> int:
    """``attest scan --shard I/N``: collect one shard; judge, sign and upload nothing."""
    from attest.config import load_config
    from attest.progress import progress_reporter
    from attest.scan import run_shard
    from attest.shards import ShardSpec
    shard = ShardSpec.parse(args.shard)
    if args.demo:
        raise UsageError("--shard and --demo: each shard would start a demo of its own; shard a "
                         "real estate (or a demo started once, named in a config)")
    if args.dir and args.dir.startswith("s3://"):
        raise UsageError(f"--dir {args.dir}: a shard is written to a local (shared) folder")
    config = load_config(path)
    out = Path(args.dir) if args.dir else config.output_dir
    writable_folder(out, f"--dir {args.dir}" if args.dir else f"output folder {out}")
    with progress_reporter() as step:
        outcome = run_shard(config, shard, out_dir=out, progress=step)
    covered = outcome.manifest["units"]["covered"]
    tell(args, f"shard: {outcome.folder}")
    tell(args, f"units: {', '.join(covered) or 'none'} "
               f"({len(covered)} of {len(outcome.manifest['units']['all'])})")
    tell(args, f"exit 0: shard {shard.name} written; `attest merge` seals the night's shards")
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from attest.config import load_config
    from attest.exceptions import load_exceptions
    from attest.model import utcnow
    from attest.scan import run_merge
    from attest.shards import ShardError, find_shards, night_of, wait_for_night
    config = load_config(config_path(args))
    if args.dir and args.dir.startswith("s3://"):
        raise UsageError(f"--dir {args.dir}: the shards and the bundle are in a local folder; "
                         "name the S3 store with store: in the config")
    out = Path(args.dir) if args.dir else config.output_dir
    if args.dir and not out.is_dir() and not args.wait:   # a wrong path, not a missing night
        raise UsageError(f"--dir {args.dir}: no such folder, so no shards to merge")
    writable_folder(out, f"--dir {args.dir}" if args.dir else f"output folder {out}")
    if args.wait:
        night = night_of(utcnow())
        if not wait_for_night(out, night, args.wait, log=log.info):
            log.warning("not every shard of %s arrived within %d s; merging what is there",
                        night, args.wait)
    nights = find_shards(out, args.shards)
    if not nights:
        raise ShardError(f"no shards to merge in {out / '.shards'} (`attest scan --shard I/N` "
                         "writes them)")
    exceptions = load_exceptions(config)
    where = config.model.store or str(out.resolve())
    codes = []
    for night, shards in nights.items():
        try:
            outcome = run_merge(config, shards, out_dir=out, exceptions=exceptions,
                                allow_unsafe_store=args.allow_unsafe_store)
        except KeyboardInterrupt:
            raise
        except Exception as exc:   # the night could not be sealed: the alert channels hear of it
            _alert(config, None, None, where, scan_failure=f"merge of {night}: {exc}")
            raise
        codes.append(_finish(args, config, outcome, where))
    return 3 if 3 in codes else 1 if 1 in codes else 0


def demo_next_steps(out: Path, public_key: Path, bundle: str) -> str:
    """What to run after the demo. Run plainly in the same folder, the commands find
    ./attest-demo themselves (see attest.cli.common.demo_folder); elsewhere they get --dir."""
    from attest.store import bundle_time
    plain = (out.resolve() == DEMO_DIR.resolve() and not os.environ.get("ATTEST_CONFIG")
             and not Path("evidence").exists())
    d = "" if plain else f" --dir {out}"
    day = bundle_time(bundle).date()
    steps = [
        (f"attest verify {out} --public-key {public_key}",
         "check every hash, the chain and the signatures"),
        (f"attest report{d}", "rebuild the newest bundle's HTML report as ./attest-report.html"),
        (f"attest history{d}", "the scans kept so far (run the demo again for a trend)"),
        (f"attest export --from {day} --to {day}{d}", "the auditor's zip for a review period"),
        (f"attest evidence add manual.penetration_test FILE --valid-until "
         f"{day + timedelta(days=365)}{d}", "store a document for a manual control"),
    ]
    width = max(len(cmd) for cmd, _ in steps)
    return "next, in this folder:\n" + "\n".join(f"  {cmd:<{width}}  # {why}" for cmd, why in steps)


def _alert(config: Any, current: Any, previous: Any, store: str, scan_failure: str | None) -> None:
    """Tell the configured alert channels; a channel that fails is logged, never fatal."""
    if config.model.alerts is None:
        return
    from attest.alerts import send_alerts
    outcomes = send_alerts(config.model.alerts, current=current, previous=previous, store=store,
                           datadog=config.section("datadog"), scan_failure=scan_failure, log=log)
    for channel, outcome in outcomes.items():
        log.info("alert %s: %s", channel, outcome)


def _selection(args: argparse.Namespace) -> Any:
    """``--only`` and ``--controls`` as a Selection; an unknown name is one line, exit 2."""
    from attest.scan import Selection
    from attest.sources import source_names
    from controls import catalog_by_id

    def names(value: str | None, flag: str) -> frozenset[str] | None:
        if value is None:
            return None
        parts = frozenset(p.strip() for p in value.split(",") if p.strip())
        if not parts:
            raise UsageError(f"{flag}: give one or more names, comma-separated")
        return parts
    only, controls = names(args.only, "--only"), names(args.controls, "--controls")
    known = source_names()
    for name in sorted(only or ()):
        if name not in known:
            raise UsageError(f"--only {name}: unknown source (known: {', '.join(known)})")
    catalog = catalog_by_id()
    for cid in sorted(controls or ()):
        if cid not in catalog:
            raise UsageError(f"--controls {cid}: unknown control id (see `attest controls`)")
        if only is not None and catalog[cid].source not in only:
            raise UsageError(f"--controls {cid}: its source {catalog[cid].source} is not in --only")
    return Selection(only=only, controls=controls)


def print_results(results: "Results", fmt: str) -> None:
    if fmt == "json":   # results.json's own bytes, written as they are encoded (75,000
        for piece in results.json_pieces():   # findings are not also held as one text)
            sys.stdout.write(piece.decode("utf-8"))
        return
    if fmt in ("csv", "junit"):
        from reports import formats
        sys.stdout.write(formats.FORMATS[fmt](results))
        return
    from rich.console import Console
    from rich.table import Table
    table = Table(title=f"attest scan {results.scan.bundle}  readiness "
                        f"{results.summary.readiness}%")
    for col in ("control", "criteria", "status", "failing / errors"):
        table.add_column(col)
    colors = {"pass": "green", "fail": "red", "error": "yellow", "excepted": "cyan"}
    for c in results.controls:
        bad = len(c.failing())
        st = c.status.value
        table.add_row(c.id, ", ".join(c.criteria),
                      f"[{colors.get(st, 'dim')}]{st}[/]", str(bad) if bad else "")
    Console(soft_wrap=True, width=max(100, Console().width)).print(table)
    print(" ".join(f"{k.value}={v}" for k, v in results.summary.counts.items() if v))


def cmd_controls(args: argparse.Namespace) -> int:
    from controls import load_catalog, select
    catalog = load_catalog()
    sources = sorted({c.source for c in catalog})
    if args.source and args.source.lower() not in sources:
        raise UsageError(f"--source {args.source}: unknown source (known: {', '.join(sources)})")
    chosen = select(catalog, source=args.source, criterion=args.criterion)
    if not chosen:
        raise UsageError(f"--criterion {args.criterion}: no control"
                         + (f" of source {args.source}" if args.source else "")
                         + " is mapped to it (criteria look like CC6.1, or a family like CC6)")
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
