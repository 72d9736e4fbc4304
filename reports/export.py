"""The auditor export: one zip for a review period, written only if every bundle verifies.

Steps: pick the bundles whose scan day (UTC date of ``started_at``) is in the period; verify each
bundle's files against its manifest and the hash chain between them, including the first bundle's
link to the newest bundle before the period when that bundle is in the folder; check every
manual evidence document the bundles recorded against its recorded sha256 (reports.export_manual);
load results; build the coverage tables (reports.coverage), the populations to sample from
(reports.populations), the coverage page, the OSCAL assessment results (reports.oscal),
index.html and README.txt; write the zip under a temporary
name, re-hashing each bundle file and document as it is copied, and rename it. Any mismatch raises
IntegrityError naming the bundle and the file (or document), and no zip is left behind.
"""
from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from attest import __version__
from attest.errors import IntegrityError, UsageError
from attest.manifest import MANIFEST, manifest_sha256, read_manifest, verify_bundle, verify_chain
from attest.signing import ATTESTATION, public_key_pem
from attest.model import canonical_json, isoformat, sha256_bytes, utcnow
from attest.store import bundle_time, list_bundles, read_results
from reports._results import exception_key, listed_exceptions
from reports.coverage import Coverage, Scan, build_coverage, period_days
from reports.display import day_ranges
from reports.export_manual import Document, read_document, recorded_documents
from reports.integrity import claims
from reports.oscal import BundleFiles, build_assessment_results
from reports.populations import Table, build_all, sheets
from reports.populations.sample import ALGORITHM as SAMPLE_ALGORITHM

OSCAL_FILE = "assessment-results.oscal.json"
FILES = {
    "index.html": "this page: what the export holds and how to check it",
    "README.txt": "the same explanation as plain text",
    "coverage.html": "control x day grid of statuses; a hatched cell is a day without any scan",
    "coverage.csv": "per-control coverage table (one row per control)",
    "coverage_daily.csv": "control x day statuses, as in coverage.html",
    "coverage.xlsx": "workbook: summary (= coverage.csv), findings (every non-pass finding per "
                     "scan), daily (= coverage_daily.csv), and one sheet per population "
                     "(= populations/<name>.csv)",
    "populations/": "the populations to sample from, one CSV each: changes, incidents, access, "
                    "aws_access; every row names its bundle, evidence file and that file's sha256 "
                    "(see Populations below, and `attest sample`)",
    OSCAL_FILE: "NIST OSCAL assessment-results: one observation per control per scan, evidence "
                "files pinned by sha256, findings for failing controls, exceptions as risks",
    "bundles/": "the scan bundles of the period, byte for byte, each with its manifest.json "
                "and, when signed, its attestation.dsse.json",
    "chain.json": "the head of the chain (the newest manifest's sha256 and its signature), what "
                  "each integrity mechanism covers, and every bundle's manifest sha256",
}
KEY_FILE = ("signing-public-key.pem", "the public key the signatures were checked with; compare "
            "it with the key the company handed you directly")
MANUAL_FILES = ("manual/", "the manual evidence documents the period's scans recorded, byte for "
                "byte, each matching the sha256 its first bundle of the period recorded")


@dataclass
class Period:
    """The verified bundles of a review period and what the export says about them."""
    start: date
    end: date
    bundles: list[Path]
    scans: list[Scan]
    manifest_sha: dict[str, str]
    predecessor: str | None = None       # newest bundle before the period, link verified
    unverified_link: str | None = None   # the first bundle's link target, absent from the folder
    signed: list[str] = field(default_factory=list)      # bundles with an attestation
    key_id: str | None = None            # the key every signature was checked with, if any
    stores: list[dict[str, Any]] = field(default_factory=list)  # each bundle's manifest "store"


def _scan_day(bundle: Path) -> date:
    return bundle_time(bundle.name).date()


