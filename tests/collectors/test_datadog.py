"""Datadog collector against the spec-shaped fake, over real HTTP with the real SDK."""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import pytest
from pydantic import ValidationError

from collectors.datadog.demo import (DatadogWorld, FakeDatadog, acme_world, downtime, log_index,
                                      monitor, start_demo)
from attest.demo.http import LocalServer
from attest.engine import evaluate_control
from attest.model import Evidence, EvidenceState, Status
from collectors.base import CollectContext
from collectors.datadog.collector import (DOWNTIMES, LOG_INDEXES, MONITORS, Config,
                                DatadogCollector, base_url, scope_of)
from collectors.http import RetryPolicy
from controls import catalog_by_id
from tests.clocks import FakeClock

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
MAX_RATE_LIMIT_WAIT = RetryPolicy().max_wait
DD_CONTROLS = ("datadog.monitor_coverage", "datadog.monitors_notify",
               "datadog.monitors_not_muted", "datadog.log_retention",
               "datadog.critical_monitors_page")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def world(clock: FakeClock) -> DatadogWorld:
    return DatadogWorld(clock=clock)


@pytest.fixture
def server(world: DatadogWorld) -> Iterator[LocalServer]:
    srv = LocalServer(FakeDatadog(world))
    srv.start()
    yield srv
    srv.stop()


def collect(world: DatadogWorld, server: LocalServer, clock: FakeClock | None = None,
            **overrides: Any) -> dict[str, Evidence]:
    cfg = {"host": server.url, "api_key": world.api_key, "app_key": world.app_key, **overrides}
    collector = DatadogCollector(Config(**cfg), **({"sleep": clock.sleep, "clock": clock} if clock else {}))
    records = list(collector.collect(CollectContext(now=NOW)))
    assert [r.name for r in records] == list(DatadogCollector.produces)
    return {r.name: r for r in records}


def evaluate(control_id: str, records: list[Evidence]) -> Any:
    control = catalog_by_id()[control_id]
    return evaluate_control(control, records, control.param_values(), NOW)


def mons(n: int, start: int = 1) -> list[dict[str, Any]]:
    return [monitor(start + i, f"monitor {i}", query="avg(last_5m):avg:system.cpu.user{*} > 90",
                    message="@slack-ops") for i in range(n)]


# -- base URL ----------------------------------------------------------------------------------

