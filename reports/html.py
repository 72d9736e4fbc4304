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
from typing import Any, Iterator
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from attest.calls import FAILED_CALLS
from attest.errors import UsageError
from attest.manifest import file_sha256, read_manifest
from attest.manual import STATES as MANUAL_STATES
from attest.model import STATUS_ORDER, Status, isoformat, parse_time, readiness, utf8_pieces
from attest.results import ControlRecord, FindingRecord, Results
from attest.store import read_results
from controls import criteria, criteria_family
from reports import display
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
    env.filters["ident"] = display.ident          # control ids wrap after a dot only
    env.filters["resource"] = display.resource    # ARNs and other resources after : / @
    env.filters["path"] = display.path            # bundle files after a /
    env.filters["code"] = display.code            # inline commands between words
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


def _families(controls: list[ControlRecord]) -> list[dict[str, Any]]:
    grouped: dict[str, dict[str, int]] = {}
    for c in controls:
        for fam in sorted({criteria_family(k) for k in c.criteria}):
            counts = grouped.setdefault(fam, {})
            counts[c.status.value] = counts.get(c.status.value, 0) + 1
    return [{"family": fam, "title": FAMILY_TITLES.get(fam, ""), "counts": counts,
             "total": sum(counts.values()), "readiness": readiness(counts)}
            for fam, counts in sorted(grouped.items(), key=lambda kv: _family_key(kv[0]))]


def _json(findings: Any) -> list[dict[str, Any]]:
    return [f.model_dump(mode="json") for f in findings]


def _control_view(c: ControlRecord, sha: dict[str, str],
                  evidence_base: str | None = "") -> dict[str, Any]:
    findings: list[FindingRecord] = c.findings
    titles = criteria()
    return {
        **c.model_dump(mode="json", exclude={"findings"}),   # 20,000 passing users are a count
        "criteria_titled": [(k, titles.get(k, "")) for k in c.criteria],
        "families": sorted({criteria_family(k) for k in c.criteria}, key=_family_key),
        "bad": _json(c.failing()),
        "excepted_findings": _json(f for f in findings if f.status is Status.EXCEPTED),
        "passed": sum(1 for f in findings if f.status is Status.PASS),
        "others": _json(f for f in findings if f.status not in (*BAD, "excepted", "pass")),
        "evidence_files": [{"path": p, "sha256": sha.get(p), "href": evidence_href(p, evidence_base)}
                           for p in c.evidence],
        "remediation_blocks": display.remediation_blocks(c.remediation),
        "description_spans": display.code_spans(c.description),
    }


def evidence_href(path: str, base: str | None) -> str | None:
    """A link to a bundle file, relative to where the report is (``base`` = the bundle folder as
    seen from the report: "" when the report sits in the bundle root); None: no link."""
    if base is None or not path or path.startswith("/") or ".." in path.split("/"):
        return None
    return quote(f"{base}{path}", safe="/")


def _manual(controls: list[ControlRecord]) -> list[dict[str, Any]]:
    """One row per finding of the manual-evidence controls, with the document's state (the
    manual rule records it as the finding's ``document_state`` fact)."""
    rows = []
    for c in controls:
        if c.source != "manual":
            continue
        for f in c.findings:
            state = (f.facts or {}).get("document_state", "")
            rows.append({"control": c.id, "title": c.title, "status": f.status.value,
                         "state": state if state in MANUAL_STATES else "", "detail": f.detail})
        if not c.findings:
            rows.append({"control": c.id, "title": c.title, "status": c.status.value,
                         "state": "", "detail": c.description})
    return rows


def _sources(results: Results) -> list[dict[str, Any]]:
    by_source: dict[str, dict[str, int]] = {}
    for c in results.controls:
        counts = by_source.setdefault(c.source, {})
        counts[c.status.value] = counts.get(c.status.value, 0) + 1
    scan = results.scan
    out = []
    for name, info in sorted(scan.sources.items()):
        kind = info.status
        detail = info.detail or ""
        unread = sum(1 for item in scan.incomplete if item.startswith(f"{name}."))
        if kind == "collected" and unread:
            kind, detail = "partial", f"{unread} evidence item{'s' if unread > 1 else ''} could not be read"
        out.append({"name": name, "kind": kind, "detail": detail,
                    "counts": by_source.get(name, {}), "total": sum(by_source.get(name, {}).values())})
    return out


