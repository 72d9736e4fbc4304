"""The HTML report, rendered from hand-built results: escaping, families, filters, evidence
hashes, trend, changes since the previous scan, and ``attest report``."""
from __future__ import annotations

import json
import re
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pytest

import reports.html
from attest.cli import main
from attest.engine import evaluate_control
from attest.manual import add_document
from attest.results import Results
from collectors.base import CollectContext
from collectors.manual.collector import ManualCollector
from controls import catalog_by_id
from reports.html import TREND_SCANS, build_view, evidence_digests, render_report

EVIL = "<script>alert(1)</script>"
EVIL_IMG = '<img src=x onerror="alert(2)">'


def R(data: dict[str, Any]) -> Results:
    """The typed results of a hand-built results.json document."""
    return Results.model_validate(data)


def finding(resource: str, status: str, detail: str = "") -> dict[str, Any]:
    return {"resource": resource, "status": status, "detail": detail}


def control(cid: str, status: str, criteria: list[str], findings: list[dict[str, Any]] | None = None,
            evidence: list[str] | None = None, source: str | None = None) -> dict[str, Any]:
    return {"id": cid, "title": f"title of {cid}", "criteria": criteria,
            "source": source or cid.split(".")[0], "severity": "high", "status": status,
            "findings": findings or [], "evidence": evidence or [],
            "remediation": "Turn it on.\nThen re-scan.", "description": f"about {cid}",
            "exceptions": []}


def results(controls: list[dict[str, Any]], *, bundle: str = "20250302T090000Z",
            readiness: float | None = None, **scan: Any) -> dict[str, Any]:
    counts: dict[str, int] = {s: 0 for s in ("pass", "fail", "error", "not_applicable",
                                             "excepted", "skipped")}
    for c in controls:
        counts[c["status"]] += 1
    judged = counts["pass"] + counts["fail"] + counts["error"] + counts["excepted"]
    if readiness is None and judged:
        readiness = round(100.0 * (counts["pass"] + counts["excepted"]) / judged, 1)
    return {"scan": {"id": "scan-1", "bundle": bundle, "started_at": "2025-03-02T09:00:00Z",
                     "finished_at": "2025-03-02T09:00:30Z", "tool_version": "0.1.0", "demo": False,
                     "config_digest": "c" * 64, "incomplete": [], "params": {},
                     "sources": {"aws": {"status": "collected"}, "github": {"status": "collected"},
                                 "okta": {"status": "skipped",
                                          "detail": "skipped: no 'okta' section in the config"}},
                     **scan},
            "summary": {"counts": counts, "readiness": readiness, "total": len(controls)},
            "controls": controls}


def sample() -> dict[str, Any]:
    return results([
        control("aws.iam.root_mfa", "pass", ["CC6.1"], [finding("arn:aws:iam::1:root", "pass")],
                ["evidence/aws/1/global/aws.iam.credential_report.json"]),
        control("aws.s3.public_access_block", "fail", ["CC6.1", "CC6.6"],
                [finding(f"arn:aws:s3:::{EVIL}", "fail", f"policy allows * {EVIL_IMG}"),
                 finding("arn:aws:s3:::logs", "pass")],
                ["evidence/aws/1/global/aws.s3.buckets.json"]),
        control("aws.guardduty.enabled", "error", ["CC7.2"],
                [finding("aws:1:eu-west-1", "error", "aws.guardduty.detectors is denied")]),
        control("aws.rds.backups", "pass", ["A1.2"], [finding("db-1", "pass")]),
        control("okta.mfa", "skipped", ["CC6.1"]),
    ])


def write_bundle(out: Path, res: dict[str, Any], files: dict[str, bytes] | None = None) -> Path:
    bundle = out / res["scan"]["bundle"]
    bundle.mkdir(parents=True)
    (bundle / "results.json").write_text(json.dumps(res), encoding="utf-8")
    listed = []
    for rel, data in (files or {}).items():
        (bundle / rel).parent.mkdir(parents=True, exist_ok=True)
        (bundle / rel).write_bytes(data)
        listed.append({"path": rel, "sha256": "f" * 64, "size": len(data)})
    (bundle / "manifest.json").write_text(json.dumps({"files": listed}), encoding="utf-8")
    return bundle