def select_bundles(out_dir: Path, start: date, end: date) -> tuple[list[Path], Path | None]:
    """(bundles whose scan day is in [start, end], the newest bundle before them or None)."""
    everything = list_bundles(out_dir)
    inside = [b for b in everything if start <= _scan_day(b) <= end]
    before = [b for b in everything if _scan_day(b) < start]
    return inside, (before[-1] if before else None)


def verify_period(out_dir: Path, start: date, end: date, public_key: Any = None) -> Period:
    """Verify the period's bundles, chain and, with ``public_key``, every bundle's signature;
    raise IntegrityError listing every problem."""
    bundles, before = select_bundles(out_dir, start, end)
    if not bundles:
        raise UsageError(f"{out_dir}: no bundles with a scan between {start} and {end}")
    problems: list[str] = []
    for b in bundles:
        problems.extend(verify_bundle(b, public_key))
    chain = ([before] if before is not None else []) + bundles
    problems.extend(verify_chain(chain))
    if problems:
        raise IntegrityError(f"export refused, {len(problems)} problem(s); first: {problems[0]}",
                             problems)
    period = Period(start=start, end=end, bundles=bundles, scans=[],
                    manifest_sha={b.name: manifest_sha256(b) for b in bundles},
                    predecessor=before.name if before is not None else None,
                    signed=[b.name for b in bundles if (b / ATTESTATION).is_file()],
                    key_id=public_key.keyid if public_key is not None else None,
                    stores=[read_manifest(b).get("store") or {} for b in bundles])
    link = read_manifest(bundles[0]).get("previous")
    if before is None and link:
        period.unverified_link = link.get("bundle")
    for b in bundles:
        results = read_results(b)
        period.scans.append(Scan(bundle=b.name, started_at=results.scan.started_at, results=results))
    return period


def exceptions_in_period(scans: list[Scan]) -> list[dict[str, Any]]:
    """Each exception listed by a scan of the period, with the days it was seen and in force."""
    seen: dict[tuple, dict[str, Any]] = {}
    for scan in sorted(scans, key=lambda s: s.started_at):
        for e in listed_exceptions(scan.results):
            record = e.model_dump(mode="json")
            entry = seen.setdefault(exception_key(e), {**record, "first_day": scan.day.isoformat(),
                                                       "days_in_force": set()})
            entry.update(record)
            entry["last_day"] = scan.day.isoformat()
            if e.status == "active":
                entry["days_in_force"].add(scan.day)
    out = []
    for entry in seen.values():
        entry["days_in_force"] = len(entry["days_in_force"])
        out.append(entry)
    return out


def manual_status(scans: list[Scan]) -> list[dict[str, Any]]:
    """Manual (document) controls as of the last scan of the period."""
    if not scans:
        return []
    last = max(scans, key=lambda s: s.started_at)
    return [{"id": c.id, "title": c.title, "status": c.status.value, "day": last.day.isoformat(),
             "findings": [f"{f.resource}: {f.detail}" for f in c.findings]}
            for c in last.results.controls if c.source == "manual"]


def _env() -> Environment:
    return Environment(loader=PackageLoader("reports", "templates"),
                       autoescape=select_autoescape(default=True, default_for_string=True))


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts, with pandas' NaN for a missing value turned back into None."""
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def render_coverage(coverage: Coverage, period: Period) -> str:
    days = [d.isoformat() for d in period_days(period.start, period.end)]
    rows = []
    for rec in _records(coverage.summary):
        cells = [(d, coverage.daily.loc[rec["control"], d]) for d in days]
        rows.append({**rec, "cells": cells})
    return _env().get_template("coverage.html.j2").render(
        period=period, days=days, rows=rows, tool_version=__version__)


