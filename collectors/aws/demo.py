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
  (:func:`seed_ids`); a re-run of the demo then shows no AWS resource as new;
* operations moto does not answer (GuardDuty findings, Security Hub standards, Access Analyzer,
  AWS Backup selections and protected resources, snapshot block public access): the server is
  moto behind :data:`collectors.aws.demo_gaps.GAPS`, which answers them in the API reference's
  shape from state the demo seeds (:func:`auditor_estate`);
* CloudWatch Logs delivery: moto's GetTrailStatus has no ``LatestCloudWatchLogsDeliveryTime``,
  so ``aws.cloudtrail.cloudwatch_delivery`` fails in the demo (the trail shows no delivery);
* a certificate about to expire: moto checks an imported certificate against the wall clock,
  so the legacy portal's certificate gets its validity in the in-process ACM backend.
"""
from __future__ import annotations

import json
import logging
import threading
import urllib.request
from datetime import datetime, timedelta, timezone
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

from attest.demo import DemoSource
from attest.demo.http import POLL_S
from collectors.aws.demo_gaps import GAPS
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
    # the controls an auditor expects (seeded by auditor_estate)
    "aws.cloudtrail.cloudwatch_delivery": "fail",  # acme-org-audit: no delivery recorded (moto)
    "aws.cloudtrail.s3_data_events": "pass",       # acme-org-audit records S3 object events
    "aws.guardduty.findings_triaged": "fail",      # SSH brute force on acme-bastion, 12 days open
    "aws.securityhub.enabled": "fail",             # no standard in eu-west-1, no hub in APAC
    "aws.accessanalyzer.enabled": "pass",          # the organization analyzer in every region
    "aws.iam.unused_credentials": "fail",          # ci-deploy's key unused for 412 days
    "aws.iam.no_admin_policies": "fail",           # acme-ops-admin allows * on *
    "aws.iam.no_user_policies": "pass",            # permissions come through groups and roles
    "aws.s3.no_public_buckets": "fail",            # acme-marketing-site grants AllUsers READ
    "aws.s3.tls_only": "fail",                     # acme-flow-logs, acme-marketing-site
    "aws.s3.versioning": "pass",                   # acme-invoices with Object Lock too
    "aws.rds.deletion_protection": "pass",
    "aws.rds.snapshots_private": "pass",           # one shared with the DR account, not with all
    "aws.ebs.snapshots_private": "fail",           # acme-ami-share in eu-west-1 is public
    "aws.logs.retention": "fail",                  # /aws/lambda/acme-thumbnailer keeps 14 days
    "aws.cloudwatch.security_alarms": "pass",      # the six metric filters, alarmed to SNS
    "aws.backup.plans": "fail",                    # nothing in eu-west-1 is backed up
    "aws.elb.https_only": "fail",                  # acme-legacy-portal (classic): no TLS policy
    "aws.elb.access_logs": "pass",
    "aws.ec2.imdsv2": "fail",                      # acme-legacy-batch still allows IMDSv1
    "aws.inspector.enabled": "pass",
    "aws.acm.certificates_valid": "fail",          # the legacy portal's certificate: 12 days left
    "aws.eks.control_plane_logging": "fail",      # acme-eu-data: no authenticator logs
    "aws.eks.secrets_encryption": "fail",         # acme-staging
    "aws.eks.endpoint_not_public": "pass",        # private, or public to the VPN range only
    "aws.eks.supported_version": "fail",          # acme-staging on 1.32 (extended support)
}


class MotoServer:
    """moto's WSGI app behind :data:`GAPS` and :func:`cluster_versions_app` (what moto lacks), on
    a free loopback port."""

    def __init__(self) -> None:
        from moto.moto_server.werkzeug_app import (DomainDispatcherApplication,
                                                   MotoRequestHandler, create_backend_app)
        from werkzeug.serving import make_server
        app = cluster_versions_app(GAPS.wrap(DomainDispatcherApplication(create_backend_app)))
        self._server = make_server("127.0.0.1", 0, app, threaded=True,
                                   request_handler=MotoRequestHandler)
        self._server.block_on_close = False   # as attest.demo.http.LocalServer: stop at once
        self._thread = threading.Thread(target=self._server.serve_forever, args=(POLL_S,),
                                        daemon=True, name="attest-moto")
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def start_server() -> tuple[Any, str]:
    """Start moto's server in this process on a free loopback port: (server, url)."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = MotoServer()
    return server, server.url


