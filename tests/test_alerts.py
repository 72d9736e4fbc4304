"""Alerts on regressions, sent to real HTTP receivers on 127.0.0.1 that record every request.

Each receiver stands in for one vendor and answers as it does: Slack's incoming webhook (200
``ok``), PagerDuty's Events API v2 (202 ``{"status": "success", "dedup_key": ...}``) and Datadog's
``/api/v1/events`` and ``/api/v2/series`` (202). Nothing leaves the machine.
"""
from __future__ import annotations

import gzip
import json
import logging
import socket
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator

import pytest
from pydantic import ValidationError

from attest import alerts
from attest.alerts import (AlertsConfig, Change, PagerDutyAlert, SlackAlert, recoveries,
                           regressions, send_alerts)
from attest.model import ControlResult, Finding, Status
from attest.results import Results, ScanInfo, build_results
from collectors.datadog.collector import Config as DatadogConfig

STORE = "acme-prod"
SLACK_TOKEN = "PLANTEDslackWebhookToken0123456789"
ROUTING_KEY = "PLANTEDpdRoutingKey0123456789abcd"
DD_API_KEY = "PLANTEDddApiKey0123456789abcdef"
DD_APP_KEY = "PLANTEDddAppKey0123456789abcdef0123"
SECRETS = (SLACK_TOKEN, ROUTING_KEY, DD_API_KEY, DD_APP_KEY)


# -- receivers ----------------------------------------------------------------------------------

Answer = tuple[int, dict[str, str], bytes]


class Receiver:
    """An HTTP server on 127.0.0.1 that records every request (method, path, headers, JSON body)
    and answers with ``answer(path, body)``; ``statuses`` (consumed in order, the last one
    repeating) overrides the status, e.g. ``[500]`` for a broken vendor or ``[429, 202]``."""

    def __init__(self, answer: Callable[[str, Any], Answer], statuses: list[int] | None = None,
                 delay: float = 0.0) -> None:
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.answer, self.statuses, self.delay = answer, list(statuses or []), delay
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                encoding = (self.headers.get("Content-Encoding") or "").lower()
                if encoding == "gzip":
                    raw = gzip.decompress(raw)
                elif encoding == "deflate":
                    raw = zlib.decompress(raw)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                with receiver.lock:
                    receiver.requests.append({"method": "POST", "path": self.path, "raw": raw,
                                              "headers": {k.lower(): v for k, v in self.headers.items()},
                                              "json": body})
                    status_override = (receiver.statuses.pop(0) if len(receiver.statuses) > 1
                                       else (receiver.statuses or [None])[0])
                if receiver.delay:
                    time.sleep(receiver.delay)
                status, headers, data = receiver.answer(self.path, body)
                if status_override is not None and status_override >= 300:
                    status, headers, data = status_override, {"Retry-After": "0"}, b"server trouble"
                try:
                    self.send_response(status)
                    for k, v in {"Content-Length": str(len(data)), **headers}.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False      # a kept-alive connection never holds up stop()
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def at(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if r["path"].split("?")[0] == path]

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()


def _json(status: int, body: Any) -> Answer:
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


def slack_answer(path: str, body: Any) -> Answer:
    return 200, {"Content-Type": "text/html"}, b"ok"


def pagerduty_answer(path: str, body: Any) -> Answer:
    if not isinstance(body, dict) or body.get("event_action") not in ("trigger", "resolve", "acknowledge"):
        return _json(400, {"status": "invalid event", "message": "Event object is invalid",
                           "errors": ["'event_action' is missing or blank"]})
    return _json(202, {"status": "success", "message": "Event processed",
                       "dedup_key": body.get("dedup_key") or "generated"})


def datadog_answer(path: str, body: Any) -> Answer:
    if path.startswith("/api/v1/events"):
        return _json(202, {"status": "ok", "event": {"id": 1, "title": (body or {}).get("title")}})
    if path.startswith("/api/v2/series"):
        return _json(202, {"errors": []})
    return _json(404, {"errors": ["Not found"]})


