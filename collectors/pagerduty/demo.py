"""A PagerDuty REST API v2 fake (https, on 127.0.0.1) for the demo and the tests.

Answers with the shapes of PagerDuty's OpenAPI description (PagerDuty/api-schema,
``reference/REST/openapiv3.json``): lists are wrapped in their resource's name with classic
pagination (``limit`` at most 100, ``offset``, ``more``, ``total`` only with ``total=true``);
``GET /schedules/{id}?since=&until=`` renders ``final_schedule.rendered_schedule_entries``
clipped to the range; ``GET /users?include[]=notification_rules`` expands each user's
notification rules; ``GET /incidents`` filters by ``since``/``until`` (creation time),
``urgencies[]`` and ``statuses[]``; log entries are listed per incident or for the account.
The token travels as ``Authorization: Token token=...``; a bad one is ``401``, a refused read
``403``, both with PagerDuty's ``{"error": {"message", "code"}}`` body. Every answer carries
``ratelimit-limit``/``ratelimit-remaining``/``ratelimit-reset`` (seconds); over the limit is 429.

It serves https only, as the ``pagerduty`` client accepts nothing else: with a certificate from a
throwaway CA made when it starts (:mod:`attest.demo.tls`), which the client trusts through the
``ca_file`` setting. The state is a plain :class:`PagerDutyWorld` that tests build with
:func:`service`, :func:`escalation_policy`, :func:`schedule`, :func:`user` and :func:`incident`.
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
from attest.demo.tls import DemoTls, make_tls
from attest.model import isoformat, parse_time

API = "https://api.pagerduty.com"
WEB = "https://acme-rockets.pagerduty.com"
MAX_LIMIT = 100


def _ref(kind: str, rid: str, summary: str, path: str, web: str | None = None) -> dict[str, Any]:
    return {"id": rid, "type": f"{kind}_reference", "summary": summary,
            "self": f"{API}/{path}/{rid}", "html_url": f"{WEB}/{web or path}/{rid}"}


def _error(status: int, message: str, code: int, errors: list[str] | None = None) -> Response:
    body: dict[str, Any] = {"error": {"message": message, "code": code}}
    if errors:
        body["error"]["errors"] = errors
    return Response(json.dumps(body), status=status, content_type="application/json")


# -- the objects, as the API returns them ------------------------------------------------------

def service(sid: str, name: str, policy: tuple[str, str], *, status: str = "active",
            created: str = "2025-02-03T10:00:00Z") -> dict[str, Any]:
    """A Service object (``GET /services``); ``policy`` is the escalation policy's (id, name)."""
    return {
        "id": sid, "summary": name, "type": "service", "self": f"{API}/services/{sid}",
        "html_url": f"{WEB}/service-directory/{sid}", "name": name, "description": None,
        "auto_resolve_timeout": 14400, "acknowledgement_timeout": 1800, "created_at": created,
        "status": status, "last_incident_timestamp": None,
        "alert_creation": "create_alerts_and_incidents",
        "alert_grouping_parameters": {"type": None},
        "integrations": [],
        "escalation_policy": _ref("escalation_policy", policy[0], policy[1],
                                  "escalation_policies"),
        "teams": [], "incident_urgency_rule": {"type": "constant", "urgency": "high"},
        "support_hours": None, "scheduled_actions": [],
        "auto_pause_notifications_parameters": {"enabled": False, "timeout": None},
    }


def target(kind: str, tid: str, summary: str) -> dict[str, Any]:
    """An escalation target: ``kind`` is ``user`` or ``schedule``."""
    return _ref(kind, tid, summary, f"{kind}s")


