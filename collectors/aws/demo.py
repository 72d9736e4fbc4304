"""The AWS estate of "Acme Rockets" on an in-process moto server, with known control outcomes.

:func:`start_demo` starts moto on 127.0.0.1 (a free port), seeds it with boto3 over HTTP and
returns the ``aws`` config section pointing the real collector at it. Tests reuse
:func:`start_server`, :func:`reset` and :func:`seed`. Moto's state is process-global: call
:func:`reset` before seeding a fresh estate.

What moto cannot express, and how the demo handles it:

* the root user: moto's credential report has no ``<root_account>`` row and its account
  summary always says ``AccountMFAEnabled 0`` and ``AccountAccessKeysPresent 0`` (and has no
  ``AccountPasswordPresent``), so root MFA always fails and root access keys always pass;
* GuardDuty's delegated administrator: moto answers GetAdministratorAccount with
  ``Administrator``/``AccountId`` where the API says ``administrator``/``accountId``, so boto3
  drops it; the demo has no delegated administrator (pure rule tests cover that case);
* key age: moto stamps access keys with the current time and has no API to change it, so the
  stale CI key is back-dated in moto's in-process IAM backend (this needs the server to run in
  this process, as :func:`start_server` does);
* stable ids: moto makes up VPC, security group, KMS key, detector and access key ids from one
  random source, so :func:`seed` first seeds it through moto's ``/moto-api/seed`` endpoint
  (:func:`seed_ids`); a re-run of the demo then shows no AWS resource as new.
"""
from __future__ import annotations

import logging
import urllib.request
from datetime import datetime, timedelta, timezone
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

from attest.demo import DemoSource
from collectors.aws.session import pin_endpoint_host

ACCOUNT = "123456789012"            # moto's default account for any access key
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
       "AWS_DEFAULT_REGION": "us-east-1"}
STALE_KEY_DAYS = 412
ID_SEED = 20261                     # moto's random source, seeded before the estate (seed_ids)

EXPECTED = {
    "aws.cloudtrail.multi_region": "pass",        # acme-org-audit: multi-region, logging, all events
    "aws.cloudtrail.log_validation": "fail",      # acme-dev-debug has no validation
    "aws.cloudtrail.kms_encrypted": "pass",
    "aws.guardduty.enabled": "fail",              # no detector in ap-southeast-2
    "aws.rds.storage_encrypted": "fail",          # legacy-crm
    "aws.rds.not_public": "pass",
    "aws.rds.backups": "pass",                    # Aurora member judged by its cluster's 7 days
    "aws.s3.public_access_blocked": "pass",       # account-level block covers every bucket
    "aws.s3.encrypted": "fail",                   # acme-marketing-site
    "aws.iam.root_mfa": "fail",                   # moto cannot give root MFA
    "aws.iam.root_no_access_keys": "pass",
    "aws.iam.user_mfa": "fail",                   # bob
    "aws.iam.access_key_rotation": "fail",        # ci-deploy, back-dated
    "aws.iam.password_policy": "pass",
    "aws.kms.rotation": "fail",                   # acme-invoices key in eu-west-1
    "aws.ebs.default_encryption": "fail",         # off in ap-southeast-2
    "aws.vpc.flow_logs": "pass",
    "aws.ec2.no_open_admin_ports": "fail",        # acme-bastion: 22 from 0.0.0.0/0
    "aws.config.recorder": "pass",
}


def start_server() -> tuple[Any, str]:
    """Start moto's server in this process on a free loopback port: (server, url)."""
    from moto.server import ThreadedMotoServer
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


def reset(url: str) -> None:
    """Forget every resource moto holds (all accounts, all regions)."""
    _moto_api(url, "reset")


def seed_ids(url: str, number: int = ID_SEED) -> None:
    """Seed moto's random source (``POST /moto-api/seed?a=N``): every id moto makes from here on
    (VPC, security group, KMS key, GuardDuty detector, access key...) follows from ``number``, so
    the same calls in the same order give the same ids on every run."""
    _moto_api(url, f"seed?a={int(number)}")


def _moto_api(url: str, path: str) -> None:
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/{path}", method="POST"),
                           timeout=10).read()


def client(url: str, service: str, region: str = "us-east-1", **credentials: str) -> Any:
    creds = credentials or {"aws_access_key_id": ENV["AWS_ACCESS_KEY_ID"],
                            "aws_secret_access_key": ENV["AWS_SECRET_ACCESS_KEY"]}
    made = boto3.client(service, region_name=region, endpoint_url=url, **creds,
                        config=BotoConfig(s3={"addressing_style": "path"}))
    if service == "s3control":
        pin_endpoint_host(made, url)
    return made


