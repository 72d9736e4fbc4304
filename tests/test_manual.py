"""Manual evidence: `attest evidence add` stores a hashed document; each scan's bundle records it;
the rule reports current / expiring / expired / missing, and a changed file as error."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from attest.cli import main
from attest.engine import evaluate_control
from attest.manual import add_document, iter_documents
from attest.model import Status
from collectors.base import CollectContext
from collectors.manual.collector import ManualCollector
from controls import catalog_by_id

NOW = datetime(2026, 11, 22, 2, 0, tzinfo=timezone.utc)


def judge(out: Path, control_id: str):
    ctx = CollectContext(now=NOW, output_dir=out)
    records = list(ManualCollector(ManualCollector.Config()).collect(ctx))
    control = catalog_by_id()[control_id]
    return evaluate_control(control, records, control.param_values(), NOW)


@pytest.fixture
def doc(tmp_path: Path) -> Path:
    p = tmp_path / "..Pentest <final> report é.pdf"
    p.write_bytes(b"%PDF-1.4 pentest report")
    return p


@pytest.mark.parametrize("days,status,word", [
    (200, Status.PASS, "current"), (20, Status.PASS, "expiring"), (-1, Status.FAIL, "expired")])
def test_validity(tmp_path: Path, doc: Path, days: int, status: Status, word: str) -> None:
    out = tmp_path / "out"
    add_document(out, "manual.penetration_test", doc, (NOW + timedelta(days=days)).date())
    res = judge(out, "manual.penetration_test")
    assert res.status is status
    assert res.findings[0].detail.startswith(word)
    assert res.findings[0].resource == "manual:manual.penetration_test"


def test_missing(tmp_path: Path) -> None:
    res = judge(tmp_path / "out", "manual.vendor_reviews")
    assert res.status is Status.FAIL and res.findings[0].detail.startswith("missing")


def test_newest_document_counts(tmp_path: Path, doc: Path) -> None:
    out = tmp_path / "out"
    add_document(out, "manual.penetration_test", doc, (NOW - timedelta(days=30)).date())
    add_document(out, "manual.penetration_test", doc, (NOW + timedelta(days=300)).date())
    assert judge(out, "manual.penetration_test").status is Status.PASS


def test_changed_document_is_error(tmp_path: Path, doc: Path) -> None:
    out = tmp_path / "out"
    meta = add_document(out, "manual.penetration_test", doc, (NOW + timedelta(days=300)).date())
    (out / meta["path"]).write_bytes(b"tampered")
    res = judge(out, "manual.penetration_test")
    assert res.status is Status.ERROR and "no longer matches" in res.findings[0].detail


def test_stored_name_is_sanitised(tmp_path: Path, doc: Path) -> None:
    out = tmp_path / "out"
    meta = add_document(out, "manual.penetration_test", doc, NOW.date())
    stored = (out / meta["path"]).resolve()
    assert stored.is_relative_to((out / "manual").resolve())
    assert "/" not in meta["stored_as"] and ".." not in meta["stored_as"]
    assert meta["filename"] == doc.name  # the original name is kept as data
    assert [m["sha256_ok"] for m in iter_documents(out)] == [True]


def test_cli_add_and_list(tmp_path: Path, doc: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["evidence", "add", "manual.penetration_test", str(doc), "--valid-until",
                 "2027-08-31", "--dir", str(out)]) == 0
    assert "stored" in capsys.readouterr().out
    assert main(["evidence", "list", "--dir", str(out)]) == 0
    assert "manual.penetration_test" in capsys.readouterr().out
    assert main(["evidence", "add", "aws.s3.encrypted", str(doc), "--valid-until", "2027-01-01",
                 "--dir", str(out)]) == 2
    assert "not a manual control" in capsys.readouterr().err
    assert main(["evidence", "add", "manual.penetration_test", str(doc), "--valid-until",
                 "next year", "--dir", str(out)]) == 2
    assert "--valid-until next year: not a date; expected YYYY-MM-DD" in capsys.readouterr().err
    assert main(["evidence", "add", "manual.penetration_test", str(doc), "--valid-until",
                 "2020-01-01", "--dir", str(out)]) == 2
    assert "is in the past" in capsys.readouterr().err
    assert main(["evidence", "add", "manual.penetration_test", str(doc), "--valid-until",
                 "2020-01-01", "--dir", str(out), "--allow-expired"]) == 0


def test_scan_bundle_records_manual_evidence(demo_scan, tmp_path: Path, doc: Path) -> None:
    out = tmp_path / "out"
    meta = add_document(out, "manual.penetration_test", doc, (NOW + timedelta(days=10)).date())
    outcome = demo_scan(out=out)
    record = json.loads((outcome.bundle / "evidence/manual/store/manual.documents.json").read_text())
    assert record["payload"]["manual.penetration_test"][0]["sha256"] == meta["sha256"]
    by_id = {c.id: c.model_dump(mode="json") for c in outcome.results.controls}
    assert by_id["manual.penetration_test"]["findings"][0]["detail"].startswith("expiring")
    html = (outcome.bundle / "report.html").read_text(encoding="utf-8")
    assert "expiring" in html and "Pentest &lt;final&gt;" in html