def escalation_policy(pid: str, name: str, rules: list[list[dict[str, Any]]], *,
                      num_loops: int = 0, services: list[tuple[str, str]] = ()) -> dict[str, Any]:
    """An EscalationPolicy object: ``rules`` is each level's targets, first level first."""
    return {
        "id": pid, "type": "escalation_policy", "summary": name,
        "on_call_handoff_notifications": "if_has_services",
        "self": f"{API}/escalation_policies/{pid}", "html_url": f"{WEB}/escalation_policies/{pid}",
        "name": name, "description": "",
        "escalation_rules": [{"id": f"R{pid[1:]}{i}", "escalation_delay_in_minutes": 30,
                              "targets": list(targets)} for i, targets in enumerate(rules)],
        "services": [_ref("service", sid, sname, "services", "service-directory")
                     for sid, sname in services],
        "num_loops": num_loops, "teams": [],
    }


def user(uid: str, name: str, email: str, *, rules: list[tuple[str, str, int]] = (),
         role: str = "user") -> dict[str, Any]:
    """A User object with its notification rules expanded (``include[]=notification_rules``);
    ``rules`` are (urgency, contact method type, start delay in minutes)."""
    methods = {kind: f"C{uid[1:5]}{i}" for i, kind in enumerate(sorted({r[1] for r in rules}))}
    return {
        "id": uid, "type": "user", "summary": name, "self": f"{API}/users/{uid}",
        "html_url": f"{WEB}/users/{uid}", "name": name, "email": email, "time_zone": "Etc/UTC",
        "color": "green", "role": role, "avatar_url": None, "description": None,
        "invitation_sent": False, "job_title": None, "teams": [],
        "contact_methods": [{"id": mid, "type": f"{kind}_contact_method_reference",
                             "summary": kind.title(),
                             "self": f"{API}/users/{uid}/contact_methods/{mid}"}
                            for kind, mid in methods.items()],
        "notification_rules": [{
            "id": f"N{uid[1:5]}{i}", "type": "assignment_notification_rule",
            "summary": f"{delay} minutes: channel {methods[kind]}",
            "self": f"{API}/users/{uid}/notification_rules/N{uid[1:5]}{i}", "html_url": None,
            "start_delay_in_minutes": delay, "created_at": "2025-02-03T10:00:00Z",
            "contact_method": {"id": methods[kind], "type": f"{kind}_contact_method_reference",
                               "summary": kind.title(),
                               "self": f"{API}/users/{uid}/contact_methods/{methods[kind]}",
                               "html_url": None},
            "urgency": urgency} for i, (urgency, kind, delay) in enumerate(rules)],
    }


def _as_reference(rule: dict[str, Any]) -> dict[str, Any]:
    return {"id": rule["id"], "type": "assignment_notification_rule_reference",
            "summary": rule["summary"], "self": rule["self"], "html_url": None}


