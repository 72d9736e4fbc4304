"""Pure rule tests for the detection and response controls, on literal payloads shaped as boto3
returns the AWS API reference's answers (where moto lacks an answer, these are the tests of its
shape: GuardDuty findings, Security Hub standards, Access Analyzer, CloudTrail's CloudWatch Logs
delivery time)."""
from __future__ import annotations

from datetime import timedelta

from tests.collectors.aws_fixtures import NOW, evaluate, make

ACCT = "123456789012"
TRAIL = f"arn:aws:cloudtrail:us-east-1:{ACCT}:trail/org-audit"
GROUP = f"arn:aws:logs:us-east-1:{ACCT}:log-group:org-audit:*"


def status(control, records, **params):
    return evaluate(control, records, **params).status.value


def trail(status=None, selectors=None, home=True, **kw):
    t = {"Name": "org-audit", "TrailARN": TRAIL, "HomeRegion": "us-east-1",
         "IsMultiRegionTrail": True, "IsOrganizationTrail": False,
         "CloudWatchLogsLogGroupArn": GROUP,
         "CloudWatchLogsRoleArn": f"arn:aws:iam::{ACCT}:role/CloudTrail_CloudWatchLogs", **kw}
    if home:
        t["GetTrailStatus"] = {"IsLogging": True,
                               "LatestCloudWatchLogsDeliveryTime": NOW - timedelta(minutes=7),
                               **(status or {})}
        t["GetEventSelectors"] = selectors or {"EventSelectors": [], "AdvancedEventSelectors": []}
    return t


def trails(*items, region="us-east-1", state="ok"):
    return make("aws.cloudtrail.trails", {"trailList": list(items)} if state == "ok" else None,
                region, state=state, detail="cloudtrail:DescribeTrails was denied")


# --- aws.cloudtrail.cloudwatch_delivery -----------------------------------------------------

def test_cloudwatch_delivery_within_24_hours_passes():
    result = evaluate("aws.cloudtrail.cloudwatch_delivery", [trails(trail())])
    assert result.status.value == "pass"
    assert result.findings[0].resource == TRAIL and "7 min ago" in result.findings[0].detail


def test_cloudwatch_delivery_stale_missing_or_unconfigured_fails():
    stale = trail({"LatestCloudWatchLogsDeliveryTime": NOW - timedelta(hours=30),
                   "LatestCloudWatchLogsDeliveryError": "AccessDenied"})
    result = evaluate("aws.cloudtrail.cloudwatch_delivery", [trails(stale)])
    assert result.status.value == "fail"
    assert "30 h ago (AccessDenied)" in result.findings[0].detail
    assert result.findings[0].resource == f"aws:{ACCT}:global:cloudtrail"
    never = trail({"LatestCloudWatchLogsDeliveryTime": None})
    assert "no CloudWatch Logs delivery" in evaluate(
        "aws.cloudtrail.cloudwatch_delivery", [trails(never)]).findings[0].detail
    for bad in (trail(CloudWatchLogsLogGroupArn=None), trail({"IsLogging": False}),
                trail(IsMultiRegionTrail=False)):
        assert status("aws.cloudtrail.cloudwatch_delivery", [trails(bad)]) == "fail"


def test_cloudwatch_delivery_is_an_error_when_the_home_region_was_not_read():
    records = [trails(state="denied"), trails(trail(home=False), region="eu-west-1")]
    result = evaluate("aws.cloudtrail.cloudwatch_delivery", records)
    assert result.status.value == "error"
    assert any("home region us-east-1 was not read" in f.detail for f in result.findings)


# --- aws.cloudtrail.s3_data_events ----------------------------------------------------------

def classic(kind="All", values=("arn:aws:s3",)):
    return {"EventSelectors": [{"ReadWriteType": kind, "IncludeManagementEvents": True,
                                "DataResources": [{"Type": "AWS::S3::Object",
                                                   "Values": list(values)}]}]}


def advanced(*extra_fields):
    return {"AdvancedEventSelectors": [{"Name": "s3", "FieldSelectors": [
        {"Field": "eventCategory", "Equals": ["Data"]},
        {"Field": "resources.type", "Equals": ["AWS::S3::Object"]}, *extra_fields]}]}


