"""``incidents``: PagerDuty high-urgency incidents, from ``pagerduty.incidents``.

The evidence contract (scope ``pagerduty:<host>``)::

    {"since": ISO, "until": ISO,
     "incidents": [raw PagerDuty incident objects: id, incident_number, title, urgency, status,
                   created_at, service {id, summary}, html_url, ...],
     "log_entries": {incident id: [raw log entries of types acknowledge_log_entry and
                                   resolve_log_entry: created_at, agent {id, summary, type}]}}

A row is one high-urgency incident, created in the period: when it was acknowledged and resolved
and by whom (the first log entry of each type), and the verdict ``pagerduty.incident_acknowledged``
gave it. An incident changes after it is first seen (acknowledged, resolved): the row is read from
the newest record of the period that lists it, and ``first_recorded_by`` names the first. The
verdict is the finding whose resource is the incident's id, its html_url, or ends with
``/<id>``, ``:<id>`` or ``#<incident_number>``.
"""
from __future__ import annotations

from typing import Any, Iterator

from attest.results import FindingRecord
from reports.populations import Population
from reports.populations._evidence import EvidenceFile, iso, verdict_columns

CONTROL = "pagerduty.incident_acknowledged"


def _finding(findings: dict[str, FindingRecord], incident: dict[str, Any]) -> FindingRecord | None:
    ident, number, url = str(incident.get("id")), incident.get("incident_number"), incident.get("html_url")
    for resource, finding in findings.items():
        if resource in (ident, url) or resource.endswith((f"/{ident}", f":{ident}")) or \
                (number is not None and resource.endswith(f"#{number}")):
            return finding
    return None


def _first(entries: list[Any], kind: str) -> tuple[str | None, str | None]:
    """(time, who) of the first log entry of ``kind``."""
    chosen = sorted((e for e in entries if isinstance(e, dict) and e.get("type") == kind
                     and iso(e.get("created_at"))), key=lambda e: iso(e.get("created_at")) or "")
    if not chosen:
        return None, None
    agent = chosen[0].get("agent") or {}
    return iso(chosen[0].get("created_at")), agent.get("summary") or agent.get("id")


def extract(records: list[EvidenceFile]) -> Iterator[tuple[EvidenceFile, dict[str, Any]]]:
    for rec in records:
        if not rec.ok or not isinstance(rec.payload, dict):
            continue
        host = rec.scope.split(":", 1)[-1]
        verdicts = rec.findings(CONTROL)
        log_entries = rec.payload.get("log_entries") or {}
        for incident in rec.payload.get("incidents") or []:
            if not isinstance(incident, dict) or incident.get("urgency") != "high":
                continue
            entries = log_entries.get(str(incident.get("id"))) or []
            acked_at, acked_by = _first(entries, "acknowledge_log_entry")
            resolved_at, resolved_by = _first(entries, "resolve_log_entry")
            verdict = _finding(verdicts, incident)
            yield rec, {
                "account": host, "incident_id": incident.get("id"),
                "number": incident.get("incident_number"), "title": incident.get("title"),
                "service": (incident.get("service") or {}).get("summary"),
                "urgency": incident.get("urgency"), "status": incident.get("status"),
                "created_at": iso(incident.get("created_at")),
                "acknowledged_at": acked_at, "acknowledged_by": acked_by,
                "resolved_at": resolved_at, "resolved_by": resolved_by,
                "url": incident.get("html_url"),
                **verdict_columns(verdict, CONTROL, f"incident {incident.get('id')}"),
            }


INCIDENTS = Population(
    name="incidents", title="Incidents: PagerDuty high-urgency incidents",
    evidence="pagerduty.incidents",
    columns=("account", "incident_id", "number", "title", "service", "urgency", "status",
             "created_at", "acknowledged_at", "acknowledged_by", "resolved_at", "resolved_by",
             "url", "verdict", "verdict_detail"),
    key=("account", "incident_id"), when="created_at", extract=extract, keep="last",
    brief=("service", "number", "title", "created_at", "acknowledged_by", "verdict"),
    notes=("one row per high-urgency incident created in the period, as the newest record of the "
           "period shows it (first_recorded_by: the first bundle that listed it)",
           "acknowledged/resolved: the first acknowledge_log_entry and resolve_log_entry, with "
           "the agent's name",
           f"verdict: the {CONTROL} finding of the bundle the row is read from"))
