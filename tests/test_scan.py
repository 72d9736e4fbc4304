"""Scan orchestration details: look-back windows across failed nights, timestamps."""
from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from attest.config import load_config
from attest.model import isoformat, parse_time
from attest.scan import run_scan
from tests.conftest import NOW


def pulls_window(bundle: Path) -> tuple[str, str]:
    path = next((bundle / "evidence/github").rglob("github.merged_pulls.json"))
    record = json.loads(path.read_text())
    return record["state"], record["payload"] and record["payload"]["since"]


def test_a_failed_night_leaves_no_hole_in_the_review_window(demo, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    good = load_config(None, overrides=demo.config)
    monkeypatch.setenv("ATTEST_TEST_BAD_GH", "ghp_wrong")
    bad = load_config(None, overrides={**demo.config, "github": {**demo.config["github"],
                                                                 "token": "${ATTEST_TEST_BAD_GH}"}})
    night1 = run_scan(good, out_dir=out, now=NOW - timedelta(days=2))
    night2 = run_scan(bad, out_dir=out, now=NOW - timedelta(days=1))
    night3 = run_scan(good, out_dir=out, now=NOW)
    assert pulls_window(night1.bundle)[0] == "ok"
    assert pulls_window(night2.bundle)[0] == "denied"
    state, since = pulls_window(night3.bundle)
    assert state == "ok"
    assert since == isoformat(NOW - timedelta(days=2)), "the window starts at the last good read"


def test_times_are_ordered(demo_scan) -> None:
    outcome = demo_scan()
    scan = json.loads((outcome.bundle / "results.json").read_text())["scan"]
    manifest = json.loads((outcome.bundle / "manifest.json").read_text())
    assert parse_time(scan["started_at"]) <= parse_time(scan["finished_at"])
    assert manifest["created_at"] == scan["finished_at"]
    assert outcome.results.scan.finished_at == parse_time(scan["finished_at"])


def test_a_collector_crashing_midway_can_never_pass() -> None:
    from attest.engine import evaluate_control
    from attest.model import Status
    from attest.results import ScanInfo, build_results
    from attest.scan import _collect_source, exit_code_for
    from collectors.base import CollectContext
    from controls import catalog_by_id

    class HalfCollector:  # answers for one region, then breaks before the others
        produces = ("aws.ec2.ebs_encryption_by_default",)

        def collect(self, ctx):
            yield ctx.evidence("aws.ec2.ebs_encryption_by_default", "aws:123456789012:us-east-1",
                               {"EbsEncryptionByDefault": True})
            raise RuntimeError("boom")

    records = []
    status = _collect_source("aws", HalfCollector(), CollectContext(now=NOW), records.append)
    assert status == {"status": "failed", "detail": "collector failed: RuntimeError: boom"}
    control = catalog_by_id()["aws.ebs.default_encryption"]
    result = evaluate_control(control, records, control.param_values(), NOW)
    assert result.status is Status.ERROR
    incomplete = [f"{r.name} {r.scope}" for r in records if not r.state.known]
    assert exit_code_for(build_results([result], ScanInfo(started_at=NOW,
                                                          incomplete=incomplete))) == 3


def test_a_narrowed_run_collects_and_judges_only_what_was_selected(demo, tmp_path: Path) -> None:
    from attest.scan import Selection
    config = load_config(None, overrides=demo.config)
    outcome = run_scan(config, out_dir=tmp_path / "out", now=NOW, demo=True,
                       selection=Selection(only=frozenset({"aws", "github"}),
                                           controls=frozenset({"aws.s3.encrypted",
                                                               "github.org_2fa_required"})))
    results = outcome.results
    assert [c.id for c in results.controls] == ["aws.s3.encrypted", "github.org_2fa_required"]
    assert results.scan.selection == {"only": ["aws", "github"],
                                      "controls": ["aws.s3.encrypted", "github.org_2fa_required"]}
    from attest.sources import sources as registered
    assert {s: v.status for s, v in results.scan.sources.items()} == {
        s: "collected" if s in ("aws", "github") else "skipped" for s in registered()}
    aws_names = {p.stem for p in (outcome.bundle / "evidence" / "aws").rglob("*.json")}
    # the AWS collector reads only what aws.s3.encrypted needs (plus who and where it is)
    assert aws_names == {"aws.s3.buckets", "aws.sts.caller_identity", "aws.ec2.regions"}


def test_the_engine_judges_the_stored_bytes_and_keeps_no_payload_in_memory(tmp_path: Path) -> None:
    """Memory that does not grow with the estate (issue 9): once written, a record is kept
    without its payload; the engine reads the payload back from the file the manifest hashes
    (so a verdict is reached from exactly the bytes an auditor can check)."""
    from datetime import datetime, timezone
    from attest.model import Evidence, EvidenceState
    from attest.scan import StoredRecords
    from attest.store import BundleWriter
    writer = BundleWriter(tmp_path, datetime(2026, 3, 1, tzinfo=timezone.utc))
    records = StoredRecords(writer)
    for scope in ("x:b", "x:a"):
        ev = Evidence(name="x.things", scope=scope, state=EvidenceState.OK,
                      payload={"at": datetime(2026, 1, 2, 3, 4, tzinfo=timezone.utc), "scope": scope})
        writer.write_evidence(ev)
        records.add(ev)
    other = Evidence(name="x.other", scope="x:a", state=EvidenceState.DENIED, detail="403")
    writer.write_evidence(other)
    records.add(other)
    assert len(records) == 3 and all(r.payload is None for r in records)
    loaded = records.select(frozenset({"x.things"}))
    assert sorted(r.payload["scope"] for r in loaded) == ["x:a", "x:b"]
    assert loaded[0].payload["at"] == "2026-01-02T03:04:00Z"     # as the file has it
    assert [r.state for r in records.select(frozenset({"x.other"}))] == [EvidenceState.DENIED]
