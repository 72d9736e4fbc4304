"""A Datadog API fake (v1 monitors and log indexes, v2 downtimes) for the demo and the tests.

Answers with the shapes of Datadog's OpenAPI description (DataDog/datadog-api-client-python
``.generator/schemas``) and its recorded responses: v1 monitors are a bare JSON array paged with
``page``/``page_size``; v2 downtimes are ``{"data": [...], "meta": {"page": {"total_filtered_count"}}}``
paged with ``page[offset]``/``page[limit]``; log indexes are ``{"indexes": [...]}``. Keys travel in
the ``DD-API-KEY`` and ``DD-APPLICATION-KEY`` headers; a bad key is ``403 {"errors": ["Forbidden"]}``.
Every answer carries ``X-RateLimit-*`` headers; over the limit is a 429.

The state is a plain :class:`DatadogWorld` that tests build with :func:`monitor`, :func:`downtime`
and :func:`log_index`.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable

from werkzeug.wrappers import Request, Response

from attest.demo import DemoSource
from attest.demo.http import LocalServer, window_hit
from attest.model import isoformat

# The application-key scope each endpoint needs (Datadog's x-permission in the OpenAPI files).
SCOPES = {
    "/api/v1/monitor": "monitors_read",
    "/api/v2/downtime": "monitors_downtime",
    "/api/v1/logs/config/indexes": "logs_read_config",
}


@dataclass
class DatadogWorld:
    api_key: str = "fake-dd-api-key"
    app_key: str = "fake-dd-app-key"
    app_key_scopes: set[str] | None = None      # None: an unscoped key (every read scope)
    monitors: list[dict[str, Any]] = field(default_factory=list)
    downtimes: list[dict[str, Any]] = field(default_factory=list)   # v2 downtime data objects
    indexes: list[dict[str, Any]] = field(default_factory=list)
    rate_limit: int = 1000                      # requests per period, per the X-RateLimit-* headers
    rate_period: int = 10
    throttle: int = 0                           # answer the next N requests with 429
    fail_pages: dict[str, int] = field(default_factory=dict)   # path -> page number answering 500
    clock: Callable[[], float] = time.monotonic
    _window: tuple[float, int] = (0.0, 0)


def _epoch(value: str | None) -> int | None:
    return int(datetime.fromisoformat(value).timestamp()) if value else None


def monitor(monitor_id: int, name: str, *, query: str, message: str, tags: list[str] | None = None,
            type: str = "query alert", silenced: dict[str, int | None] | None = None,
            created: str = "2024-01-15T09:30:00+00:00", priority: int | None = None
            ) -> dict[str, Any]:
    """A v1 Monitor object as ``GET /api/v1/monitor`` returns it (``priority``: 1-5 or null)."""
    return {
        "id": monitor_id, "org_id": 321813, "type": type, "name": name, "message": message,
        "tags": list(tags or []), "query": query,
        "options": {"notify_audit": False, "locked": False, "include_tags": True,
                    "thresholds": {"critical": 90.0}, "new_host_delay": 300,
                    "require_full_window": True, "notify_no_data": False,
                    "silenced": dict(silenced or {})},
        "multi": " by " in query, "created_at": _epoch(created) * 1000, "created": created,
        "modified": created, "deleted": None, "restricted_roles": None, "priority": priority,
        "overall_state_modified": created, "overall_state": "OK",
        "creator": {"name": "Ada Ops", "handle": "ada@acmerockets.example",
                    "email": "ada@acmerockets.example", "id": 1445416},
        "matching_downtimes": [],
    }


def downtime(downtime_id: str, now: datetime, *, start: datetime, end: datetime | None,
             scope: str = "*", monitor_id: int | None = None, monitor_tags: list[str] | None = None,
             message: str | None = None, canceled: datetime | None = None) -> dict[str, Any]:
    """A v2 downtime data object (one-time schedule) as ``GET /api/v2/downtime`` returns it."""
    if canceled is not None:
        status = "canceled"
    elif start > now:
        status = "scheduled"
    elif end is not None and end <= now:
        status = "ended"
    else:
        status = "active"
    identifier = ({"monitor_id": monitor_id} if monitor_id is not None
                  else {"monitor_tags": list(monitor_tags or ["*"])})
    created = isoformat(start - timedelta(minutes=5)).replace("Z", "+00:00")
    return {
        "type": "downtime", "id": downtime_id,
        "attributes": {
            "mute_first_recovery_notification": False,
            "canceled": isoformat(canceled).replace("Z", "+00:00") if canceled else None,
            "monitor_identifier": identifier,
            "schedule": {"start": isoformat(start).replace("Z", "+00:00"),
                         "end": isoformat(end).replace("Z", "+00:00") if end else None},
            "notify_end_types": ["expired"], "notify_end_states": ["no data", "warn", "alert"],
            "status": status, "scope": scope, "created": created, "display_timezone": "UTC",
            "message": message, "modified": created,
        },
        "relationships": {"monitor": {"data": ({"type": "monitors", "id": str(monitor_id)}
                                                if monitor_id is not None else None)},
                          "created_by": {"data": {"type": "users",
                                                  "id": "3ad549bf-eba0-11e9-a77a-0705486660d0"}}},
    }


def log_index(name: str, retention_days: int, *, query: str = "*",
              flex_days: int | None = None) -> dict[str, Any]:
    """A v1 LogsIndex object as ``GET /api/v1/logs/config/indexes`` returns it."""
    index = {"name": name, "filter": {"query": query}, "num_retention_days": retention_days,
             "daily_limit": 300000000, "is_rate_limited": False, "exclusion_filters": [],
             "daily_limit_reset": {"reset_time": "00:00", "reset_utc_offset": "+00:00"},
             "daily_limit_warning_threshold_percentage": 90.0, "tags": []}
    if flex_days is not None:
        index["num_flex_logs_retention_days"] = flex_days
    return index


def _downtime_matches(dt: dict[str, Any], mon: dict[str, Any]) -> bool:
    ident = dt["attributes"].get("monitor_identifier") or {}
    if "monitor_id" in ident:
        return ident["monitor_id"] == mon["id"]
    tags = ident.get("monitor_tags") or []
    return tags == ["*"] or all(t in mon.get("tags", []) for t in tags)


def _matching_downtimes(world: DatadogWorld, mon: dict[str, Any]) -> list[dict[str, Any]]:
    """The v1 ``matching_downtimes`` of a monitor: its active downtimes (v1 ids are integers)."""
    out = []
    for i, dt in enumerate(world.downtimes):
        attrs = dt["attributes"]
        if attrs["status"] == "active" and _downtime_matches(dt, mon):
            out.append({"id": 1000 + i, "start": _epoch(attrs["schedule"]["start"]),
                        "end": _epoch(attrs["schedule"].get("end")), "scope": [attrs["scope"]]})
    return out


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers or {},
                    content_type="application/json")


def _int(args: Any, name: str, default: int) -> int:
    value = args.get(name)
    return int(value) if value not in (None, "") else default


class FakeDatadog:
    """The WSGI app over a :class:`DatadogWorld`."""

    def __init__(self, world: DatadogWorld) -> None:
        self.world = world
        self._lock = threading.Lock()   # requests come in concurrently: count each once

    def _rate_headers(self) -> tuple[dict[str, str], bool]:
        w = self.world
        w._window, reset = window_hit(w._window, w.clock(), w.rate_period)
        count = w._window[1]
        headers = {"X-RateLimit-Limit": str(w.rate_limit), "X-RateLimit-Period": str(w.rate_period),
                   "X-RateLimit-Remaining": str(max(w.rate_limit - count, 0)),
                   "X-RateLimit-Reset": str(reset), "X-RateLimit-Name": "monitors"}
        return headers, count > w.rate_limit

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        request = Request(environ)
        return self.answer(request)(environ, start_response)

    def answer(self, request: Request) -> Response:
        w = self.world
        if (request.headers.get("DD-API-KEY") != w.api_key
                or request.headers.get("DD-APPLICATION-KEY") != w.app_key):
            return _json(403, {"errors": ["Forbidden"]})
        with self._lock:
            headers, over = self._rate_headers()
            throttled = w.throttle > 0 or over
            w.throttle = max(w.throttle - 1, 0) if throttled else w.throttle
        if throttled:
            headers["X-RateLimit-Remaining"] = "0"
            return _json(429, {"errors": [f"Rate limit of {w.rate_limit} requests in "
                                          f"{w.rate_period} seconds reached. Please try again "
                                          "later."]}, headers)
        needed = SCOPES.get(request.path)
        if request.method != "GET" or needed is None:
            return _json(404, {"errors": ["Not found"]}, headers)
        if w.app_key_scopes is not None and needed not in w.app_key_scopes:
            return _json(403, {"errors": ["Forbidden"]}, headers)
        try:
            if request.path == "/api/v1/monitor":
                return self._monitors(request, headers)
            if request.path == "/api/v2/downtime":
                return self._downtimes(request, headers)
            return _json(200, {"indexes": w.indexes}, headers)
        except ValueError as exc:
            return _json(400, {"errors": [f"Invalid parameter: {exc}"]}, headers)

    def _monitors(self, request: Request, headers: dict[str, str]) -> Response:
        args = request.args
        with_downtimes = args.get("with_downtimes") == "true"
        monitors = [dict(m, matching_downtimes=_matching_downtimes(self.world, m)
                         if with_downtimes else []) for m in self.world.monitors]
        if "page" in args:
            page, size = _int(args, "page", 0), _int(args, "page_size", 100)
            if size > 1000 or size < 1:
                raise ValueError("page_size must be between 1 and 1000")
            if self.world.fail_pages.get(request.path) == page:
                return _json(500, {"errors": ["Internal Server Error"]}, headers)
            monitors = monitors[page * size:(page + 1) * size]
        return _json(200, monitors, headers)

    def _downtimes(self, request: Request, headers: dict[str, str]) -> Response:
        offset, limit = _int(request.args, "page[offset]", 0), _int(request.args, "page[limit]", 30)
        if limit < 1:
            raise ValueError("page[limit] must be positive")
        if self.world.fail_pages.get(request.path) == offset // limit:
            return _json(500, {"errors": ["Internal Server Error"]}, headers)
        items = self.world.downtimes
        if request.args.get("current_only") == "true":
            items = [d for d in items if d["attributes"]["status"] == "active"]
        return _json(200, {"data": items[offset:offset + limit],
                           "meta": {"page": {"total_filtered_count": len(items)}}}, headers)


def acme_world(now: datetime) -> DatadogWorld:
    """Acme Rockets: a realistic mix with one failure seeded per control."""
    hour, day = timedelta(hours=1), timedelta(days=1)
    monitors = [
        monitor(40110001, "[prod] High CPU on {{host.name}}",
                query="avg(last_5m):avg:system.cpu.user{env:prod} by {host} > 90",
                message="CPU above 90% on {{host.name}}. @pagerduty-platform-oncall",
                tags=["team:platform", "env:prod"], priority=2),
        monitor(40110002, "Checkout API error rate",
                query="sum(last_10m):sum:trace.http.request.errors{service:checkout}.as_count() / "
                      "sum:trace.http.request.hits{service:checkout}.as_count() > 0.05",
                message="{{#is_alert}}Error rate above 5% @slack-payments-alerts{{/is_alert}}",
                tags=["team:payments", "service:checkout"]),
        monitor(40110003, "Disk almost full on launch pads",
                query="avg(last_15m):avg:system.disk.in_use{env:prod} by {host,device} > 0.9",
                message="Disk usage is above 90%. Please check.",   # notifies nobody
                tags=["team:platform"]),
        monitor(40110004, "Legacy telemetry queue depth",
                query="avg(last_10m):avg:rabbitmq.queue.messages{queue:telemetry} > 10000",
                message="Queue backing up. @ops@acmerockets.example",
                tags=["team:legacy"], silenced={"*": None}),          # muted forever
        monitor(40110005, "Errors in launch-control logs", type="log alert",
                query='logs("service:launch-control status:error").index("*")'
                      '.rollup("count").last("5m") > 50',
                message="Launch control is logging errors. @opsgenie-launch-control",
                tags=["team:flight", "service:launch-control"]),
        monitor(40110006, "<b>Télémétrie</b> ../ latency p95",
                query="avg(last_5m):avg:trace.grpc.server.duration.by.service.95p{service:télémétrie} > 2",
                message="Telemetry latency is high. @teams-Flight-Ops",
                tags=["team:flight"]),
        monitor(40110007, "Launch abort signal raised",
                query="max(last_1m):max:launch.abort.signal{env:prod} >= 1",
                message="{{#is_alert}}Abort signal on {{pad.name}} @pagerduty-launch-control"
                        "{{/is_alert}} @slack-flight-ops",
                tags=["team:flight", "env:prod"], priority=1),
        monitor(40110008, "Payment gateway down",
                query="avg(last_5m):avg:payments.gateway.up{env:prod} < 1",
                message="The payment gateway is down. @slack-payments-alerts",   # pages nobody
                tags=["team:payments", "severity:critical"]),
    ]
    downtimes = [
        downtime("b4613732-f84d-11ed-a766-da7ad0900002", now, start=now - hour, end=now + 2 * hour,
                 monitor_id=40110001, scope="host:pad-39a", message="Kernel patching on pad-39a"),
        downtime("f799770a-f918-11ed-8b48-da7ad0900002", now, start=now - 10 * day,
                 end=now - 9 * day, monitor_tags=["team:payments"], message="Checkout migration"),
        downtime("34953930-f9e3-11ed-85d4-da7ad0900002", now, start=now + 3 * day,
                 end=now + 3 * day + 4 * hour, monitor_tags=["*"], scope="env:staging",
                 message="Staging rebuild"),
    ]
    indexes = [log_index("main", 30), log_index("audit", 15, query="source:audit", flex_days=365),
               log_index("debug", 15, query="status:debug")]
    return DatadogWorld(api_key="acme-demo-dd-api-key", app_key="acme-demo-dd-app-key",
                        monitors=monitors, downtimes=downtimes, indexes=indexes)


EXPECTED = {
    "datadog.monitor_coverage": "fail",      # no security-signal monitor
    "datadog.monitors_notify": "fail",       # 40110003 names no @-handle
    "datadog.monitors_not_muted": "fail",    # 40110004 silenced with no end
    "datadog.log_retention": "fail",         # index "debug" keeps logs 15 days
    "datadog.critical_monitors_page": "fail",  # 40110008 (severity:critical) only posts to Slack
}


def start_demo(now: datetime) -> DemoSource:
    world = acme_world(now)
    server = LocalServer(FakeDatadog(world))
    url = server.start()
    return DemoSource(
        section={"site": "datadoghq.com", "host": url, "api_key": "${ATTEST_DEMO_DD_API_KEY}",
                 "app_key": "${ATTEST_DEMO_DD_APP_KEY}"},
        env={"ATTEST_DEMO_DD_API_KEY": world.api_key, "ATTEST_DEMO_DD_APP_KEY": world.app_key},
        expected=dict(EXPECTED), stop=server.stop, extra={"world": world, "server": server})