def test_the_report_is_rendered_in_bounded_pieces_that_make_the_whole() -> None:
    """The scan writes report.html as Jinja renders it (tens of MB at a large estate), never
    holding it whole: the pieces are about the size asked for, and together the one report."""
    from reports.html import report_pieces
    pieces = list(report_pieces(R(sample()), [], piece_size=4096))
    assert len(pieces) > 3 and all(isinstance(p, bytes) for p in pieces)
    assert all(len(p) < 4096 + 16384 for p in pieces)      # one template chunk past the size
    assert b"".join(pieces).decode("utf-8") == render_report(R(sample()), [])


def test_api_strings_are_escaped_everywhere() -> None:
    html = render_report(R(sample()), [])
    assert EVIL not in html and "<img src=x" not in html
    # the resource shows escaped, with line-break opportunities (<wbr>) after its separators
    assert "arn:<wbr>aws:<wbr>s3:<wbr>:<wbr>:<wbr>&lt;script&gt;alert(1)&lt;/<wbr>script&gt;" in html
    assert "&lt;img src=x onerror=" in html
    # the JSON for the table script cannot close its <script> element
    data = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S)
    assert data and "<" not in data.group(1)
    assert json.loads(data.group(1))["controls"][0]["resources"] == [f"arn:aws:s3:::{EVIL}"]
    # only the two script elements the template writes
    assert html.count("<script") == 2


def test_self_contained_no_network_references() -> None:
    html = render_report(R(sample()), [])
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', html)
    assert "<link" not in html and "@import" not in html and "url(" not in html
    assert "Content-Security-Policy" in html and "default-src 'none'" in html


def test_readiness_per_criteria_family() -> None:
    view = build_view(R(sample()), [])
    fams = {f["family"]: f for f in view["families"]}
    assert list(fams) == ["CC6", "CC7", "A1"]     # TSC order, CC before A
    assert fams["CC6"]["readiness"] == 50.0        # root_mfa pass, s3 fail, okta skipped (not judged)
    assert fams["CC6"]["total"] == 3
    assert fams["CC7"]["readiness"] == 0.0
    assert fams["A1"]["readiness"] == 100.0
    html = render_report(R(sample()), [])
    assert 'data-family="CC6"' in html and "Logical and physical access" in html
    assert "50.0%" in html                          # overall: 2 of 4 judged controls pass
    assert view["summary"]["readiness"] == 50.0


def test_filters_and_sortable_columns_present() -> None:
    html = render_report(R(sample()), [])
    for select in ("f-status", "f-source", "f-criterion"):
        assert f'id="{select}"' in html
    status_options = re.search(r'id="f-status">(.*?)</select>', html, re.S).group(1)
    assert re.findall(r'value="([a-z_]*)"', status_options) == ["", "fail", "error", "pass", "skipped"]
    crit_options = re.search(r'id="f-criterion">(.*?)</select>', html, re.S).group(1)
    assert re.findall(r'value="([A-Z0-9]*)"', crit_options) == ["", "CC6", "CC7", "A1"]
    for key in ("status", "id", "criteria", "source", "severity", "findings"):
        assert f'data-sort="{key}"' in html
    assert html.count('<tbody class="control') == 5


def test_control_details_and_evidence_sha256() -> None:
    sha = {"evidence/aws/1/global/aws.s3.buckets.json": "a1" * 32}
    html = render_report(R(sample()), [], evidence_sha256=sha)
    assert "a1" * 32 in html
    assert "evidence/aws/1/global/aws.iam.credential_report.json" in html
    assert "not recorded" in html                   # a file without a known hash says so
    assert "Turn it on.\nThen re-scan." in html     # remediation of the failing control
    assert "policy allows *" in html                 # the reason next to the failing resource
    assert "Logical access security measures against threats" in html  # CC6.6 title