GONE_WHY = {"disappeared": "no longer present",
            "left_window": "left the look-back window",
            "not_judged": "not judged in this scan (evidence incomplete or not collected)"}


def _diff_view(diff: dict[str, Any] | None) -> dict[str, Any] | None:
    """The diff as the report shows it: new problems, fixed ones (the same resource, now passing
    or excepted), failing resources no longer reported (and why), new resources, status changes,
    and what moved readiness."""
    if diff is None:
        return None
    old_r, new_r = diff["old"]["readiness"], diff["new"]["readiness"]
    return {
        **diff,
        "problems": sorted(diff["started_failing"] + diff["started_erroring"],
                           key=lambda e: (e["new"] != "fail", e["control"], e["resource"])),
        "fixed": diff["fixed"],
        "gone": [{**e, "why": why} for key, why in GONE_WHY.items() for e in diff[key]],
        "delta": round(new_r - old_r, 1) if old_r is not None and new_r is not None else None,
        "empty": is_empty(diff),
        "new_resources": sorted(diff["new_resources"], key=lambda n: (not n["failing"], n["resource"])),
    }


def _exceptions(results: Results) -> list[dict[str, Any]]:
    """Exceptions in force: the results' list and those the controls applied, once each."""
    return [{"control": e.control, "resource": e.resource, "reason": e.reason,
             "approver": e.approved_by, "expires": e.expires.isoformat(), "state": e.status}
            for e in listed_exceptions(results)]


def _read_results(bundle: Path) -> Results | None:
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


def build_view(results: Results, history: list[Path],
               evidence_sha256: dict[str, str] | None = None, *, evidence_base: str | None = "",
               bundle_dir: str | Path | None = None, signed: bool = False,
               failed_calls: int | None = None) -> dict[str, Any]:
    scan = results.scan
    controls = results.controls
    sha = evidence_sha256 or {}
    past = [(b, r) for b in history[-TREND_SCANS:] if (r := _read_results(Path(b))) is not None]
    points = [(r.scan.bundle or Path(b).name, isoformat(r.scan.started_at), r.summary.readiness)
              for b, r in past if r.summary.readiness is not None]
    if results.summary.readiness is not None:
        points.append((scan.bundle or "", isoformat(scan.started_at), results.summary.readiness))
    diff = diff_results(past[-1][1], results) if past else None
    views = sorted((_control_view(c, sha, evidence_base) for c in controls),
                   key=lambda c: (STATUS_ORDER.index(c["status"]),
                                  SEVERITY_ORDER.index(c["severity"]) if c["severity"] in SEVERITY_ORDER else 9,
                                  c["id"]))
    started, finished = scan.started_at, scan.finished_at
    return {
        "scan": scan.model_dump(mode="json"),
        "summary": results.summary.model_dump(mode="json"),
        "duration": (finished - started).total_seconds() if finished else None,
        "families": _families(controls),
        "controls": views,
        "sources": _sources(results),
        "statuses": [s.value for s in STATUS_ORDER if any(c.status is s for c in controls)],
        "source_names": sorted({c.source for c in controls}),
        "family_names": sorted({f for c in views for f in c["families"]}, key=_family_key),
        "manual": _manual(controls),
        "exceptions": _exceptions(results),
        "diff": _diff_view(diff),
        "trend": {**_trend(points), "limited": len(history) > TREND_SCANS},
        "table_data": [{"id": c["id"], "status": c["status"], "source": c["source"],
                        "severity": c["severity"], "criteria": c["criteria"],
                        "families": c["families"], "title": c["title"],
                        "resources": [f["resource"] for f in c["bad"]]} for c in views],
        "status_order": list(STATUS_ORDER),
        "severity_order": list(SEVERITY_ORDER),
        "generated": datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "verify": _verify_view(scan, bundle_dir, signed, in_bundle=evidence_base == ""),
        "failed_calls": None if failed_calls is None else {
            "count": failed_calls, "href": evidence_href(FAILED_CALLS, evidence_base)},
    }


