"""The HTML readiness report: one self-contained file (inline CSS, JS and SVG; no fetches).

``render_report`` builds a view model from results.json (plus up to 90 earlier bundles for the
trend, the newest of them for the diff) and renders it with jinja2, autoescape on. Every string
that came from an API is data: it reaches the page escaped, and the JSON for the table script
goes through ``|tojson``.
"""
from __future__ import annotations

import base64
import hashlib
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from attest.errors import UsageError
from attest.manifest import file_sha256, read_manifest
from attest.manual import STATES as MANUAL_STATES
from attest.model import STATUS_ORDER, parse_time, readiness
from attest.store import read_results
from controls import criteria, criteria_family
from reports._results import listed_exceptions
from reports.diff import diff_results, is_empty

SEVERITY_ORDER = ("critical", "high", "medium", "low")
BAD = ("fail", "error")

# AICPA Trust Services Criteria families (the part of a criterion id before the dot).
FAMILY_TITLES = {
    "CC1": "Control environment", "CC2": "Communication and information",
    "CC3": "Risk assessment", "CC4": "Monitoring activities", "CC5": "Control activities",
    "CC6": "Logical and physical access", "CC7": "System operations",
    "CC8": "Change management", "CC9": "Risk mitigation", "A1": "Availability",
    "C1": "Confidentiality", "PI1": "Processing integrity", "P1": "Privacy: notice",
    "P2": "Privacy: choice and consent", "P3": "Privacy: collection", "P4": "Privacy: use and retention",
    "P5": "Privacy: access", "P6": "Privacy: disclosure", "P7": "Privacy: quality",
    "P8": "Privacy: monitoring and enforcement",
}

TREND_W, TREND_H, TREND_PAD = 760, 190, 36
# The trend shows the newest scans only: each point reads one earlier bundle's results.json.
TREND_SCANS = 90


