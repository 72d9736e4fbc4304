"""EKS controls: control plane logging, secrets encryption, a private API endpoint, and a
Kubernetes version in standard support."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterator

from attest.model import EvidenceState, Finding, errored, failed, parse_time, passed
from controls.rules import EvidenceView, rule
from controls.rules._aws import offered

OPEN = ("0.0.0.0/0", "::/0")


def _clusters(ev: EvidenceView) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(scope, arn, DescribeCluster's ``cluster``) of every cluster described."""
    for record, _, _, payload in offered(ev.get("aws.eks.clusters")):
        for item in payload.get("Clusters", []):
            cluster = (item.get("DescribeCluster") or {}).get("cluster") or {}
            yield record.scope, cluster.get("arn") or item.get("name", "?"), cluster


def _day(value: Any) -> str:
    """A date of an answer (ISO text, a datetime, or epoch seconds) as YYYY-MM-DD."""
    if value in (None, ""):
        return "an unknown date"
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, timezone.utc).date().isoformat()
    return parse_time(value).date().isoformat()


@rule("aws.eks.control_plane_logging")
def control_plane_logging(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    required = list(params["required_types"])
    for _, arn, cluster in _clusters(ev):
        enabled = {t for entry in (cluster.get("logging") or {}).get("clusterLogging", [])
                   if entry.get("enabled") for t in entry.get("types", [])}
        missing = [t for t in required if t not in enabled]
        if missing:
            yield failed(arn, "control plane log types not enabled: " + ", ".join(missing))
        else:
            yield passed(arn, "control plane logs enabled: " + ", ".join(sorted(enabled)))


@rule("aws.eks.secrets_encryption")
def secrets_encryption(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    for _, arn, cluster in _clusters(ev):
        keys = [(c.get("provider") or {}).get("keyArn") for c in cluster.get("encryptionConfig") or []
                if "secrets" in (c.get("resources") or [])]
        keys = [k for k in keys if k]
        if keys:
            yield passed(arn, f"Kubernetes secrets are encrypted with KMS key {keys[0]}")
        else:
            yield failed(arn, "Kubernetes secrets are not encrypted with a KMS key "
                              "(no encryptionConfig covers secrets)")


@rule("aws.eks.endpoint_not_public")
def endpoint_not_public(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    for _, arn, cluster in _clusters(ev):
        vpc = cluster.get("resourcesVpcConfig") or {}
        if not vpc.get("endpointPublicAccess", True):   # EKS's default is a public endpoint
            yield passed(arn, "the API endpoint is private")
            continue
        cidrs = vpc.get("publicAccessCidrs") or ["0.0.0.0/0"]   # EKS's default
        open_to = [c for c in cidrs if c in OPEN]
        if open_to:
            yield failed(arn, f"the API endpoint is public and open to {', '.join(open_to)}")
        else:
            yield passed(arn, "the public API endpoint is limited to " + ", ".join(cidrs))


STATUS = {"standard-support": "STANDARD_SUPPORT", "extended-support": "EXTENDED_SUPPORT",
          "unsupported": "UNSUPPORTED"}


def _status(info: dict[str, Any], now: datetime) -> str:
    """``versionStatus`` (or the deprecated ``status``); from the dates when neither is given."""
    if info.get("versionStatus"):
        return info["versionStatus"]
    if info.get("status"):
        return STATUS.get(info["status"], info["status"].upper())
    standard, extended = info.get("endOfStandardSupportDate"), info.get("endOfExtendedSupportDate")
    if standard in (None, ""):
        return ""
    ends = (lambda v: datetime.fromtimestamp(v, timezone.utc) if isinstance(v, (int, float))
            else parse_time(v))
    if now < ends(standard):
        return "STANDARD_SUPPORT"
    return "EXTENDED_SUPPORT" if extended not in (None, "") and now < ends(extended) else "UNSUPPORTED"


@rule("aws.eks.supported_version")
def supported_version(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    for scope, arn, cluster in _clusters(ev):
        version = cluster.get("version", "")
        versions = ev.one("aws.eks.cluster_versions", scope)
        if versions is None or versions.state is not EvidenceState.OK:
            yield errored(arn, f"Kubernetes {version}: the region's EKS versions "
                               "(DescribeClusterVersions) were not read")
            continue
        info = next((v for v in (versions.payload or {}).get("clusterVersions", [])
                     if v.get("clusterVersion") == version), None)
        if info is None:
            yield errored(arn, f"Kubernetes {version} is not among the versions "
                               "DescribeClusterVersions lists")
            continue
        status = _status(info, ev.now)
        standard_end = _day(info.get("endOfStandardSupportDate"))
        extended_end = _day(info.get("endOfExtendedSupportDate"))
        if status == "STANDARD_SUPPORT":
            yield passed(arn, f"Kubernetes {version} is in standard support until {standard_end}")
        elif status == "EXTENDED_SUPPORT":
            yield failed(arn, f"Kubernetes {version} is in extended support, which ends "
                              f"{extended_end} (standard support ended {standard_end})")
        elif status == "UNSUPPORTED":
            yield failed(arn, f"Kubernetes {version} is no longer supported (extended support "
                              f"ended {extended_end})")
        else:
            yield errored(arn, f"Kubernetes {version}: support status not given")
