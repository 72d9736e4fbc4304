"""Pure rule tests for CloudTrail, GuardDuty, VPC flow logs and AWS Config (literal payloads)."""
from __future__ import annotations

from tests.collectors.aws_fixtures import evaluate, make

ACCT = "123456789012"
ARN = f"arn:aws:cloudtrail:us-east-1:{ACCT}:trail/audit"
ALL_MANAGEMENT = {"EventSelectors": [{"ReadWriteType": "All", "IncludeManagementEvents": True}],
                  "AdvancedEventSelectors": []}


def trail(home: bool = True, status: dict | None = None, selectors: dict | None = None, **kw):
    t = {"Name": "audit", "TrailARN": ARN, "HomeRegion": "us-east-1", "IsMultiRegionTrail": True,
         "LogFileValidationEnabled": True, "KmsKeyId": "arn:aws:kms:us-east-1:1:key/k",
         "IsOrganizationTrail": False, **kw}
    if home:
        t["GetTrailStatus"] = status or {"IsLogging": True}
        t["GetEventSelectors"] = selectors or ALL_MANAGEMENT
    return t


def trails(*home_trails, shadow=True, eu_state="ok"):
    """us-east-1 holds the trails (with status); eu-west-1 their shadow copies."""
    eu = [dict(trail(home=False), **{k: v for k, v in t.items()
                                     if k not in ("GetTrailStatus", "GetEventSelectors")})
          for t in home_trails] if shadow else []
    return [make("aws.cloudtrail.trails", {"trailList": list(home_trails)}, "us-east-1"),
            make("aws.cloudtrail.trails", {"trailList": eu} if eu_state == "ok" else None,
                 "eu-west-1", state=eu_state, detail="cloudtrail:DescribeTrails was denied")]


def status(control, records, **params):
    return evaluate(control, records, **params).status.value


# --- aws.cloudtrail.multi_region ---------------------------------------------------------

def test_multi_region_passes_with_classic_or_advanced_selectors():
    assert status("aws.cloudtrail.multi_region", trails(trail())) == "pass"
    advanced = {"EventSelectors": [], "AdvancedEventSelectors": [{"Name": "mgmt", "FieldSelectors": [
        {"Field": "eventCategory", "Equals": ["Management"]}]}]}
    result = evaluate("aws.cloudtrail.multi_region", trails(trail(selectors=advanced)))
    assert result.status.value == "pass" and result.findings[0].resource == ARN


def test_multi_region_counts_an_organization_trail():
    org = trail(IsOrganizationTrail=True,
                TrailARN="arn:aws:cloudtrail:us-east-1:999988887777:trail/org")
    result = evaluate("aws.cloudtrail.multi_region", trails(org))
    assert result.status.value == "pass" and "organization trail" in result.findings[0].detail