def _context(period: Period, coverage: Coverage, generated_at: datetime,
             documents: list[Document], tables: list[Table] | None = None) -> dict[str, Any]:
    by_day = {}
    for s in period.scans:
        by_day.setdefault(s.day.isoformat(), []).append(s.bundle)
    days = [d.isoformat() for d in period_days(period.start, period.end)]
    missing_days = [d for d in days if d not in by_day]
    verify_command = ("attest verify --allow-pruned bundles/"
                      if period.predecessor or period.unverified_link else "attest verify bundles/")
    integrity_claims, left_open = claims(
        bundles=[b.name for b in period.bundles], signed=period.signed, key_id=period.key_id,
        stores=period.stores, verify_command=verify_command)
    files = dict([*FILES.items(), MANUAL_FILES]) if documents else dict(FILES)
    if period.key_id:
        files[KEY_FILE[0]] = KEY_FILE[1]
    return {
        "period": period, "generated_at": isoformat(generated_at), "tool_version": __version__,
        "bundles": [{"name": s.bundle, "day": s.day.isoformat(),
                     "started_at": isoformat(s.results.scan.started_at),
                     "manifest_sha256": period.manifest_sha[s.bundle],
                     "counts": {k.value: v for k, v in s.results.summary.counts.items() if v}}
                    for s in period.scans],
        "missing_days": missing_days,
        "missing_ranges": day_ranges(missing_days),
        "multi_days": {d: b for d, b in by_day.items() if len(b) > 1},
        "files": files,
        "exceptions": exceptions_in_period(period.scans),
        "manual": manual_status(period.scans), "documents": [d.row() for d in documents],
        "summary": _records(coverage.summary),
        # the bundles before the period are not in the zip: the chain starts at a missing link
        "verify_command": verify_command,
        "claims": [c.to_json() for c in integrity_claims],
        "left_open": left_open,
        "head": {"bundle": period.bundles[-1].name,
                 "manifest_sha256": period.manifest_sha[period.bundles[-1].name],
                 "signed": period.bundles[-1].name in period.signed},
        "key_file": KEY_FILE[0] if period.key_id else None,
        "populations": [t.summary() for t in tables or []],
        "sample_algorithm": SAMPLE_ALGORITHM,
    }


def chain_record(period: Period, ctx: dict[str, Any]) -> dict[str, Any]:
    """chain.json: the head of the chain with its signature, every bundle's manifest sha256, and
    what each integrity mechanism proves here."""
    head = period.bundles[-1]
    envelope = None
    if (head / ATTESTATION).is_file():
        envelope = json.loads((head / ATTESTATION).read_text(encoding="utf-8"))
    return {
        "period": {"from": period.start.isoformat(), "to": period.end.isoformat()},
        "head": {**ctx["head"], "attestation": envelope},
        "public_key_id": period.key_id,
        "bundles": [{"bundle": b.name, "manifest_sha256": period.manifest_sha[b.name],
                     "signed": b.name in period.signed} for b in period.bundles],
        "predecessor": period.predecessor or period.unverified_link,
        "integrity": ctx["claims"],
        "left_open": ctx["left_open"],
    }