def test_sources_section_says_skipped_with_reason() -> None:
    html = render_report(R(sample()), [])
    section = re.search(r'<section class="card" id="sources">(.*?)</section>', html, re.S).group(1)
    assert "okta" in section and "skipped: no &#39;okta&#39; section in the config" in section
    assert section.count("badge collected") == 2


def test_trend_has_one_point_per_scan(tmp_path: Path) -> None:
    history = [write_bundle(tmp_path, results([control("aws.a.b", "pass", ["CC6.1"])],
                                              bundle=f"2025030{i}T090000Z", readiness=r))
               for i, r in enumerate((40.0, 55.5, 70.0))]
    html = render_report(R(sample()), history)
    svg = re.search(r'<svg [^>]*id="trend">(.*?)</svg>', html, re.S).group(1)
    assert svg.count('class="trend-point') == 4
    assert "polyline" in svg
    assert "4 scans in this output folder" in html


def test_first_scan_has_nothing_to_compare() -> None:
    html = render_report(R(sample()), [])
    assert "This is the first scan in this output folder" in html


def test_changes_since_previous_scan(tmp_path: Path) -> None:
    old = results([
        control("aws.iam.root_mfa", "pass", ["CC6.1"], [finding("arn:aws:iam::1:root", "pass")]),
        control("aws.s3.public_access_block", "fail", ["CC6.1"],
                [finding("arn:aws:s3:::fixed-bucket", "fail", "public")]),
        control("aws.guardduty.enabled", "pass", ["CC7.2"], [finding("aws:1:eu-west-1", "pass")]),
    ], bundle="20250301T090000Z")
    prev = write_bundle(tmp_path, old)
    view = build_view(R(sample()), [prev])
    d = view["diff"]
    assert d["old"]["bundle"] == "20250301T090000Z"
    assert [(e["resource"], e["new"]) for e in d["problems"]] == [
        (f"arn:aws:s3:::{EVIL}", "fail"), ("aws:1:eu-west-1", "error")]
    # a failing bucket the new scan does not report is gone, not fixed
    assert d["fixed"] == []
    assert [(e["resource"], e["why"]) for e in d["gone"]] == [("arn:aws:s3:::fixed-bucket",
                                                               "no longer present")]
    html = render_report(R(sample()), [prev])
    section = re.search(r'<section class="card" id="changes">(.*?)</section>', html, re.S).group(1)
    assert "20250301T090000Z" in section
    gone = re.search(r'<table class="compact stack" id="gone">(.*?)</table>', section, re.S).group(1)
    assert "fixed-bucket" in gone and "no longer present" in gone
    assert "&lt;script&gt;" in section and EVIL not in section
    assert "aws.guardduty.enabled" in section         # status change pass -> error


def test_exceptions_and_manual_evidence() -> None:
    res = sample()
    res["controls"].append(control("manual.pentest", "fail", ["CC4.1"], [{
        **finding("manual:manual.pentest", "fail",
                  "expired: pentest-2023.pdf (sha256 0123456789ab…) valid until 2025-01-15"),
        "facts": {"document_state": "expired", "file": "pentest-2023.pdf"}}],
        source="manual"))
    res["exceptions"] = [{"control": "aws.s3.public_access_block", "resource": "arn:aws:s3:::www",
                          "reason": "public website", "approved_by": "cto@example.com",
                          "approved_on": None, "expires": "2025-06-30", "status": "active"}]
    html = render_report(R(res), [])
    manual = re.search(r'<section class="card" id="manual">(.*?)</section>', html, re.S).group(1)
    assert "pentest-2023.pdf" in manual and "badge expired" in manual
    exc = re.search(r'<section class="card" id="exceptions">(.*?)</section>', html, re.S).group(1)
    assert "cto@example.com" in exc and "2025-06-30" in exc and "public website" in exc
    assert "No exceptions are in force" in render_report(R(sample()), [])
    assert 'id="manual"' not in render_report(R(sample()), [])


