"""PagerDuty collector against the spec-shaped https fake, over real TLS with the real
``pagerduty`` client: paging, rate limits, denied kinds, one failed detail read, the incident
window, the certificate check, and the demo's seeded outcomes."""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest
from pydantic import ValidationError

from attest.demo.http import LocalServer
from attest.demo.tls import DemoTls, make_tls
from attest.engine import evaluate_control
from attest.model import Evidence, EvidenceState, Status
from collectors.base import CollectContext
from collectors.http import RetryPolicy
from collectors.pagerduty import api
from collectors.pagerduty.api import build_client
from collectors.pagerduty.collector import SCHEDULE_DAYS, PagerDutyCollector
from collectors.pagerduty.demo import (ADA, EXPECTED, PagerDutyWorld, Rotation, acme_world,
                                       escalation_policy, incident, schedule, serve, service,
                                       start_demo, target, user, with_escalation_gaps)
from collectors.pagerduty.source import (ESCALATION_POLICIES, INCIDENTS, SCHEDULES, SERVICES,
                                         USERS, Config, scope_of)
from controls import catalog_by_id
from tests.clocks import FakeClock

NOW = datetime(2026, 11, 22, 2, 0, tzinfo=timezone.utc)
PD_CONTROLS = ("pagerduty.services_escalation", "pagerduty.escalation_depth",
               "pagerduty.schedule_coverage", "pagerduty.oncall_notifiable",
               "pagerduty.incident_acknowledged")
MINUTE, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)


@pytest.fixture(scope="module")
def tls() -> Iterator[DemoTls]:
    made = make_tls("attest PagerDuty test")
    yield made
    made.cleanup()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def world(clock: FakeClock) -> PagerDutyWorld:
    w = acme_world(NOW)
    w.clock = clock
    return w


@pytest.fixture(scope="module")
def shared_server(tls: DemoTls) -> Iterator[LocalServer]:
    """One https server per module (stopping one costs half a second); each test gives it its
    own world and a clean request log."""
    srv, _ = serve(PagerDutyWorld(), tls)
    yield srv
    srv.stop()


@pytest.fixture
def server(world: PagerDutyWorld, shared_server: LocalServer) -> LocalServer:
    shared_server.app.world = world
    shared_server.log.clear()
    return shared_server


def collector(world: PagerDutyWorld, server: LocalServer, tls: DemoTls, clock: FakeClock,
              **overrides: Any) -> PagerDutyCollector:
    cfg = {"token": world.token, "base_url": server.url, "ca_file": str(tls.ca_file), **overrides}
    return PagerDutyCollector(Config(**cfg), sleep=clock.sleep, clock=clock)


def collect(world: PagerDutyWorld, server: LocalServer, tls: DemoTls, clock: FakeClock,
            ctx: CollectContext | None = None, **overrides: Any) -> dict[str, Evidence]:
    records = list(collector(world, server, tls, clock, **overrides).collect(
        ctx or CollectContext(now=NOW)))
    assert [r.name for r in records] == list(PagerDutyCollector.produces)
    return {r.name: r for r in records}


def evaluate(control_id: str, records: list[Evidence] | dict[str, Evidence]) -> Any:
    control = catalog_by_id()[control_id]
    records = list(records.values()) if isinstance(records, dict) else records
    return evaluate_control(control, records, control.param_values(), NOW)


def statuses(records: dict[str, Evidence]) -> dict[str, str]:
    return {cid: evaluate(cid, records).status.value for cid in PD_CONTROLS}


def requests_to(server: LocalServer, path: str) -> list[dict[str, Any]]:
    return [e for e in server.log.entries if e["path"] == path]


# -- config ------------------------------------------------------------------------------------

def test_config_defaults_and_scope() -> None:
    config = Config(token="t")
    assert config.base_url == "https://api.pagerduty.com"
    assert config.incident_lookback_days == 30 and config.ca_file is None
    assert scope_of(config) == "pagerduty:api.pagerduty.com"
    eu = Config(token="t", base_url="https://api.eu.pagerduty.com/")
    assert eu.base_url == "https://api.eu.pagerduty.com"
    assert scope_of(eu) == "pagerduty:api.eu.pagerduty.com"
    # the host without its port: a fake on another port is the same account, the same window
    assert scope_of(Config(token="t", base_url="https://127.0.0.1:8443")) == "pagerduty:127.0.0.1"


