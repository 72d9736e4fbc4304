"""reports.diff: status changes, resources that started/stopped failing (fail and error kept
apart), new resources, and ``attest diff``."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from attest.cli import main
from reports.diff import diff_results, is_empty


def ctl(cid: str, status: str, *findings: tuple[str, str]) -> dict[str, Any]:
    return {"id": cid, "title": cid.upper(), "status": status,
            "findings": [{"resource": r, "status": s, "detail": f"{r} is {s}"} for r, s in findings]}


def res(bundle: str, readiness: float | None, *controls: dict[str, Any]) -> dict[str, Any]:
    return {"scan": {"bundle": bundle, "started_at": "2025-03-01T00:00:00Z"},
            "summary": {"readiness": readiness}, "controls": list(controls)}


OLD = res("20250301T000000Z", 50.0,
          ctl("a.one", "fail", ("r1", "fail"), ("r2", "pass")),
          ctl("a.two", "error", ("scope-x", "error")),
          ctl("a.three", "pass", ("r1", "pass")),
          ctl("a.gone", "fail", ("r9", "fail")))
NEW = res("20250302T000000Z", 75.0,
          ctl("a.one", "fail", ("r1", "pass"), ("r2", "fail"), ("r3", "pass")),
          ctl("a.two", "fail", ("scope-x", "fail")),
          ctl("a.three", "error", ("r1", "error")),
          ctl("a.added", "pass", ("r4", "pass")))


def pairs(entries: list[dict[str, Any]]) -> list[tuple[str, str, str | None, str | None]]:
    return [(e["control"], e["resource"], e["old"], e["new"]) for e in entries]


def test_status_changes_and_control_set() -> None:
    d = diff_results(OLD, NEW)
    assert [(c["id"], c["old"], c["new"]) for c in d["status_changes"]] == [
        ("a.three", "pass", "error"), ("a.two", "error", "fail")]
    assert d["added_controls"] == ["a.added"] and d["removed_controls"] == ["a.gone"]
    assert d["old"] == {"bundle": "20250301T000000Z", "started_at": "2025-03-01T00:00:00Z",
                        "readiness": 50.0}
    assert d["new"]["readiness"] == 75.0


def test_fail_and_error_are_kept_apart() -> None:
    d = diff_results(OLD, NEW)
    assert pairs(d["started_failing"]) == [("a.one", "r2", "pass", "fail"),
                                           ("a.two", "scope-x", "error", "fail")]
    assert pairs(d["stopped_failing"]) == [("a.gone", "r9", "fail", None),
                                           ("a.one", "r1", "fail", "pass")]
    assert pairs(d["started_erroring"]) == [("a.three", "r1", "pass", "error")]
    assert pairs(d["stopped_erroring"]) == [("a.two", "scope-x", "error", "fail")]
    assert d["started_failing"][0]["detail"] == "r2 is fail"
    assert d["stopped_failing"][0]["detail"] == "r9 is fail"   # gone: the old detail


def test_new_resources_are_new_anywhere_in_the_scan() -> None:
    d = diff_results(OLD, NEW)
    # r1 was seen before (under other controls too); r3 and r4 are new
    assert d["new_resources"] == [{"resource": "r3", "controls": ["a.one"], "failing": []},
                                  {"resource": "r4", "controls": ["a.added"], "failing": []}]
    failing_new = diff_results(OLD, res("n", None, ctl("a.one", "fail", ("r7", "fail"))))
    assert failing_new["new_resources"] == [{"resource": "r7", "controls": ["a.one"],
                                             "failing": ["a.one"]}]


def test_identical_results_have_no_changes() -> None:
    d = diff_results(OLD, OLD)
    assert is_empty(d)
    assert not is_empty(diff_results(OLD, NEW))


def write(tmp: Path, data: dict[str, Any]) -> Path:
    bundle = tmp / data["scan"]["bundle"]
    bundle.mkdir()
    (bundle / "results.json").write_text(json.dumps(data), encoding="utf-8")
    return bundle


def test_cmd_diff_json_and_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old, new = write(tmp_path, OLD), write(tmp_path, NEW)
    assert main(["diff", str(old), str(new), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == diff_results(OLD, NEW)
    # a results file works as well as a bundle folder
    assert main(["diff", str(old / "results.json"), str(new)]) == 0
    text = capsys.readouterr().out
    for needle in ("control status changes", "a.three", "started failing", "stopped erroring",
                   "new resources", "controls removed: a.gone", "50.0% -> 75.0%"):
        assert needle in text
    assert main(["diff", str(old), str(old)]) == 0
    assert "no changes" in capsys.readouterr().out


def test_table_prints_markup_from_apis_literally(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    old = write(tmp_path, res("o", None))
    new = write(tmp_path, res("n", None, ctl("a.one", "fail", ("[bold]repo[/bold]", "fail"))))
    assert main(["diff", str(old), str(new)]) == 0
    assert "[bold]repo[/bold]" in capsys.readouterr().out


def test_bad_paths_are_one_line_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path, OLD)
    broken = tmp_path / "broken.json"
    for old, new, message in [(tmp_path / "missing", good, "no such bundle or results file"),
                              (tmp_path, good, "not a bundle (no results.json)"),
                              (broken, good, "not a results file (not JSON)"),
                              (good, broken, "not an attest results document")]:
        broken.write_text("[]" if message.startswith("not an") else "{not json", encoding="utf-8")
        assert main(["diff", str(old), str(new)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err


def test_history_lists_every_scan(demo_scan, tmp_path, capsys) -> None:
    from datetime import timedelta

    from attest.cli import main
    from tests.conftest import NOW
    first = demo_scan(NOW)
    second = demo_scan(NOW + timedelta(days=1))
    assert main(["history", "--dir", str(tmp_path / "out"), "--json"]) == 0
    import json
    rows = json.loads(capsys.readouterr().out)
    assert [r["bundle"] for r in rows] == [first.bundle.name, second.bundle.name]
    assert rows[0]["readiness"] == first.results["summary"]["readiness"]
    assert rows[1]["counts"] == second.results["summary"]["counts"]
    assert main(["history", "--dir", str(tmp_path / "empty")]) == 2