def test_s3_data_events_from_classic_or_advanced_selectors():
    for selectors in (classic(), classic(values=["arn:aws:s3:::"]), advanced()):
        result = evaluate("aws.cloudtrail.s3_data_events", [trails(trail(selectors=selectors))])
        assert result.status.value == "pass", selectors
        assert result.findings[0].resource == TRAIL and "every region" in result.findings[0].detail
    split = {"EventSelectors": classic("ReadOnly")["EventSelectors"] + classic("WriteOnly")["EventSelectors"]}
    assert status("aws.cloudtrail.s3_data_events", [trails(trail(selectors=split))]) == "pass"
    both = {"AdvancedEventSelectors": advanced({"Field": "readOnly", "Equals": ["true"]})[
        "AdvancedEventSelectors"] + advanced({"Field": "readOnly", "Equals": ["false"]})[
        "AdvancedEventSelectors"]}
    assert status("aws.cloudtrail.s3_data_events", [trails(trail(selectors=both))]) == "pass"


def test_s3_data_events_partial_or_narrowed_or_not_logging_fails():
    write_only = evaluate("aws.cloudtrail.s3_data_events", [trails(trail(selectors=classic("WriteOnly")))])
    assert write_only.status.value == "fail" and "writes only" in write_only.findings[0].detail
    for selectors in (classic(values=["arn:aws:s3:::one-bucket/"]),
                      advanced({"Field": "resources.ARN", "StartsWith": ["arn:aws:s3:::one/"]}),
                      {"EventSelectors": [{"ReadWriteType": "All", "IncludeManagementEvents": True}]}):
        assert status("aws.cloudtrail.s3_data_events", [trails(trail(selectors=selectors))]) == "fail"
    stopped = trail({"IsLogging": False}, selectors=classic())
    result = evaluate("aws.cloudtrail.s3_data_events", [trails(stopped)])
    assert result.status.value == "fail" and "not logging" in result.findings[0].detail


def test_s3_data_events_unknown_selectors_are_an_error():
    records = [trails(state="denied"), trails(trail(home=False), region="eu-west-1")]
    assert status("aws.cloudtrail.s3_data_events", records) == "error"


# --- aws.guardduty.findings_triaged ---------------------------------------------------------

DETECTOR = "12abc34d567e8fa901bc2d34e56789f0"


def gd_finding(fid, severity, days_old, archived=False):
    """A Finding as boto3 returns GetFindings (API reference: Finding)."""
    created = NOW - timedelta(days=days_old)
    return {"AccountId": ACCT, "Region": "us-east-1", "Partition": "aws", "Id": fid,
            "Arn": f"arn:aws:guardduty:us-east-1:{ACCT}:detector/{DETECTOR}/finding/{fid}",
            "Type": "UnauthorizedAccess:EC2/SSHBruteForce", "Severity": severity,
            "SchemaVersion": "2.0", "CreatedAt": created.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "UpdatedAt": created.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "Title": "SSH brute force",
            "Resource": {"ResourceType": "Instance", "InstanceDetails": {"InstanceId": "i-0abc"}},
            "Service": {"ServiceName": "guardduty", "DetectorId": DETECTOR, "Archived": archived,
                        "Count": 14}}


def findings(*items, region="us-east-1", state="ok"):
    payload = {"DetectorIds": [DETECTOR], "Detectors": [{"DetectorId": DETECTOR, "Findings": list(items)}]}
    return make("aws.guardduty.findings", payload if state == "ok" else None, region, state=state,
                detail="guardduty:ListFindings was denied")


def test_findings_triaged_passes_when_high_findings_are_recent():
    result = evaluate("aws.guardduty.findings_triaged", [findings(gd_finding("a", 8.0, 3))])
    assert result.status.value == "pass" and "open for 3 days (within 7)" in result.findings[0].detail
    quiet = evaluate("aws.guardduty.findings_triaged", [findings()])
    assert quiet.status.value == "pass"
    assert quiet.findings[0].resource == f"arn:aws:guardduty:us-east-1:{ACCT}:detector/{DETECTOR}"


def test_findings_triaged_fails_on_an_old_open_high_finding():
    old = gd_finding("b", 9.5, 12)
    result = evaluate("aws.guardduty.findings_triaged",
                      [findings(old, gd_finding("low", 5.0, 90), gd_finding("done", 8.0, 90, archived=True))])
    assert result.status.value == "fail"
    bad, = [f for f in result.findings if f.status.value == "fail"]
    assert bad.resource == old["Arn"] and "severity 9.5) open for 12 days" in bad.detail
    assert status("aws.guardduty.findings_triaged", [findings(old)], max_days=30) == "pass"


