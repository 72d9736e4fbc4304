"""Structured logs: ``--log-format json`` gives one JSON object a line, every API call with its
scan id, source, scope, call, duration and outcome; never a secret. Plain text stays quiet."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from attest.cli import main
from attest.store import list_bundles

SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLE-attest-secret-session-token-7f3a"


@pytest.fixture
def config(moto: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    path = tmp_path / "config.yaml"
    path.write_text(f"output_dir: ev\naws:\n  endpoint_url: {moto}\n  regions: [us-east-1]\n")
    return path


def test_json_logs_are_one_object_a_line_with_every_call(config: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    # the global flag after the subcommand, as the nightly job files write it
    assert main(["scan", "--config", str(config), "--log-format", "json", "--format", "json"]) == 1
    captured = capsys.readouterr()
    results = json.loads(captured.out)
    lines = [line for line in captured.err.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]     # every line on stderr is a JSON record
    said = {r["message"].split(":", 1)[0] for r in records if r["logger"] == "attest.cli"}
    assert {"bundle", "report", "exit 1"} <= said        # where the bundle is, and the exit code
    calls = [r for r in records if r["logger"] == "attest.calls"]
    assert len(calls) > 10
    for r in calls:
        assert {"scan_id", "source", "scope", "call", "duration", "outcome", "time", "level"} <= set(r)
        assert r["scan_id"] == results["scan"]["id"] and r["source"] == "aws"
        assert r["outcome"] in ("ok", "absent", "denied", "error", "partial")
        assert isinstance(r["duration"], float) and r["duration"] >= 0
    assert {"iam:GenerateCredentialReport", "s3:ListAllMyBuckets", "ec2:DescribeVpcs"} <= \
        {r["call"] for r in calls}
    assert any(r["scope"].startswith("aws:123456789012:us-east-1") for r in calls)
    assert all(r["scan_id"] == results["scan"]["id"] for r in records if r["logger"] == "attest.scan")
    assert SESSION_TOKEN not in captured.err and "testing" not in json.dumps(calls)


def test_text_logs_stay_quiet_and_the_bundle_keeps_every_call(config: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "attest.calls" not in err and "attest.scan: scan started" in err
    bundle = list_bundles(config.parent / "ev")[-1]
    scan_log = (bundle / "scan.log").read_text()
    assert "attest.calls: aws aws:123456789012:us-east-1 ec2:DescribeVpcs ok" in scan_log
    assert SESSION_TOKEN not in scan_log
    assert main(["-v", "scan", "--config", str(config)]) == 1
    assert "attest.calls: aws " in capsys.readouterr().err
    assert main(["scan", "--log-format", "yaml"]) == 2
    assert "invalid choice: 'yaml'" in capsys.readouterr().err


def test_with_json_logs_an_error_is_a_json_record_too(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A nightly job reading stderr as JSON lines gets its error as one record, not plain text."""
    assert main(["history", "--log-format", "json", "--dir", str(tmp_path / "nowhere")]) == 2
    record, = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert record["level"] == "ERROR" and record["message"].startswith("attest: error: ")
    assert "nowhere" in record["message"]
