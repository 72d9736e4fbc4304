"""Alerts on regressions: Slack, PagerDuty (Events API v2) and Datadog, once per scan.

:func:`send_alerts` is called once at the end of every scan. It compares the scan's results with
the previous scan's and tells each configured channel:

* **Slack** (``slack_sdk.webhook.WebhookClient``): one message per scan that has regressions
  (controls that passed last time and now fail or error) or that could not run; nothing otherwise.
* **PagerDuty** (Events API v2): one ``trigger`` per regressed control, deduplicated on
  ``attest:<store>:<control id>``; one ``resolve`` on that key in the scan where the control
  passes again; a scan that could not run is one ``trigger`` on ``attest:<store>:scan``.
* **Datadog** (``datadog-api-client``, with the ``datadog:`` source section's site/host and API key):
  one event per scan (``error`` with regressions or a failed scan, ``info`` otherwise) and gauges
  (``attest.controls``, ``attest.control.status``, ``attest.readiness``) via ``/api/v2/series``.

Never once per resource: a control with a thousand failing findings is one line, one trigger.
A channel that fails is one log line naming the channel and the error; it never raises and never
stops the other channels. No secret (the Slack webhook URL, the routing key, the Datadog keys)
appears in a log line or an outcome; the routing key travels only in the PagerDuty body, where
the protocol puts it.
"""
from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from attest.logs import quiet_logger
from attest.model import Status, isoformat
from collectors.base import https_or_loopback

if TYPE_CHECKING:  # only for the signature: the datadog section is read when the channel runs
    from attest.results import ControlRecord, Results
    from collectors.datadog.collector import Config as DatadogConfig

_default_log = logging.getLogger("attest.alerts")

TIMEOUT = 10.0          # seconds, for each HTTP request
RETRIES = 2             # extra attempts after a 429, a 5xx or a refused connection (never a timeout)
RETRY_BACKOFF = 0.5     # seconds: RETRY_BACKOFF * 2**n before retry n (tests set it to 0)
MAX_RETRY_WAIT = 5.0    # seconds: never wait longer than this, whatever Retry-After says
REASON_CHARS = 200      # a Change.reason is at most this long
SLACK_MAX_LISTED = 20   # controls listed one by one in a Slack message; the rest are counted
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

REGRESSED = ("fail", "error")
RECOVERED = ("pass", "excepted", "not_applicable")
OK_STATUSES = ("pass", "excepted", "not_applicable", "skipped")   # attest.control.status == 1
PD_SEVERITY = {"critical": "critical", "high": "error", "medium": "warning", "low": "warning"}


# -- configuration (the `alerts:` section) --------------------------------------------------------

def _check_url(value: str, what: str) -> None:
    """https, or http to a loopback address only (the one rule, collectors.base); the message
    never quotes the value."""
    https_or_loopback(value, what)


class SlackAlert(BaseModel):
    """``alerts.slack``: an incoming webhook. Its URL is a secret (whoever has it can post)."""
    # the URL is checked by a model validator with inputs hidden: no error message quotes it
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)
    webhook_url: SecretStr = Field(min_length=1)

    @model_validator(mode="after")
    def _webhook_url(self) -> "SlackAlert":
        _check_url(self.webhook_url.get_secret_value(), "webhook_url")
        return self


class PagerDutyAlert(BaseModel):
    """``alerts.pagerduty``: an Events API v2 integration (its routing key) and the enqueue URL."""
    model_config = ConfigDict(extra="forbid")
    routing_key: SecretStr = Field(min_length=1)
    url: str = "https://events.pagerduty.com/v2/enqueue"

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        _check_url(value, "url")
        return value


class DatadogAlert(BaseModel):
    """``alerts.datadog``: what to send with the ``datadog:`` source section's site and API key."""
    model_config = ConfigDict(extra="forbid")
    events: bool = True
    metrics: bool = True