@pytest.fixture
def receivers() -> Iterator[dict[str, Receiver]]:
    made = {"slack": Receiver(slack_answer), "pagerduty": Receiver(pagerduty_answer),
            "datadog": Receiver(datadog_answer)}
    yield made
    for r in made.values():
        r.stop()


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(alerts, "RETRY_BACKOFF", 0.0)
    monkeypatch.setattr(alerts, "MAX_RETRY_WAIT", 0.05)


@pytest.fixture
def closed_port() -> Iterator[str]:
    """A URL whose port refuses connections: bound (so no one else takes it), never listening."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def config_for(r: dict[str, Receiver], **urls: str) -> tuple[AlertsConfig, DatadogConfig]:
    slack = urls.get("slack", r["slack"].url)
    pd = urls.get("pagerduty", r["pagerduty"].url)
    dd = urls.get("datadog", r["datadog"].url)
    config = AlertsConfig.model_validate({
        "slack": {"webhook_url": f"{slack}/services/T0AAAAAAA/B0BBBBBBB/{SLACK_TOKEN}"},
        "pagerduty": {"routing_key": ROUTING_KEY, "url": f"{pd}/v2/enqueue"},
        "datadog": {"events": True, "metrics": True},
    })
    datadog = DatadogConfig.model_validate({"host": dd, "api_key": DD_API_KEY, "app_key": DD_APP_KEY})
    return config, datadog


# -- scan results -------------------------------------------------------------------------------

CONTROLS = {
    "aws.cloudtrail.multi_region": ("CloudTrail records every region", "high", "aws"),
    "github.org_2fa_required": ("The organization requires 2FA", "critical", "github"),
    "okta.mfa_enrolled": ("Every user has MFA", "medium", "okta"),
}


def results(statuses: dict[str, str], *, bundle: str = "2026-11-22T02-00-00Z",
            failing: int = 1, catalog: dict[str, tuple[str, str, str]] = CONTROLS) -> Results:
    """Scan results as run_scan writes them (attest.results.build_results)."""
    controls = []
    for cid, status in statuses.items():
        title, severity, source = catalog[cid]
        if status in ("fail", "error"):
            findings = [Finding(f"arn:aws:cloudtrail:us-east-1:123456789012:trail/t{i}", Status(status),
                                f"trail t{i} is single-region") for i in range(failing)]
            findings.append(Finding("arn:aws:cloudtrail:us-east-1:123456789012:trail/ok", Status.PASS))
        else:
            findings = [Finding("arn:aws:cloudtrail:us-east-1:123456789012:trail/ok", Status(status))]
        controls.append(ControlResult(id=cid, title=title, criteria=["CC7.2"], source=source,
                                      severity=severity, status=Status(status), findings=findings,
                                      evidence=[]))
    return build_results(controls, ScanInfo(id=f"scan-{bundle}", bundle=bundle,
                                            started_at="2026-11-22T02:00:00Z",
                                            finished_at="2026-11-22T02:03:00Z"))


def edited(results: Results, edit: Callable[[dict[str, Any]], Any]) -> Results:
    """``results`` with its JSON form changed by ``edit``."""
    data = results.to_json()
    edit(data)
    return Results.model_validate(data)


ALL_PASS = {cid: "pass" for cid in CONTROLS}
ONE_FAILS = {**ALL_PASS, "aws.cloudtrail.multi_region": "fail"}


def send(r: dict[str, Receiver], *, current: Results | None, previous: Results | None,
         **kw: Any) -> dict[str, str]:
    config, datadog = config_for(r)
    return send_alerts(config, current=current, previous=previous, store=STORE, datadog=datadog, **kw)


def series_by_name(request: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for s in request["json"]["series"]:
        out.setdefault(s["metric"], []).append(s)
    return out


# -- regressions() and recoveries() -------------------------------------------------------------

def test_regressions_are_pass_to_fail_or_error_only() -> None:
    previous = results({"aws.cloudtrail.multi_region": "pass", "github.org_2fa_required": "pass",
                        "okta.mfa_enrolled": "fail"})
    current = results({"aws.cloudtrail.multi_region": "fail", "github.org_2fa_required": "error",
                       "okta.mfa_enrolled": "error"})
    changes = regressions(previous, current)
    assert [(c.id, c.before, c.after) for c in changes] == [
        ("aws.cloudtrail.multi_region", "pass", "fail"), ("github.org_2fa_required", "pass", "error")]
    first = changes[0]
    assert isinstance(first, Change)
    assert (first.title, first.severity) == ("CloudTrail records every region", "high")
    assert first.reason == ("arn:aws:cloudtrail:us-east-1:123456789012:trail/t0: "
                            "trail t0 is single-region")
    assert regressions(None, current) == []


def test_excepted_skipped_and_new_controls_are_no_regression() -> None:
    previous = results({"aws.cloudtrail.multi_region": "excepted", "github.org_2fa_required": "skipped"})
    current = results({"aws.cloudtrail.multi_region": "fail", "github.org_2fa_required": "fail",
                       "okta.mfa_enrolled": "fail"})
    assert regressions(previous, current) == []


def test_recoveries_are_fail_or_error_to_pass_excepted_or_not_applicable() -> None:
    previous = results({"aws.cloudtrail.multi_region": "fail", "github.org_2fa_required": "error",
                        "okta.mfa_enrolled": "fail"})
    current = results({"aws.cloudtrail.multi_region": "pass", "github.org_2fa_required": "excepted",
                       "okta.mfa_enrolled": "skipped"})
    changes = recoveries(previous, current)
    assert [(c.id, c.before, c.after) for c in changes] == [
        ("aws.cloudtrail.multi_region", "fail", "pass"), ("github.org_2fa_required", "error", "excepted")]
    assert changes[0].reason.startswith("arn:aws:cloudtrail:us-east-1:123456789012:trail/t0")
    previous = edited(previous, lambda d: d["controls"][2].update(status="error"))
    current = edited(current, lambda d: d["controls"][2].update(status="not_applicable"))
    assert [c.id for c in recoveries(previous, current)][-1] == "okta.mfa_enrolled"
    assert recoveries(None, current) == []


def test_reason_is_truncated() -> None:
    previous = results(ALL_PASS)
    current = results(ONE_FAILS)
    current = edited(current, lambda d: d["controls"][0]["findings"][0].update(detail="x" * 5000))
    (change,) = regressions(previous, current)
    assert len(change.reason) <= alerts.REASON_CHARS


# -- one regression, every channel, once --------------------------------------------------------

def test_one_regression_reaches_each_channel_exactly_once(receivers: dict[str, Receiver]) -> None:
    previous = results(ALL_PASS, bundle="2026-11-21T02-00-00Z")
    current = results(ONE_FAILS, failing=250)   # 250 failing resources: still one of each
    before = int(time.time())
    outcomes = send(receivers, current=current, previous=previous,
                    report_url="https://attest.example/report.html")
    assert outcomes == {"slack": "sent", "pagerduty": "sent (1 trigger, 0 resolves)",
                        "datadog": "sent (1 event and 10 series)"}

    (slack,) = receivers["slack"].requests
    assert slack["path"] == f"/services/T0AAAAAAA/B0BBBBBBB/{SLACK_TOKEN}"
    assert slack["headers"]["content-type"].startswith("application/json")
    body = slack["json"]
    assert "aws.cloudtrail.multi_region (pass -> fail)" in body["text"]
    assert STORE in body["text"] and current.scan.bundle in body["text"]
    assert body["blocks"][0]["type"] == "header"
    assert body["blocks"][0]["text"] == {"type": "plain_text",
                                         "text": f"attest: 1 control regressed ({STORE})"}
    (section,) = [b for b in body["blocks"] if b["type"] == "section"]
    text = section["text"]["text"]
    assert section["text"]["type"] == "mrkdwn"
    assert "`aws.cloudtrail.multi_region`" in text and "pass → *fail*" in text
    assert "250 failing findings" in text and "trail/t0: trail t0 is single-region" in text
    context = body["blocks"][-1]["elements"][0]["text"]
    assert STORE in context and current.scan.bundle in context
    assert "<https://attest.example/report.html|Report>" in context
    assert body["unfurl_links"] is False

    (pd,) = receivers["pagerduty"].requests
    assert pd["path"] == "/v2/enqueue" and pd["headers"]["content-type"] == "application/json"
    event = pd["json"]
    assert event["routing_key"] == ROUTING_KEY
    assert event["event_action"] == "trigger"
    assert event["dedup_key"] == f"attest:{STORE}:aws.cloudtrail.multi_region"
    payload = event["payload"]
    assert payload["summary"].startswith("attest: aws.cloudtrail.multi_region pass -> fail in acme-prod")
    assert len(payload["summary"]) <= 1024
    assert payload["source"] == f"attest:{STORE}"
    assert payload["severity"] == "error"            # a high control
    assert payload["timestamp"] == "2026-11-22T02:03:00Z"
    assert payload["component"] == "aws.cloudtrail.multi_region" and payload["group"] == "aws"
    details = payload["custom_details"]
    assert details["failing_findings"] == 250 and details["before"] == "pass"
    assert details["after"] == "fail" and details["store"] == STORE
    assert details["bundle"] == current.scan.bundle and details["criteria"] == ["CC7.2"]
    assert event["links"] == [{"href": "https://attest.example/report.html", "text": "attest report"}]

    dd = receivers["datadog"]
    (ev,) = dd.at("/api/v1/events")
    assert ev["headers"]["dd-api-key"] == DD_API_KEY
    assert "dd-application-key" not in ev["headers"]      # events and series need no app key
    assert ev["json"]["alert_type"] == "error"
    assert "aws.cloudtrail.multi_region" in ev["json"]["title"] and len(ev["json"]["title"]) <= 100
    assert "aws.cloudtrail.multi_region" in ev["json"]["text"] and len(ev["json"]["text"]) <= 4000
    assert ev["json"]["tags"] == ["source:attest", f"store:{STORE}"]
    (series_request,) = dd.at("/api/v2/series")
    assert series_request["headers"]["dd-api-key"] == DD_API_KEY
    series = series_by_name(series_request)
    assert set(series) == {"attest.controls", "attest.control.status", "attest.readiness"}
    for s in series_request["json"]["series"]:
        assert s["type"] == 3                          # MetricIntakeType.GAUGE on the wire
        assert f"store:{STORE}" in s["tags"] and "source:attest" in s["tags"]
        (point,) = s["points"]
        assert before <= point["timestamp"] <= int(time.time()) + 1
    counts = {next(t for t in s["tags"] if t.startswith("status:")): s["points"][0]["value"]
              for s in series["attest.controls"]}
    assert counts["status:fail"] == 1 and counts["status:pass"] == 2 and counts["status:error"] == 0
    per_control = {next(t for t in s["tags"] if t.startswith("control:")): s for s in series["attest.control.status"]}
    assert len(per_control) == 3
    failing = per_control["control:aws.cloudtrail.multi_region"]
    assert failing["points"][0]["value"] == 0 and "status:fail" in failing["tags"]
    assert per_control["control:okta.mfa_enrolled"]["points"][0]["value"] == 1
    (readiness,) = series["attest.readiness"]
    assert readiness["points"][0]["value"] == pytest.approx(66.7)


def test_no_regression_sends_only_datadog_info_and_gauges(receivers: dict[str, Receiver]) -> None:
    outcomes = send(receivers, current=results(ONE_FAILS), previous=results(ONE_FAILS))
    assert outcomes["slack"] == outcomes["pagerduty"] == "nothing to send"
    assert receivers["slack"].requests == [] and receivers["pagerduty"].requests == []
    (ev,) = receivers["datadog"].at("/api/v1/events")
    assert ev["json"]["alert_type"] == "info"
    assert ev["json"]["title"] == f"attest: scan finished ({STORE}), no regression"
    assert len(receivers["datadog"].at("/api/v2/series")) == 1


def test_first_scan_sends_no_regression(receivers: dict[str, Receiver]) -> None:
    current = results({cid: "fail" for cid in CONTROLS})
    outcomes = send(receivers, current=current, previous=None)
    assert outcomes["slack"] == outcomes["pagerduty"] == "nothing to send"
    assert receivers["slack"].requests == [] and receivers["pagerduty"].requests == []
    (ev,) = receivers["datadog"].at("/api/v1/events")
    assert ev["json"]["alert_type"] == "info"
    assert len(receivers["datadog"].at("/api/v2/series")) == 1


def test_the_fix_resolves_the_trigger_with_the_same_dedup_key(receivers: dict[str, Receiver]) -> None:
    night1, night2, night3 = results(ALL_PASS), results(ONE_FAILS), results(ALL_PASS)
    send(receivers, current=night2, previous=night1)
    (trigger,) = receivers["pagerduty"].requests
    for r in receivers.values():
        r.clear()
    outcomes = send(receivers, current=night3, previous=night2)
    assert outcomes["pagerduty"] == "sent (0 triggers, 1 resolve)"
    (resolve,) = receivers["pagerduty"].requests
    assert resolve["json"] == {"routing_key": ROUTING_KEY, "event_action": "resolve",
                               "dedup_key": trigger["json"]["dedup_key"]}
    assert receivers["slack"].requests == [] and outcomes["slack"] == "nothing to send"
    (ev,) = receivers["datadog"].at("/api/v1/events")
    assert ev["json"]["alert_type"] == "info"
    assert "aws.cloudtrail.multi_region (fail → pass)" in ev["json"]["text"]
    for r in receivers.values():
        r.clear()
    send(receivers, current=results(ALL_PASS), previous=night3)   # still passing: nothing more
    assert receivers["pagerduty"].requests == []


def test_scan_failure_is_one_message_one_trigger_one_event(receivers: dict[str, Receiver]) -> None:
    reason = "config: environment variable DD_API_KEY is not set"
    outcomes = send(receivers, current=None, previous=results(ALL_PASS), scan_failure=reason)
    assert outcomes == {"slack": "sent", "pagerduty": "sent (1 trigger, 0 resolves)",
                        "datadog": "sent (1 event)"}
    (slack,) = receivers["slack"].requests
    assert reason in slack["json"]["text"] and STORE in slack["json"]["text"]
    assert slack["json"]["blocks"][0]["text"]["text"] == f"attest: the scan could not run ({STORE})"
    (pd,) = receivers["pagerduty"].requests
    assert pd["json"]["event_action"] == "trigger"
    assert pd["json"]["dedup_key"] == f"attest:{STORE}:scan"
    assert pd["json"]["payload"]["severity"] == "error"
    assert reason in pd["json"]["payload"]["summary"]
    assert pd["json"]["payload"]["source"] == f"attest:{STORE}"
    (ev,) = receivers["datadog"].at("/api/v1/events")
    assert ev["json"]["alert_type"] == "error" and reason in ev["json"]["text"]
    assert receivers["datadog"].at("/api/v2/series") == []      # no results, no gauges


def test_many_regressions_stay_within_each_vendors_limits(receivers: dict[str, Receiver]) -> None:
    many = {f"aws.control_{i:02d}": (f"Control number {i} " + "t" * 300, "low", "aws") for i in range(60)}
    previous = results({cid: "pass" for cid in many}, catalog=many)
    current = results({cid: "error" for cid in many}, failing=3, catalog=many)
    outcomes = send(receivers, current=current, previous=previous)
    assert outcomes["pagerduty"] == "sent (60 triggers, 0 resolves)"
    assert len(receivers["pagerduty"].requests) == 60
    assert {r["json"]["payload"]["severity"] for r in receivers["pagerduty"].requests} == {"warning"}
    (slack,) = receivers["slack"].requests
    blocks = slack["json"]["blocks"]
    assert len(blocks) <= 50 and len(blocks[0]["text"]["text"]) <= 150
    assert sum(b["type"] == "section" for b in blocks) == alerts.SLACK_MAX_LISTED
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks if b["type"] == "section")
    assert "…and 40 more regressed controls" in json.dumps(blocks, ensure_ascii=False)
    assert len(slack["json"]["text"]) <= 3000
    (ev,) = receivers["datadog"].at("/api/v1/events")
    assert len(ev["json"]["text"]) <= 4000 and len(ev["json"]["title"]) <= 100


# -- failing channels ---------------------------------------------------------------------------

@pytest.mark.parametrize("broken", ["slack", "pagerduty", "datadog"])
@pytest.mark.parametrize("how", ["http 500", "closed port"])
def test_a_failing_channel_is_logged_and_the_others_still_deliver(
        receivers: dict[str, Receiver], closed_port: str, caplog: pytest.LogCaptureFixture,
        broken: str, how: str) -> None:
    caplog.set_level(logging.DEBUG)
    if how == "http 500":
        receivers[broken].statuses = [500]
        config, datadog = config_for(receivers)
    else:
        config, datadog = config_for(receivers, **{broken: closed_port})
    outcomes = send_alerts(config, current=results(ONE_FAILS), previous=results(ALL_PASS),
                           store=STORE, datadog=datadog)
    assert outcomes[broken].startswith("failed: ")
    assert ("HTTP 500" in outcomes[broken]) == (how == "http 500")
    if how == "http 500":  # a small, bounded retry: 1 try + RETRIES, per request
        per_request = 1 + alerts.RETRIES
        assert len(receivers[broken].requests) == per_request * (2 if broken == "datadog" else 1)
    for other in {"slack", "pagerduty", "datadog"} - {broken}:
        assert outcomes[other].startswith("sent"), outcomes
        assert receivers[other].requests, f"{other} got nothing"
    warnings = [r for r in caplog.records if r.name == "attest.alerts" and r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].getMessage().startswith(f"alerts: {broken} failed: ")
    for secret in SECRETS:
        assert secret not in caplog.text


def test_rate_limited_then_accepted_is_sent(receivers: dict[str, Receiver]) -> None:
    for r in receivers.values():
        r.statuses = [429, 0]          # one 429 (Retry-After: 0), then the normal answer
    outcomes = send(receivers, current=results(ONE_FAILS), previous=results(ALL_PASS))
    assert all(o.startswith("sent") for o in outcomes.values()), outcomes
    assert len(receivers["slack"].requests) == 2 and len(receivers["pagerduty"].requests) == 2


def test_a_slow_receiver_times_out_without_retry(receivers: dict[str, Receiver],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(alerts, "TIMEOUT", 0.3)
    receivers["slack"].delay = 2.0
    receivers["pagerduty"].delay = 2.0
    t0 = time.monotonic()
    outcomes = send(receivers, current=results(ONE_FAILS), previous=results(ALL_PASS))
    assert time.monotonic() - t0 < 1.9
    assert outcomes["slack"].startswith("failed: ") and outcomes["pagerduty"].startswith("failed: ")
    assert len(receivers["slack"].requests) == 1 and len(receivers["pagerduty"].requests) == 1
    assert outcomes["datadog"].startswith("sent")


def test_pagerduty_rejecting_an_event_stops_that_channel(receivers: dict[str, Receiver],
                                                         caplog: pytest.LogCaptureFixture) -> None:
    receivers["pagerduty"].answer = lambda path, body: _json(400, {
        "status": "invalid event", "message": "Event object is invalid", "errors": ["bad key"]})
    previous = results(ALL_PASS)
    current = results({cid: "fail" for cid in CONTROLS})
    outcomes = send(receivers, current=current, previous=previous)
    assert outcomes["pagerduty"].startswith(
        f"failed: trigger attest:{STORE}:aws.cloudtrail.multi_region: HTTP 400: ")
    assert outcomes["pagerduty"].endswith("(0 of 3 events sent)")
    assert len(receivers["pagerduty"].requests) == 1       # 4xx is not retried
    assert outcomes["slack"] == "sent"


def test_datadog_channel_without_a_datadog_section_fails_clearly(
        receivers: dict[str, Receiver], caplog: pytest.LogCaptureFixture) -> None:
    config, _ = config_for(receivers)
    outcomes = send_alerts(config, current=results(ONE_FAILS), previous=results(ALL_PASS),
                           store=STORE, datadog=None)
    assert outcomes["datadog"].startswith("failed: alerts.datadog is set but there is no datadog: section")
    assert outcomes["slack"] == "sent" and outcomes["pagerduty"].startswith("sent")
    assert "alerts: datadog failed: alerts.datadog is set" in caplog.text


def test_datadog_events_and_metrics_can_be_turned_off(receivers: dict[str, Receiver]) -> None:
    _, datadog = config_for(receivers)
    config = AlertsConfig.model_validate({"datadog": {"events": False}})
    assert send_alerts(config, current=results(ALL_PASS), previous=None, store=STORE,
                       datadog=datadog) == {"datadog": "sent (10 series)"}
    assert receivers["datadog"].at("/api/v1/events") == []
    config = AlertsConfig.model_validate({"datadog": {"events": False, "metrics": False}})
    assert send_alerts(config, current=results(ALL_PASS), previous=None, store=STORE,
                       datadog=datadog) == {"datadog": "nothing to send"}


def test_no_config_or_odd_results_never_raise(receivers: dict[str, Receiver]) -> None:
    assert send_alerts(None, current=results(ALL_PASS), previous=None, store=STORE) == {}
    config, datadog = config_for(receivers)
    outcomes = send_alerts(config, current={"controls": "not a list"}, previous={"controls": [1]},
                           store=STORE, datadog=datadog)
    assert set(outcomes) == {"slack", "pagerduty", "datadog"}
    assert all(o.startswith("failed: could not read the scan results") for o in outcomes.values())


# -- secrets ------------------------------------------------------------------------------------

def test_no_secret_in_any_log_line_and_only_the_routing_key_in_pagerduty_bodies(
        receivers: dict[str, Receiver], closed_port: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)          # every logger, every level, libraries included
    outcomes = []
    outcomes.append(send(receivers, current=results(ONE_FAILS), previous=results(ALL_PASS)))
    outcomes.append(send(receivers, current=None, previous=None, scan_failure="boom"))
    for r in receivers.values():
        r.statuses = [500]
    outcomes.append(send(receivers, current=results(ONE_FAILS), previous=results(ALL_PASS)))
    config, datadog = config_for(receivers, slack=closed_port, pagerduty=closed_port,
                                 datadog=closed_port)
    outcomes.append(send_alerts(config, current=results(ONE_FAILS), previous=results(ALL_PASS),
                                store=STORE, datadog=datadog))
    assert caplog.records, "the alerts were logged"
    logged = caplog.text + "\n".join(str(r.args) for r in caplog.records) + json.dumps(outcomes)
    for secret in SECRETS:
        assert secret not in logged, f"{secret[:12]}... leaked into a log line or an outcome"
    pd_bodies = [r["raw"].decode() for r in receivers["pagerduty"].requests]
    assert pd_bodies and all(r["json"]["routing_key"] == ROUTING_KEY
                             for r in receivers["pagerduty"].requests)
    for body in pd_bodies:
        assert body.count(ROUTING_KEY) == 1
        assert not any(s in body for s in (SLACK_TOKEN, DD_API_KEY, DD_APP_KEY))
    for name in ("slack", "datadog"):
        for request in receivers[name].requests:
            assert not any(s in request["raw"].decode() for s in SECRETS), name
    for request in receivers["datadog"].requests:
        assert DD_APP_KEY not in json.dumps(request["headers"])


def test_a_bad_webhook_url_error_never_quotes_it() -> None:
    url = f"http://hooks.example.com/services/T0/B0/{SLACK_TOKEN}"
    with pytest.raises(ValidationError) as info:
        AlertsConfig.model_validate({"slack": {"webhook_url": url}})
    assert SLACK_TOKEN not in str(info.value)
    assert "must be https:// (plain http only for 127.0.0.1/localhost)" in str(info.value)
    config = AlertsConfig.model_validate({"slack": {"webhook_url": f"https://hooks.slack.com/x/{SLACK_TOKEN}"}})
    assert SLACK_TOKEN not in repr(config) and SLACK_TOKEN not in str(config.model_dump())


# -- configuration ------------------------------------------------------------------------------

@pytest.mark.parametrize("url,ok", [
    ("https://events.pagerduty.com/v2/enqueue", True),
    ("https://events.eu.pagerduty.com/v2/enqueue", True),
    ("http://127.0.0.1:8080/v2/enqueue", True),
    ("http://localhost:8080/v2/enqueue", True),
    ("http://[::1]:8080/v2/enqueue", True),
    ("http://events.pagerduty.com/v2/enqueue", False),
    ("http://10.0.0.5/v2/enqueue", False),
    ("http://127.0.0.1.example.com/v2/enqueue", False),
    ("ftp://127.0.0.1/v2/enqueue", False),
    ("events.pagerduty.com/v2/enqueue", False),
])
def test_http_is_only_for_loopback(url: str, ok: bool) -> None:
    for data in ({"pagerduty": {"routing_key": ROUTING_KEY, "url": url}},
                 {"slack": {"webhook_url": url}}):
        if ok:
            AlertsConfig.model_validate(data)
        else:
            with pytest.raises(ValidationError):
                AlertsConfig.model_validate(data)


def test_config_shape() -> None:
    config = AlertsConfig.model_validate({})
    assert (config.slack, config.pagerduty, config.datadog) == (None, None, None)
    config = AlertsConfig.model_validate({"pagerduty": {"routing_key": ROUTING_KEY}, "datadog": {}})
    assert config.pagerduty.url == "https://events.pagerduty.com/v2/enqueue"
    assert isinstance(config.pagerduty, PagerDutyAlert)
    assert (config.datadog.events, config.datadog.metrics) == (True, True)
    for bad in ({"slack": {"webhook_url": "https://hooks.slack.com/x", "channel": "#soc2"}},
                {"teams": {}}, {"datadog": {"event": True}}, {"pagerduty": {}},
                {"slack": {"webhook_url": ""}}):
        with pytest.raises(ValidationError):
            AlertsConfig.model_validate(bad)
    assert SlackAlert.model_config["extra"] == "forbid"


def test_a_windowed_control_going_not_applicable_is_no_recovery() -> None:
    """github.changes_reviewed judges the pull requests merged since the last scan: when the
    failing ones leave the window it becomes not_applicable, which resolves nothing."""
    catalog = {"github.changes_reviewed": ("Changes are reviewed", "high", "github"), **CONTROLS}
    before = results({"github.changes_reviewed": "fail", **ALL_PASS}, catalog=catalog)
    after = results({"github.changes_reviewed": "not_applicable", **ALL_PASS}, catalog=catalog)
    assert recoveries(before, after) == []
    fixed = results({"github.changes_reviewed": "pass", **ALL_PASS}, catalog=catalog)
    assert [c.id for c in recoveries(before, fixed)] == ["github.changes_reviewed"]