def reset(url: str) -> None:
    """Forget every resource moto holds (all accounts, all regions), and the gaps' state."""
    _moto_api(url, "reset")
    GAPS.reset()


def seed_ids(url: str, number: int = ID_SEED) -> None:
    """Seed moto's random source (``POST /moto-api/seed?a=N``): every id moto makes from here on
    (VPC, security group, KMS key, GuardDuty detector, access key...) follows from ``number``, so
    the same calls in the same order give the same ids on every run."""
    _moto_api(url, f"seed?a={int(number)}")


def _moto_api(url: str, path: str) -> None:
    # A reset re-creates every backend the process has used (EC2's loads its data files once per
    # region): seconds after a scan of every region, more on a busy machine. 10 s was too tight.
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/{path}", method="POST"),
                           timeout=120).read()


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
    # seeded last, so that the resources above keep the ids moto gave them before
    auditor_estate(url, home, eu, apac, now, vpc=vpc, web_sg=web["GroupId"])
    _eks(url, home, eu)
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


# --- the estate of the controls an auditor expects ------------------------------------------

DR_ACCOUNT = "210987654321"          # Acme's disaster-recovery account (snapshot sharing)
LEGACY_CERT_DAYS = 12                # the legacy portal's certificate expires this soon
AMI = "ami-12c6146b"                 # one of moto's stock images, in every region
STANDARDS = ("aws-foundational-security-best-practices/v/1.0.0",
             "cis-aws-foundations-benchmark/v/1.4.0")
ADMIN = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
# The six CIS metric filters (CIS AWS Foundations Benchmark, section "Monitoring").
ALARM_FILTERS = {
    "root-use": '{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS && '
                '$.eventType != "AwsServiceEvent" }',
    "unauthorized-api-calls": '{ ($.errorCode = "*UnauthorizedOperation") || '
                              '($.errorCode = "AccessDenied*") }',
    "console-signin-without-mfa": '{ ($.eventName = "ConsoleLogin") && '
                                  '($.additionalEventData.MFAUsed != "Yes") }',
    "iam-policy-changes": "{ " + " || ".join(f"($.eventName = {e})" for e in (
        "DeleteGroupPolicy", "DeleteRolePolicy", "DeleteUserPolicy", "PutGroupPolicy",
        "PutRolePolicy", "PutUserPolicy", "CreatePolicy", "DeletePolicy", "CreatePolicyVersion",
        "DeletePolicyVersion", "AttachRolePolicy", "DetachRolePolicy", "AttachUserPolicy",
        "DetachUserPolicy", "AttachGroupPolicy", "DetachGroupPolicy")) + " }",
    "cloudtrail-changes": "{ " + " || ".join(f"($.eventName = {e})" for e in (
        "CreateTrail", "UpdateTrail", "DeleteTrail", "StartLogging", "StopLogging")) + " }",
    "security-group-changes": "{ " + " || ".join(f"($.eventName = {e})" for e in (
        "AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress",
        "RevokeSecurityGroupIngress", "RevokeSecurityGroupEgress", "CreateSecurityGroup",
        "DeleteSecurityGroup")) + " }",
}


def deny_insecure_transport(bucket: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]})


def auditor_estate(url: str, home: str, eu: str, apac: str, now: datetime, *, vpc: str,
                   web_sg: str) -> None:
    """Detection, access, data and edge resources for the controls an auditor expects."""
    _detection(url, home, eu, apac, now)
    _access(url)
    _data(url, home, eu)
    instances = _compute(url, home, eu, vpc)
    _edge(url, home, eu, vpc, web_sg, now)
    _backups(url, home, now, instances)


