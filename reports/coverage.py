"""Per-control coverage over a review period, built with pandas from the bundles' results.json.

Day = the UTC date of a scan's ``started_at``. When one day holds several scans, the day's status
for a control is the worst of them, in the order of :data:`attest.model.STATUS_ORDER`
(fail > error > excepted > pass > not_applicable > skipped): a control that failed in any scan of
a day counts as failing that day. A day without any scan is ``no_scan``: a gap, never filled in
from the days around it. A day with scans that did not report the control (e.g. a control added
to the catalog later) is ``not_evaluated``.

Counts per control: ``days_evaluated`` = days with a verdict (pass, fail, error, excepted or
not_applicable); ``days_no_scan`` = days with no scan at all. ``first_failure`` and
``last_failure`` are the first and last days whose status is ``fail``.
"""
from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pandas as pd

from attest.model import STATUS_ORDER, Status, isoformat
from attest.results import Results

NO_SCAN = "no_scan"
NOT_EVALUATED = "not_evaluated"
VERDICTS = frozenset({"pass", "fail", "error", "excepted", "not_applicable"})

SUMMARY_COLUMNS = [
    "control", "title", "source", "criteria", "severity", "days_in_period", "days_evaluated",
    "days_passing", "days_failing", "days_error", "days_excepted", "days_not_applicable",
    "days_skipped", "days_not_evaluated", "days_no_scan", "first_failure", "last_failure",
    "last_status",
]
FINDING_COLUMNS = ["day", "bundle", "started_at", "control", "control_status", "resource",
                   "status", "detail"]


@dataclass(frozen=True)
class Scan:
    """One verified bundle's results, placed on its UTC day."""
    bundle: str
    started_at: datetime
    results: Results

    @property
    def day(self) -> date:
        return self.started_at.date()


def worst(statuses: list[str]) -> str:
    """The worst status of one control over the scans of a day (see :data:`attest.model.STATUS_ORDER`)."""
    for status in STATUS_ORDER:
        if status in statuses:
            return status
    return statuses[0] if statuses else NOT_EVALUATED


def period_days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def _controls(scans: list[Scan]) -> dict[str, dict[str, Any]]:
    """Every control seen in the period, in catalog order, with its newest metadata."""
    out: dict[str, dict[str, Any]] = {}
    for scan in scans:
        for c in scan.results.controls:
            out[c.id] = {"title": c.title, "source": c.source, "criteria": "; ".join(c.criteria),
                         "severity": c.severity}
    return out


def daily_status(scans: list[Scan], start: date, end: date) -> pd.DataFrame:
    """Control x day grid of day statuses (index: control id, columns: ISO days)."""
    controls = _controls(scans)
    by_day: dict[date, list[Scan]] = {}
    for scan in scans:
        by_day.setdefault(scan.day, []).append(scan)
    grid: dict[str, list[str]] = {}
    for d in period_days(start, end):
        day_scans = by_day.get(d, [])
        column = []
        for cid in controls:
            if not day_scans:
                column.append(NO_SCAN)
                continue
            seen = [c.status.value for s in day_scans for c in s.results.controls if c.id == cid]
            column.append(worst(seen) if seen else NOT_EVALUATED)
        grid[d.isoformat()] = column
    return pd.DataFrame(grid, index=pd.Index(list(controls), name="control"), dtype=object)


def summary(scans: list[Scan], start: date, end: date,
            daily: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per control with the day counts and first/last failure (see module doc)."""
    daily = daily_status(scans, start, end) if daily is None else daily
    meta = _controls(scans)
    rows = []
    for cid, row in daily.iterrows():
        statuses = list(row.values)
        failing = [day for day, st in row.items() if st == "fail"]
        judged = [st for st in statuses if st not in (NO_SCAN, NOT_EVALUATED)]
        rows.append({
            "control": cid, **meta[cid],
            "days_in_period": len(statuses),
            "days_evaluated": sum(st in VERDICTS for st in statuses),
            "days_passing": statuses.count("pass"),
            "days_failing": statuses.count("fail"),
            "days_error": statuses.count("error"),
            "days_excepted": statuses.count("excepted"),
            "days_not_applicable": statuses.count("not_applicable"),
            "days_skipped": statuses.count("skipped"),
            "days_not_evaluated": statuses.count(NOT_EVALUATED),
            "days_no_scan": statuses.count(NO_SCAN),
            "first_failure": failing[0] if failing else None,
            "last_failure": failing[-1] if failing else None,
            "last_status": judged[-1] if judged else None,
        })
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def findings(scans: list[Scan]) -> pd.DataFrame:
    """Every finding that is not a pass, per scan, oldest first."""
    rows = []
    for scan in sorted(scans, key=lambda s: s.started_at):
        for c in scan.results.controls:
            for f in c.findings:
                if f.status is Status.PASS:
                    continue
                rows.append({"day": scan.day.isoformat(), "bundle": scan.bundle,
                             "started_at": isoformat(scan.results.scan.started_at),
                             "control": c.id, "control_status": c.status.value,
                             "resource": f.resource, "status": f.status.value, "detail": f.detail})
    return pd.DataFrame(rows, columns=FINDING_COLUMNS)


@dataclass(frozen=True)
class Coverage:
    """The three tables of a period and their file forms."""
    daily: pd.DataFrame
    summary: pd.DataFrame
    findings: pd.DataFrame

    def to_csv(self) -> bytes:
        return self.summary.to_csv(index=False).encode("utf-8")

    def daily_csv(self) -> bytes:
        return self.daily.to_csv().encode("utf-8")

    def to_xlsx(self, when: datetime | None = None,
                extra: dict[str, pd.DataFrame] | None = None) -> bytes:
        """The workbook; with ``when``, byte for byte reproducible (its document properties and
        the times inside the xlsx zip are ``when``), so the same bundles give the same export.
        ``extra``: more sheets (name -> table, e.g. the populations), after the three."""
        buf = io.BytesIO()
        with pd.ExcelWriter(buf, engine="openpyxl") as xl:
            self.summary.to_excel(xl, sheet_name="summary", index=False)
            self.findings.to_excel(xl, sheet_name="findings", index=False)
            self.daily.to_excel(xl, sheet_name="daily")
            for name, frame in (extra or {}).items():
                frame.to_excel(xl, sheet_name=name[:31], index=False)
            if when is not None:
                xl.book.properties.created = when.astimezone(timezone.utc).replace(tzinfo=None)
        if when is None:
            return buf.getvalue()
        out = io.BytesIO()
        with zipfile.ZipFile(buf) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
            for info in src.infolist():
                fixed = zipfile.ZipInfo(info.filename, date_time=when.timetuple()[:6])
                fixed.compress_type, fixed.external_attr = zipfile.ZIP_DEFLATED, info.external_attr
                data = src.read(info.filename)
                if info.filename == "docProps/core.xml":   # openpyxl stamps "modified" on save
                    data = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>"
                                  + isoformat(when).encode(), data)
                dst.writestr(fixed, data)
        return out.getvalue()


def build_coverage(scans: list[Scan], start: date, end: date) -> Coverage:
    daily = daily_status(scans, start, end)
    return Coverage(daily=daily, summary=summary(scans, start, end, daily), findings=findings(scans))
