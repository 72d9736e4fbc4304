"""Storage controls: public and plain-text access to S3, versioning, RDS deletion protection and
snapshots, public EBS snapshots, AWS Backup coverage."""
from __future__ import annotations

import json
from typing import Any, Iterator

from attest.model import Evidence, Finding, errored, failed, passed
from controls.rules import EvidenceView, rule
from controls.rules._aws import account_region, as_list, offered, resource, tags

PUBLIC_GROUPS = {"http://acs.amazonaws.com/groups/global/AllUsers": "AllUsers",
                 "http://acs.amazonaws.com/groups/global/AuthenticatedUsers": "AuthenticatedUsers"}


def _bucket_arn(bucket: dict[str, Any]) -> str:
    return bucket.get("BucketArn") or f"arn:aws:s3:::{bucket['Name']}"


def _buckets(record: Evidence | None) -> dict[str, dict[str, Any]]:
    return {_bucket_arn(b): b for b in ((record.payload or {}) if record else {}).get("Buckets", [])}


# --- aws.s3.no_public_buckets ---------------------------------------------------------------

@rule("aws.s3.no_public_buckets")
def s3_no_public_buckets(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    scopes = sorted({r.scope for r in ev.get("aws.s3.bucket_policies")}
                    | {r.scope for r in ev.get("aws.s3.bucket_acls")})
    for scope in scopes:
        policies_record = ev.one("aws.s3.bucket_policies", scope)
        acls_record = ev.one("aws.s3.bucket_acls", scope)
        policies, acls = _buckets(policies_record), _buckets(acls_record)
        for arn in sorted(set(policies) | set(acls)):
            if arn not in policies or arn not in acls:
                missing = "policy status" if arn not in policies else "ACL"
                yield errored(arn, f"the bucket's {missing} was not read")
                continue
            status = (policies[arn].get("GetBucketPolicyStatus") or {}).get("PolicyStatus") or {}
            grants = (acls[arn].get("GetBucketAcl") or {}).get("Grants", [])
            public = [f"ACL grants {g.get('Permission')} to {PUBLIC_GROUPS[g['Grantee']['URI']]}"
                      for g in grants if (g.get("Grantee") or {}).get("URI") in PUBLIC_GROUPS]
            if status.get("IsPublic"):
                public.insert(0, "its bucket policy makes it public")
            if public:
                yield failed(arn, "; ".join(public))
            else:
                yield passed(arn, "not public by policy or ACL")


# --- aws.s3.tls_only ------------------------------------------------------------------------

def _denies_plain_http(statement: dict[str, Any], arn: str) -> bool:
    if statement.get("Effect") != "Deny":
        return False
    principal = statement.get("Principal")
    everyone = principal == "*" or (isinstance(principal, dict)
                                    and "*" in as_list(principal.get("AWS")))
    actions = {str(a).lower() for a in as_list(statement.get("Action"))}
    objects = set(as_list(statement.get("Resource"))) & {"*", f"{arn}/*", f"{arn}*"}
    secure = None
    for operator, conditions in (statement.get("Condition") or {}).items():
        if operator.lower() in ("bool", "boolifexists"):
            for key, value in conditions.items():
                if key.lower() == "aws:securetransport":
                    secure = [str(v).lower() for v in as_list(value)]
    return everyone and bool(actions & {"s3:*", "*"}) and bool(objects) and secure == ["false"]


@rule("aws.s3.tls_only")
def s3_tls_only(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    for record in ev.get("aws.s3.bucket_policies"):
        for arn, bucket in sorted(_buckets(record).items()):
            text = (bucket.get("GetBucketPolicy") or {}).get("Policy")
            if not text:
                yield failed(arn, "no bucket policy, so plain-HTTP requests are not denied")
                continue
            try:
                policy = json.loads(text) if isinstance(text, str) else text
            except ValueError as exc:
                yield errored(arn, f"the bucket policy is not JSON: {exc}")
                continue
            denying = [s.get("Sid") or f"statement {i + 1}"
                       for i, s in enumerate(as_list(policy.get("Statement")))
                       if _denies_plain_http(s, arn)]
            if denying:
                yield passed(arn, f"policy denies aws:SecureTransport false ({denying[0]})")
            else:
                yield failed(arn, "the bucket policy does not deny requests with "
                                  "aws:SecureTransport false for every principal and object")


# --- aws.s3.versioning ----------------------------------------------------------------------

@rule("aws.s3.versioning")
def s3_versioning(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    for record in ev.get("aws.s3.bucket_versioning"):
        for arn, bucket in sorted(_buckets(record).items()):
            status = (bucket.get("GetBucketVersioning") or {}).get("Status")
            lock = (bucket.get("GetObjectLockConfiguration") or {}).get(
                "ObjectLockConfiguration") or {}
            facts: dict[str, Any] = {}
            note = ""
            if lock.get("ObjectLockEnabled") == "Enabled":
                retention = (lock.get("Rule") or {}).get("DefaultRetention") or {}
                period = (f"{retention['Years']} years" if retention.get("Years")
                          else f"{retention.get('Days')} days" if retention.get("Days") else "")
                facts["object_lock"] = {"mode": retention.get("Mode"), "retention": period or None}
                note = "; Object Lock on" + (f" ({retention.get('Mode')}, {period})"
                                             if retention.get("Mode") else "")
            if status == "Enabled":
                yield passed(arn, "versioning enabled" + note, **facts)
            else:
                yield failed(arn, f"versioning {(status or 'never enabled').lower()}" + note, **facts)


# --- aws.rds.deletion_protection ------------------------------------------------------------

@rule("aws.rds.deletion_protection")
def rds_deletion_protection(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    for _, _, _, payload in offered(ev.get("aws.rds.instances")):
        for db in payload.get("DBInstances", []):
            if db.get("DBClusterIdentifier"):
                continue    # Aurora and Multi-AZ cluster members: the setting is the cluster's
            if db.get("DeletionProtection"):
                yield passed(db["DBInstanceArn"], "deletion protection on")
            else:
                yield failed(db["DBInstanceArn"], "deletion protection off")
    for _, _, _, payload in offered(ev.get("aws.rds.clusters")):
        for cluster in payload.get("DBClusters", []):
            if cluster.get("DeletionProtection"):
                yield passed(cluster["DBClusterArn"], "cluster deletion protection on")
            else:
                yield failed(cluster["DBClusterArn"], "cluster deletion protection off")


# --- aws.rds.snapshots_private --------------------------------------------------------------

def _restorers(attributes: list[dict[str, Any]]) -> list[str]:
    return [v for a in attributes if a.get("AttributeName") == "restore"
            for v in a.get("AttributeValues", [])]


@rule("aws.rds.snapshots_private")
def rds_snapshots_private(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    def judge(arn: str, encrypted: bool, restorers: list[str]) -> Finding:
        problems = []
        if "all" in restorers:
            problems.append("shared with all AWS accounts (public)")
        if not encrypted:
            problems.append("not encrypted")
        if problems:
            return failed(arn, "; ".join(problems))
        shared = f"; shared with {', '.join(restorers)}" if restorers else ""
        return passed(arn, "private and encrypted" + shared)

    for _, _, _, payload in offered(ev.get("aws.rds.snapshots")):
        for snap in payload.get("DBSnapshots", []):
            attributes = (snap.get("DescribeDBSnapshotAttributes") or {}).get(
                "DBSnapshotAttributesResult", {}).get("DBSnapshotAttributes", [])
            yield judge(snap["DBSnapshotArn"], bool(snap.get("Encrypted")), _restorers(attributes))
    for _, _, _, payload in offered(ev.get("aws.rds.cluster_snapshots")):
        for snap in payload.get("DBClusterSnapshots", []):
            attributes = (snap.get("DescribeDBClusterSnapshotAttributes") or {}).get(
                "DBClusterSnapshotAttributesResult", {}).get("DBClusterSnapshotAttributes", [])
            yield judge(snap["DBClusterSnapshotArn"], bool(snap.get("StorageEncrypted")),
                        _restorers(attributes))


# --- aws.ebs.snapshots_private --------------------------------------------------------------

@rule("aws.ebs.snapshots_private")
def ebs_snapshots_private(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    for record, account, region, payload in offered(ev.get("aws.ec2.snapshots")):
        block_record = ev.one("aws.ec2.snapshot_block_public_access", record.scope)
        block = None if block_record is None else (block_record.payload or {}).get("State")
        for snap in payload.get("Snapshots", []):
            arn = f"arn:aws:ec2:{region}:{account}:snapshot/{snap['SnapshotId']}"
            permissions = (snap.get("DescribeSnapshotAttribute") or {}).get(
                "CreateVolumePermissions", [])
            if not any(p.get("Group") == "all" for p in permissions):
                yield passed(arn, "not public")
            elif block == "block-all-sharing":
                yield passed(arn, "shared with all, but snapshot block public access blocks all "
                                  "public sharing in the region")
            elif block_record is None:
                yield errored(arn, "shared with all; the region's snapshot block public access "
                                   "state was not read")
            else:
                yield failed(arn, f"public: anyone can create a volume from it (block public "
                                  f"access: {block or 'unknown'})")


# --- aws.backup.plans -----------------------------------------------------------------------

def _tagged(tag_list: list[dict[str, Any]] | None, wanted: str | None) -> bool:
    if not wanted:
        return True
    key, _, value = wanted.partition("=")
    found = tags(tag_list)
    return key in found and (not value or found[key] == value)


def _backup_candidates(ev: EvidenceView, wanted: str | None) -> Iterator[tuple[str, str, str]]:
    """(scope, ARN, kind) of every RDS instance (not in a cluster, not a read replica), RDS
    cluster and EBS volume carrying the backup tag (any, when no tag is configured)."""
    for record, _, _, payload in offered(ev.get("aws.rds.instances")):
        for db in payload.get("DBInstances", []):
            if (not db.get("DBClusterIdentifier") and not db.get("ReadReplicaSourceDBInstanceIdentifier")
                    and _tagged(db.get("TagList"), wanted)):
                yield record.scope, db["DBInstanceArn"], "RDS instance"
    for record, _, _, payload in offered(ev.get("aws.rds.clusters")):
        for cluster in payload.get("DBClusters", []):
            if _tagged(cluster.get("TagList"), wanted):
                yield record.scope, cluster["DBClusterArn"], "RDS cluster"
    for record, account, region, payload in offered(ev.get("aws.ec2.volumes")):
        for volume in payload.get("Volumes", []):
            if _tagged(volume.get("Tags"), wanted):
                yield (record.scope, f"arn:aws:ec2:{region}:{account}:volume/{volume['VolumeId']}",
                       "EBS volume")


@rule("aws.backup.plans")
def backup_plans(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    wanted = params.get("backup_tag")
    plan_records = ev.get("aws.backup.plans")
    for account in sorted({account_region(r)[0] for r in plan_records}):
        mine = [r for r in plan_records if account_region(r)[0] == account]
        with_selection = [p for r in mine for p in (r.payload or {}).get("BackupPlansList", [])
                          if ((p.get("ListBackupSelections") or {}).get("BackupSelectionsList"))]
        if with_selection:
            plan = with_selection[0]
            count = len(plan["ListBackupSelections"]["BackupSelectionsList"])
            yield passed(plan["BackupPlanArn"], f"plan {plan.get('BackupPlanName')} has {count} "
                                                f"resource selection{'s' * (count != 1)}")
        elif any(r.unknown for r in mine):
            yield errored(resource(account, "global", "backup"),
                          "some backup plans' selections were not read")
        else:
            yield failed(resource(account, "global", "backup"),
                         "no AWS Backup plan with a resource selection")
    protected: dict[str, set[str] | None] = {}
    for scope, arn, kind in _backup_candidates(ev, wanted):
        if scope not in protected:
            record = ev.one("aws.backup.protected_resources", scope)
            protected[scope] = None if record is None else {
                r.get("ResourceArn") for r in (record.payload or {}).get("Results", [])}
        found = protected[scope]
        if found is None:
            yield errored(arn, f"the protected resources of {scope.split(':')[2]} were not read")
        elif arn in found:
            yield passed(arn, f"{kind} has a recovery point in AWS Backup")
        else:
            yield failed(arn, f"{kind} is not a protected resource: AWS Backup holds no "
                              "recovery point of it")