def _detection(url: str, home: str, eu: str, apac: str, now: datetime) -> None:
    logs = client(url, "logs", home)
    logs.create_log_group(logGroupName="acme-cloudtrail")
    logs.put_retention_policy(logGroupName="acme-cloudtrail", retentionInDays=400)
    logs.create_log_group(logGroupName="/aws/lambda/acme-thumbnailer")
    logs.put_retention_policy(logGroupName="/aws/lambda/acme-thumbnailer", retentionInDays=14)
    client(url, "logs", eu).create_log_group(logGroupName="/acme/orders-api")   # never expires
    trail = client(url, "cloudtrail", home)
    trail.update_trail(Name="acme-org-audit", CloudWatchLogsLogGroupArn=(
        f"arn:aws:logs:{home}:{ACCOUNT}:log-group:acme-cloudtrail:*"),
        CloudWatchLogsRoleArn=f"arn:aws:iam::{ACCOUNT}:role/acme-cloudtrail-to-logs")
    trail.put_event_selectors(TrailName="acme-org-audit", EventSelectors=[
        {"ReadWriteType": "All", "IncludeManagementEvents": True,
         "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3"]}]}])

    sns = client(url, "sns", home)
    topic = sns.create_topic(Name="acme-security-alerts")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="security@acme-rockets.example")
    cloudwatch = client(url, "cloudwatch", home)
    for name, pattern in ALARM_FILTERS.items():
        logs.put_metric_filter(logGroupName="acme-cloudtrail", filterName=name,
                               filterPattern=pattern, metricTransformations=[{
                                   "metricName": name, "metricNamespace": "CISBenchmark",
                                   "metricValue": "1"}])
        cloudwatch.put_metric_alarm(AlarmName=f"cis-{name}", MetricName=name,
                                    Namespace="CISBenchmark", Statistic="Sum", Period=300,
                                    EvaluationPeriods=1, Threshold=1,
                                    ComparisonOperator="GreaterThanOrEqualToThreshold",
                                    AlarmActions=[topic])

    detectors = {r: client(url, "guardduty", r).list_detectors()["DetectorIds"][0] for r in (home, eu)}
    bastion = {"resourceType": "Instance", "instanceDetails": {"instanceId": "i-0acme0bastion"}}
    GAPS.add_finding(ACCOUNT, home, detectors[home], finding_id="acme0ssh0brute0force0000000000a1",
                     type="UnauthorizedAccess:EC2/SSHBruteForce", severity=8.0,
                     created=now - timedelta(days=12), updated=now - timedelta(days=1),
                     title="SSH brute force attacks against i-0acme0bastion.", resource=bastion)
    GAPS.add_finding(ACCOUNT, home, detectors[home], finding_id="acme0port0probe000000000000000b2",
                     type="Recon:EC2/PortProbeUnprotectedPort", severity=5.0,
                     created=now - timedelta(days=30), title="Unprotected port probed.",
                     resource=bastion)
    GAPS.add_finding(ACCOUNT, home, detectors[home], finding_id="acme0bitcoin0dns00000000000000c3",
                     type="CryptoCurrency:EC2/BitcoinTool.B!DNS", severity=8.0, archived=True,
                     created=now - timedelta(days=45), title="Bitcoin DNS lookups (archived).",
                     resource=bastion)
    GAPS.add_finding(ACCOUNT, eu, detectors[eu], finding_id="acme0iam0anomaly00000000000000d4",
                     type="CredentialAccess:IAMUser/AnomalousBehavior", severity=7.5,
                     created=now - timedelta(days=2), title="Anomalous API calls by ci-deploy.",
                     resource={"resourceType": "AccessKey",
                               "accessKeyDetails": {"userName": "ci-deploy"}})

    for region in (home, eu):
        client(url, "securityhub", region).enable_security_hub(EnableDefaultStandards=False)
    GAPS.enable_standards(ACCOUNT, home, list(STANDARDS))
    for region in (home, eu, apac):
        GAPS.add_analyzer(ACCOUNT, region, "acme-org", now - timedelta(days=200), type="ORGANIZATION")
        client(url, "inspector2", region).enable(accountIds=[ACCOUNT],
                                                 resourceTypes=["EC2", "ECR", "LAMBDA"])


