"""The populations of the auditor export and `attest sample`, on a 30-night history made by the
real demo scan (tests/history.py) with AWS, GitHub and Okta.

The history merges pull requests (one at the very second of a scan, one after a night's scan,
one on a skipped night, one into a feature branch, one after the period's last scan), creates,
suspends and deactivates Okta users and grants admin roles, creates and deletes IAM users and
keys, skips two nights, and makes one night's GitHub read and one night's Okta read fail. Each
population must hold exactly what the helper did in the period, once, naming the first bundle
whose read recorded it, with no gap where a read failed and the next good read caught up.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from datetime import date, datetime, time, timedelta, timezone

import pandas as pd
import pytest

from attest.cli import main
from attest.manifest import read_manifest
from attest.model import isoformat
from reports.export import export_period
from tests.history import (github_search_denied, iam_change, make_history, merge_pull, okta_event,
                           okta_logs_denied)

START = date(2026, 9, 1)
NIGHTS = 30
END = START + timedelta(days=NIGHTS - 1)
SKIP = {5, 17}
H = timedelta(hours=1)
PROD = "AWS Production Admins"


def t(night: int, hour: int = 1, minute: int = 0) -> datetime:
    return datetime.combine(START + timedelta(days=night), time(hour, minute, tzinfo=timezone.utc))


EVENTS = {
    1: [merge_pull(t(1), "launch-control", 101, "alice-launch", (("bob-orbit", -2 * H),))],
    # merged at the second night 2's scan starts: nights 2 and 3 both read it, one row
    2: [merge_pull(t(2, 2), "flight-software", 201, "carol-thrust", (("dmitri-fuel", -H),)),
        iam_change(t(2), "create user", "dave"), iam_change(t(2, 1, 10), "create key", "dave")],
    3: [okta_event(t(3), "user.lifecycle.create", "hank.new", create=True),
        okta_event(t(3, 1, 5), "user.lifecycle.activate", "hank.new")],
    4: [merge_pull(t(4, 15), "telemetry-ui", 30, "eve-guidance")],        # after the scan, no review
    5: [merge_pull(t(5), "ground-station", 12, "dmitri-fuel", (("eve-guidance", -H),))],  # skipped
    7: [okta_event(t(7), "user.account.privilege.grant", "hank.new", role="Super administrator")],
    8: [iam_change(t(8), "delete key", "dave")],
    9: [merge_pull(t(9), "web-portal", 50, "bob-orbit", (("alice-launch", -H),))],  # read fails
    10: [merge_pull(t(10), "mission-planner", 77, "bob-orbit", base="feature/trajectory")],
    11: [okta_event(t(11), "user.lifecycle.deactivate", "zoe.muller", status="DEPROVISIONED")],
    12: [okta_event(t(12), "group.user_membership.add", "hank.new", group=PROD),
         okta_event(t(12, 1, 5), "group.user_membership.add", "hank.new", group="Marketing")],
    13: [iam_change(t(13), "create user", "erin-ops"),
         iam_change(t(13, 1, 5), "create key", "erin-ops")],
    14: [merge_pull(t(14), "payload-sim", 3, "carol-thrust", (("bob-orbit", H),),
                    merged_by="bob-orbit")],                              # approved after the merge
    16: [iam_change(t(16), "delete user", "dave")],
    17: [okta_event(t(17), "user.lifecycle.suspend", "hank.new", status="SUSPENDED"),
         iam_change(t(17), "create and delete user", "temp-contractor")],   # a skipped night
    20: [merge_pull(t(20), "launch-control", 102, "alice-launch", (("carol-thrust", -H),))],
    21: [okta_event(t(21), "user.account.privilege.revoke", "hank.new", role="Super administrator"),
         okta_event(t(21, 1, 30), "group.user_membership.remove", "hank.new", group=PROD)],
    23: [iam_change(t(23), "create key", "alice")],
    25: [okta_event(t(25), "user.account.privilege.grant", "bob.stone", role="Super administrator",
                    result="FAILURE")],
    27: [iam_change(t(27), "delete user", "erin-ops")],
    # after the period's last scan (night 29, 02:00): the next scan would record them
    29: [merge_pull(t(29, 15), "flight-software", 202, "carol-thrust", (("alice-launch", -H),)),
         okta_event(t(29, 15), "user.lifecycle.create", "ivy.late", create=True)],
}
FAULTS = {9: [github_search_denied()], 11: [okta_logs_denied()]}


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    out = tmp_path_factory.mktemp("populations") / "evidence"
    h = make_history(out, START, NIGHTS, SKIP, {}, sources=("aws", "github", "okta"),
                     events=EVENTS, faults=FAULTS,
                     overrides={"aws": {"regions": ["us-east-1"]}})   # IAM is global: one region
    return {**h, "out": out}


@pytest.fixture(scope="module")
def export(history, tmp_path_factory):
    dest = tmp_path_factory.mktemp("export") / "audit.zip"
    path = export_period(history["out"], START, END, dest, now=datetime(2026, 10, 2, 9, 0,
                                                                        tzinfo=timezone.utc))
    zf = zipfile.ZipFile(path)
    root = zf.namelist()[0].split("/")[0]
    return {"zip": zf, "root": root, "path": path}


def _read(export, name: str) -> bytes:
    return export["zip"].read(f"{export['root']}/{name}")


def _csv(export, name: str) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(_read(export, f"populations/{name}.csv")), dtype=str,
                       keep_default_na=False)


def _scan(history, night: int) -> dict:
    return next(s for s in history["scans"] if s["at"] == t(night, 2))


def _recorded_by(history, evidence: str, when: datetime) -> str | None:
    """The first bundle whose good read of ``evidence`` holds ``when`` (the helper's windows)."""
    from tests.history import WINDOWED
    closed = WINDOWED[evidence][1]
    for scan in history["scans"]:
        window = scan["windows"].get(evidence)
        if window and window[0] <= when and (when <= window[1] if closed else when < window[1]):
            return scan["bundle"].name
    return None


def _events(history, population: str) -> list[dict]:
    return [e for e in history["events"] if e["population"] == population]


def test_the_history_is_what_the_test_asked_for(history):
    assert len(history["scans"]) == NIGHTS - len(SKIP)
    assert _scan(history, 9)["windows"]["github.merged_pulls"] is None          # the failed read
    assert _scan(history, 11)["windows"]["okta.system_log"] is None
    assert _scan(history, 9)["statuses"]["github.changes_reviewed"] == "error"
    assert _scan(history, 10)["statuses"]["github.changes_reviewed"] == "pass"  # caught up
    assert _scan(history, 6)["statuses"]["github.changes_reviewed"] == "fail"   # #30, after n4
    assert len(history["events"]) == sum(len(v) for v in EVENTS.values())


def test_changes_are_the_merges_of_the_period_once_each(history, export):
    rows = _csv(export, "changes")
    expected = {}
    for e in _events(history, "changes"):
        bundle = _recorded_by(history, "github.merged_pulls", e["at"])
        if e["default_branch"] and bundle is not None and START <= e["at"].date() <= END:
            expected[(e["repository"], str(e["number"]))] = (bundle, e)
    got = {(r["repository"], r["number"]): r for r in rows.to_dict("records")}
    assert set(got) == set(expected)
    assert len(rows) == len(got)                                     # no duplicates
    for key, (bundle, e) in expected.items():
        row = got[key]
        assert row["bundle"] == bundle, key
        assert row["merged_at"] == isoformat(e["at"]) and row["author"] == e["author"], key
        assert row["merged_by"] == e["merged_by"], key
        assert row["approvers"] == "; ".join(who for who, _ in e["approvers"]), key
        assert row["approved_at"] == "; ".join(isoformat(w) for _, w in e["approvers"]), key
        assert row["verdict"] == e["status"], key
        assert row["evidence_file"] == "evidence/github/acme-rockets/github.merged_pulls.json"
        manifest = {f["path"]: f["sha256"] for f in read_manifest(history["out"] / bundle)["files"]}
        assert row["evidence_sha256"] == manifest[row["evidence_file"]]
    # hand-checked facts, so that the comparison above cannot be vacuous
    assert len(got) == 7
    name = lambda night: _scan(history, night)["bundle"].name        # noqa: E731
    assert got[("acme-rockets/flight-software", "201")]["bundle"] == name(2)   # read twice
    assert got[("acme-rockets/ground-station", "12")]["bundle"] == name(6)     # skipped night 5
    assert got[("acme-rockets/web-portal", "50")]["bundle"] == name(10)        # night 9 failed
    assert got[("acme-rockets/telemetry-ui", "30")]["verdict"] == "fail"
    assert got[("acme-rockets/payload-sim", "3")]["verdict"] == "fail"         # approved after
    assert ("acme-rockets/mission-planner", "77") not in got                   # feature branch
    assert ("acme-rockets/flight-software", "202") not in got                  # after the last scan
    assert ("acme-rockets/launch-control", "42") not in got                    # before the period


def test_access_is_the_okta_events_of_the_period(history, export):
    rows = _csv(export, "access")
    expected = {}
    for e in _events(history, "access"):
        bundle = _recorded_by(history, "okta.system_log", e["at"])
        if e["result"] == "SUCCESS" and e["group"] in (None, PROD) and bundle is not None \
                and START <= e["at"].date() <= END:
            expected[e["uuid"]] = (bundle, e)
    got = {r["uuid"]: r for r in rows.to_dict("records")}
    assert set(got) == set(expected) and len(rows) == len(got)
    for uuid, (bundle, e) in expected.items():
        row = got[uuid]
        assert (row["bundle"], row["event_type"], row["user"]) == (bundle, e["event_type"],
                                                                   e["user"]), uuid
        assert row["published"] == isoformat(e["at"])
        assert row["group_or_role"] == (e["group"] or e["role"] or ""), uuid
        assert row["actor"] == "alice.ng@acmerockets.example"
        # the evidence behind the row: the bundle's okta.system_log file, with its manifest sha256
        assert row["evidence_file"].startswith("evidence/okta/"), uuid
        assert row["evidence_file"].endswith("/okta.system_log.json"), uuid
        manifest = {f["path"]: f["sha256"] for f in read_manifest(history["out"] / bundle)["files"]}
        assert row["evidence_sha256"] == manifest[row["evidence_file"]], uuid
    assert len(got) == 8
    by_type = {(r["event"], r["user"].split("@")[0]): r for r in got.values()}
    assert by_type[("user deactivated", "zoe.muller")]["bundle"] == _scan(history, 12)["bundle"].name
    assert by_type[("user suspended", "hank.new")]["bundle"] == _scan(history, 18)["bundle"].name
    assert by_type[("admin role granted", "hank.new")]["group_or_role"] == "Super administrator"
    assert ("user created", "ivy.late") not in by_type                        # after the last scan
    assert not any(r["group_or_role"] == "Marketing" for r in got.values())   # not in access_groups
    assert not any(r["user"].startswith("bob.stone") for r in got.values())   # a failed grant


def test_aws_access_compares_successive_credential_reports(history, export):
    rows = _csv(export, "aws_access")
    name = lambda night: _scan(history, night)["bundle"].name        # noqa: E731
    at = lambda night: isoformat(_scan(history, night)["at"])        # noqa: E731
    got = {(r["event"], r["user"], r["at"]): r for r in rows.to_dict("records")}
    assert set(got) == {
        ("user created", "dave", isoformat(t(2))),
        ("access key created", "dave", isoformat(t(2, 1, 10))),
        ("access key deleted", "dave", at(8)),
        ("user created", "erin-ops", isoformat(t(13))),
        ("access key created", "erin-ops", isoformat(t(13, 1, 5))),
        ("user deleted", "dave", at(16)),
        ("access key created", "alice", isoformat(t(23))),
        ("user deleted", "erin-ops", at(27)),
        ("access key deleted", "erin-ops", at(27)),
    }   # temp-contractor came and went between two scans: no report ever listed it
    assert len(rows) == len(got)
    assert got[("user created", "dave", isoformat(t(2)))]["bundle"] == name(2)
    deleted = got[("access key deleted", "dave", at(8))]
    assert (deleted["bundle"], deleted["last_seen_bundle"]) == (name(8), name(7))
    assert deleted["created"] == isoformat(t(2, 1, 10))
    gone = got[("user deleted", "dave", at(16))]
    assert gone["created"] == isoformat(t(2)) and gone["last_seen_bundle"] == name(15)
    assert all(r["account"] == "123456789012" for r in got.values())
    assert {r["evidence_file"] for r in got.values()} == {
        "evidence/aws/123456789012/global/aws.iam.credential_report.json"}


def test_failed_reads_are_named_and_caught_up_without_a_gap(history, export):
    readme = _read(export, "README.txt").decode()
    index = _read(export, "index.html").decode()
    n9, n11 = _scan(history, 9)["bundle"].name, _scan(history, 11)["bundle"].name
    assert f"the read of {n9} failed (denied); {_scan(history, 10)['bundle'].name} read from " \
           f"{isoformat(t(8, 2))}, catching it up: no gap" in readme
    assert f"the read of {n11} failed (denied)" in readme and "GAP" not in readme
    assert "recorded by the next scan, outside this period" in readme
    for text in (readme, index):
        for name in ("changes", "incidents", "access", "aws_access"):
            assert f"populations/{name}.csv" in text
    assert "pagerduty.incidents" in index and "the population is unknown, not empty" in index


def test_workbook_sheets_are_the_csvs_and_the_export_is_reproducible(history, export, tmp_path):
    book = pd.read_excel(io.BytesIO(_read(export, "coverage.xlsx")), sheet_name=None, dtype=str,
                         keep_default_na=False, engine="openpyxl")
    assert list(book) == ["summary", "findings", "daily", "changes", "incidents", "access",
                          "aws_access"]
    for name in ("changes", "access", "aws_access"):
        pd.testing.assert_frame_equal(book[name], _csv(export, name), check_dtype=False)
    again = zipfile.ZipFile(export_period(history["out"], START, END, tmp_path / "again.zip",
                                          now=datetime(2026, 10, 2, 9, 0, tzinfo=timezone.utc)))
    for name in ("coverage.xlsx", "populations/changes.csv", "populations/access.csv"):
        assert again.read(f"{export['root']}/{name}") == _read(export, name), name


def _sample(history, capsys, *args: str) -> tuple[int, str, str]:
    code = main(["sample", *args, "--from", str(START), "--to", str(END),
                 "--dir", str(history["out"])])
    out, err = capsys.readouterr()
    return code, out, err


def test_sample_is_reproducible_from_its_seed(history, export, capsys, tmp_path):
    code, first, _ = _sample(history, capsys, "access", "--size", "3", "--seed", "audit-2026",
                             "--format", "json")
    assert code == 0
    drawn = json.loads(first)
    assert drawn["seed"] == "audit-2026" and "sha256(seed UTF-8)" in drawn["algorithm"]
    assert (drawn["population_size"], drawn["size"]) == (8, 3)
    assert _sample(history, capsys, "access", "--size", "3", "--seed", "audit-2026",
                   "--format", "json")[1] == first
    other = json.loads(_sample(history, capsys, "access", "--size", "3", "--seed", "audit-2027",
                               "--format", "json")[1])
    assert [i["item"] for i in other["items"]] != [i["item"] for i in drawn["items"]]
    # the items are rows of the export's population, with their evidence
    population = _csv(export, "access").to_dict("records")
    assert drawn["population_sha256"] == hashlib.sha256(
        _read(export, "populations/access.csv")).hexdigest()
    for item in drawn["items"]:
        row = population[item["item"] - 1]
        assert {k: item[k] or "" for k in row} == row
    # the auditor re-performs it on the unzipped export: the same items
    export["zip"].extractall(tmp_path)
    code = main(["sample", "access", "--size", "3", "--seed", "audit-2026", "--format", "json",
                 "--from", str(START), "--to", str(END),
                 "--dir", str(tmp_path / export["root"] / "bundles")])
    assert code == 0 and capsys.readouterr().out == first
    # another process (its own hash seed) draws the same items
    env_cmd = [sys.executable, "-m", "attest", "sample", "access", "--size", "3", "--seed",
               "audit-2026", "--format", "json", "--from", str(START), "--to", str(END),
               "--dir", str(history["out"])]
    proc = subprocess.run(env_cmd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONHASHSEED": "12345"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == first


def test_sample_formats_and_a_size_larger_than_the_population(history, tmp_path, capsys):
    code, out, err = _sample(history, capsys, "changes", "--size", "50", "--seed", "s")
    assert code == 0
    assert "the changes population has 7 item(s), no more than --size 50: every item is taken" in err
    assert out.count("\n#") == 7 and "seed 's'" in out and "sha256 " in out
    dest = tmp_path / "sample.csv"
    code, out, _ = _sample(history, capsys, "aws_access", "--size", "4", "--seed", "s",
                           "--out", str(dest))
    assert code == 0 and "4 of 9 aws_access items" in out
    rows = pd.read_csv(dest, dtype=str, keep_default_na=False)
    assert len(rows) == 4 and set(rows["sample_seed"]) == {"s"}
    assert rows["pick"].tolist() == ["1", "2", "3", "4"]
    assert all(rows["evidence_sha256"].str.len() == 64)


@pytest.mark.parametrize("args, message", [
    (["nope", "--size", "3", "--seed", "s"],
     "nope: unknown population (known: changes, incidents, access, aws_access)"),
    (["changes", "--size", "0", "--seed", "s"], "--size 0: must be at least 1"),
    (["incidents", "--size", "3", "--seed", "s"],
     "the incidents population of 2026-09-01 to 2026-09-30 has no items, nothing to sample ..."),
])
def test_sample_mistakes_are_one_line(history, capsys, args, message):
    code, _, err = _sample(history, capsys, *args)
    lines = [line for line in err.splitlines() if line.startswith("attest: error: ")]
    assert code == 2 and len(lines) == 1
    text = lines[0].removeprefix("attest: error: ")
    assert text.startswith(message.removesuffix("...")) if message.endswith("...") else \
        text == message


def test_sample_of_a_tampered_period_is_refused(history, tmp_path, capsys):
    import shutil
    out = tmp_path / "copy"
    shutil.copytree(history["out"], out)
    record = out / _scan(history, 3)["bundle"].name / "evidence/github/acme-rockets/" \
        "github.merged_pulls.json"
    record.write_bytes(record.read_bytes().replace(b"carol-thrust", b"mallory-evil"))
    code = main(["sample", "changes", "--size", "2", "--seed", "s", "--from", str(START), "--to",
                 str(END), "--dir", str(out)])
    assert code == 1 and "github.merged_pulls.json: changed" in capsys.readouterr().err
