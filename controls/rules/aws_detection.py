"""Detection and response controls: CloudTrail to CloudWatch Logs and S3 data events, triage of
GuardDuty findings, Security Hub, IAM Access Analyzer, Amazon Inspector, log retention and the
CIS security alarms."""
from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, Iterator

from attest.model import Finding, errored, failed, parse_time, passed
from controls.rules import EvidenceView, rule
from controls.rules._aws import account_region, no_trail_qualifies, offered, resource, trails

DELIVERY_MAX_AGE = timedelta(hours=24)
S3_OBJECT = "AWS::S3::Object"
# "every bucket" in a classic data-resource selector: arn:aws:s3 or arn:aws:s3::: (any partition)
ALL_BUCKETS = re.compile(r"arn:[a-z-]+:s3(:::)?")


# --- aws.cloudtrail.cloudwatch_delivery -----------------------------------------------------

@rule("aws.cloudtrail.cloudwatch_delivery")
def cloudtrail_cloudwatch_delivery(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    for account, found in sorted(trails(ev).items()):
        problems, unknown = [], []
        for arn, trail in sorted(found.items()):
            if not trail.get("IsMultiRegionTrail"):
                continue
            status = trail.get("GetTrailStatus")
            if not trail.get("CloudWatchLogsLogGroupArn"):
                problems.append(f"{arn} does not deliver to CloudWatch Logs")
            elif status is None:
                unknown.append(f"{arn} (home region {trail.get('HomeRegion')} was not read)")
            elif not status.get("IsLogging"):
                problems.append(f"{arn} is not logging")
            else:
                delivered = parse_time(status.get("LatestCloudWatchLogsDeliveryTime"))
                error = status.get("LatestCloudWatchLogsDeliveryError")
                if delivered is None:
                    problems.append(f"{arn} has no CloudWatch Logs delivery recorded"
                                    + (f" ({error})" if error else ""))
                elif ev.now - delivered > DELIVERY_MAX_AGE:
                    hours = int((ev.now - delivered).total_seconds() // 3600)
                    problems.append(f"{arn} last delivered to CloudWatch Logs {hours} h ago"
                                    + (f" ({error})" if error else ""))
                else:
                    minutes = max(int((ev.now - delivered).total_seconds() // 60), 0)
                    yield passed(arn, f"delivers to {trail['CloudWatchLogsLogGroupArn']}, "
                                      f"last delivery {minutes} min ago")
                    break
        else:
            yield no_trail_qualifies(account, unknown, problems, "status",
                                     "no multi-region trail delivers to CloudWatch Logs within 24 h")


# --- aws.cloudtrail.s3_data_events ----------------------------------------------------------

def _s3_object_events(selectors: dict[str, Any]) -> tuple[bool, bool]:
    """(reads, writes) of S3 objects in every bucket that the trail's selectors record."""
    reads = writes = False
    for s in selectors.get("EventSelectors") or []:
        everywhere = any(r.get("Type") == S3_OBJECT and any(
            ALL_BUCKETS.fullmatch(v) for v in r.get("Values", []))
            for r in s.get("DataResources", []))
        if everywhere:
            kind = s.get("ReadWriteType", "All")
            reads |= kind in ("All", "ReadOnly")
            writes |= kind in ("All", "WriteOnly")
    for s in selectors.get("AdvancedEventSelectors") or []:
        fields = {f.get("Field"): f for f in s.get("FieldSelectors", [])}
        if (fields.get("eventCategory", {}).get("Equals") != ["Data"]
                or fields.get("resources.type", {}).get("Equals") != [S3_OBJECT]
                or set(fields) - {"eventCategory", "resources.type", "readOnly"}):
            continue    # another category or type, or narrowed to some buckets or events
        read_only = fields.get("readOnly", {}).get("Equals")
        reads |= read_only in (None, ["true"])
        writes |= read_only in (None, ["false"])
    return reads, writes


@rule("aws.cloudtrail.s3_data_events")
def cloudtrail_s3_data_events(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    for account, found in sorted(trails(ev).items()):
        problems, unknown = [], []
        for arn, trail in sorted(found.items()):
            status, selectors = trail.get("GetTrailStatus"), trail.get("GetEventSelectors")
            if status is None or selectors is None:
                unknown.append(f"{arn} (home region {trail.get('HomeRegion')} was not read)")
                continue
            reads, writes = _s3_object_events(selectors)
            if not status.get("IsLogging"):
                if reads or writes:
                    problems.append(f"{arn} selects S3 object events but is not logging")
            elif reads and writes:
                scope = ("in every region" if trail.get("IsMultiRegionTrail")
                         else f"in {trail.get('HomeRegion')} only (single-region trail)")
                yield passed(arn, f"records S3 object reads and writes of every bucket {scope}")
                break
            elif reads or writes:
                problems.append(f"{arn} records S3 object {'reads' if reads else 'writes'} only")
        else:
            yield no_trail_qualifies(account, unknown, problems, "selectors",
                                     "no logging trail records S3 object-level reads and writes "
                                     "of every bucket")


# --- aws.guardduty.findings_triaged ---------------------------------------------------------

@rule("aws.guardduty.findings_triaged")
def guardduty_findings_triaged(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    max_days = params["max_days"]
    for _, account, region, payload in offered(ev.get("aws.guardduty.findings")):
        for detector in payload.get("Detectors", []):
            detector_arn = f"arn:aws:guardduty:{region}:{account}:detector/{detector['DetectorId']}"
            open_high = [f for f in detector.get("Findings", [])
                         if float(f.get("Severity", 0)) >= 7
                         and not (f.get("Service") or {}).get("Archived")]
            if not open_high:
                yield passed(detector_arn, "no unarchived finding of severity 7 or more")
            for finding in open_high:
                created = parse_time(finding.get("CreatedAt"))
                what = f"{finding.get('Type')} (severity {float(finding['Severity']):g})"
                if created is None:
                    yield errored(finding["Arn"], f"{what}: creation time unknown")
                    continue
                days = max((ev.now - created).days, 0)
                if days > max_days:
                    yield failed(finding["Arn"], f"{what} open for {days} days, not archived "
                                                 f"(max {max_days})")
                else:
                    yield passed(finding["Arn"], f"{what} open for {days} days (within {max_days})")


# --- aws.securityhub.enabled ----------------------------------------------------------------

LIVE_STANDARD = ("READY", "PENDING", "INCOMPLETE")


@rule("aws.securityhub.enabled")
def securityhub_enabled(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    for _, account, region, payload in offered(ev.get("aws.securityhub.hub")):
        hub = payload.get("DescribeHub")
        where = resource(account, region, "securityhub")
        if hub is None:
            yield failed(where, "Security Hub is not enabled")
            continue
        subscriptions = (payload.get("GetEnabledStandards") or {}).get("StandardsSubscriptions", [])
        live = [s for s in subscriptions if s.get("StandardsStatus") in LIVE_STANDARD]
        names = ", ".join(s["StandardsArn"].split("standards/", 1)[-1] for s in live)
        if live:
            yield passed(hub.get("HubArn") or where, f"enabled with {names}")
        else:
            states = ", ".join(f"{s['StandardsArn'].split('standards/', 1)[-1]} "
                               f"{s.get('StandardsStatus')}" for s in subscriptions)
            yield failed(hub.get("HubArn") or where, "enabled without any standard"
                         + (f" ({states})" if states else ""))


# --- aws.accessanalyzer.enabled -------------------------------------------------------------

EXTERNAL_ACCESS = ("ACCOUNT", "ORGANIZATION")


@rule("aws.accessanalyzer.enabled")
def accessanalyzer_enabled(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    for _, account, region, payload in offered(ev.get("aws.accessanalyzer.analyzers")):
        analyzers = payload.get("analyzers", [])
        active = [a for a in analyzers
                  if a.get("type") in EXTERNAL_ACCESS and a.get("status") == "ACTIVE"]
        if active:
            best = sorted(active, key=lambda a: (a["type"] != "ORGANIZATION", a["name"]))[0]
            yield passed(best["arn"], f"{best['type'].lower()} analyzer {best['name']} is active")
        else:
            seen = ", ".join(f"{a.get('name')} ({a.get('type')}, {a.get('status')})"
                             for a in analyzers)
            yield failed(resource(account, region, "access-analyzer"),
                         "no active account or organization analyzer"
                         + (f": {seen}" if seen else ""))


# --- aws.inspector.enabled ------------------------------------------------------------------

INSPECTED = {"ec2": "EC2", "ecr": "ECR", "lambda": "Lambda"}


@rule("aws.inspector.enabled")
def inspector_enabled(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    for _, account, region, payload in offered(ev.get("aws.inspector2.account_status")):
        where = resource(account, region, "inspector2")
        mine = [a for a in payload.get("accounts", []) if a.get("accountId") == account]
        refused = [a for a in payload.get("failedAccounts", []) if a.get("accountId") == account]
        if refused:
            why = refused[0].get("errorMessage") or refused[0].get("errorCode")
            yield errored(where, f"Inspector could not return the account's status: {why}")
            continue
        if not mine:    # AWS lists every account asked for; none: never enabled
            yield failed(where, "Inspector has never been enabled (no status for the account)")
            continue
        states = mine[0].get("resourceState") or {}
        off = [f"{label} ({(states.get(key) or {}).get('status', 'unknown')})"
               for key, label in INSPECTED.items()
               if (states.get(key) or {}).get("status") != "ENABLED"]
        if off:
            yield failed(where, "not scanning " + ", ".join(off))
        else:
            yield passed(where, "scanning EC2, ECR and Lambda")


# --- aws.logs.retention ---------------------------------------------------------------------

@rule("aws.logs.retention")
def logs_retention(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    min_days = params["min_days"]
    for _, _, _, payload in offered(ev.get("aws.logs.log_groups")):
        for group in payload.get("logGroups", []):
            arn = group.get("logGroupArn") or group["arn"].removesuffix(":*")
            days = group.get("retentionInDays")
            if days is None:
                yield passed(arn, "logs never expire")
            elif days >= min_days:
                yield passed(arn, f"keeps logs {days} days")
            else:
                yield failed(arn, f"keeps logs {days} days (< {min_days})")


# --- aws.cloudwatch.security_alarms ---------------------------------------------------------

def _events(*names: str) -> tuple[str, ...]:
    return tuple(rf"\$\.eventName={name}(?![A-Za-z])" for name in names)


# What each alarm's metric filter must match, as regular expressions over the filter pattern
# with spaces and quotes removed (the CIS AWS Foundations Benchmark's filters, section 4).
ALARMS: dict[str, tuple[str, tuple[str, ...]]] = {
    "root_use": ("use of the root user", (r"\$\.userIdentity\.type=Root(?![A-Za-z])",)),
    "unauthorized_api_calls": ("unauthorized API calls", (
        r"\$\.errorCode=\*UnauthorizedOperation", r"\$\.errorCode=AccessDenied\*")),
    "console_signin_without_mfa": ("console sign-in without MFA", (
        r"\$\.eventName=ConsoleLogin(?![A-Za-z])", r"\$\.additionalEventData\.MFAUsed!=Yes")),
    "iam_policy_changes": ("IAM policy changes", _events(
        "DeleteGroupPolicy", "DeleteRolePolicy", "DeleteUserPolicy", "PutGroupPolicy",
        "PutRolePolicy", "PutUserPolicy", "CreatePolicy", "DeletePolicy", "CreatePolicyVersion",
        "DeletePolicyVersion", "AttachRolePolicy", "DetachRolePolicy", "AttachUserPolicy",
        "DetachUserPolicy", "AttachGroupPolicy", "DetachGroupPolicy")),
    "cloudtrail_changes": ("CloudTrail configuration changes", _events(
        "CreateTrail", "UpdateTrail", "DeleteTrail", "StartLogging", "StopLogging")),
    "security_group_changes": ("security group changes", _events(
        "AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress",
        "RevokeSecurityGroupIngress", "RevokeSecurityGroupEgress", "CreateSecurityGroup",
        "DeleteSecurityGroup")),
}
LOG_GROUP_ARN = re.compile(r"arn:[a-z-]+:logs:([a-z0-9-]+):(\d{12}):log-group:(.+?)(:\*)?")
PENDING = ("PendingConfirmation", "Deleted", "")


def _covers(pattern: str) -> set[str]:
    flat = re.sub(r"[\s\"']", "", pattern)
    return {key for key, (_, needed) in ALARMS.items()
            if all(re.search(n, flat) for n in needed)}


def _alarm_metrics(alarm: dict[str, Any]) -> set[tuple[str, str]]:
    found = {(alarm.get("Namespace"), alarm.get("MetricName"))}
    for query in alarm.get("Metrics") or []:
        metric = (query.get("MetricStat") or {}).get("Metric") or {}
        found.add((metric.get("Namespace"), metric.get("MetricName")))
    return {m for m in found if all(m)}


def _trail_log_groups(ev: EvidenceView, account: str) -> tuple[list[tuple[str, str]], list[str]]:
    """(region, log group name) of the logging multi-region trails delivering to CloudWatch Logs
    in ``account``, and the trails whose status is unknown."""
    groups, unknown = [], []
    for arn, trail in sorted(trails(ev).get(account, {}).items()):
        match = LOG_GROUP_ARN.fullmatch(trail.get("CloudWatchLogsLogGroupArn") or "")
        if not trail.get("IsMultiRegionTrail") or not match:
            continue
        status = trail.get("GetTrailStatus")
        if status is None:
            unknown.append(arn)
        elif status.get("IsLogging"):
            groups.append((match.group(1), match.group(3)))
    return groups, unknown


@rule("aws.cloudwatch.security_alarms")
def cloudwatch_security_alarms(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    accounts = sorted({account_region(r)[0] for r in ev.get("aws.cloudtrail.trails")})
    for account in accounts:
        base = resource(account, "global", "cloudwatch")
        groups, unknown = _trail_log_groups(ev, account)
        if not groups:
            for key in ALARMS:
                if unknown:
                    yield errored(f"{base}/{key}", "status unknown for " + ", ".join(unknown))
                else:
                    yield failed(f"{base}/{key}", "no logging multi-region trail delivers to "
                                                  "CloudWatch Logs, so no metric filter sees it")
            continue
        verdicts = {key: [] for key in ALARMS}        # key -> [(ok, detail)]
        for region, group in groups:
            scope = f"aws:{account}:{region}"
            records = {name: ev.one(name, scope) for name in (
                "aws.logs.metric_filters", "aws.cloudwatch.alarms", "aws.sns.subscriptions")}
            missing = [name for name, r in records.items() if r is None]
            if missing:
                for key in ALARMS:
                    verdicts[key].append((None, f"{', '.join(missing)} of {region} not read"))
                continue
            filters = [f for f in (records["aws.logs.metric_filters"].payload or {}).get(
                "metricFilters", []) if f.get("logGroupName") == group]
            alarms = (records["aws.cloudwatch.alarms"].payload or {}).get("MetricAlarms", [])
            confirmed = {s.get("TopicArn") for s in (records["aws.sns.subscriptions"].payload
                                                     or {}).get("Subscriptions", [])
                         if s.get("SubscriptionArn") not in PENDING}
            for key in ALARMS:
                verdicts[key].append(_alarmed(key, group, filters, alarms, confirmed))
        for key, (label, _) in ALARMS.items():
            oks = [d for ok, d in verdicts[key] if ok]
            unknowns = [d for ok, d in verdicts[key] if ok is None]
            if oks:
                yield passed(f"{base}/{key}", f"{label}: {oks[0]}")
            elif unknowns:
                yield errored(f"{base}/{key}", f"{label}: " + "; ".join(unknowns))
            else:
                yield failed(f"{base}/{key}", f"{label}: " + "; ".join(d for _, d in verdicts[key]))


def _alarmed(key: str, group: str, filters: list[dict[str, Any]], alarms: list[dict[str, Any]],
             confirmed: set[str]) -> tuple[bool, str]:
    matching = [f for f in filters if key in _covers(f.get("filterPattern", ""))]
    if not matching:
        return False, f"no metric filter on log group {group} matches"
    problems = []
    for f in matching:
        metrics = {(m.get("metricNamespace"), m.get("metricName"))
                   for m in f.get("metricTransformations", [])}
        watching = [a for a in alarms if _alarm_metrics(a) & metrics]
        if not watching:
            problems.append(f"filter {f['filterName']} has no alarm")
            continue
        for alarm in watching:
            topics = [t for t in alarm.get("AlarmActions", []) if ":sns:" in t]
            if not alarm.get("ActionsEnabled", True) or not topics:
                problems.append(f"alarm {alarm['AlarmName']} notifies no SNS topic")
            elif not set(topics) & confirmed:
                problems.append(f"alarm {alarm['AlarmName']}'s topic has no confirmed subscription")
            else:
                topic = sorted(set(topics) & confirmed)[0]
                return True, (f"filter {f['filterName']} on {group}, alarm {alarm['AlarmName']} "
                              f"notifies {topic.rsplit(':', 1)[-1]}")
    return False, "; ".join(problems)