def test_manual_state_is_the_rules_not_a_word_in_the_file_name(tmp_path: Path) -> None:
    out, doc = tmp_path / "out", tmp_path / "Expired-certs policy.pdf"
    doc.write_bytes(b"%PDF policy")
    now = datetime(2026, 11, 22, 2, 0, tzinfo=timezone.utc)
    add_document(out, "manual.security_policies", doc, date(2027, 6, 30))
    records = list(ManualCollector(ManualCollector.Config()).collect(
        CollectContext(now=now, output_dir=out)))
    policies = catalog_by_id()["manual.security_policies"]
    result = evaluate_control(policies, records, policies.param_values(), now).to_json()
    assert result["findings"][0]["detail"].startswith("current: Expired-certs policy.pdf")
    res = sample()
    res["controls"].append(result)
    html = render_report(R(res), [])
    manual = re.search(r'<section class="card" id="manual">(.*?)</section>', html, re.S).group(1)
    assert "Expired-certs policy.pdf" in manual
    assert "badge current" in manual and "badge expired" not in manual


def test_exceptions_listed_once_whether_from_results_or_controls() -> None:
    entry = {"control": "aws.s3.public_access_block", "resource": "arn:aws:s3:::www",
             "reason": "public website", "approved_by": "cto@example.com", "approved_on": None,
             "expires": "2025-06-30", "status": "active"}
    res = sample()
    res["controls"][1]["exceptions"] = [entry]
    expected = [{"control": "aws.s3.public_access_block", "resource": "arn:aws:s3:::www",
                 "reason": "public website", "approver": "cto@example.com",
                 "expires": "2025-06-30", "state": "active"}]
    assert build_view(R(res), [])["exceptions"] == expected       # applied by a control only
    res["exceptions"] = [entry]
    assert build_view(R(res), [])["exceptions"] == expected       # listed and applied: once


def test_trend_reads_the_last_90_bundles_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    history = [write_bundle(tmp_path, results([control("aws.a.b", "pass", ["CC6.1"])],
                                              bundle=f"202503{i // 24 + 1:02d}T{i % 24:02d}0000Z"))
               for i in range(TREND_SCANS + 5)]
    read: list[Path] = []
    real = reports.html._read_results
    monkeypatch.setattr(reports.html, "_read_results", lambda b: read.append(b) or real(b))
    html = render_report(R(sample()), history)
    assert read == history[-TREND_SCANS:]
    assert html.count('class="trend-point') == TREND_SCANS + 1
    assert f"the last {TREND_SCANS + 1} scans in this output folder" in html
    assert "Changes since the previous scan" in html


def test_evidence_digests_from_manifest_or_files(tmp_path: Path) -> None:
    res = sample()
    rel = "evidence/aws/1/global/aws.s3.buckets.json"
    bundle = write_bundle(tmp_path, res, {rel: b"{}\n"})
    assert evidence_digests(bundle, R(res)) == {rel: "f" * 64}     # the manifest's word
    (bundle / "manifest.json").unlink()                          # a bundle still being written
    assert evidence_digests(bundle, R(res)) == {
        rel: "ca3d163bab055381827226140568f3bef7eaac187cebd76878e0b63e9e442356"}


def test_cmd_report_on_dir_uses_newest_and_history(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    write_bundle(out, results([control("aws.a.b", "fail", ["CC6.1"])], bundle="20250301T090000Z"))
    write_bundle(out, sample())
    target = tmp_path / "r" / "report.html"
    target.parent.mkdir()
    assert main(["report", str(out), "--out", str(target)]) == 0
    assert capsys.readouterr().out.strip() == str(target)
    html = target.read_text(encoding="utf-8")
    assert "20250302T090000Z" in html and "Changes since the previous scan" in html
    assert html.count('class="trend-point') == 2
    # a bundle given directly: history is the bundles before it only
    assert main(["report", str(out / "20250301T090000Z"), "--out", str(target)]) == 0
    assert target.read_text(encoding="utf-8").count('class="trend-point') == 1


def test_cmd_report_refuses_bad_targets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "r.html")
    assert main(["report", str(tmp_path / "nope"), "--out", out]) == 2
    assert "no such bundle" in capsys.readouterr().err
    assert main(["report", str(tmp_path), "--out", out]) == 2
    assert "no bundles found" in capsys.readouterr().err
    bundle = write_bundle(tmp_path, sample())
    assert main(["report", str(bundle), "--out", str(bundle / "report.html")]) == 2
    assert "refusing to write inside the bundle" in capsys.readouterr().err


