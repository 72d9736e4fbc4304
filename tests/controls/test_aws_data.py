"""Pure rule tests for S3, RDS storage and backups, EBS default encryption and KMS rotation."""
from __future__ import annotations

from tests.collectors.aws_fixtures import evaluate, make

ACCT = "123456789012"
ALL_FOUR = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True}


def status(control, records, **params):
    return evaluate(control, records, **params).status.value


def bucket(name, block=None, algorithm=None):
    return {"Name": name, "GetBucketLocation": {"LocationConstraint": "eu-west-1"},
            "GetPublicAccessBlock": {"PublicAccessBlockConfiguration": block} if block else None,
            "GetBucketEncryption": {"ServerSideEncryptionConfiguration": {"Rules": [
                {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": algorithm}}]}}
            if algorithm else None}


def buckets(*items, state="ok"):
    return make("aws.s3.buckets", {"Buckets": list(items)} if state == "ok" else None, state=state,
                detail="" if state == "ok" else "s3:ListAllMyBuckets was denied")


def account_block(config=None, state=None):
    state = state or ("ok" if config else "absent")
    return make("aws.s3control.public_access_block",
                {"PublicAccessBlockConfiguration": config} if config else None, state=state,
                detail="" if state == "ok" else "s3:GetAccountPublicAccessBlock: none")


# --- aws.s3.public_access_blocked --------------------------------------------------------

def test_public_access_blocked_at_account_or_bucket_level_per_setting():
    assert status("aws.s3.public_access_blocked", [buckets(bucket("a")), account_block(ALL_FOUR)]) == "pass"
    assert status("aws.s3.public_access_blocked", [buckets(bucket("a", ALL_FOUR)), account_block()]) == "pass"
    half = {"BlockPublicAcls": True, "IgnorePublicAcls": True}
    other_half = {"BlockPublicPolicy": True, "RestrictPublicBuckets": True}
    assert status("aws.s3.public_access_blocked",
                  [buckets(bucket("a", other_half)), account_block(half)]) == "pass"


def test_public_access_not_blocked_fails_naming_the_settings():
    result = evaluate("aws.s3.public_access_blocked",
                      [buckets(bucket("ok", ALL_FOUR), bucket("site")),
                       account_block({"BlockPublicAcls": True, "IgnorePublicAcls": True})])
    assert result.status.value == "fail"
    bad, = [f for f in result.findings if f.status.value == "fail"]
    assert bad.resource == "arn:aws:s3:::site"
    assert bad.detail.endswith("BlockPublicPolicy, RestrictPublicBuckets")


def test_public_access_unknown_account_setting_is_an_error():
    denied = account_block(state="denied")
    result = evaluate("aws.s3.public_access_blocked", [buckets(bucket("site")), denied])
    assert result.status.value == "error"
    assert "account-level public access block was not read" in result.findings[-1].detail
    assert status("aws.s3.public_access_blocked", [buckets(state="denied"), account_block(ALL_FOUR)]) == "error"


# --- aws.s3.encrypted --------------------------------------------------------------------

def test_s3_encrypted():
    assert status("aws.s3.encrypted", [buckets(bucket("a", algorithm="AES256"))]) == "pass"
    result = evaluate("aws.s3.encrypted", [buckets(bucket("a", algorithm="AES256"), bucket("b"))])
    assert result.status.value == "fail"
    assert [(f.resource, f.detail) for f in result.findings if f.status.value == "fail"] == [
        ("arn:aws:s3:::b", "no default encryption")]
    assert status("aws.s3.encrypted", [buckets()]) == "not_applicable"
    assert status("aws.s3.encrypted", [buckets(state="error")]) == "error"


def test_s3_encrypted_can_require_kms():
    sse_s3 = evaluate("aws.s3.encrypted", [buckets(bucket("a", algorithm="AES256"))], require_kms=True)
    assert sse_s3.status.value == "fail" and "AES256" in sse_s3.findings[0].detail
    for algorithm in ("aws:kms", "aws:kms:dsse"):
        result = evaluate("aws.s3.encrypted", [buckets(bucket("a", algorithm=algorithm))], require_kms=True)
        assert result.status.value == "pass" and algorithm in result.findings[0].detail


# --- aws.rds.storage_encrypted / aws.rds.backups -----------------------------------------

def db(name, **kw):
    return {"DBInstanceIdentifier": name, "DBInstanceArn": f"arn:aws:rds:us-east-1:{ACCT}:db:{name}",
            "StorageEncrypted": True, "PubliclyAccessible": False, "BackupRetentionPeriod": 7, **kw}


def cluster(name, **kw):
    return {"DBClusterIdentifier": name, "DBClusterArn": f"arn:aws:rds:us-east-1:{ACCT}:cluster:{name}",
            "StorageEncrypted": True, "BackupRetentionPeriod": 7, **kw}


def rds(instances, clusters=(), clusters_state="ok"):
    return [make("aws.rds.instances", {"DBInstances": list(instances)}, "us-east-1"),
            make("aws.rds.clusters", {"DBClusters": list(clusters)} if clusters_state == "ok" else None,
                 "us-east-1", state=clusters_state, detail="rds:DescribeDBClusters was denied")]


def test_storage_encrypted_judges_aurora_on_the_cluster():
    member = db("aurora-1", DBClusterIdentifier="aurora", StorageEncrypted=False)
    assert status("aws.rds.storage_encrypted", rds([db("a"), member], [cluster("aurora")])) == "pass"
    result = evaluate("aws.rds.storage_encrypted",
                      rds([db("a", StorageEncrypted=False), member], [cluster("aurora", StorageEncrypted=False)]))
    assert result.status.value == "fail"
    assert sorted(f.resource.rsplit(":", 2)[-2] for f in result.findings if f.status.value == "fail") == [
        "cluster", "db"]
    assert status("aws.rds.storage_encrypted", rds([db("a")], clusters_state="denied")) == "error"


def test_backups():
    assert status("aws.rds.backups", rds([db("a", BackupRetentionPeriod=14)])) == "pass"
    result = evaluate("aws.rds.backups", rds([db("a", BackupRetentionPeriod=1)]))
    assert result.status.value == "fail" and "1 days (< 7)" in result.findings[0].detail
    assert status("aws.rds.backups", rds([db("a", BackupRetentionPeriod=1)]), min_days=1) == "pass"
    replica = db("r", BackupRetentionPeriod=0, ReadReplicaSourceDBInstanceIdentifier="a")
    assert status("aws.rds.backups", rds([db("a"), replica])) == "pass"


def test_backups_of_aurora_members_come_from_the_cluster():
    member = db("aurora-1", DBClusterIdentifier="aurora", BackupRetentionPeriod=1)
    result = evaluate("aws.rds.backups", rds([member], [cluster("aurora", BackupRetentionPeriod=14)]))
    assert result.status.value == "pass" and "cluster aurora" in result.findings[0].detail
    assert status("aws.rds.backups", rds([db("aurora-1", DBClusterIdentifier="aurora")],
                                         [cluster("aurora", BackupRetentionPeriod=3)])) == "fail"
    unknown = evaluate("aws.rds.backups", rds([member], clusters_state="denied"))
    assert unknown.status.value == "error"
    assert any("cluster aurora was not read" in f.detail for f in unknown.findings)


# --- aws.ebs.default_encryption ----------------------------------------------------------

def ebs(region, on=True, state="ok"):
    return make("aws.ec2.ebs_encryption_by_default", {"EbsEncryptionByDefault": on} if state == "ok" else None,
                region, state=state, detail="" if state == "ok" else "ec2:GetEbsEncryptionByDefault was denied")


def test_ebs_default_encryption():
    assert status("aws.ebs.default_encryption", [ebs("us-east-1"), ebs("eu-west-1")]) == "pass"
    result = evaluate("aws.ebs.default_encryption", [ebs("us-east-1"), ebs("eu-west-1", False)])
    assert result.status.value == "fail"
    assert [f.resource for f in result.findings if f.status.value == "fail"] == [f"aws:{ACCT}:eu-west-1:ec2"]
    assert status("aws.ebs.default_encryption", [ebs("us-east-1"), ebs("eu-west-1", state="denied")]) == "error"


# --- aws.kms.rotation --------------------------------------------------------------------

def key(key_id, rotation=True, **meta):
    metadata = {"KeyId": key_id, "Arn": f"arn:aws:kms:us-east-1:{ACCT}:key/{key_id}",
                "KeyManager": "CUSTOMER", "KeySpec": "SYMMETRIC_DEFAULT", "KeyState": "Enabled",
                "Origin": "AWS_KMS", **meta}
    out = {"KeyId": key_id, "DescribeKey": {"KeyMetadata": metadata}}
    if rotation is not None:
        out["GetKeyRotationStatus"] = {"KeyRotationEnabled": rotation}
    return out


def keys(*items):
    return [make("aws.kms.keys", {"Keys": list(items)}, "us-east-1")]


def test_kms_rotation():
    skipped = [key("aws", None, KeyManager="AWS"), key("rsa", None, KeySpec="RSA_2048"),
               key("off", None, KeyState="Disabled")]
    assert status("aws.kms.rotation", keys(key("k1"), *skipped)) == "pass"
    result = evaluate("aws.kms.rotation", keys(key("k1"), key("k2", False)))
    assert result.status.value == "fail"
    assert [f.resource for f in result.findings if f.status.value == "fail"] == [
        f"arn:aws:kms:us-east-1:{ACCT}:key/k2"]
    assert status("aws.kms.rotation", keys(*skipped)) == "not_applicable"


def test_kms_imported_key_material_fails_and_unknown_rotation_errors():
    imported = evaluate("aws.kms.rotation", keys(key("ext", None, Origin="EXTERNAL")))
    assert imported.status.value == "fail" and "EXTERNAL" in imported.findings[0].detail
    assert status("aws.kms.rotation", keys(key("k1", None))) == "error"
    denied = make("aws.kms.keys", None, "eu-west-1", state="denied", detail="kms:ListKeys was denied")
    assert status("aws.kms.rotation", keys(key("k1")) + [denied]) == "error"