def test_findings_triaged_unknown_region_or_detector_is_an_error():
    assert status("aws.guardduty.findings_triaged",
                  [findings(), findings(region="eu-west-1", state="denied")]) == "error"
    arn = f"arn:aws:guardduty:us-east-1:{ACCT}:detector/{DETECTOR}"
    partial = make("aws.guardduty.findings", {"DetectorIds": [DETECTOR], "Detectors": []},
                   "us-east-1", state="partial", unknown={arn: "guardduty:ListFindings was denied"})
    result = evaluate("aws.guardduty.findings_triaged", [partial])
    assert result.status.value == "error" and result.findings[0].resource == arn


# --- aws.securityhub.enabled ----------------------------------------------------------------

def hub(region, enabled=True, standards=("aws-foundational-security-best-practices/v/1.0.0",),
        standard_status="READY"):
    described = {"HubArn": f"arn:aws:securityhub:{region}:{ACCT}:hub/default",
                 "SubscribedAt": "2026-01-05T10:00:00.000Z", "AutoEnableControls": True,
                 "ControlFindingGenerator": "SECURITY_CONTROL"} if enabled else None
    subscriptions = {"StandardsSubscriptions": [{
        "StandardsSubscriptionArn": f"arn:aws:securityhub:{region}:{ACCT}:subscription/{s}",
        "StandardsArn": f"arn:aws:securityhub:{region}::standards/{s}", "StandardsInput": {},
        "StandardsStatus": standard_status} for s in standards]} if enabled else None
    return make("aws.securityhub.hub", {"DescribeHub": described,
                                        "GetEnabledStandards": subscriptions}, region)


def test_securityhub_enabled_with_a_standard_everywhere():
    result = evaluate("aws.securityhub.enabled", [hub("us-east-1"), hub("eu-west-1")])
    assert result.status.value == "pass"
    assert "aws-foundational-security-best-practices/v/1.0.0" in result.findings[0].detail


def test_securityhub_off_or_without_standards_fails():
    result = evaluate("aws.securityhub.enabled",
                      [hub("us-east-1"), hub("eu-west-1", standards=()), hub("ap-south-1", enabled=False)])
    assert result.status.value == "fail"
    details = {f.resource: f.detail for f in result.findings if f.status.value == "fail"}
    assert details[f"arn:aws:securityhub:eu-west-1:{ACCT}:hub/default"] == "enabled without any standard"
    assert details[f"aws:{ACCT}:ap-south-1:securityhub"] == "Security Hub is not enabled"
    assert status("aws.securityhub.enabled", [hub("us-east-1", standard_status="FAILED")]) == "fail"
    denied = make("aws.securityhub.hub", None, "eu-west-1", state="denied",
                  detail="securityhub:DescribeHub was denied")
    assert status("aws.securityhub.enabled", [hub("us-east-1"), denied]) == "error"


# --- aws.accessanalyzer.enabled -------------------------------------------------------------

def analyzers(region, *items):
    """ListAnalyzers as boto3 returns it (API reference: AnalyzerSummary)."""
    return make("aws.accessanalyzer.analyzers", {"analyzers": [
        {"arn": f"arn:aws:access-analyzer:{region}:{ACCT}:analyzer/{name}", "name": name,
         "type": kind, "status": state, "createdAt": "2026-03-01T12:00:00Z", "tags": {}}
        for name, kind, state in items]}, region)


def test_accessanalyzer_active_account_or_organization_analyzer():
    result = evaluate("aws.accessanalyzer.enabled", [
        analyzers("us-east-1", ("org", "ORGANIZATION", "ACTIVE"), ("unused", "ACCOUNT_UNUSED_ACCESS", "ACTIVE")),
        analyzers("eu-west-1", ("acct", "ACCOUNT", "ACTIVE"))])
    assert result.status.value == "pass"
    assert [f.detail for f in result.findings] == ["account analyzer acct is active",
                                                   "organization analyzer org is active"]


