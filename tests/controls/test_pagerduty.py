"""PagerDuty rules, pure: literal raw payloads -> findings; pass, fail and error per control."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from attest.engine import evaluate_control
from attest.model import ControlResult, Evidence, EvidenceState, Status
from controls import catalog_by_id

NOW = datetime(2026, 11, 22, 2, 0, tzinfo=timezone.utc)
SCOPE = "pagerduty:api.pagerduty.com"
MINUTE, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)


def iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def ref(kind: str, rid: str, summary: str = "") -> dict[str, Any]:
    return {"id": rid, "type": f"{kind}_reference", "summary": summary or rid}


def svc(sid: str, policy: str | None, status: str = "active") -> dict[str, Any]:
    return {"id": sid, "type": "service", "name": f"svc {sid}", "status": status,
            "escalation_policy": ref("escalation_policy", policy) if policy else None}


def pol(pid: str, *levels: list[dict[str, Any]], loops: int = 0) -> dict[str, Any]:
    return {"id": pid, "type": "escalation_policy", "name": f"policy {pid}", "num_loops": loops,
            "escalation_rules": [{"id": f"R{i}", "escalation_delay_in_minutes": 30,
                                  "targets": list(t)} for i, t in enumerate(levels)]}


def sched(sid: str, entries: list[tuple[datetime, datetime, str | None]],
          members: list[str] = ()) -> dict[str, Any]:
    rendered = [{"start": iso(a), "end": iso(b), "user": ref("user", u) if u else None}
                for a, b, u in entries]
    return {"id": sid, "type": "schedule", "name": f"schedule {sid}",
            "users": [ref("user", u) for u in members],
            "final_schedule": {"name": "Final Schedule", "rendered_schedule_entries": rendered}}


def usr(uid: str, *urgencies: str, expanded: bool = True) -> dict[str, Any]:
    rules = [{"id": f"N{i}", "type": "assignment_notification_rule", "urgency": u,
              "start_delay_in_minutes": 0,
              "contact_method": {"id": "C1", "type": "sms_contact_method_reference"}}
             for i, u in enumerate(urgencies)]
    if not expanded:
        rules = [{"id": r["id"], "type": "assignment_notification_rule_reference"} for r in rules]
    return {"id": uid, "type": "user", "name": f"user {uid}", "notification_rules": rules}


def rec(name: str, payload: Any, state: EvidenceState = EvidenceState.OK,
        unknown: dict[str, str] | None = None) -> Evidence:
    return Evidence(name=f"pagerduty.{name}", scope=SCOPE, state=state, payload=payload,
                    detail="" if state is EvidenceState.OK else "403 Access Denied",
                    unknown=unknown or {})


def services(*items: dict[str, Any]) -> Evidence:
    return rec("services", {"services": list(items)})


def policies(*items: dict[str, Any]) -> Evidence:
    return rec("escalation_policies", {"escalation_policies": list(items)})


def schedules(*items: dict[str, Any], since: datetime = NOW, days: int = 31,
              unknown: dict[str, str] | None = None) -> Evidence:
    return rec("schedules", {"since": iso(since), "until": iso(since + timedelta(days=days)),
                             "schedules": {s["id"]: s for s in items}},
               EvidenceState.PARTIAL if unknown else EvidenceState.OK, unknown)


def users(*items: dict[str, Any]) -> Evidence:
    return rec("users", {"users": list(items)})


def run(control_id: str, records: list[Evidence], **params: Any) -> ControlResult:
    control = catalog_by_id()[control_id]
    return evaluate_control(control, records, control.param_values(params), NOW)


def by_resource(result: ControlResult) -> dict[str, Status]:
    return {f.resource: f.status for f in result.findings}


def detail(result: ControlResult, resource: str) -> str:
    return next(f.detail for f in result.findings if f.resource == resource)


# -- pagerduty.services_escalation -----------------------------------------------------------

def test_services_escalation_pass_fail_and_disabled_services_ignored() -> None:
    result = run("pagerduty.services_escalation", [
        services(svc("S1", "P1"), svc("S2", "P2"), svc("S3", "P3"), svc("S4", "P2", "disabled"),
                 svc("S5", None)),
        policies(pol("P1", [ref("schedule", "SC1", "Primary")]),
                 pol("P2", [], [ref("user", "U1")], loops=3),
                 pol("P3"))])
    assert by_resource(result) == {"service:S1": Status.PASS, "service:S2": Status.FAIL,
                                   "service:S3": Status.FAIL, "service:S5": Status.FAIL}
    assert result.status is Status.FAIL
    assert "'Primary'" in detail(result, "service:S1")
    assert "no target in its first level" in detail(result, "service:S2")
    assert "no escalation rule" in detail(result, "service:S3")
    assert "has no escalation policy" in detail(result, "service:S5")


def test_services_escalation_errors_when_the_policy_is_unknown() -> None:
    missing = run("pagerduty.services_escalation", [services(svc("S1", "P9")), policies()])
    assert by_resource(missing) == {"service:S1": Status.ERROR}
    assert "not in the escalation policies read" in detail(missing, "service:S1")
    denied = run("pagerduty.services_escalation", [
        services(svc("S1", "P1")), rec("escalation_policies", None, EvidenceState.DENIED)])
    assert denied.status is Status.ERROR
    assert by_resource(denied)["service:S1"] is Status.ERROR
    assert by_resource(denied)[SCOPE] is Status.ERROR


def test_no_live_service_is_not_applicable() -> None:
    result = run("pagerduty.services_escalation", [services(svc("S1", "P1", "disabled")),
                                                   policies(pol("P1", []))])
    assert result.status is Status.NOT_APPLICABLE


# -- pagerduty.escalation_depth --------------------------------------------------------------

def test_escalation_depth_levels_or_loops() -> None:
    u = [ref("user", "U1")]
    result = run("pagerduty.escalation_depth", [
        services(svc("S1", "P1"), svc("S2", "P2"), svc("S3", "P3"), svc("S4", "P4", "disabled"),
                 svc("S5", "P3")),
        policies(pol("P1", u, u), pol("P2", u, loops=1), pol("P3", u), pol("P4", u),
                 pol("P5", u))])      # P4: only a disabled service uses it; P5: unused
    assert by_resource(result) == {"escalation_policy:P1": Status.PASS,
                                   "escalation_policy:P2": Status.PASS,
                                   "escalation_policy:P3": Status.FAIL}
    assert "'svc S3', 'svc S5'" in detail(result, "escalation_policy:P3")
    assert "1 level, repeats 0 times" in detail(result, "escalation_policy:P3")


def test_escalation_depth_errors_on_a_policy_not_read() -> None:
    result = run("pagerduty.escalation_depth", [services(svc("S1", "P9")), policies()])
    assert by_resource(result) == {"escalation_policy:P9": Status.ERROR}


# -- pagerduty.schedule_coverage -------------------------------------------------------------

def coverage_records(*schedule_items: dict[str, Any], **kw: Any) -> list[Evidence]:
    return [services(svc("S1", "P1"), svc("S2", "P2", "disabled")),
            policies(pol("P1", [ref("schedule", "SC1")], [ref("schedule", "SC2")]),
                     pol("P2", [ref("schedule", "SC9")])),
            schedules(*schedule_items, **kw)]


def test_schedule_coverage_passes_with_overlapping_entries() -> None:
    full = sched("SC1", [(NOW - DAY, NOW + 3 * DAY, "U1"), (NOW + 2 * DAY, NOW + 20 * DAY, "U2")])
    weekly = sched("SC2", [(NOW + i * 7 * DAY, NOW + (i + 1) * 7 * DAY, f"U{i}") for i in range(3)])
    result = run("pagerduty.schedule_coverage", coverage_records(full, weekly))
    assert by_resource(result) == {"schedule:SC1": Status.PASS, "schedule:SC2": Status.PASS}


def test_schedule_coverage_names_every_gap() -> None:
    gappy = sched("SC1", [(NOW, NOW + 2 * DAY, "U1"), (NOW + 2 * DAY + 8 * HOUR, NOW + 5 * DAY, "U2"),
                          (NOW + 5 * DAY, NOW + 6 * DAY, None),      # an entry with nobody
                          (NOW + 6 * DAY, NOW + 13 * DAY, "U1")])
    full = sched("SC2", [(NOW, NOW + 31 * DAY, "U3")])
    result = run("pagerduty.schedule_coverage", coverage_records(gappy, full))
    assert by_resource(result) == {"schedule:SC1": Status.FAIL, "schedule:SC2": Status.PASS}
    text = detail(result, "schedule:SC1")
    assert "2026-11-24T02:00:00Z to 2026-11-24T10:00:00Z" in text
    assert "2026-11-27T02:00:00Z to 2026-11-28T02:00:00Z" in text
    assert "2026-12-05T02:00:00Z to 2026-12-06T02:00:00Z" in text      # after the last entry
    assert "2d 8h" in text
    facts = next(f.facts for f in result.findings if f.resource == "schedule:SC1")
    assert len(facts["gaps"]) == 3
    # the gap after day 13 is outside a 13-day horizon
    short = run("pagerduty.schedule_coverage", coverage_records(gappy, full), days=13)
    assert "2026-12-05" not in detail(short, "schedule:SC1")


def test_schedule_coverage_errors_past_the_rendered_range_and_for_unread_schedules() -> None:
    full = sched("SC1", [(NOW, NOW + 31 * DAY, "U1")])
    too_far = run("pagerduty.schedule_coverage", coverage_records(full, sched("SC2", [])), days=40)
    assert by_resource(too_far)["schedule:SC1"] is Status.ERROR
    assert "less than the 40 days" in detail(too_far, "schedule:SC1")
    partial = run("pagerduty.schedule_coverage",
                  coverage_records(full, unknown={"schedule:SC2": "GET /schedules/{id}: 500"}))
    assert by_resource(partial) == {"schedule:SC1": Status.PASS, "schedule:SC2": Status.ERROR}
    assert "500" in detail(partial, "schedule:SC2")
    assert partial.status is Status.ERROR
    denied = run("pagerduty.schedule_coverage",
                 coverage_records()[:2] + [rec("schedules", None, EvidenceState.DENIED)])
    assert denied.status is Status.ERROR
    assert by_resource(denied)["schedule:SC1"] is Status.ERROR


# -- pagerduty.oncall_notifiable -------------------------------------------------------------

def notify_records(*user_items: dict[str, Any], **kw: Any) -> list[Evidence]:
    return [services(svc("S1", "P1"), svc("S2", "P2", "disabled")),
            policies(pol("P1", [ref("schedule", "SC1")], [ref("user", "U3")]),
                     pol("P2", [ref("user", "U9")])),            # only a disabled service uses it
            schedules(sched("SC1", [(NOW, NOW + 7 * DAY, "U1"), (NOW + 7 * DAY, NOW + 31 * DAY, "U4")],
                            members=["U1", "U2"]), **kw),
            users(*user_items)]


def test_oncall_notifiable_everyone_who_can_be_paged() -> None:
    result = run("pagerduty.oncall_notifiable", notify_records(
        usr("U1", "high", "low"), usr("U2", "low"), usr("U3", "high"), usr("U4"), usr("U9")))
    # U1/U2 are members, U4 is in the rendered final schedule (an override), U3 a direct target
    assert by_resource(result) == {"user:U1": Status.PASS, "user:U2": Status.FAIL,
                                   "user:U3": Status.PASS, "user:U4": Status.FAIL}
    assert "schedule 'schedule SC1'" in detail(result, "user:U2")
    assert "escalation policy 'policy P1'" in detail(result, "user:U3")
    assert "1 high-urgency notification rule (sms)" in detail(result, "user:U1")


def test_oncall_notifiable_errors() -> None:
    result = run("pagerduty.oncall_notifiable", notify_records(
        usr("U1", "high", expanded=False), usr("U2", "high"), usr("U3", "high")))
    assert by_resource(result) == {"user:U1": Status.ERROR, "user:U2": Status.PASS,
                                   "user:U3": Status.PASS, "user:U4": Status.ERROR}
    assert "not expanded" in detail(result, "user:U1")
    assert "not in the users read" in detail(result, "user:U4")
    denied = run("pagerduty.oncall_notifiable",
                 notify_records()[:3] + [rec("users", None, EvidenceState.DENIED)])
    assert denied.status is Status.ERROR and by_resource(denied)["user:U3"] is Status.ERROR


def test_oncall_notifiable_an_unread_schedule_errs_that_schedule_only() -> None:
    records = notify_records(usr("U3", "high"))
    records[2] = schedules(unknown={"schedule:SC1": "500"})
    result = run("pagerduty.oncall_notifiable", records)
    assert by_resource(result) == {"schedule:SC1": Status.ERROR, "user:U3": Status.PASS}
    # a failure still fails, next to the unknown schedule
    records[3] = users(usr("U3", "low"))
    assert run("pagerduty.oncall_notifiable", records).status is Status.FAIL


# -- pagerduty.incident_acknowledged ---------------------------------------------------------

def inc(iid: str, created: datetime, status: str = "resolved", urgency: str = "high") -> dict[str, Any]:
    return {"id": iid, "type": "incident", "incident_number": int(iid[1:]), "title": f"t{iid}",
            "created_at": iso(created), "status": status, "urgency": urgency}


def entry(kind: str, at: datetime) -> dict[str, Any]:
    return {"id": f"Q{kind[:3]}{at.timestamp():.0f}", "type": f"{kind}_log_entry",
            "created_at": iso(at), "agent": ref("user", "U1")}


def incidents(items: list[dict[str, Any]], log: dict[str, list[dict[str, Any]]],
              since: datetime = NOW - 30 * DAY, unknown: dict[str, str] | None = None) -> Evidence:
    return rec("incidents", {"since": iso(since), "until": iso(NOW), "incidents": items,
                             "log_entries": log},
               EvidenceState.PARTIAL if unknown else EvidenceState.OK, unknown)


def test_incident_acknowledged_in_time_late_and_open() -> None:
    t = NOW - 5 * DAY
    result = run("pagerduty.incident_acknowledged", [incidents(
        [inc("I1", t), inc("I2", t), inc("I3", t), inc("I4", NOW - 2 * HOUR, "triggered"),
         inc("I5", NOW - 10 * MINUTE, "triggered"), inc("I6", t, urgency="low"),
         inc("I7", t), inc("I8", t, "acknowledged")],
        {"I1": [entry("resolve", t + HOUR), entry("acknowledge", t + 30 * MINUTE)],
         "I2": [entry("resolve", t + 9 * MINUTE)],
         "I3": [entry("acknowledge", t + 55 * MINUTE), entry("acknowledge", t + 80 * MINUTE)],
         "I4": [], "I5": [], "I6": [],
         "I7": [entry("acknowledge", t + 40 * MINUTE), entry("resolve", t + 20 * MINUTE)],
         "I8": []})])
    assert by_resource(result) == {
        "incident:I1": Status.PASS,     # exactly 30 minutes: in time
        "incident:I2": Status.PASS,     # resolved in time without an acknowledgement
        "incident:I3": Status.FAIL,     # first acknowledged after 55 minutes
        "incident:I4": Status.FAIL,     # still open after 120 minutes
        "incident:I5": Status.PASS,     # open 10 minutes: not yet late
        "incident:I7": Status.PASS,     # resolved at 20 minutes, acknowledged later
        "incident:I8": Status.ERROR,    # acknowledged, yet no log entry says so
    }
    assert "55 minutes" in detail(result, "incident:I3")
    assert "still not acknowledged 120 minutes" in detail(result, "incident:I4")
    assert "not yet late" in detail(result, "incident:I5")
    facts = next(f.facts for f in result.findings if f.resource == "incident:I3")
    assert facts == {"created_at": iso(t), "responded_at": iso(t + 55 * MINUTE), "minutes": 55}
    strict = run("pagerduty.incident_acknowledged", [incidents(
        [inc("I1", t)], {"I1": [entry("acknowledge", t + 30 * MINUTE)]})], max_minutes=29)
    assert strict.status is Status.FAIL


def test_incident_acknowledged_unknown_incidents_error_only_themselves() -> None:
    t = NOW - DAY
    result = run("pagerduty.incident_acknowledged", [incidents(
        [inc("I1", t), inc("I2", t)], {"I2": [entry("acknowledge", t + MINUTE)]},
        unknown={"incident:I1": "GET /incidents/{id}/log_entries: 500"})])
    assert by_resource(result) == {"incident:I1": Status.ERROR, "incident:I2": Status.PASS}
    assert "500" in detail(result, "incident:I1")


def test_incident_acknowledged_empty_window_and_unreadable() -> None:
    assert run("pagerduty.incident_acknowledged",
               [incidents([], {})]).status is Status.NOT_APPLICABLE
    broken = rec("incidents", {"since": iso(NOW - DAY), "until": iso(NOW), "incidents": [],
                               "log_entries": {}}, EvidenceState.PARTIAL)
    assert run("pagerduty.incident_acknowledged", [broken]).status is Status.ERROR
    assert run("pagerduty.incident_acknowledged", []).status is Status.ERROR


def test_incident_acknowledged_is_a_windowed_population() -> None:
    assert catalog_by_id()["pagerduty.incident_acknowledged"].population == "windowed"
    assert all(c.population == "current" for cid, c in catalog_by_id().items()
               if cid.startswith("pagerduty.") and cid != "pagerduty.incident_acknowledged")
