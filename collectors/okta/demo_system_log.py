"""The System Log of the Okta fake: ``GET /api/v1/logs`` and LogEvent builders, shaped by the
LogEvent schema of Okta's OpenAPI description (okta-sdk-python ``okta/models/log_event.py``:
actor, target[], published, eventType, displayMessage, outcome, debugContext.debugData, uuid).
The state is :attr:`collectors.okta.demo.OktaWorld.logs`.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from werkzeug.wrappers import Request, Response

from attest.model import parse_time


DISPLAY = {"user.lifecycle.create": "Create Okta user", "user.lifecycle.activate": "Activate Okta user",
           "user.lifecycle.deactivate": "Deactivate Okta user",
           "user.lifecycle.suspend": "Suspend Okta user",
           "user.account.privilege.grant": "Grant user privilege",
           "user.account.privilege.revoke": "Revoke user privilege",
           "group.user_membership.add": "Add user to group membership",
           "group.user_membership.remove": "Remove user from group membership"}


def _okta_time(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{dt.microsecond // 1000:03d}Z"


def actor(u: dict[str, Any]) -> dict[str, Any]:
    """A LogActor (or a User LogTarget) of a user made by :func:`collectors.okta.demo.user`."""
    profile = u["profile"]
    name = f"{profile.get('firstName', '')} {profile.get('lastName', '')}".strip()
    return {"id": u["id"], "type": "User", "alternateId": profile["login"],
            "displayName": name or profile["login"], "detailEntry": None}


def group_target(group_id: str, name: str) -> dict[str, Any]:
    return {"id": group_id, "type": "UserGroup", "alternateId": "unknown", "displayName": name,
            "detailEntry": None}


def log_event(event_type: str, published: datetime, by: dict[str, Any],
              targets: list[dict[str, Any]], *, result: str = "SUCCESS",
              debug: dict[str, Any] | None = None) -> dict[str, Any]:
    """A LogEvent as GET /api/v1/logs returns it. ``by``: a LogActor; ``targets``: LogTargets.
    The uuid follows from the event's type, time and targets, so a re-seeded demo keeps it."""
    ident = uuid.uuid5(uuid.NAMESPACE_URL, f"okta-log:{event_type}:{published.isoformat()}:"
                                           + ",".join(t["id"] for t in targets))
    return {
        "actor": by, "client": {"userAgent": {"rawUserAgent": "Mozilla/5.0", "os": "Mac OS X",
                                              "browser": "CHROME"},
                                "zone": "null", "device": "Computer", "id": None,
                                "ipAddress": "198.51.100.7", "geographicalContext": None},
        "device": None, "authenticationContext": {"authenticationStep": 0,
                                                  "externalSessionId": "102acmeRocketsSess0g4"},
        "displayMessage": DISPLAY.get(event_type, event_type), "eventType": event_type,
        "outcome": {"result": result, "reason": None},
        "published": _okta_time(published),
        "securityContext": {"asNumber": None, "asOrg": None, "isp": None, "domain": None,
                            "isProxy": None},
        "severity": "INFO", "debugContext": {"debugData": dict(debug or {})},
        "legacyEventType": None, "transaction": {"type": "WEB", "id": "WEB" + ident.hex[:20],
                                                 "detail": {}},
        "uuid": str(ident), "version": "0", "request": {"ipChain": []}, "target": targets,
    }


def _log_filter(expression: str | None) -> set[str] | None:
    """The event types of ``eventType eq "a" or eventType eq "b"`` (None: no filter). Anything
    else this fake does not understand raises ValueError."""
    if not expression:
        return None
    types = set()
    for term in expression.split(" or "):
        field_, op, value = (term.strip().strip("()").split(" ", 2) + ["", ""])[:3]
        if field_ != "eventType" or op != "eq" or not (value.startswith('"') and value.endswith('"')):
            raise ValueError(term)
        types.add(value[1:-1])
    return types


def system_log(request: Request, logs: list[dict[str, Any]], max_limit: int) -> Response:
    """GET /api/v1/logs: a bounded query, ``since`` <= published < ``until``, oldest first (or
    ``sortOrder=DESCENDING``), paged with an opaque ``after`` cursor and ``Link: rel="next"``."""
    from collectors.okta.demo import _error, _linked_page
    args = request.args
    try:
        until = parse_time(args.get("until")) or datetime.now(timezone.utc)
        since = parse_time(args.get("since")) or until - timedelta(days=7)
    except ValueError:
        return _error(400, "E0000001", "Api validation failed: since/until")
    try:
        types = _log_filter(args.get("filter"))
    except ValueError:
        return _error(400, "E0000031", "Invalid search criteria.")
    try:
        limit = min(max(int(args.get("limit", 100)), 1), max_limit)
    except ValueError:
        return _error(400, "E0000001", "Api validation failed: limit")
    chosen = sorted((e for e in logs
                     if since <= parse_time(e["published"]) < until
                     and (types is None or e["eventType"] in types)),
                    key=lambda e: (e["published"], e["uuid"]),
                    reverse=args.get("sortOrder") == "DESCENDING")
    return _linked_page(request, chosen, limit, "uuid")


PROD_ADMINS = group_target("00g1awsProdAdmins0g4", "AWS Production Admins")  # in the demo's access_groups
MARKETING = group_target("00g1marketing00000g4", "Marketing")                # not


def seed_system_log(world: Any, now: datetime, u: dict[str, dict[str, Any]]) -> None:
    """The System Log of the last weeks: Erin hired, Gina suspended, Frank deactivated, Zoë made a
    read-only admin, group changes in AWS Production Admins (counted) and Marketing (not)."""
    days = lambda n, h=0: now - timedelta(days=n) + timedelta(hours=h)  # noqa: E731
    admin = actor(u["alice"])
    for event in (
        log_event("user.lifecycle.deactivate", days(20), admin, [actor(u["frank"])]),
        log_event("user.lifecycle.suspend", days(12), admin, [actor(u["gina"])]),
        log_event("user.account.privilege.grant", days(9), admin, [actor(u["zoe"])],
                  debug={"privilegeGranted": "Read-only Administrator"}),
        log_event("user.lifecycle.create", days(6), admin, [actor(u["erin"])]),
        log_event("user.lifecycle.activate", days(5), admin, [actor(u["erin"])]),
        log_event("group.user_membership.add", days(4, 20), admin, [actor(u["erin"]), MARKETING]),
        log_event("group.user_membership.add", days(3), admin, [actor(u["bob"]), PROD_ADMINS]),
        log_event("group.user_membership.remove", days(2), admin, [actor(u["carl"]), PROD_ADMINS]),
    ):
        world.logs.append(event)