def render_readme(ctx: dict[str, Any]) -> str:
    p: Period = ctx["period"]
    lines = [f"attest auditor export: {p.start} to {p.end} (UTC days)",
             f"generated {ctx['generated_at']} by attest {ctx['tool_version']}", "",
             f"Bundles included: {len(p.bundles)}. Head of the chain: {ctx['head']['bundle']}, "
             f"manifest.json sha256 {ctx['head']['manifest_sha256']} "
             f"({'signed' if ctx['head']['signed'] else 'not signed'}; see chain.json).", "",
             "What each integrity mechanism proves for these bundles:"]
    for c in ctx["claims"]:
        lines.append(f"  * {c['mechanism']} ({c['status']}): {c['statement']}")
    lines += ["", "What that leaves open:"] + [f"  * {t}" for t in ctx["left_open"]] + [""]
    if p.predecessor:
        lines.append(f"The first bundle's link to {p.predecessor} (before the period) was verified.")
    elif p.unverified_link:
        lines.append(f"The first bundle links to {p.unverified_link}, which was not in the folder "
                     "exported from: that link could not be checked.")
    lines += ["", f"Re-verify after unzipping:  {ctx['verify_command']}"
              + (f" --public-key {ctx['key_file']}" if ctx["key_file"] else ""),
              "  (with the public key the company handed you; the signatures are checked with "
              "securesystemslib's DSSE code: the payload is an in-toto Statement whose subject is "
              "manifest.json and its sha256)", "", "Files:"]
    lines += [f"  {name:<32} {desc}" for name, desc in ctx["files"].items()]
    lines += ["", "Day = UTC date of a scan's start. Several scans on one day: the day's status is "
              "the worst (fail > error > excepted > pass > not_applicable > skipped).",
              f"Days without any scan ({len(ctx['missing_days'])}): "
              + (", ".join(ctx["missing_ranges"]) or "none") + ". They are gaps, shown as no_scan.",
              "", "Bundles (name, day, manifest sha256):"]
    lines += [f"  {b['name']}  {b['day']}  {b['manifest_sha256']}" for b in ctx["bundles"]]
    lines += ["", "Exceptions (accepted risks) seen in the period:"]
    lines += [f"  {e['control']} {e['resource']}: {e.get('reason')} -- approved by "
              f"{e.get('approved_by')}, expires {e.get('expires')}, {e.get('status')} at the last "
              f"scan, in force on {e['days_in_force']} day(s)" for e in ctx["exceptions"]] or ["  none"]
    lines += ["", "Populations to sample from (populations/<name>.csv; each row names its bundle, "
              "evidence file and that file's sha256):"]
    for pop in ctx["populations"]:
        lines.append(f"  {pop['file']}: {pop['title']}, {pop['rows']} row(s), from "
                     f"{pop['evidence']}")
        lines += [f"      coverage: {c}" for c in pop["coverage"]]
        lines += [f"      note: {n}" for n in pop["notes"]]
    lines += ["  Draw a reproducible sample: attest sample NAME --from DATE --to DATE --size N "
              "--seed S --dir bundles/", f"  ({ctx['sample_algorithm']})"]
    lines += ["", "Manual evidence (documents) at the last scan:"]
    lines += [f"  {m['id']}: {m['status']}" + "".join(f"\n      {f}" for f in m["findings"])
              for m in ctx["manual"]] or ["  none"]
    lines += ["", "Manual evidence documents recorded in the period (control, file name, sha256, "
              "valid until, status at the last scan; file in this zip):"]
    lines += [f"  {d['control']}  {d['filename']}  {d['sha256']}  valid until {d['valid_until']}  "
              f"{d['status']}\n      {d['archive_path']} ("
              + (f"stored as {d['path']}, " if d["path"] != d["archive_path"] else "")
              + f"first recorded by {d['bundle']})"
              for d in ctx["documents"]] or ["  none"]
    return "\n".join(lines) + "\n"


class _ZipOut:
    """Writes the zip under a temporary name; ``commit`` renames it, ``abandon`` deletes it."""

    def __init__(self, dest: Path, root: str) -> None:
        self.dest, self.root = dest, root
        self.tmp = dest.with_name(f".{dest.name}.partial")
        self.zip = zipfile.ZipFile(self.tmp, "w", compression=zipfile.ZIP_DEFLATED)

    def add(self, relpath: str, data: bytes, when: datetime) -> None:
        info = zipfile.ZipInfo(f"{self.root}/{relpath}", date_time=when.timetuple()[:6])
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        self.zip.writestr(info, data)

    def add_bundle(self, bundle: Path, manifest_sha: str) -> dict[str, str]:
        """Copy a bundle, re-hashing every file against its (already verified) manifest."""
        raw = (bundle / MANIFEST).read_bytes()
        if sha256_bytes(raw) != manifest_sha:
            raise IntegrityError(f"{bundle.name}: {MANIFEST}: changed during the export")
        manifest = json.loads(raw)
        when = bundle_time(bundle.name)
        files = {}
        for entry in manifest["files"]:
            data = (bundle / entry["path"]).read_bytes()
            if sha256_bytes(data) != entry["sha256"]:
                raise IntegrityError(f"{bundle.name}: {entry['path']}: changed (sha256 does not "
                                     "match the manifest)")
            self.add(f"bundles/{bundle.name}/{entry['path']}", data, when)
            files[entry["path"]] = entry["sha256"]
        self.add(f"bundles/{bundle.name}/{MANIFEST}", raw, when)
        if (bundle / ATTESTATION).is_file():   # verified with the bundle, when a key was given
            self.add(f"bundles/{bundle.name}/{ATTESTATION}", (bundle / ATTESTATION).read_bytes(), when)
        return files

    def commit(self) -> Path:
        self.zip.close()
        os.replace(self.tmp, self.dest)
        return self.dest

    def abandon(self) -> None:
        self.zip.close()
        self.tmp.unlink(missing_ok=True)


