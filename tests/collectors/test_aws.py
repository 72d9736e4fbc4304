"""The AWS collector end to end: boto3 over real HTTP against an in-process moto server (and a
loopback proxy in front of it for denials), then the real rules through the engine."""
from __future__ import annotations

import json
import threading
from datetime import timedelta

import boto3

from collectors.aws import demo as seed_aws
from collectors.aws.demo import ACCOUNT, client
from collectors.aws.demo_gaps import GAPS
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
    with seed_aws.versions_front() as front:   # moto + eks:DescribeClusterVersions, as the demo
        records = collect(front, DEMO)

    assert statuses(records) == expected
    assert {(r.name, r.scope, r.state) for r in records if r.state is not EvidenceState.OK} == {
        ("aws.eks.cluster_versions", scope(DEMO[2]), EvidenceState.ABSENT)}   # no cluster there
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
    seed_aws._eks_cluster(client(url, "eks"), "acme-tools", "1.35", logs=seed_aws.ALL_LOGS,
                          key=f"arn:aws:kms:{HOME}:{ACCOUNT}:key/eks", public=True,
                          cidrs=["0.0.0.0/0"])
    _seed_flipped_auditor(url, web["GroupId"])


def _seed_flipped_auditor(url: str, web_sg: str) -> None:
    """The flipped estate of the controls an auditor expects (see seed_aws.auditor_estate)."""
    s3 = client(url, "s3")
    s3.put_bucket_policy(Bucket="acme-logs", Policy=seed_aws.deny_insecure_transport("acme-logs"))
    logs = client(url, "logs")
    logs.create_log_group(logGroupName="acme-app")
    logs.put_retention_policy(logGroupName="acme-app", retentionInDays=731)
    for region in (HOME, EU):
        client(url, "securityhub", region).enable_security_hub()
        GAPS.enable_standards(ACCOUNT, region, ["aws-foundational-security-best-practices/v/1.0.0"])
        client(url, "inspector2", region).enable(accountIds=[ACCOUNT], resourceTypes=["EC2"])
    detector = client(url, "guardduty").list_detectors()["DetectorIds"][0]
    GAPS.add_finding(ACCOUNT, HOME, detector, finding_id="fresh", type="Recon:IAMUser/MaliciousIPCaller",
                     severity=7.2, created=NOW - timedelta(days=1), title="fresh",
                     resource={"resourceType": "AccessKey"})
    GAPS.add_analyzer(ACCOUNT, HOME, "unused", NOW, type="ACCOUNT_UNUSED_ACCESS")
    iam = client(url, "iam")
    iam.put_user_policy(UserName="carol", PolicyName="carol-s3", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                                                "Resource": "arn:aws:s3:::acme-logs/*"}]}))
    rds = client(url, "rds")
    rds.create_db_snapshot(DBInstanceIdentifier="reporting", DBSnapshotIdentifier="reporting-export")
    rds.modify_db_snapshot_attribute(DBSnapshotIdentifier="reporting-export",
                                     AttributeName="restore", ValuesToAdd=["all"])
    ec2 = client(url, "ec2")
    instance = ec2.run_instances(ImageId=seed_aws.AMI, MinCount=1, MaxCount=1,
                                 MetadataOptions={"HttpTokens": "required"})["Instances"][0]
    volume = instance["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
    ec2.create_snapshot(VolumeId=volume, Description="private")
    plan = client(url, "backup").create_backup_plan(BackupPlan={"BackupPlanName": "daily", "Rules": [
        {"RuleName": "daily", "TargetBackupVaultName": "Default"}]})
    GAPS.add_backup_selection(ACCOUNT, HOME, plan["BackupPlanId"], "all", NOW)
    GAPS.protect(ACCOUNT, HOME, f"arn:aws:rds:{HOME}:{ACCOUNT}:db:reporting", "RDS", "reporting", NOW)
    GAPS.protect(ACCOUNT, HOME, f"arn:aws:ec2:{HOME}:{ACCOUNT}:volume/{volume}", "EBS", volume, NOW)
    cert = client(url, "acm").request_certificate(DomainName="app.acme.example")["CertificateArn"]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]][:2]
    elbv2 = client(url, "elbv2")
    lb = elbv2.create_load_balancer(Name="app", Subnets=subnets, SecurityGroups=[web_sg])
    target = elbv2.create_target_group(Name="app", Protocol="HTTP", Port=80,
                                       VpcId=ec2.describe_vpcs()["Vpcs"][0]["VpcId"])
    elbv2.create_listener(LoadBalancerArn=lb["LoadBalancers"][0]["LoadBalancerArn"], Protocol="HTTPS",
                          Port=443, SslPolicy="ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
                          Certificates=[{"CertificateArn": cert}], DefaultActions=[
                              {"Type": "forward",
                               "TargetGroupArn": target["TargetGroups"][0]["TargetGroupArn"]}])


