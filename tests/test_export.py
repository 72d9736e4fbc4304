"""`attest export` on a 33-night history made by the real demo scan (tests/history.py).

The history flips AWS and Datadog controls between nights, skips nights, adds a second scan on one
day and carries an exception that expires mid-period; the export's coverage must match it day by
day, tampering and a deleted bundle must stop the export, and the zip must re-verify on its own.
"""
from __future__ import annotations

import io
import json
import shutil
import zipfile
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from attest.cli import main
from attest.errors import IntegrityError
from attest.exceptions import ExceptionSet, RiskException
from attest.manifest import verify
from attest.model import sha256_bytes
from reports.coverage import NO_SCAN, VERDICTS
from reports.export import export_period
from tests.history import (disk_monitor_notifies, ebs_default_encryption, guardduty_everywhere,
                           log_retention, make_history, marketing_bucket_encryption, no_change)

START = date(2026, 9, 1)
NIGHTS = 33
SKIP = {4, 5, 17, 30}
EXPIRES = START + timedelta(days=19)
FLIPS = {
    0: [no_change("datadog.monitors_not_muted", "excepted")],   # exception in force
    3: [ebs_default_encryption(True)],
    5: [disk_monitor_notifies(True)],          # on a skipped night: first seen on night 6
    7: [marketing_bucket_encryption(True)],
    9: [ebs_default_encryption(False)],
    12: [log_retention(None)],                 # app key loses a scope: error on nights 12-13
    14: [log_retention(15), ebs_default_encryption(True)],
    20: [log_retention(30), no_change("datadog.monitors_not_muted", "fail")],   # expired
    22: [guardduty_everywhere()],
    26: [marketing_bucket_encryption(True)],
    28: [disk_monitor_notifies(False)],
}
AFTERNOON = {25: [marketing_bucket_encryption(False)]}          # fails at 14:00 only
EXCEPTIONS = ExceptionSet([RiskException(
    control="datadog.monitors_not_muted", resource="40110004",
    reason="Legacy <telemetry> queue, decommissioned in Q4", approved_by="Jane Doe (CTO)",
    expires=EXPIRES)])


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    out = tmp_path_factory.mktemp("history") / "evidence"
    return {**make_history(out, START, NIGHTS, SKIP, FLIPS, sources=("aws", "datadog"),
                           afternoon=AFTERNOON, exceptions=EXCEPTIONS), "out": out}


@pytest.fixture(scope="module")
def export(history, tmp_path_factory):
    """The export of a period one day wider than the history on both sides."""
    start, end = START - timedelta(days=1), START + timedelta(days=NIGHTS)
    dest = tmp_path_factory.mktemp("export") / "audit.zip"
    path = export_period(history["out"], start, end, dest)
    zf = zipfile.ZipFile(path)
    root = zf.namelist()[0].split("/")[0]
    return {"zip": zf, "root": root, "start": start, "end": end, "path": path}


def _read(export, name: str) -> bytes:
    return export["zip"].read(f"{export['root']}/{name}")


def _expected(history, start: date, end: date) -> dict[str, dict[str, str]]:
    """control -> day -> status, from what the helper did (no scan: NO_SCAN)."""
    controls = next(iter(history["days"].values())).keys()
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    return {c: {d.isoformat(): history["days"].get(d, {}).get(c, NO_SCAN) for d in days}
            for c in controls}


def test_history_is_what_the_test_asked_for(history):
    assert len(history["scans"]) == NIGHTS - len(SKIP) + len(AFTERNOON)
    day = {d.isoformat(): s for d, s in history["days"].items()}
    assert day["2026-09-26"]["aws.s3.encrypted"] == "fail"    # 02:00 pass, 14:00 fail: worst wins
    assert day["2026-09-13"]["datadog.log_retention"] == "error"
    assert day["2026-09-01"]["datadog.monitors_not_muted"] == "excepted"
    assert "2026-09-05" not in day and "2026-09-06" not in day


