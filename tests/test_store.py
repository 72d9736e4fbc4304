"""The S3 evidence store on moto (real HTTP): Object-Locked, signed bundles; verify, report,
history, diff, evaluate and export straight from s3://; failed uploads caught up by the next
scan; unsafe buckets refused; concurrent scans never fork the chain."""
from __future__ import annotations

import html
import json
import threading
import zipfile
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from attest.cli import main
from attest.config import load_config
from attest.manifest import verify
from attest.scan import run_scan
from attest.store import bundle_time, list_bundles
from tests.collectors.aws_fixtures import DenyingProxy
from tests.conftest import NOW
from tests.test_signing import rewrite_results, write_key

BUCKET = "acme-evidence"


@pytest.fixture
def s3(moto: str):
    client = boto3.client("s3", region_name="us-east-1", endpoint_url=moto)
    client.url = moto
    return client


def locked_bucket(s3, name: str = BUCKET, days: int = 400, mode: str = "COMPLIANCE") -> None:
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": mode, "Days": days}}})
    s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True})


def store_config(folder: Path, endpoint: str, *, bucket: str = BUCKET, lock: str | None =
                 "object_lock: {mode: COMPLIANCE, days: 400}", signed: bool = True) -> Path:
    if signed and not (folder / "signing.pem").exists():
        write_key(folder / "signing.pem")
    text = (f"output_dir: spool\nstore: s3://{bucket}/attest\nstore_options:\n  region: us-east-1\n"
            f"  endpoint_url: {endpoint}\n" + (f"  {lock}\n" if lock else ""))
    if signed:
        text += "signing:\n  private_key_path: signing.pem\n"
    path = folder / "config.yaml"
    path.write_text(text)
    return path


def scan(config: Path, days: float = 0, **kwargs):
    return run_scan(load_config(config), now=NOW + timedelta(days=days), **kwargs)


def keys(s3, bucket: str = BUCKET) -> dict[str, int]:
    out: dict[str, int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="attest/"):
        out.update({o["Key"]: o["Size"] for o in page.get("Contents", [])})
    return out