def test_accessanalyzer_missing_disabled_or_unused_access_only_fails():
    result = evaluate("aws.accessanalyzer.enabled", [
        analyzers("us-east-1", ("org", "ORGANIZATION", "DISABLED")),
        analyzers("eu-west-1", ("unused", "ACCOUNT_UNUSED_ACCESS", "ACTIVE")),
        analyzers("ap-south-1")])
    assert result.status.value == "fail"
    assert len([f for f in result.findings if f.status.value == "fail"]) == 3
    assert "org (ORGANIZATION, DISABLED)" in result.findings[-1].detail
    denied = make("aws.accessanalyzer.analyzers", None, "eu-west-1", state="denied",
                  detail="access-analyzer:ListAnalyzers was denied")
    assert status("aws.accessanalyzer.enabled",
                  [analyzers("us-east-1", ("org", "ORGANIZATION", "ACTIVE")), denied]) == "error"


# --- aws.inspector.enabled ------------------------------------------------------------------

def inspector(region, ec2="ENABLED", ecr="ENABLED", lam="ENABLED", failed=False):
    """BatchGetAccountStatus as boto3 returns it."""
    if failed:
        return make("aws.inspector2.account_status", {"accounts": [], "failedAccounts": [
            {"accountId": ACCT, "errorCode": "ACCESS_DENIED", "errorMessage": "not a member"}]}, region)
    return make("aws.inspector2.account_status", {"accounts": [{
        "accountId": ACCT, "state": {"status": "ENABLED"},
        "resourceState": {"ec2": {"status": ec2}, "ecr": {"status": ecr},
                          "lambda": {"status": lam}, "lambdaCode": {"status": "DISABLED"}}}],
        "failedAccounts": []}, region)


def test_inspector_enabled():
    assert status("aws.inspector.enabled", [inspector("us-east-1"), inspector("eu-west-1")]) == "pass"
    result = evaluate("aws.inspector.enabled", [inspector("us-east-1"), inspector("eu-west-1", lam="DISABLED",
                                                                                 ecr="SUSPENDED")])
    assert result.status.value == "fail"
    bad, = [f for f in result.findings if f.status.value == "fail"]
    assert (bad.resource, bad.detail) == (f"aws:{ACCT}:eu-west-1:inspector2",
                                          "not scanning ECR (SUSPENDED), Lambda (DISABLED)")
    refused = evaluate("aws.inspector.enabled", [inspector("us-east-1", failed=True)])
    assert refused.status.value == "error" and "not a member" in refused.findings[0].detail
    never = make("aws.inspector2.account_status", {"accounts": [], "failedAccounts": []}, "us-east-1")
    assert evaluate("aws.inspector.enabled", [never]).findings[0].detail == (
        "Inspector has never been enabled (no status for the account)")


# --- aws.logs.retention ---------------------------------------------------------------------

def groups(*items, region="us-east-1"):
    return make("aws.logs.log_groups", {"logGroups": [
        {"logGroupName": name, "arn": f"arn:aws:logs:{region}:{ACCT}:log-group:{name}:*",
         **({"retentionInDays": days} if days else {})} for name, days in items]}, region)


def test_logs_retention():
    assert status("aws.logs.retention", [groups(("audit", 400), ("app", None))]) == "pass"
    result = evaluate("aws.logs.retention", [groups(("audit", 400), ("lambda", 14))])
    assert result.status.value == "fail"
    bad, = [f for f in result.findings if f.status.value == "fail"]
    assert bad.resource == f"arn:aws:logs:us-east-1:{ACCT}:log-group:lambda"
    assert bad.detail == "keeps logs 14 days (< 365)"
    assert status("aws.logs.retention", [groups(("lambda", 14))], min_days=14) == "pass"
    denied = make("aws.logs.log_groups", None, "eu-west-1", state="denied",
                  detail="logs:DescribeLogGroups was denied")
    assert status("aws.logs.retention", [groups(("audit", 400)), denied]) == "error"


# --- aws.cloudwatch.security_alarms ---------------------------------------------------------