def export_period(out_dir: str | Path, start: date, end: date, dest: str | Path, *,
                  now: datetime | None = None, public_key: Any = None) -> Path:
    """Write the auditor zip for [start, end] to ``dest``; raise IntegrityError if anything is off.
    With ``public_key``, every bundle must be signed by it, and the key goes into the zip."""
    if start > end:
        raise UsageError(f"--from {start} is after --to {end}")
    generated_at = (now or utcnow()).replace(microsecond=0)
    out_dir = Path(out_dir)
    period = verify_period(out_dir, start, end, public_key)
    last = max(period.scans, key=lambda s: s.started_at)
    documents = recorded_documents(out_dir, [(b, period.manifest_sha[b.name])
                                             for b in period.bundles],
                                   last.started_at.date(), last.results.scan.params)
    coverage = build_coverage(period.scans, start, end)
    tables = period_populations(period)
    ctx = _context(period, coverage, generated_at, documents, tables)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    out = _ZipOut(dest, f"attest-export-{start.isoformat()}-{end.isoformat()}")
    try:
        bundles = {}
        for b in period.bundles:
            files = out.add_bundle(b, period.manifest_sha[b.name])
            bundles[b.name] = BundleFiles(b.name, f"bundles/{b.name}", period.manifest_sha[b.name],
                                          files)
        for doc in documents:
            out.add(doc.archive_path, read_document(out_dir, doc), bundle_time(doc.bundle))
        oscal = build_assessment_results(period.scans, bundles, start, end, ctx["exceptions"],
                                         generated_at)
        out.add(OSCAL_FILE, canonical_json(oscal), generated_at)
        out.add("coverage.csv", coverage.to_csv(), generated_at)
        out.add("coverage_daily.csv", coverage.daily_csv(), generated_at)
        out.add("coverage.xlsx", coverage.to_xlsx(generated_at, sheets(tables)), generated_at)
        for table in tables:
            out.add(f"populations/{table.name}.csv", table.to_csv(), generated_at)
        out.add("coverage.html", render_coverage(coverage, period).encode("utf-8"), generated_at)
        out.add("index.html", _env().get_template("export_index.html.j2").render(**ctx)
                .encode("utf-8"), generated_at)
        out.add("README.txt", render_readme(ctx).encode("utf-8"), generated_at)
        out.add("chain.json", canonical_json(chain_record(period, ctx)), generated_at)
        if public_key is not None:
            out.add(KEY_FILE[0], public_key_pem(public_key).encode("ascii"), generated_at)
        return out.commit()
    except BaseException:
        out.abandon()
        raise


def period_populations(period: Period,
                       names: list[str] | None = None) -> list[Table]:
    """The populations (or ``names``) of a verified period (reports.populations)."""
    return build_all(period.bundles, period.start, period.end,
                     results={s.bundle: s.results for s in period.scans}, names=names)


def period_names(start: date, end: date) -> Any:
    """Picks, from a store's bundle names, the period's bundles and the newest one before it."""
    def pick(names: list[str]) -> list[str]:
        inside = [n for n in names if start <= bundle_time(n).date() <= end]
        before = [n for n in names if bundle_time(n).date() < start]
        return before[-1:] + inside
    return pick