def test_flipped_estate_and_parameters(moto):
    _seed_flipped(moto)
    with seed_aws.versions_front() as front:
        records = collect(front, [HOME, EU])
    flipped = {cid: {"pass": "fail", "fail": "pass"}[status]
               for cid, status in seed_aws.EXPECTED.items()}
    flipped["aws.iam.root_mfa"] = "fail"              # moto has no way to give root MFA
    flipped["aws.iam.root_no_access_keys"] = "pass"   # ... nor root access keys
    # moto records no CloudWatch Logs delivery (and acme-local is single-region)
    flipped["aws.cloudtrail.cloudwatch_delivery"] = "fail"
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


# --- per-resource reads: one that fails costs only its resource ------------------------------

def test_one_unreadable_bucket_costs_only_that_bucket_and_the_listing_is_read_once(moto):
    s3 = client(moto, "s3")
    for name in ("acme-a", "acme-b", "acme-c"):
        s3.create_bucket(Bucket=name)
    s3.put_bucket_acl(Bucket="acme-c", ACL="public-read")

    def acl_of_b(region: str, service: str, body: bytes, path: str) -> bool:
        return service == "s3" and path.startswith("/acme-b?acl")

    proxy = DenyingProxy(moto, acl_of_b, with_path=True)
    with proxy as url:
        records = collect(url, [HOME])
    acls = record(records, "aws.s3.bucket_acls", GLOBAL)
    assert acls.state is EvidenceState.PARTIAL
    assert list(acls.unknown) == ["arn:aws:s3:::acme-b"]
    assert "s3:GetBucketAcl was denied (bucket acme-b)" in acls.unknown["arn:aws:s3:::acme-b"]
    assert [b["Name"] for b in acls.payload["Buckets"]] == ["acme-a", "acme-c"]
    for name in ("aws.s3.buckets", "aws.s3.bucket_policies", "aws.s3.bucket_versioning"):
        assert record(records, name, GLOBAL).state is EvidenceState.OK, name
    result = evaluate("aws.s3.no_public_buckets", records)
    assert {f.resource: f.status.value for f in result.findings} == {
        "arn:aws:s3:::acme-a": "pass", "arn:aws:s3:::acme-b": "error", "arn:aws:s3:::acme-c": "fail"}
    assert evaluate("aws.s3.versioning", records).findings[1].status.value == "fail"   # still judged
    # four S3 evidence items, one listing: ListBuckets once (with MaxBuckets, so that AWS gives
    # each bucket's region; moto does not, hence GetBucketLocation), each bucket's location once
    s3_paths = [(method, path) for service, method, path in proxy.paths if service == "s3"]
    assert s3_paths.count(("GET", "/?max-buckets=10000")) == 1
    assert sorted(p for m, p in s3_paths if p.endswith("?location")) == [
        "/acme-a?location", "/acme-b?location", "/acme-c?location"]
    assert acls.request["operations"] == ["s3:GetBucketAcl", "s3:GetBucketLocation",
                                          "s3:ListAllMyBuckets"]


def test_a_denied_bucket_listing_leaves_every_s3_item_denied(moto):
    client(moto, "s3").create_bucket(Bucket="acme-a")
    with DenyingProxy(moto, lambda region, service, body, path: service == "s3"
                      and path.split("?")[0] == "/", with_path=True) as url:
        records = collect(url, [HOME])
    for name in ("aws.s3.buckets", "aws.s3.bucket_policies", "aws.s3.bucket_acls",
                 "aws.s3.bucket_versioning"):
        denied = record(records, name, GLOBAL)
        assert denied.state is EvidenceState.DENIED and "s3:ListAllMyBuckets was denied" in denied.detail
    for control in ("aws.s3.no_public_buckets", "aws.s3.tls_only", "aws.s3.versioning"):
        assert evaluate(control, records).status.value == "error"