@pytest.mark.parametrize("bad", [
    {"base_url": "http://api.pagerduty.com"},      # plain http: refused
    {"base_url": "http://127.0.0.1:8443"},          # even on loopback: the client takes https only
    {"base_url": "https://api.pagerduty.com/v2"},   # a path
    {"base_url": "ftp://api.pagerduty.com"}, {"base_url": "api.pagerduty.com"},
    {"token": ""}, {"incident_lookback_days": 0}, {"incident_lookback_days": 181},
    {"ca_file": "/nonexistent/ca.pem"}, {"unknown": 1},
])
def test_config_rejects(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Config(**{"token": "t", **bad})


def test_the_client_itself_refuses_plain_http() -> None:
    import pagerduty
    with pytest.raises(pagerduty.UrlError):
        build_client("t", "http://127.0.0.1:1")


def test_secrets_are_never_shown() -> None:
    config = Config(token="s3cret-pd-token")
    assert "s3cret" not in repr(config) and "s3cret" not in str(config.model_dump())


def test_the_clients_own_retries_are_off(tls: DemoTls) -> None:
    client = build_client("t", "https://api.pagerduty.com", str(tls.ca_file))
    try:
        assert client.max_network_attempts == 0 and client.max_http_attempts == -1
        assert client.retry == {429: 1}
        assert client.url == "https://api.pagerduty.com"
    finally:
        client.close()


# -- the whole collection --------------------------------------------------------------------

def test_every_record_holds_the_raw_answers(world: PagerDutyWorld, server: LocalServer,
                                            tls: DemoTls, clock: FakeClock) -> None:
    ev = collect(world, server, tls, clock)
    scope = "pagerduty:127.0.0.1"
    assert {r.scope for r in ev.values()} == {scope}
    assert all(r.state is EvidenceState.OK for r in ev.values()), {n: r.detail for n, r in ev.items()}
    assert ev[SERVICES].payload == {"services": world.services}
    assert ev[ESCALATION_POLICIES].payload == {"escalation_policies": world.policies}
    assert ev[USERS].payload == {"users": world.users}   # notification rules expanded
    assert ev[USERS].request["params"] == {"include[]": ["notification_rules"]}

    schedules = ev[SCHEDULES].payload
    assert schedules["since"] == "2026-11-22T02:00:00Z"
    assert schedules["until"] == "2026-12-23T02:00:00Z" == \
        (NOW + timedelta(days=SCHEDULE_DAYS)).isoformat().replace("+00:00", "Z")
    assert sorted(schedules["schedules"]) == ["PSCLC01", "PSCTM02"]
    final = schedules["schedules"]["PSCLC01"]["final_schedule"]["rendered_schedule_entries"]
    assert final[0]["start"] == "2026-11-22T02:00:00Z" and final[-1]["end"] == schedules["until"]
    assert {e["user"]["id"] for e in final} == {"PADA001", "PGRC002"}
    queries = [e["query"] for e in requests_to(server, "/schedules/PSCLC01")]
    assert queries == ["since=2026-11-22T02%3A00%3A00Z&until=2026-12-23T02%3A00%3A00Z&time_zone=UTC"]

    # the incidents: the fixed shape the populations read
    inc = ev[INCIDENTS]
    assert set(inc.payload) == {"since", "until", "incidents", "log_entries"}
    assert (inc.payload["since"], inc.payload["until"]) == ("2026-10-23T02:00:00Z",
                                                            "2026-11-22T02:00:00Z")
    raw = {i["id"]: i for i in world.incidents}
    assert inc.payload["incidents"] == [raw[i] for i in ("PINC101", "PINC102", "PINC103", "PINC104")]
    entries = inc.payload["log_entries"]
    assert sorted(entries) == ["PINC101", "PINC102", "PINC103", "PINC104"]
    assert entries["PINC104"] == []
    assert [e["type"] for e in entries["PINC101"]] == ["resolve_log_entry", "acknowledge_log_entry"]
    for e in (e for es in entries.values() for e in es):
        assert e in world.log_entries and e["created_at"] and e["agent"]["id"]
    query = requests_to(server, "/incidents")[0]["query"]
    assert "urgencies%5B%5D=high" in query and "time_zone=UTC" in query
    assert query.count("statuses%5B%5D=") == 3
    dumped = json.dumps([r.to_json() for r in ev.values()])
    assert world.token not in dumped


def test_the_token_travels_only_in_the_header(world: PagerDutyWorld, server: LocalServer,
                                              tls: DemoTls, clock: FakeClock) -> None:
    ev = collect(world, server, tls, clock, token="wrong-token")
    for name, record in ev.items():
        assert record.state is EvidenceState.DENIED, name
        assert "401" in record.detail, record.detail
    assert "wrong-token" not in json.dumps([r.to_json() for r in ev.values()])
    assert all(evaluate(cid, ev).status is Status.ERROR for cid in PD_CONTROLS)
    # a rejected token is not retried, and the schedules/log entries behind it are not read
    assert len(server.log.entries) == 4
    assert {e["status"] for e in server.log.entries} == {401}


# -- paging --------------------------------------------------------------------------------------

def test_lists_follow_offset_pages(world: PagerDutyWorld, server: LocalServer, tls: DemoTls,
                                   clock: FakeClock) -> None:
    world.services = [service(f"PS{i:05d}", f"svc {i}", ("PEPLC01", "Launch Control"))
                      for i in range(230)]
    world.users = [user(f"PU{i:05d}", f"user {i}", f"u{i}@acme.example",
                        rules=[("high", "sms", 0)]) for i in range(101)] + world.users
    ev = collect(world, server, tls, clock)
    assert [s["id"] for s in ev[SERVICES].payload["services"]] == [f"PS{i:05d}" for i in range(230)]
    assert ev[SERVICES].request["pages"] == 3
    assert [e["query"] for e in requests_to(server, "/services")] == [
        "time_zone=UTC&limit=100&offset=0", "time_zone=UTC&limit=100&offset=100",
        "time_zone=UTC&limit=100&offset=200"]
    assert len(ev[USERS].payload["users"]) == 106 and ev[USERS].request["pages"] == 2
    assert evaluate("pagerduty.services_escalation", ev).status is Status.PASS


def test_a_later_page_failing_keeps_the_pages_read_as_partial(world: PagerDutyWorld,
                                                              server: LocalServer, tls: DemoTls,
                                                              clock: FakeClock) -> None:
    world.services = [service(f"PS{i:05d}", f"svc {i}", ("PEPLC01", "Launch Control"))
                      for i in range(150)]
    world.fail["/services"] = {100}
    ev = collect(world, server, tls, clock)
    assert ev[SERVICES].state is EvidenceState.PARTIAL
    assert len(ev[SERVICES].payload["services"]) == 100
    assert "page 2 failed" in ev[SERVICES].detail and "500" in ev[SERVICES].detail
    assert len(requests_to(server, "/services")) == 1 + RetryPolicy().attempts
    for cid in ("pagerduty.services_escalation", "pagerduty.escalation_depth"):
        assert evaluate(cid, ev).status is Status.ERROR, cid
    assert evaluate("pagerduty.incident_acknowledged", ev).status is Status.FAIL


def test_pagerduty_serves_at_most_10000_by_offset(world: PagerDutyWorld, server: LocalServer,
                                                  tls: DemoTls, clock: FakeClock,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "ITERATION_LIMIT", 200)    # 2 pages instead of 100
    world.services = [service(f"PS{i:05d}", f"svc {i}", ("PEPLC01", "Launch Control"))
                      for i in range(250)]
    ev = collect(world, server, tls, clock)
    assert ev[SERVICES].state is EvidenceState.PARTIAL
    assert "stopped after 2 pages" in ev[SERVICES].detail
    assert len(ev[SERVICES].payload["services"]) == 200


# -- rate limits ---------------------------------------------------------------------------------

def test_429_is_retried_by_the_layer_one_request_per_attempt(
        world: PagerDutyWorld, server: LocalServer, tls: DemoTls, clock: FakeClock) -> None:
    world.throttle = 2
    ev = collect(world, server, tls, clock, max_workers=1)   # one at a time: /services first
    assert ev[SERVICES].state is EvidenceState.OK
    statuses_seen = [e["status"] for e in requests_to(server, "/services")]
    assert statuses_seen == [429, 429, 200]     # no hidden retries inside the client
    assert clock.waits[:2] and all(w >= 1 for w in clock.waits[:2])   # ratelimit-reset honoured


def test_429_past_every_attempt_is_an_error_not_an_endless_loop(
        world: PagerDutyWorld, server: LocalServer, tls: DemoTls, clock: FakeClock) -> None:
    world.throttle = 100
    ev = collect(world, server, tls, clock)
    attempts = RetryPolicy().attempts
    assert ev[SERVICES].state is EvidenceState.ERROR
    assert "rate limited (429)" in ev[SERVICES].detail
    assert len(requests_to(server, "/services")) == attempts


def test_pacing_waits_for_the_reset_when_the_budget_is_spent(
        world: PagerDutyWorld, server: LocalServer, tls: DemoTls, clock: FakeClock) -> None:
    world.rate_limit = 3
    # one read at a time: side by side, the first requests go before any answer tells the budget
    ev = collect(world, server, tls, clock, max_workers=1)
    assert all(r.state is EvidenceState.OK for r in ev.values())
    assert all(e["status"] == 200 for e in server.log.entries)    # paced, never throttled
    assert clock.waits and max(clock.waits) <= 60


# -- one kind denied, one resource failing -----------------------------------------------------

def test_a_403_on_users_costs_only_the_users_control(world: PagerDutyWorld, server: LocalServer,
                                                     tls: DemoTls, clock: FakeClock) -> None:
    world.denied = {"/users"}
    ev = collect(world, server, tls, clock)
    assert ev[USERS].state is EvidenceState.DENIED
    assert "403" in ev[USERS].detail and "read-only" in ev[USERS].detail
    # PagerDuty's own message, read from its {"error": {...}} body
    assert ("403 Access Denied; The API key does not have access to this resource. (code 2010)"
            in ev[USERS].detail)
    got = statuses(ev)
    assert got.pop("pagerduty.oncall_notifiable") == "error"
    assert got == {cid: s for cid, s in EXPECTED.items() if cid != "pagerduty.oncall_notifiable"}


def test_a_403_on_schedules_costs_only_the_schedule_controls(
        world: PagerDutyWorld, server: LocalServer, tls: DemoTls, clock: FakeClock) -> None:
    world.denied = {"/schedules"}
    ev = collect(world, server, tls, clock)
    assert ev[SCHEDULES].state is EvidenceState.DENIED
    assert "schedules.read" in ev[SCHEDULES].detail
    got = statuses(ev)
    assert got["pagerduty.schedule_coverage"] == "error"
    # Margaret (only low-urgency rules) is paged through the unreadable schedule: not judged
    assert got["pagerduty.oncall_notifiable"] == "error"
    for cid in ("pagerduty.services_escalation", "pagerduty.escalation_depth",
                "pagerduty.incident_acknowledged"):
        assert got[cid] == EXPECTED[cid], cid


def test_one_schedule_failing_errs_only_that_schedule(world: PagerDutyWorld, server: LocalServer,
                                                      tls: DemoTls, clock: FakeClock) -> None:
    world.fail["/schedules/PSCTM02"] = None
    ev = collect(world, server, tls, clock)
    record = ev[SCHEDULES]
    assert record.state is EvidenceState.PARTIAL and record.readable
    assert list(record.unknown) == ["schedule:PSCTM02"]
    assert "500" in record.unknown["schedule:PSCTM02"]
    assert list(record.payload["schedules"]) == ["PSCLC01"]

    coverage = evaluate("pagerduty.schedule_coverage", ev)
    assert {f.resource: f.status for f in coverage.findings} == {
        "schedule:PSCLC01": Status.PASS, "schedule:PSCTM02": Status.ERROR}
    notify = evaluate("pagerduty.oncall_notifiable", ev)
    by = {f.resource: f.status for f in notify.findings}
    assert by["schedule:PSCTM02"] is Status.ERROR
    assert by["user:PADA001"] is Status.PASS and by["user:PGRC002"] is Status.PASS
    assert notify.status is Status.ERROR      # Margaret is on the schedule that was not read
    assert evaluate("pagerduty.escalation_depth", ev).status.value == EXPECTED[
        "pagerduty.escalation_depth"]          # the policies were read whole: judged as ever


def test_a_failed_policies_read_leaves_the_schedules_unknown(
        world: PagerDutyWorld, server: LocalServer, tls: DemoTls, clock: FakeClock) -> None:
    world.denied = {"/escalation_policies"}
    ev = collect(world, server, tls, clock)
    assert ev[ESCALATION_POLICIES].state is EvidenceState.DENIED
    assert ev[SCHEDULES].state is EvidenceState.DENIED
    assert ESCALATION_POLICIES in ev[SCHEDULES].detail
    assert not [e for e in server.log.entries if e["path"].startswith("/schedules")]
    got = statuses(ev)
    # the service whose policy is unknown is not passed; the rest of the source still judges
    assert got["pagerduty.services_escalation"] == "error"
    assert got["pagerduty.incident_acknowledged"] == "fail"


# -- incidents and their log entries -------------------------------------------------------------

def test_the_window_starts_at_the_last_good_read(world: PagerDutyWorld, server: LocalServer,
                                                 tls: DemoTls, clock: FakeClock) -> None:
    last = NOW - 7 * DAY
    ctx = CollectContext(now=NOW, last_collected=lambda name, scope: last if name == INCIDENTS else None)
    ev = collect(world, server, tls, clock, ctx=ctx)
    payload = ev[INCIDENTS].payload
    assert payload["since"] == "2026-11-15T02:00:00Z" and payload["until"] == "2026-11-22T02:00:00Z"
    assert [i["id"] for i in payload["incidents"]] == ["PINC103", "PINC104"]
    assert "since=2026-11-15T02%3A00%3A00Z" in requests_to(server, "/incidents")[0]["query"]


def test_the_window_goes_back_at_most_the_lookback(world: PagerDutyWorld, server: LocalServer,
                                                   tls: DemoTls, clock: FakeClock) -> None:
    ctx = CollectContext(now=NOW, last_collected=lambda name, scope: NOW - 90 * DAY)
    ev = collect(world, server, tls, clock, ctx=ctx, incident_lookback_days=10)
    payload = ev[INCIDENTS].payload
    assert payload["since"] == "2026-11-12T02:00:00Z"
    assert [i["id"] for i in payload["incidents"]] == ["PINC103", "PINC104"]


def test_nothing_created_since_the_last_read_is_not_applicable(
        world: PagerDutyWorld, server: LocalServer, tls: DemoTls, clock: FakeClock) -> None:
    ctx = CollectContext(now=NOW, last_collected=lambda name, scope: NOW - MINUTE)
    ev = collect(world, server, tls, clock, ctx=ctx)
    assert ev[INCIDENTS].payload["incidents"] == [] and ev[INCIDENTS].payload["log_entries"] == {}
    assert not requests_to(server, "/log_entries")
    assert evaluate("pagerduty.incident_acknowledged", ev).status is Status.NOT_APPLICABLE


def _busy_world(world: PagerDutyWorld, incidents: int, noise: int) -> None:
    """``incidents`` high-urgency incidents, plus ``noise`` low-urgency ones (each with its
    trigger and notify log entries) that the account-wide log-entry list also holds."""
    world.incidents, world.log_entries = [], []
    for i in range(incidents):
        world.add_incident(incident(f"PH{i:05d}", 1000 + i, f"high {i}", NOW - DAY + i * MINUTE,
                                    service_ref=("PSVLC01", "Launch Control API"),
                                    policy_ref=("PEPLC01", "Launch Control"),
                                    acked=(3 * MINUTE, ADA), resolved=(HOUR, ADA)))
    for i in range(noise):
        world.add_incident(incident(f"PL{i:05d}", 5000 + i, f"low {i}", NOW - 2 * DAY + i * MINUTE,
                                    service_ref=("PSVLC01", "Launch Control API"),
                                    policy_ref=("PEPLC01", "Launch Control"), urgency="low",
                                    resolved=(HOUR, None)))


def test_log_entries_come_from_the_account_list_when_that_is_fewer_calls(
        world: PagerDutyWorld, server: LocalServer, tls: DemoTls, clock: FakeClock) -> None:
    _busy_world(world, incidents=60, noise=20)     # 60*4 + 20*3 = 300 entries: 3 pages < 60 calls
    ev = collect(world, server, tls, clock)
    record = ev[INCIDENTS]
    assert record.state is EvidenceState.OK
    assert record.request["log_entries"] == "GET /log_entries"
    assert len(requests_to(server, "/log_entries")) == 3
    assert not [e for e in server.log.entries if e["path"].endswith("/log_entries")
                and e["path"] != "/log_entries"]
    assert len(record.payload["log_entries"]) == 60
    assert all(sorted(e["type"] for e in es) == ["acknowledge_log_entry", "resolve_log_entry"]
               for es in record.payload["log_entries"].values())
    assert evaluate("pagerduty.incident_acknowledged", ev).status is Status.PASS


def test_log_entries_are_read_per_incident_when_that_is_fewer_calls(
        world: PagerDutyWorld, server: LocalServer, tls: DemoTls, clock: FakeClock) -> None:
    _busy_world(world, incidents=2, noise=100)     # 8 + 300 entries: 4 pages > 2 incidents
    ev = collect(world, server, tls, clock)
    record = ev[INCIDENTS]
    assert record.request["log_entries"] == "GET /incidents/{id}/log_entries"
    assert len(requests_to(server, "/log_entries")) == 1       # the first page, which tells
    assert len(requests_to(server, "/incidents/PH00000/log_entries")) == 1
    assert len(requests_to(server, "/incidents/PH00001/log_entries")) == 1
    assert sorted(record.payload["log_entries"]) == ["PH00000", "PH00001"]


def test_one_incidents_log_entries_failing_errs_only_that_incident(
        world: PagerDutyWorld, server: LocalServer, tls: DemoTls, clock: FakeClock) -> None:
    world.fail["/log_entries"] = None                  # the account list fails: read each
    world.fail["/incidents/PINC101/log_entries"] = None
    ev = collect(world, server, tls, clock)
    record = ev[INCIDENTS]
    assert record.state is EvidenceState.PARTIAL and record.readable
    assert list(record.unknown) == ["incident:PINC101"]
    assert sorted(record.payload["log_entries"]) == ["PINC102", "PINC103", "PINC104"]
    assert [i["id"] for i in record.payload["incidents"]] == ["PINC101", "PINC102", "PINC103",
                                                             "PINC104"]
    result = evaluate("pagerduty.incident_acknowledged", ev)
    assert {f.resource: f.status for f in result.findings} == {
        "incident:PINC101": Status.ERROR, "incident:PINC102": Status.PASS,
        "incident:PINC103": Status.FAIL, "incident:PINC104": Status.FAIL}


def test_a_403_on_incidents_costs_only_the_incident_control(
        world: PagerDutyWorld, server: LocalServer, tls: DemoTls, clock: FakeClock) -> None:
    world.denied = {"/incidents", "/log_entries"}
    ev = collect(world, server, tls, clock)
    assert ev[INCIDENTS].state is EvidenceState.DENIED
    assert "incidents.read" in ev[INCIDENTS].detail
    got = statuses(ev)
    assert got.pop("pagerduty.incident_acknowledged") == "error"
    assert got == {cid: s for cid, s in EXPECTED.items() if cid != "pagerduty.incident_acknowledged"}


# -- TLS -----------------------------------------------------------------------------------------

def test_a_certificate_from_another_ca_is_refused(world: PagerDutyWorld, server: LocalServer,
                                                  clock: FakeClock, tmp_path: Path) -> None:
    other = make_tls("some other CA", folder=tmp_path)
    ev = collect(world, server, other, clock, max_workers=1)
    for name, record in ev.items():
        assert record.state is EvidenceState.UNREACHABLE, name
    assert re.search(r"CERTIFICATE_VERIFY_FAILED|certificate verify failed",
                     ev[SERVICES].detail, re.I), ev[SERVICES].detail
    assert "not tried" in ev[USERS].detail            # one dead host costs one bounded wait
    assert server.log.entries == []                    # no request got through
    assert all(evaluate(cid, ev).status is Status.ERROR for cid in PD_CONTROLS)
    # side by side, the lists in flight when the host is found dead each find it (at the same
    # time: still one bounded wait); nothing is read after that
    reader = collector(world, server, other, clock, max_workers=4)
    records = list(reader.collect(CollectContext(now=NOW)))
    assert {r.state for r in records} == {EvidenceState.UNREACHABLE}
    assert reader.http.calls <= 4 * RetryPolicy().attempts
    assert server.log.entries == []


def test_without_a_ca_file_the_system_store_does_not_trust_the_fake(
        world: PagerDutyWorld, server: LocalServer, clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    cfg = Config(token=world.token, base_url=server.url)
    records = list(PagerDutyCollector(cfg, sleep=clock.sleep, clock=clock).collect(
        CollectContext(now=NOW)))
    assert {r.state for r in records} == {EvidenceState.UNREACHABLE}


def test_ssl_cert_file_is_the_standard_way_to_trust_a_ca(
        world: PagerDutyWorld, server: LocalServer, tls: DemoTls, clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca_file))
    cfg = Config(token=world.token, base_url=server.url)
    records = list(PagerDutyCollector(cfg, sleep=clock.sleep, clock=clock).collect(
        CollectContext(now=NOW)))
    assert {r.state for r in records} == {EvidenceState.OK}


# -- the demo ----------------------------------------------------------------------------------

def test_a_first_level_without_targets_and_a_policy_that_never_escalates_fail(
        world: PagerDutyWorld, server: LocalServer, tls: DemoTls, clock: FakeClock) -> None:
    """Through the collector: the two escalation failures the demo does not show."""
    ev = collect(with_escalation_gaps(world), server, tls, clock)
    failing = {cid: sorted(f.resource for f in evaluate(cid, ev).findings
                           if f.status is Status.FAIL)
               for cid in ("pagerduty.services_escalation", "pagerduty.escalation_depth")}
    assert failing == {"pagerduty.services_escalation": ["service:PSVPT04"],
                       "pagerduty.escalation_depth": ["escalation_policy:PEPGS03"]}
    assert statuses(ev)["pagerduty.services_escalation"] == "fail"


def test_demo_expected_statuses_match_the_engine() -> None:
    demo = start_demo(NOW)
    try:
        assert set(demo.expected) == set(PD_CONTROLS)
        assert demo.section["base_url"].startswith("https://127.0.0.1:")
        section = {k: re.sub(r"\$\{(\w+)\}", lambda m: demo.env[m.group(1)], v)
                   for k, v in demo.section.items()}
        records = list(PagerDutyCollector(Config(**section)).collect(CollectContext(now=NOW)))
        got = {cid: evaluate(cid, records) for cid in demo.expected}
        assert {cid: r.status.value for cid, r in got.items()} == demo.expected
        failing = {cid: sorted(f.resource for f in r.findings if f.status is Status.FAIL)
                   for cid, r in got.items()}
        assert failing == {
            "pagerduty.services_escalation": [],
            "pagerduty.escalation_depth": [],
            "pagerduty.schedule_coverage": ["schedule:PSCTM02"],
            "pagerduty.oncall_notifiable": ["user:PMAR004"],
            "pagerduty.incident_acknowledged": ["incident:PINC103", "incident:PINC104"],
        }
        # and a realistic mix: every control passes some resources too
        assert all(any(f.status is Status.PASS for f in r.findings) for r in got.values())
        gap = next(f for f in got["pagerduty.schedule_coverage"].findings if f.status is Status.FAIL)
        assert "2026-11-25T22:00:00Z to 2026-11-26T06:00:00Z" in gap.detail
    finally:
        demo.stop()
    assert not Path(demo.section["ca_file"]).exists()   # the throwaway CA is gone with the demo


def test_attest_scan_demo_includes_pagerduty(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The production scan over the demo's PagerDuty (a config file with only that section, so
    no other source runs): the seeded statuses, and the incidents evidence in the bundle."""
    import yaml

    from attest.config import load_config
    from attest.demo import start_demo as start_all
    from attest.scan import run_scan
    demo = start_all(NOW, sources=("pagerduty",))
    try:
        for name, value in demo.sources["pagerduty"].env.items():
            monkeypatch.setenv(name, value)
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(demo.config), encoding="utf-8")
        config = load_config(tmp_path / "config.yaml")
        outcome = run_scan(config, out_dir=tmp_path / "out", now=NOW, demo=True)
        again = run_scan(config, out_dir=tmp_path / "out", now=NOW + HOUR, demo=True)
        section = demo.sources["pagerduty"].section
    finally:
        demo.stop()
    # the second scan looks back only to the first: no incident created since -> not applicable
    second = {c.id: c.status.value for c in again.results.controls if c.source == "pagerduty"}
    assert second == {**EXPECTED, "pagerduty.incident_acknowledged": "not_applicable"}
    assert outcome.results.scan.sources["pagerduty"].status == "collected"
    got = {c.id: c.status.value for c in outcome.results.controls if c.source == "pagerduty"}
    assert got == EXPECTED
    scope = scope_of(Config(token="t", base_url=section["base_url"]))
    stored = json.loads((outcome.bundle / Evidence(INCIDENTS, scope, EvidenceState.OK).path)
                        .read_text(encoding="utf-8"))
    assert stored["state"] == "ok" and len(stored["payload"]["incidents"]) == 4


def test_a_rotation_with_gaps_renders_as_pagerduty_would() -> None:
    monday = datetime(2026, 11, 16, 9, 0, tzinfo=timezone.utc)
    rota = Rotation([ADA, ("PX", "X")], monday, hours=24,
                    gaps=[(monday + DAY + 2 * HOUR, monday + DAY + 4 * HOUR)])
    got = rota.entries(monday + 12 * HOUR, monday + 2 * DAY)
    assert [(a.isoformat(), b.isoformat(), who[0]) for a, b, who in got] == [
        ("2026-11-16T21:00:00+00:00", "2026-11-17T09:00:00+00:00", "PADA001"),
        ("2026-11-17T09:00:00+00:00", "2026-11-17T11:00:00+00:00", "PX"),
        ("2026-11-17T13:00:00+00:00", "2026-11-18T09:00:00+00:00", "PX")]
    obj = schedule("PS1", "s", rota, policies=[("PE1", "p")])
    assert "_rotation" in obj and escalation_policy("PE1", "p", [[target("schedule", "PS1", "s")]])


# -- reads side by side (max_workers) ----------------------------------------------------------

def content(records: list[Evidence]) -> list[tuple[Any, ...]]:
    """What each record says, without when it was collected."""
    return [(r.name, r.scope, r.state, r.payload, r.detail, r.request, r.unknown) for r in records]


@pytest.mark.parametrize("failing", [False, True], ids=["ok", "some-reads-failing"])
def test_max_workers_reads_side_by_side_with_the_same_records(
        world: PagerDutyWorld, server: LocalServer, tls: DemoTls, clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch, failing: bool) -> None:
    """A fake that takes 50 ms to answer: with max_workers 1 never more than one request is in
    flight; with 2, at most 2 (the lists and their detail reads share the bound); with 4, the
    lists overlap. The records are the same every time, in the same order, also when one
    schedule and one incident's log entries cannot be read (``partial``, naming them)."""
    monkeypatch.setattr(server, "latency", 0.05)
    if failing:
        world.fail["/schedules/PSCTM02"] = None
        world.fail["/log_entries"] = None               # the account list fails: read each
        world.fail["/incidents/PINC101/log_entries"] = None
    got: dict[int, list[tuple[Any, ...]]] = {}
    most: dict[int, int] = {}
    for workers in (1, 2, 4):
        server.log.clear()
        records = list(collector(world, server, tls, clock, max_workers=workers).collect(
            CollectContext(now=NOW)))
        assert [r.name for r in records] == list(PagerDutyCollector.produces)
        got[workers], most[workers] = content(records), server.log.most_in_flight
    assert most[1] == 1 and most[2] == 2 and 2 < most[4] <= 4, most
    assert got[1] == got[2] == got[4]
    states = {name: state for name, _, state, *_ in got[4]}
    if failing:
        assert states[SCHEDULES] is states[INCIDENTS] is EvidenceState.PARTIAL
        assert [list(unknown) for *_, unknown in got[4] if unknown] == [
            ["schedule:PSCTM02"], ["incident:PINC101"]]
    else:
        assert set(states.values()) == {EvidenceState.OK}


def test_side_by_side_the_rate_limit_still_holds_every_read(
        world: PagerDutyWorld, server: LocalServer, tls: DemoTls, clock: FakeClock) -> None:
    """3 requests a minute and 4 reads at once: every record is read whole, the same as one
    read at a time (the budget is one for every endpoint, as PagerDuty counts it)."""
    world.rate_limit = 3
    alone = collect(world, server, tls, clock, max_workers=1)
    together = collect(world, server, tls, clock, max_workers=4)
    assert content(list(together.values())) == content(list(alone.values()))
    assert {r.state for r in together.values()} == {EvidenceState.OK}


@pytest.mark.parametrize("workers", [1, 4])
def test_a_token_rejected_during_the_detail_reads_stops_the_reads_not_yet_started(
        world: PagerDutyWorld, server: LocalServer, tls: DemoTls, clock: FakeClock,
        workers: int) -> None:
    """The token is rejected from the schedule reads on (12 schedules to read): those already
    started fail, the others are not sent (one at a time: only the first is), and the record
    is ``denied`` naming the first schedule (by id) whatever order they ran in."""
    many = [target("schedule_reference", f"PSX{i:03d}", f"rota {i}") for i in range(12)]
    world.policies = world.policies + [escalation_policy("PEPMANY", "Many rotas", [many])]
    world.revoked = {"/schedules"}
    ev = collect(world, server, tls, clock, max_workers=workers)
    record = ev[SCHEDULES]
    assert record.state is EvidenceState.DENIED
    assert record.detail.startswith("schedule PSCLC01: GET /schedules/{id}: the credentials were "
                                    "rejected (401"), record.detail
    assert record.detail.endswith("(schedule reads not yet started were not sent)")
    sent = [e for e in server.log.entries if e["path"].startswith("/schedules/")]
    assert 1 <= len(sent) <= workers and {e["status"] for e in sent} == {401}
    assert ev[SERVICES].state is ev[USERS].state is ev[INCIDENTS].state is EvidenceState.OK