def _access(url: str) -> None:
    iam = client(url, "iam")
    read = iam.create_policy(PolicyName="acme-engineers-read", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
            "ec2:Describe*", "rds:Describe*", "s3:ListAllMyBuckets", "logs:Get*"]}]}))
    iam.create_group(GroupName="engineers")
    iam.attach_group_policy(GroupName="engineers", PolicyArn=read["Policy"]["Arn"])
    for user in ("alice", "bob"):
        iam.add_user_to_group(GroupName="engineers", UserName=user)
    deploy = iam.create_policy(PolicyName="acme-deploy", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:PutObject",
                                                "Resource": "arn:aws:s3:::acme-web-assets/*"}]}))
    iam.create_group(GroupName="deployers")
    iam.attach_group_policy(GroupName="deployers", PolicyArn=deploy["Policy"]["Arn"])
    iam.add_user_to_group(GroupName="deployers", UserName="ci-deploy")
    admin = iam.create_policy(PolicyName="acme-ops-admin", PolicyDocument=json.dumps(ADMIN))
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "sts:AssumeRole",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}}]}
    iam.create_role(RoleName="acme-ops", AssumeRolePolicyDocument=json.dumps(trust))
    iam.attach_role_policy(RoleName="acme-ops", PolicyArn=admin["Policy"]["Arn"])