@pytest.mark.parametrize("site, url", [
    ("datadoghq.com", "https://api.datadoghq.com"),
    ("datadoghq.eu", "https://api.datadoghq.eu"),
    ("us5.datadoghq.com", "https://api.us5.datadoghq.com"),
    ("ddog-gov.com", "https://api.ddog-gov.com"),
    ("AP1.datadoghq.com", "https://api.ap1.datadoghq.com"),
])
def test_base_url_from_site(site: str, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DD_SITE", "us3.datadoghq.com")    # the SDK reads it; config wins
    config = Config(site=site, api_key="a", app_key="b")
    assert base_url(config) == url
    assert scope_of(config) == f"datadog:{site.lower()}"
    assert DatadogCollector(config)._client().configuration.host == url


def test_host_overrides_site() -> None:
    config = Config(site="datadoghq.eu", host="http://127.0.0.1:8126/", api_key="a", app_key="b")
    assert base_url(config) == "http://127.0.0.1:8126"
    assert scope_of(config) == "datadog:127.0.0.1:8126"
    assert Config(api_key="a", app_key="b").site == "datadoghq.com"


@pytest.mark.parametrize("bad", [
    {"site": "https://app.datadoghq.eu"}, {"site": "datadoghq"}, {"site": "../x"},
    {"host": "http://api.datadoghq.eu"}, {"host": "ftp://127.0.0.1"}, {"host": "not a url"},
    {"unknown": 1}, {"page_size": 1001}, {"api_key": ""}, {"app_key": ""},
])
def test_config_rejects(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Config(**{"api_key": "a", "app_key": "b", **bad})


def test_secrets_are_never_shown() -> None:
    config = Config(api_key="s3cret-api", app_key="s3cret-app")
    assert "s3cret" not in repr(config) and "s3cret" not in str(config.model_dump())


# -- collection --------------------------------------------------------------------------------

def test_monitors_and_downtimes_span_several_pages(world: DatadogWorld, server: LocalServer) -> None:
    world.monitors = mons(25)
    world.downtimes = [downtime(f"dt-{i}", NOW, start=NOW, end=NOW + timedelta(hours=1),
                                monitor_id=i + 1) for i in range(7)]
    world.indexes = [log_index("main", 30)]
    ev = collect(world, server, page_size=10)

    monitors = ev[MONITORS]
    assert monitors.state is EvidenceState.OK
    assert [len(p) for p in monitors.payload["pages"]] == [10, 10, 5]
    assert [m["id"] for p in monitors.payload["pages"] for m in p] == list(range(1, 26))
    assert monitors.request == {"operation": "GET /api/v1/monitor",
                                "params": {"with_downtimes": True, "page_size": 10}, "pages": 3}
    assert server.log.count(lambda e: e["path"] == "/api/v1/monitor") == 3
    assert server.log.count(lambda e: "page=2" in e["query"]) == 1

    downtimes = ev[DOWNTIMES]
    assert downtimes.state is EvidenceState.OK
    assert [len(p["data"]) for p in downtimes.payload["pages"]] == [7]
    assert ev[LOG_INDEXES].payload == {"pages": [{"indexes": [log_index("main", 30)]}]}


def test_downtime_offsets_follow_total_filtered_count(world: DatadogWorld,
                                                      server: LocalServer) -> None:
    world.downtimes = [downtime(f"dt-{i}", NOW, start=NOW, end=None) for i in range(7)]
    ev = collect(world, server, page_size=3)
    assert [len(p["data"]) for p in ev[DOWNTIMES].payload["pages"]] == [3, 3, 1]
    offsets = [re.search(r"page%5Boffset%5D=(\d+)", e["query"]).group(1)
               for e in server.log.entries if e["path"] == "/api/v2/downtime"]
    assert offsets == ["0", "3", "6"]


def test_payload_is_the_raw_json(world: DatadogWorld, server: LocalServer) -> None:
    odd = monitor(7, "odd", query="x", message="@slack-a", type="some-future alert")
    odd["options"]["silenced"] = {"*": None}
    odd["brand_new_field"] = {"kept": True}
    world.monitors = [odd]
    page = collect(world, server)[MONITORS].payload["pages"][0]
    assert page[0]["brand_new_field"] == {"kept": True}       # an SDK model would drop it
    assert page[0]["type"] == "some-future alert"             # an SDK enum would reject it
    assert page[0]["options"]["silenced"] == {"*": None}
    assert page[0]["created_at"] == odd["created_at"]


def test_matching_downtimes_are_read(world: DatadogWorld, server: LocalServer) -> None:
    world.monitors = mons(2)
    world.downtimes = [downtime("dt", NOW, start=NOW - timedelta(hours=1), end=None,
                                monitor_id=2)]
    page = collect(world, server)[MONITORS].payload["pages"][0]
    assert page[0]["matching_downtimes"] == []
    assert page[1]["matching_downtimes"][0]["end"] is None


def test_names_with_html_dotdot_and_non_ascii_are_data(world: DatadogWorld,
                                                       server: LocalServer) -> None:
    name = "<script>alert(1)</script> ../../etc/passwd Ünïcödé 監視"
    index_name = "../<b>logs</b>-é"
    world.monitors = [monitor(1, name, query="q", message="no handle")]
    world.indexes = [log_index(index_name, 3)]
    ev = collect(world, server)
    assert ev[MONITORS].payload["pages"][0][0]["name"] == name
    assert ev[LOG_INDEXES].payload["pages"][0]["indexes"][0]["name"] == index_name
    for record in ev.values():
        assert ".." not in record.path and record.path.startswith("evidence/datadog/")
    result = evaluate("datadog.log_retention", list(ev.values()))
    assert [(f.resource, f.status) for f in result.findings] == [(index_name, Status.FAIL)]


def test_bad_key_denies_every_name_and_errors_every_control(world: DatadogWorld,
                                                            server: LocalServer) -> None:
    world.monitors = mons(3)
    ev = collect(world, server, app_key="wrong-key")
    for name, record in ev.items():
        assert record.state is EvidenceState.DENIED, name
        assert "403" in record.detail and "Forbidden" in record.detail
    assert "monitors_read" in ev[MONITORS].detail
    assert "monitors_downtime" in ev[DOWNTIMES].detail
    assert "logs_read_config" in ev[LOG_INDEXES].detail
    records = list(ev.values())
    for cid in DD_CONTROLS:
        assert evaluate(cid, records).status is Status.ERROR, cid
    # Nothing else breaks: every other control judges exactly as without these records.
    catalog = catalog_by_id()
    for cid, control in catalog.items():
        if control.source != "datadog":
            assert (evaluate_control(control, records, control.param_values(), NOW).status
                    == evaluate_control(control, [], control.param_values(), NOW).status), cid
    dumped = json.dumps([r.to_json() for r in records])
    assert world.api_key not in dumped and "wrong-key" not in dumped


def test_unknown_api_key_is_denied_too(world: DatadogWorld, server: LocalServer) -> None:
    ev = collect(world, server, api_key="revoked-key")
    assert {r.state for r in ev.values()} == {EvidenceState.DENIED}


def test_app_key_without_downtime_scope(world: DatadogWorld, server: LocalServer) -> None:
    world.app_key_scopes = {"monitors_read", "logs_read_config"}
    world.monitors = mons(2)
    ev = collect(world, server)
    assert ev[MONITORS].state is EvidenceState.OK
    assert ev[DOWNTIMES].state is EvidenceState.DENIED
    assert "monitors_downtime" in ev[DOWNTIMES].detail
    records = list(ev.values())
    assert evaluate("datadog.monitors_not_muted", records).status is Status.ERROR
    assert evaluate("datadog.monitors_notify", records).status is Status.PASS


def test_429_waits_for_reset_and_retries(world: DatadogWorld, server: LocalServer,
                                         clock: FakeClock) -> None:
    world.monitors = mons(3)
    world.throttle = 2
    ev = collect(world, server, clock, max_workers=1)    # one read at a time: exact waits
    assert ev[MONITORS].state is EvidenceState.OK
    assert len(ev[MONITORS].payload["pages"][0]) == 3
    assert server.log.count(lambda e: e["status"] == 429) == 2
    assert len(clock.waits) == 2 and all(0 < w <= MAX_RATE_LIMIT_WAIT for w in clock.waits)


def test_remaining_zero_paces_before_the_next_call(world: DatadogWorld, server: LocalServer,
                                                   clock: FakeClock) -> None:
    world.monitors = mons(9)
    world.rate_limit, world.rate_period = 2, 10
    # one read at a time: concurrent first requests would go before any answer told the budget
    ev = collect(world, server, clock, page_size=3, max_workers=1)
    assert all(r.state is EvidenceState.OK for r in ev.values())
    assert server.log.count(lambda e: e["status"] == 429) == 0
    assert clock.waits and all(w == 10 for w in clock.waits)


def test_endless_429_is_an_error_with_bounded_waits(world: DatadogWorld, server: LocalServer,
                                                    clock: FakeClock) -> None:
    world.throttle = 1000
    world.rate_period = 3600
    ev = collect(world, server, clock)
    assert {r.state for r in ev.values()} == {EvidenceState.ERROR}
    assert "429" in ev[MONITORS].detail and "longer than the 60s attest may wait" in ev[MONITORS].detail
    assert all(w <= MAX_RATE_LIMIT_WAIT for w in clock.waits)   # never sleeps for the hour


def test_a_failed_later_page_is_partial(world: DatadogWorld, server: LocalServer) -> None:
    world.monitors = mons(5)
    world.fail_pages = {"/api/v1/monitor": 1}
    ev = collect(world, server, page_size=2, max_retries=1)
    record = ev[MONITORS]
    assert record.state is EvidenceState.PARTIAL
    assert "page 2" in record.detail and "500" in record.detail
    assert len(record.payload["pages"]) == 1
    assert evaluate("datadog.monitors_notify", list(ev.values())).status is Status.ERROR


def test_unreachable_host_is_an_error_for_every_name() -> None:
    srv = LocalServer(FakeDatadog(DatadogWorld()))
    url = srv.start()
    srv.stop()
    records = list(DatadogCollector(Config(host=url, api_key="a", app_key="b"))
                   .collect(CollectContext(now=NOW)))
    assert [r.state for r in records] == [EvidenceState.UNREACHABLE] * 3
    assert "no answer after 4 attempts" in records[0].detail


# -- the demo ----------------------------------------------------------------------------------

def test_demo_expected_statuses_match_the_engine() -> None:
    demo = start_demo(NOW)
    try:
        assert set(demo.expected) == set(DD_CONTROLS)
        section = {k: re.sub(r"\$\{(\w+)\}", lambda m: demo.env[m.group(1)], v)
                   for k, v in demo.section.items()}
        assert section["site"] == "datadoghq.com" and section["host"].startswith("http://127.0.0.1:")
        records = list(DatadogCollector(Config(**section)).collect(CollectContext(now=NOW)))
        assert all(r.state is EvidenceState.OK for r in records)
        got = {cid: evaluate(cid, records).status.value for cid in demo.expected}
        assert got == demo.expected
    finally:
        demo.stop()


# -- reads side by side (max_workers) ----------------------------------------------------------

def content(records: dict[str, Evidence]) -> list[tuple[Any, ...]]:
    """What a record says, without when it was collected."""
    return [(r.name, r.scope, r.state, r.payload, r.detail, r.request, r.unknown)
            for r in records.values()]


def test_max_workers_reads_the_lists_side_by_side_with_the_same_results(clock: FakeClock) -> None:
    """A fake that takes 50 ms to answer: with max_workers 4 the three lists (monitors,
    downtimes, log indexes) are in flight together; with 1 never more than one request at a
    time; the records are the same either way, in the same order."""
    world = acme_world(NOW)
    world.clock = clock
    srv = LocalServer(FakeDatadog(world), latency=0.05)
    srv.start()
    got: dict[int, list[tuple[Any, ...]]] = {}
    most: dict[int, int] = {}
    try:
        for workers in (1, 4):
            srv.log.clear()
            cfg = Config(host=srv.url, api_key=world.api_key, app_key=world.app_key,
                         page_size=2, max_workers=workers)
            records = list(DatadogCollector(cfg, sleep=clock.sleep, clock=clock).collect(
                CollectContext(now=NOW)))
            assert [r.name for r in records] == list(DatadogCollector.produces)
            got[workers] = content({r.name: r for r in records})
            most[workers] = srv.log.most_in_flight
    finally:
        srv.stop()
    assert most == {1: 1, 4: 3}
    assert got[1] == got[4]
    assert all(state is EvidenceState.OK for _, _, state, *_ in got[4])
    assert len(got[4][0][3]["pages"]) > 1        # monitors: several pages, read in order


def test_an_unexpected_answer_in_one_concurrent_read_stays_with_its_record(
        world: DatadogWorld) -> None:
    """The downtimes' answer has a shape the collector does not expect (``meta`` a list): that
    record is ``error`` naming it; the two lists read beside it are ``ok``."""
    world.monitors = mons(3)
    world.indexes = [log_index("main", 30)]
    fake = FakeDatadog(world)

    def odd_downtimes(environ: dict, start_response: Any) -> Any:
        if environ["PATH_INFO"] == "/api/v2/downtime":
            body = json.dumps({"data": [{"id": "dt"}], "meta": ["not", "an", "object"]}).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        return fake(environ, start_response)
    srv = LocalServer(odd_downtimes)
    srv.start()
    try:
        ev = collect(world, srv, max_workers=4)
    finally:
        srv.stop()
    assert ev[DOWNTIMES].state is EvidenceState.ERROR
    assert ev[DOWNTIMES].detail.startswith("unexpected AttributeError while reading")
    assert ev[MONITORS].state is EvidenceState.OK and ev[LOG_INDEXES].state is EvidenceState.OK