@dataclass
class Rotation:
    """A schedule's final layer as a rotation: ``users`` take turns of ``hours`` from ``anchor``,
    forever, except during the ``gaps`` (absolute intervals with nobody on call)."""
    users: list[tuple[str, str]]                  # (id, name), in turn order
    anchor: datetime
    hours: int = 168
    gaps: list[tuple[datetime, datetime]] = field(default_factory=list)

    def entries(self, since: datetime, until: datetime) -> list[tuple[datetime, datetime, tuple[str, str]]]:
        out = []
        turn = timedelta(hours=self.hours)
        n = int((since - self.anchor) // turn)
        start = self.anchor + n * turn
        while start < until:
            end = start + turn
            who = self.users[n % len(self.users)]
            pieces = [(max(start, since), min(end, until))]
            for gap_start, gap_end in self.gaps:
                pieces = [p for a, b in pieces for p in ((a, min(b, gap_start)), (max(a, gap_end), b))
                          if p[0] < p[1]]
            out.extend((a, b, who) for a, b in pieces if a < b)
            start, n = end, n + 1
        return out


def schedule(sid: str, name: str, rotation: Rotation, *,
             policies: list[tuple[str, str]] = ()) -> dict[str, Any]:
    """A Schedule object without its rendered entries (the fake renders them per request)."""
    return {
        "id": sid, "type": "schedule", "summary": name, "self": f"{API}/schedules/{sid}",
        "html_url": f"{WEB}/schedules/{sid}", "name": name, "time_zone": "Etc/UTC",
        "description": None,
        "escalation_policies": [_ref("escalation_policy", pid, pname, "escalation_policies")
                                for pid, pname in policies],
        "users": [_ref("user", uid, uname, "users") for uid, uname in rotation.users],
        "teams": [], "_rotation": rotation,
    }


def _render(obj: dict[str, Any], since: datetime, until: datetime) -> dict[str, Any]:
    rotation: Rotation = obj["_rotation"]
    span = (until - since).total_seconds() or 1
    entries = rotation.entries(since, until)
    covered = sum((b - a).total_seconds() for a, b, _ in entries)
    rendered = [{"start": isoformat(a), "end": isoformat(b),
                 "user": _ref("user", who[0], who[1], "users")} for a, b, who in entries]
    layer = {"name": "Layer 1", "id": f"L{obj['id'][1:]}", "rendered_schedule_entries": rendered,
             "rendered_coverage_percentage": round(100 * covered / span, 1),
             "start": isoformat(rotation.anchor), "rotation_virtual_start": isoformat(rotation.anchor),
             "rotation_turn_length_seconds": rotation.hours * 3600,
             "users": [{"user": _ref("user", uid, uname, "users")} for uid, uname in rotation.users],
             "restrictions": []}
    out = {k: v for k, v in obj.items() if not k.startswith("_")}
    out.update(schedule_layers=[layer],
               overrides_subschedule={"name": "Overrides", "rendered_schedule_entries": [],
                                      "rendered_coverage_percentage": 0},
               final_schedule={"name": "Final Schedule", "rendered_schedule_entries": rendered,
                               "rendered_coverage_percentage": layer["rendered_coverage_percentage"]})
    return out


def incident(iid: str, number: int, title: str, created: datetime, *,
             service_ref: tuple[str, str], policy_ref: tuple[str, str],
             acked: tuple[timedelta, tuple[str, str]] | None = None,
             resolved: tuple[timedelta, tuple[str, str] | None] | None = None,
             urgency: str = "high") -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """An Incident object and its log entries (trigger, notify, acknowledge, resolve).
    ``acked``/``resolved``: (after how long, by which user (id, name); None: by the service)."""
    status = "resolved" if resolved else "acknowledged" if acked else "triggered"
    svc = _ref("service", service_ref[0], service_ref[1], "services", "service-directory")
    entries: list[dict[str, Any]] = []

    def entry(kind: str, at: datetime, agent: dict[str, Any], summary: str,
              **extra: Any) -> dict[str, Any]:
        eid = f"Q{iid[1:]}{len(entries):02d}"
        e = {"id": eid, "type": kind, "summary": summary,
             "self": f"{API}/log_entries/{eid}?incident_id={iid}",
             "html_url": f"{WEB}/incidents/{iid}/log_entries/{eid}", "created_at": isoformat(at),
             "agent": agent, "channel": {"type": "api" if kind == "trigger_log_entry" else "web_ui"},
             "service": svc, "incident": _ref("incident", iid, f"[#{number}] {title}", "incidents"),
             "teams": [], "contexts": [], **extra}
        entries.append(e)
        return e

    entry("trigger_log_entry", created, svc, "Triggered through the API",
          event_details={"description": title})
    entry("notify_log_entry", created + timedelta(seconds=5), svc, "Notified on-call by SMS",
          user=None)
    last = created
    acknowledgements = []
    if acked:
        at, who = created + acked[0], acked[1]
        agent = _ref("user", who[0], who[1], "users")
        entry("acknowledge_log_entry", at, agent, f"Acknowledged by {who[1]}",
              acknowledgement_timeout=1800)
        last = at
        if not resolved:
            acknowledgements = [{"at": isoformat(at), "acknowledger": agent}]
    resolved_at = None
    if resolved:
        at = created + resolved[0]
        agent = _ref("user", resolved[1][0], resolved[1][1], "users") if resolved[1] else svc
        entry("resolve_log_entry", at, agent, "Resolved", channel={"type": "web_ui"})
        last, resolved_at = at, isoformat(at)
    obj = {
        "id": iid, "type": "incident", "summary": f"[#{number}] {title}",
        "self": f"{API}/incidents/{iid}", "html_url": f"{WEB}/incidents/{iid}",
        "incident_number": number, "title": title, "description": title,
        "created_at": isoformat(created), "updated_at": isoformat(last), "status": status,
        "incident_key": f"{iid.lower()}-key", "service": svc, "assignments": [],
        "assigned_via": "escalation_policy", "last_status_change_at": isoformat(last),
        "resolved_at": resolved_at,
        "first_trigger_log_entry": {k: v for k, v in entries[0].items()
                                    if k in ("id", "summary", "self", "html_url")}
                                   | {"type": "trigger_log_entry_reference"},
        "alert_counts": {"all": 1, "triggered": 0 if resolved else 1, "resolved": 1 if resolved else 0},
        "is_mergeable": True, "incident_type": {"name": "incident_default"},
        "escalation_policy": _ref("escalation_policy", policy_ref[0], policy_ref[1],
                                  "escalation_policies"),
        "teams": [], "pending_actions": [], "acknowledgements": acknowledgements,
        "alert_grouping": None, "last_status_change_by": entries[-1]["agent"], "priority": None,
        "resolve_reason": None, "incidents_responders": [], "responder_requests": [],
        "urgency": urgency,
    }
    return obj, entries


# -- the server ----------------------------------------------------------------------------------

@dataclass
class PagerDutyWorld:
    token: str = "fake-pd-token"
    services: list[dict[str, Any]] = field(default_factory=list)
    policies: list[dict[str, Any]] = field(default_factory=list)
    schedules: dict[str, dict[str, Any]] = field(default_factory=dict)
    users: list[dict[str, Any]] = field(default_factory=list)
    incidents: list[dict[str, Any]] = field(default_factory=list)
    log_entries: list[dict[str, Any]] = field(default_factory=list)
    denied: set[str] = field(default_factory=set)          # path prefixes answering 403
    revoked: set[str] = field(default_factory=set)         # path prefixes answering 401 (the
                                                            # token revoked while a scan runs)
    fail: dict[str, set[int] | None] = field(default_factory=dict)  # path -> offsets answering 500 (None: all)
    throttle: int = 0                                       # answer the next N requests with 429
    rate_limit: int = 960                                   # per minute, per the ratelimit-* headers
    rate_period: int = 60
    clock: Callable[[], float] = time.monotonic
    _window: tuple[float, int] = (0.0, 0)

    def add_incident(self, made: tuple[dict[str, Any], list[dict[str, Any]]]) -> None:
        self.incidents.append(made[0])
        self.log_entries.extend(made[1])


class FakePagerDuty:
    """The WSGI app over a :class:`PagerDutyWorld`."""

    def __init__(self, world: PagerDutyWorld) -> None:
        self.world = world
        self._lock = threading.Lock()   # requests come in concurrently: count each once

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        return self.answer(Request(environ))(environ, start_response)

    def _rate(self) -> tuple[dict[str, str], bool]:
        w = self.world
        w._window, reset = window_hit(w._window, w.clock(), w.rate_period)
        count = w._window[1]
        return ({"ratelimit-limit": str(w.rate_limit),
                 "ratelimit-remaining": str(max(w.rate_limit - count, 0)),
                 "ratelimit-reset": str(reset)}, count > w.rate_limit)

    def answer(self, request: Request) -> Response:
        w = self.world
        path = request.path.rstrip("/")
        if (request.headers.get("Authorization") != f"Token token={w.token}"
                or any(path == p or path.startswith(p + "/") for p in w.revoked)):
            return _error(401, "Unauthorized", 2006)
        with self._lock:
            headers, over = self._rate()
            throttled = w.throttle > 0 or over
            w.throttle = max(w.throttle - 1, 0) if throttled else w.throttle
        if throttled:
            response = _error(429, "Rate Limit Exceeded", 2020)
            response.headers.update({**headers, "ratelimit-remaining": "0"})
            return response
        response = self._route(request)
        response.headers.update(headers)
        return response

    def _route(self, request: Request) -> Response:
        w, path, args = self.world, request.path.rstrip("/"), request.args
        if request.method != "GET":
            return _error(403, "Access Denied", 2010, ["This API key is read-only."])
        if any(path == p or path.startswith(p + "/") for p in w.denied):
            return _error(403, "Access Denied", 2010,
                          ["The API key does not have access to this resource."])
        parts = path.strip("/").split("/")
        try:
            since, until = parse_time(args.get("since")), parse_time(args.get("until"))
        except ValueError:
            return _error(400, "Invalid Input Provided", 2001, ["since/until is not a date"])
        if path == "/services":
            return self._page(request, "services", w.services)
        if path == "/escalation_policies":
            return self._page(request, "escalation_policies", w.policies)
        if path == "/users":
            expand = "notification_rules" in args.getlist("include[]")
            users = [u if expand else {**u, "notification_rules": [
                _as_reference(r) for r in u["notification_rules"]]} for u in w.users]
            return self._page(request, "users", users)
        if len(parts) == 2 and parts[0] == "schedules":
            obj = w.schedules.get(parts[1])
            if obj is None:
                return _error(404, "Not Found", 2100)
            if self._fails(path, 0):
                return _error(500, "Internal Server Error", 2000)
            until = until or (since + timedelta(days=14) if since else None)
            since = since or (until - timedelta(days=14) if until else None)
            if since is None:
                return self._json({"schedule": {k: v for k, v in obj.items()
                                                if not k.startswith("_")}})
            return self._json({"schedule": _render(obj, since, until)})
        if path == "/incidents":
            urgencies = set(args.getlist("urgencies[]")) or {"high", "low"}
            statuses = set(args.getlist("statuses[]")) or {"triggered", "acknowledged", "resolved"}
            found = [i for i in w.incidents if i["urgency"] in urgencies and i["status"] in statuses
                     and (since is None or parse_time(i["created_at"]) >= since)
                     and (until is None or parse_time(i["created_at"]) < until)]
            return self._page(request, "incidents", sorted(found, key=lambda i: i["created_at"]))
        if len(parts) == 3 and parts[0] == "incidents" and parts[2] == "log_entries":
            if not any(i["id"] == parts[1] for i in w.incidents):
                return _error(404, "Not Found", 2100)
            mine = [e for e in w.log_entries if e["incident"]["id"] == parts[1]]
            return self._page(request, "log_entries", _newest_first(mine))
        if path == "/log_entries":
            found = [e for e in w.log_entries
                     if (since is None or parse_time(e["created_at"]) >= since)
                     and (until is None or parse_time(e["created_at"]) < until)]
            return self._page(request, "log_entries", _newest_first(found))
        return _error(404, "Not Found", 2100)

    def _fails(self, path: str, offset: int) -> bool:
        if path not in self.world.fail:
            return False
        offsets = self.world.fail[path]
        return offsets is None or offset in offsets

    def _page(self, request: Request, key: str, items: list[dict[str, Any]]) -> Response:
        args = request.args
        try:
            limit = min(int(args.get("limit", 25)), MAX_LIMIT)
            offset = int(args.get("offset", 0))
        except ValueError:
            return _error(400, "Invalid Input Provided", 2001, ["limit/offset"])
        if limit < 1 or offset < 0 or offset + limit > 10_000:
            return _error(400, "Invalid Input Provided", 2001,
                          ["Offset+limit must be at most 10000."])
        if self._fails(request.path.rstrip("/"), offset):
            return _error(500, "Internal Server Error", 2000)
        page = items[offset:offset + limit]
        total = len(items) if args.get("total") == "true" else None
        return self._json({key: page, "limit": limit, "offset": offset,
                           "more": offset + limit < len(items), "total": total})

    @staticmethod
    def _json(body: Any) -> Response:
        return Response(json.dumps(body), status=200, content_type="application/json")


def _newest_first(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(entries, key=lambda e: e["created_at"], reverse=True)


def serve(world: PagerDutyWorld, tls: DemoTls | None = None) -> tuple[LocalServer, DemoTls]:
    """Start the fake on https://127.0.0.1:<free port>; returns the server and its TLS files."""
    tls = tls or make_tls("attest PagerDuty fake")
    server = LocalServer(FakePagerDuty(world), ssl_context=tls.server_context())
    server.start()
    return server, tls


# -- Acme Rockets --------------------------------------------------------------------------------

ADA = ("PADA001", "Ada Lovelace")
GRACE = ("PGRC002", "Grace Hopper")
KATHERINE = ("PKAT003", "Katherine Johnson")
MARGARET = ("PMAR004", "Margaret Hamilton")
LINUS = ("PLIN005", "Linus Pauling")
LAUNCH = ("PEPLC01", "Launch Control")
TELEMETRY = ("PEPTM02", "Telemetry")
GROUND = ("PEPGS03", "Ground Systems")
PAYLOAD = ("PEPPT04", "Payload Tracker")
PRIMARY = ("PSCLC01", "Launch Control primary")
TELEMETRY_ROTA = ("PSCTM02", "Telemetry on call")
SVC_LAUNCH = ("PSVLC01", "Launch Control API")
SVC_TELEMETRY = ("PSVTM02", "Telemetry Ingest")
SVC_GROUND = ("PSVGS03", "Ground Station Sync")
SVC_PAYLOAD = ("PSVPT04", "Payload Tracker")
SVC_FAX = ("PSVFX05", "Legacy Fax Gateway")


def acme_world(now: datetime) -> PagerDutyWorld:
    """Acme Rockets: a realistic mix. Every service pages someone first and every policy
    escalates (those two controls pass); one schedule has a hole, one on-call user has no
    high-urgency rule and two incidents were acknowledged late or not at all (those three fail).
    :func:`with_escalation_gaps` adds the failures of the first two."""
    day, hour, minute = timedelta(days=1), timedelta(hours=1), timedelta(minutes=1)
    monday = (now - timedelta(days=now.weekday())).replace(hour=9, minute=0, second=0,
                                                           microsecond=0)
    gap_start = (now + 3 * day).replace(hour=22, minute=0, second=0, microsecond=0)
    w = PagerDutyWorld(token="acme-demo-pagerduty-token")
    w.users = [
        user(ADA[0], ADA[1], "ada@acmerockets.example", role="admin",
             rules=[("high", "push_notification", 0), ("high", "sms", 2), ("low", "email", 0)]),
        user(GRACE[0], GRACE[1], "grace@acmerockets.example",
             rules=[("high", "phone", 0), ("low", "email", 0)]),
        user(KATHERINE[0], KATHERINE[1], "katherine@acmerockets.example",
             rules=[("high", "sms", 0), ("high", "phone", 5)]),
        # on the telemetry rotation, but only low-urgency rules: a high-urgency page reaches nobody
        user(MARGARET[0], MARGARET[1], "margaret@acmerockets.example",
             rules=[("low", "email", 0)]),
        user(LINUS[0], LINUS[1], "linus@acmerockets.example", role="observer"),  # never paged
    ]
    w.schedules = {
        PRIMARY[0]: schedule(PRIMARY[0], PRIMARY[1], Rotation([ADA, GRACE], monday),
                             policies=[LAUNCH]),
        # a hole one night next week: 22:00 to 06:00 with nobody on call
        TELEMETRY_ROTA[0]: schedule(TELEMETRY_ROTA[0], TELEMETRY_ROTA[1], Rotation(
            [KATHERINE, MARGARET], monday, hours=24, gaps=[(gap_start, gap_start + 8 * hour)]),
            policies=[TELEMETRY]),
    }
    w.policies = [
        escalation_policy(LAUNCH[0], LAUNCH[1], [[target("schedule", *PRIMARY)],
                                                 [target("user", *GRACE)]],
                          num_loops=1, services=[SVC_LAUNCH]),
        escalation_policy(TELEMETRY[0], TELEMETRY[1], [[target("schedule", *TELEMETRY_ROTA)],
                                                       [target("user", *ADA)]],
                          services=[SVC_TELEMETRY]),
        # one level, repeated once: Katherine is paged again when she does not answer
        escalation_policy(GROUND[0], GROUND[1], [[target("user", *KATHERINE)]], num_loops=1,
                          services=[SVC_GROUND]),
        escalation_policy(PAYLOAD[0], PAYLOAD[1], [[target("user", *GRACE)],
                                                   [target("user", *ADA)]], num_loops=2,
                          services=[SVC_PAYLOAD, SVC_FAX]),
    ]
    w.services = [
        service(SVC_LAUNCH[0], SVC_LAUNCH[1], LAUNCH),
        service(SVC_TELEMETRY[0], SVC_TELEMETRY[1], TELEMETRY, status="warning"),
        service(SVC_GROUND[0], SVC_GROUND[1], GROUND),
        service(SVC_PAYLOAD[0], SVC_PAYLOAD[1], PAYLOAD),
        service(SVC_FAX[0], SVC_FAX[1], PAYLOAD, status="disabled"),   # retired: not judged
    ]
    lc = {"service_ref": SVC_LAUNCH, "policy_ref": LAUNCH}
    tm = {"service_ref": SVC_TELEMETRY, "policy_ref": TELEMETRY}
    w.add_incident(incident("PINC101", 101, "Launch Control API 5xx above 5%", now - 20 * day,
                            acked=(4 * minute, ADA), resolved=(40 * minute, ADA), **lc))
    w.add_incident(incident("PINC102", 102, "Telemetry ingest lag", now - 12 * day,
                            resolved=(9 * minute, None), **tm))        # auto-resolved in time
    w.add_incident(incident("PINC103", 103, "Telemetry packets dropped", now - 5 * day,
                            acked=(55 * minute, KATHERINE), resolved=(3 * hour, KATHERINE), **tm))
    w.add_incident(incident("PINC104", 104, "Launch pad sensor offline", now - 2 * hour, **lc))
    w.add_incident(incident("PINC105", 105, "Disk 80% on build agent", now - 3 * day,
                            urgency="low", **lc))                    # low urgency: not read
    w.add_incident(incident("PINC099", 99, "Old outage", now - 40 * day,
                            acked=(2 * hour, ADA), resolved=(5 * hour, ADA), **lc))  # before the window
    return w


def with_escalation_gaps(world: PagerDutyWorld) -> PagerDutyWorld:
    """``world`` (an :func:`acme_world`) with the two escalation failures a company also has:
    Payload Tracker's policy lost the only target of its first level (the engineer left), and
    Ground Systems' policy has one level and no repeat."""
    for policy in world.policies:
        if policy["id"] == PAYLOAD[0]:
            policy["escalation_rules"][0]["targets"] = []
        elif policy["id"] == GROUND[0]:
            policy["num_loops"] = 0
    return world


EXPECTED = {
    "pagerduty.services_escalation": "pass",    # see with_escalation_gaps for the failures
    "pagerduty.escalation_depth": "pass",
    "pagerduty.schedule_coverage": "fail",      # Telemetry on call: nobody 22:00-06:00 one night
    "pagerduty.oncall_notifiable": "fail",      # Margaret Hamilton: no high-urgency rule
    "pagerduty.incident_acknowledged": "fail",  # #103 acknowledged after 55 min; #104 still open
}


def start_demo(now: datetime) -> DemoSource:
    world = acme_world(now)
    server, tls = serve(world)

    def stop() -> None:
        server.stop()
        tls.cleanup()
    return DemoSource(
        section={"token": "${ATTEST_DEMO_PAGERDUTY_TOKEN}", "base_url": server.url,
                 "ca_file": str(tls.ca_file)},
        env={"ATTEST_DEMO_PAGERDUTY_TOKEN": world.token},
        expected=dict(EXPECTED), stop=stop, extra={"world": world, "server": server, "tls": tls})
