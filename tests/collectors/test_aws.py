"""The AWS collector end to end: boto3 over real HTTP against an in-process moto server (and a
loopback proxy in front of it for denials), then the real rules through the engine."""
from __future__ import annotations

import json
import threading
from datetime import timedelta

import boto3

from collectors.aws import demo as seed_aws
from collectors.aws.demo import ACCOUNT, client
from attest.model import EvidenceState
from collectors.aws.collector import ACCOUNT_EVIDENCE
from collectors.aws.specs import PRODUCES, SPECS
from tests.collectors.aws_fixtures import NOW, DenyingProxy, collect, evaluate, record, statuses

DEMO = list(seed_aws.REGIONS)
HOME, EU = "us-east-1", "eu-west-1"
GLOBAL = f"aws:{ACCOUNT}:global"


def scope(region: str, account: str = ACCOUNT) -> str:
    return f"aws:{account}:{region}"


def test_demo_estate_gives_the_expected_outcome_for_every_control(moto):
    expected = seed_aws.seed(moto, DEMO, NOW)
    records = collect(moto, DEMO)

    assert statuses(records) == expected
    assert {r.state for r in records} == {EvidenceState.OK}
    assert "ResponseMetadata" not in json.dumps([r.payload for r in records], default=str)
    # S3 Control through the custom endpoint (the before-sign hook keeps the host)
    block = record(records, "aws.s3control.public_access_block", GLOBAL)
    assert block.payload["PublicAccessBlockConfiguration"]["BlockPublicPolicy"] is True
    # the credential report's CSV is decoded into rows
    rows = record(records, "aws.iam.credential_report", GLOBAL).payload["Rows"]
    assert {r["user"] for r in rows} == {"alice", "bob", "ci-deploy"}
    # a multi-region trail shows everywhere; its status is read in its home region only
    home_trails = record(records, "aws.cloudtrail.trails", scope(HOME)).payload["trailList"]
    eu_trails = {t["Name"]: t for t in record(records, "aws.cloudtrail.trails", scope(EU)).payload["trailList"]}
    assert home_trails[0]["GetTrailStatus"]["IsLogging"] is True
    assert "GetTrailStatus" not in eu_trails["acme-org-audit"]
    assert eu_trails["acme-dev-debug"]["GetEventSelectors"]["EventSelectors"][0]["ReadWriteType"] == "WriteOnly"
    # every record says which IAM actions it used, sorted (bucket threads add them in any order)
    assert record(records, "aws.kms.keys", scope(EU)).request["operations"] == [
        "kms:DescribeKey", "kms:GetKeyRotationStatus", "kms:ListKeys"]
    assert record(records, "aws.s3.buckets", GLOBAL).request["operations"] == [
        "s3:GetBucketLocation", "s3:GetBucketPublicAccessBlock", "s3:GetEncryptionConfiguration",
        "s3:ListAllMyBuckets"]


