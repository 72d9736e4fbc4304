"""The AWS operations moto 5.2.5 does not answer, answered for the demo and the tests.

The demo's server is moto's WSGI app with this layer in front (:meth:`Gaps.wrap`): a request for
one of the operations below is answered here, in the wire shape of the AWS API reference; every
other request goes to moto unchanged. State is per (account, region), seeded by the demo with the
``add_*``/``set_*`` methods, and forgotten with moto's (:meth:`Gaps.reset`).

* GuardDuty ``ListFindings`` (criteria on ``severity`` and ``service.archived``) and
  ``GetFindings`` (moto has detectors, but no findings);
* Security Hub ``GetEnabledStandards`` (moto answers DescribeHub, not the standards);
* IAM Access Analyzer ``ListAnalyzers`` (moto has no Access Analyzer at all);
* AWS Backup ``ListBackupSelections`` and ``ListProtectedResources`` (moto has plans only);
* EC2 ``GetSnapshotBlockPublicAccessState``.

The collector is the production code: only these answers come from here instead of moto.
"""
from __future__ import annotations

import io
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs

from attest.model import isoformat

CREDENTIAL = re.compile(r"Credential=([^/]+)/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")
FINDINGS_PATH = re.compile(r"/detector/([^/]+)/findings(/get)?/?")
SELECTIONS_PATH = re.compile(r"/backup/plans/([^/]+)/selections/?")
EC2_XMLNS = "http://ec2.amazonaws.com/doc/2016-11-15/"

Wsgi = Callable[[dict, Callable], Iterable[bytes]]


@dataclass
class RegionState:
    findings: dict[str, list[dict[str, Any]]] = field(default_factory=dict)   # detector id ->
    standards: list[dict[str, Any]] = field(default_factory=list)
    analyzers: list[dict[str, Any]] = field(default_factory=list)
    selections: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # plan id ->
    protected: list[dict[str, Any]] = field(default_factory=list)
    snapshot_block: str = "unblocked"


