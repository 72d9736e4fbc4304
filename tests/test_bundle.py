"""Bundles: atomic, hash-listed, chained; verify catches any change."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from attest.cli import main
from attest.manifest import verify
from attest.store import list_bundles, load_evidence
from tests.conftest import NOW


def test_scan_writes_a_complete_bundle(demo, demo_scan) -> None:
    outcome = demo_scan()
    b = outcome.bundle
    assert b.name == "20261122T020000Z"
    for name in ("results.json", "manifest.json", "report.html", "scan.log", "failed-calls.json"):
        assert (b / name).is_file()
    manifest = json.loads((b / "manifest.json").read_text())
    paths = {f["path"] for f in manifest["files"]}
    # no call failed: the file says so (an empty list), and the manifest pins it
    assert (b / "failed-calls.json").read_bytes() == b"[]\n" and "failed-calls.json" in paths
    assert "failed for good" not in (b / "report.html").read_text()
    assert "results.json" in paths and any(p.startswith("evidence/aws/") for p in paths)
    assert manifest["previous"] is None and manifest["tool_version"] and manifest["config_digest"]
    results = json.loads((b / "results.json").read_text())
    assert set(results["scan"]) >= {"id", "started_at", "finished_at", "tool_version"}
    for c in results["controls"]:
        assert set(c) >= {"id", "title", "criteria", "status", "findings", "evidence"}
        for p in c["evidence"]:
            assert p in paths
    assert verify(b)[1] == []


def test_demo_results_match_what_the_demo_seeded(demo, demo_scan) -> None:
    results = demo_scan().results
    got = {c.id: c.status for c in results.controls}
    assert demo.expected, "the demo declares what it seeded"
    assert {cid: got[cid] for cid in demo.expected} == demo.expected


def test_chain_and_tamper_detection(demo_scan, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = demo_scan(NOW).bundle
    second = demo_scan(NOW + timedelta(days=1)).bundle
    third = demo_scan(NOW + timedelta(days=2)).bundle
    link = json.loads((second / "manifest.json").read_text())["previous"]
    assert link["bundle"] == first.name
    assert verify(out)[1] == []

    ev_file = sorted((second / "evidence").rglob("*.json"))[0]
    original = ev_file.read_bytes()
    ev_file.write_bytes(original[:-2] + bytes([original[-2] ^ 1]) + original[-1:])  # one byte
    problems = verify(out)[1]
    rel = ev_file.relative_to(second).as_posix()
    assert problems == [f"{second.name}: {rel}: changed (sha256 does not match the manifest)"]
    ev_file.write_bytes(original)

    (third / "evidence" / "extra.json").write_text("{}")
    assert verify(out)[1] == [f"{third.name}: evidence/extra.json: not in the manifest (added)"]
    (third / "evidence" / "extra.json").unlink()

    shutil.rmtree(second)
    assert any("chain broken" in p for p in verify(out)[1])


def test_deleted_history_or_manifest_is_caught(demo_scan, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = demo_scan(NOW).bundle
    second = demo_scan(NOW + timedelta(days=1)).bundle
    shutil.rmtree(first)
    problems = verify(out)[1]
    assert problems == [f"{second.name}: manifest.json: chain broken: links to {first.name}, which "
                        "is not in the folder (use --allow-pruned if older bundles were deleted on "
                        "purpose)"]
    assert verify(out, allow_pruned=True)[1] == []
    assert main(["verify", str(out)]) == 1
    assert main(["verify", "--allow-pruned", str(out)]) == 0
    third = demo_scan(NOW + timedelta(days=2)).bundle
    (third / "manifest.json").unlink()
    assert f"{third.name}: manifest.json: missing (an incomplete or altered bundle)" in \
        verify(out, allow_pruned=True)[1]


@pytest.mark.writes_invalid_results
def test_verify_cli(demo_scan, capsys: pytest.CaptureFixture[str]) -> None:
    b = demo_scan().bundle
    assert main(["verify", str(b)]) == 0
    (b / "results.json").write_text("{}")
    assert main(["verify", str(b.parent)]) == 1
    assert "results.json: changed" in capsys.readouterr().out


def test_evaluate_offline_reproduces_results(demo_scan, tmp_path: Path, capsys) -> None:
    outcome = demo_scan()
    fresh = tmp_path / "fresh.json"
    code = main(["evaluate", str(outcome.bundle), "--out", str(fresh)])
    assert "same statuses as the stored results" in capsys.readouterr().out
    assert code == outcome.exit_code
    got = {c["id"]: c["status"] for c in json.loads(fresh.read_text())["controls"]}
    assert got == outcome.results.statuses()
    assert len(load_evidence(outcome.bundle)) == len(outcome.records)


def test_killed_scan_leaves_no_bundle(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "attest", "scan", "--demo", "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            partial = list(out.glob(".*.partial/evidence")) if out.exists() else []
            if partial:
                break
            assert proc.poll() is None, "the scan ended before it could be killed"
            time.sleep(0.05)
        else:
            pytest.fail("the scan never started writing a bundle")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert list_bundles(out) == []
    # only the manual evidence store and the demo's signing key (both made before collecting)
    # and the hidden partial folder remain
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "demo-signing-key.pem", "demo-signing-key.pub.pem", "manual"]
    assert main(["verify", str(out)]) == 2  # nothing there looks like a bundle


def test_failed_scan_keeps_evidence_but_no_bundle(demo_scan, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import reports.html

    def broken(*args, **kwargs):   # the report is written as it renders: half of it, then this
        yield b"<!doctype html><html>"
        raise RuntimeError("template exploded")
    monkeypatch.setattr(reports.html, "report_pieces", broken)
    with pytest.raises(RuntimeError, match="template exploded"):
        demo_scan()
    out = tmp_path / "out"
    assert list_bundles(out) == []
    kept = list(out.glob(".*.incomplete"))
    assert len(kept) == 1 and len(list((kept[0] / "evidence").rglob("*.json"))) > 20
    assert not (kept[0] / "manifest.json").exists()


def test_empty_manifest_is_reported_not_a_crash(demo_scan, tmp_path: Path, capsys) -> None:
    b = demo_scan().bundle
    (b / "manifest.json").write_bytes(b"")
    assert main(["verify", str(tmp_path / "out")]) == 1
    assert "manifest.json unreadable" in capsys.readouterr().out


def test_manifest_lists_exactly_the_files_on_disk(demo_scan) -> None:
    from attest.manifest import file_sha256
    b = demo_scan().bundle
    listed = {f["path"]: f["sha256"] for f in json.loads((b / "manifest.json").read_text())["files"]}
    on_disk = {p.relative_to(b).as_posix(): file_sha256(p) for p in b.rglob("*") if p.is_file()}
    on_disk.pop("manifest.json")
    assert listed == on_disk


def test_evidence_written_in_pieces_is_canonical_json_and_hashed_as_such(tmp_path: Path) -> None:
    """Large payloads are encoded and hashed piece by piece (memory, issue 9): the file holds
    exactly ``canonical_json`` of the record, and the digest the manifest takes is of those bytes."""
    import hashlib
    from datetime import datetime, timezone
    from attest.model import Evidence, EvidenceState, canonical_json, canonical_json_pieces
    from attest.store import BundleWriter
    payload = {"users": [{"id": f"u{i}", "login": f"ü{i}@example.com", "at": datetime(2026, 1, 1, tzinfo=timezone.utc),
                          "tags": {"b", "a"}, "n": i / 3} for i in range(3000)]}
    ev = Evidence(name="okta.users", scope="okta:acme", state=EvidenceState.OK, payload=payload)
    expected = canonical_json(ev.to_json())
    # the canonical form itself: json.dumps' sorted keys, 2-space indent, UTF-8, a newline
    import json
    from attest.model import _json_default
    assert expected == (json.dumps(ev.to_json(), sort_keys=True, indent=2, ensure_ascii=False,
                                   default=_json_default) + "\n").encode("utf-8")
    assert b"".join(canonical_json_pieces(ev.to_json(), piece_size=4096)) == expected
    pieces = list(canonical_json_pieces(ev.to_json(), piece_size=4096))
    assert len(pieces) > 10 and max(map(len, pieces)) < 4096 + 1024
    writer = BundleWriter(tmp_path, NOW)
    rel = writer.write_evidence(ev)
    assert (writer.tmp / rel).read_bytes() == expected
    assert writer.digests[rel] == (hashlib.sha256(expected).hexdigest(), len(expected))
    with pytest.raises(FileExistsError):
        writer.write_evidence(ev)
    assert writer.digests[rel] == (hashlib.sha256(expected).hexdigest(), len(expected))
