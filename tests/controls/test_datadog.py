"""Datadog rules, pure: literal raw payloads -> findings; pass, fail and error per control."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from attest.engine import evaluate_control
from attest.model import ControlResult, Evidence, EvidenceState, Status
from controls import catalog_by_id

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
SCOPE = "datadog:datadoghq.com"
HOUR, DAY = timedelta(hours=1), timedelta(days=1)


def ts(dt: datetime) -> int:
    return int(dt.timestamp())


def iso(dt: datetime) -> str:
    return dt.isoformat()


def mon(mid: int, *, message: str = "@slack-ops", query: str = "avg:system.cpu.user{*} > 1",
        tags: list[str] | None = None, silenced: dict[str, Any] | None = None,
        matching: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"id": mid, "name": f"m{mid}", "type": "query alert", "message": message, "query": query,
            "tags": tags or [], "options": {"silenced": silenced or {}},
            "matching_downtimes": matching or []}


def dt(did: str, *, start: datetime = NOW - HOUR, end: datetime | None = NOW + HOUR,
       status: str = "active", scope: str = "*", monitor_id: int | None = None,
       monitor_tags: list[str] | None = None, schedule: dict[str, Any] | None = None
       ) -> dict[str, Any]:
    ident = {"monitor_id": monitor_id} if monitor_id is not None else {"monitor_tags": monitor_tags}
    return {"type": "downtime", "id": did, "attributes": {
        "canceled": None, "status": status, "scope": scope, "monitor_identifier": ident,
        "schedule": schedule or {"start": iso(start), "end": iso(end) if end else None}}}


def rec(name: str, pages: list[Any], state: EvidenceState = EvidenceState.OK) -> Evidence:
    return Evidence(name=f"datadog.{name}", scope=SCOPE, state=state, payload={"pages": pages},
                    detail="" if state is EvidenceState.OK else "HTTP 403: Forbidden")


def run(control_id: str, records: list[Evidence], **params: Any) -> ControlResult:
    control = catalog_by_id()[control_id]
    return evaluate_control(control, records, control.param_values(params), NOW)


def statuses(result: ControlResult) -> dict[str, Status]:
    return {f.resource: f.status for f in result.findings}


def monitors(*items: dict[str, Any]) -> Evidence:
    return rec("monitors", [list(items)])


def downtimes(*items: dict[str, Any]) -> Evidence:
    return rec("downtimes", [{"data": list(items), "meta": {"page": {"total_filtered_count": 0}}}])


# -- datadog.monitor_coverage ------------------------------------------------------------------

FULL = [mon(1, query="avg(last_5m):avg:system.cpu.user{*} > 90"),
        mon(2, query="sum:trace.http.request.errors{service:web}.as_count() > 5"),
        mon(3, query='logs("service:web status:error").index("*").rollup("count").last("5m") > 1'),
        mon(4, query="x", tags=["Category:Security"])]


def test_coverage_pass_by_query_and_tag() -> None:
    result = run("datadog.monitor_coverage", [monitors(*FULL)])
    assert result.status is Status.PASS
    assert set(statuses(result)) == {"datadog:category:host-cpu", "datadog:category:apm-error-rate",
                                     "datadog:category:log-errors",
                                     "datadog:category:security-signals"}


def test_coverage_fail_names_the_missing_category() -> None:
    result = run("datadog.monitor_coverage", [monitors(*FULL[:3])])
    assert result.status is Status.FAIL
    assert statuses(result)["datadog:category:security-signals"] is Status.FAIL
    assert statuses(result)["datadog:category:host-cpu"] is Status.PASS


def test_coverage_counts_monitors_across_pages() -> None:
    record = rec("monitors", [FULL[:2], FULL[2:]])
    assert run("datadog.monitor_coverage", [record]).status is Status.PASS


def test_coverage_custom_categories() -> None:
    required = [{"name": "db", "tags": ["team:db"], "query_contains": []},
                {"name": "queue", "query_contains": ["RABBITMQ."]}]
    result = run("datadog.monitor_coverage",
                 [monitors(mon(1, tags=["team:db"]), mon(2, query="avg:rabbitmq.queue.messages{*}"))],
                 required=required)
    assert statuses(result) == {"datadog:category:db": Status.PASS,
                                "datadog:category:queue": Status.PASS}
    assert run("datadog.monitor_coverage", [monitors()], required=required).status is Status.FAIL
    assert run("datadog.monitor_coverage", [monitors()], required=[]).status is Status.NOT_APPLICABLE


def test_coverage_error_when_monitors_unreadable() -> None:
    result = run("datadog.monitor_coverage", [rec("monitors", [], EvidenceState.DENIED)])
    assert result.status is Status.ERROR
    assert run("datadog.monitor_coverage", []).status is Status.ERROR


def test_coverage_bad_param_is_an_error_not_a_pass() -> None:
    assert run("datadog.monitor_coverage", [monitors(*FULL)],
               required=[{"tags": ["x"]}]).status is Status.ERROR


# -- datadog.monitors_notify -------------------------------------------------------------------

@pytest.mark.parametrize("message", [
    "@pagerduty-Platform", "CPU high @slack-ops-alerts please look", "@opsgenie-team_a",
    "@webhook-incident-bot", "@teams-Flight-Ops", "@team-sre", "@alice@example.com",
    "{{#is_alert}}@slack-sev1{{/is_alert}}", "Owner: @Bob.Smith+dd@acme.example.co.uk",
])
def test_notify_pass(message: str) -> None:
    result = run("datadog.monitors_notify", [monitors(mon(1, message=message))])
    assert result.status is Status.PASS, result.findings


@pytest.mark.parametrize("message", [
    "", "Disk is full. Please check.", "@here", "@alice", "email alice@example.com",
    "@unknownintegration-x", "slack-ops",
])
def test_notify_fail(message: str) -> None:
    result = run("datadog.monitors_notify", [monitors(mon(1, message=message), mon(2))])
    assert result.status is Status.FAIL
    assert statuses(result) == {"1": Status.FAIL, "2": Status.PASS}


def test_notify_null_message_fails_and_handles_are_a_param() -> None:
    m = mon(5, message="@acme-pager-ops")
    m2 = dict(mon(6), message=None)
    assert statuses(run("datadog.monitors_notify", [monitors(m, m2)])) == {
        "5": Status.FAIL, "6": Status.FAIL}
    assert run("datadog.monitors_notify", [monitors(m)],
               handles=["acme"]).status is Status.PASS


def test_notify_error_when_monitors_unreadable() -> None:
    assert run("datadog.monitors_notify",
               [rec("monitors", [], EvidenceState.PARTIAL)]).status is Status.ERROR


# -- datadog.monitors_not_muted ----------------------------------------------------------------

def not_muted(*items: dict[str, Any], dts: tuple[dict[str, Any], ...] = (),
              **params: Any) -> ControlResult:
    return run("datadog.monitors_not_muted", [monitors(*items), downtimes(*dts)], **params)


def test_not_muted_pass() -> None:
    result = not_muted(
        mon(1), mon(2, silenced={"host:a": ts(NOW + 2 * DAY)}),      # short silence
        mon(3, silenced={"*": ts(NOW - DAY)}),                       # expired silence
        mon(4, tags=["team:db"]),
        dts=(dt("short", monitor_id=1, end=NOW + 2 * HOUR),
             dt("ended", monitor_tags=["*"], end=None, status="ended"),
             dt("canceled", monitor_tags=["*"], end=None, status="canceled"),
             dt("later-short", monitor_tags=["*"], start=NOW + 30 * DAY, end=NOW + 30 * DAY + HOUR,
                status="scheduled"),
             dt("other-tags", monitor_tags=["team:web"], end=None),
             dt("weekly", monitor_tags=["*"], schedule={"recurrences": [
                 {"duration": "1w", "rrule": "FREQ=MONTHLY", "start": "2026-01-01T00:00"}],
                 "timezone": "UTC", "current_downtime": {}})))
    assert result.status is Status.PASS, result.findings


@pytest.mark.parametrize("monitor, downtime, why", [
    (mon(1, silenced={"*": None}), None, "no end"),
    (mon(1, silenced={"host:a": ts(NOW + 30 * DAY)}), None, "more than 7 days"),
    (mon(1), dt("d", monitor_id=1, end=None), "no end"),
    (mon(1), dt("d", monitor_tags=["*"], end=NOW + 8 * DAY), "more than 7 days"),
    (mon(1, tags=["team:db", "env:prod"]), dt("d", monitor_tags=["team:db"], end=None), "no end"),
    (mon(1), dt("d", monitor_tags=["*"], scope="host:old-1", end=None), "host:old-1"),
    (mon(1), dt("d", monitor_id=1, start=NOW + DAY, end=None, status="scheduled"), "no end"),
    (mon(1), dt("d", monitor_id=1, schedule={"recurrences": [
        {"duration": "2w", "rrule": "FREQ=MONTHLY", "start": "2026-01-01T00:00"}]}), "recurs"),
    (mon(1, matching=[{"id": 9, "start": ts(NOW - DAY), "end": None, "scope": ["*"]}]), None,
     "downtime 9"),
])
def test_not_muted_fail(monitor: dict[str, Any], downtime: dict[str, Any] | None, why: str) -> None:
    result = not_muted(monitor, mon(2, tags=["other"]), dts=(downtime,) if downtime else ())
    assert result.status is Status.FAIL
    finding = next(f for f in result.findings if f.resource == "1")
    assert finding.status is Status.FAIL and why in finding.detail


def test_not_muted_v1_and_v2_views_of_one_downtime_count_once() -> None:
    start = NOW - DAY
    monitor = mon(1, matching=[{"id": 77, "start": ts(start), "end": None, "scope": ["*"]}])
    result = not_muted(monitor, dts=(dt("uuid-1", monitor_id=1, start=start, end=None),))
    assert result.findings[0].detail == "downtime uuid-1 (scope '*') has no end"


def test_not_muted_max_mute_days_param() -> None:
    monitor = mon(1, silenced={"*": ts(NOW + 20 * DAY)})
    assert not_muted(monitor).status is Status.FAIL
    assert not_muted(monitor, max_mute_days=30).status is Status.PASS


def test_not_muted_error_when_downtimes_unreadable() -> None:
    denied = rec("downtimes", [], EvidenceState.DENIED)
    result = run("datadog.monitors_not_muted", [monitors(mon(1), mon(2, silenced={"*": None})),
                                                denied])
    assert statuses(result)["1"] is Status.ERROR         # never a pass without the downtimes
    assert statuses(result)["2"] is Status.FAIL          # muted forever is known regardless
    assert result.status is Status.FAIL
    assert run("datadog.monitors_not_muted", [monitors(mon(1)), denied]).status is Status.ERROR
    assert run("datadog.monitors_not_muted", [monitors(mon(1))]).status is Status.ERROR


def test_not_muted_unreadable_recurrence_is_an_error() -> None:
    bad = dt("d", monitor_id=1, schedule={"recurrences": [{"duration": "forever"}]})
    assert not_muted(mon(1), dts=(bad,)).status is Status.ERROR


# -- datadog.log_retention ---------------------------------------------------------------------

def indexes(*items: dict[str, Any]) -> Evidence:
    return rec("log_indexes", [{"indexes": list(items)}])


def test_log_retention_pass_fail() -> None:
    result = run("datadog.log_retention", [indexes(
        {"name": "main", "num_retention_days": 30},
        {"name": "audit", "num_retention_days": 15, "num_flex_logs_retention_days": 365},
        {"name": "debug", "num_retention_days": 15})])
    assert statuses(result) == {"main": Status.PASS, "audit": Status.PASS, "debug": Status.FAIL}
    assert result.status is Status.FAIL
    assert "15 days, fewer than 30" in result.findings[2].detail


def test_log_retention_param_and_no_indexes() -> None:
    record = indexes({"name": "main", "num_retention_days": 30})
    assert run("datadog.log_retention", [record]).status is Status.PASS
    assert run("datadog.log_retention", [record], min_days=90).status is Status.FAIL
    assert run("datadog.log_retention", [indexes()]).status is Status.NOT_APPLICABLE


def test_log_retention_error() -> None:
    assert run("datadog.log_retention",
               [rec("log_indexes", [], EvidenceState.DENIED)]).status is Status.ERROR
    result = run("datadog.log_retention", [indexes({"name": "x", "num_retention_days": None})])
    assert statuses(result) == {"x": Status.ERROR}


# -- datadog.critical_monitors_page --------------------------------------------------------------

def critical(mid: int, message: str, *, priority: int | None = None,
             tags: list[str] | None = None) -> dict[str, Any]:
    return {**mon(mid, message=message, tags=tags), "priority": priority}


def test_critical_monitors_page_pass_and_fail() -> None:
    result = run("datadog.critical_monitors_page", [monitors(
        critical(1, "{{#is_alert}}down @pagerduty-Launch-Control{{/is_alert}}", priority=1),
        critical(2, "@slack-payments @PagerDuty-payments", priority=2),
        critical(3, "down @slack-payments-alerts", tags=["Severity:Critical"]),
        critical(4, "down, no handle", priority=2),
        critical(5, "email only @oncall@acme.example", priority=1),
        critical(6, "P3 is not critical", priority=3),
        critical(7, "untagged, no priority"))])
    assert statuses(result) == {"1": Status.PASS, "2": Status.PASS, "3": Status.FAIL,
                                "4": Status.FAIL, "5": Status.FAIL}
    assert result.status is Status.FAIL
    details = {f.resource: f.detail for f in result.findings}
    assert details["1"] == "P1; pages @pagerduty-Launch-Control"
    assert "tagged severity:critical" in details["3"] and "@pagerduty-" in details["3"]


def test_critical_monitors_page_tags_parameter_and_not_applicable() -> None:
    mons_ = monitors(critical(1, "@slack-x", tags=["tier:0"]), critical(2, "@slack-y", priority=4))
    assert run("datadog.critical_monitors_page", [mons_]).status is Status.NOT_APPLICABLE
    tiered = run("datadog.critical_monitors_page", [mons_], tags=["tier:0"])
    assert statuses(tiered) == {"1": Status.FAIL}


def test_critical_monitors_page_errors_when_monitors_are_unreadable() -> None:
    result = run("datadog.critical_monitors_page", [rec("monitors", [], EvidenceState.DENIED)])
    assert result.status is Status.ERROR
