"""reports.diff: status changes, resources that started/stopped failing (fail and error kept
apart), what became of failing resources (fixed, disappeared, left the look-back window, not
judged), new resources, readiness explained, and ``attest diff``. Literal results, no network."""
from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from attest.cli import main
from attest.results import Results, Summary
from reports.diff import diff_results, is_empty, windowed_controls


def ctl(cid: str, status: str, *findings: tuple[str, str]) -> dict[str, Any]:
    return {"id": cid, "title": cid.upper(), "status": status,
            "findings": [{"resource": r, "status": s, "detail": f"{r} is {s}"} for r, s in findings]}


def res(bundle: str, readiness: float | None, *controls: dict[str, Any]) -> Results:
    """Results with these controls (``readiness`` as given, whatever the counts say)."""
    r = Results.model_validate({"scan": {"bundle": bundle, "started_at": "2025-03-01T00:00:00Z"},
                                "controls": list(controls)})
    return r.model_copy(update={"summary": Summary(counts=r.summary.counts, readiness=readiness,
                                                   total=r.summary.total)})


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
    assert pairs(d["stopped_failing"]) == [("a.one", "r1", "fail", "pass")]
    assert pairs(d["fixed"]) == [("a.one", "r1", "fail", "pass")]
    assert pairs(d["started_erroring"]) == [("a.three", "r1", "pass", "error")]
    assert pairs(d["stopped_erroring"]) == [("a.two", "scope-x", "error", "fail")]
    assert d["started_failing"][0]["detail"] == "r2 is fail"
    # a.gone left the catalog: its resources are not "fixed" nor "disappeared"
    assert not any(d[k] for k in ("disappeared", "left_window", "not_judged"))


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


def write(tmp: Path, data: Results) -> Path:
    bundle = tmp / data.scan.bundle
    bundle.mkdir()
    (bundle / "results.json").write_bytes(data.to_bytes())
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
    assert rows[0]["readiness"] == first.results.summary.readiness
    assert rows[1]["counts"] == second.results.to_json()["summary"]["counts"]
    assert main(["history", "--dir", str(tmp_path / "empty")]) == 2


# -- what became of a failing resource -----------------------------------------------------------

PR = "github.changes_reviewed"


