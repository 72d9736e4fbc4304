"""`attest export` carries the manual evidence documents, each checked against the sha256 recorded
by the first bundle of the period that recorded it, never against the store's own meta.json."""
from __future__ import annotations

import shutil
import zipfile
from datetime import date, datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from attest.config import load_config
from attest.demo import start_demo
from attest.errors import IntegrityError
from attest.manual import add_document, iter_documents
from attest.model import canonical_json, sha256_bytes
from attest.scan import run_scan
from reports.export import export_period
from reports.export_manual import Document, archive_path, check_document, document_status

START, END = date(2026, 9, 1), date(2026, 9, 3)


def night(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 2, tzinfo=timezone.utc)


def _doc(folder: Path, name: str, body: bytes) -> Path:
    path = folder / name
    path.write_bytes(body)
    return path


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """Three nightly scans (Datadog demo only, so it is quick); documents added before nights 1
    and 2, one of them expiring before the last scan."""
    tmp = tmp_path_factory.mktemp("manual")
    out = tmp / "evidence"
    demo = start_demo(night(START), sources=("datadog",))
    config = load_config(None, overrides=demo.config)
    docs = {}
    try:
        docs["pentest"] = add_document(out, "manual.penetration_test",
                                       _doc(tmp, "..Pentest <final> report é.pdf", b"%PDF pentest"),
                                       date(2027, 6, 30))
        docs["vendors"] = add_document(out, "manual.vendor_reviews",
                                       _doc(tmp, "vendors.xlsx", b"vendor review sheet"),
                                       date(2026, 9, 2))
        run_scan(config, out_dir=out, now=night(START), demo=True)
        docs["policy"] = add_document(out, "manual.security_policies",
                                      _doc(tmp, "policy v3.pdf", b"%PDF policy"), date(2027, 1, 31))
        for day in (2, 3):
            run_scan(config, out_dir=out, now=night(date(2026, 9, day)), demo=True)
        yield {"out": out, "docs": docs, "config": config}
    finally:
        demo.stop()


def _root(zf: zipfile.ZipFile) -> str:
    return zf.namelist()[0].split("/")[0]


def _copy(history: dict[str, Any], tmp_path: Path) -> Path:
    out = tmp_path / "copy"
    shutil.copytree(history["out"], out)
    return out


def _no_zip(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.endswith((".zip", ".partial"))]


def test_documents_are_in_the_zip_with_matching_hashes(history, tmp_path):
    zf = zipfile.ZipFile(export_period(history["out"], START, END, tmp_path / "a.zip"))
    root = _root(zf)
    docs = history["docs"]
    manual = sorted(n for n in zf.namelist() if n.startswith(f"{root}/manual/"))
    in_zip = {k: archive_path(m["path"], m["filename"]) for k, m in docs.items()}
    assert manual == sorted(f"{root}/{p}" for p in in_zip.values())
    for key, meta in docs.items():
        # beside the stored file, under a name that keeps the original extension
        assert in_zip[key].rsplit("/", 1)[0] == meta["path"].rsplit("/", 1)[0]
        assert in_zip[key].endswith(PurePosixPath(meta["filename"]).suffix)
        data = zf.read(f"{root}/{in_zip[key]}")
        assert sha256_bytes(data) == meta["sha256"]
        assert data == (history["out"] / meta["path"]).read_bytes()
    assert in_zip["pentest"].endswith("-" + docs["pentest"]["path"].rsplit("-", 1)[1] + ".pdf")
    assert in_zip["vendors"] == docs["vendors"]["path"]            # vendors.xlsx kept its name
    readme = zf.read(f"{root}/README.txt").decode()
    index = zf.read(f"{root}/index.html").decode()
    for key, meta in docs.items():
        for text in (readme, index):
            assert meta["sha256"] in text and meta["valid_until"] in text
            assert meta["control"] in text and in_zip[key] in text
        assert f'<a href="{in_zip[key]}">' in index              # the link opens the file
        assert meta["path"] in readme and meta["path"] in index   # as the bundles record it
    assert "..Pentest <final> report é.pdf" in readme
    assert "..Pentest &lt;final&gt; report é.pdf" in index and "<final>" not in index
    lines = {m: next(line for line in readme.splitlines() if docs[m]["sha256"] in line)
             for m in docs}
    assert lines["pentest"].rstrip().endswith("current")         # the manual rule's words
    assert lines["vendors"].rstrip().endswith("expired")       # valid until 09-02, last scan 09-03
    assert "manual/" in index and "manual/" in readme          # listed among the files


@pytest.mark.parametrize("valid_until,params,status", [
    ("2026-12-31", {}, "current"),
    ("2026-09-20", {}, "expiring"),                                        # catalog default: 30
    ("2026-09-20", {"manual.penetration_test": {"expiring_days": 10}}, "current"),  # as scanned
    ("2026-09-02", {}, "expired")])
