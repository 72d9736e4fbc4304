"""attest.results: the typed results.json, its shipped JSON Schema, and the schema check every
test's bundles go through (tests/conftest.py)."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from attest.cli import main
from attest.errors import UsageError
from attest.model import ControlResult, Finding, Status, canonical_json
from attest.results import (SCHEMA_PATH, ControlRecord, Results, ScanInfo, build_results,
                            schema_text)
from attest.store import read_results
from tests.results_schema import schema_problem

ROOT = Path(__file__).resolve().parents[1]
STARTED = datetime(2026, 11, 22, 2, 0, 5, 123456, tzinfo=timezone.utc)


def written(**scan: Any) -> dict[str, Any]:
    """A results document exactly as attest scan writes it (keys, values, omissions)."""
    return {
        "scan": {"id": "0b7f", "bundle": "20261122T020005Z", "started_at": "2026-11-22T02:00:05.123456Z",
                 "finished_at": "2026-11-22T02:00:09Z", "tool_version": "0.1.0", "demo": True,
                 "config_digest": "c" * 64, "incomplete": ["aws.kms.keys aws:1:eu-west-1"],
                 "params": {"aws.iam.access_key_rotation": {"max_age_days": 60}},
                 "sources": {"aws": {"status": "collected"},
                             "okta": {"status": "skipped", "detail": "skipped: no 'okta' section"},
                             "github": {"status": "failed", "detail": "collector failed: boom"}},
                 **scan},
        "summary": {"counts": {"pass": 1, "fail": 1, "error": 0, "not_applicable": 0,
                               "excepted": 0, "skipped": 0}, "readiness": 50.0, "total": 2},
        "controls": [
            {"id": "aws.iam.root_mfa", "title": "Root has MFA", "criteria": ["CC6.1"],
             "source": "aws", "severity": "critical", "status": "pass",
             "findings": [{"resource": "arn:aws:iam::1:root", "status": "pass", "detail": "on"}],
             "evidence": ["evidence/aws/1/global/aws.iam.credential_report.json"],
             "remediation": "Turn it on.", "description": "Root MFA.", "exceptions": []},
            {"id": "aws.s3.encrypted", "title": "Buckets encrypted", "criteria": ["CC6.1", "C1.1"],
             "source": "aws", "severity": "high", "status": "fail",
             "findings": [{"resource": "arn:aws:s3:::b", "status": "fail", "detail": "off"}],
             "evidence": [], "remediation": "Encrypt.", "description": "Buckets.",
             "exceptions": [{"control": "aws.s3.encrypted", "resource": "arn:aws:s3:::old-*",
                             "reason": "legacy", "approved_by": "cto", "approved_on": None,
                             "expires": "2026-01-31", "status": "expired"}]},
        ],
        "exceptions": [{"control": "aws.s3.encrypted", "resource": "arn:aws:s3:::old-*",
                        "reason": "legacy", "approved_by": "cto", "approved_on": "2025-01-02",
                        "expires": "2026-01-31", "status": "expired"}],
    }


# -- the model ----------------------------------------------------------------------------------

def test_round_trip_is_byte_for_byte() -> None:
    data = written()
    results = Results.from_json(data, "x")
    assert results.to_bytes() == canonical_json(data)
    # as a scan writes it: in pieces, each control dumped in turn; the same bytes
    assert b"".join(results.json_pieces()) == results.to_bytes()
    bare = Results.from_json({k: v for k, v in data.items() if k != "exceptions"}, "x")
    assert b"".join(bare.json_pieces()) == bare.to_bytes()
    assert results.scan.started_at == STARTED
    assert results.summary.counts[Status.FAIL] == 1 and results.summary.readiness == 50.0
    assert results.controls[1].exceptions[0].status == "expired"
    assert results.scan.sources["okta"].detail.startswith("skipped")
    # optional keys stay out when unset, as the writer always did
    bare = {k: v for k, v in data.items() if k != "exceptions"}
    assert "exceptions" not in Results.from_json(bare, "x").to_json()
    assert "detail" not in Results.from_json(bare, "x").to_json()["scan"]["sources"]["aws"]


def test_old_documents_get_sensible_defaults(tmp_path: Path) -> None:
    """Fields a results.json may lack: summary (computed from the controls), a control's source
    (its id's first part), optional metadata; the first bundles wrote a source's status as text."""
    old = {"scan": {"started_at": "2025-01-01T00:00:00Z",
                    "sources": {"aws": "collected", "github": "failed: RuntimeError: boom"}},
           "controls": [{"id": "github.changes_reviewed", "status": "fail",
                         "findings": [{"resource": "o/r#1", "status": "fail"}]},
                        {"id": "aws.iam.root_mfa", "status": "not_applicable"}]}
    r = Results.from_json(old, "old.json")
    assert r.summary.counts[Status.FAIL] == 1 and r.summary.total == 2
    assert r.summary.readiness == 0.0
    assert r.controls[0].source == "github" and r.controls[0].findings[0].detail == ""
    assert r.scan.sources["github"].status == "failed"
    assert r.scan.sources["github"].detail == "RuntimeError: boom"
    assert r.scan.incomplete == [] and r.scan.bundle is None and r.exceptions is None
    counts_only = {**old, "summary": {"counts": {"fail": 1, "not_applicable": 1}}}
    s = Results.from_json(counts_only, "x").summary
    assert (s.readiness, s.total, s.counts[Status.PASS]) == (0.0, 2, 0)


@pytest.mark.writes_invalid_results
@pytest.mark.parametrize("mutate, where", [
    (lambda d: d["controls"][0].update(status="passed"), "controls.0.status"),
    (lambda d: d["scan"].pop("started_at"), "scan.started_at: missing"),
    (lambda d: d["scan"].update(started_at="yesterday"), "scan.started_at"),
    (lambda d: d["controls"][1]["findings"][0].pop("resource"), "controls.1.findings.0.resource"),
    (lambda d: d.update(controls={"a": 1}), "no 'controls' list"),
])
def test_a_malformed_document_is_one_line_naming_the_file(tmp_path: Path, mutate, where,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    data = written()
    mutate(data)
    bundle = tmp_path / "20261122T020005Z"
    bundle.mkdir()
    (bundle / "results.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(UsageError) as caught:
        read_results(bundle)
    message = str(caught.value)
    assert message.startswith(f"{bundle / 'results.json'}: not an attest results document")
    assert where in message and "\n" not in message
    assert "validation error" not in message and "pydantic" not in message
    assert main(["diff", str(bundle), str(bundle)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and where in err


def test_build_results_is_the_one_writer() -> None:
    controls = [ControlResult(id="aws.x.y", title="t", criteria=["CC6.1"], source="aws",
                              severity="low", status=Status.FAIL,
                              findings=[Finding("r", Status.FAIL, "d")], evidence=[])]
    scan = ScanInfo(id="i", started_at=STARTED, sources={"aws": {"status": "collected"}})
    r = build_results(iter(controls), scan, exceptions=None)   # the engine's verdicts, in turn
    assert r.summary.counts[Status.FAIL] == 1 and r.summary.readiness == 0.0
    assert r.controls == [ControlRecord.of(controls[0])] and r.exceptions is None
    sealed = r.sealed(bundle="20261122T020005Z", finished_at=STARTED)
    assert sealed.scan.bundle == "20261122T020005Z" and r.scan.bundle is None
    assert sealed.to_json()["scan"]["finished_at"] == "2026-11-22T02:00:05.123456Z"
    assert schema_problem_of(sealed.to_json()) is None


def schema_problem_of(data: dict[str, Any]) -> str | None:
    from jsonschema import Draft202012Validator
    errors = list(Draft202012Validator(json.loads(SCHEMA_PATH.read_text())).iter_errors(data))
    return errors[0].message if errors else None


# -- the shipped schema -------------------------------------------------------------------------

def test_shipped_schema_is_the_generated_one() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_text(), (
        "attest/schemas/results.schema.json is stale: run "
        "`python -m attest.results > attest/schemas/results.schema.json`")


def test_schema_is_useful_to_ci_pipelines() -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].startswith("urn:attest:") and schema["title"] == "attest results.json"
    assert "never pass" in schema["description"]
    assert schema["$defs"]["Status"]["enum"] == [s.value for s in Status]
    undocumented = [f"{name}.{prop}" for name, d in schema["$defs"].items()
                    for prop, spec in d.get("properties", {}).items()
                    if not spec.get("description") and "$ref" not in spec]
    assert not undocumented


def test_schema_ships_in_the_package() -> None:
    import tomllib
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "schemas/*.json" in pyproject["tool"]["setuptools"]["package-data"]["attest"]


# -- the check every test's bundles go through ---------------------------------------------------

@pytest.mark.writes_invalid_results
def test_the_validator_reports_an_invalid_bundle(tmp_path: Path) -> None:
    bundle = tmp_path / "out" / "20261122T020005Z"
    bundle.mkdir(parents=True)
    good = bundle / "results.json"
    good.write_bytes(canonical_json(written()))
    assert schema_problem(good) is None
    data = written()
    data["controls"][1]["findings"][0]["status"] = "failed"
    good.write_bytes(canonical_json(data))
    problem = schema_problem(good)
    assert problem is not None and problem.startswith(f"{good}: controls/1/findings/0/status: ")
    assert "'failed' is not one of" in problem
    good.write_text("{", encoding="utf-8")
    assert "not JSON" in schema_problem(good)


def test_the_check_runs_after_every_test(request: pytest.FixtureRequest) -> None:
    assert "results_fit_the_schema" in request.fixturenames
    assert "module_results_fit_the_schema" in request.fixturenames


@pytest.mark.writes_invalid_results   # the inner suite's bad files are under this tmp_path
def test_a_test_writing_a_bad_results_json_fails(tmp_path: Path) -> None:
    """The fixture end to end: a small test suite with tests/conftest.py as its plugin."""
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_writes.py").write_text(textwrap.dedent("""
        import pytest

        def test_bad(tmp_path):
            (tmp_path / "b").mkdir()
            (tmp_path / "b" / "results.json").write_text('{"scan": {}, "controls": []}')

        @pytest.mark.writes_invalid_results
        def test_bad_on_purpose(tmp_path):
            (tmp_path / "results.json").write_text('{"controls": 1}')

        def test_good(tmp_path):
            pass
    """), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-q", "-p", "no:cacheprovider",
         "--basetemp", str(tmp_path / "base"), "-o", "addopts=", "-W", "ignore::pytest.PytestUnknownMarkWarning",
         str(suite)],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "3 passed, 1 error" in out, out   # test_bad passes, then errors at its teardown
    assert "ERROR at teardown of test_bad " in out
    assert "results.json does not fit" in out and "b/results.json: scan: 'started_at' is a " \
                                                   "required property" in out
