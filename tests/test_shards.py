"""Sharded scans: `attest scan --shard I/N` on N machines, `attest merge` seals ONE bundle.

The end-to-end test runs real subprocesses against the demo (every source) with an AWS
Organization of three accounts in moto: an unsharded scan, three shard processes at once and their
merge, and an unsharded scan again, all in one output folder. The merged bundle must equal the
unsharded scan after it, where "equal" means exactly:

* the same controls with the same status, and the same findings (resource, status, detail, facts);
* the same source statuses;
* the same set of evidence files, and each file the same JSON once every *collection timestamp* is
  set aside: a string value that is an ISO-8601 time within the test's run (from the first scan's
  start to the last one's end), such as ``collected_at``, moto's ``LatestRestorableTime`` or
  GitHub's window ``until``. Every other value, ids and payloads included, must be equal.

The other tests run shards in this process against moto (faster), for what may go wrong: a shard
missing, a file changed, shards that do not belong together, and the command-line mistakes.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from attest.cli import main
from attest.errors import UsageError
from attest.manifest import read_manifest, verify
from attest.model import Status, parse_time, utcnow
from attest.shards import (SHARD_MANIFEST, ShardError, ShardSpec, find_shards, plan_merge,
                           shard_of, wait_for_night)
from attest.store import list_bundles
from attest.sources import source_names
from tests.collectors.aws_fixtures import member_client, organization
from tests.conftest import NOW

ROLE = "attest-audit"
ROOT = Path(__file__).resolve().parents[1]


def test_units_are_assigned_by_sha256_the_same_everywhere():
    # a fixed table: the assignment must never change between machines or versions
    assert [shard_of(u, 4) for u in ("github", "okta", "datadog", "manual", "aws:organization",
                                     "aws:123456789012", "aws:default")] == [3, 2, 1, 0, 3, 3, 1]
    assert ShardSpec.parse("0/4") == ShardSpec(0, 4) and ShardSpec.parse("3/4").name == "3-of-4"
    for bad in ("3/2", "2/2", "1/0", "-1/2", "x", "1/2/3", ""):
        with pytest.raises(UsageError):
            ShardSpec.parse(bad)


# --- end to end, real processes ------------------------------------------------------------------

def _bundle_evidence(bundle: Path) -> dict[str, Any]:
    files = read_manifest(bundle)["files"]
    return {f["path"]: json.loads((bundle / f["path"]).read_text(encoding="utf-8"))
            for f in files if f["path"].startswith("evidence/")}


def _without_collection_times(value: Any, start: datetime, end: datetime) -> Any:
    """``value`` with every string that is an ISO-8601 time in [start, end] (or whole days after
    it) replaced by a mark."""
    if isinstance(value, dict):
        return {k: _without_collection_times(v, start, end) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_collection_times(v, start, end) for v in value]
    if isinstance(value, str) and len(value) >= 20 and value[4:5] == "-" and "T" in value:
        try:
            when = parse_time(value)
        except ValueError:
            return value
        if when is None:
            return value
        for days in range(0, 400):   # the collection time, or a window's end a whole number of
            shift = timedelta(days=days)                  # days after it (PagerDuty's `until`)
            if start + shift <= when <= end + shift:
                return f"<collection time + {days} days>" if days else "<collection time>"
    return value


def _findings(results: dict[str, Any]) -> dict[str, tuple[str, list]]:
    return {c["id"]: (c["status"], sorted(json.dumps(f, sort_keys=True) for f in c["findings"]))
            for c in results["controls"]}


@pytest.fixture(scope="module")
def estate(demo, tmp_path_factory):
    """The demo, with an AWS Organization (the demo's account manages two members), the role
    attest assumes created in each account (as a StackSet would), and a config file for it."""
    url = demo.config["aws"]["endpoint_url"]
    for name, value in demo.sources["aws"].env.items():
        os.environ.setdefault(name, value)
    ids = organization(url, ["payments", "sandbox"])
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ids['management']}:root"},
        "Action": "sts:AssumeRole"}]})
    from collectors.aws.demo import client
    client(url, "iam").create_role(RoleName=ROLE, AssumeRolePolicyDocument=trust)
    for member in ("payments", "sandbox"):
        member_client(url, ids[member], "iam").create_role(RoleName=ROLE,
                                                            AssumeRolePolicyDocument=trust)
    member_client(url, ids["payments"], "s3").create_bucket(Bucket="acme-payments-ledger")
    folder = tmp_path_factory.mktemp("sharded")
    from collectors.manual.demo import demo_signing_key
    key, public = demo_signing_key(folder / "keys")
    config = {**demo.config, "signing": {"private_key_path": str(key)},
              "aws": {**demo.config["aws"], "organization": {"role_name": ROLE}}}
    (folder / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    out = folder / "evidence"
    demo.prepare(out)
    # moto issues a requested certificate 60 s after it was requested (when next described):
    # this module's scans span about that long, and must all see one state. Issued from the start.
    from moto import settings as moto_settings
    wait, moto_settings.ACM_VALIDATION_WAIT = moto_settings.ACM_VALIDATION_WAIT, 0
    try:
        yield {"config": folder / "config.yaml", "out": out, "public": public, "ids": ids}
    finally:
        moto_settings.ACM_VALIDATION_WAIT = wait


def _attest(estate: dict[str, Any], *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "attest", *args, "--config",
                             str(estate["config"]), "--dir", str(estate["out"])],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _run(estate: dict[str, Any], *args: str) -> subprocess.CompletedProcess:
    p = _attest(estate, *args)
    stdout, stderr = p.communicate(timeout=300)
    return subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr)


def test_three_shard_processes_merge_into_the_bundle_an_unsharded_scan_makes(estate):
    start = utcnow()
    out, n = estate["out"], 3
    first = _run(estate, "scan", "--format", "json")
    assert first.returncode == 1, first.stderr       # the demo fails some controls, by design
    shards = [_attest(estate, "scan", "--shard", f"{i}/{n}") for i in range(n)]
    done = [p.communicate(timeout=300) + (p.returncode,) for p in shards]
    assert [code for _, _, code in done] == [0] * n, [err[-800:] for _, err, _ in done]

    # the shards: one folder each, not bundles; the folder still verifies as before
    (night,) = [p.name for p in (out / ".shards").iterdir()]
    folders = sorted((out / ".shards" / night).iterdir())
    assert [f.name for f in folders] == [f"{i}-of-{n}" for i in range(n)]
    manifests = [json.loads((f / SHARD_MANIFEST).read_text()) for f in folders]
    units = manifests[0]["units"]["all"]
    ids = estate["ids"]
    assert set(units) == {"aws:organization", *(f"aws:{ids[k]}" for k in
                                                ("management", "payments", "sandbox")),
                          *(s for s in source_names() if s != "aws")}   # the demo has them all
    assert sorted(u for m in manifests for u in m["units"]["covered"]) == sorted(units)
    assert all(m["units"]["all"] == units for m in manifests)
    for m in manifests:
        assert all(shard_of(u, n) == m["shard"]["index"] for u in m["units"]["covered"])
        assert m["scan_id"] and m["started_at"] and m["night"] == night
    assert [b.name for b in list_bundles(out)] == [json.loads(first.stdout)["scan"]["bundle"]]
    assert verify(out)[1] == []

    merged = _run(estate, "merge", "--format", "json")
    assert merged.returncode == 1, merged.stderr
    after = _run(estate, "scan", "--format", "json")
    assert after.returncode == 1, after.stderr
    end = utcnow()

    b1, b2, b3 = list_bundles(out)
    assert not (out / ".shards" / night).exists(), "merged shards are removed"
    # in the chain, signed, verified as a whole by the CLI
    assert read_manifest(b2)["previous"]["bundle"] == b1.name
    assert read_manifest(b3)["previous"]["bundle"] == b2.name
    check = subprocess.run([sys.executable, "-m", "attest", "verify", str(out), "--public-key",
                            str(estate["public"])], cwd=ROOT, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    # the shards' own records travel in the bundle (listed in its manifest)
    listed = {f["path"] for f in read_manifest(b2)["files"]}
    for i, m in enumerate(manifests):
        assert f"shards/{i}-of-{n}/shard.json" in listed and f"shards/{i}-of-{n}/scan.log" in listed
        kept = json.loads((b2 / f"shards/{i}-of-{n}/shard.json").read_text())
        assert kept["scan_id"] == m["scan_id"]

    # equal to the unsharded scan, as defined in the module docstring
    merged_results = json.loads(merged.stdout)
    unsharded = json.loads(after.stdout)
    assert merged_results["scan"]["bundle"] == b2.name
    assert _findings(merged_results) == _findings(unsharded)
    assert merged_results["scan"]["sources"] == unsharded["scan"]["sources"]
    assert merged_results["summary"]["counts"] == unsharded["summary"]["counts"]
    e2, e3 = _bundle_evidence(b2), _bundle_evidence(b3)
    assert sorted(e2) == sorted(e3)
    assert any("aws/organization/global" in p for p in e2)
    for path in e2:
        assert _without_collection_times(e2[path], start, end) == \
            _without_collection_times(e3[path], start, end), path
    # and nothing vacuous: every control judged, the accounts each have their verdicts
    assert merged_results["summary"]["counts"]["error"] == 0
    s3 = dict(_findings(merged_results))["aws.s3.encrypted"][1]
    assert any("acme-payments-ledger" in f for f in s3)


# --- in this process, against moto ---------------------------------------------------------------

@pytest.fixture
def org_config(moto, tmp_path):
    """An AWS-only config (the organization of two members) in a file; returns (loaded, ids)."""
    from attest.config import load_config
    ids = organization(moto, ["payments", "sandbox"])
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({
        "output_dir": "evidence",
        "aws": {"endpoint_url": moto, "regions": ["us-east-1"],
                "organization": {"role_name": ROLE}}}), encoding="utf-8")
    return load_config(path), ids


def _shards(config, n: int, only: list[int]) -> Path:
    from attest.scan import run_shard
    for i in only:
        run_shard(config, ShardSpec(i, n), now=NOW)
    return config.output_dir


def test_a_missing_shard_seals_with_its_units_error_never_pass(org_config):
    from attest.scan import run_merge
    config, ids = org_config
    n = 2
    absent = shard_of("aws:organization", n)     # the shard that owns the account list
    out = _shards(config, n, [i for i in range(n) if i != absent])
    nights = find_shards(out)
    (shards,) = nights.values()
    plan = plan_merge(shards)
    assert plan.missing_shards == [absent]
    lost = sorted(plan.missing_units)
    assert "aws:organization" in lost
    outcome = run_merge(config, shards, out_dir=out)
    assert outcome.exit_code == 3
    results = outcome.results
    assert results.scan.sources["aws"].status == "failed"
    assert f"shard {absent}-of-{n} is missing" in results.scan.sources["aws"].detail
    for control in (c for c in results.controls if c.source == "aws"):
        errors = {f.resource for f in control.findings if f.status is Status.ERROR}
        assert set(lost) <= errors, control.id
        assert control.status is not Status.PASS
    assert verify(out)[1] == []
    assert not list((out / ".shards").iterdir())


def test_a_changed_shard_file_is_refused_in_one_line(org_config, capsys):
    config, _ = org_config
    out = _shards(config, 2, [0, 1])
    shard = next(p for p in (out / ".shards").glob("*/*") if list(p.glob("evidence/**/*.json")))
    evidence = next(shard.glob("evidence/**/*.json"))
    evidence.write_bytes(evidence.read_bytes().replace(b"\n}", b"\n }", 1))   # one byte more
    capsys.readouterr()   # what collecting the shards logged (an earlier test may log to stderr)
    code = main(["merge", "--config", str(config.path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3
    assert len(err) == 1 and "changed since the shard was written" in err[0], err
    assert list_bundles(out) == [] and shard.is_dir(), "nothing sealed, nothing removed"


def test_shards_that_do_not_belong_together_are_refused(org_config):
    config, _ = org_config
    out = _shards(config, 2, [0])
    _shards(config, 3, [1])
    (shards,) = find_shards(out).values()
    with pytest.raises(ShardError, match="split differently"):
        plan_merge(shards)
    first = shards[0]
    twice = [first, type(first)(first.folder, first.manifest, first.manifest_bytes)]
    with pytest.raises(ShardError, match="given twice"):
        plan_merge(twice)
    wrong = dict(first.manifest, units={"all": ["x"], "covered": [
        u for u in ("github", "okta", "datadog") if shard_of(u, 2) != 0][:1]})
    with pytest.raises(ShardError, match="belongs to shard"):
        plan_merge([type(first)(first.folder, wrong, b"")])


def test_a_shard_is_written_once_and_merged_only_with_its_own_config(org_config, tmp_path):
    from attest.config import load_config
    from attest.scan import run_merge, run_shard
    config, _ = org_config
    out = _shards(config, 1, [0])
    with pytest.raises(UsageError, match="written already"):
        run_shard(config, ShardSpec(0, 1), now=NOW)
    other = tmp_path / "other.yaml"
    other.write_text(config.path.read_text() + "controls: {aws.rds.backups: {min_days: 30}}\n")
    (shards,) = find_shards(out).values()
    with pytest.raises(UsageError, match="collected with another config"):
        run_merge(load_config(other), shards, out_dir=out)


@pytest.mark.parametrize("argv, needle", [
    (["scan", "--shard", "3/2"], "--shard 3/2: I must be 0 to 1"),
    (["scan", "--shard", "2/2"], "--shard 2/2: I must be 0 to 1"),
    (["scan", "--shard", "one/two"], "expected I/N"),
    (["scan", "--shard", "0/2", "--demo"], "--shard and --demo"),
    (["merge", "--wait", "soon"], "expected a whole number of seconds"),
    (["merge", "--shards", "nowhere"], "--shards nowhere: not a shard folder"),
])
def test_shard_mistakes_are_one_line_and_exit_2(argv, needle, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ATTEST_CONFIG", raising=False)
    (tmp_path / "config.yaml").write_text("output_dir: evidence\n")
    code = main([*argv, "--config", "config.yaml"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and needle in err[0], err


def test_merge_with_no_shards_says_so_and_exits_3(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").write_text("output_dir: evidence\n")
    assert main(["merge", "--config", "config.yaml"]) == 3
    assert "no shards to merge" in capsys.readouterr().err


def test_merge_waits_for_every_shard_of_the_night(tmp_path):
    night = tmp_path / ".shards" / "2026-11-22"
    now, slept = [0.0], []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds
        index = len(slept) - 1
        if index < 2:   # a shard arrives while the merge waits
            (night / f"{index}-of-2").mkdir(parents=True)
            (night / f"{index}-of-2" / SHARD_MANIFEST).write_text("{}")

    assert wait_for_night(tmp_path, "2026-11-22", 600, sleep=sleep, clock=lambda: now[0])
    assert slept == [15.0, 15.0]
    assert not wait_for_night(tmp_path, "2026-11-23", 20, sleep=sleep, clock=lambda: now[0])
    assert slept[2:] == [15.0, 5.0]
