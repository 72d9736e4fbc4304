"""Populations from literal bundles: the PagerDuty incidents population against its evidence
contract (the source is built elsewhere), the look-back gap a windowed read cannot hide, and a
read that failed for good. Each bundle is written here as attest writes one: evidence records,
results.json, and a manifest with the sha256 of every file, chained to the previous bundle."""
from __future__ import annotations

import json
import uuid
import zipfile
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from attest.manifest import build_manifest, manifest_sha256
from attest.model import Evidence, EvidenceState, canonical_json, isoformat, sha256_bytes
from attest.results import ControlRecord, FindingRecord, Results, ScanInfo
from attest.store import bundle_name
from reports.export import export_period
from reports.populations import build_all

HOST = "acme.pagerduty.com"
SCOPE = f"pagerduty:{HOST}"


def write_bundle(out: Path, started: datetime, records: list[Evidence],
                 controls: list[ControlRecord]) -> Path:
    """One sealed bundle in ``out``, chained to the newest bundle there."""
    from attest.store import list_bundles
    previous = list_bundles(out)[-1] if list_bundles(out) else None
    bundle = out / bundle_name(started)
    files: dict[str, tuple[str, int]] = {}

    def put(rel: str, data: bytes) -> None:
        (bundle / rel).parent.mkdir(parents=True, exist_ok=True)
        (bundle / rel).write_bytes(data)
        files[rel] = (sha256_bytes(data), len(data))

    for ev in records:
        put(ev.path, canonical_json(ev.to_json()))
    results = Results(scan=ScanInfo(id=str(uuid.uuid4()), bundle=bundle.name, started_at=started,
                                    finished_at=started + timedelta(minutes=1)),
                      controls=controls)
    put("results.json", results.to_bytes())
    manifest = build_manifest(files, scan_id=results.scan.id, created_at=isoformat(started),
                              tool_version="test", config_digest="0" * 64,
                              previous=(previous.name, manifest_sha256(previous)) if previous
                              else None)
    (bundle / "manifest.json").write_bytes(canonical_json(manifest))
    return bundle


def at(day: int, hour: int = 2, minute: int = 0) -> datetime:
    return datetime(2026, 9, day, hour, minute, tzinfo=timezone.utc)


def incident(ident: str, number: int, created: datetime, urgency: str = "high",
             status: str = "triggered") -> dict[str, Any]:
    return {"id": ident, "type": "incident", "incident_number": number, "title": f"Checkout 5xx #{number}",
            "urgency": urgency, "status": status, "created_at": isoformat(created),
            "service": {"id": "PSVC001", "type": "service_reference", "summary": "checkout-api"},
            "html_url": f"https://{HOST}/incidents/{ident}"}


def entry(kind: str, when: datetime, who: str) -> dict[str, Any]:
    return {"id": f"R{kind[:3].upper()}{when:%d%H%M}", "type": kind, "created_at": isoformat(when),
            "agent": {"id": "PUSER01", "type": "user_reference", "summary": who}}


def incidents(since: datetime, until: datetime, items: list[dict[str, Any]],
              log: dict[str, list[dict[str, Any]]] | None = None,
              state: EvidenceState = EvidenceState.OK) -> Evidence:
    payload = None if state is not EvidenceState.OK else {
        "since": isoformat(since), "until": isoformat(until), "incidents": items,
        "log_entries": log or {}}
    return Evidence("pagerduty.incidents", SCOPE, state, payload,
                    detail="" if state is EvidenceState.OK else "403 Forbidden: needs read access",
                    collected_at=isoformat(until))


def verdicts(*findings: tuple[str, str, str]) -> list[ControlRecord]:
    records = [FindingRecord(resource=r, status=s, detail=d) for r, s, d in findings]
    status = "fail" if any(f.status == "fail" for f in records) else \
        "pass" if records else "not_applicable"
    return [ControlRecord(id="pagerduty.incident_acknowledged", status=status, findings=records)]


