"""``attest report``, ``history``, ``diff``, ``export`` and ``sample``: commands that read bundles
and write documents. The documents themselves are built in ``reports/``."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from attest.cli.common import (add_command, add_dir, bundle_location, config_path, one_target,
                               output_file, parse_day, write_file)
from attest.errors import IntegrityError, UsageError


def register(sub: Any) -> None:
    r = add_command(sub, "report", help="(re)build the HTML readiness report of a bundle",
                    description="rebuild the HTML report (with the folder's history)")
    r.add_argument("target", nargs="?", metavar="TARGET",
                   help="a bundle, or a folder of bundles or S3 store (its newest bundle); "
                        "default: the newest bundle of --dir")
    add_dir(r)
    r.add_argument("--out", metavar="FILE",
                   help="the HTML file to write (default: ./attest-report.html)")
    r.set_defaults(func=cmd_report)

    h = add_command(sub, "history", help="the scans kept in the output folder, one line each",
                    description="the scans kept in the output folder or store: time, readiness, "
                                "pass/fail/error counts")
    add_dir(h)
    h.add_argument("--json", action="store_true", help="print JSON instead of a table")
    h.set_defaults(func=cmd_history)

    d = add_command(sub, "diff", help="what changed between two bundles",
                    description="controls whose status changed, resources that started or "
                                "stopped failing")
    d.add_argument("old", nargs="?", metavar="OLD",
                   help="the older bundle, its results.json, or s3://bucket/prefix/<bundle> "
                        "(default, with NEW: the two newest bundles of --dir)")
    d.add_argument("new", nargs="?", metavar="NEW", help="the newer bundle")
    add_dir(d)
    d.add_argument("--json", action="store_true", help="print JSON instead of a table")
    d.set_defaults(func=cmd_diff)

    e = add_command(sub, "export", help="auditor evidence export for a review period",
                    description="the auditor export for a period: every bundle verified, "
                                "coverage, OSCAL, manual evidence, in one zip")
    e.add_argument("--from", dest="start", required=True, metavar="DATE",
                   help="first day of the period, YYYY-MM-DD (UTC)")
    e.add_argument("--to", dest="end", required=True, metavar="DATE",
                   help="last day of the period, YYYY-MM-DD (UTC)")
    add_dir(e)
    e.add_argument("--out", metavar="FILE",
                   help="the zip file to write (default: ./attest-export-FROM-TO.zip)")
    e.add_argument("--public-key", metavar="FILE",
                   help="PEM public key: every bundle must be signed by it, and the key goes "
                        "into the export (default: the config's signing key)")
    e.set_defaults(func=cmd_export)

    s = add_command(sub, "sample", help="a reproducible random sample of a population",
                    description="draw a reproducible random sample of a population of the period "
                                "(changes, incidents, access, aws_access), with the bundle, "
                                "evidence file and sha256 behind each item")
    s.add_argument("population", metavar="POPULATION",
                   help="changes, incidents, access or aws_access")
    s.add_argument("--from", dest="start", required=True, metavar="DATE",
                   help="first day of the period, YYYY-MM-DD (UTC)")
    s.add_argument("--to", dest="end", required=True, metavar="DATE",
                   help="last day of the period, YYYY-MM-DD (UTC)")
    s.add_argument("--size", required=True, type=int, metavar="N",
                   help="how many items; more than the population takes every item, and says so")
    s.add_argument("--seed", required=True, metavar="SEED",
                   help="any text; the same seed draws the same items (recorded in the output)")
    s.add_argument("--out", metavar="FILE",
                   help="write the sample to FILE (default: print it)")
    add_dir(s)
    s.add_argument("--format", choices=["table", "csv", "json"],
                   help="table, csv or json (default: from --out's extension, else table)")
    s.set_defaults(func=cmd_sample)


# --- report ------------------------------------------------------------------------------------

def _resolve(folder: Path) -> tuple[Path, list[Path]]:
    """(bundle, earlier bundles of the same folder) for a bundle or a folder of bundles."""
    from attest.store import bundle_sort_key, is_bundle, list_bundles
    if is_bundle(folder):
        key = bundle_sort_key(folder.name)
        return folder, [b for b in list_bundles(folder.parent) if bundle_sort_key(b.name) < key]
    bundles = list_bundles(folder)
    if not bundles:
        raise UsageError(f"{folder}: no bundles found (a bundle is a folder with manifest.json)")
    return bundles[-1], bundles[:-1]


def cmd_report(args: argparse.Namespace) -> int:
    import os
    from attest.s3store import is_store_url, local_view
    from attest.signing import ATTESTATION
    from attest.calls import FAILED_CALLS
    from attest.store import read_results
    from reports.html import TREND_SCANS, evidence_digests, render_report
    out = output_file(args.out or "attest-report.html")
    where = one_target(args, args.target, "TARGET")
    from_store = is_store_url(str(where))
    # from a store: the results and manifests of the bundle and the TREND_SCANS before it
    with local_view(where, config_path(args), names=lambda n: n[-(TREND_SCANS + 1):],
                    only=("results.json", "manifest.json", FAILED_CALLS)) as folder:
        bundle, history = _resolve(Path(folder))
        results = read_results(bundle)   # a one-line UsageError naming the file if it does not fit
        if from_store:   # only results and manifests were fetched: no files to link to
            links: dict[str, Any] = {"evidence_base": None, "bundle_dir": str(where)}
        else:
            rel = Path(os.path.relpath(bundle.absolute(), out.parent.absolute())).as_posix()
            links = {"evidence_base": "" if rel == "." else f"{rel}/", "bundle_dir": bundle,
                     "signed": (bundle / ATTESTATION).is_file()}
        html = render_report(results, history, evidence_sha256=evidence_digests(bundle, results),
                             failed_calls=_failed_calls(bundle), **links)
    write_file(out, html)
    print(out)
    return 0


def _failed_calls(bundle: Path) -> int | None:
    """How many calls the bundle's failed-calls.json lists (None: a bundle without one)."""
    from attest.calls import FAILED_CALLS
    try:
        entries = json.loads((bundle / FAILED_CALLS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return len(entries) if isinstance(entries, list) else None


# --- history -----------------------------------------------------------------------------------

def cmd_history(args: argparse.Namespace) -> int:
    from attest.s3store import local_view
    from reports.history import history_rows
    out = bundle_location(args)
    with local_view(out, config_path(args), only=("results.json", "manifest.json")) as folder:
        rows = history_rows(folder)
    if not rows:
        raise UsageError(f"{out}: no bundles found (run `attest scan`, or give --dir DIR)")
    if args.json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return 0
    from rich.console import Console
    from rich.table import Table
    table = Table(title=f"{len(rows)} scans in {out}")
    for col in ("bundle", "started", "readiness", "pass", "fail", "error", "unreadable evidence"):
        table.add_column(col)
    for r in rows:
        c = r["counts"]
        table.add_row(r["bundle"], r["started_at"], "" if r["readiness"] is None else f"{r['readiness']}%",
                      str(c.get("pass", "")), str(c.get("fail", "")), str(c.get("error", "")),
                      str(r["incomplete"] or ""))
    Console(width=max(110, Console().width)).print(table)
    return 0


# --- diff --------------------------------------------------------------------------------------

def _diff_side(value: str, name: str) -> str | Path:
    """OLD or NEW: a bundle, a results file, or s3://... (a folder that is no bundle: one line)."""
    if value.startswith("s3://"):
        return value
    path = Path(value)
    if not path.exists():
        raise UsageError(f"{name} {value}: no such bundle or results file")
    if path.is_dir() and not (path / "results.json").is_file():
        raise UsageError(f"{name} {value}: not a bundle (no results.json); give a bundle folder "
                         "such as evidence/20260101T020000Z")
    if path.is_file():
        try:
            json.loads(path.read_bytes())
        except (OSError, ValueError):
            raise UsageError(f"{name} {value}: not a results file (not JSON); give a bundle folder "
                             "or its results.json") from None
    return path


def cmd_diff(args: argparse.Namespace) -> int:
    from attest.s3store import local_view
    from attest.store import list_bundles, read_results
    from reports.diff import diff_results
    config = config_path(args)
    if args.old and args.new:
        if args.dir:
            raise UsageError("give OLD and NEW, or --dir, not both")
        with local_view(_diff_side(args.old, "OLD"), config, only=("results.json",)) as old, \
                local_view(_diff_side(args.new, "NEW"), config, only=("results.json",)) as new:
            diff = diff_results(read_results(old), read_results(new))
    elif args.old:
        raise UsageError("give both OLD and NEW (or neither: the two newest bundles of --dir)")
    else:
        with local_view(bundle_location(args), config, names=lambda n: n[-2:],
                        only=("results.json",)) as folder:
            bundles = list_bundles(folder)
            if len(bundles) < 2:
                raise UsageError(f"{args.dir or folder}: fewer than two bundles to compare")
            diff = diff_results(read_results(bundles[-2]), read_results(bundles[-1]))
    if args.json:
        print(json.dumps(diff, indent=2, ensure_ascii=False))
        return 0
    print_diff(diff)
    return 0


def print_diff(diff: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table
    from reports.diff import OK, is_empty
    console = Console(soft_wrap=True, width=max(100, Console().width))
    o, n = diff["old"], diff["new"]
    console.print(f"[bold]{escape(str(o['bundle']))}[/] -> [bold]{escape(str(n['bundle']))}[/]  "
                  f"readiness {o['readiness']}% -> {n['readiness']}%")
    if is_empty(diff):
        console.print("no changes")
        return
    if diff["readiness"]["explanation"]:
        console.print(escape(diff["readiness"]["explanation"]))
    colors = {"pass": "green", "fail": "red", "error": "yellow", "excepted": "cyan"}

    def st(value: str | None) -> str:
        return f"[{colors.get(value or '', 'dim')}]{value or '-'}[/]"

    if diff["status_changes"]:
        t = Table(title="control status changes")
        for col in ("control", "old", "new"):
            t.add_column(col)
        for c in diff["status_changes"]:
            t.add_row(escape(c["id"]), st(c["old"]), st(c["new"]))
        console.print(t)
    rows = [(label, e) for key, label in (("started_failing", "started failing"),
                                          ("started_erroring", "started erroring"),
                                          ("fixed", "fixed"),
                                          ("stopped_failing", "stopped failing"),
                                          ("stopped_erroring", "stopped erroring"),
                                          ("disappeared", "disappeared (no longer present)"),
                                          ("left_window", "left the look-back window"),
                                          ("not_judged", "not judged in the new scan"))
            for e in diff[key]
            if not (key.startswith("stopped_") and e["new"] in OK)]   # listed as fixed
    if rows:
        t = Table(title="resources")
        t.add_column("change", no_wrap=True)
        for col in ("control", "resource", "old", "new", "detail"):
            t.add_column(col, overflow="fold")
        for label, e in rows:
            t.add_row(label, escape(e["control"]), escape(e["resource"]), st(e["old"]), st(e["new"]),
                      escape(e["detail"] or ""))
        console.print(t)
    if diff["new_resources"]:
        t = Table(title="new resources")
        for col in ("resource", "controls", "failing"):
            t.add_column(col, overflow="fold")
        for r in diff["new_resources"]:
            t.add_row(escape(r["resource"]), str(len(r["controls"])),
                      escape(", ".join(r["failing"])))
        console.print(t)
    for key, label in (("added_controls", "controls added"), ("removed_controls", "controls removed")):
        if diff[key]:
            console.print(f"{label}: {escape(', '.join(diff[key]))}")


# --- export ------------------------------------------------------------------------------------

def cmd_export(args: argparse.Namespace) -> int:
    from attest.s3store import local_view
    from reports.export import export_period, period_names
    start, end = parse_day(args.start, "--from"), parse_day(args.end, "--to")
    if start > end:
        raise UsageError(f"--from {start} is after --to {end}")
    dest = output_file(args.out or f"attest-export-{start.isoformat()}-{end.isoformat()}.zip")
    location = bundle_location(args)
    key = export_key(args)
    try:
        with local_view(location, config_path(args), names=period_names(start, end),
                        manual=True) as out_dir:
            path = export_period(out_dir, start, end, dest, public_key=key)
    except IntegrityError as exc:
        for problem in exc.problems:
            print(f"FAIL {problem}", file=sys.stderr)
        raise
    print(f"export: {path} ({start} to {end}): every bundle file and the hash chain verified"
          + ("; every signature checked" if key is not None else
             "; signatures not checked (give --public-key FILE)"))
    return 0


def export_key(args: argparse.Namespace) -> Any:
    """The public key the export checks signatures with: ``--public-key``, else the key of the
    config's ``signing:`` section (``--config`` or ``$ATTEST_CONFIG``), else None."""
    from attest.signing import load_public_key, load_signer
    if getattr(args, "public_key", None):
        return load_public_key(args.public_key)
    path = config_path(args)
    if not path:
        return None
    from attest.config import load_config
    config = load_config(path)
    if config.model.signing is None:
        return None
    aws = config.section("aws")
    return load_signer(config.model.signing, base_dir=config.path.parent if config.path else None,
                       endpoint_url=getattr(aws, "endpoint_url", None)).key


# --- sample ------------------------------------------------------------------------------------

def cmd_sample(args: argparse.Namespace) -> int:
    from attest.s3store import local_view
    from reports.export import period_names, period_populations, verify_period
    from reports.populations import population
    from reports.populations.sample import render, sample
    population(args.population)                    # an unknown name: one line, before any work
    start, end = parse_day(args.start, "--from"), parse_day(args.end, "--to")
    if start > end:
        raise UsageError(f"--from {start} is after --to {end}")
    if args.size < 1:
        raise UsageError(f"--size {args.size}: must be at least 1")
    dest = output_file(args.out) if args.out else None
    fmt = args.format or {".json": "json", ".csv": "csv"}.get(dest.suffix.lower() if dest else "",
                                                             "table")
    try:
        with local_view(bundle_location(args), config_path(args),
                        names=period_names(start, end)) as out_dir:
            period = verify_period(Path(out_dir), start, end)
            table = period_populations(period, [args.population])[0]
    except IntegrityError as exc:
        for problem in exc.problems:
            print(f"FAIL {problem}", file=sys.stderr)
        raise
    drawn = sample(table, args.size, args.seed)
    if drawn.whole_population:
        print(f"attest: note: the {table.name} population has {len(table.rows)} item(s), no more "
              f"than --size {args.size}: every item is taken", file=sys.stderr)
    text = render(drawn, fmt)
    if dest is None:
        sys.stdout.write(text)
        return 0
    write_file(dest, text)
    print(f"sample: {dest} ({len(drawn.picks)} of {len(table.rows)} {table.name} items, "
          f"{start} to {end}, seed {args.seed!r})")
    return 0
