"""PagerDuty rules: escalation of every live service, on-call coverage, notification rules,
acknowledgement of high-urgency incidents.

Payloads hold PagerDuty's raw REST API v2 objects (see collectors/pagerduty/collector.py):
``{"services": [...]}``, ``{"escalation_policies": [...]}``, ``{"since", "until", "schedules":
{id: schedule}}``, ``{"users": [...]}`` and ``{"since", "until", "incidents": [...],
"log_entries": {incident id: [acknowledge/resolve log entries]}}``. Resources are named
``service:<id>``, ``escalation_policy:<id>``, ``schedule:<id>``, ``user:<id>`` and
``incident:<id>``, as the collector names what it could not read.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Iterator

from attest.model import Evidence, Finding, errored, failed, isoformat, parse_time, passed
from controls.rules import EvidenceView, rule

SERVICES = "pagerduty.services"
POLICIES = "pagerduty.escalation_policies"
SCHEDULES = "pagerduty.schedules"
USERS = "pagerduty.users"
INCIDENTS = "pagerduty.incidents"
ACK_TYPES = ("acknowledge_log_entry", "acknowledgement_log_entry")
RESOLVE_TYPES = ("resolve_log_entry",)
SHOWN = 5          # gaps named in one finding


def _name(obj: dict[str, Any]) -> str:
    return str(obj.get("name") or obj.get("summary") or obj.get("id"))


def _live_services(record: Evidence) -> list[dict[str, Any]]:
    return [s for s in (record.payload or {}).get("services") or [] if s.get("status") != "disabled"]


def _policies(ev: EvidenceView, scope: str) -> dict[str, dict[str, Any]] | None:
    """The escalation policies of ``scope`` by id; None when they could not be read."""
    record = ev.one(POLICIES, scope)
    if record is None:
        return None
    return {str(p["id"]): p for p in (record.payload or {}).get("escalation_policies") or []}


def _used(record: Evidence) -> dict[str, list[str]]:
    """Escalation policy id -> the names of the live services that use it."""
    used: dict[str, list[str]] = {}
    for s in _live_services(record):
        ref = s.get("escalation_policy") or {}
        if ref.get("id"):
            used.setdefault(str(ref["id"]), []).append(_name(s))
    return used


def _targets(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for r in policy.get("escalation_rules") or [] for t in r.get("targets") or []]


def _is(target: dict[str, Any], kind: str) -> bool:
    return str(target.get("type", "")).split("_reference")[0] == kind


def _quoted(names: list[str]) -> str:
    shown = ", ".join(f"'{n}'" for n in names[:3])
    return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")


@rule("pagerduty.services_escalation")
def services_escalation(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    for record in ev.get(SERVICES):
        policies = _policies(ev, record.scope)
        for s in _live_services(record):
            resource, name = f"service:{s['id']}", _name(s)
            ref = s.get("escalation_policy") or {}
            if not ref.get("id"):
                yield failed(resource, f"'{name}' has no escalation policy")
                continue
            if policies is None:
                yield errored(resource, f"'{name}': {POLICIES} could not be read, so what its "
                                        "escalation policy pages first is unknown")
                continue
            policy = policies.get(str(ref["id"]))
            if policy is None:
                yield errored(resource, f"'{name}': its escalation policy {ref['id']} is not in "
                                        "the escalation policies read (deleted, or not visible "
                                        "to the API key)")
                continue
            rules = policy.get("escalation_rules") or []
            first = (rules[0].get("targets") or []) if rules else []
            if not first:
                where = "has no escalation rule" if not rules else "has no target in its first level"
                yield failed(resource, f"'{name}': escalation policy '{_name(policy)}' {where}, "
                                       "so a new incident pages nobody")
            else:
                yield passed(resource, f"'{name}': escalation policy '{_name(policy)}' first pages "
                                       + _quoted([_name(t) for t in first]))


@rule("pagerduty.escalation_depth")
def escalation_depth(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    for record in ev.get(SERVICES):
        policies = _policies(ev, record.scope)
        for pid, services in sorted(_used(record).items()):
            resource = f"escalation_policy:{pid}"
            used_by = f"used by {_quoted(services)}"
            if policies is None:
                yield errored(resource, f"{used_by}; {POLICIES} could not be read")
                continue
            policy = policies.get(pid)
            if policy is None:
                yield errored(resource, f"{used_by}, but not in the escalation policies read "
                                        "(deleted, or not visible to the API key)")
                continue
            levels = len(policy.get("escalation_rules") or [])
            loops = int(policy.get("num_loops") or 0)
            shape = (f"{levels} level{'s' if levels != 1 else ''}, repeats "
                     f"{loops} time{'s' if loops != 1 else ''}")
            if levels >= 2 or loops >= 1:
                yield passed(resource, f"'{_name(policy)}' ({used_by}): {shape}")
            else:
                yield failed(resource, f"'{_name(policy)}' ({used_by}): {shape}: when its first "
                                       "level does not acknowledge, nobody else is paged")


def _targeted_schedules(ev: EvidenceView, record: Evidence
                        ) -> tuple[dict[str, tuple[str, list[str]]], dict[str, dict[str, Any]] | None]:
    """Schedule id -> (its name, the policies targeting it), over the policies live services
    use; and the policies (None when unreadable)."""
    policies = _policies(ev, record.scope)
    out: dict[str, tuple[str, list[str]]] = {}
    for pid in _used(record):
        policy = (policies or {}).get(pid)
        for t in _targets(policy or {}):
            if _is(t, "schedule"):
                name, via = out.get(str(t["id"]), (_name(t), []))
                out[str(t["id"])] = (name, via + [_name(policy)])
    return out, policies


def _gaps(entries: list[dict[str, Any]], start: datetime, end: datetime
          ) -> list[tuple[datetime, datetime]]:
    """The parts of [start, end) no entry (with a user) covers."""
    spans = sorted((parse_time(e["start"]), parse_time(e["end"])) for e in entries
                   if (e.get("user") or {}).get("id"))
    gaps, at = [], start
    for a, b in spans:
        if b <= at:
            continue
        if a > at:
            gaps.append((at, min(a, end)))
        at = max(at, b)
        if at >= end:
            break
    if at < end:
        gaps.append((at, end))
    return [(a, b) for a, b in gaps if a < b and a < end]


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{mins}m" if mins else ""]
    return " ".join(p for p in parts if p) or f"{int(delta.total_seconds())}s"


@rule("pagerduty.schedule_coverage")
def schedule_coverage(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    days = int(params["days"])
    for record in ev.get(SERVICES):
        targeted, policies = _targeted_schedules(ev, record)
        if policies is None:
            continue                 # the engine reports the unreadable policies
        schedules_record = ev.one(SCHEDULES, record.scope)
        for sid, (name, via) in sorted(targeted.items()):
            resource = f"schedule:{sid}"
            if schedules_record is None:
                yield errored(resource, f"'{name}': {SCHEDULES} could not be read")
                continue
            payload = schedules_record.payload or {}
            schedule = (payload.get("schedules") or {}).get(sid)
            if schedule is None:
                yield errored(resource, f"'{name}' (targeted by {_quoted(via)}) was not read")
                continue
            start = parse_time(payload["since"])
            end = start + timedelta(days=days)
            if parse_time(payload["until"]) < end:
                yield errored(resource, f"'{name}': the schedules were rendered only until "
                                        f"{payload['until']}, less than the {days} days asked")
                continue
            entries = (schedule.get("final_schedule") or {}).get("rendered_schedule_entries")
            if entries is None:
                yield errored(resource, f"'{name}': the schedule has no rendered final schedule")
                continue
            gaps = _gaps(entries, start, end)
            if gaps:
                total = sum((b - a for a, b in gaps), timedelta())
                listed = "; ".join(f"{isoformat(a)} to {isoformat(b)}" for a, b in gaps[:SHOWN])
                more = f" and {len(gaps) - SHOWN} more" if len(gaps) > SHOWN else ""
                yield failed(resource, f"'{_name(schedule)}' has nobody on call for "
                                       f"{_duration(total)} in the next {days} days: {listed}{more}",
                             gaps=[[isoformat(a), isoformat(b)] for a, b in gaps])
            else:
                # the window's exact ends are in the evidence (since, until): the verdict names
                # none, so that it reads the same whenever in the night the schedule was read
                yield passed(resource, f"'{_name(schedule)}' has someone on call at every moment "
                                       f"of the next {days} days")


@rule("pagerduty.oncall_notifiable")
def oncall_notifiable(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    for record in ev.get(SERVICES):
        targeted, policies = _targeted_schedules(ev, record)
        if policies is None:
            continue                 # the engine reports the unreadable policies
        pageable: dict[str, tuple[str, set[str]]] = {}

        def add(ref: dict[str, Any], via: str) -> None:
            name, vias = pageable.get(str(ref["id"]), (_name(ref), set()))
            pageable[str(ref["id"])] = (name, vias | {via})

        for pid in _used(record):
            policy = policies.get(pid) or {}
            for t in _targets(policy):
                if _is(t, "user"):
                    add(t, f"escalation policy '{_name(policy)}'")
        schedules_record = ev.one(SCHEDULES, record.scope)
        schedules = ((schedules_record.payload or {}).get("schedules") or {}
                     if schedules_record is not None else {})
        for sid, (name, _) in sorted(targeted.items()):
            schedule = schedules.get(sid)
            if schedule is None:
                yield errored(f"schedule:{sid}", f"'{name}' was not read, so who it can page is "
                                                 "unknown")
                continue
            members = [u for u in schedule.get("users") or []]
            members += [e["user"] for e in (schedule.get("final_schedule") or {})
                        .get("rendered_schedule_entries") or [] if (e.get("user") or {}).get("id")]
            for u in members:
                add(u, f"schedule '{_name(schedule)}'")
        users_record = ev.one(USERS, record.scope)
        users = ({str(u["id"]): u for u in (users_record.payload or {}).get("users") or []}
                 if users_record is not None else None)
        for uid, (name, vias) in sorted(pageable.items()):
            resource = f"user:{uid}"
            paged_by = "paged by " + ", ".join(sorted(vias))
            if users is None:
                yield errored(resource, f"{name} ({paged_by}): {USERS} could not be read")
                continue
            u = users.get(uid)
            if u is None:
                yield errored(resource, f"{name} ({paged_by}) is not in the users read")
                continue
            rules = u.get("notification_rules") or []
            if any("urgency" not in r for r in rules):
                yield errored(resource, f"{_name(u)}: the notification rules were not expanded "
                                        "(no urgency in the answer)")
                continue
            high = [r for r in rules if r.get("urgency") == "high"]
            if high:
                how = sorted({str((r.get("contact_method") or {}).get("type", "?"))
                              .replace("_contact_method_reference", "")
                              .replace("_contact_method", "") for r in high})
                yield passed(resource, f"{_name(u)} ({paged_by}): {len(high)} high-urgency "
                                       f"notification rule{'s' if len(high) != 1 else ''} "
                                       f"({', '.join(how)})")
            else:
                yield failed(resource, f"{_name(u)} ({paged_by}) has no high-urgency notification "
                                       "rule, so a high-urgency page notifies them of nothing")


def _minutes(delta: timedelta) -> int:
    return int(delta.total_seconds() // 60)


@rule("pagerduty.incident_acknowledged")
def incident_acknowledged(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    limit = timedelta(minutes=int(params["max_minutes"]))
    for record in ev.get(INCIDENTS):
        payload = record.payload or {}
        read_at = parse_time(payload["until"])
        log = payload.get("log_entries") or {}
        for inc in payload.get("incidents") or []:
            if inc.get("urgency") != "high":
                continue
            iid = str(inc["id"])
            resource = f"incident:{iid}"
            label = f"#{inc.get('incident_number')} '{inc.get('title') or inc.get('summary')}'"
            created = parse_time(inc["created_at"])
            if iid not in log:
                yield errored(resource, f"{label}: its log entries were not read")
                continue
            entries = log[iid] or []
            acks = sorted(parse_time(e["created_at"]) for e in entries if e.get("type") in ACK_TYPES)
            resolves = sorted(parse_time(e["created_at"]) for e in entries
                              if e.get("type") in RESOLVE_TYPES)
            facts = {"created_at": isoformat(created)}
            if acks or resolves:
                first = min(acks[:1] + resolves[:1])
                how = "acknowledged" if acks and acks[0] == first else "resolved (not acknowledged)"
                took = _minutes(first - created)
                facts.update(responded_at=isoformat(first), minutes=took)
                if first - created <= limit:
                    yield passed(resource, f"{label} was {how} {took} minutes after it was created",
                                 **facts)
                else:
                    yield failed(resource, f"{label} was first {how} {took} minutes after it was "
                                           f"created, more than {_minutes(limit)}", **facts)
            elif inc.get("status") in ("acknowledged", "resolved"):
                yield errored(resource, f"{label} is {inc['status']}, but no acknowledge or "
                                        "resolve log entry was read for it")
            elif read_at - created > limit:
                yield failed(resource, f"{label} was still not acknowledged {_minutes(read_at - created)} "
                                       f"minutes after it was created, more than {_minutes(limit)}",
                             **facts)
            else:
                yield passed(resource, f"{label} was not yet acknowledged {_minutes(read_at - created)} "
                                       f"minutes after it was created, within {_minutes(limit)} "
                                       "(not yet late when read)", **facts)
