"""``access`` (Okta): user lifecycle, admin-role and group-membership events, from
``okta.system_log``.

Each good read holds the System Log events of its window (``since`` .. ``until``: from the last
good read, at most ``access_lookback_days`` back) of the event types below, membership events only
for the groups the config names (``okta.access_groups``; the payload records which). A row is one
successful event (``outcome.result`` SUCCESS), identified by its ``uuid``: an event two windows
both returned is one row, naming the first bundle.
"""
from __future__ import annotations

from typing import Any, Iterator

from reports.populations import Population
from reports.populations._evidence import EvidenceFile, iso

EVENTS = {
    "user.lifecycle.create": "user created",
    "user.lifecycle.activate": "user activated",
    "user.lifecycle.deactivate": "user deactivated",
    "user.lifecycle.suspend": "user suspended",
    "user.account.privilege.grant": "admin role granted",
    "user.account.privilege.revoke": "admin role removed",
    "group.user_membership.add": "added to group",
    "group.user_membership.remove": "removed from group",
}


def _target(event: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((t for t in event.get("target") or [] if isinstance(t, dict)
                 and t.get("type") == kind), {})


def _group_or_role(event: dict[str, Any]) -> str | None:
    kind = event.get("eventType")
    if kind and kind.startswith("group."):
        return _target(event, "UserGroup").get("displayName")
    if kind and kind.startswith("user.account.privilege."):
        debug = (event.get("debugContext") or {}).get("debugData") or {}
        return debug.get("privilegeGranted") or debug.get("privilegeRevoked") or \
            event.get("displayMessage")
    return None


def extract(records: list[EvidenceFile]) -> Iterator[tuple[EvidenceFile, dict[str, Any]]]:
    for rec in records:
        if not rec.ok or not isinstance(rec.payload, dict):
            continue
        org = rec.scope.split(":", 1)[-1]
        for event in rec.payload.get("events") or []:
            if not isinstance(event, dict) or event.get("eventType") not in EVENTS:
                continue
            if (event.get("outcome") or {}).get("result", "SUCCESS") != "SUCCESS":
                continue
            user, by = _target(event, "User"), event.get("actor") or {}
            yield rec, {
                "org": org, "published": iso(event.get("published")),
                "event": EVENTS[event["eventType"]], "event_type": event["eventType"],
                "user": user.get("alternateId") or user.get("displayName"),
                "user_id": user.get("id"), "group_or_role": _group_or_role(event),
                "actor": by.get("alternateId") or by.get("displayName") or by.get("id"),
                "uuid": event.get("uuid"),
            }


ACCESS = Population(
    name="access", title="Access: Okta user lifecycle, admin roles and group membership",
    evidence="okta.system_log",
    columns=("org", "published", "event", "event_type", "user", "user_id", "group_or_role",
             "actor", "uuid"),
    key=("org", "uuid"), when="published", extract=extract,
    brief=("published", "event", "user", "group_or_role", "actor"),
    notes=("one row per successful System Log event: " + ", ".join(EVENTS.values()),
           "group membership only of the groups named in okta.access_groups when the scan ran",
           "group_or_role: the group, or the admin role granted or removed "
           "(debugData privilegeGranted / privilegeRevoked)"))