def test_document_status_is_the_rules(valid_until, params, status):
    meta = {"valid_until": valid_until, "sha256_ok": True}
    assert document_status("manual.penetration_test", meta, END, params) == status


def test_replacing_document_and_meta_json_stops_the_export(history, tmp_path):
    out = _copy(history, tmp_path)
    meta = history["docs"]["pentest"]
    forged = b"%PDF a different, forged report"
    (out / meta["path"]).write_bytes(forged)
    meta_file = (out / meta["path"]).parent / "meta.json"
    (meta_file).write_bytes(canonical_json({**meta, "sha256": sha256_bytes(forged),
                                            "size": len(forged)}))
    assert [m["sha256_ok"] for m in iter_documents(out)] == [True] * 3   # the store is fooled
    dest = tmp_path / "audit.zip"
    with pytest.raises(IntegrityError) as err:
        export_period(out, START, END, dest)
    message = str(err.value)
    assert meta["path"] in message and meta["filename"] in message
    assert "recorded by 20260901T020000Z" in message and "changed" in message
    assert len(err.value.problems) == 1
    assert not dest.exists() and _no_zip(tmp_path)
    # a period starting later checks against the first bundle of that period
    with pytest.raises(IntegrityError, match="recorded by 20260902T020000Z: changed"):
        export_period(out, date(2026, 9, 2), END, dest)


def test_missing_document_stops_the_export(history, tmp_path):
    out = _copy(history, tmp_path)
    meta = history["docs"]["policy"]
    shutil.rmtree((out / meta["path"]).parent)          # document and meta.json both gone
    dest = tmp_path / "audit.zip"
    with pytest.raises(IntegrityError, match=f"{meta['path']}: manual document 'policy v3.pdf' "
                                             r"\(manual.security_policies\) recorded by "
                                             "20260902T020000Z: missing"):
        export_period(out, START, END, dest)
    assert not dest.exists() and _no_zip(tmp_path)
    # the document was first recorded on 09-02: a period before it does not need it
    assert export_period(out, START, START, dest).exists()


def test_a_later_scan_recording_another_hash_is_named(history, tmp_path):
    """meta.json and file replaced before a scan: that bundle records the forged hash."""
    out = _copy(history, tmp_path)
    meta = history["docs"]["vendors"]
    forged = b"forged vendor sheet"
    (out / meta["path"]).write_bytes(forged)
    ((out / meta["path"]).parent / "meta.json").write_bytes(
        canonical_json({**meta, "sha256": sha256_bytes(forged)}))
    run_scan(history["config"], out_dir=out, now=night(date(2026, 9, 4)), demo=True)
    with pytest.raises(IntegrityError) as err:
        export_period(out, START, date(2026, 9, 4), tmp_path / "audit.zip")
    problems = "\n".join(err.value.problems)
    assert f"recorded by 20260904T020000Z with sha256 {sha256_bytes(forged)}" in problems
    assert "recorded by 20260901T020000Z: changed" in problems


@pytest.mark.parametrize("path", ["../outside.pdf", "manual/../../etc/passwd", "/etc/passwd",
                                  "bundles/x.pdf", "manual"])
def test_recorded_path_outside_the_store_is_refused(tmp_path, path):
    doc = Document("manual.penetration_test", path, "x.pdf", "0" * 64, "2027-01-01", "b")
    assert "outside the manual store" in (check_document(tmp_path, doc) or "")


@pytest.mark.parametrize("stored,filename,in_zip", [
    ("manual/c/e/policy_v3.pdf-2e02d156", "policy v3.pdf", "manual/c/e/policy_v3-2e02d156.pdf"),
    ("manual/c/e/Pentest_final_report_.pdf-16d9f4c8", "..Pentest <final> report é.pdf",
     "manual/c/e/Pentest_final_report_-16d9f4c8.pdf"),
    ("manual/c/e/vendors.xlsx", "vendors.xlsx", "manual/c/e/vendors.xlsx"),
    ("manual/c/e/REPORT.PDF", "REPORT.PDF", "manual/c/e/REPORT.PDF"),
    ("manual/c/e/a_b.tar.gz-1234abcd", "a b.tar.gz", "manual/c/e/a_b-1234abcd.tar.gz"),
    ("manual/c/e/" + "x" * 60 + "-1234abcd", "x" * 70 + " y.pdf",   # cut short by the store
     "manual/c/e/" + "x" * 60 + "-1234abcd.pdf"),
    ("manual/c/e/notes-1234abcd", "notes", "manual/c/e/notes-1234abcd"),   # no extension
    ("manual/c/e/x.p_f-1234abcd", "x.p<f", "manual/c/e/x.p_f-1234abcd"),   # none usable
])
def test_archive_path_keeps_the_original_extension(stored, filename, in_zip):
    assert archive_path(stored, filename) == in_zip