def pubkey(config: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    assert main(["keys", "public", "--config", str(config)]) == 0
    path = config.parent / "pub.pem"
    path.write_text(capsys.readouterr().out)
    return path


def test_scan_uploads_signed_object_locked_bundles(s3, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    locked_bucket(s3)
    config = store_config(tmp_path, s3.url)
    first, second = scan(config), scan(config, days=1)
    assert first.exit_code == second.exit_code == 1 and not second.store_error
    stored = keys(s3)
    for outcome in (first, second):
        for path in outcome.bundle.rglob("*"):
            if path.is_file():
                rel = path.relative_to(outcome.bundle.parent).as_posix()
                assert stored[f"attest/{rel}"] == path.stat().st_size, rel
    manifest = json.loads((second.bundle / "manifest.json").read_text())
    assert manifest["store"] == {"url": f"s3://{BUCKET}/attest", "versioning": "Enabled",
                                 "object_lock": {"mode": "COMPLIANCE", "days": 400,
                                                 "source": "store_options"}}
    # every object is retained: a delete of a retained version is refused
    key = f"attest/{second.bundle.name}/results.json"
    head = s3.head_object(Bucket=BUCKET, Key=key)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] > datetime.now(timezone.utc) + timedelta(days=399)
    with pytest.raises(ClientError) as refused:
        s3.delete_object(Bucket=BUCKET, Key=key, VersionId=head["VersionId"])
    assert refused.value.response["Error"]["Code"] == "AccessDenied"

    pub = pubkey(config, capsys)
    store_url = f"s3://{BUCKET}/attest"
    assert main(["verify", store_url, "--public-key", str(pub), "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "OK: 2 bundle(s) verified" in out and "signed by the given public key" in out
    assert "Object Lock:" in out and "objects retained (COMPLIANCE)" in out
    # one bundle of the store, by its URL
    assert main(["verify", f"{store_url}/{second.bundle.name}", "--public-key", str(pub),
                 "--allow-pruned", "--config", str(config)]) == 0
    capsys.readouterr()

    # a local copy: editing the newest bundle's results.json and its manifest entry is caught
    copy = tmp_path / "copy"
    assert main(["export", "--from", "2026-11-01", "--to", "2026-11-30", "--config", str(config),
                 "--out", str(tmp_path / "x.zip")]) == 0
    for bundle in (first.bundle, second.bundle):
        target = copy / bundle.name
        target.mkdir(parents=True)
        for path in bundle.rglob("*"):
            if path.is_file():
                dest = target / path.relative_to(bundle)
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(path.read_bytes())
    assert main(["verify", str(copy), "--public-key", str(pub)]) == 0
    rewrite_results(copy / second.bundle.name)
    assert main(["verify", str(copy), "--public-key", str(pub)]) == 1
    assert f"FAIL {second.bundle.name}: attestation.dsse.json: signs another manifest" in \
        capsys.readouterr().out


def test_store_level_deletes_and_overwrites_are_caught(s3, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Object Lock keeps every version; verify reads the version list, so a delete marker (the
    newest bundle "deleted") or an overwrite is named, although a plain listing hides it."""
    locked_bucket(s3, mode="GOVERNANCE", days=30)
    config = store_config(tmp_path, s3.url, lock=None)   # the bucket default retention
    scan(config)
    newest = scan(config, days=1).bundle
    manifest = json.loads((newest / "manifest.json").read_text())
    assert manifest["store"]["object_lock"] == {"mode": "GOVERNANCE", "days": 30,
                                                "source": "bucket default"}
    store_url = f"s3://{BUCKET}/attest"
    s3.delete_object(Bucket=BUCKET, Key=f"attest/{newest.name}/manifest.json")
    assert main(["verify", store_url, "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert (f"FAIL {newest.name}: manifest.json: deleted from the store (a delete marker hides it; "
            "its earlier versions are kept)") in out
    s3.put_object(Bucket=BUCKET, Key=f"attest/{newest.name}/manifest.json",
                  Body=(newest / "manifest.json").read_bytes())
    s3.put_object(Bucket=BUCKET, Key=f"attest/{newest.name}/results.json", Body=b"{}")
    assert main(["verify", store_url, "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert f"FAIL {newest.name}: results.json: overwritten in the store (2 versions with different content)" in out
    assert f"FAIL {newest.name}: results.json: changed (sha256 does not match the manifest)" in out


def test_export_from_the_store_equals_export_from_a_local_copy(s3, tmp_path: Path) -> None:
    locked_bucket(s3)
    config = store_config(tmp_path, s3.url)
    for day in range(4):
        scan(config, days=day)
    when = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
    from reports.export import export_period
    from attest.s3store import local_view
    from reports.export import period_names
    start, end = date(2026, 11, 23), date(2026, 11, 24)
    with local_view(f"s3://{BUCKET}/attest", str(config), names=period_names(start, end),
                    manual=True) as folder:
        from_store = export_period(folder, start, end, tmp_path / "store.zip", now=when)
    from_local = export_period(tmp_path / "spool", start, end, tmp_path / "local.zip", now=when)
    with zipfile.ZipFile(from_store) as a, zipfile.ZipFile(from_local) as b:
        assert a.namelist() == b.namelist()
        assert any(n.endswith("attestation.dsse.json") for n in a.namelist())
        for name in a.namelist():
            assert a.read(name) == b.read(name), name
    # and through the command line, with the store from the config
    assert main(["export", "--from", "2026-11-23", "--to", "2026-11-24", "--config", str(config),
                 "--out", str(tmp_path / "cli.zip")]) == 0


def test_report_history_diff_and_evaluate_read_the_store(s3, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    locked_bucket(s3)
    config = store_config(tmp_path, s3.url)
    one, two = scan(config).bundle.name, scan(config, days=1).bundle.name
    store_url = f"s3://{BUCKET}/attest"
    assert main(["history", "--config", str(config), "--json"]) == 0   # the config's store
    rows = json.loads(capsys.readouterr().out)
    assert [r["bundle"] for r in rows] == [one, two]
    assert main(["history", "--dir", store_url, "--config", str(config), "--json"]) == 0
    assert [r["bundle"] for r in json.loads(capsys.readouterr().out)] == [one, two]
    assert main(["report", store_url, "--config", str(config), "--out", str(tmp_path / "r.html")]) == 0
    assert two in (tmp_path / "r.html").read_text()
    capsys.readouterr()
    assert main(["diff", f"{store_url}/{one}", f"{store_url}/{two}", "--json",
                 "--config", str(config)]) == 0
    diff = json.loads(capsys.readouterr().out)
    assert diff["old"]["bundle"] == one and diff["new"]["bundle"] == two and diff["status_changes"] == []
    assert main(["evaluate", f"{store_url}/{two}", "--config", str(config),
                 "--out", str(tmp_path / "fresh.json")]) in (0, 1)
    assert json.loads((tmp_path / "fresh.json").read_text())["scan"]["re_evaluated_from"] == two
    assert main(["evaluate", f"{store_url}/20200101T000000Z", "--config", str(config)]) == 2
    assert "no such bundle in the store" in capsys.readouterr().err
    # without --config: the config named by $ATTEST_CONFIG, or else the plain AWS environment
    # (AWS_ENDPOINT_URL_S3 as for any S3 client) reaches the store
    monkeypatch.setenv("ATTEST_CONFIG", str(config))
    assert main(["history", "--dir", store_url, "--json"]) == 0
    assert [r["bundle"] for r in json.loads(capsys.readouterr().out)] == [one, two]
    monkeypatch.delenv("ATTEST_CONFIG")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3.url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    assert main(["history", "--dir", store_url, "--json"]) == 0
    assert [r["bundle"] for r in json.loads(capsys.readouterr().out)] == [one, two]
    # export straight from the store (--dir s3://...), and never --out into it
    day = bundle_time(two).date().isoformat()
    first_day = bundle_time(one).date().isoformat()
    assert main(["export", "--dir", store_url, "--from", first_day, "--to", day,
                 "--out", str(tmp_path / "from-store.zip")]) == 0
    assert (tmp_path / "from-store.zip").stat().st_size > 0
    capsys.readouterr()
    assert main(["report", store_url, "--out", f"{store_url}/x.html"]) == 2
    assert main(["export", "--dir", store_url, "--from", first_day, "--to", day,
                 "--out", f"{store_url}/x.zip"]) == 2


def test_a_failed_upload_loses_nothing_and_the_next_scan_catches_up(
        s3, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    locked_bucket(s3)
    state = {"refuse": None}

    def deny(region: str, service: str, body: bytes) -> bool:
        if service != "s3" or not body or state["refuse"] is None:
            return False
        return state["refuse"] == "all" or not body.startswith(b'{"owner"')   # "objects": not the lock

    with DenyingProxy(s3.url, deny) as proxy_url:
        config = store_config(tmp_path, proxy_url)
        first = scan(config)
        state["refuse"] = "objects"          # the lock works, every object upload is refused
        second = scan(config, days=1)
        assert second.exit_code == 3 and "AccessDenied" in second.store_error
        assert second.bundle.is_dir() and verify(second.bundle, public_key=None)[1] == []
        state["refuse"] = "all"              # the store cannot be reached at all when sealing
        third = scan(config, days=2)
        assert third.exit_code == 3 and third.store_error
        assert json.loads((third.bundle / "manifest.json").read_text())["previous"]["bundle"] == \
            second.bundle.name
        state["refuse"] = None
        fourth = scan(config, days=3)
        assert fourth.exit_code == 1 and not fourth.store_error
    names = sorted({k.split("/")[1] for k in keys(s3) if k.count("/") >= 2})
    assert names == [b.bundle.name for b in (first, second, third, fourth)]
    pub = pubkey(config, capsys)
    assert main(["verify", f"s3://{BUCKET}/attest", "--public-key", str(pub),
                 "--config", str(store_config(tmp_path, s3.url))]) == 0
    # through the command line, a failed upload is exit 3 with one line naming it
    with DenyingProxy(s3.url, lambda r, s, b: s == "s3" and bool(b) and not b.startswith(b'{"owner"')) as url:
        config = store_config(tmp_path, url)
        assert main(["scan", "--config", str(config)]) == 3
        err = capsys.readouterr().err
        assert "was not uploaded to s3://acme-evidence/attest" in err and "the next scan uploads it" in err


def test_unsafe_buckets_are_refused_unless_allowed(s3, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    s3.create_bucket(Bucket="plain-bucket")
    config = store_config(tmp_path, s3.url, bucket="plain-bucket", lock=None)
    assert main(["store", "check", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert "versioning:          Never enabled" in out and "UNSAFE: versioning is not enabled" in out
    assert main(["scan", "--config", str(config)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("attest:")]
    assert len(err) == 1 and "refusing an unsafe evidence store: versioning is not enabled" in err[0]
    assert not keys(s3, "plain-bucket")
    assert main(["scan", "--config", str(config), "--allow-unsafe-store"]) == 1
    assert keys(s3, "plain-bucket")

    s3.create_bucket(Bucket="public-bucket")
    s3.put_bucket_versioning(Bucket="public-bucket", VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_acl(Bucket="public-bucket", ACL="public-read")
    config = store_config(tmp_path, s3.url, bucket="public-bucket", lock=None)
    assert main(["scan", "--config", str(config)]) == 2
    assert "the bucket is public" in capsys.readouterr().err

    # object_lock configured on a bucket without Object Lock: refused before collecting
    s3.create_bucket(Bucket="versioned-bucket")
    s3.put_bucket_versioning(Bucket="versioned-bucket", VersioningConfiguration={"Status": "Enabled"})
    config = store_config(tmp_path, s3.url, bucket="versioned-bucket")
    assert main(["scan", "--config", str(config)]) == 2
    assert "does not have Object Lock enabled" in capsys.readouterr().err

    locked_bucket(s3)
    s3.put_bucket_encryption(Bucket=BUCKET, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]})
    config = store_config(tmp_path, s3.url)
    assert main(["store", "check", "--config", str(config), "--json"]) == 0
    check = json.loads(capsys.readouterr().out)
    assert check["versioning"] == "Enabled" and check["public"] is False and check["problems"] == []
    assert check["object_lock"] == {"enabled": True, "mode": "COMPLIANCE", "days": 400}
    assert check["encryption"] == "aws:kms"
    assert check["public_access_block"]["BlockPublicAcls"] is True

    for args, message in ((["store", "check", "--config", str(tmp_path / "none.yaml")], "config file not found"),
                          (["verify", "s3://Bad_Bucket/x"], "not an S3 store URL")):
        assert main(args) == 2
        assert message in capsys.readouterr().err
    (tmp_path / "local.yaml").write_text("output_dir: ev\n")
    assert main(["store", "check", "--config", str(tmp_path / "local.yaml")]) == 2
    assert "no store: s3://" in capsys.readouterr().err
    (tmp_path / "bad.yaml").write_text("store: http://x\n")
    assert main(["store", "check", "--config", str(tmp_path / "bad.yaml")]) == 2
    assert "bad.yaml:1: store: expected s3://bucket/prefix" in capsys.readouterr().err


def test_concurrent_scans_never_fork_the_chain(s3, tmp_path: Path) -> None:
    """Scans started at once, into one folder and into one store: each links to the bundle that
    was newest when it sealed; names keep the chain's order."""
    locked_bucket(s3)
    local = tmp_path / "local"
    local.mkdir()
    write_key(local / "signing.pem")
    (local / "config.yaml").write_text("output_dir: ev\nsigning:\n  private_key_path: signing.pem\n")
    store = tmp_path / "store"
    store.mkdir()
    config = store_config(store, s3.url)
    for cfg in (local / "config.yaml", config):
        errors: list[BaseException] = []

        def run(cfg: Path = cfg) -> None:
            try:
                scan(cfg)   # same start time: same preferred name
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)
        threads = [threading.Thread(target=run) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        folder = cfg.parent / ("ev" if cfg.parent == local else "spool")
        bundles = list_bundles(folder)
        assert len(bundles) == 4
        assert [b.name for b in bundles] == ["20261122T020000Z", "20261122T020000Z-1",
                                             "20261122T020000Z-2", "20261122T020000Z-3"]
        if cfg.parent == local:
            assert verify(folder)[1] == []
    assert main(["verify", f"s3://{BUCKET}/attest", "--config", str(config)]) == 0


def test_out_is_never_inside_a_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "config.yaml").write_text("output_dir: ev\n")
    bundle = scan(tmp_path / "config.yaml").bundle
    partial = tmp_path / "ev" / ".20261122T020000Z-abcd.partial"
    partial.mkdir()
    capsys.readouterr()
    for args in (["evaluate", str(bundle), "--out", str(bundle / "results.json")],
                 ["evaluate", str(bundle), "--out", str(bundle / "evidence" / "new.json")],
                 ["report", str(bundle), "--out", str(bundle / "report.html")],
                 ["export", "--from", "2026-11-22", "--to", "2026-11-22", "--dir", str(tmp_path / "ev"),
                  "--out", str(bundle / "x.zip")],
                 ["export", "--from", "2026-11-22", "--to", "2026-11-22", "--dir", str(tmp_path / "ev"),
                  "--out", str(partial / "x.zip")]):
        before = {p: p.stat().st_mtime_ns for p in bundle.rglob("*")}
        assert main(args) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "refusing to write inside the bundle" in err[0], err
        assert {p: p.stat().st_mtime_ns for p in bundle.rglob("*")} == before
    assert main(["evaluate", str(bundle), "--out", "s3://acme-evidence/attest/x.json"]) == 2
    assert "must be a local file" in capsys.readouterr().err
    assert main(["evaluate", str(bundle), "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert verify(tmp_path / "ev")[1] == []


def test_the_export_says_exactly_what_each_mechanism_proves(s3, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    locked_bucket(s3)
    config = store_config(tmp_path, s3.url)
    scan(config)
    head = scan(config, days=1).bundle
    assert main(["export", "--from", "2026-11-22", "--to", "2026-11-23", "--config", str(config),
                 "--out", str(tmp_path / "signed.zip")]) == 0
    assert "every signature checked" in capsys.readouterr().out
    with zipfile.ZipFile(tmp_path / "signed.zip") as z:
        root = z.namelist()[0].split("/")[0]
        index = html.unescape(z.read(f"{root}/index.html").decode())
        readme = z.read(f"{root}/README.txt").decode()
        chain = json.loads(z.read(f"{root}/chain.json"))
        pem = z.read(f"{root}/signing-public-key.pem").decode()
    assert chain["head"]["bundle"] == head.name and chain["head"]["signed"] is True
    assert chain["head"]["manifest_sha256"] == __import__("hashlib").sha256(
        (head / "manifest.json").read_bytes()).hexdigest()
    assert chain["head"]["attestation"] == json.loads((head / "attestation.dsse.json").read_text())
    assert pem == pubkey(config, capsys).read_text()
    status = {c["mechanism"]: (c["status"], c["covers_every_bundle"]) for c in chain["integrity"]}
    assert status == {"hash chain": ("verified", True), "signatures": ("verified", True),
                      "Object Lock": ("recorded", True)}
    for text in (index, readme):
        assert "can be removed, replaced or edited unnoticed" not in text
        assert "not even by the account's root user (COMPLIANCE mode)" in text
        assert "an edit needs the signing key and a deletion is blocked by Object Lock" in text
        assert f"It cannot protect the newest bundle ({head.name})" in text
    assert "attest verify bundles/ --public-key signing-public-key.pem" in readme

    # the same bundles, unsigned and kept in a plain folder: the index says what is left open
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "config.yaml").write_text("output_dir: ev\n")
    scan(plain / "config.yaml")
    newest = scan(plain / "config.yaml", days=1).bundle
    assert main(["export", "--from", "2026-11-22", "--to", "2026-11-23", "--dir", str(plain / "ev"),
                 "--out", str(tmp_path / "plain.zip")]) == 0
    assert "signatures not checked" in capsys.readouterr().out
    with zipfile.ZipFile(tmp_path / "plain.zip") as z:
        root = z.namelist()[0].split("/")[0]
        index = html.unescape(z.read(f"{root}/index.html").decode())
        chain = json.loads(z.read(f"{root}/chain.json"))
        assert not any(n.endswith("signing-public-key.pem") for n in z.namelist())
    assert {c["mechanism"]: c["status"] for c in chain["integrity"]} == {
        "hash chain": "verified", "signatures": "absent", "Object Lock": "absent"}
    assert "The bundles are not signed" in index
    assert (f"The newest bundle ({newest.name}) could have been edited together with its manifest, "
            "or removed") in index

    # signed, but exported without a key: the signatures are carried, and said to be unchecked
    (tmp_path / "nokey.yaml").write_text("output_dir: spool\n")
    assert main(["export", "--from", "2026-11-22", "--to", "2026-11-23", "--dir", str(tmp_path / "spool"),
                 "--config", str(tmp_path / "nokey.yaml"), "--out", str(tmp_path / "nokey.zip")]) == 0
    with zipfile.ZipFile(tmp_path / "nokey.zip") as z:
        root = z.namelist()[0].split("/")[0]
        chain = json.loads(z.read(f"{root}/chain.json"))
    assert {c["mechanism"]: c["status"] for c in chain["integrity"]}["signatures"] == "present, not checked"
    # a bundle signed by another key stops the export, naming it
    other = tmp_path / "other"
    other.mkdir()
    write_key(other / "k.pem")
    (other / "c.yaml").write_text("signing:\n  private_key_path: k.pem\n")
    wrong = pubkey(other / "c.yaml", capsys)
    assert main(["export", "--from", "2026-11-22", "--to", "2026-11-23", "--dir", str(tmp_path / "spool"),
                 "--public-key", str(wrong), "--out", str(tmp_path / "wrong.zip")]) == 1
    assert f"FAIL {head.name}: attestation.dsse.json: bad signature" in capsys.readouterr().err
    assert not (tmp_path / "wrong.zip").exists()


# S3 operation -> the IAM action that allows it (GetObject also needs s3:GetObjectRetention to
# see an object's retention, PutObject with a retention s3:PutObjectRetention).
S3_ACTIONS = {"ListObjectsV2": "s3:ListBucket", "ListObjectVersions": "s3:ListBucketVersions",
              "GetBucketVersioning": "s3:GetBucketVersioning",
              "GetObjectLockConfiguration": "s3:GetBucketObjectLockConfiguration",
              "GetBucketEncryption": "s3:GetEncryptionConfiguration",
              "GetPublicAccessBlock": "s3:GetBucketPublicAccessBlock",
              "GetBucketPolicyStatus": "s3:GetBucketPolicyStatus", "GetBucketAcl": "s3:GetBucketAcl",
              "PutObject": "s3:PutObject", "GetObject": "s3:GetObject", "HeadObject": "s3:GetObject",
              "DeleteObject": "s3:DeleteObject"}


def test_store_policy_allows_exactly_what_the_store_calls(s3, tmp_path: Path, monkeypatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from attest.s3store import LOCK_KEY, S3Store
    locked_bucket(s3)
    called: set[tuple[str, str]] = set()   # (IAM action, object key or "")

    def record(model, params, **_):
        called.add((S3_ACTIONS[model.name], params.get("Key", "")))
        if model.name == "PutObject" and "ObjectLockMode" in params:
            called.add(("s3:PutObjectRetention", params.get("Key", "")))
        if model.name == "GetObject":
            called.add(("s3:GetObjectRetention", params.get("Key", "")))

    def session():
        made = boto3.Session()
        made.events.register("before-parameter-build.s3", record)
        return made
    monkeypatch.setattr(S3Store, "session_factory", session)
    config = store_config(tmp_path, s3.url)
    scan(config)
    scan(config, days=1)
    assert main(["verify", f"s3://{BUCKET}/attest", "--config", str(config)]) == 0
    assert main(["store", "check", "--config", str(config)]) == 0
    capsys.readouterr()
    assert main(["permissions", "store", "--config", str(config)]) == 0
    policy = json.loads(capsys.readouterr().out)
    allowed = {a for st in policy["Statement"] for a in st["Action"] if a.startswith("s3:")}
    assert {action for action, _ in called} == allowed
    lock_statement = next(st for st in policy["Statement"] if st["Action"] == ["s3:DeleteObject"])
    assert lock_statement["Resource"] == f"arn:aws:s3:::{BUCKET}/attest/{LOCK_KEY}"
    assert {key for action, key in called if action == "s3:DeleteObject"} == {f"attest/{LOCK_KEY}"}


def test_a_packed_value_is_written_as_the_value_itself_and_judged_as_stored() -> None:
    """A collector may hold a large answer as compact text until its record is written (Okta's
    factors of every user): the bundle gets exactly the bytes of the plain value, and the rules
    judge it as the file gives it back."""
    from datetime import datetime, timezone

    from attest.model import (Evidence, EvidenceState, Packed, canonical_json,
                              canonical_json_pieces)
    value = [{"id": "ufs1", "factorType": "push", "status": "ACTIVE", "weight": 0.1,
              "name": "Zoë \u2603 <script>", "created": datetime(2026, 1, 2, tzinfo=timezone.utc),
              "_links": {"self": {"href": "https://x/api/v1/users/u1/factors/ufs1"}}}, None, 7]
    plain = Evidence("okta.factors", "okta:acme", EvidenceState.OK, {"u1": value, "u2": []})
    packed = Evidence("okta.factors", "okta:acme", EvidenceState.OK,
                      {"u1": Packed(value), "u2": Packed([])})
    assert canonical_json(packed.to_json()) == canonical_json(plain.to_json())
    assert b"".join(canonical_json_pieces(packed.to_json(), piece_size=64)) == \
        canonical_json(plain.to_json())
    stored = packed.as_stored()
    assert stored.payload == json.loads(canonical_json(plain.to_json()))["payload"]
    assert stored.payload["u1"][0]["created"] == "2026-01-02T00:00:00Z"
    assert plain.as_stored() is plain                     # nothing packed: the record itself
    assert Packed(value) == Packed(value) and Packed([1]) == [1] and Packed([1]) != [2]
    assert len(Packed(value).text) < len(canonical_json(value))
