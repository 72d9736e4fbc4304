"""OSCAL assessment-results for a review period (the OSCAL version of compliance-trestle's models).

Shape:
  * one ``result`` for the period; ``reviewed-controls`` lists the SOC 2 criteria;
  * one ``observation`` per control per scan (bundle), with a ``status`` prop, and one
    ``relevant-evidence`` entry per evidence file: ``href`` is the file's path inside the export,
    a ``sha256`` prop pins it, and a link points at a back-matter resource whose ``rlinks`` carry
    the same hash (OSCAL's own way of pinning a file);
  * one ``finding`` (state ``not-satisfied``) per control that failed on at least one day, related
    to its failing observations;
  * one ``risk`` per exception seen in the period: ``deviation-approved`` while in force,
    ``open`` once expired, with the approver and expiry as props;
  * back-matter: every referenced evidence file and each bundle's ``manifest.json``, with sha256.

UUIDs are version-5, derived from the bundles' manifest hashes, so the same period exported
twice yields the same identifiers. The document is checked with trestle's pydantic models
before it is written.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from attest import __version__
from attest.model import Status, isoformat
from attest.results import ControlRecord
from reports.coverage import Scan

NS = "urn:attest"
UUID_NS = uuid.UUID("5b0f4f0e-8f76-4c4e-9a4d-6f0e2a7f1c11")


@dataclass(frozen=True)
class BundleFiles:
    """What the OSCAL document needs to know about one bundle in the export."""
    name: str
    href: str                      # the bundle's folder inside the export, e.g. "bundles/2026..."
    manifest_sha256: str
    files: dict[str, str]          # bundle-relative path -> sha256 (from the verified manifest)


def _uuid(*parts: str) -> str:
    return str(uuid.uuid5(UUID_NS, "\x1f".join(parts)))


def _prop(name: str, value: str) -> dict[str, str]:
    return {"name": name, "ns": NS, "value": value}


def _md(text: str) -> str:
    """Data (resource names, details, reasons) inside OSCAL markup: HTML special characters
    escaped, so a name like ``<b>x</b>`` shows as text in any Markdown renderer."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _line(text: str) -> str:
    """A MarkupLine: one non-empty line, escaped."""
    return _md(" ".join(str(text).split())) or "-"


class _BackMatter:
    def __init__(self, seed: str) -> None:
        self.seed = seed
        self.resources: dict[str, dict[str, Any]] = {}

    def add(self, href: str, sha256: str, title: str) -> str:
        if href not in self.resources:
            self.resources[href] = {
                "uuid": _uuid(self.seed, "resource", href, sha256), "title": _line(title),
                "rlinks": [{"href": href, "media-type": _media_type(href),
                            "hashes": [{"algorithm": "SHA-256", "value": sha256}]}]}
        return self.resources[href]["uuid"]


def _media_type(href: str) -> str:
    if href.endswith(".json"):
        return "application/json"
    if href.endswith(".html"):
        return "text/html"
    return "application/octet-stream"


def _observation(scan: Scan, control: ControlRecord, bundle: BundleFiles, seed: str,
                 back: _BackMatter) -> dict[str, Any]:
    status = control.status.value
    evidence = []
    for rel in control.evidence:
        sha = bundle.files.get(rel)
        if sha is None:
            continue
        href = f"{bundle.href}/{rel}"
        res = back.add(href, sha, f"{bundle.name} {rel}")
        evidence.append({"href": href,
                         "description": _line(f"Evidence file {rel} of bundle {bundle.name}"),
                         "props": [_prop("sha256", sha)],
                         "links": [{"href": f"#{res}", "rel": "reference"}]})
    bad = [f for f in control.findings if f.status is not Status.PASS]
    obs: dict[str, Any] = {
        "uuid": _uuid(seed, "observation", bundle.name, control.id),
        "title": _line(f"{control.id} on {scan.day.isoformat()}: {status}"),
        "description": _md(f"{control.title or control.id}. Automated evaluation by "
                           f"attest in scan {bundle.name} (SOC 2 "
                           f"{', '.join(control.criteria)}): status {status}, "
                           f"{len(control.findings)} finding(s), {len(bad)} not passing."),
        "props": [_prop("control-id", control.id), _prop("status", status),
                  _prop("bundle", bundle.name), _prop("day", scan.day.isoformat())]
        + [_prop("criterion", c) for c in control.criteria],
        "methods": ["EXAMINE" if control.source == "manual" else "TEST"],
        "types": ["control-objective"],
        "collected": isoformat(scan.results.scan.started_at),
    }
    if evidence:
        obs["relevant-evidence"] = evidence
    if bad:
        obs["remarks"] = "\n".join(_md(f"- {f.status.value}: {f.resource}: "
                                       f"{' '.join(f.detail.split())}") for f in bad)
    return obs