def test_incidents_population_against_the_evidence_contract(tmp_path: Path) -> None:
    out = tmp_path / "evidence"
    a = incident("PA1B2C3", 101, at(1, 10))
    b = incident("PLOWURG", 102, at(1, 11), urgency="low")
    c = incident("PC4D5E6", 103, at(2, 20))
    early = incident("PEARLY1", 99, datetime(2026, 8, 30, 9, tzinfo=timezone.utc))
    n1 = write_bundle(out, at(2), [incidents(at(1), at(2), [early, a, b])], verdicts(
        (f"{SCOPE}:PA1B2C3", "fail", "not acknowledged yet")))
    acked = {**a, "status": "resolved"}
    log = {"PA1B2C3": [entry("resolve_log_entry", at(2, 6), "Sam Ops"),
                       entry("acknowledge_log_entry", at(2, 4, 30), "Ana Oncall"),
                       entry("acknowledge_log_entry", at(2, 5), "Ben Late")]}
    # the next night re-reads a window holding A again (now acknowledged and resolved), and C
    n2 = write_bundle(out, at(3), [incidents(at(1), at(3), [a | acked, c], log)], verdicts(
        (f"https://{HOST}/incidents/PA1B2C3", "pass", "acknowledged by Ana Oncall in 18h30m")))
    n3 = write_bundle(out, at(4), [incidents(at(3), at(4), [], state=EvidenceState.DENIED)],
                      [ControlRecord(id="pagerduty.incident_acknowledged", status="error")])
    table = build_all([n1, n2, n3], date(2026, 9, 1), date(2026, 9, 30), names=["incidents"])[0]
    rows = {r["incident_id"]: r for r in table.rows}
    assert list(rows) == ["PA1B2C3", "PC4D5E6"]          # time order; low urgency and pre-period out
    row = rows["PA1B2C3"]
    assert (row["bundle"], row["first_recorded_by"]) == (n2.name, n1.name)
    assert (row["acknowledged_at"], row["acknowledged_by"]) == (isoformat(at(2, 4, 30)), "Ana Oncall")
    assert (row["resolved_at"], row["resolved_by"]) == (isoformat(at(2, 6)), "Sam Ops")
    assert (row["status"], row["verdict"], row["service"]) == ("resolved", "pass", "checkout-api")
    assert row["evidence_file"] == f"evidence/pagerduty/{HOST}/pagerduty.incidents.json"
    manifest = json.loads((n2 / "manifest.json").read_text())
    assert row["evidence_sha256"] == {f["path"]: f["sha256"] for f in manifest["files"]}[
        row["evidence_file"]]
    assert rows["PC4D5E6"]["verdict"] == "not judged" and rows["PC4D5E6"]["acknowledged_at"] is None
    assert any(f"the read of {n3.name} failed (denied) and no later good read" in c
               for c in table.coverage)
    # the export carries it as a CSV and a sheet
    zf = zipfile.ZipFile(export_period(out, date(2026, 9, 1), date(2026, 9, 30), tmp_path / "a.zip"))
    root = zf.namelist()[0].split("/")[0]
    csv = pd.read_csv(zf.open(f"{root}/populations/incidents.csv"), dtype=str, keep_default_na=False)
    assert csv["incident_id"].tolist() == ["PA1B2C3", "PC4D5E6"]
    assert "the read of" in zf.read(f"{root}/README.txt").decode()


def pulls(since: datetime, until: datetime, *merged: tuple[str, int, datetime]) -> Evidence:
    nodes = [{"number": n, "url": f"https://github.com/acme/{r}/pull/{n}", "title": "t",
              "mergedAt": isoformat(m), "baseRefName": "main", "author": {"login": "dev"},
              "mergedBy": {"login": "dev"},
              "repository": {"nameWithOwner": f"acme/{r}", "isArchived": False,
                             "defaultBranchRef": {"name": "main"}},
              "reviews": {"totalCount": 0, "nodes": []}} for r, n, m in merged]
    return Evidence("github.merged_pulls", "github:acme", EvidenceState.OK,
                    {"since": isoformat(since), "until": isoformat(until), "pulls": nodes})


def test_a_look_back_shorter_than_the_outage_is_a_named_gap(tmp_path: Path) -> None:
    """Reads failed for longer than the look-back: the next good read starts later than the last
    one ended, and the population says which stretch nobody read."""
    out = tmp_path / "evidence"
    changes = [ControlRecord(id="github.changes_reviewed", status="not_applicable")]
    first = write_bundle(out, at(2), [pulls(at(1), at(2), ("api", 1, at(1, 9)))], changes)
    late = write_bundle(out, at(20), [pulls(at(10), at(20), ("api", 2, at(12)))], changes)
    table = build_all([first, late], date(2026, 9, 1), date(2026, 9, 20), names=["changes"])[0]
    assert [r["number"] for r in table.rows] == [1, 2]
    gap = [c for c in table.coverage if "GAP" in c]
    assert gap == [f"github:acme: GAP not covered: {isoformat(at(2))} to {isoformat(at(10))} (no "
                   f"good read covers it; {late.name} read only from {isoformat(at(10))}): events "
                   "then are missing from this population"]
    assert any(c.startswith("github:acme: not covered: 2026-09-01T00:00:00Z to "
                            f"{isoformat(at(1))}") for c in table.coverage)