class AlertsConfig(BaseModel):
    """The ``alerts:`` config section; every channel is optional."""
    model_config = ConfigDict(extra="forbid")
    slack: SlackAlert | None = None
    pagerduty: PagerDutyAlert | None = None
    datadog: DatadogAlert | None = None


# -- what changed -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Change:
    """One control whose status changed between two scans."""
    id: str
    title: str
    severity: str
    before: str            # status in the previous scan
    after: str             # status in this scan
    reason: str = ""       # first failing/erroring finding: "<resource>: <detail>", truncated


def _truncate(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cut(text: str, limit: int) -> str:
    """Like _truncate, keeping line breaks (multi-line message bodies)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _controls(results: Results | None) -> list[ControlRecord]:
    return list(results.controls) if results is not None else []


def _reason(control: ControlRecord) -> str:
    for finding in control.findings:
        if finding.status in REGRESSED:
            resource, detail = finding.resource, finding.detail
            return _truncate(f"{resource}: {detail}" if detail else resource, REASON_CHARS)
    return ""


def _changes(previous: Results | None, current: Results, was: tuple[str, ...],
             now: tuple[str, ...],
             explained_by: Callable[[ControlRecord, ControlRecord], ControlRecord]) -> list[Change]:
    if previous is None:
        return []
    before = {c.id: c for c in _controls(previous)}
    out = []
    for control in _controls(current):
        old = before.get(control.id)
        if old is not None and old.status in was and control.status in now:
            out.append(Change(id=control.id, title=control.title, severity=control.severity,
                              before=old.status.value, after=control.status.value,
                              reason=_reason(explained_by(old, control))))
    return out


def regressions(previous: Results | None, current: Results) -> list[Change]:
    """Controls that were ``pass`` in ``previous`` and are ``fail`` or ``error`` in ``current``
    (none when there is no previous scan). The reason is this scan's first failing finding."""
    return _changes(previous, current, ("pass",), REGRESSED, lambda old, new: new)


def recoveries(previous: Results | None, current: Results) -> list[Change]:
    """Controls that were ``fail`` or ``error`` in ``previous`` and are ``pass``, ``excepted`` or
    ``not_applicable`` now (``skipped`` is not a recovery: nothing was judged). A control that
    judges a look-back window (catalog ``population: windowed``, e.g. the pull requests merged
    since the last scan) going ``not_applicable`` is no recovery either: the failing events only
    left the window. The reason is what the previous scan found wrong."""
    from controls import load_catalog
    windowed = {c.id for c in load_catalog() if c.population == "windowed"}
    return [c for c in _changes(previous, current, REGRESSED, RECOVERED, lambda old, new: old)
            if not (c.id in windowed and c.after == Status.NOT_APPLICABLE.value)]


# -- one scan's news, as every channel sees it --------------------------------------------------

@dataclass
class _News:
    store: str
    current: Results | None
    scan_failure: str | None
    regressed: list[Change]
    recovered: list[Change]
    report_url: str | None
    failing: dict[str, int] = field(default_factory=dict)   # control id -> failing findings

    @property
    def bundle(self) -> str:
        return str(self.current.scan.bundle or "") if self.current is not None else ""

    @property
    def alarming(self) -> bool:
        return bool(self.regressed or self.scan_failure)

    @property
    def link(self) -> str | None:
        url = self.report_url
        return url if url and urlparse(url).scheme in ("http", "https") else None


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _dedup_key(store: str, suffix: str) -> str:
    """``attest:<store>:<suffix>``; a store name too long for PagerDuty's 255 characters is cut
    and given a hash, so the key stays unique and stable."""
    key = f"attest:{store}:{suffix}"
    if len(key) <= 255:
        return key
    digest = hashlib.sha256(store.encode()).hexdigest()[:12]
    room = max(255 - len(f"attest:~{digest}:{suffix}"), 0)
    return f"attest:{store[:room]}~{digest}:{suffix}"[:255]


# -- retries, shared by requests (PagerDuty) and datadog-api-client (both urllib3) ---------------

def _urllib3_retry() -> Any:
    from urllib3.util.retry import Retry

    class _CappedRetry(Retry):
        """429/5xx and refused connections, a few times; Retry-After (or Datadog's
        X-RateLimit-Reset) is honoured but never waited on for more than MAX_RETRY_WAIT."""

        def get_retry_after(self, response: Any) -> float | None:
            value = response.headers.get("Retry-After") or response.headers.get("X-RateLimit-Reset")
            if value is None:
                return None
            try:
                return min(max(float(value), 0.0), MAX_RETRY_WAIT)
            except ValueError:
                return None

    # read=0: a request that timed out may have been delivered; sending it again would only
    # double the wait. allowed_methods=None: POST is retried (PagerDuty dedups on dedup_key).
    return _CappedRetry(total=RETRIES, connect=RETRIES, read=0, status=RETRIES, other=0,
                        status_forcelist=RETRY_STATUSES, allowed_methods=None,
                        backoff_factor=RETRY_BACKOFF, backoff_max=MAX_RETRY_WAIT,
                        raise_on_status=False, raise_on_redirect=False)


def _describe(exc: BaseException) -> str:
    """``Outer: innermost cause``: requests' ConnectionError wraps urllib3's MaxRetryError wraps
    the NewConnectionError that says what happened ("Connection refused")."""
    root, seen = exc, set()
    while id(root) not in seen:
        seen.add(id(root))
        reason = getattr(root, "reason", None)
        first = root.args[0] if root.args else None
        inner = (reason if isinstance(reason, BaseException)
                 else first if isinstance(first, BaseException) else root.__cause__)
        if inner is None:
            break
        root = inner
    return _truncate(f"{type(exc).__name__}: {root or type(root).__name__}", 300)


def _http_failure(status: int, body: Any) -> str:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    text = _truncate(body or "", 200)
    return f"HTTP {status}: {text}" if text else f"HTTP {status}"


# -- Slack --------------------------------------------------------------------------------------

def _quiet_logger() -> logging.Logger:
    """The logger handed to slack_sdk: it logs the webhook URL (a secret) at DEBUG and, when it
    retries, at INFO, so nothing it says may reach a handler."""
    return quiet_logger("attest.alerts.slack_sdk")


def _slack_retry_handler() -> Any:
    from urllib.error import HTTPError, URLError

    from slack_sdk.http_retry.handler import RetryHandler

    class _Retry(RetryHandler):
        """429 and 5xx answers and refused connections, RETRIES times, waits capped."""

        def _can_retry(self, *, state: Any, request: Any, response: Any = None,
                       error: Any = None) -> bool:
            if response is not None:
                return response.status_code in RETRY_STATUSES
            if isinstance(error, HTTPError) or not isinstance(error, URLError):
                return False
            return not isinstance(error.reason, TimeoutError)   # a timeout may have been posted

        def prepare_for_next_attempt(self, *, state: Any, request: Any, response: Any = None,
                                     error: Any = None) -> None:
            wait = RETRY_BACKOFF * 2 ** state.current_attempt
            headers = {k.lower(): v for k, v in ((response.headers if response else None) or {}).items()}
            after = headers.get("retry-after")
            if after:
                try:
                    wait = float(after[0] if isinstance(after, list) else after)
                except ValueError:
                    pass
            time.sleep(min(max(wait, 0.0), MAX_RETRY_WAIT))
            state.next_attempt_requested = True
            state.increment_current_attempt()

    return _Retry(max_retry_count=RETRIES)


def _mrkdwn(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_message(news: _News) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, Block Kit blocks). Block Kit limits: a header's text 150 characters, a
    section's 3000, 50 blocks: at most SLACK_MAX_LISTED controls are listed, the rest counted."""
    store, n = news.store, len(news.regressed)
    where = f"store {store}" + (f", bundle {news.bundle}" if news.bundle else "")
    if news.scan_failure:
        heading = f"attest: the scan could not run ({store})"
    else:
        heading = f"attest: {_plural(n, 'control')} regressed ({store})"
    lines: list[str] = []
    sections: list[dict[str, Any]] = []
    if news.scan_failure:
        lines.append(f"attest: the scan could not run for {where}: {news.scan_failure}")
        sections.append({"type": "section", "text": {"type": "mrkdwn", "text": _cut(
            f":x: *The scan could not run:* {_mrkdwn(news.scan_failure)}", 3000)}})
    listed = news.regressed[:SLACK_MAX_LISTED]
    if listed:
        ids = ", ".join(f"{c.id} ({c.before} -> {c.after})" for c in listed)
        more = f" and {n - len(listed)} more" if n > len(listed) else ""
        lines.append(f"attest: {_plural(n, 'control')} regressed in {where}: {ids}{more}")
    for c in listed:
        failing = news.failing.get(c.id, 0)
        text = (f":rotating_light: *`{_mrkdwn(c.id)}`* {_mrkdwn(c.title)}\n"
                f"{c.before} → *{c.after}*" + (f" · {c.severity}" if c.severity else "")
                + (f" · {_plural(failing, 'failing finding')}" if failing else ""))
        if c.reason:
            text += f"\n> {_mrkdwn(c.reason)}"
        sections.append({"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, 3000)}})
    if n > len(listed):
        sections.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"…and {n - len(listed)} more regressed controls"}]})
    context = f"Store: `{_mrkdwn(store)}`" + (f" · Bundle: `{_mrkdwn(news.bundle)}`" if news.bundle else "")
    if news.link:
        context += f" · <{news.link}|Report>"
    blocks = ([{"type": "header", "text": {"type": "plain_text", "text": _truncate(heading, 150)}}]
              + sections
              + [{"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(context, 3000)}]}])
    return _cut("\n".join(lines), 3000), blocks


def _send_slack(channel: SlackAlert, news: _News, datadog: Any) -> str:
    if not news.alarming:
        return "nothing to send"
    from slack_sdk.webhook import WebhookClient

    text, blocks = _slack_message(news)
    client = WebhookClient(channel.webhook_url.get_secret_value(), timeout=TIMEOUT,  # type: ignore[arg-type]
                           logger=_quiet_logger(), retry_handlers=[_slack_retry_handler()])
    response = client.send(text=text, blocks=blocks, unfurl_links=False, unfurl_media=False)
    if response.status_code != 200:
        return f"failed: {_http_failure(response.status_code, response.body)}"
    return "sent"


# -- PagerDuty ----------------------------------------------------------------------------------
# Sent with a `requests` session and a urllib3 retry adapter, not the `pagerduty` package: its
# EventsApiV2Client (7.x) refuses any base URL that is not https:// (so no loopback receiver),
# always appends /v2/enqueue to a base URL where our `url` is the full enqueue URL, retries 429
# without bound and brings in a second HTTP stack (httpx2). Events v2 is one POST of one JSON body.

def _pd_events(channel: PagerDutyAlert, news: _News) -> list[dict[str, Any]]:
    key = channel.routing_key.get_secret_value()
    source = f"attest:{news.store}"
    extra: dict[str, Any] = {"client": "attest"}
    if news.link:
        extra.update(client_url=news.link, links=[{"href": news.link, "text": "attest report"}])
    scan = news.current.scan if news.current is not None else None
    timestamp = isoformat(scan.finished_at) if scan is not None and scan.finished_at else None
    controls = {c.id: c for c in _controls(news.current)}
    events: list[dict[str, Any]] = []
    if news.scan_failure:
        events.append({"routing_key": key, "event_action": "trigger",
                       "dedup_key": _dedup_key(news.store, "scan"),
                       "payload": {"summary": _truncate(f"attest: the scan could not run for "
                                                        f"{news.store}: {news.scan_failure}", 1024),
                                   "source": source, "severity": "error", "component": "scan",
                                   "class": "attest scan failure",
                                   "custom_details": {"store": news.store,
                                                      "reason": news.scan_failure}},
                       **extra})
    for c in news.regressed:
        control = controls.get(c.id)
        payload: dict[str, Any] = {
            "summary": _truncate(f"attest: {c.id} {c.before} -> {c.after} in {news.store}: "
                                 f"{c.title}", 1024),
            "source": source, "severity": PD_SEVERITY.get(c.severity, "error"),
            "component": c.id, "group": (control.source if control else "") or c.id.split(".")[0],
            "class": "SOC 2 control regression",
            "custom_details": {"control": c.id, "title": c.title, "severity": c.severity,
                               "before": c.before, "after": c.after, "reason": c.reason,
                               "failing_findings": news.failing.get(c.id, 0),
                               "criteria": list(control.criteria) if control else [],
                               "store": news.store, "bundle": news.bundle,
                               "scan_id": scan.id if scan is not None else ""}}
        if timestamp:
            payload["timestamp"] = timestamp
        events.append({"routing_key": key, "event_action": "trigger",
                       "dedup_key": _dedup_key(news.store, c.id), "payload": payload, **extra})
    for c in news.recovered:
        events.append({"routing_key": key, "event_action": "resolve",
                       "dedup_key": _dedup_key(news.store, c.id)})
    return events


def _send_pagerduty(channel: PagerDutyAlert, news: _News, datadog: Any) -> str:
    events = _pd_events(channel, news)
    if not events:
        return "nothing to send"
    import requests
    from requests.adapters import HTTPAdapter

    adapter = HTTPAdapter(max_retries=_urllib3_retry())
    with requests.Session() as session:
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        for sent, event in enumerate(events):
            what = f"{event['event_action']} {event['dedup_key']}"
            try:
                response = session.post(channel.url, json=event, timeout=TIMEOUT,
                                        allow_redirects=False)
            except requests.RequestException as exc:
                return f"failed: {what}: {_describe(exc)} ({sent} of {len(events)} events sent)"
            if not 200 <= response.status_code < 300:
                return (f"failed: {what}: {_http_failure(response.status_code, response.content)} "
                        f"({sent} of {len(events)} events sent)")
    triggers = sum(e["event_action"] == "trigger" for e in events)
    return f"sent ({_plural(triggers, 'trigger')}, {_plural(len(events) - triggers, 'resolve')})"


# -- Datadog ------------------------------------------------------------------------------------

def _dd_event(news: _News) -> dict[str, Any]:
    store = news.store
    lines: list[str] = []
    if news.scan_failure:
        title = f"attest: the scan could not run ({store})"
        lines.append(f"The scan could not run: {news.scan_failure}")
    elif news.regressed:
        title = (f"attest: {_plural(len(news.regressed), 'control')} regressed ({store}): "
                 + ", ".join(c.id for c in news.regressed))
    else:
        title = f"attest: scan finished ({store}), no regression"
    for c in news.regressed:
        line = f"- **{c.id}** {c.title}: {c.before} → {c.after}" + (f" ({c.severity})" if c.severity else "")
        lines.append(line + (f" — {c.reason}" if c.reason else ""))
    if news.recovered:
        lines.append("Passing again: " + ", ".join(f"{c.id} ({c.before} → {c.after})"
                                                    for c in news.recovered))
    if news.current is not None:
        summary = news.current.summary
        counts = ", ".join(f"{n} {s.value}" for s, n in summary.counts.items() if n)
        readiness = summary.readiness
        lines.append(f"Controls: {counts or 'none'}"
                     + (f"; readiness {readiness}%" if readiness is not None else ""))
    lines.append(f"Store: {store}" + (f"; bundle: {news.bundle}" if news.bundle else ""))
    if news.link:
        lines.append(f"[Report]({news.link})")
    body = "\n".join(lines)
    text = "%%% \n" + _cut(body, 3980) + "\n %%%"   # Datadog markdown; text is at most 4000
    return {"title": _truncate(title, 100), "text": text,
            "alert_type": "error" if news.alarming else "info",
            "tags": ["source:attest", f"store:{store}"],
            "aggregation_key": _truncate(f"attest:{store}", 100)}


def _dd_series(news: _News, now: int) -> list[dict[str, Any]]:
    results = news.current
    if results is None:
        return []
    summary = results.summary
    store_tags = ["source:attest", f"store:{news.store}"]

    def gauge(metric: str, value: float, tags: list[str], unit: str | None = None) -> dict[str, Any]:
        series: dict[str, Any] = {"metric": metric, "type": "gauge", "tags": tags + store_tags,
                                  "points": [{"timestamp": now, "value": float(value)}]}
        if unit:
            series["unit"] = unit
        return series

    out = [gauge("attest.controls", n, [f"status:{s.value}"]) for s, n in summary.counts.items()]
    out += [gauge("attest.control.status", 1 if c.status in OK_STATUSES else 0,
                  [f"control:{c.id}", f"status:{c.status.value}"]) for c in results.controls]
    if summary.readiness is not None:
        out.append(gauge("attest.readiness", summary.readiness, [], "percent"))
    return out


def _dd_call(call: Callable[[], Any]) -> str | None:
    """None when Datadog accepted it, else what went wrong."""
    from datadog_api_client.exceptions import ApiException
    try:
        response = call()
    except ApiException as exc:
        return _http_failure(exc.status, exc.body) if exc.status else _describe(exc)
    except Exception as exc:  # refused, timeout, TLS, too many retries
        return _describe(exc)
    try:
        response.data  # preload_content=False: read the body so the connection can be reused
    finally:
        response.release_conn()
    return None


def _send_datadog(channel: DatadogAlert, news: _News, datadog: "DatadogConfig | None") -> str:
    if datadog is None:
        return ("failed: alerts.datadog is set but there is no datadog: section "
                "(it gives the site or host and the api_key)")
    parts = []
    if channel.events:
        parts.append("events")
    if channel.metrics and news.current is not None:
        parts.append("metrics")
    if not parts:
        return "nothing to send"
    from datadog_api_client import ApiClient, Configuration
    from datadog_api_client.v1.api.events_api import EventsApi
    from datadog_api_client.v1.model.event_alert_type import EventAlertType
    from datadog_api_client.v1.model.event_create_request import EventCreateRequest
    from datadog_api_client.v2.api.metrics_api import MetricsApi
    from datadog_api_client.v2.model.metric_intake_type import MetricIntakeType
    from datadog_api_client.v2.model.metric_payload import MetricPayload
    from datadog_api_client.v2.model.metric_point import MetricPoint
    from datadog_api_client.v2.model.metric_series import MetricSeries

    from collectors.datadog.collector import base_url

    # As collectors/datadog.py configures it (site or host, raw responses), with only the API key:
    # events and series take no application key, so it is never sent.
    configuration = Configuration(
        host=base_url(datadog), api_key={"apiKeyAuth": datadog.api_key.get_secret_value()},
        preload_content=False, request_timeout=TIMEOUT, retry_policy=_urllib3_retry())
    failures = []
    with ApiClient(configuration) as client:
        if "events" in parts:
            event = _dd_event(news)
            request = EventCreateRequest(title=event["title"], text=event["text"],
                                         alert_type=EventAlertType(event["alert_type"]),
                                         tags=event["tags"], aggregation_key=event["aggregation_key"])
            problem = _dd_call(lambda: EventsApi(client).create_event(body=request))
            if problem:
                failures.append(f"event: {problem}")
        if "metrics" in parts:
            series = [MetricSeries(metric=s["metric"], type=MetricIntakeType.GAUGE, tags=s["tags"],
                                   points=[MetricPoint(**p) for p in s["points"]],
                                   **({"unit": s["unit"]} if "unit" in s else {}))
                      for s in _dd_series(news, int(time.time()))]
            problem = _dd_call(lambda: MetricsApi(client).submit_metrics(body=MetricPayload(series=series)))
            if problem:
                failures.append(f"metrics: {problem}")
    if failures:
        return "failed: " + "; ".join(failures)
    return "sent (" + " and ".join("1 event" if p == "events" else f"{len(series)} series"
                                   for p in parts) + ")"


# -- the entry point ----------------------------------------------------------------------------

def _secrets(config: AlertsConfig, datadog: Any) -> list[str]:
    """Every secret string a message could carry, longest first (so a URL goes before its path)."""
    found: list[str] = []
    if config.slack is not None:
        url = config.slack.webhook_url.get_secret_value()
        parsed = urlparse(url)
        found += [url, parsed.path, parsed.path.rstrip("/").rsplit("/", 1)[-1], parsed.query]
    if config.pagerduty is not None:
        found.append(config.pagerduty.routing_key.get_secret_value())
    for name in ("api_key", "app_key"):
        value = getattr(datadog, name, None)
        if isinstance(value, SecretStr):
            found.append(value.get_secret_value())
    return sorted({s for s in found if s and len(s) >= 6}, key=len, reverse=True)


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


SENDERS: dict[str, Callable[[Any, _News, Any], str]] = {
    "slack": _send_slack, "pagerduty": _send_pagerduty, "datadog": _send_datadog}


def send_alerts(config: AlertsConfig | None, *, current: Results | None,
                previous: Results | None, store: str,
                datadog: "DatadogConfig | None" = None, scan_failure: str | None = None,
                report_url: str | None = None,
                log: logging.Logger | None = None) -> dict[str, str]:
    """Tell each configured channel about this scan; returns channel -> outcome ("sent ...",
    "nothing to send", "failed: ..."). Never raises: a failing channel is one log line.

    ``current`` is this scan's results (None when the scan could not run: ``scan_failure`` then
    says why in one line), ``previous`` the previous scan's (None for the first scan), ``store``
    names the output store in messages and dedup keys, ``datadog`` is the ``datadog:`` source
    section (site/host and api_key) that ``alerts.datadog`` sends with."""
    logger = log or _default_log
    if config is None:
        return {}
    channels = {name: getattr(config, name) for name in SENDERS if getattr(config, name) is not None}
    try:
        secrets = _secrets(config, datadog)
    except Exception:  # a datadog section of the wrong shape: scrub what we can
        secrets = _secrets(config, None)
    try:
        if current is None and not scan_failure:
            scan_failure = "the scan produced no results"
        regressed = regressions(previous, current) if current is not None else []
        recovered = recoveries(previous, current) if current is not None else []
        failing = {c.id: len(c.failing()) for c in _controls(current)}
        news = _News(store=store, current=current, scan_failure=scan_failure, regressed=regressed,
                     recovered=recovered, report_url=report_url, failing=failing)
    except Exception as exc:  # results of an unexpected shape: say so on every channel's line
        news, problem = None, f"failed: could not read the scan results: {_describe(exc)}"
    outcomes: dict[str, str] = {}
    for name, channel in channels.items():
        if news is None:
            outcome = problem
        else:
            try:
                outcome = SENDERS[name](channel, news, datadog)
            except Exception as exc:
                outcome = f"failed: {_describe(exc)}"
        outcome = _scrub(outcome, secrets)
        outcomes[name] = outcome
        if outcome.startswith("failed"):
            logger.warning("alerts: %s %s", name, outcome)
        else:
            logger.info("alerts: %s: %s", name, outcome)
    return outcomes
