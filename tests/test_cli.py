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
    printed = capsys.readouterr().out
    first = json.loads(printed)
    # what --format json prints is the bundle's results.json, byte for byte
    from attest.store import list_bundles
    bundle = list_bundles(out)[-1]
    assert printed.encode("utf-8") == (bundle / "results.json").read_bytes()
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
    # windowed controls (github.changes_reviewed, pagerduty.incident_acknowledged) look back only
    # to the previous scan: nothing new since -> n/a; every other failure is now excepted
    from controls import catalog_by_id
    windowed = {cid for cid in failing if catalog_by_id()[cid].population == "windowed"}
    assert windowed == {"github.changes_reviewed", "pagerduty.incident_acknowledged"}
    assert {statuses[cid] for cid in windowed} == {"not_applicable"}
    assert {statuses[cid] for cid in failing if cid not in windowed} == {"excepted"}
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
    assert actions and all(
        a.split(":")[1].startswith(("Describe", "Get", "List", "BatchGet", "Generate"))
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
        f"attest: error: --dir {afile}: is a file; give a folder"


# --- the parser: one package, one meaning per flag, help for everything ---------------------------

def _parsers():
    import argparse

    from attest.cli import build_parser

    def walk(parser):
        yield parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for child in action.choices.values():
                    yield from walk(child)
    return list(walk(build_parser()))


def test_every_argument_of_every_command_is_explained() -> None:
    missing = [f"{p.prog}: {a.option_strings or a.dest}" for p in _parsers() for a in p._actions
               if not a.help or not a.help.strip()]
    assert not missing
    assert all(p.description for p in _parsers()[1:]), "every command has a description"


def test_bare_attest_prints_usage_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("usage: attest")
    assert "COMMAND" in captured.err and "exit codes:" in captured.err


def test_help_lists_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    from attest.cli import EXIT_CODES
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for code, text in EXIT_CODES.items():
        assert f"  {code:<4} {text}" in out


@pytest.mark.parametrize("argv", [
    ["-v", "--log-format", "json", "--config", "c.yaml", "history", "--dir", "ev"],
    ["history", "--dir", "ev", "-v", "--log-format", "json", "--config", "c.yaml"],
    ["-v", "history", "--log-format=json", "--dir", "ev", "--config=c.yaml"],
])
def test_global_flags_before_or_after_the_command(argv: list[str]) -> None:
    from attest.cli import build_parser
    args = build_parser().parse_args(argv)
    assert (args.verbose, args.log_format, args.config, args.dir) == (True, "json", "c.yaml", "ev")


def test_global_flags_before_keep_their_value_after_a_command_without_them() -> None:
    from attest.cli import build_parser
    args = build_parser().parse_args(["-v", "--log-format", "json", "permissions", "aws"])
    assert args.verbose is True and args.log_format == "json" and args.config is None


def test_scan_out_is_an_alias_of_dir() -> None:
    from attest.cli import build_parser
    parser = build_parser()
    assert parser.parse_args(["scan", "--out", "x"]).dir == parser.parse_args(["scan", "--dir", "x"]).dir


def test_config_given_before_the_command_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from attest.config import load_config
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ATTEST_CONFIG", raising=False)
    (tmp_path / "c.yaml").write_text("output_dir: ev\n", encoding="utf-8")
    bundle = run_scan(load_config(tmp_path / "c.yaml"), out_dir=tmp_path / "ev", now=NOW).bundle
    assert main(["--config", "c.yaml", "history", "--json"]) == 0
    assert [r["bundle"] for r in json.loads(capsys.readouterr().out)] == [bundle.name]


def test_commands_read_the_newest_bundle_of_dir_without_a_target(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from attest.config import load_config
    (tmp_path / "c.yaml").write_text("output_dir: ev\n", encoding="utf-8")
    config = load_config(tmp_path / "c.yaml")
    first = run_scan(config, out_dir=tmp_path / "ev", now=NOW).bundle
    second = run_scan(config, out_dir=tmp_path / "ev", now=NOW.replace(hour=3)).bundle
    ev = str(tmp_path / "ev")
    assert main(["verify", "--dir", ev]) == 0
    assert "OK: 2 bundle(s) verified" in capsys.readouterr().out
    assert main(["diff", "--dir", ev, "--json"]) == 0
    diff = json.loads(capsys.readouterr().out)
    assert (diff["old"]["bundle"], diff["new"]["bundle"]) == (first.name, second.name)
    out = tmp_path / "fresh.json"
    assert main(["evaluate", "--dir", ev, "--out", str(out)]) == 1
    assert json.loads(out.read_text(encoding="utf-8"))["scan"]["re_evaluated_from"] == second.name
    assert main(["report", "--dir", ev, "--out", str(tmp_path / "r.html")]) == 0
    assert second.name in (tmp_path / "r.html").read_text(encoding="utf-8")
