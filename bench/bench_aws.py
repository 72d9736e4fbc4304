"""Benchmark: a whole AWS scan of a ~500-resource account over 5 regions (run by hand, never as a
timed unit test):

    .venv/bin/python bench/bench_aws.py [--runs 5] [--out bench/results/aws.md]

1. Starts moto (with the demo's answers for what moto lacks, ``collectors/aws/demo_gaps.py``) in a
   separate process and seeds it there with about 500 resources in 5 regions: buckets with
   policies, ACLs and versioning, IAM users, groups, roles and policies, instances with their
   volumes, snapshots, security groups, VPCs, log groups, metric filters and alarms, load
   balancers, certificates, RDS instances and snapshots, KMS keys, GuardDuty findings, backup
   plans...
2. Runs ``attest scan --config CONFIG`` for AWS only (the whole AWS catalog) as a subprocess,
   ``--runs`` times after one warm-up, each under ``/usr/bin/time -v``: wall time from
   interpreter start to the bundle written, and the scan process's peak RSS.
3. Writes the figures, the machine and the versions to ``--out``; exit 1 if a target is missed.

Targets (2-core machine): median wall < 6 s, peak RSS < 200 MB.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2"]
TARGET_WALL_S = 6.0
TARGET_RSS_MB = 200.0


# --- the seeded account (runs in the server process) ----------------------------------------

def seed_large(url: str, now: datetime, regions: list[str] | tuple[str, ...] = REGIONS, *,
               scale: int = 1, account: str | None = None, prefix: str = "acme",
               id_seed: int | None = None, **credentials: str) -> dict[str, int]:
    """About 500 resources over ``regions`` (about 75 a region, 116 account-wide); returns the
    count of each kind.

    ``bench/bench_scale.py`` reuses it: ``scale`` divides every count (at least one of each
    kind), ``account`` and ``credentials`` (an assumed role's keys) seed another account of the
    same moto server, ``prefix`` names its buckets (S3 names are global), and ``id_seed`` seeds
    moto's ids first (default: the demo's seed; ``0``: not seeded again, for a second account)."""
    from collectors.aws.demo import (ACCOUNT, ALARM_FILTERS, AMI, GAPS, ID_SEED, client,
                                     deny_insecure_transport, seed_ids)
    account = account or ACCOUNT
    if id_seed is None:
        id_seed = ID_SEED
    if id_seed:
        seed_ids(url, id_seed)
    counts: dict[str, int] = {}

    def n(full: int) -> int:
        return max(1, full // scale)

    def count(kind: str, k: int = 1) -> None:
        counts[kind] = counts.get(kind, 0) + k

    def aws(service: str, region: str = "us-east-1") -> Any:
        return client(url, service, region, **credentials)

    offered = {service: set(boto3.Session().get_available_regions(service))
               for service in ("ec2", "kms", "logs", "rds", "acm", "elbv2", "guardduty",
                               "securityhub", "inspector2", "backup", "config", "sns", "cloudwatch")}
    bucket = f"{prefix}-data"
    iam = aws("iam")
    iam.update_account_password_policy(MinimumPasswordLength=14, RequireSymbols=True)
    scoped = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}-0/*"}]})
    admin = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"}]})
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "ec2.amazonaws.com"}}]})
    n_groups = n(5)
    policies = [iam.create_policy(PolicyName=f"acme-policy-{i}", PolicyDocument=admin if i == 0 else scoped)
                ["Policy"]["Arn"] for i in range(max(n(20), n_groups + 1))]
    count("iam policies", len(policies))
    for g in range(n_groups):
        iam.create_group(GroupName=f"team-{g}")
        iam.attach_group_policy(GroupName=f"team-{g}", PolicyArn=policies[g + 1])
    count("iam groups", n_groups)
    for u in range(n(30)):
        iam.create_user(UserName=f"user-{u}")
        iam.add_user_to_group(GroupName=f"team-{u % n_groups}", UserName=f"user-{u}")
        if u % 3 == 0:
            iam.create_access_key(UserName=f"user-{u}")
        if u % 10 == 0:
            iam.put_user_policy(UserName=f"user-{u}", PolicyName="extra", PolicyDocument=scoped)
    count("iam users", n(30))
    n_roles = n(20)
    for r in range(n_roles):
        iam.create_role(RoleName=f"role-{r}", AssumeRolePolicyDocument=trust)
        iam.attach_role_policy(RoleName=f"role-{r}", PolicyArn=policies[r % len(policies)])
    count("iam roles", n_roles)
    recorder_role = f"arn:aws:iam::{account}:role/role-{min(1, n_roles - 1)}"

    s3 = aws("s3")
    for b in range(n(40)):
        region = regions[b % len(regions)]
        name = f"{bucket}-{b}"
        extra = {} if region == "us-east-1" else {
            "CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=name, **extra)
        if b % 2:
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
            s3.put_bucket_policy(Bucket=name, Policy=deny_insecure_transport(name))
        if b % 3:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    count("s3 buckets", n(40))

    trail = aws("cloudtrail")
    trail.create_trail(Name="org-audit", S3BucketName=f"{bucket}-0", IsMultiRegionTrail=True,
                       EnableLogFileValidation=True, CloudWatchLogsLogGroupArn=(
                           f"arn:aws:logs:us-east-1:{account}:log-group:org-audit:*"),
                       CloudWatchLogsRoleArn=f"arn:aws:iam::{account}:role/role-0")
    trail.start_logging(Name="org-audit")
    count("cloudtrail trails")

    for i, region in enumerate(regions):
        def here(service: str) -> bool:
            return region in offered[service]
        ec2 = aws("ec2", region)
        vpc = ec2.create_vpc(CidrBlock=f"10.{i}.0.0/16")["Vpc"]["VpcId"]
        zones = sorted(z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"])
        subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.{i}.{z}.0/24",
                                     AvailabilityZone=zone)["Subnet"]["SubnetId"]
                   for z, zone in ((1, zones[0]), (2, zones[1]))]
        count("vpcs and subnets", 3)
        groups = []
        for g in range(n(10)):
            sg = ec2.create_security_group(GroupName=f"sg-{g}", Description="bench", VpcId=vpc)
            groups.append(sg["GroupId"])
            ec2.authorize_security_group_ingress(GroupId=sg["GroupId"], IpPermissions=[{
                "IpProtocol": "tcp", "FromPort": 22 if g == 0 else 443, "ToPort": 22 if g == 0 else 443,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        count("security groups", n(10))
        instances = ec2.run_instances(ImageId=AMI, MinCount=n(10), MaxCount=n(10), InstanceType="t3.micro",
                                      SubnetId=subnets[0], MetadataOptions={"HttpTokens": "required"})
        count("instances and their volumes", 2 * n(10))
        for k, instance in enumerate(instances["Instances"][:n(6)]):
            volume = instance["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
            snap = ec2.create_snapshot(VolumeId=volume, Description=f"snap-{k}")["SnapshotId"]
            if k == 0 and i == 0:
                ec2.modify_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission",
                                              OperationType="add", GroupNames=["all"])
        count("ebs snapshots", min(n(6), n(10)))
        ec2.create_flow_logs(ResourceIds=[vpc], ResourceType="VPC", TrafficType="ALL",
                             LogDestinationType="s3", LogDestination=f"arn:aws:s3:::{bucket}-0")
        ec2.enable_ebs_encryption_by_default()

        kms = aws("kms", region)
        for k in range(n(6)):
            key = kms.create_key(Description=f"key-{k}")["KeyMetadata"]["KeyId"]
            if k % 2:
                kms.enable_key_rotation(KeyId=key)
        count("kms keys", n(6))

        logs = aws("logs", region)
        for g in range(n(10)):
            logs.create_log_group(logGroupName=f"/acme/app-{g}")
            if g % 2:
                logs.put_retention_policy(logGroupName=f"/acme/app-{g}", retentionInDays=400)
        count("log groups", n(10))
        if region == "us-east-1":
            logs.create_log_group(logGroupName="org-audit")
            sns = aws("sns", region)
            topic = sns.create_topic(Name="security-alerts")["TopicArn"]
            sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="sec@example.com")
            cloudwatch = aws("cloudwatch", region)
            for name, pattern in ALARM_FILTERS.items():
                logs.put_metric_filter(logGroupName="org-audit", filterName=name, filterPattern=pattern,
                                       metricTransformations=[{"metricName": name, "metricNamespace": "CIS",
                                                               "metricValue": "1"}])
                cloudwatch.put_metric_alarm(AlarmName=name, MetricName=name, Namespace="CIS",
                                            Statistic="Sum", Period=300, EvaluationPeriods=1,
                                            Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold",
                                            AlarmActions=[topic])
            count("metric filters and alarms", 2 * len(ALARM_FILTERS))

        n_db = n(4)
        if here("rds"):
            rds = aws("rds", region)
            for d in range(n_db):
                rds.create_db_instance(DBInstanceIdentifier=f"db-{d}", DBInstanceClass="db.t3.micro",
                                       Engine="postgres", AllocatedStorage=20, MasterUsername="acme",
                                       MasterUserPassword="not-a-real-password", StorageEncrypted=d > 0,
                                       BackupRetentionPeriod=7, DeletionProtection=d % 2 == 0)
            for d in range(min(n(2), n_db)):
                rds.create_db_snapshot(DBInstanceIdentifier=f"db-{d}", DBSnapshotIdentifier=f"db-{d}-manual")
            count("rds instances", n_db)
            count("rds snapshots", min(n(2), n_db))

        if here("acm") and here("elbv2"):
            acm = aws("acm", region)
            certs = [acm.request_certificate(DomainName=f"svc{c}.{region}.acme.example")["CertificateArn"]
                     for c in range(n(4))]
            count("acm certificates", n(4))
            elbv2 = aws("elbv2", region)
            for k in range(min(n(2), n(4))):
                lb = elbv2.create_load_balancer(Name=f"alb-{k}", Subnets=subnets,
                                                SecurityGroups=groups[1:2] or groups[:1])
                arn = lb["LoadBalancers"][0]["LoadBalancerArn"]
                target = elbv2.create_target_group(Name=f"tg-{k}", Protocol="HTTP", Port=80, VpcId=vpc)
                elbv2.create_listener(LoadBalancerArn=arn, Protocol="HTTPS", Port=443,
                                      SslPolicy="ELBSecurityPolicy-TLS13-1-2-2021-06",
                                      Certificates=[{"CertificateArn": certs[k]}], DefaultActions=[
                                          {"Type": "forward",
                                           "TargetGroupArn": target["TargetGroups"][0]["TargetGroupArn"]}])
                elbv2.create_listener(LoadBalancerArn=arn, Protocol="HTTP", Port=80, DefaultActions=[{
                    "Type": "redirect", "RedirectConfig": {"Protocol": "HTTPS", "Port": "443",
                                                           "StatusCode": "HTTP_301"}}])
            count("load balancers", min(n(2), n(4)))

        if here("guardduty"):
            detector = aws("guardduty", region).create_detector(Enable=True)["DetectorId"]
            for f in range(n(5)):
                GAPS.add_finding(account, region, detector, finding_id=f"bench{i:02d}{f:026d}",
                                 type="Recon:EC2/PortProbeUnprotectedPort", severity=8.0 if f == 0 else 4.0,
                                 created=now - timedelta(days=f * 3), title="bench",
                                 resource={"resourceType": "Instance"})
            count("guardduty findings", n(5))
        if here("securityhub"):
            aws("securityhub", region).enable_security_hub()
            GAPS.enable_standards(account, region, ["aws-foundational-security-best-practices/v/1.0.0"])
        GAPS.add_analyzer(account, region, "org", now, type="ORGANIZATION")
        if here("inspector2"):
            aws("inspector2", region).enable(accountIds=[account], resourceTypes=["EC2", "ECR", "LAMBDA"])
        if here("backup"):
            plan = aws("backup", region).create_backup_plan(BackupPlan={
                "BackupPlanName": "daily", "Rules": [{"RuleName": "d", "TargetBackupVaultName": "Default"}]})
            GAPS.add_backup_selection(account, region, plan["BackupPlanId"], "all", now)
            for d in range(min(n(3), n_db)):
                GAPS.protect(account, region, f"arn:aws:rds:{region}:{account}:db:db-{d}", "RDS",
                             f"db-{d}", now)
            count("backup plans", 1)
        if here("config"):
            config = aws("config", region)
            config.put_configuration_recorder(ConfigurationRecorder={
                "name": "default", "roleARN": recorder_role, "recordingGroup": {"allSupported": True}})
            config.put_delivery_channel(DeliveryChannel={"name": "default", "s3BucketName": f"{bucket}-0"})
            config.start_configuration_recorder(ConfigurationRecorderName="default")
    return counts


def serve() -> None:
    """Server mode: moto (+ the gaps) on a free port, seeded; print the URL and counts as one
    JSON line, then serve until stdin closes."""
    from collectors.aws import demo
    for name, value in demo.ENV.items():
        os.environ[name] = value
    server, url = demo.start_server()
    t0 = time.perf_counter()
    counts = seed_large(url, datetime.now(timezone.utc))
    print(json.dumps({"url": url, "counts": counts, "seed_s": round(time.perf_counter() - t0, 1)}),
          flush=True)
    sys.stdin.read()
    server.stop()


# --- the measurement ------------------------------------------------------------------------

def timed_scan(config: Path, env: dict[str, str]) -> tuple[float, float, float, int]:
    """One ``attest scan`` under /usr/bin/time -v: (wall s, peak RSS MB, CPU s: user + system,
    exit code: 0 or 1, anything else ends the benchmark)."""
    attest = shutil.which("attest", path=str(Path(sys.executable).parent)) or "attest"
    started = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-v", attest, "scan", "--config", str(config),
                           "--format", "json"], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    code = int(re.search(r"Exit status: (\d+)", done.stderr).group(1))
    cpu = sum(float(re.search(rf"{kind} time \(seconds\): ([\d.]+)", done.stderr).group(1))
              for kind in ("User", "System"))
    if code not in (0, 1):
        raise SystemExit(f"attest scan exited {code}:\n{done.stderr[-3000:]}")
    return wall, rss_kb / 1024, cpu, code


def scan_summary(out_dir: Path) -> dict[str, int]:
    bundle = sorted(p for p in out_dir.iterdir() if p.is_dir() and not p.name.startswith("."))[-1]
    results = json.loads((bundle / "results.json").read_text())
    evidence = list((bundle / "evidence").rglob("*.json"))
    calls = sum(1 for line in (bundle / "scan.log").read_text().splitlines() if "attest.calls:" in line)
    statuses: dict[str, int] = {}
    for control in results["controls"]:
        statuses[control["status"]] = statuses.get(control["status"], 0) + 1
    return {"controls": len(results["controls"]), "evidence files": len(evidence),
            "API calls": calls, **{f"controls {k}": v for k, v in sorted(statuses.items())}}


def machine() -> dict[str, str]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = next((int(line.split()[1]) // 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")), 0)
    versions = {name: metadata.version(name) for name in ("boto3", "botocore", "moto", "attest")}
    return {"cpu": f"{cpu}, {os.cpu_count()} cores", "memory": f"{mem} MiB",
            "os": platform.platform(), "python": platform.python_version(),
            **{k: v for k, v in versions.items()}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "aws.md")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve()
        return 0
    from collectors.aws import demo
    server = subprocess.Popen([sys.executable, __file__, "--serve"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        started = json.loads(server.stdout.readline())
        with tempfile.TemporaryDirectory() as tmp:
            out_dir = Path(tmp) / "evidence"
            config = Path(tmp) / "config.yaml"
            config.write_text(f"output_dir: {out_dir}\naws:\n  endpoint_url: {started['url']}\n"
                              f"  regions: [{', '.join(REGIONS)}]\n", encoding="utf-8")
            env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ATTEST_"))}
            env.update(demo.ENV, AWS_CONFIG_FILE=str(Path(tmp) / "none"),
                       AWS_SHARED_CREDENTIALS_FILE=str(Path(tmp) / "none"))
            timed_scan(config, env)                              # warm-up, not counted
            load_before = os.getloadavg()[0]
            server_cpu = _cpu_seconds(server.pid)
            runs = [timed_scan(config, env) for _ in range(args.runs)]
            server_cpu = (_cpu_seconds(server.pid) - server_cpu) / args.runs
            load_after = os.getloadavg()[0]
            summary = scan_summary(out_dir)
    finally:
        server.stdin.close()
        server.wait(timeout=30)
    walls, peaks = [r[0] for r in runs], [r[1] for r in runs]
    figures = {"median wall (s)": statistics.median(walls), "peak RSS (MB)": max(peaks)}
    context = {"scan CPU, user + system (s, median)": f"{statistics.median(r[2] for r in runs):.2f}",
               "moto server CPU per scan (s, mean)": f"{server_cpu:.2f}",
               "load average (1 min) before / after the runs": f"{load_before:.1f} / {load_after:.1f}"}
    targets = {"median wall (s)": TARGET_WALL_S, "peak RSS (MB)": TARGET_RSS_MB}
    met = {k: figures[k] <= targets[k] for k in targets}
    write_report(args.out, started, runs, summary, figures, targets, met, context)
    for name, value in figures.items():
        print(f"{'ok  ' if met[name] else 'MISS'} {name:18} {value:8.2f}   target <= {targets[name]}")
    print(f"results: {args.out}")
    return 0 if all(met.values()) else 1


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def write_report(path: Path, started: dict, runs: list[tuple[float, float, float, int]],
                 summary: dict[str, int], figures: dict[str, float], targets: dict[str, float],
                 met: dict[str, bool], context: dict[str, str]) -> None:
    resources = sum(started["counts"].values())
    lines = [
        "# AWS scan benchmark",
        "",
        f"Written by `bench/bench_aws.py` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC. "
        f"`attest scan --config CONFIG` for AWS only (the whole AWS catalog), as a subprocess, "
        f"against moto in a separate process seeded with {resources} resources in "
        f"{len(REGIONS)} regions ({', '.join(REGIONS)}); wall time from interpreter start to the "
        f"bundle written, peak RSS of the scan process (`/usr/bin/time -v`). One warm-up run, "
        f"then {len(runs)} counted.",
        "",
        "| figure | measured | target | |",
        "|---|---|---|---|",
        *[f"| {k} | {figures[k]:.2f} | < {targets[k]:g} | {'met' if met[k] else 'MISSED'} |" for k in figures],
        "",
        "Runs (wall s / peak RSS MB / CPU s): "
        + ", ".join(f"{w:.2f} / {r:.0f} / {c:.2f}" for w, r, c, _ in runs),
        "",
        *[f"- {k}: {v}" for k, v in context.items()],
        "",
        "The machine is shared: other work running at the same time (the load average above) "
        "lengthens wall time; the CPU figures move much less.",
        "",
        "## The scan",
        "",
        *[f"- {k}: {v}" for k, v in summary.items()],
        "",
        "## The account",
        "",
        *[f"- {k}: {v}" for k, v in sorted(started["counts"].items())],
        f"- (seeding took {started['seed_s']} s, not measured)",
        "",
        "## Machine and versions",
        "",
        *[f"- {k}: {v}" for k, v in machine().items()],
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