def test_coverage_matches_the_history_day_by_day(history, export):
    expected = _expected(history, export["start"], export["end"])
    daily = pd.read_csv(io.BytesIO(_read(export, "coverage_daily.csv")), index_col="control")
    summary = pd.read_csv(io.BytesIO(_read(export, "coverage.csv"))).set_index("control")
    flipped = {f.control for fl in [*FLIPS.values(), *AFTERNOON.values()] for f in fl}
    assert flipped <= set(expected) <= set(summary.index)
    for control, by_day in expected.items():
        assert daily.loc[control].to_dict() == by_day, control
        statuses = list(by_day.values())
        failing = [d for d, s in by_day.items() if s == "fail"]
        row = summary.loc[control]
        got = {k: row[k] for k in ("days_in_period", "days_evaluated", "days_passing",
                                   "days_failing", "days_error", "days_excepted", "days_no_scan")}
        assert got == {"days_in_period": len(statuses),
                       "days_evaluated": sum(s in VERDICTS for s in statuses),
                       "days_passing": statuses.count("pass"),
                       "days_failing": statuses.count("fail"),
                       "days_error": statuses.count("error"),
                       "days_excepted": statuses.count("excepted"),
                       "days_no_scan": statuses.count(NO_SCAN)}, control
        first, last = row["first_failure"], row["last_failure"]
        assert (None if pd.isna(first) else first) == (failing[0] if failing else None), control
        assert (None if pd.isna(last) else last) == (failing[-1] if failing else None), control
    # a few hand-counted facts, so the comparison above cannot be vacuous
    ebs = summary.loc["aws.ebs.default_encryption"]
    assert ebs["days_no_scan"] == len(SKIP) + 2 and ebs["days_in_period"] == NIGHTS + 2
    assert ebs["first_failure"] == "2026-09-01" and ebs["last_failure"] == "2026-09-14"
    assert summary.loc["aws.s3.encrypted", "last_failure"] == "2026-09-26"
    assert summary.loc["datadog.log_retention", "days_error"] == 2


def test_csv_and_xlsx_hold_the_same_table(history, export):
    csv = pd.read_csv(io.BytesIO(_read(export, "coverage.csv")))
    xlsx = pd.read_excel(io.BytesIO(_read(export, "coverage.xlsx")), sheet_name=None,
                         engine="openpyxl")
    assert list(xlsx) == ["summary", "findings", "daily", "changes", "incidents", "access",
                          "aws_access"]                 # one sheet per population (AWS + Datadog:
    assert xlsx["changes"].empty and xlsx["access"].empty   # no GitHub or Okta in this history)
    pd.testing.assert_frame_equal(csv, xlsx["summary"])
    non_pass = sum(1 for s in history["scans"]
                   for c in json.loads((s["bundle"] / "results.json").read_text())["controls"]
                   for f in c["findings"] if f["status"] != "pass")
    assert len(xlsx["findings"]) == non_pass
    assert set(xlsx["findings"]["status"]) <= {"fail", "error", "excepted", "not_applicable",
                                               "skipped"}


def test_zip_holds_bundles_as_is_and_reverifies(history, export, tmp_path):
    names = export["zip"].namelist()
    for scan in history["scans"]:
        b = scan["bundle"]
        for f in ("manifest.json", "results.json"):
            assert _read(export, f"bundles/{b.name}/{f}") == (b / f).read_bytes()
    export["zip"].extractall(tmp_path)
    bundles, problems = verify(tmp_path / export["root"] / "bundles")
    assert problems == [] and len(bundles) == len(history["scans"])
    for f in ("index.html", "README.txt", "coverage.html", "coverage.csv", "coverage.xlsx",
              "assessment-results.oscal.json"):
        assert f"{export['root']}/{f}" in names


def test_index_explains_the_export_to_an_auditor(history, export):
    index = _read(export, "index.html").decode()
    readme = _read(export, "README.txt").decode()
    for text in (index, readme):
        assert "attest verify bundles/" in text
        # the gaps, consecutive days as a range
        assert ("Days without any scan (6): 2026-08-31, 2026-09-05 to 2026-09-06, 2026-09-18, "
                "2026-10-01, 2026-10-04.") in " ".join(text.split())
        assert "Jane Doe (CTO)" in text and str(EXPIRES) in text     # exception and approver
        for scan in history["scans"]:
            assert scan["bundle"].name in text
        for f in ("coverage.csv", "coverage.xlsx", "assessment-results.oscal.json"):
            assert f in text
    manifest = history["scans"][3]["bundle"] / "manifest.json"
    assert sha256_bytes(manifest.read_bytes()) in index
    assert "Head of the chain" in index and "The bundles are not signed" in index
    assert "&lt;telemetry&gt;" in index and "<telemetry>" not in index
    assert "manual.security_policies" in index                      # manual evidence status


