"""Data protection controls: S3, RDS storage and backups, EBS default encryption, KMS rotation."""
from __future__ import annotations

from typing import Any, Iterator

from attest.model import EvidenceState, Finding, errored, failed, passed
from controls.rules import EvidenceView, rule
from controls.rules._aws import offered, resource

PAB_SETTINGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")


def _bucket_arn(bucket: dict[str, Any]) -> str:
    return bucket.get("BucketArn") or f"arn:aws:s3:::{bucket['Name']}"


@rule("aws.s3.public_access_blocked")
def s3_public_access_blocked(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    for record in ev.get("aws.s3.buckets"):
        account_record = ev.one("aws.s3control.public_access_block", record.scope)
        account: dict[str, Any] | None = None   # None: the account-level setting is unknown
        if account_record is not None:
            account = ((account_record.payload or {}).get("PublicAccessBlockConfiguration", {})
                       if account_record.state is EvidenceState.OK else {})
        for bucket in (record.payload or {}).get("Buckets", []):
            own = (bucket.get("GetPublicAccessBlock") or {}).get("PublicAccessBlockConfiguration", {})
            missing = [s for s in PAB_SETTINGS if not own.get(s) and not (account or {}).get(s)]
            if not missing:
                yield passed(_bucket_arn(bucket), "all four public access block settings apply")
            elif account is None:
                yield errored(_bucket_arn(bucket), "the account-level public access block was not "
                                                   "read and the bucket lacks " + ", ".join(missing))
            else:
                yield failed(_bucket_arn(bucket), "not blocked at bucket or account level: "
                             + ", ".join(missing))


@rule("aws.s3.encrypted")
def s3_encrypted(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    for record in ev.get("aws.s3.buckets"):
        for bucket in (record.payload or {}).get("Buckets", []):
            config = (bucket.get("GetBucketEncryption") or {}).get(
                "ServerSideEncryptionConfiguration") or {}
            algorithms = [r.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm")
                          for r in config.get("Rules", [])]
            algorithms = [a for a in algorithms if a]
            if not algorithms:
                yield failed(_bucket_arn(bucket), "no default encryption")
            elif params["require_kms"] and not any(a in KMS_ALGORITHMS for a in algorithms):
                yield failed(_bucket_arn(bucket), f"default encryption is {algorithms[0]}; SSE-KMS "
                                                  "is required")
            else:
                yield passed(_bucket_arn(bucket), f"default encryption {algorithms[0]}")


@rule("aws.rds.storage_encrypted")
def rds_storage_encrypted(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    for _, _, _, payload in offered(ev.get("aws.rds.instances")):
        for db in payload.get("DBInstances", []):
            if db.get("DBClusterIdentifier"):
                continue  # Aurora and Multi-AZ cluster members: storage is the cluster's
            if db.get("StorageEncrypted"):
                yield passed(db["DBInstanceArn"], "storage encrypted")
            else:
                yield failed(db["DBInstanceArn"], "storage is not encrypted")
    for _, _, _, payload in offered(ev.get("aws.rds.clusters")):
        for cluster in payload.get("DBClusters", []):
            if cluster.get("StorageEncrypted"):
                yield passed(cluster["DBClusterArn"], "cluster storage encrypted")
            else:
                yield failed(cluster["DBClusterArn"], "cluster storage is not encrypted")


@rule("aws.rds.backups")
def rds_backups(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    min_days = params["min_days"]
    for record, _, _, payload in offered(ev.get("aws.rds.instances")):
        clusters_record = ev.one("aws.rds.clusters", record.scope)
        clusters = {c["DBClusterIdentifier"]: c
                    for c in ((clusters_record.payload or {}) if clusters_record else {})
                    .get("DBClusters", [])}
        for db in payload.get("DBInstances", []):
            arn = db["DBInstanceArn"]
            if db.get("ReadReplicaSourceDBInstanceIdentifier"):
                continue  # a read replica is backed up through its source
            cluster_id = db.get("DBClusterIdentifier")
            if cluster_id:
                if cluster_id not in clusters:
                    yield errored(arn, f"its cluster {cluster_id} was not read")
                    continue
                days, where = clusters[cluster_id].get("BackupRetentionPeriod", 0), f"cluster {cluster_id}"
            else:
                days, where = db.get("BackupRetentionPeriod", 0), "instance"
            if days >= min_days:
                yield passed(arn, f"{where} keeps automated backups {days} days")
            else:
                yield failed(arn, f"{where} keeps automated backups {days} days (< {min_days})")


@rule("aws.ebs.default_encryption")
def ebs_default_encryption(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    for _, account, region, payload in offered(ev.get("aws.ec2.ebs_encryption_by_default")):
        where = resource(account, region, "ec2")
        if payload.get("EbsEncryptionByDefault"):
            yield passed(where, "EBS encryption by default is on")
        else:
            yield failed(where, "EBS encryption by default is off")


@rule("aws.kms.rotation")
def kms_rotation(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    for _, _, _, payload in offered(ev.get("aws.kms.keys")):
        for key in payload.get("Keys", []):
            meta = (key.get("DescribeKey") or {}).get("KeyMetadata", {})
            spec = meta.get("KeySpec", meta.get("CustomerMasterKeySpec"))
            if (meta.get("KeyManager") != "CUSTOMER" or spec != "SYMMETRIC_DEFAULT"
                    or meta.get("KeyState") != "Enabled"):
                continue
            arn = meta.get("Arn") or key.get("KeyArn", key["KeyId"])
            if meta.get("Origin", "AWS_KMS") != "AWS_KMS":
                yield failed(arn, f"key material origin {meta['Origin']} cannot rotate "
                                  "automatically: rotate it by hand and record an exception")
            elif "GetKeyRotationStatus" not in key:
                yield errored(arn, "rotation status was not read")
            elif (key["GetKeyRotationStatus"] or {}).get("KeyRotationEnabled"):
                yield passed(arn, "automatic rotation is on")
            else:
                yield failed(arn, "automatic rotation is off")
