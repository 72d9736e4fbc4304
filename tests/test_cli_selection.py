"""`attest scan --only` and `--controls` through the command line, on the demo: what runs, what
is judged, what the bundle holds, and the mistakes (one line, exit 2, before any work)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from attest.cli import main
from attest.sources import source_names
from attest.store import list_bundles
from controls import load_catalog
from tests.test_cli_mistakes import PYDANTIC, one_error_line

NOT_SELECTED = "skipped: not selected for this run (--only / --controls)"


def scan(argv: list[str], out: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict, Path]:
    """``attest scan --demo --dir OUT --format json ARGV``: (exit code, results.json, bundle)."""
    code = main(["scan", "--demo", "--dir", str(out), "--format", "json", *argv])
    printed = json.loads(capsys.readouterr().out)
    (bundle,) = list_bundles(out)
    stored = json.loads((bundle / "results.json").read_text(encoding="utf-8"))
    assert printed["controls"] == stored["controls"]
    return code, stored, bundle


def evidence_sources(bundle: Path) -> set[str]:
    """The sources the bundle holds evidence of: its evidence folders, and its manifest's files."""
    folders = {p.name for p in (bundle / "evidence").iterdir()}
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    listed = {f["path"].split("/")[1] for f in manifest["files"]
              if f["path"].startswith("evidence/")}
    assert folders == listed, (folders, listed)
    return folders


def test_only_runs_those_sources_and_skips_the_others_saying_why(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("ATTEST_CONFIG", raising=False)
    code, results, bundle = scan(["--only", "github,okta"], tmp_path / "out", capsys)
    assert code == 1                       # the demo's GitHub and Okta fail some controls
    sources = results["scan"]["sources"]
    assert {s: v["status"] for s, v in sources.items()} == {
        s: "collected" if s in ("github", "okta") else "skipped" for s in source_names()}
    assert {sources[s]["detail"] for s in source_names() if s not in ("github", "okta")} == \
        {NOT_SELECTED}
    assert results["scan"]["selection"] == {"only": ["github", "okta"]}
    # every control of the two sources is judged, and no other
    assert sorted(c["id"] for c in results["controls"]) == sorted(
        c.id for c in load_catalog() if c.source in ("github", "okta"))
    assert evidence_sources(bundle) == {"github", "okta"}


def test_controls_judges_exactly_those_controls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("ATTEST_CONFIG", raising=False)
    chosen = ["github.org_2fa_required", "datadog.log_retention"]
    code, results, bundle = scan(["--controls", ",".join(chosen)], tmp_path / "out", capsys)
    assert sorted(c["id"] for c in results["controls"]) == sorted(chosen)
    assert {c["id"]: c["status"] for c in results["controls"]} == {
        "github.org_2fa_required": "pass", "datadog.log_retention": "fail"}
    assert code == 1
    assert results["scan"]["selection"] == {"controls": sorted(chosen)}
    sources = results["scan"]["sources"]
    assert {s for s, v in sources.items() if v["status"] == "collected"} == {"github", "datadog"}
    assert {v["detail"] for s, v in sources.items() if v["status"] != "collected"} == {NOT_SELECTED}
    assert evidence_sources(bundle) == {"github", "datadog"}


@pytest.mark.parametrize("argv, expected", [
    (["--only", "github,azure"],
     f"--only azure: unknown source (known: {', '.join(source_names())})"),
    (["--controls", "github.org_2fa_required,aws.s3.encryptd"],
     "--controls aws.s3.encryptd: unknown control id (see `attest controls`)"),
    (["--only", " , "], "--only: give one or more names, comma-separated"),
    (["--only", "github", "--controls", "okta.mfa_required"],
     "--controls okta.mfa_required: its source okta is not in --only"),
    (["--shard", "0/2", "--only", "github"],
     "--shard with --only or --controls: a sharded night collects every source, so that its "
     "merge is a whole scan; drop one of them"),
    (["--shard", "1/2", "--controls", "aws.s3.encrypted"],
     "--shard with --only or --controls: a sharded night collects every source, so that its "
     "merge is a whole scan; drop one of them"),
], ids=["unknown source", "unknown control", "no names", "control outside --only",
        "shard with only", "shard with controls"])
@pytest.mark.parametrize("demo", [False, True], ids=["config", "demo"])
def test_a_selection_mistake_is_one_line_and_exit_2_before_any_work(
        argv: list[str], expected: str, demo: bool, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Found before the demo starts or anything is written: the output folder is not even
    made."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ATTEST_CONFIG", raising=False)
    (tmp_path / "c.yaml").write_text("output_dir: ev\n", encoding="utf-8")
    where = ["--demo"] if demo else ["--config", "c.yaml"]
    code = main(["scan", *where, "--dir", "out", *argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert one_error_line(err) == [f"attest: error: {expected}"], err
    assert not any(word in err for word in PYDANTIC) and "Traceback" not in err
    assert not (tmp_path / "out").exists() and not (tmp_path / "ev").exists()