def _bucket(s3: Any, name: str, region: str, algorithm: str | None, key: str | None = None) -> None:
    extra = {} if region == "us-east-1" else {
        "CreateBucketConfiguration": {"LocationConstraint": region}}
    s3.create_bucket(Bucket=name, **extra)
    if algorithm:
        default: dict[str, str] = {"SSEAlgorithm": algorithm}
        if key:
            default["KMSMasterKeyID"] = key
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": default}]})


def seed(url: str, regions: tuple[str, ...] | list[str] = REGIONS,
         now: datetime | None = None) -> dict[str, str]:
    """Create Acme Rockets' estate in three regions (home, EU, APAC); return EXPECTED."""
    home, eu, apac = regions[:3]
    now = now or datetime.now(timezone.utc)
    seed_ids(url)

    kms = {r: client(url, "kms", r) for r in (home, eu)}
    trail_key = kms[home].create_key(Description="acme-trail-key")["KeyMetadata"]["Arn"]
    kms[home].enable_key_rotation(KeyId=trail_key)
    invoices_key = kms[eu].create_key(Description="acme-invoices-key")["KeyMetadata"]["Arn"]

    s3 = client(url, "s3", home)
    _bucket(s3, "acme-cloudtrail-logs", home, "aws:kms", trail_key)
    _bucket(s3, "acme-flow-logs", home, "AES256")
    _bucket(s3, "acme-invoices", eu, "aws:kms", invoices_key)
    _bucket(s3, "acme-marketing-site", apac, None)
    client(url, "s3control", home).put_public_access_block(
        AccountId=ACCOUNT, PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True,
            "BlockPublicPolicy": True, "RestrictPublicBuckets": True})

    _trails(url, home, eu, trail_key, invoices_key)
    _iam(url, now)

    guardduty = client(url, "guardduty", home)
    guardduty.create_detector(Enable=True)
    client(url, "guardduty", eu).create_detector(Enable=True)

    _rds(url, home, eu)
    for region in regions:
        _network_and_config(url, region, enable_ebs=region != apac)
    ec2 = client(url, "ec2", home)
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    _flow_log(ec2, vpc)
    bastion = ec2.create_security_group(GroupName="acme-bastion", Description="SSH", VpcId=vpc)
    ec2.authorize_security_group_ingress(GroupId=bastion["GroupId"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    web = ec2.create_security_group(GroupName="acme-web", Description="HTTPS", VpcId=vpc)
    ec2.authorize_security_group_ingress(GroupId=web["GroupId"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    return dict(EXPECTED)


def _trails(url: str, home: str, eu: str, trail_key: str, eu_key: str) -> None:
    cloudtrail = client(url, "cloudtrail", home)
    cloudtrail.create_trail(Name="acme-org-audit", S3BucketName="acme-cloudtrail-logs",
                            IsMultiRegionTrail=True, EnableLogFileValidation=True,
                            KmsKeyId=trail_key)
    cloudtrail.put_event_selectors(TrailName="acme-org-audit", EventSelectors=[
        {"ReadWriteType": "All", "IncludeManagementEvents": True}])
    cloudtrail.start_logging(Name="acme-org-audit")
    cloudtrail_eu = client(url, "cloudtrail", eu)
    cloudtrail_eu.create_trail(Name="acme-dev-debug", S3BucketName="acme-invoices",
                               KmsKeyId=eu_key)
    cloudtrail_eu.put_event_selectors(TrailName="acme-dev-debug", EventSelectors=[
        {"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True}])
    cloudtrail_eu.start_logging(Name="acme-dev-debug")


def _iam(url: str, now: datetime) -> None:
    iam = client(url, "iam")
    iam.update_account_password_policy(
        MinimumPasswordLength=16, RequireSymbols=True, RequireNumbers=True,
        RequireUppercaseCharacters=True, RequireLowercaseCharacters=True,
        PasswordReusePrevention=24, MaxPasswordAge=90)
    for user in ("alice", "bob", "ci-deploy"):
        iam.create_user(UserName=user)
    for user in ("alice", "bob"):
        iam.create_login_profile(UserName=user, Password="Correct-Horse-42!")
    serial = iam.create_virtual_mfa_device(VirtualMFADeviceName="alice")["VirtualMFADevice"]["SerialNumber"]
    iam.enable_mfa_device(UserName="alice", SerialNumber=serial,
                          AuthenticationCode1="123456", AuthenticationCode2="654321")
    iam.create_access_key(UserName="alice")
    iam.create_access_key(UserName="ci-deploy")
    _backdate_access_keys("ci-deploy", now - timedelta(days=STALE_KEY_DAYS))
    # created long before the scan, as in a real account (moto stamps the wall clock)
    for user in ("alice", "bob", "ci-deploy"):
        backdate_user(user, now - timedelta(days=STALE_KEY_DAYS + 30))
    _backdate_access_keys("alice", now - timedelta(days=30))


def _backdate_access_keys(user: str, when: datetime, key_id: str | None = None) -> None:
    """Moto has no API for a key's creation time: set it in the in-process IAM backend (every
    key of ``user``, or the one ``key_id``)."""
    from moto.iam.models import iam_backends
    for key in iam_backends[ACCOUNT]["global"].users[user].access_keys:
        if key_id is None or key.access_key_id == key_id:
            key.create_date = when.astimezone(timezone.utc).replace(tzinfo=None)


def backdate_user(user: str, when: datetime) -> None:
    """Set an IAM user's creation time (the credential report's user_creation_time), which moto
    stamps with the wall clock, in the in-process IAM backend."""
    from moto.iam.models import iam_backends
    iam_backends[ACCOUNT]["global"].users[user].create_date = \
        when.astimezone(timezone.utc).replace(tzinfo=None)


def backdate_access_key(user: str, key_id: str, when: datetime) -> None:
    """Set one access key's creation time (the credential report's access_key_N_last_rotated)."""
    _backdate_access_keys(user, when, key_id)


def _rds(url: str, home: str, eu: str) -> None:
    rds = client(url, "rds", home)
    rds.create_db_instance(DBInstanceIdentifier="orders-prod", DBInstanceClass="db.m6g.large",
                           Engine="postgres", AllocatedStorage=100, MasterUsername="acme",
                           MasterUserPassword="not-a-real-password", StorageEncrypted=True,
                           PubliclyAccessible=False, BackupRetentionPeriod=14)
    rds.create_db_cluster(DBClusterIdentifier="acme-analytics", Engine="aurora-postgresql",
                          MasterUsername="acme", MasterUserPassword="not-a-real-password",
                          StorageEncrypted=True, BackupRetentionPeriod=7)
    rds.create_db_instance(DBInstanceIdentifier="acme-analytics-1", DBInstanceClass="db.r6g.large",
                           Engine="aurora-postgresql", DBClusterIdentifier="acme-analytics",
                           PubliclyAccessible=False)
    client(url, "rds", eu).create_db_instance(
        DBInstanceIdentifier="legacy-crm", DBInstanceClass="db.t3.medium", Engine="mysql",
        AllocatedStorage=20, MasterUsername="acme", MasterUserPassword="not-a-real-password",
        StorageEncrypted=False, PubliclyAccessible=False, BackupRetentionPeriod=7)


def _flow_log(ec2: Any, vpc_id: str) -> None:
    ec2.create_flow_logs(ResourceIds=[vpc_id], ResourceType="VPC", TrafficType="ALL",
                         LogDestinationType="s3", LogDestination="arn:aws:s3:::acme-flow-logs")


def _network_and_config(url: str, region: str, enable_ebs: bool) -> None:
    ec2 = client(url, "ec2", region)
    if enable_ebs:
        ec2.enable_ebs_encryption_by_default()
    for vpc in ec2.describe_vpcs()["Vpcs"]:
        _flow_log(ec2, vpc["VpcId"])
    config = client(url, "config", region)
    config.put_configuration_recorder(ConfigurationRecorder={
        "name": "default", "roleARN": f"arn:aws:iam::{ACCOUNT}:role/aws-config",
        "recordingGroup": {"allSupported": True, "includeGlobalResourceTypes": region == "us-east-1"}})
    config.put_delivery_channel(DeliveryChannel={"name": "default",
                                                 "s3BucketName": "acme-cloudtrail-logs"})
    config.start_configuration_recorder(ConfigurationRecorderName="default")


def start_demo(now: datetime) -> DemoSource:
    server, url = start_server()
    try:
        reset(url)  # moto's state is per process: start from an empty estate
        seed(url, REGIONS, now)
    except BaseException:
        server.stop()
        raise
    return DemoSource(section={"regions": list(REGIONS), "endpoint_url": url}, env=dict(ENV),
                      expected=dict(EXPECTED), stop=server.stop)