def _risks(exceptions: list[dict[str, Any]], seed: str,
           excepted_obs: dict[str, list[str]]) -> list[dict[str, Any]]:
    risks = []
    for e in exceptions:
        in_force = e.get("status") == "active"
        risk: dict[str, Any] = {
            "uuid": _uuid(seed, "risk", e["control"], e["resource"], str(e.get("expires"))),
            "title": _line(f"Accepted risk: {e['control']} for {e['resource']}"),
            "description": _md(f"Exception to {e['control']} for resources matching "
                               f"{e['resource']}, approved by {e.get('approved_by')}, expires "
                               f"{e.get('expires')}; {'in force' if in_force else 'expired'} at "
                               f"the last scan of the period ({e.get('first_day')} to "
                               f"{e.get('last_day')} seen)."),
            "statement": _md(e.get("reason") or "-"),
            "status": "deviation-approved" if in_force else "open",
            "props": [_prop("control-id", e["control"]), _prop("resource-pattern", e["resource"]),
                      _prop("approved-by", str(e.get("approved_by") or "-")),
                      _prop("expires", str(e.get("expires") or "-"))],
        }
        related = excepted_obs.get(e["control"])
        if related:
            risk["related-observations"] = [{"observation-uuid": u} for u in related]
        risks.append(risk)
    return risks


def build_assessment_results(scans: list[Scan], bundles: dict[str, BundleFiles], start: date,
                             end: date, exceptions: list[dict[str, Any]],
                             generated_at: datetime) -> dict[str, Any]:
    """The OSCAL ``assessment-results`` document (a JSON-ready dict) for the period."""
    from trestle.oscal import OSCAL_VERSION
    seed = "|".join(bundles[s.bundle].manifest_sha256 for s in scans)
    back = _BackMatter(seed)
    observations: list[dict[str, Any]] = []
    failing: dict[str, list[str]] = {}
    excepted: dict[str, list[str]] = {}
    titles: dict[str, str] = {}
    criteria: set[str] = set()
    for scan in scans:
        bundle = bundles[scan.bundle]
        back.add(f"{bundle.href}/manifest.json", bundle.manifest_sha256,
                 f"{bundle.name} manifest.json")
        for control in scan.results.controls:
            obs = _observation(scan, control, bundle, seed, back)
            observations.append(obs)
            titles[control.id] = control.title or control.id
            criteria.update(control.criteria)
            if control.status is Status.FAIL:
                failing.setdefault(control.id, []).append(obs["uuid"])
            elif control.status is Status.EXCEPTED:
                excepted.setdefault(control.id, []).append(obs["uuid"])
    risks = _risks(exceptions, seed, excepted)
    risk_ids: dict[str, list[str]] = {}
    for e, r in zip(exceptions, risks):
        risk_ids.setdefault(e["control"], []).append(r["uuid"])
    findings = []
    for cid, obs_ids in failing.items():
        finding: dict[str, Any] = {
            "uuid": _uuid(seed, "finding", cid),
            "title": _line(f"{cid} failed on {len(obs_ids)} scan(s)"),
            "description": _md(f"{titles[cid]}: not satisfied in {len(obs_ids)} scan(s) of the "
                               "period."),
            "target": {"type": "objective-id", "target-id": cid,
                       "status": {"state": "not-satisfied", "reason": "fail"}},
            "related-observations": [{"observation-uuid": u} for u in obs_ids],
        }
        if cid in risk_ids:
            finding["related-risks"] = [{"risk-uuid": u} for u in risk_ids[cid]]
        findings.append(finding)
    first = min(scans, key=lambda s: s.started_at)
    last = max(scans, key=lambda s: s.started_at)
    result: dict[str, Any] = {
        "uuid": _uuid(seed, "result"),
        "title": _line(f"attest automated evidence, {start.isoformat()} to {end.isoformat()}"),
        "description": (f"Nightly automated evaluations of {len(titles)} controls in {len(scans)} "
                        f"scan(s) between {start.isoformat()} and {end.isoformat()} (UTC). Every "
                        "bundle's files and the hash chain were verified before this export."),
        "start": isoformat(first.results.scan.started_at),
        "end": isoformat(last.results.scan.finished_at or last.results.scan.started_at),
        "props": [_prop("period-start", start.isoformat()), _prop("period-end", end.isoformat())],
        "reviewed-controls": {"control-selections": [
            {"include-controls": [{"control-id": c} for c in sorted(criteria)]}
            if criteria else {"include-all": {}}]},
        "observations": observations or None,
        "risks": risks or None,
        "findings": findings or None,
    }
    doc = {"assessment-results": {
        "uuid": _uuid(seed, "assessment-results"),
        "metadata": {"title": _line(f"SOC 2 automated evidence {start.isoformat()} to "
                                    f"{end.isoformat()}"),
                     "last-modified": isoformat(generated_at),
                     "version": f"attest {__version__}", "oscal-version": OSCAL_VERSION},
        "import-ap": {"href": "index.html",
                      "remarks": "attest collects evidence on a schedule; there is no separate "
                                 "OSCAL assessment plan. index.html describes the scope."},
        "results": [{k: v for k, v in result.items() if v is not None}],
        "back-matter": {"resources": list(back.resources.values())},
    }}
    validate(doc)
    return doc


def validate(doc: dict[str, Any]) -> None:
    """Raise if ``doc`` does not fit trestle's OSCAL assessment-results model."""
    from trestle.oscal.assessment_results import Model
    Model.model_validate(doc)