def test_sub_period_verifies_the_link_to_the_bundle_before_it(history, tmp_path):
    path = export_period(history["out"], date(2026, 9, 3), date(2026, 9, 10), tmp_path / "p.zip")
    archive = zipfile.ZipFile(path)
    readme = archive.read("attest-export-2026-09-03-2026-09-10/README.txt").decode()
    assert "link to 20260902T020000Z (before the period) was verified" in readme
    # unzipped, the period's chain starts at a link to a bundle that is not there: the auditor's
    # command says so, and it verifies
    assert "attest verify --allow-pruned bundles/" in readme
    archive.extractall(tmp_path / "unzipped")
    bundles_dir = tmp_path / "unzipped/attest-export-2026-09-03-2026-09-10/bundles"
    assert verify(bundles_dir)[1] != []
    assert verify(bundles_dir, allow_pruned=True)[1] == []


def _copy(history, tmp_path) -> Path:
    out = tmp_path / "copy"
    shutil.copytree(history["out"], out)
    return out


def test_tampered_evidence_file_stops_the_export(history, tmp_path):
    out = _copy(history, tmp_path)
    bundle = out / history["scans"][10]["bundle"].name
    evidence = sorted((bundle / "evidence").rglob("*.json"))[0]
    evidence.write_bytes(evidence.read_bytes().replace(b"{", b"{ ", 1))
    rel = evidence.relative_to(bundle).as_posix()
    dest = tmp_path / "audit.zip"
    with pytest.raises(IntegrityError) as err:
        export_period(out, START, START + timedelta(days=NIGHTS - 1), dest)
    assert f"{bundle.name}: {rel}: changed" in str(err.value)
    assert not dest.exists() and _no_partial(tmp_path)


def test_file_changed_after_verification_is_caught_while_copying(history, tmp_path, monkeypatch):
    out = _copy(history, tmp_path)
    bundle = out / history["scans"][2]["bundle"].name
    (bundle / "report.html").write_bytes(b"<p>edited</p>")
    monkeypatch.setattr("reports.export.verify_bundle", lambda b, key=None: [])   # a race: verify saw it fine
    dest = tmp_path / "audit.zip"
    with pytest.raises(IntegrityError, match=f"{bundle.name}: report.html: changed"):
        export_period(out, START, START + timedelta(days=5), dest)
    assert not dest.exists() and _no_partial(tmp_path)


def test_link_into_the_period_must_reach_the_bundle_before_it(history, tmp_path):
    out = _copy(history, tmp_path)
    shutil.rmtree(out / "20260902T020000Z")       # the bundle the period's first one links to
    with pytest.raises(IntegrityError, match="20260903T020000Z: manifest.json: chain broken: "
                                             "links to 20260902T020000Z"):
        export_period(out, date(2026, 9, 3), date(2026, 9, 10), tmp_path / "a.zip")
    shutil.rmtree(out / "20260901T020000Z")       # history pruned before the period: allowed
    path = export_period(out, date(2026, 9, 3), date(2026, 9, 10), tmp_path / "b.zip")
    readme = zipfile.ZipFile(path).read("attest-export-2026-09-03-2026-09-10/README.txt").decode()
    assert "links to 20260902T020000Z, which was not in the folder" in readme


def _no_partial(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.endswith((".zip", ".partial"))]


def test_deleted_middle_bundle_breaks_the_chain(history, tmp_path, capsys):
    out = _copy(history, tmp_path)
    gone = history["scans"][15]["bundle"].name
    after = history["scans"][16]["bundle"].name
    shutil.rmtree(out / gone)
    dest = tmp_path / "audit.zip"
    code = main(["export", "--from", str(START), "--to", "2026-10-03", "--dir", str(out),
                 "--out", str(dest)])
    err = capsys.readouterr().err
    assert code == 1
    assert f"{after}: manifest.json: chain broken: links to {gone}" in err
    assert not dest.exists() and _no_partial(tmp_path)


def test_cli_export_writes_the_zip(history, tmp_path, capsys):
    dest = tmp_path / "out" / "audit.zip"
    dest.parent.mkdir()                     # --out names a file in an existing folder
    assert main(["export", "--from", "2026-09-20", "--to", "2026-09-22", "--dir",
                 str(history["out"]), "--out", str(dest)]) == 0
    assert "every bundle file and the hash chain verified" in capsys.readouterr().out
    assert zipfile.is_zipfile(dest)
    assert main(["export", "--from", "2026-13-01", "--to", "2026-09-22", "--dir",
                 str(history["out"])]) == 2
    assert main(["export", "--from", "2025-01-01", "--to", "2025-01-02", "--dir",
                 str(history["out"]), "--out", str(tmp_path / "none.zip")]) == 2
