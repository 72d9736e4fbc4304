"""Logging and detection controls: CloudTrail, GuardDuty, VPC flow logs, AWS Config."""
from __future__ import annotations

from typing import Any, Iterator

from attest.model import Finding, errored, failed, passed
from controls.rules import EvidenceView, rule
from controls.rules._aws import no_trail_qualifies, offered, resource
from controls.rules._aws import trails as _trails


def _all_management_events(selectors: dict[str, Any]) -> bool:
    """Classic selector ReadWriteType All + IncludeManagementEvents, or an advanced selector on
    eventCategory Management without a readOnly filter."""
    for s in selectors.get("EventSelectors") or []:
        if s.get("ReadWriteType") == "All" and s.get("IncludeManagementEvents"):
            return True
    for s in selectors.get("AdvancedEventSelectors") or []:
        fields = {f.get("Field"): f for f in s.get("FieldSelectors", [])}
        category = fields.get("eventCategory", {})
        if category.get("Equals") == ["Management"] and "readOnly" not in fields:
            return True
    return False


@rule("aws.cloudtrail.multi_region")
def cloudtrail_multi_region(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    for account, trails in sorted(_trails(ev).items()):
        unknown, problems = [], []
        for arn, trail in sorted(trails.items()):
            if not trail.get("IsMultiRegionTrail"):
                continue
            status, selectors = trail.get("GetTrailStatus"), trail.get("GetEventSelectors")
            if status is None or selectors is None:
                unknown.append(f"{arn} (home region {trail.get('HomeRegion')} was not read)")
            elif not status.get("IsLogging"):
                problems.append(f"{arn} is not logging")
            elif not _all_management_events(selectors):
                problems.append(f"{arn} does not record all management read and write events")
            else:
                kind = "organization trail" if trail.get("IsOrganizationTrail") else "trail"
                yield passed(arn, f"multi-region {kind} logging all management events")
                break
        else:
            yield no_trail_qualifies(account, unknown, problems, "status",
                                     "no multi-region trail logs all management events")


def _each_trail(ev: EvidenceView) -> Iterator[tuple[str, dict[str, Any]]]:
    seen: set[str] = set()
    for trails in _trails(ev).values():
        for arn, trail in sorted(trails.items()):
            if arn not in seen:
                seen.add(arn)
                yield arn, trail


@rule("aws.cloudtrail.log_validation")
def cloudtrail_log_validation(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    for arn, trail in _each_trail(ev):
        if trail.get("LogFileValidationEnabled"):
            yield passed(arn, "log file validation is on")
        else:
            yield failed(arn, "log file validation is off")


@rule("aws.cloudtrail.kms_encrypted")
def cloudtrail_kms_encrypted(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    for arn, trail in _each_trail(ev):
        if trail.get("KmsKeyId"):
            yield passed(arn, f"logs encrypted with {trail['KmsKeyId']}")
        else:
            yield failed(arn, "logs are not encrypted with a KMS key (SSE-S3 only)")


@rule("aws.guardduty.enabled")
def guardduty_enabled(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    for _, account, region, payload in offered(ev.get("aws.guardduty.detectors")):
        detectors = payload.get("Detectors", [])
        states = []
        for d in detectors:
            status = (d.get("GetDetector") or {}).get("Status")
            states.append(f"{d['DetectorId']} is {status}")
            if status == "ENABLED":
                admin = (d.get("GetAdministratorAccount") or {}).get("Administrator") or {}
                managed = (f", managed by delegated administrator {admin['AccountId']}"
                           if admin.get("AccountId") else "")
                yield passed(f"arn:aws:guardduty:{region}:{account}:detector/{d['DetectorId']}",
                             f"detector enabled{managed}")
                break
        else:
            yield failed(resource(account, region, "guardduty"),
                         "detector " + ", ".join(states) if states else "no GuardDuty detector")


@rule("aws.vpc.flow_logs")
def vpc_flow_logs(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    for record, account, region, payload in offered(ev.get("aws.ec2.vpcs")):
        flow_logs = ev.one("aws.ec2.flow_logs", record.scope)
        logged = {f.get("ResourceId") for f in (flow_logs.payload or {}).get("FlowLogs", [])
                  if f.get("FlowLogStatus", "ACTIVE") == "ACTIVE"} if flow_logs else set()
        for vpc in payload.get("Vpcs", []):
            arn = f"arn:aws:ec2:{region}:{account}:vpc/{vpc['VpcId']}"
            if vpc["VpcId"] in logged:
                yield passed(arn, "has an active flow log")
            elif flow_logs is None:
                yield errored(arn, f"flow logs of {region} were not read")
            else:
                yield failed(arn, "no active flow log")


@rule("aws.config.recorder")
def config_recorder(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    for _, account, region, payload in offered(ev.get("aws.config.recorders")):
        where = resource(account, region, "config")
        statuses = payload.get("ConfigurationRecordersStatus", [])
        recording = [s["name"] for s in statuses if s.get("recording")]
        if recording:
            yield passed(where, f"recorder {recording[0]} is recording")
        elif statuses:
            yield failed(where, "recorder " + ", ".join(s["name"] for s in statuses)
                         + " is not recording")
        else:
            yield failed(where, "no configuration recorder")