def _seed_flipped(url: str) -> None:
    """An estate where each control the demo fails passes, and the reverse (root aside)."""
    s3 = client(url, "s3")
    s3.create_bucket(Bucket="acme-logs")
    s3.put_bucket_encryption(Bucket="acme-logs", ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    trail = client(url, "cloudtrail")
    trail.create_trail(Name="acme-local", S3BucketName="acme-logs", EnableLogFileValidation=True)
    trail.start_logging(Name="acme-local")
    for region in (HOME, EU):
        client(url, "guardduty", region).create_detector(Enable=True)
        client(url, "ec2", region).enable_ebs_encryption_by_default()
    client(url, "rds").create_db_instance(
        DBInstanceIdentifier="reporting", DBInstanceClass="db.t3.small", Engine="postgres",
        AllocatedStorage=20, MasterUsername="acme", MasterUserPassword="not-a-real-password",
        StorageEncrypted=True, PubliclyAccessible=True, BackupRetentionPeriod=1)
    iam = client(url, "iam")
    iam.create_user(UserName="carol")
    iam.create_login_profile(UserName="carol", Password="Correct-Horse-42!")
    serial = iam.create_virtual_mfa_device(VirtualMFADeviceName="carol")["VirtualMFADevice"]["SerialNumber"]
    iam.enable_mfa_device(UserName="carol", SerialNumber=serial, AuthenticationCode1="123456",
                          AuthenticationCode2="654321")
    iam.create_access_key(UserName="carol")
    kms = client(url, "kms", EU)
    kms.enable_key_rotation(KeyId=kms.create_key()["KeyMetadata"]["KeyId"])
    kms.disable_key(KeyId=kms.create_key()["KeyMetadata"]["KeyId"])  # disabled: not judged
    ec2 = client(url, "ec2")
    web = ec2.create_security_group(GroupName="web", Description="HTTPS")
    ec2.authorize_security_group_ingress(GroupId=web["GroupId"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])


def test_flipped_estate_and_parameters(moto):
    _seed_flipped(moto)
    records = collect(moto, [HOME, EU])
    flipped = {cid: {"pass": "fail", "fail": "pass"}[status]
               for cid, status in seed_aws.EXPECTED.items()}
    flipped["aws.iam.root_mfa"] = "fail"              # moto has no way to give root MFA
    flipped["aws.iam.root_no_access_keys"] = "pass"   # ... nor root access keys
    assert statuses(records) == flipped
    assert record(records, "aws.iam.password_policy", GLOBAL).state is EvidenceState.ABSENT
    assert record(records, "aws.s3control.public_access_block", GLOBAL).state is EvidenceState.ABSENT
    # parameters change the verdicts
    encrypted = evaluate("aws.s3.encrypted", records, require_kms=True)
    assert encrypted.status.value == "fail" and "AES256" in encrypted.findings[0].detail
    assert evaluate("aws.rds.backups", records, min_days=1).status.value == "pass"
    later = evaluate("aws.iam.access_key_rotation", records, now=NOW + timedelta(days=400))
    assert later.status.value == "fail" and "(max 90)" in later.findings[0].detail


def _databases(url: str, count: int) -> None:
    rds = client(url, "rds")
    for i in range(count):
        rds.create_db_instance(DBInstanceIdentifier=f"db-{i}", DBInstanceClass="db.t3.micro",
                               Engine="postgres", AllocatedStorage=20, MasterUsername="acme",
                               MasterUserPassword="not-a-real-password")


def test_pages_are_followed_and_merged(moto):
    # Of the paginated calls, moto pages only DescribeDBInstances: it ignores the page size of
    # DescribeVpcs, DescribeSecurityGroups and ListKeys, and cuts ListBuckets at MaxBuckets
    # without returning a ContinuationToken.
    _databases(moto, 5)
    proxy = DenyingProxy(moto, lambda region, service, body: False)
    with proxy as url:
        records = collect(url, [HOME], page_size=2)
    instances = record(records, "aws.rds.instances", scope(HOME)).payload
    assert len(instances["DBInstances"]) == 5 and "Marker" not in instances
    assert proxy.count(b"Action=DescribeDBInstances") == 3


def test_a_failing_later_page_is_partial_and_never_a_pass(moto):
    _databases(moto, 5)

    def second_page(region: str, service: str, body: bytes) -> bool:
        return b"Action=DescribeDBInstances" in body and b"Marker=" in body

    with DenyingProxy(moto, second_page) as url:
        records = collect(url, [HOME], page_size=2)
    instances = record(records, "aws.rds.instances", scope(HOME))
    assert instances.state is EvidenceState.PARTIAL
    assert "page 2" in instances.detail and "rds:DescribeDBInstances was denied" in instances.detail
    assert len(instances.payload["DBInstances"]) == 2
    assert evaluate("aws.rds.not_public", records).status.value == "error"


def test_access_denied_in_one_region_is_an_error_not_a_pass(moto):
    for region in (HOME, EU):
        client(moto, "ec2", region).enable_ebs_encryption_by_default()
        client(moto, "guardduty", region).create_detector(Enable=True)
    assert evaluate("aws.ebs.default_encryption", collect(moto, [HOME, EU])).status.value == "pass"

    with DenyingProxy(moto, lambda region, service, body: region == EU) as url:
        records = collect(url, [HOME, EU])
    ebs = record(records, "aws.ec2.ebs_encryption_by_default", scope(EU))
    assert ebs.state is EvidenceState.DENIED
    assert "ec2:GetEbsEncryptionByDefault was denied" in ebs.detail
    assert record(records, "aws.ec2.ebs_encryption_by_default", scope(HOME)).state is EvidenceState.OK
    eu_records = [r for r in records if r.scope == scope(EU)]
    assert eu_records and all(r.state is EvidenceState.DENIED for r in eu_records)
    assert "guardduty:ListDetectors" in record(records, "aws.guardduty.detectors", scope(EU)).detail
    assert "rds:DescribeDBInstances" in record(records, "aws.rds.instances", scope(EU)).detail
    for control in ("aws.ebs.default_encryption", "aws.guardduty.enabled"):
        result = evaluate(control, records)
        assert result.status.value == "error"
        assert {f.status.value for f in result.findings} == {"pass", "error"}


class NoGuardDutyInEu(boto3.Session):
    """botocore's endpoint data, minus GuardDuty in eu-west-1 (as for a newly launched region)."""

    def get_available_regions(self, service_name, partition_name="aws", allow_non_regional=False):
        regions = super().get_available_regions(service_name, partition_name, allow_non_regional)
        return [r for r in regions if (service_name, r) != ("guardduty", EU)]


def test_a_region_without_the_service_has_no_resources(moto):
    client(moto, "guardduty", HOME).create_detector(Enable=True)
    records = collect(moto, [HOME, EU], session_factory=NoGuardDutyInEu)
    missing = record(records, "aws.guardduty.detectors", scope(EU))
    assert missing.state is EvidenceState.ABSENT
    assert missing.detail == f"service not offered in {EU}"
    assert record(records, "aws.ec2.vpcs", scope(EU)).state is EvidenceState.OK
    assert evaluate("aws.guardduty.enabled", records).status.value == "pass"


class CountingSession(boto3.Session):
    """Records each ``get_available_regions`` call and the thread that made it."""
    calls: list[tuple[str, str]] = []

    def get_available_regions(self, service_name, partition_name="aws", allow_non_regional=False):
        self.calls.append((service_name, threading.current_thread().name))
        return super().get_available_regions(service_name, partition_name, allow_non_regional)


def test_offered_regions_are_read_once_per_service_on_the_main_thread(moto, monkeypatch):
    monkeypatch.setattr(CountingSession, "calls", [])
    collect(moto, [HOME, EU], session_factory=CountingSession)
    services = sorted({s.service for s in SPECS if s.scope == "regional"})
    assert sorted(service for service, _ in CountingSession.calls) == services
    assert {thread for _, thread in CountingSession.calls} == {threading.current_thread().name}


def test_accounts_by_assumed_role_and_profile(moto, tmp_path, monkeypatch):
    prod_role = "arn:aws:iam::111122223333:role/attest-audit"
    creds = client(moto, "sts").assume_role(RoleArn=prod_role, RoleSessionName="seed")["Credentials"]
    client(moto, "s3", aws_access_key_id=creds["AccessKeyId"],
           aws_secret_access_key=creds["SecretAccessKey"],
           aws_session_token=creds["SessionToken"]).create_bucket(Bucket="acme-prod-data")
    client(moto, "s3").create_bucket(Bucket="acme-dev-scratch")
    (tmp_path / "credentials").write_text(
        "[acme-dev]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))

    proxy = DenyingProxy(moto, lambda region, service, body: False)
    with proxy as url:
        records = collect(url, [HOME], accounts=[
            {"role_arn": prod_role, "external_id": "acme-attest-7f3a"},
            {"profile": "acme-dev"},
            {"profile": "does-not-exist"}])

    def bucket_names(account: str) -> list[str]:
        return [b["Name"] for b in record(records, "aws.s3.buckets", f"aws:{account}:global").payload["Buckets"]]

    assert bucket_names("111122223333") == ["acme-prod-data"]
    assert bucket_names(ACCOUNT) == ["acme-dev-scratch"]
    identity = record(records, "aws.sts.caller_identity", "aws:111122223333:global").payload
    assert ":assumed-role/attest-audit/attest" in identity["Arn"]
    assert proxy.count(b"ExternalId=acme-attest-7f3a") == 1
    # an account that cannot be opened gets a record for every evidence name, the others go on
    broken = [r for r in records if r.scope == "aws:does-not-exist:global"]
    assert sorted(r.name for r in broken) == sorted(ACCOUNT_EVIDENCE)
    assert all(r.state is EvidenceState.ERROR and "ProfileNotFound" in r.detail for r in broken)


def test_all_enabled_regions_and_progress(moto):
    steps: list[str] = []
    records = collect(moto, "all", progress=steps.append, max_workers=16)
    regions = {r.scope.split(":")[2] for r in records} - {"global"}
    listed = record(records, "aws.ec2.regions", GLOBAL).payload["Regions"]
    assert regions == {r["RegionName"] for r in listed if r["OptInStatus"] != "not-opted-in"}
    assert len(steps) == len(records)
    assert f"aws {ACCOUNT} {HOME} aws.kms.keys" in steps