def _env() -> Environment:
    env = Environment(loader=PackageLoader("reports", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["when"] = format_time
    return env


def format_time(value: str | None) -> str:
    dt = _parse(value)
    return dt.strftime("%Y-%m-%d %H:%M UTC") if dt else str(value or "")


def _parse(value: str | None) -> datetime | None:
    try:
        return parse_time(value)
    except ValueError:
        return None


def _family_key(family: str) -> tuple[int, int, str]:
    m = re.fullmatch(r"([A-Z]+)(\d+)", family)
    prefix, num = (m.group(1), int(m.group(2))) if m else (family, 0)
    order = {"CC": 0, "A": 1, "C": 2, "PI": 3, "P": 4}
    return order.get(prefix, 9), num, family


def _families(controls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    grouped: dict[str, dict[str, int]] = {}
    for c in controls:
        for fam in sorted({criteria_family(k) for k in c.get("criteria", [])}):
            counts = grouped.setdefault(fam, {})
            counts[c["status"]] = counts.get(c["status"], 0) + 1
    return [{"family": fam, "title": FAMILY_TITLES.get(fam, ""), "counts": counts,
             "total": sum(counts.values()), "readiness": readiness(counts)}
            for fam, counts in sorted(grouped.items(), key=lambda kv: _family_key(kv[0]))]


def _control_view(c: dict[str, Any], sha: dict[str, str]) -> dict[str, Any]:
    findings = c.get("findings", [])
    titles = criteria()
    return {
        **c,
        "criteria_titled": [(k, titles.get(k, "")) for k in c.get("criteria", [])],
        "families": sorted({criteria_family(k) for k in c.get("criteria", [])}, key=_family_key),
        "bad": [f for f in findings if f["status"] in BAD],
        "excepted_findings": [f for f in findings if f["status"] == "excepted"],
        "passed": sum(1 for f in findings if f["status"] == "pass"),
        "others": [f for f in findings if f["status"] not in (*BAD, "excepted", "pass")],
        "evidence_files": [{"path": p, "sha256": sha.get(p)} for p in c.get("evidence", [])],
        "remediation_steps": remediation_steps(c.get("remediation", "")),
    }


def remediation_steps(text: str) -> tuple[str, list[str]]:
    """(lead-in, numbered steps) when the text is written as '... 1. do this 2. do that'."""
    parts = re.split(r"(?:^|\s)(\d{1,2})[.)]\s+", text.strip())
    numbers = parts[1::2]
    if len(numbers) < 2 or numbers != [str(i) for i in range(1, len(numbers) + 1)]:
        return text, []
    return parts[0].strip(), [p.strip() for p in parts[2::2]]


def _manual(views: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per finding of the manual-evidence controls, with the state its detail starts
    with (the manual rule writes ``<state>: ...``)."""
    rows = []
    for c in views:
        if c.get("source") != "manual":
            continue
        for f in c.get("findings", []):
            prefix = str(f.get("detail", "")).split(":", 1)[0]
            rows.append({"control": c["id"], "title": c.get("title", ""), "status": f["status"],
                         "state": prefix if prefix in MANUAL_STATES else "",
                         "detail": f.get("detail", "")})
        if not c.get("findings"):
            rows.append({"control": c["id"], "title": c.get("title", ""), "status": c["status"],
                         "state": "", "detail": c.get("description", "")})
    return rows


def _sources(results: dict[str, Any]) -> list[dict[str, Any]]:
    by_source: dict[str, dict[str, int]] = {}
    for c in results.get("controls", []):
        counts = by_source.setdefault(c.get("source", ""), {})
        counts[c["status"]] = counts.get(c["status"], 0) + 1
    scan = results.get("scan", {})
    out = []
    for name, info in sorted(scan.get("sources", {}).items()):
        status = str(info.get("status", ""))
        kind = "collected" if status == "collected" else "skipped" if status == "skipped" else "failed"
        detail = info.get("detail") or (status.partition(": ")[2] if kind == "failed" else "")
        unread = sum(1 for item in scan.get("incomplete", []) if str(item).startswith(f"{name}."))
        if kind == "collected" and unread:
            kind, detail = "partial", f"{unread} evidence item{'s' if unread > 1 else ''} could not be read"
        out.append({"name": name, "kind": kind, "detail": detail,
                    "counts": by_source.get(name, {}), "total": sum(by_source.get(name, {}).values())})
    return out


def _diff_view(diff: dict[str, Any] | None) -> dict[str, Any] | None:
    """The diff as the report shows it: new problems, fixed ones, new resources, status changes."""
    if diff is None:
        return None
    old_r, new_r = diff["old"]["readiness"], diff["new"]["readiness"]
    return {
        **diff,
        "problems": sorted(diff["started_failing"] + diff["started_erroring"],
                           key=lambda e: (e["new"] != "fail", e["control"], e["resource"])),
        "fixed": [e for e in diff["stopped_failing"] + diff["stopped_erroring"] if e["new"] not in BAD],
        "delta": round(new_r - old_r, 1) if old_r is not None and new_r is not None else None,
        "empty": is_empty(diff),
        "new_resources": sorted(diff["new_resources"], key=lambda n: (not n["failing"], n["resource"])),
    }


def _exceptions(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Exceptions in force: the results' list and those the controls applied, once each."""
    return [{"control": e.get("control") or "", "resource": e.get("resource") or "",
             "reason": e.get("reason") or "", "approver": e.get("approved_by") or "",
             "expires": e.get("expires") or "", "state": e.get("status") or ""}
            for e in listed_exceptions(results)]


def _read_results(bundle: Path) -> dict[str, Any] | None:
    """A past bundle's results, or None if unreadable (the trend skips it and carries on)."""
    try:
        return read_results(bundle)
    except UsageError:
        return None


def _trend(points: list[tuple[str, str, float]]) -> dict[str, Any]:
    """Server-side SVG geometry for the readiness trend (x = scan order, y = 0..100 %)."""
    inner_w, inner_h = TREND_W - 2 * TREND_PAD, TREND_H - 2 * 20
    n = len(points)
    days = {str(when)[:10] for _, when, _ in points}
    out = []
    for i, (bundle, when, value) in enumerate(points):
        x = TREND_PAD + (inner_w * i / (n - 1) if n > 1 else inner_w / 2)
        y = 20 + inner_h * (1 - value / 100.0)
        dt = _parse(when)
        label = "" if dt is None else dt.strftime("%H:%M:%S" if len(days) == 1 else "%Y-%m-%d")
        out.append({"x": round(x, 1), "y": round(y, 1), "value": value, "bundle": bundle,
                    "when": format_time(when), "label": label})
    grid = [{"y": round(20 + inner_h * (1 - v / 100.0), 1), "label": v} for v in (0, 25, 50, 75, 100)]
    return {"w": TREND_W, "h": TREND_H, "pad": TREND_PAD, "points": out, "grid": grid,
            "polyline": " ".join(f"{p['x']},{p['y']}" for p in out),
            "area": (f"{out[0]['x']},{20 + inner_h} " + " ".join(f"{p['x']},{p['y']}" for p in out)
                     + f" {out[-1]['x']},{20 + inner_h}") if out else ""}


def build_view(results: dict[str, Any], history: list[Path],
               evidence_sha256: dict[str, str] | None = None) -> dict[str, Any]:
    scan = results.get("scan", {})
    controls = results.get("controls", [])
    sha = evidence_sha256 or {}
    past = [(b, r) for b in history[-TREND_SCANS:] if (r := _read_results(Path(b))) is not None]
    points = [(r["scan"].get("bundle", Path(b).name), r["scan"].get("started_at", ""),
               r["summary"]["readiness"]) for b, r in past
              if r.get("summary", {}).get("readiness") is not None]
    if results.get("summary", {}).get("readiness") is not None:
        points.append((scan.get("bundle", ""), scan.get("started_at", ""),
                       results["summary"]["readiness"]))
    diff = diff_results(past[-1][1], results) if past else None
    views = sorted((_control_view(c, sha) for c in controls),
                   key=lambda c: (STATUS_ORDER.index(c["status"]) if c["status"] in STATUS_ORDER else 9,
                                  SEVERITY_ORDER.index(c["severity"]) if c["severity"] in SEVERITY_ORDER else 9,
                                  c["id"]))
    started, finished = parse_time(scan.get("started_at")), parse_time(scan.get("finished_at"))
    return {
        "scan": scan,
        "summary": results.get("summary", {}),
        "duration": (finished - started).total_seconds() if started and finished else None,
        "families": _families(controls),
        "controls": views,
        "sources": _sources(results),
        "statuses": [s for s in STATUS_ORDER if any(c["status"] == s for c in controls)],
        "source_names": sorted({c.get("source", "") for c in controls}),
        "family_names": sorted({f for c in views for f in c["families"]}, key=_family_key),
        "manual": _manual(views),
        "exceptions": _exceptions(results),
        "diff": _diff_view(diff),
        "trend": {**_trend(points), "limited": len(history) > TREND_SCANS},
        "table_data": [{"id": c["id"], "status": c["status"], "source": c.get("source", ""),
                        "severity": c.get("severity", ""), "criteria": c.get("criteria", []),
                        "families": c["families"], "title": c.get("title", ""),
                        "resources": [f["resource"] for f in c["bad"]]} for c in views],
        "status_order": list(STATUS_ORDER),
        "severity_order": list(SEVERITY_ORDER),
        "generated": datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
    }


def render_report(results: dict[str, Any], history: list[Path], *,
                  evidence_sha256: dict[str, str] | None = None) -> str:
    """The report as one HTML string. ``history``: earlier complete bundles, oldest first; the
    trend uses the last ``TREND_SCANS`` (90) of them, the changes section the last one.

    ``evidence_sha256`` maps bundle-relative evidence paths to their sha256 (see
    :func:`evidence_digests`); without it the report lists the files without hashes."""
    env = _env()
    script = env.get_template("_script.js.j2").render()
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return env.get_template("report.html.j2").render(
        v=build_view(results, history, evidence_sha256), script=Markup(script),
        script_csp=f"'sha256-{digest}'")


def evidence_digests(bundle: Path, results: dict[str, Any]) -> dict[str, str]:
    """sha256 of every evidence file the controls cite: from the manifest if the bundle has one,
    else computed from the files (a bundle still being written)."""
    try:
        listed = {f["path"]: f["sha256"] for f in read_manifest(bundle).get("files", [])}
    except (OSError, ValueError):
        listed = {}
    out: dict[str, str] = {}
    for c in results.get("controls", []):
        for rel in c.get("evidence", []):
            if rel in listed:
                out[rel] = listed[rel]
            elif (bundle / rel).is_file():
                out[rel] = file_sha256(bundle / rel)
    return out
