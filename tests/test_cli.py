"""The CLI end to end: exit codes, machine formats, exceptions applied to a real scan."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from attest.cli import main
from attest.config import load_config
from attest.results import Results
from attest.scan import exit_code_for, run_scan
from controls import load_catalog
from tests.conftest import NOW


def results(*statuses: str, incomplete: list[str] | None = None) -> Results:
    return Results.model_validate({
        "scan": {"started_at": NOW, "incomplete": incomplete or []},
        "controls": [{"id": f"c{i}", "status": s} for i, s in enumerate(statuses)]})


@pytest.mark.parametrize("statuses,incomplete,code", [
    (("pass", "not_applicable", "excepted", "skipped"), [], 0),
    (("pass", "fail"), [], 1),
    (("pass", "fail", "error"), [], 3),
    (("pass",), ["aws.ec2.vpcs aws:1:eu-west-1"], 3),
])
def test_exit_codes(statuses, incomplete, code) -> None:
    assert exit_code_for(results(*statuses, incomplete=incomplete)) == code


def test_scan_demo_junit_for_ci(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["scan", "--demo", "--out", str(tmp_path / "out"), "--format", "junit"])
    out = capsys.readouterr().out
    suite = ET.fromstring(out.split("\n", 1)[1])
    assert code == 1  # the demo company fails some controls, on purpose
    assert len(suite.findall("testcase")) == len(load_catalog())
    assert int(suite.get("failures")) > 0


def test_one_source_denied_is_exit_3_and_others_carry_on(demo, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATTEST_TEST_BAD_TOKEN", "not-the-right-token")
    cfg = {**demo.config, "okta": {**demo.config["okta"], "token": "${ATTEST_TEST_BAD_TOKEN}"}}
    outcome = run_scan(load_config(None, overrides=cfg), out_dir=tmp_path / "out", now=NOW)
    by_source: dict[str, set[str]] = {}
    for c in outcome.results.controls:
        by_source.setdefault(c.source, set()).add(c.status.value)
    assert by_source["okta"] == {"error"}
    assert "error" not in by_source["aws"] | by_source["github"] | by_source["datadog"]
    assert outcome.exit_code == 3


def test_exceptions_for_every_failure_make_exit_0(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["scan", "--demo", "--out", str(out), "--format", "json"]) == 1
    first = json.loads(capsys.readouterr().out)
    failing = [c["id"] for c in first["controls"] if c["status"] == "fail"]
    entries = [{"control": cid, "resource": "*", "reason": "Accepted for the demo <b>risk</b>",
                "approved_by": "Jane Doe (CTO)", "expires": "2027-01-31"} for cid in failing]
    (tmp_path / "exceptions.yaml").write_text(yaml.safe_dump(entries), encoding="utf-8")
    cfg = tmp_path / "config.yaml"
    cfg.write_text("exceptions_file: exceptions.yaml\n", encoding="utf-8")
    code = main(["scan", "--demo", "--config", str(cfg), "--out", str(out), "--format", "json"])
    second = json.loads(capsys.readouterr().out)
    assert code == 0
    statuses = {c["id"]: c["status"] for c in second["controls"]}
    # github.changes_reviewed looks back only to the previous scan: nothing merged since -> n/a
    assert {statuses[cid] for cid in failing} <= {"excepted", "not_applicable"}
    assert sum(statuses[cid] == "excepted" for cid in failing) >= len(failing) - 1
    assert len(second["exceptions"]) == len(failing)
    bundle = out / second["scan"]["bundle"]
    html = (bundle / "report.html").read_text(encoding="utf-8")
    assert "Jane Doe (CTO)" in html and "&lt;b&gt;risk&lt;/b&gt;" in html
    # offline re-evaluation applies the exceptions the scan recorded: same statuses, same exit
    assert main(["evaluate", str(bundle)]) == 0
    assert "same statuses as the stored results" in capsys.readouterr().out


def test_permissions_and_controls_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["permissions", "aws"]) == 0
    policy = json.loads(capsys.readouterr().out)
    actions = {a for s in policy["Statement"] for a in s["Action"]}
    assert actions and all(a.split(":")[1].startswith(("Describe", "Get", "List", "Generate"))
                           for a in actions)
    assert main(["controls", "--criterion", "cc8"]) == 0
    assert "github.branch_review_required" in capsys.readouterr().out
    assert main(["controls", "--source", "nope"]) == 2
    assert main(["frobnicate"]) == 2


def test_out_that_is_a_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["scan", "--out", str(afile)]) == 2
    assert capsys.readouterr().err.strip() == \
        f"attest: error: {afile}: output path exists and is not a directory"