def gone(d: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    return {k: [(e["control"], e["resource"]) for e in d[k]]
            for k in ("fixed", "disappeared", "left_window", "not_judged") if d[k]}


def test_same_resource_now_passing_is_fixed() -> None:
    old = res("o", 0.0, ctl("aws.s3.encrypted", "fail", ("arn:aws:s3:::a", "fail")))
    new = res("n", 100.0, ctl("aws.s3.encrypted", "pass", ("arn:aws:s3:::a", "pass")))
    assert gone(diff_results(old, new, windowed=())) == {"fixed": [("aws.s3.encrypted", "arn:aws:s3:::a")]}
    excepted = res("n", 100.0, ctl("aws.s3.encrypted", "excepted", ("arn:aws:s3:::a", "excepted")))
    assert gone(diff_results(old, excepted, windowed=()))["fixed"]
    erroring = res("n", 0.0, ctl("aws.s3.encrypted", "error", ("arn:aws:s3:::a", "error")))
    d = diff_results(old, erroring, windowed=())
    assert not gone(d)                              # fail -> error is not a fix
    assert pairs(d["stopped_failing"]) == pairs(d["started_erroring"]) == [
        ("aws.s3.encrypted", "arn:aws:s3:::a", "fail", "error")]


def test_resource_gone_is_disappeared_not_fixed() -> None:
    old = res("o", 0.0, ctl("aws.ec2.no_open_admin_ports", "fail", ("sg-old", "fail"), ("sg-ok", "pass")))
    new = res("n", 100.0, ctl("aws.ec2.no_open_admin_ports", "pass", ("sg-ok", "pass")))
    d = diff_results(old, new, windowed=())
    assert gone(d) == {"disappeared": [("aws.ec2.no_open_admin_ports", "sg-old")]}
    assert d["disappeared"][0] == {"control": "aws.ec2.no_open_admin_ports", "resource": "sg-old",
                                   "old": "fail", "new": None, "detail": "sg-old is fail"}
    assert not d["stopped_failing"]


def test_resource_replaced_by_a_new_one_is_disappeared_and_new() -> None:
    """The demo's moto ids change on each run: the same open security group, a new id."""
    old = res("o", 0.0, ctl("aws.ec2.no_open_admin_ports", "fail", ("sg-ab8d", "fail")))
    new = res("n", 0.0, ctl("aws.ec2.no_open_admin_ports", "fail", ("sg-b6a2", "fail")))
    d = diff_results(old, new, windowed=())
    assert gone(d) == {"disappeared": [("aws.ec2.no_open_admin_ports", "sg-ab8d")]}
    assert pairs(d["started_failing"]) == [("aws.ec2.no_open_admin_ports", "sg-b6a2", None, "fail")]
    assert d["new_resources"] == [{"resource": "sg-b6a2", "controls": ["aws.ec2.no_open_admin_ports"],
                                   "failing": ["aws.ec2.no_open_admin_ports"]}]


def test_pull_request_out_of_the_window_left_it() -> None:
    old = res("o", 0.0, ctl(PR, "fail", ("acme/ui#7", "fail"), ("acme/api#3", "pass")))
    new = res("n", 100.0, ctl(PR, "pass", ("acme/api#9", "pass")))
    d = diff_results(old, new)          # the catalog says github.changes_reviewed is windowed
    assert gone(d) == {"left_window": [(PR, "acme/ui#7")]}
    assert d["left_window"][0]["old"] == "fail" and d["left_window"][0]["new"] is None
    assert PR in windowed_controls()
    # the same absence in a control that is not windowed is a disappearance
    assert gone(diff_results(old, new, windowed=())) == {"disappeared": [(PR, "acme/ui#7")]}


def test_absent_because_the_new_scan_could_not_judge_is_not_judged() -> None:
    old = res("o", 0.0, ctl("aws.kms.rotation", "fail", ("key-1", "fail")),
              ctl("okta.mfa_enrolled", "fail", ("alice", "fail")))
    new = res("n", None, ctl("aws.kms.rotation", "error", ("aws:1:eu-west-1", "error")),
              ctl("okta.mfa_enrolled", "skipped"))
    d = diff_results(old, new, windowed=())
    assert gone(d) == {"not_judged": [("aws.kms.rotation", "key-1"), ("okta.mfa_enrolled", "alice")]}


def test_not_applicable_readiness_change_is_explained() -> None:
    old = res("o", 50.0, ctl(PR, "fail", ("acme/ui#7", "fail")), ctl("aws.iam.root_mfa", "pass"))
    new = res("n", 100.0, ctl(PR, "not_applicable"), ctl("aws.iam.root_mfa", "pass"))
    r = diff_results(old, new)["readiness"]
    assert r["explanation"] == (
        "readiness 50.0% → 100.0%: github.changes_reviewed became not_applicable (nothing to judge "
        "in its look-back window), which removes it from the denominator")
    assert r["denominator"] == [{"id": PR, "old": "fail", "new": "not_applicable",
                                 "effect": "removed", "why": r["explanation"].split(": ", 1)[1]}]
    assert r["delta"] == 50.0
    back = diff_results(new, old)["readiness"]
    assert back["explanation"] == ("readiness 100.0% → 50.0%: github.changes_reviewed was not_applicable "
                                   "and is now fail, which adds it to the denominator")
    verdict_too = res("n", 0.0, ctl(PR, "not_applicable"), ctl("aws.iam.root_mfa", "fail"))
    assert diff_results(old, verdict_too)["readiness"]["explanation"].endswith(
        "; and 1 control changed verdict (see the status changes)")
    plain = diff_results(old, res("n", 0.0, ctl(PR, "fail"), ctl("aws.iam.root_mfa", "fail")))
    assert plain["readiness"]["explanation"] is None and plain["readiness"]["denominator"] == []


def test_unchanged_rerun_lists_no_changes() -> None:
    old = res("20250301T000000Z", 50.0, ctl("aws.s3.encrypted", "fail", ("arn:aws:s3:::a", "fail")),
              ctl("aws.iam.root_mfa", "pass", ("root", "pass")))
    rerun = old.model_copy(update={"scan": old.scan.model_copy(update={
        "id": "another", "bundle": "20250302T000000Z",
        "started_at": old.scan.started_at + timedelta(days=1)})})
    d = diff_results(old, rerun)
    assert is_empty(d) and d["readiness"]["explanation"] is None
    assert d["new"]["bundle"] == "20250302T000000Z"


def test_demo_rerun_shows_the_window_not_a_fix() -> None:
    """What a second demo scan right after the first looks like: the merged pull request was
    judged by the first scan; the second's window holds nothing (its control is n/a)."""
    old = res("o", 37.0, ctl(PR, "fail", ("acme-rockets/telemetry-ui#7", "fail")),
              ctl("aws.s3.encrypted", "fail", ("arn:aws:s3:::m", "fail")))
    new = res("n", 37.8, ctl(PR, "not_applicable"),
              ctl("aws.s3.encrypted", "fail", ("arn:aws:s3:::m", "fail")))
    d = diff_results(old, new)
    assert gone(d) == {"left_window": [(PR, "acme-rockets/telemetry-ui#7")]}
    assert not d["fixed"] and not d["stopped_failing"] and not d["new_resources"]
    assert [(c["id"], c["old"], c["new"]) for c in d["status_changes"]] == [
        (PR, "fail", "not_applicable")]
    assert "removes it from the denominator" in d["readiness"]["explanation"]


def test_cmd_diff_json_carries_the_categories(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = write(tmp_path, res("20250301T000000Z", 50.0, ctl(PR, "fail", ("acme/ui#7", "fail")),
                              ctl("aws.ec2.x", "fail", ("sg-1", "fail"), ("sg-2", "fail"))))
    new = write(tmp_path, res("20250302T000000Z", 100.0, ctl(PR, "not_applicable"),
                              ctl("aws.ec2.x", "pass", ("sg-2", "pass"))))
    assert main(["diff", str(old), str(new), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert pairs(d["fixed"]) == [("aws.ec2.x", "sg-2", "fail", "pass")]
    assert pairs(d["disappeared"]) == [("aws.ec2.x", "sg-1", "fail", None)]
    assert pairs(d["left_window"]) == [(PR, "acme/ui#7", "fail", None)]
    assert d["not_judged"] == [] and "removes it from the denominator" in d["readiness"]["explanation"]
    assert main(["diff", str(old), str(new)]) == 0
    text = capsys.readouterr().out
    for needle in ("fixed", "disappeared (no longer present)", "left the look-back window",
                   "github.changes_reviewed became not_applicable"):
        assert needle in text
    assert "stopped failing" not in text     # sg-2 is listed once, as fixed
