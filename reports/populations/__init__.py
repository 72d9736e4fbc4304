"""The populations a Type 2 auditor samples from, built from the verified bundles of a period.

A population is every event of one kind over the period: ``changes`` (pull requests merged to a
default branch), ``incidents`` (PagerDuty high-urgency incidents), ``access`` (Okta user
lifecycle, admin-role and group-membership events) and ``aws_access`` (IAM users and access keys
created or deleted). Each is read from one evidence name, night after night; each row names the
bundle and the evidence file it came from, with that file's sha256 from the bundle's manifest.

Rules, the same for every population:

* **In the period**: a row belongs to the period when its event time (``when``) falls on one of
  the period's UTC days, as the period's scans saw it. Events before the first scan's window, or
  after the last scan of the period (recorded by the next scan, outside the period), are not in it;
  each population's ``coverage`` notes say from when to when the reads reach.
* **No duplicates**: one row per item (``key``). When several nights recorded it (overlapping
  windows, a re-read snapshot), the row names the first bundle that recorded it; populations whose
  items change after they are first seen (an incident acknowledged later) take the newest record
  of the period and name it, and ``first_recorded_by`` names the first.
* **No gaps hidden**: a read that failed (denied, error, partial) is not a read. Windowed evidence
  is read "since the last good read", so the next good read catches up; ``coverage`` names every
  failed read and the read that caught it up, and any stretch no good read covers.
* Sorted by (event time, key): the order :mod:`reports.populations.sample` draws from.

Source-specific reading lives in one module per source (``github``, ``pagerduty``, ``okta``,
``aws``); this module only dedups, filters, sorts and writes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import pandas as pd

from attest.errors import UsageError
from attest.model import isoformat, parse_time
from attest.results import Results
from reports.populations._evidence import BundleView, EvidenceFile

PROVENANCE = ("bundle", "evidence_file", "evidence_sha256")
Extract = Callable[[list[EvidenceFile]], Iterator[tuple[EvidenceFile, dict[str, Any]]]]


@dataclass(frozen=True)
class Population:
    """How one population is read. ``extract(records)`` gets one scope's records of the period in
    bundle order (every state) and yields (the record a row comes from, the row)."""
    name: str
    title: str
    evidence: str               # the evidence name it is read from
    columns: tuple[str, ...]    # row columns, provenance excluded
    key: tuple[str, ...]        # what identifies one item
    when: str                   # the column holding the event time (ISO, UTC)
    extract: Extract
    windowed: bool = True       # payload since/until windows (False: successive snapshots)
    keep: str = "first"         # "first": the first record names the row; "last": the newest
    notes: tuple[str, ...] = ()  # what a row is, and what the evidence cannot show
    brief: tuple[str, ...] = ()  # the columns a printed table shows (default: key and when)

    @property
    def all_columns(self) -> tuple[str, ...]:
        extra = ("first_recorded_by",) if self.keep == "last" else ()
        return self.columns + PROVENANCE + extra


@dataclass
class Table:
    """One population over one period: its rows, and what its reads covered."""
    population: Population
    start: date
    end: date
    rows: list[dict[str, Any]]
    coverage: list[str] = field(default_factory=list)   # what the reads covered, scope first

    @property
    def name(self) -> str:
        return self.population.name

    def frame(self) -> pd.DataFrame:
        columns = list(self.population.all_columns)
        return pd.DataFrame([[r.get(c) for c in columns] for r in self.rows], columns=columns,
                            dtype=object)

    def to_csv(self) -> bytes:
        return self.frame().to_csv(index=False, lineterminator="\n").encode("utf-8")

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.population.title, "rows": len(self.rows),
                "file": f"populations/{self.name}.csv", "evidence": self.population.evidence,
                "coverage": list(self.coverage), "notes": list(self.population.notes)}


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    return (datetime.combine(start, time(0), timezone.utc),
            datetime.combine(end + timedelta(days=1), time(0), timezone.utc))


def _in_period(value: Any, start: date, end: date) -> bool:
    when = parse_time(value) if value else None
    return when is not None and start <= when.date() <= end


def _sort_key(population: Population, row: dict[str, Any]) -> tuple:
    return (str(row.get(population.when) or ""),
            *(("" if row.get(k) is None else row.get(k)) for k in population.key))


def build(population: Population, bundles: list[BundleView], start: date, end: date) -> Table:
    """The population over [start, end] from the period's bundles (oldest first), and only them:
    the export holds those bundles, so anyone can build the same population from the zip."""
    by_scope: dict[str, list[EvidenceFile]] = {}
    for b in bundles:
        for rec in b.records(population.evidence):
            by_scope.setdefault(rec.scope, []).append(rec)
    rows: dict[tuple, dict[str, Any]] = {}
    table = Table(population, start, end, [])
    for scope in sorted(by_scope):
        records = by_scope[scope]
        for source, row in population.extract(records):
            if not _in_period(row.get(population.when), start, end):
                continue
            key = tuple(row.get(k) for k in population.key)
            full = {**row, **source.provenance()}
            if key not in rows:
                rows[key] = {**full, "first_recorded_by": source.bundle}
            elif population.keep == "last":
                rows[key] = {**full, "first_recorded_by": rows[key]["first_recorded_by"]}
        notes = window_coverage(records, start, end) if population.windowed \
            else snapshot_coverage(records)
        table.coverage += [f"{scope}: {n}" for n in notes]
    if not by_scope:
        table.coverage.append(f"no scan of the period recorded {population.evidence} (the source "
                              "is not configured, or it was added later): the population is "
                              "unknown, not empty")
    table.rows = sorted(rows.values(), key=lambda r: _sort_key(population, r))
    return table


def window_coverage(records: list[EvidenceFile], start: date, end: date) -> list[str]:
    """What one scope's windowed reads ([since, until] in each good payload) covered of the
    period: each failed read and the good read that caught it up, and every stretch no good read
    covers."""
    notes: list[str] = []
    good = [(r, parse_time(r.payload.get("since")), parse_time(r.payload.get("until")))
            for r in records if r.ok and isinstance(r.payload, dict)]
    good = [(r, s, u) for r, s, u in good if s is not None and u is not None]
    if not good:
        return [f"no good read in the period ({len(records)} failed): the population is unknown"]
    p0, p1 = _bounds(start, end)
    first_since, last_until = good[0][1], good[-1][2]
    notes.append(f"{len(good)} good read(s), covering {isoformat(max(first_since, p0))} to "
                 f"{isoformat(min(last_until, p1))}")
    if first_since > p0:
        notes.append(f"not covered: {isoformat(p0)} to {isoformat(first_since)} (before the "
                     "first good read's window; the bundle before the period may hold it)")
    reach = first_since
    for r, since, until in good:
        if since > reach and since > p0 and reach < p1:
            notes.append(f"GAP not covered: {isoformat(reach)} to {isoformat(since)} (no good read "
                         f"covers it; {r.bundle} read only from {isoformat(since)}): events then "
                         "are missing from this population")
        reach = max(reach, until)
    for i, r in enumerate(records):
        if r.ok:
            continue
        later = next((g for g in good if g[0].started_at > r.started_at), None)
        if later is None:
            notes.append(f"the read of {r.bundle} failed ({r.state}) and no later good read in "
                         "the period caught it up")
        else:
            earlier = [g for g in good if g[0].started_at < r.started_at]
            caught = not earlier or later[1] <= earlier[-1][2]
            notes.append(f"the read of {r.bundle} failed ({r.state}); {later[0].bundle} read from "
                         f"{isoformat(later[1])}" + (", catching it up: no gap" if caught
                                                    else ": see the gap above"))
    if last_until < p1:
        notes.append(f"events after {isoformat(last_until)} (the last good read of the period) "
                     "are recorded by the next scan, outside this period")
    return notes


def snapshot_coverage(records: list[EvidenceFile]) -> list[str]:
    good = [r for r in records if r.ok]
    if not good:
        return [f"no good snapshot in the period ({len(records)} failed): the population is "
                "unknown"]
    notes = [f"{len(good)} good snapshot(s) of {len(records)}, from {good[0].bundle} to "
             f"{good[-1].bundle}",
             f"a user or key deleted before {good[0].bundle} (the period's first good snapshot) "
             "is not in this population: seeing it would take a snapshot from before the period"]
    for r in records:
        if not r.ok:
            later = next((g for g in good if g.started_at > r.started_at), None)
            notes.append(f"the snapshot of {r.bundle} failed ({r.state})" +
                         (f"; {later.bundle} compared with the previous good one: no gap"
                          if later else "; no later good snapshot in the period"))
    return notes


# --- the registry -----------------------------------------------------------------------------

def populations() -> dict[str, Population]:
    """Every population, in the order the export lists them."""
    from reports.populations import aws, github, okta, pagerduty
    return {p.name: p for p in (github.CHANGES, pagerduty.INCIDENTS, okta.ACCESS, aws.AWS_ACCESS)}


def population(name: str) -> Population:
    known = populations()
    if name not in known:
        raise UsageError(f"{name}: unknown population (known: {', '.join(known)})")
    return known[name]


def views(bundles: Iterable[Path], results: dict[str, Results] | None = None) -> list[BundleView]:
    results = results or {}
    return [BundleView(Path(b), results.get(Path(b).name)) for b in bundles]


def build_all(bundles: list[Path], start: date, end: date,
              results: dict[str, Results] | None = None,
              names: Iterable[str] | None = None) -> list[Table]:
    """Every population (or ``names``) of the period's (verified) bundles."""
    chosen = [population(n) for n in names] if names is not None else list(populations().values())
    period = views(bundles, results)
    return [build(p, period, start, end) for p in chosen]


def sheets(tables: list[Table]) -> dict[str, pd.DataFrame]:
    """The workbook sheets (one per population) the export adds to coverage.xlsx."""
    return {t.name: t.frame() for t in tables}


__all__ = ["PROVENANCE", "Population", "Table", "build", "build_all", "population", "populations",
           "sheets"]
