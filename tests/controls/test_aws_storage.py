"""Pure rule tests for S3 exposure and versioning, RDS deletion protection and snapshots, public
EBS snapshots and AWS Backup coverage (literal payloads as boto3 returns them; moto lacks
AWS Backup's selections and protected resources and EC2's snapshot block public access, so
these are the tests of their shapes)."""
from __future__ import annotations

import json

from tests.collectors.aws_fixtures import evaluate, make

ACCT = "123456789012"
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


def status(control, records, **params):
    return evaluate(control, records, **params).status.value


def tls_policy(bucket, **overrides):
    statement = {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                 "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                 "Condition": {"Bool": {"aws:SecureTransport": "false"}}, **overrides}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def policies(*items, state="ok", unknown=None):
    """(name, policy JSON or None, IsPublic) -> aws.s3.bucket_policies."""
    buckets = [{"Name": name, "GetBucketPolicy": {"Policy": policy} if policy else None,
                "GetBucketPolicyStatus": {"PolicyStatus": {"IsPublic": public}} if policy else None}
               for name, policy, public in items]
    return make("aws.s3.bucket_policies", {"Buckets": buckets} if state != "denied" else None,
                state=state, detail="" if state == "ok" else "s3:GetBucketPolicy was denied",
                unknown=unknown)


def acls(*items):
    """(name, [public permissions]) -> aws.s3.bucket_acls."""
    owner = {"Grantee": {"Type": "CanonicalUser", "ID": "75aa57f0"}, "Permission": "FULL_CONTROL"}
    return make("aws.s3.bucket_acls", {"Buckets": [
        {"Name": name, "GetBucketAcl": {"Owner": {"ID": "75aa57f0"}, "Grants": [owner] + [
            {"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": p} for p in public]}}
        for name, public in items]})


# --- aws.s3.no_public_buckets ---------------------------------------------------------------

def test_no_public_buckets():
    private = [policies(("a", tls_policy("a"), False), ("b", None, False)), acls(("a", []), ("b", []))]
    assert status("aws.s3.no_public_buckets", private) == "pass"
    result = evaluate("aws.s3.no_public_buckets",
                      [policies(("a", tls_policy("a"), True), ("site", None, False)),
                       acls(("a", []), ("site", ["READ", "WRITE_ACP"]))])
    assert result.status.value == "fail"
    assert {f.resource: f.detail for f in result.findings} == {
        "arn:aws:s3:::a": "its bucket policy makes it public",
        "arn:aws:s3:::site": "ACL grants READ to AllUsers; ACL grants WRITE_ACP to AllUsers"}


def test_no_public_buckets_a_grant_to_any_aws_account_is_public_too():
    """AuthenticatedUsers is every AWS account in the world, not the company's users."""
    authenticated = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
    record = acls(("b", []))
    record.payload["Buckets"][0]["GetBucketAcl"]["Grants"].append(
        {"Grantee": {"Type": "Group", "URI": authenticated}, "Permission": "READ"})
    result = evaluate("aws.s3.no_public_buckets", [policies(("b", None, False)), record])
    assert result.status.value == "fail"
    assert {f.resource: f.detail for f in result.findings} == {
        "arn:aws:s3:::b": "ACL grants READ to AuthenticatedUsers"}


def test_no_public_buckets_one_unreadable_bucket_is_an_error_the_rest_judged():
    partial = policies(("a", None, False), state="partial",
                       unknown={"arn:aws:s3:::b": "s3:GetBucketPolicy was denied (bucket b)"})
    result = evaluate("aws.s3.no_public_buckets", [partial, acls(("a", []), ("b", []))])
    assert result.status.value == "error"
    assert {f.resource: f.status.value for f in result.findings} == {
        "arn:aws:s3:::a": "pass", "arn:aws:s3:::b": "error"}
    assert status("aws.s3.no_public_buckets", [policies(state="denied"), acls(("a", []))]) == "error"


# --- aws.s3.tls_only ------------------------------------------------------------------------

def test_tls_only_needs_a_deny_on_insecure_transport():
    result = evaluate("aws.s3.tls_only", [policies(("a", tls_policy("a"), False))])
    assert result.status.value == "pass" and "DenyInsecureTransport" in result.findings[0].detail
    variants = [tls_policy("a", Principal={"AWS": ["*"]}, Action=["*"], Resource="arn:aws:s3:::a/*",
                           Condition={"BoolIfExists": {"aws:securetransport": ["false"]}})]
    assert status("aws.s3.tls_only", [policies(("a", variants[0], False))]) == "pass"


def test_tls_only_fails_without_policy_or_with_a_narrow_one():
    result = evaluate("aws.s3.tls_only", [policies(("a", None, False))])
    assert result.status.value == "fail" and "no bucket policy" in result.findings[0].detail
    for narrow in (tls_policy("a", Effect="Allow"), tls_policy("a", Principal={"AWS": "arn:aws:iam::1:root"}),
                   tls_policy("a", Action="s3:GetObject"), tls_policy("a", Resource="arn:aws:s3:::a"),
                   tls_policy("a", Condition={"Bool": {"aws:SecureTransport": "true"}}),
                   tls_policy("a", Condition={"NumericLessThan": {"s3:TlsVersion": "1.2"}})):
        assert status("aws.s3.tls_only", [policies(("a", narrow, False))]) == "fail", narrow
    assert status("aws.s3.tls_only", [policies(("a", "{not json", False))]) == "error"


# --- aws.s3.versioning ----------------------------------------------------------------------

def versioning(*items):
    return [make("aws.s3.bucket_versioning", {"Buckets": [
        {"Name": name, "GetBucketVersioning": {"Status": state} if state else {},
         "GetObjectLockConfiguration": {"ObjectLockConfiguration": lock} if lock else None}
        for name, state, lock in items]})]


def test_versioning_records_object_lock():
    lock = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Years": 7}}}
    result = evaluate("aws.s3.versioning", versioning(("a", "Enabled", None), ("vault", "Enabled", lock)))
    assert result.status.value == "pass"
    vault = result.findings[1]
    assert vault.detail == "versioning enabled; Object Lock on (COMPLIANCE, 7 years)"
    assert vault.facts == {"object_lock": {"mode": "COMPLIANCE", "retention": "7 years"}}
    result = evaluate("aws.s3.versioning", versioning(("a", "Suspended", None), ("b", None, None)))
    assert [f.detail for f in result.findings] == ["versioning suspended", "versioning never enabled"]


# --- aws.rds.deletion_protection / snapshots_private ----------------------------------------

def rds(instances=(), clusters=()):
    return [make("aws.rds.instances", {"DBInstances": list(instances)}, "us-east-1"),
            make("aws.rds.clusters", {"DBClusters": list(clusters)}, "us-east-1")]


def db(name, **kw):
    return {"DBInstanceIdentifier": name, "DBInstanceArn": f"arn:aws:rds:us-east-1:{ACCT}:db:{name}",
            "DeletionProtection": True, "TagList": [], **kw}


def cluster(name, **kw):
    return {"DBClusterIdentifier": name, "DBClusterArn": f"arn:aws:rds:us-east-1:{ACCT}:cluster:{name}",
            "DeletionProtection": True, "TagList": [], **kw}


def test_deletion_protection_judges_members_through_the_cluster():
    member = db("aurora-1", DBClusterIdentifier="aurora", DeletionProtection=False)
    assert status("aws.rds.deletion_protection", rds([db("a"), member], [cluster("aurora")])) == "pass"
    result = evaluate("aws.rds.deletion_protection",
                      rds([db("a", DeletionProtection=False)], [cluster("aurora", DeletionProtection=False)]))
    assert [f.status.value for f in result.findings] == ["fail", "fail"]
    denied = make("aws.rds.clusters", None, "eu-west-1", state="denied",
                  detail="rds:DescribeDBClusters was denied")
    assert status("aws.rds.deletion_protection", rds([db("a")]) + [denied]) == "error"


def snapshots(db_snaps=(), cluster_snaps=()):
    return [make("aws.rds.snapshots", {"DBSnapshots": [
        {"DBSnapshotIdentifier": n, "DBSnapshotArn": f"arn:aws:rds:us-east-1:{ACCT}:snapshot:{n}",
         "SnapshotType": "manual", "Encrypted": enc, "DescribeDBSnapshotAttributes": {
             "DBSnapshotAttributesResult": {"DBSnapshotIdentifier": n, "DBSnapshotAttributes": [
                 {"AttributeName": "restore", "AttributeValues": list(shared)}]}}}
        for n, enc, shared in db_snaps]}, "us-east-1"),
        make("aws.rds.cluster_snapshots", {"DBClusterSnapshots": [
            {"DBClusterSnapshotIdentifier": n, "StorageEncrypted": enc, "SnapshotType": "manual",
             "DBClusterSnapshotArn": f"arn:aws:rds:us-east-1:{ACCT}:cluster-snapshot:{n}",
             "DescribeDBClusterSnapshotAttributes": {"DBClusterSnapshotAttributesResult": {
                 "DBClusterSnapshotAttributes": [{"AttributeName": "restore",
                                                  "AttributeValues": list(shared)}]}}}
            for n, enc, shared in cluster_snaps]}, "us-east-1")]


def test_rds_snapshots_private_and_encrypted():
    result = evaluate("aws.rds.snapshots_private",
                      snapshots([("pre-upgrade", True, ["210987654321"])], [("q3", True, [])]))
    assert result.status.value == "pass"
    assert result.findings[0].detail == "private and encrypted; shared with 210987654321"
    result = evaluate("aws.rds.snapshots_private",
                      snapshots([("export", False, ["all"])], [("q3", False, [])]))
    assert [f.detail for f in result.findings] == [
        "shared with all AWS accounts (public); not encrypted", "not encrypted"]
    unknown = f"arn:aws:rds:us-east-1:{ACCT}:snapshot:locked"
    partial = make("aws.rds.snapshots", {"DBSnapshots": []}, "us-east-1", state="partial",
                   unknown={unknown: "rds:DescribeDBSnapshotAttributes was denied"})
    result = evaluate("aws.rds.snapshots_private", [partial, snapshots()[1]])
    assert result.status.value == "error" and result.findings[0].resource == unknown


# --- aws.ebs.snapshots_private --------------------------------------------------------------

def ebs(region, *items, block="unblocked"):
    """(snapshot id, public?) -> aws.ec2.snapshots, plus the region's block public access state
    (GetSnapshotBlockPublicAccessState as boto3 returns it; None: not read)."""
    records = [make("aws.ec2.snapshots", {"Snapshots": [
        {"SnapshotId": sid, "OwnerId": ACCT, "State": "completed", "DescribeSnapshotAttribute": {
            "SnapshotId": sid, "CreateVolumePermissions": [{"Group": "all"}] if public else [
                {"UserId": "210987654321"}]}} for sid, public in items]}, region)]
    if block is not None:
        records.append(make("aws.ec2.snapshot_block_public_access",
                            {"State": block, "ManagedBy": "account"}, region))
    return records


def test_ebs_snapshots_private():
    assert status("aws.ebs.snapshots_private", ebs("us-east-1", ("snap-1", False))) == "pass"
    result = evaluate("aws.ebs.snapshots_private", ebs("eu-west-1", ("snap-2", True)))
    assert result.status.value == "fail"
    assert result.findings[0].resource == f"arn:aws:ec2:eu-west-1:{ACCT}:snapshot/snap-2"
    blocked = evaluate("aws.ebs.snapshots_private", ebs("eu-west-1", ("snap-2", True), block="block-all-sharing"))
    assert blocked.status.value == "pass" and "blocks all public sharing" in blocked.findings[0].detail
    assert status("aws.ebs.snapshots_private", ebs("eu-west-1", ("snap-2", True), block="block-new-sharing")) == "fail"
    assert status("aws.ebs.snapshots_private", ebs("eu-west-1", ("snap-2", True), block=None)) == "error"
    assert status("aws.ebs.snapshots_private", ebs("eu-west-1", ("snap-1", False), block=None)) == "error"


# --- aws.backup.plans -----------------------------------------------------------------------

PLAN = f"arn:aws:backup:us-east-1:{ACCT}:backup-plan:8a1f5f3e-2b6c-4d5e-9f70-0123456789ab"


def backup(selections=1, protected=(), region="us-east-1", plans_unknown=None, protected_state="ok"):
    """ListBackupPlans (each plan with its ListBackupSelections) and ListProtectedResources, as
    boto3 returns them (API reference: BackupPlansListMember, BackupSelectionsListMember,
    ProtectedResource)."""
    plans = [{"BackupPlanArn": PLAN, "BackupPlanId": PLAN.rsplit(":", 1)[1], "BackupPlanName": "daily",
              "VersionId": "ZjU2", "ListBackupSelections": {"BackupSelectionsList": [
                  {"SelectionId": f"sel-{i}", "SelectionName": f"tagged-{i}", "BackupPlanId": "8a1f",
                   "IamRoleArn": f"arn:aws:iam::{ACCT}:role/service-role/AWSBackupDefaultServiceRole"}
                  for i in range(selections)]}}]
    return [make("aws.backup.plans", {"BackupPlansList": [] if plans_unknown else plans}, region,
                 state="partial" if plans_unknown else "ok", unknown=plans_unknown),
            make("aws.backup.protected_resources", {"Results": [
                {"ResourceArn": arn, "ResourceType": "RDS", "LastBackupTime": "2026-11-21T03:10:00Z"}
                for arn in protected]} if protected_state == "ok" else None, region,
                state=protected_state, detail="backup:ListProtectedResources was denied")]


def estate(volumes=(("vol-1", [{"Key": "backup", "Value": "daily"}]),), instances=(db("orders"),)):
    return rds(instances) + [make("aws.ec2.volumes", {"Volumes": [
        {"VolumeId": vid, "State": "in-use", "Tags": list(tags)} for vid, tags in volumes]}, "us-east-1")]


def test_backup_plans_pass_when_everything_is_protected():
    protected = [f"arn:aws:rds:us-east-1:{ACCT}:db:orders", f"arn:aws:ec2:us-east-1:{ACCT}:volume/vol-1"]
    result = evaluate("aws.backup.plans", backup(protected=protected) + estate())
    assert result.status.value == "pass"
    assert result.findings[0].resource == PLAN and "1 resource selection" in result.findings[0].detail


def test_backup_plans_fail_on_an_unprotected_resource_or_no_selection():
    result = evaluate("aws.backup.plans",
                      backup(protected=[f"arn:aws:rds:us-east-1:{ACCT}:db:orders"]) + estate())
    assert result.status.value == "fail"
    bad, = [f for f in result.findings if f.status.value == "fail"]
    assert bad.resource == f"arn:aws:ec2:us-east-1:{ACCT}:volume/vol-1"
    no_selection = evaluate("aws.backup.plans", backup(selections=0) + estate(volumes=(), instances=()))
    assert no_selection.status.value == "fail"
    assert no_selection.findings[0].detail == "no AWS Backup plan with a resource selection"


def test_backup_tag_limits_what_must_be_protected():
    records = backup(protected=[f"arn:aws:ec2:us-east-1:{ACCT}:volume/vol-1"]) + estate(
        volumes=(("vol-1", [{"Key": "backup", "Value": "daily"}]), ("vol-2", [])),
        instances=(db("orders", TagList=[{"Key": "backup", "Value": "none"}]),))
    assert status("aws.backup.plans", records) == "fail"
    assert status("aws.backup.plans", records, backup_tag="backup=daily") == "pass"
    assert status("aws.backup.plans", records, backup_tag="backup") == "fail"   # orders: backup=none


def test_backup_unknown_plans_or_protected_resources_are_an_error():
    unknown = backup(plans_unknown={PLAN: "backup:ListBackupSelections was denied"})
    result = evaluate("aws.backup.plans", unknown + estate(volumes=(), instances=()))
    assert result.status.value == "error"
    assert {f.resource for f in result.findings} == {PLAN, f"aws:{ACCT}:global:backup"}
    result = evaluate("aws.backup.plans", backup(protected_state="denied") + estate())
    assert result.status.value == "error"
    assert any("protected resources of us-east-1 were not read" in f.detail for f in result.findings)
