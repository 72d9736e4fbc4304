"""The demo's AWS estate keeps its resource ids from run to run: moto's random source is seeded
before the estate is created, so a re-run of `attest scan --demo` into the same folder shows no
AWS resource as new in the report's changes panel."""
from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from attest.config import load_config
from attest.demo import start_demo
from collectors.aws import demo as seed_aws
from attest.scan import run_scan
from reports.diff import diff_results
from tests.collectors.aws_fixtures import AWS_CONTROLS, NOW, collect, evaluate

# ids moto invents (the names the demo chooses, like acme-bastion, are stable anyway)
MOTO_ID = re.compile(r"\b(?:vpc|sg|i|subnet|igw|rtb|acl|eni|db|cluster)-[0-9a-f]{8,}\b|"
                     r"key/[0-9a-f-]{36}|detector/[0-9a-f]{32}|AKIA[0-9A-Z]{16}")


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name, value in seed_aws.ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


def _fresh_estate_resources() -> dict[str, list[str]]:
    """A new moto server, the demo estate seeded into it, collected and judged: the resources
    of each AWS control's findings."""
    server, url = seed_aws.start_server()
    try:
        seed_aws.reset(url)
        seed_aws.seed(url, seed_aws.REGIONS, NOW)
        records = collect(url, list(seed_aws.REGIONS))
    finally:
        server.stop()
    return {cid: sorted(f.resource for f in evaluate(cid, records).findings) for cid in AWS_CONTROLS}


def test_two_fresh_seeds_give_the_same_resource_ids(aws_env: None) -> None:
    first = _fresh_estate_resources()
    second = _fresh_estate_resources()
    assert first == second
    # the comparison covers ids moto makes up, not only names the demo chose
    made_up = [r for rs in first.values() for r in rs if MOTO_ID.search(r)]
    assert any("security-group/sg-" in r for r in made_up)
    assert any(":vpc/vpc-" in r for r in made_up)
    assert any(":key/" in r for r in made_up)
    assert any("detector/" in r for r in made_up)


def _demo_run(out: Path, now):
    demo = start_demo(now)
    try:
        config = load_config(None, overrides=demo.config)
        return run_scan(config, out_dir=out, now=now, demo=True), demo.expected
    finally:
        demo.stop()


def test_rerun_of_the_demo_shows_no_new_aws_resources(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first, _ = _demo_run(out, NOW)
    second, expected = _demo_run(out, NOW + timedelta(hours=1))
    assert second.previous is not None and second.previous.scan.bundle == first.bundle.name

    diff = diff_results(first.results, second.results)
    aws_new = [n["resource"] for n in diff["new_resources"]
               if n["resource"].startswith(("arn:aws", "aws:")) or MOTO_ID.search(n["resource"])]
    assert aws_new == []
    aws_changes = [e for kind in ("started_failing", "stopped_failing", "started_erroring",
                                  "stopped_erroring") for e in diff[kind]
                   if e["control"].startswith("aws.")]
    assert aws_changes == []
    # the changes panel of the second report, as a reader sees it
    html = (second.bundle / "report.html").read_text(encoding="utf-8")
    panel = re.search(r'<section class="card" id="changes">(.*?)</section>', html, re.S).group(1)
    assert "arn:aws" not in panel and not MOTO_ID.search(panel)
    # the seeded AWS truth still holds on the re-run (github.changes_reviewed judges only the
    # changes merged since the previous scan, so the GitHub demo's truth is for a first scan)
    got = {c.id: c.status.value for c in second.results.controls}
    aws_expected = {cid: s for cid, s in expected.items() if cid.startswith("aws.")}
    assert aws_expected == seed_aws.EXPECTED
    assert {cid: got[cid] for cid in aws_expected} == aws_expected