def test_unreadable_load_balancer_snapshots_and_plans_cost_only_themselves(moto):
    ec2 = client(moto, "ec2")
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]][:2]
    elbv2 = client(moto, "elbv2")
    arns = {}
    for name in ("front", "hidden"):
        arns[name] = elbv2.create_load_balancer(Name=name, Subnets=subnets)["LoadBalancers"][0][
            "LoadBalancerArn"]
        elbv2.create_listener(LoadBalancerArn=arns[name], Protocol="HTTP", Port=80, DefaultActions=[
            {"Type": "redirect", "RedirectConfig": {"Protocol": "HTTPS", "StatusCode": "HTTP_301"}}])
    volume = ec2.create_volume(AvailabilityZone=f"{HOME}a", Size=8)["VolumeId"]
    snaps = [ec2.create_snapshot(VolumeId=volume)["SnapshotId"] for _ in range(2)]
    rds = client(moto, "rds")
    rds.create_db_instance(DBInstanceIdentifier="db1", DBInstanceClass="db.t3.micro", Engine="postgres",
                           AllocatedStorage=20, MasterUsername="acme", MasterUserPassword="not-a-real-pw1",
                           StorageEncrypted=True)
    for name in ("keep", "hide"):
        rds.create_db_snapshot(DBInstanceIdentifier="db1", DBSnapshotIdentifier=name)
    detector = client(moto, "guardduty").create_detector(Enable=True)["DetectorId"]
    plan = client(moto, "backup").create_backup_plan(BackupPlan={
        "BackupPlanName": "daily", "Rules": [{"RuleName": "d", "TargetBackupVaultName": "Default"}]})

    def deny(region: str, service: str, body: bytes, path: str) -> bool:
        hidden_lb = arns["hidden"].split("/", 1)[1].replace("/", "%2F").encode()
        return ((b"Action=DescribeListeners" in body and hidden_lb in body)
                or (b"Action=DescribeSnapshotAttribute" in body and snaps[1].encode() in body)
                or (b"Action=DescribeDBSnapshotAttributes" in body and b"=hide" in body)
                or (service == "guardduty" and path.endswith("/findings"))
                or (service == "backup" and "/selections" in path))

    with DenyingProxy(moto, deny, with_path=True) as url:
        records = collect(url, [HOME])
    expected_unknown = {
        "aws.elbv2.listeners": arns["hidden"],
        "aws.ec2.snapshots": f"arn:aws:ec2:{HOME}:{ACCOUNT}:snapshot/{snaps[1]}",
        "aws.rds.snapshots": f"arn:aws:rds:{HOME}:{ACCOUNT}:snapshot:hide",
        "aws.guardduty.findings": f"arn:aws:guardduty:{HOME}:{ACCOUNT}:detector/{detector}",
        "aws.backup.plans": plan["BackupPlanArn"],
    }
    for name, key in expected_unknown.items():
        partial = record(records, name, scope(HOME))
        assert partial.state is EvidenceState.PARTIAL and list(partial.unknown) == [key], name
        assert "was denied" in partial.unknown[key]
    assert record(records, "aws.elbv2.attributes", scope(HOME)).state is EvidenceState.OK
    for control, judged in (("aws.elb.https_only", arns["front"]),
                            ("aws.ebs.snapshots_private", f"arn:aws:ec2:{HOME}:{ACCOUNT}:snapshot/{snaps[0]}"),
                            ("aws.rds.snapshots_private", f"arn:aws:rds:{HOME}:{ACCOUNT}:snapshot:keep")):
        result = evaluate(control, records)
        verdicts = {f.resource: f.status.value for f in result.findings}
        assert result.status.value == "error" and verdicts[judged] == "pass", control
        assert "error" in verdicts.values()
    assert evaluate("aws.guardduty.findings_triaged", records).status.value == "error"
    backups = {f.resource: f.status.value for f in evaluate("aws.backup.plans", records).findings}
    assert backups[plan["BackupPlanArn"]] == backups[f"aws:{ACCOUNT}:global:backup"] == "error"
    assert backups[f"arn:aws:rds:{HOME}:{ACCOUNT}:db:db1"] == "fail"      # still judged


def test_new_regional_evidence_denied_in_one_region_is_an_error(moto):
    for region in (HOME, EU):
        client(moto, "securityhub", region).enable_security_hub()
        GAPS.enable_standards(ACCOUNT, region, ["aws-foundational-security-best-practices/v/1.0.0"])
        GAPS.add_analyzer(ACCOUNT, region, "acme", NOW, type="ACCOUNT")
        client(moto, "inspector2", region).enable(accountIds=[ACCOUNT],
                                                  resourceTypes=["EC2", "ECR", "LAMBDA"])
    records = collect(moto, [HOME, EU])
    for control in ("aws.securityhub.enabled", "aws.accessanalyzer.enabled", "aws.inspector.enabled"):
        assert evaluate(control, records).status.value == "pass", control
    with DenyingProxy(moto, lambda region, service, body: region == EU) as url:
        records = collect(url, [HOME, EU])
    for name, action in (("aws.securityhub.hub", "securityhub:DescribeHub"),
                         ("aws.accessanalyzer.analyzers", "access-analyzer:ListAnalyzers"),
                         ("aws.inspector2.account_status", "inspector2:BatchGetAccountStatus"),
                         ("aws.ec2.snapshot_block_public_access", "ec2:GetSnapshotBlockPublicAccessState"),
                         ("aws.acm.certificates", "acm:ListCertificates")):
        denied = record(records, name, scope(EU))
        assert denied.state is EvidenceState.DENIED and f"{action} was denied" in denied.detail, name
    for control in ("aws.securityhub.enabled", "aws.accessanalyzer.enabled", "aws.inspector.enabled"):
        result = evaluate(control, records)
        assert result.status.value == "error"
        assert {f.status.value for f in result.findings} == {"pass", "error"}