PATTERNS = {
    "root": '{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS && $.eventType != "AwsServiceEvent" }',
    "unauthorized": '{($.errorCode="*UnauthorizedOperation")||($.errorCode="AccessDenied*")}',
    "nomfa": '{ ($.eventName = "ConsoleLogin") && ($.additionalEventData.MFAUsed != "Yes") }',
    "iam": "{" + "||".join(f"($.eventName={e})" for e in (
        "DeleteGroupPolicy", "DeleteRolePolicy", "DeleteUserPolicy", "PutGroupPolicy", "PutRolePolicy",
        "PutUserPolicy", "CreatePolicy", "DeletePolicy", "CreatePolicyVersion", "DeletePolicyVersion",
        "AttachRolePolicy", "DetachRolePolicy", "AttachUserPolicy", "DetachUserPolicy",
        "AttachGroupPolicy", "DetachGroupPolicy")) + "}",
    "trail": "{ ($.eventName = CreateTrail) || ($.eventName = UpdateTrail) || ($.eventName = DeleteTrail) "
             "|| ($.eventName = StartLogging) || ($.eventName = StopLogging) }",
    "sg": "{ ($.eventName = AuthorizeSecurityGroupIngress) || ($.eventName = AuthorizeSecurityGroupEgress) || "
          "($.eventName = RevokeSecurityGroupIngress) || ($.eventName = RevokeSecurityGroupEgress) || "
          "($.eventName = CreateSecurityGroup) || ($.eventName = DeleteSecurityGroup) }",
}
TOPIC = f"arn:aws:sns:us-east-1:{ACCT}:security-alerts"


def alarm_records(patterns=PATTERNS, subscription=f"{TOPIC}:0f1e2d3c", group="org-audit", alarms=True):
    scope = "us-east-1"
    return [
        trails(trail()),
        make("aws.logs.metric_filters", {"metricFilters": [
            {"filterName": name, "logGroupName": group, "filterPattern": pattern,
             "metricTransformations": [{"metricName": name, "metricNamespace": "CIS", "metricValue": "1"}]}
            for name, pattern in patterns.items()]}, scope),
        make("aws.cloudwatch.alarms", {"MetricAlarms": [
            {"AlarmName": f"cis-{name}", "MetricName": name, "Namespace": "CIS", "ActionsEnabled": True,
             "AlarmActions": [TOPIC]} for name in patterns] if alarms else [], "CompositeAlarms": []}, scope),
        make("aws.sns.subscriptions", {"Subscriptions": [
            {"SubscriptionArn": subscription, "TopicArn": TOPIC, "Protocol": "email",
             "Endpoint": "security@example.com"}]}, scope)]


def test_security_alarms_all_six_pass():
    result = evaluate("aws.cloudwatch.security_alarms", alarm_records())
    assert result.status.value == "pass" and len(result.findings) == 6
    assert result.findings[0].resource == f"aws:{ACCT}:global:cloudwatch/root_use"


def test_security_alarms_missing_filter_alarm_or_subscription_fails():
    fewer = {k: v for k, v in PATTERNS.items() if k != "sg"}
    result = evaluate("aws.cloudwatch.security_alarms", alarm_records(fewer))
    assert result.status.value == "fail"
    bad, = [f for f in result.findings if f.status.value == "fail"]
    assert bad.resource.endswith("/security_group_changes") and "no metric filter" in bad.detail
    # a filter missing one of the CIS events does not count
    partial_iam = {**PATTERNS, "iam": PATTERNS["iam"].replace("||($.eventName=DetachGroupPolicy)", "")}
    assert "iam_policy_changes" in [f.resource.rsplit("/", 1)[1] for f in evaluate(
        "aws.cloudwatch.security_alarms", alarm_records(partial_iam)).findings if f.status.value == "fail"]
    pending = evaluate("aws.cloudwatch.security_alarms", alarm_records(subscription="PendingConfirmation"))
    assert pending.status.value == "fail" and "no confirmed subscription" in pending.findings[0].detail
    no_alarm = evaluate("aws.cloudwatch.security_alarms", alarm_records(alarms=False))
    assert no_alarm.status.value == "fail" and "has no alarm" in no_alarm.findings[0].detail
    elsewhere = evaluate("aws.cloudwatch.security_alarms", alarm_records(group="other-group"))
    assert elsewhere.status.value == "fail"
    no_trail = alarm_records()
    no_trail[0] = trails(trail(CloudWatchLogsLogGroupArn=None))
    assert "no logging multi-region trail" in evaluate(
        "aws.cloudwatch.security_alarms", no_trail).findings[0].detail


def test_security_alarms_unknown_alarms_are_an_error():
    records = alarm_records()
    records[2] = make("aws.cloudwatch.alarms", None, "us-east-1", state="denied",
                      detail="cloudwatch:DescribeAlarms was denied")
    result = evaluate("aws.cloudwatch.security_alarms", records)
    assert result.status.value == "error"
    assert any("aws.cloudwatch.alarms of us-east-1 not read" in f.detail for f in result.findings)
