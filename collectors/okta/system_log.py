"""``okta.system_log``: the access events of the Okta System Log, since the last good read.

``GET /api/v1/logs?since=&until=&filter=&limit=&sortOrder=ASCENDING``, paged by ``Link:
rel="next"`` through :class:`collectors.okta.api.OktaReader` (the shared HTTP layer's retries,
pacing and failure states). The window is like the merged pull requests': from the start of the
last scan that read it successfully (so a failed night leaves no hole), at most
``access_lookback_days`` back, to this scan's start.

The filter asks only for user lifecycle and admin-role events, plus group membership events when
``access_groups`` names groups; of those, only the events of the named groups (by name or id) are
kept. The events are Okta's LogEvent objects as sent. Payload::

    {"since": ISO, "until": ISO, "groups": [configured names], "event_types": [...],
     "events": [raw LogEvent, oldest first]}
"""
from __future__ import annotations

from typing import Any

from attest.model import Evidence, EvidenceState, isoformat
from collectors.base import CollectContext
from collectors.http import HttpError
from collectors.okta.api import OktaReader
from collectors.okta.source import Config

NAME = "okta.system_log"
NEEDS = "a read-only admin role, or the okta.logs.read scope"
PAGE_SIZE = 1000           # the System Log API maximum
LIFECYCLE = ("user.lifecycle.create", "user.lifecycle.activate", "user.lifecycle.deactivate",
             "user.lifecycle.suspend", "user.account.privilege.grant",
             "user.account.privilege.revoke")
MEMBERSHIP = ("group.user_membership.add", "group.user_membership.remove")


def event_filter(types: tuple[str, ...]) -> str:
    """Okta's filter expression for any of ``types``: ``eventType eq "a" or eventType eq "b"``."""
    return " or ".join(f'eventType eq "{t}"' for t in types)


def _in_groups(event: dict[str, Any], groups: set[str]) -> bool:
    """A membership event of one of ``groups`` (its UserGroup target, by name or id)."""
    targets = [t for t in event.get("target") or [] if isinstance(t, dict)]
    return any(t.get("type") == "UserGroup" and ({t.get("displayName"), t.get("id"),
                                                  t.get("alternateId")} & groups)
               for t in targets)


async def read_system_log(ctx: CollectContext, reader: OktaReader, config: Config,
                          scope: str) -> Evidence:
    """The ``okta.system_log`` record; a 401 propagates (every Okta record is then denied)."""
    until = ctx.now
    since = ctx.since(NAME, scope, config.access_lookback_days)
    types = LIFECYCLE + (MEMBERSHIP if config.access_groups else ())
    params = {"since": isoformat(since), "until": isoformat(until), "filter": event_filter(types),
              "limit": PAGE_SIZE, "sortOrder": "ASCENDING"}
    request: dict[str, Any] = {"operation": "GET /api/v1/logs", "params": params}
    try:
        listing = await reader.list("/api/v1/logs", params, NEEDS)
    except HttpError as exc:
        if exc.unauthorized:
            raise
        return ctx.evidence(NAME, scope, state=exc.state, request=request, detail=exc.detail)
    groups = set(config.access_groups)
    events = [e for e in listing.items if isinstance(e, dict)
              and (e.get("eventType") not in MEMBERSHIP or _in_groups(e, groups))]
    payload = {"since": isoformat(since), "until": isoformat(until),
               "groups": list(config.access_groups), "event_types": list(types), "events": events}
    request["pages"] = listing.pages
    if listing.broken is not None:
        if listing.broken.unauthorized:
            raise listing.broken
        return ctx.evidence(NAME, scope, payload, state=EvidenceState.PARTIAL, request=request,
                            detail=f"pagination broke after {listing.pages} page(s): "
                                   f"{listing.broken.detail}")
    return ctx.evidence(NAME, scope, payload, request=request)