def test_multi_region_fails_when_not_logging_single_region_or_partial_events():
    read_only = {"EventSelectors": [], "AdvancedEventSelectors": [{"FieldSelectors": [
        {"Field": "eventCategory", "Equals": ["Management"]},
        {"Field": "readOnly", "Equals": ["false"]}]}]}
    write_only = {"EventSelectors": [{"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True}]}
    for bad in (trail(status={"IsLogging": False}), trail(IsMultiRegionTrail=False),
                trail(selectors=read_only), trail(selectors=write_only)):
        result = evaluate("aws.cloudtrail.multi_region", trails(bad))
        assert result.status.value == "fail", bad
        assert result.findings[0].resource == f"aws:{ACCT}:global:cloudtrail"
    assert status("aws.cloudtrail.multi_region", trails(shadow=False)) == "fail"


def test_multi_region_is_an_error_when_the_home_region_was_not_read():
    records = [make("aws.cloudtrail.trails", None, "us-east-1", state="denied",
                    detail="cloudtrail:DescribeTrails was denied"),
               make("aws.cloudtrail.trails", {"trailList": [trail(home=False)]}, "eu-west-1")]
    result = evaluate("aws.cloudtrail.multi_region", records)
    assert result.status.value == "error"
    assert "home region us-east-1 was not read" in result.findings[-1].detail


def test_multi_region_with_a_denied_region_is_never_a_clean_pass():
    assert status("aws.cloudtrail.multi_region", trails(trail(), eu_state="denied")) == "error"


# --- aws.cloudtrail.log_validation / kms_encrypted ---------------------------------------

def test_log_validation():
    assert status("aws.cloudtrail.log_validation", trails(trail())) == "pass"
    result = evaluate("aws.cloudtrail.log_validation", trails(trail(LogFileValidationEnabled=False)))
    assert result.status.value == "fail" and [f.resource for f in result.findings] == [ARN]
    assert status("aws.cloudtrail.log_validation", trails(trail(), eu_state="error")) == "error"
    assert status("aws.cloudtrail.log_validation", trails(shadow=False)) == "not_applicable"


def test_kms_encrypted():
    assert status("aws.cloudtrail.kms_encrypted", trails(trail())) == "pass"
    no_key = dict(trail())
    del no_key["KmsKeyId"]
    assert status("aws.cloudtrail.kms_encrypted", trails(no_key)) == "fail"
    assert status("aws.cloudtrail.kms_encrypted", trails(trail(), eu_state="denied")) == "error"


# --- aws.guardduty.enabled ---------------------------------------------------------------

def detector(status="ENABLED", admin=None):
    return {"DetectorIds": ["d1"], "Detectors": [{
        "DetectorId": "d1", "GetDetector": {"Status": status},
        "GetAdministratorAccount": {"Administrator": {"AccountId": admin,
                                                      "RelationshipStatus": "Enabled"}} if admin else {}}]}


def test_guardduty_passes_and_records_the_delegated_administrator():
    records = [make("aws.guardduty.detectors", detector(), "us-east-1"),
               make("aws.guardduty.detectors", detector(admin="222233334444"), "eu-west-1")]
    result = evaluate("aws.guardduty.enabled", records)
    assert result.status.value == "pass"
    assert any("delegated administrator 222233334444" in f.detail for f in result.findings)
    assert result.findings[0].resource.startswith("arn:aws:guardduty:")


def test_guardduty_fails_without_an_enabled_detector():
    records = [make("aws.guardduty.detectors", detector(), "us-east-1"),
               make("aws.guardduty.detectors", {"DetectorIds": [], "Detectors": []}, "eu-west-1"),
               make("aws.guardduty.detectors", detector("DISABLED"), "ap-southeast-2")]
    result = evaluate("aws.guardduty.enabled", records)
    assert result.status.value == "fail"
    failing = {f.resource: f.detail for f in result.findings if f.status.value == "fail"}
    assert failing == {f"aws:{ACCT}:eu-west-1:guardduty": "no GuardDuty detector",
                       f"aws:{ACCT}:ap-southeast-2:guardduty": "detector d1 is DISABLED"}


def test_guardduty_region_without_the_service_and_denied_region():
    absent = make("aws.guardduty.detectors", None, "eu-south-3", state="absent",
                  detail="service not offered in eu-south-3")
    assert status("aws.guardduty.enabled", [absent]) == "not_applicable"
    assert status("aws.guardduty.enabled",
                  [absent, make("aws.guardduty.detectors", detector(), "us-east-1")]) == "pass"
    denied = make("aws.guardduty.detectors", None, "eu-west-1", state="denied",
                  detail="guardduty:ListDetectors was denied")
    assert status("aws.guardduty.enabled",
                  [denied, make("aws.guardduty.detectors", detector(), "us-east-1")]) == "error"


# --- aws.vpc.flow_logs -------------------------------------------------------------------

VPCS = {"Vpcs": [{"VpcId": "vpc-1"}, {"VpcId": "vpc-2"}]}


def flow_logs(*vpc_ids, status="ACTIVE"):
    return {"FlowLogs": [{"ResourceId": v, "FlowLogStatus": status} for v in vpc_ids]}


def test_flow_logs():
    ok = [make("aws.ec2.vpcs", VPCS, "us-east-1"),
          make("aws.ec2.flow_logs", flow_logs("vpc-1", "vpc-2"), "us-east-1")]
    assert status("aws.vpc.flow_logs", ok) == "pass"
    partly = [ok[0], make("aws.ec2.flow_logs", flow_logs("vpc-1"), "us-east-1")]
    result = evaluate("aws.vpc.flow_logs", partly)
    assert result.status.value == "fail"
    assert [f.resource for f in result.findings if f.status.value == "fail"] == [
        f"arn:aws:ec2:us-east-1:{ACCT}:vpc/vpc-2"]
    failed_delivery = [ok[0], make("aws.ec2.flow_logs", flow_logs("vpc-1", "vpc-2", status="FAILED"),
                                   "us-east-1")]
    assert status("aws.vpc.flow_logs", failed_delivery) == "fail"


def test_flow_logs_unknown_is_an_error():
    records = [make("aws.ec2.vpcs", VPCS, "us-east-1"),
               make("aws.ec2.flow_logs", None, "us-east-1", state="denied",
                    detail="ec2:DescribeFlowLogs was denied")]
    result = evaluate("aws.vpc.flow_logs", records)
    assert result.status.value == "error"
    assert {f.status.value for f in result.findings} == {"error"}


# --- aws.config.recorder -----------------------------------------------------------------

def recorders(*statuses):
    return {"ConfigurationRecorders": [{"name": n} for n, _ in statuses],
            "ConfigurationRecordersStatus": [{"name": n, "recording": r} for n, r in statuses]}


def test_config_recorder():
    assert status("aws.config.recorder",
                  [make("aws.config.recorders", recorders(("default", True)), "us-east-1")]) == "pass"
    result = evaluate("aws.config.recorder", [
        make("aws.config.recorders", recorders(("default", True)), "us-east-1"),
        make("aws.config.recorders", recorders(("default", False)), "eu-west-1"),
        make("aws.config.recorders", recorders(), "ap-southeast-2")])
    assert result.status.value == "fail"
    assert {f.detail for f in result.findings if f.status.value == "fail"} == {
        "recorder default is not recording", "no configuration recorder"}
    assert status("aws.config.recorder", [
        make("aws.config.recorders", recorders(("default", True)), "us-east-1"),
        make("aws.config.recorders", None, "eu-west-1", state="error", detail="boom")]) == "error"