class Gaps:
    def __init__(self) -> None:
        self._regions: dict[tuple[str, str], RegionState] = {}
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self._regions.clear()

    def region(self, account: str, region: str) -> RegionState:
        with self._lock:
            return self._regions.setdefault((account, region), RegionState())

    # --- seeding --------------------------------------------------------------------------

    def add_finding(self, account: str, region: str, detector_id: str, *, finding_id: str,
                    type: str, severity: float, created: datetime, title: str,
                    resource: dict[str, Any], archived: bool = False,
                    updated: datetime | None = None) -> None:
        """A finding as GetFindings returns it (API reference: Finding)."""
        self.region(account, region).findings.setdefault(detector_id, []).append({
            "accountId": account, "region": region, "partition": "aws", "id": finding_id,
            "arn": f"arn:aws:guardduty:{region}:{account}:detector/{detector_id}/finding/{finding_id}",
            "type": type, "severity": severity, "title": title, "description": title,
            "schemaVersion": "2.0", "createdAt": isoformat(created),
            "updatedAt": isoformat(updated or created), "confidence": 8.0,
            "resource": resource,
            "service": {"serviceName": "guardduty", "detectorId": detector_id,
                        "archived": archived, "count": 1,
                        "eventFirstSeen": isoformat(created),
                        "eventLastSeen": isoformat(updated or created)}})

    def enable_standards(self, account: str, region: str, standards: list[str]) -> None:
        """Standards subscriptions as GetEnabledStandards returns them, ``READY``."""
        state = self.region(account, region)
        for name in standards:    # e.g. "aws-foundational-security-best-practices/v/1.0.0"
            state.standards.append({
                "StandardsArn": f"arn:aws:securityhub:{region}::standards/{name}",
                "StandardsSubscriptionArn": f"arn:aws:securityhub:{region}:{account}:subscription/{name}",
                "StandardsInput": {}, "StandardsStatus": "READY",
                "StandardsControlsUpdatable": "READY_FOR_UPDATES"})

    def add_analyzer(self, account: str, region: str, name: str, created: datetime,
                     type: str = "ACCOUNT", status: str = "ACTIVE") -> None:
        """An analyzer as ListAnalyzers returns it (API reference: AnalyzerSummary)."""
        self.region(account, region).analyzers.append({
            "arn": f"arn:aws:access-analyzer:{region}:{account}:analyzer/{name}", "name": name,
            "type": type, "status": status, "createdAt": isoformat(created), "tags": {}})

    def add_backup_selection(self, account: str, region: str, plan_id: str, name: str,
                             created: datetime) -> None:
        self.region(account, region).selections.setdefault(plan_id, []).append({
            "SelectionId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{plan_id}/{name}")),
            "SelectionName": name, "BackupPlanId": plan_id,
            "CreationDate": created.timestamp(),
            "IamRoleArn": f"arn:aws:iam::{account}:role/service-role/AWSBackupDefaultServiceRole"})

    def protect(self, account: str, region: str, arn: str, resource_type: str, name: str,
                last_backup: datetime) -> None:
        """A resource with a recovery point, as ListProtectedResources returns it."""
        self.region(account, region).protected.append({
            "ResourceArn": arn, "ResourceType": resource_type, "ResourceName": name,
            "LastBackupTime": last_backup.timestamp(),
            "LastBackupVaultArn": f"arn:aws:backup:{region}:{account}:backup-vault:Default"})

    def set_snapshot_block(self, account: str, region: str, state: str) -> None:
        """``block-all-sharing``, ``block-new-sharing`` or ``unblocked``."""
        self.region(account, region).snapshot_block = state

    # --- the WSGI layer -------------------------------------------------------------------

    def wrap(self, moto_app: Wsgi) -> Wsgi:
        def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
            match = CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
            if match:
                answer = self._answer(environ, *match.groups())
                if answer is not None:
                    status, content_type, body = answer
                    start_response(status, [("Content-Type", content_type),
                                            ("Content-Length", str(len(body))),
                                            ("x-amzn-RequestId", "attest-demo")])
                    return [body]
            return moto_app(environ, start_response)
        return app

    def _answer(self, environ: dict, access_key: str, region: str,
                service: str) -> tuple[str, str, bytes] | None:
        from moto.iam.models import get_account_id_from
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        if service not in ("guardduty", "securityhub", "access-analyzer", "backup", "ec2"):
            return None
        account = get_account_id_from(access_key)
        state = self.region(account, region)
        if service == "ec2":
            return self._ec2(environ, state)
        found = FINDINGS_PATH.fullmatch(path)
        if service == "guardduty" and method == "POST" and found:
            body = _json_body(environ)
            findings = state.findings.get(found.group(1), [])
            if found.group(2):       # GetFindings
                wanted = set(body.get("findingIds", []))
                return _json({"findings": [f for f in findings if f["id"] in wanted]})
            criterion = (body.get("findingCriteria") or {}).get("criterion", {})
            return _json({"findingIds": [f["id"] for f in findings if _matches(f, criterion)]})
        if service == "securityhub" and method == "POST" and path == "/standards/get":
            return _json({"StandardsSubscriptions": state.standards})
        if service == "access-analyzer" and method == "GET" and path == "/analyzer":
            kind = parse_qs(environ.get("QUERY_STRING", "")).get("type", [None])[0]
            return _json({"analyzers": [a for a in state.analyzers if kind in (None, a["type"])]})
        selections = SELECTIONS_PATH.fullmatch(path)
        if service == "backup" and method == "GET" and selections:
            return _json({"BackupSelectionsList": state.selections.get(selections.group(1), [])})
        if service == "backup" and method == "GET" and path.rstrip("/") == "/resources":
            return _json({"Results": state.protected})
        return None

    def _ec2(self, environ: dict, state: RegionState) -> tuple[str, str, bytes] | None:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)     # moto reads it again
        if parse_qs(body.decode()).get("Action") != ["GetSnapshotBlockPublicAccessState"]:
            return None
        xml = (f'<GetSnapshotBlockPublicAccessStateResponse xmlns="{EC2_XMLNS}">'
               f"<requestId>attest-demo</requestId><state>{state.snapshot_block}</state>"
               f"<managedBy>account</managedBy></GetSnapshotBlockPublicAccessStateResponse>")
        return "200 OK", "text/xml", xml.encode()


def _json_body(environ: dict) -> dict[str, Any]:
    raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    return json.loads(raw or b"{}")


def _json(payload: dict[str, Any]) -> tuple[str, str, bytes]:
    return "200 OK", "application/json", json.dumps(payload).encode()


def _matches(finding: dict[str, Any], criterion: dict[str, Any]) -> bool:
    """The criteria the collector sends: numbers compared on ``severity``, equality on
    ``service.archived`` (GuardDuty's deprecated short names ``gte``/``eq`` included)."""
    values = {"severity": finding["severity"],
              "service.archived": str(finding["service"]["archived"]).lower()}
    for name, condition in criterion.items():
        if name not in values:
            continue
        value = values[name]
        for op, operand in condition.items():
            if op in ("greaterThanOrEqual", "gte") and not value >= operand:
                return False
            if op in ("greaterThan", "gt") and not value > operand:
                return False
            if op in ("lessThan", "lt") and not value < operand:
                return False
            if op in ("lessThanOrEqual", "lte") and not value <= operand:
                return False
            if op in ("equals", "eq") and str(value) not in operand:
                return False
            if op in ("notEquals", "neq") and str(value) in operand:
                return False
    return True


GAPS = Gaps()     # moto's state is per process; so is this