# The demo writes its throwaway key pair beside its bundles (collectors.manual.demo.demo_signing_key).
DEMO_PUBLIC_KEY = "demo-signing-key.pub.pem"


def _verify_view(scan: Any, bundle_dir: str | Path | None, signed: bool,
                 in_bundle: bool) -> dict[str, Any]:
    """The footer's ``attest verify`` command, with the bundle's absolute path (so it runs from
    any folder) and ``--public-key`` for a signed bundle. When the report sits in its bundle,
    the page's script puts in the folder the report is actually opened from (a copied or
    unzipped bundle); the data attributes tell it how."""
    folder = str(bundle_dir) if bundle_dir else None
    if folder and "://" not in folder:      # a store URL stays as it is: verify checks the store
        folder = str(Path(folder).absolute())
    key_name = DEMO_PUBLIC_KEY if signed and scan.demo else None
    key = None
    if key_name and folder and (Path(folder).parent / key_name).is_file():
        key = str(Path(folder).parent / key_name)
    return {"command": display.verify_command(folder, signed, key), "signed": signed,
            "key_placeholder": signed and key_name is None,
            "placeholder": display.PUBLIC_KEY_PLACEHOLDER,
            "live": in_bundle, "key_sibling": key_name if key else None}


def render_report(results: Results, history: list[Path], **options: Any) -> str:
    """The report as one HTML string; the options are :func:`report_pieces`'s."""
    return "".join(_rendered(results, history, **options))


def report_pieces(results: Results, history: list[Path], *, piece_size: int = 1 << 16,
                  **options: Any) -> Iterator[bytes]:
    """The report as UTF-8 pieces of about ``piece_size`` bytes, as Jinja renders it: a large
    report (tens of MB for tens of thousands of findings) is never held whole."""
    return utf8_pieces(_rendered(results, history, **options), piece_size)


def _rendered(results: Results, history: list[Path], *,
              evidence_sha256: dict[str, str] | None = None, evidence_base: str | None = "",
              bundle_dir: str | Path | None = None, signed: bool = False,
              failed_calls: int | None = None) -> Iterator[str]:
    """The report's text, chunk by chunk. ``history``: earlier complete bundles, oldest first;
    the trend uses the last ``TREND_SCANS`` (90) of them, the changes section the last one.

    ``evidence_sha256`` maps bundle-relative evidence paths to their sha256 (see
    :func:`evidence_digests`); without it the report lists the files without hashes.
    ``evidence_base``: the bundle folder as a link from the report ("" when the report is the
    bundle's report.html; None: evidence files are not linked). ``bundle_dir`` (absolute) and
    ``signed`` make the footer's verify command. ``failed_calls``: how many calls failed for
    good (the bundle's failed-calls.json; None: not known, nothing is said)."""
    env = _env()
    script = env.get_template("_script.js.j2").render()
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return env.get_template("report.html.j2").generate(
        v=build_view(results, history, evidence_sha256, evidence_base=evidence_base,
                     bundle_dir=bundle_dir, signed=signed, failed_calls=failed_calls),
        script=Markup(script),
        script_csp=f"'sha256-{digest}'")


def evidence_digests(bundle: Path, results: Results) -> dict[str, str]:
    """sha256 of every evidence file the controls cite: from the manifest if the bundle has one,
    else computed from the files (a bundle still being written)."""
    try:
        listed = {f["path"]: f["sha256"] for f in read_manifest(bundle).get("files", [])}
    except (OSError, ValueError):
        listed = {}
    out: dict[str, str] = {}
    for c in results.controls:
        for rel in c.evidence:
            if rel in listed:
                out[rel] = listed[rel]
            elif (bundle / rel).is_file():
                out[rel] = file_sha256(bundle / rel)
    return out