def _data(url: str, home: str, eu: str) -> None:
    s3 = client(url, "s3", home)
    for bucket in ("acme-cloudtrail-logs", "acme-flow-logs", "acme-invoices", "acme-marketing-site"):
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object_lock_configuration(Bucket="acme-invoices", ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Years": 7}}})
    for bucket in ("acme-cloudtrail-logs", "acme-invoices"):
        s3.put_bucket_policy(Bucket=bucket, Policy=deny_insecure_transport(bucket))
    s3.put_bucket_acl(Bucket="acme-marketing-site", ACL="public-read")

    rds = client(url, "rds", home)
    rds.modify_db_instance(DBInstanceIdentifier="orders-prod", DeletionProtection=True,
                           ApplyImmediately=True)
    rds.modify_db_cluster(DBClusterIdentifier="acme-analytics", DeletionProtection=True,
                          ApplyImmediately=True)
    client(url, "rds", eu).modify_db_instance(DBInstanceIdentifier="legacy-crm",
                                              DeletionProtection=True, ApplyImmediately=True)
    rds.create_db_snapshot(DBInstanceIdentifier="orders-prod",
                           DBSnapshotIdentifier="orders-prod-pre-upgrade")
    rds.modify_db_snapshot_attribute(DBSnapshotIdentifier="orders-prod-pre-upgrade",
                                     AttributeName="restore", ValuesToAdd=[DR_ACCOUNT])
    rds.create_db_cluster_snapshot(DBClusterIdentifier="acme-analytics",
                                   DBClusterSnapshotIdentifier="acme-analytics-2026q3")


def _compute(url: str, home: str, eu: str, vpc: str) -> dict[str, list[str]]:
    """Instances (and so their root volumes) and EBS snapshots; returns volume ids by region."""
    ec2 = client(url, "ec2", home)
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24",
                                 AvailabilityZone=f"{home}{zone}")["Subnet"]["SubnetId"]
               for i, zone in ((1, "a"), (2, "b"))]

    def launch(ec2: Any, name: str, tokens: str, **extra: Any) -> dict[str, Any]:
        return ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="t3.small",
                                 MetadataOptions={"HttpTokens": tokens, "HttpEndpoint": "enabled"},
                                 TagSpecifications=[{"ResourceType": "instance", "Tags": [
                                     {"Key": "Name", "Value": name}]}], **extra)["Instances"][0]

    web = launch(ec2, "acme-web-1", "required", SubnetId=subnets[0])
    old = launch(ec2, "acme-build-old", "optional", SubnetId=subnets[1])
    ec2.stop_instances(InstanceIds=[old["InstanceId"]])     # stopped: not judged for IMDSv2
    ec2_eu = client(url, "ec2", eu)
    legacy = launch(ec2_eu, "acme-legacy-batch", "optional")
    volumes = {home: [v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]],
               eu: [v["VolumeId"] for v in ec2_eu.describe_volumes()["Volumes"]]}

    def root_volume(instance: dict[str, Any]) -> str:
        return instance["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]

    golden = ec2.create_snapshot(VolumeId=root_volume(web), Description="acme-web-golden")
    ec2.create_tags(Resources=[golden["SnapshotId"]], Tags=[{"Key": "Name", "Value": "acme-web-golden"}])
    GAPS.set_snapshot_block(ACCOUNT, home, "block-all-sharing")
    shared = ec2_eu.create_snapshot(VolumeId=root_volume(legacy), Description="acme-ami-share")
    ec2_eu.modify_snapshot_attribute(SnapshotId=shared["SnapshotId"],
                                     Attribute="createVolumePermission", OperationType="add",
                                     GroupNames=["all"])
    return volumes


def _edge(url: str, home: str, eu: str, vpc: str, web_sg: str, now: datetime) -> None:
    acm = client(url, "acm", home)
    web_cert = acm.request_certificate(DomainName="www.acme-rockets.example")["CertificateArn"]
    ec2 = client(url, "ec2", home)
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]]
    elbv2 = client(url, "elbv2", home)
    target = elbv2.create_target_group(Name="acme-web", Protocol="HTTP", Port=80,
                                       VpcId=vpc)["TargetGroups"][0]["TargetGroupArn"]
    forward = [{"Type": "forward", "TargetGroupArn": target}]
    alb = elbv2.create_load_balancer(Name="acme-web", Subnets=subnets, SecurityGroups=[web_sg],
                                     Scheme="internet-facing", Type="application")
    alb_arn = alb["LoadBalancers"][0]["LoadBalancerArn"]
    elbv2.create_listener(LoadBalancerArn=alb_arn, Protocol="HTTPS", Port=443,
                          SslPolicy="ELBSecurityPolicy-TLS13-1-2-2021-06",
                          Certificates=[{"CertificateArn": web_cert}], DefaultActions=forward)
    elbv2.create_listener(LoadBalancerArn=alb_arn, Protocol="HTTP", Port=80, DefaultActions=[{
        "Type": "redirect", "RedirectConfig": {"Protocol": "HTTPS", "Port": "443",
                                               "StatusCode": "HTTP_301"}}])
    nlb = elbv2.create_load_balancer(Name="acme-telemetry", Subnets=subnets, Type="network",
                                     Scheme="internet-facing")
    nlb_arn = nlb["LoadBalancers"][0]["LoadBalancerArn"]
    telemetry = elbv2.create_target_group(Name="acme-telemetry", Protocol="TCP", Port=1883,
                                          VpcId=vpc)["TargetGroups"][0]["TargetGroupArn"]
    elbv2.create_listener(LoadBalancerArn=nlb_arn, Protocol="TLS", Port=8883,
                          SslPolicy="ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
                          Certificates=[{"CertificateArn": web_cert}],
                          DefaultActions=[{"Type": "forward", "TargetGroupArn": telemetry}])
    for arn in (alb_arn, nlb_arn):
        elbv2.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=[
            {"Key": "access_logs.s3.enabled", "Value": "true"},
            {"Key": "access_logs.s3.bucket", "Value": "acme-flow-logs"}])

    legacy_cert = _imported_certificate(url, eu, "portal.acme-rockets.example",
                                        now - timedelta(days=353),
                                        now + timedelta(days=LEGACY_CERT_DAYS))
    client(url, "elb", eu).create_load_balancer(
        LoadBalancerName="acme-legacy-portal", AvailabilityZones=[f"{eu}a"],
        Listeners=[{"Protocol": "HTTPS", "LoadBalancerPort": 443, "InstanceProtocol": "HTTP",
                    "InstancePort": 80, "SSLCertificateId": legacy_cert}])