def test_cmd_report_default_out_is_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = write_bundle(tmp_path / "out", sample())
    monkeypatch.chdir(tmp_path)
    assert main(["report", str(bundle)]) == 0
    assert (tmp_path / "attest-report.html").is_file()


def test_numbered_remediation_becomes_a_list() -> None:
    res = sample()
    res["controls"][1]["remediation"] = "Risk: public data. 1. Open S3 <b>. 2. Tick v1.2 boxes. 3. Save."
    html = render_report(R(res), [])
    assert ("<p>Risk: public data.</p><ol><li>Open S3 &lt;b&gt;.</li><li>Tick v1.2 boxes.</li>"
            "<li>Save.</li></ol>") in html


def test_source_with_unreadable_evidence_is_partial() -> None:
    res = sample()
    res["scan"]["incomplete"] = ["aws.guardduty.detectors aws:1:eu-west-1", "aws.kms.keys aws:1:eu-west-1"]
    html = render_report(R(res), [])
    section = re.search(r'<section class="card" id="sources">(.*?)</section>', html, re.S).group(1)
    assert "badge partial" in section and "2 evidence items could not be read" in section
    assert "aws.kms.keys aws:1:eu-west-1" in section


def test_unchanged_scan_says_no_changes(tmp_path: Path) -> None:
    prev = write_bundle(tmp_path, {**sample(), "scan": {**sample()["scan"], "bundle": "20250301T090000Z"}})
    html = render_report(R(sample()), [prev])
    assert "No changes: every control and every resource has the same status" in html


def test_changes_panel_tells_fixed_from_gone_and_explains_readiness(tmp_path: Path) -> None:
    pr = "github.changes_reviewed"
    old = results([
        control("aws.s3.public_access_block", "fail", ["CC6.1"],
                [finding("arn:aws:s3:::now-private", "fail", "public")]),
        control(pr, "fail", ["CC8.1"], [finding("acme/ui#7", "fail", "merged without review")]),
        control("aws.iam.root_mfa", "pass", ["CC6.1"], [finding("root", "pass")]),
    ], bundle="20250301T090000Z")
    new = results([
        control("aws.s3.public_access_block", "pass", ["CC6.1"],
                [finding("arn:aws:s3:::now-private", "pass")]),
        control(pr, "not_applicable", ["CC8.1"]),
        control("aws.iam.root_mfa", "pass", ["CC6.1"], [finding("root", "pass")]),
    ])
    html = render_report(R(new), [write_bundle(tmp_path, old)])
    section = re.search(r'<section class="card" id="changes">(.*?)</section>', html, re.S).group(1)
    fixed = re.search(r"<h3>Fixed</h3>(.*?)</table>", section, re.S).group(1).replace("<wbr>", "")
    assert "now-private" in fixed and "acme/ui#7" not in fixed
    gone = re.search(r'<table class="compact stack" id="gone">(.*?)</table>', section, re.S).group(1).replace("<wbr>", "")
    assert "acme/ui#7" in gone and "left the look-back window" in gone
    explained = re.search(r'<p class="muted" id="readiness-explained">(.*?)</p>', section).group(1)
    assert explained == ("readiness 33.3% → 100.0%: github.changes_reviewed became not_applicable "
                         "(nothing to judge in its look-back window), which removes it from the "
                         "denominator; and 1 control changed verdict (see the status changes)")