def _imported_certificate(url: str, region: str, domain: str, not_before: datetime,
                          not_after: datetime) -> str:
    """Import a self-signed certificate valid from ``not_before`` to ``not_after``.

    moto checks an imported certificate against the wall clock, and the demo may be seeded for
    another day: the certificate is imported valid for a year from now, then its validity is
    set in moto's in-process ACM backend (as the stale access key's age is)."""
    from cryptography import x509
    from moto.acm.models import acm_backends

    def make(start: datetime, end: datetime) -> tuple[bytes, bytes]:
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)])
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(4242)
                .not_valid_before(start).not_valid_after(end)
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), False)
                .sign(key, hashes.SHA256()))
        return (cert.public_bytes(serialization.Encoding.PEM),
                key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption()))

    wall = datetime.now(timezone.utc)
    pem, key = make(wall - timedelta(days=1), wall + timedelta(days=365))
    arn = client(url, "acm", region).import_certificate(Certificate=pem, PrivateKey=key)[
        "CertificateArn"]
    wanted, _ = make(not_before, not_after)
    bundle = acm_backends[ACCOUNT][region].get_certificate(arn)
    bundle.cert, bundle._cert = wanted, x509.load_pem_x509_certificate(wanted)  # noqa: SLF001
    return arn


def _backups(url: str, home: str, now: datetime, compute: dict[str, list[str]]) -> None:
    plan = client(url, "backup", home).create_backup_plan(BackupPlan={
        "BackupPlanName": "acme-daily", "Rules": [{
            "RuleName": "daily", "TargetBackupVaultName": "Default",
            "ScheduleExpression": "cron(0 3 * * ? *)", "Lifecycle": {"DeleteAfterDays": 35}}]})
    GAPS.add_backup_selection(ACCOUNT, home, plan["BackupPlanId"], "everything-in-us-east-1",
                              now - timedelta(days=90))
    last = now - timedelta(hours=23)
    rds = f"arn:aws:rds:{home}:{ACCOUNT}"
    GAPS.protect(ACCOUNT, home, f"{rds}:db:orders-prod", "RDS", "orders-prod", last)
    GAPS.protect(ACCOUNT, home, f"{rds}:cluster:acme-analytics", "Aurora", "acme-analytics", last)
    for volume in compute[home]:
        GAPS.protect(ACCOUNT, home, f"arn:aws:ec2:{home}:{ACCOUNT}:volume/{volume}", "EBS",
                     volume, last)


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


# --- EKS -----------------------------------------------------------------------------------
# moto 5.2 has EKS clusters but no DescribeClusterVersions (it answers 404). The demo's moto
# server answers that one call itself, with CLUSTER_VERSIONS, in front of GAPS and moto's own
# WSGI app on the same in-process state. Everything else is GAPS's or moto's answer.

def _version(version: str, status: str, released: str, standard_end: str, extended_end: str,
             patch: str, platform: str, default: bool = False) -> dict[str, Any]:
    """One ClusterVersionInformation, as the EKS API reference shapes it (timestamps in epoch
    seconds, as the REST API sends them)."""
    def epoch(day: str) -> int:
        return int(datetime.fromisoformat(day).replace(tzinfo=timezone.utc).timestamp())
    return {"clusterVersion": version, "clusterType": "eks", "defaultPlatformVersion": platform,
            "defaultVersion": default, "releaseDate": epoch(released),
            "endOfStandardSupportDate": epoch(standard_end),
            "endOfExtendedSupportDate": epoch(extended_end),
            "status": status.lower().replace("_", "-"), "versionStatus": status,
            "kubernetesPatchVersion": patch}


# The EKS version calendar as of late November 2026 (14 months of standard support, then 12 of
# extended support).
CLUSTER_VERSIONS = [
    _version("1.35", "STANDARD_SUPPORT", "2026-01-27", "2027-03-27", "2028-03-27", "1.35.2", "eks.4"),
    _version("1.34", "STANDARD_SUPPORT", "2025-10-02", "2026-12-02", "2027-12-02", "1.34.5", "eks.9",
             default=True),
    _version("1.33", "EXTENDED_SUPPORT", "2025-05-29", "2026-07-29", "2027-07-29", "1.33.9", "eks.16"),
    _version("1.32", "EXTENDED_SUPPORT", "2025-01-23", "2026-03-23", "2027-03-23", "1.32.12", "eks.22"),
    _version("1.31", "EXTENDED_SUPPORT", "2024-09-26", "2025-11-26", "2026-11-26", "1.31.14", "eks.30"),
    _version("1.30", "UNSUPPORTED", "2024-05-23", "2025-07-23", "2026-07-23", "1.30.14", "eks.36"),
]


def cluster_versions_app(app: Any, versions: list[dict[str, Any]] | None = None) -> Any:
    """WSGI: ``GET /cluster-versions`` signed for EKS is answered from ``versions`` (every one
    with ``includeAll=true``, else those still supported); every other request goes to ``app``."""
    import json
    import re
    from urllib.parse import parse_qs
    versions = CLUSTER_VERSIONS if versions is None else versions
    signed_for = re.compile(r"Credential=[^/]+/\d{8}/[a-z0-9-]+/([a-z0-9-]+)/aws4_request")

    def front(environ: dict[str, Any], start_response: Any) -> Any:
        service = signed_for.search(environ.get("HTTP_AUTHORIZATION", ""))
        if (environ.get("PATH_INFO") != "/cluster-versions" or environ.get("REQUEST_METHOD") != "GET"
                or not service or service.group(1) != "eks"):
            return app(environ, start_response)
        query = parse_qs(environ.get("QUERY_STRING", ""))
        everything = query.get("includeAll", ["false"])[0] == "true"
        listed = [v for v in versions if everything or v["versionStatus"] != "UNSUPPORTED"]
        body = json.dumps({"clusterVersions": listed}).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    return front


def versions_front(versions: list[dict[str, Any]] | None = None) -> Any:
    """A local server (not started) answering as moto does, plus DescribeClusterVersions."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from attest.demo.http import LocalServer
    return LocalServer(cluster_versions_app(GAPS.wrap(DomainDispatcherApplication(create_backend_app)),
                                            versions))


EKS_ROLE = f"arn:aws:iam::{ACCOUNT}:role/acme-eks-cluster"
ALL_LOGS = ["api", "audit", "authenticator", "controllerManager", "scheduler"]


def _eks_cluster(eks: Any, name: str, version: str, *, logs: list[str], key: str | None,
                 public: bool, cidrs: list[str] | None = None) -> None:
    vpc: dict[str, Any] = {"subnetIds": ["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002"],
                           "endpointPublicAccess": public, "endpointPrivateAccess": True}
    if cidrs:
        vpc["publicAccessCidrs"] = cidrs
    extra: dict[str, Any] = {}
    if key:
        extra["encryptionConfig"] = [{"resources": ["secrets"], "provider": {"keyArn": key}}]
    eks.create_cluster(name=name, version=version, roleArn=EKS_ROLE, resourcesVpcConfig=vpc,
                       logging={"clusterLogging": [{"types": logs, "enabled": True}]}, **extra)


def _eks(url: str, home: str, eu: str) -> None:
    """Three clusters: acme-prod passes everything; acme-staging keeps secrets unencrypted and
    runs 1.32 (extended support), its public endpoint limited to the VPN range; acme-eu-data
    sends no authenticator logs."""
    keys = {}
    for region in (home, eu):
        kms = client(url, "kms", region)
        keys[region] = kms.create_key(Description="acme-eks-secrets")["KeyMetadata"]["Arn"]
        kms.enable_key_rotation(KeyId=keys[region])
    eks = client(url, "eks", home)
    _eks_cluster(eks, "acme-prod", "1.34", logs=ALL_LOGS, key=keys[home], public=False)
    _eks_cluster(eks, "acme-staging", "1.32", logs=["api", "audit", "authenticator"], key=None,
                 public=True, cidrs=["198.51.100.0/24"])
    _eks_cluster(client(url, "eks", eu), "acme-eu-data", "1.34", logs=["api", "audit"],
                 key=keys[eu], public=False)
