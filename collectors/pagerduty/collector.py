"""PagerDuty: services, escalation policies, the schedules they target (rendered), users with
their notification rules, and the high-urgency incidents of a look-back window with their
acknowledgement and resolution log entries.

Reads REST API v2 through the ``pagerduty`` package's client (:mod:`collectors.pagerduty.api`);
retries, pacing, paging and failure states are the shared HTTP layer's. Every payload holds the
objects exactly as PagerDuty returned them:

* ``pagerduty.services``: ``{"services": [...]}`` (``GET /services``)
* ``pagerduty.escalation_policies``: ``{"escalation_policies": [...]}``
* ``pagerduty.schedules``: ``{"since", "until", "schedules": {id: schedule}}``: every schedule
  an escalation policy targets, ``GET /schedules/{id}?since=&until=`` over the next
  :data:`SCHEDULE_DAYS` days, so ``final_schedule.rendered_schedule_entries`` is who is on call;
  a schedule that cannot be read is ``unknown`` (``schedule:<id>``), the others stay readable
* ``pagerduty.users``: ``{"users": [...]}`` (``GET /users?include[]=notification_rules``)
* ``pagerduty.incidents``: ``{"since", "until", "incidents": [...], "log_entries": {incident id:
  [acknowledge_log_entry and resolve_log_entry objects]}}``: the high-urgency incidents created
  since the last good read (at most ``incident_lookback_days`` back) — the population an auditor
  samples from; an incident whose log entries cannot be read is ``unknown`` (``incident:<id>``)
"""
from __future__ import annotations

import math
from datetime import timedelta
from typing import Any, ClassVar, Iterator

from pydantic import BaseModel

from attest.model import Evidence, EvidenceState, isoformat
from collectors.base import CollectContext
from collectors.http import Http, HttpError, Response, RetryPolicy
from collectors.pagerduty.api import (ITERATION_LIMIT, PAGE, RATES, PagerDutyReader, build_client,
                                      segment)
from collectors.pagerduty.source import (ESCALATION_POLICIES, INCIDENTS, SCHEDULES, SERVICES,
                                         SOURCE, USERS, Config, scope_of)

SCHEDULE_DAYS = 31            # how far ahead schedules are rendered (pagerduty.schedule_coverage)
ACK_TYPES = ("acknowledge_log_entry",
             "acknowledgement_log_entry")   # the OpenAPI description's spelling in one schema
RESOLVE_TYPES = ("resolve_log_entry",)
READ_ONLY = "a REST API key (a read-only key is enough)"
NEEDS = {
    SERVICES: f"{READ_ONLY}, or the services.read OAuth scope",
    ESCALATION_POLICIES: f"{READ_ONLY}, or the escalation_policies.read OAuth scope",
    SCHEDULES: f"{READ_ONLY}, or the schedules.read OAuth scope",
    USERS: f"{READ_ONLY}, or the users.read and users:contact_methods.read OAuth scopes",
    INCIDENTS: f"{READ_ONLY}, or the incidents.read OAuth scope",
}


class PagerDutyCollector:
    source: ClassVar[str] = SOURCE.name
    Config: ClassVar[type[BaseModel]] = Config
    produces: ClassVar[tuple[str, ...]] = SOURCE.produces

    def __init__(self, config: Config, policy: RetryPolicy = RetryPolicy(), **timing: Any) -> None:
        """``timing``: ``sleep`` and ``clock`` for tests that run on a fake server's clock."""
        self.config = config
        self.scope = scope_of(config)
        self.http = Http(SOURCE.name, self.scope, policy=policy, rates=RATES,
                         base_url=config.base_url, **timing)

    def collect(self, ctx: CollectContext) -> Iterator[Evidence]:
        client = build_client(self.config.token.get_secret_value(), self.config.base_url,
                              self.config.ca_file)
        reader = PagerDutyReader(client, self.http)
        scope = self.scope
        try:
            ctx.progress("pagerduty: services")
            yield ctx.guarded(SERVICES, scope, lambda: self._list(
                ctx, reader, SERVICES, "/services", {"time_zone": "UTC"}, "services"))
            ctx.progress("pagerduty: escalation policies")
            policies = ctx.guarded(ESCALATION_POLICIES, scope, lambda: self._list(
                ctx, reader, ESCALATION_POLICIES, "/escalation_policies", {}, "escalation_policies"))
            yield policies
            ctx.progress("pagerduty: schedules")
            yield ctx.guarded(SCHEDULES, scope, lambda: self._schedules(ctx, reader, policies))
            ctx.progress("pagerduty: users")
            yield ctx.guarded(USERS, scope, lambda: self._list(
                ctx, reader, USERS, "/users", {"include[]": ["notification_rules"]}, "users"))
            ctx.progress("pagerduty: incidents")
            yield ctx.guarded(INCIDENTS, scope, lambda: self._incidents(ctx, reader))
        finally:
            client.close()

    # -- lists -------------------------------------------------------------------------------

    def _list(self, ctx: CollectContext, reader: PagerDutyReader, name: str, path: str,
              params: dict[str, Any], key: str) -> Evidence:
        request = {"method": "GET", "path": path, "params": params}
        try:
            paged = reader.list(path, params, NEEDS[name], key)
        except HttpError as exc:
            return ctx.evidence(name, self.scope, None, state=exc.state, detail=exc.detail,
                                request={**request, "pages": 0})
        request["pages"] = paged.pages
        if paged.broken is not None:
            return ctx.evidence(name, self.scope, {key: paged.items}, state=EvidenceState.PARTIAL,
                                detail=f"page {paged.pages + 1} failed: {paged.broken.detail}",
                                request=request)
        return ctx.evidence(name, self.scope, {key: paged.items}, request=request)

    # -- schedules ---------------------------------------------------------------------------

    def _schedules(self, ctx: CollectContext, reader: PagerDutyReader,
                   policies: Evidence) -> Evidence:
        since, until = ctx.now, ctx.now + timedelta(days=SCHEDULE_DAYS)
        params = {"since": isoformat(since), "until": isoformat(until), "time_zone": "UTC"}
        request = {"method": "GET", "path": "/schedules/{id}", "params": params}
        if not policies.state.known:
            return ctx.evidence(SCHEDULES, self.scope, None, state=policies.state, request=request,
                                detail=f"the schedules to read are those {ESCALATION_POLICIES} "
                                       f"targets, and it is {policies.state.value}: "
                                       f"{policies.detail}")
        ids = sorted({t["id"] for p in (policies.payload or {}).get("escalation_policies") or []
                      for r in p.get("escalation_rules") or [] for t in r.get("targets") or []
                      if str(t.get("type", "")).startswith("schedule")})
        request["schedules"] = len(ids)
        found: dict[str, Any] = {}
        failures: dict[str, HttpError] = {}
        for sid in ids:
            try:
                found[sid] = reader.get(f"/schedules/{segment(sid)}", params, NEEDS[SCHEDULES],
                                        "schedule")
            except HttpError as exc:
                failures[sid] = exc
                if exc.unauthorized or exc.state is EvidenceState.UNREACHABLE:
                    break               # the token or the host: every other read would fail too
        payload = {"since": params["since"], "until": params["until"], "schedules": found}
        return self._with_unknowns(ctx, SCHEDULES, payload, request, ids, found, failures,
                                   "schedule")

    # -- incidents ---------------------------------------------------------------------------

    def _incidents(self, ctx: CollectContext, reader: PagerDutyReader) -> Evidence:
        until = ctx.now
        since = ctx.since(INCIDENTS, self.scope, self.config.incident_lookback_days)
        params = {"since": isoformat(since), "until": isoformat(until), "time_zone": "UTC",
                  "urgencies[]": ["high"], "statuses[]": ["triggered", "acknowledged", "resolved"]}
        request: dict[str, Any] = {"method": "GET", "path": "/incidents", "params": params}
        window = {"since": params["since"], "until": params["until"]}
        try:
            paged = reader.list("/incidents", params, NEEDS[INCIDENTS], "incidents")
        except HttpError as exc:
            return ctx.evidence(INCIDENTS, self.scope, None, state=exc.state, detail=exc.detail,
                                request={**request, "pages": 0})
        request["pages"] = paged.pages
        incidents = paged.items
        if paged.broken is not None:   # which incidents are missing cannot be said: all unknown
            return ctx.evidence(INCIDENTS, self.scope, {**window, "incidents": incidents,
                                                        "log_entries": {}},
                                state=EvidenceState.PARTIAL, request=request,
                                detail=f"page {paged.pages + 1} failed: {paged.broken.detail}")
        ids = [str(i["id"]) for i in incidents]
        entries, failures, how = self._log_entries(reader, ids, params)
        request["log_entries"] = how
        payload = {**window, "incidents": incidents, "log_entries": entries}
        return self._with_unknowns(ctx, INCIDENTS, payload, request, ids, entries, failures,
                                   "incident")

    def _log_entries(self, reader: PagerDutyReader, ids: list[str], window: dict[str, Any]
                     ) -> tuple[dict[str, list[Any]], dict[str, HttpError], str]:
        """The acknowledge and resolve log entries of each incident, with the fewest calls: the
        account's log entries of the window (``GET /log_entries``, 100 a page) when that takes
        no more pages than there are incidents, else one ``GET /incidents/{id}/log_entries``
        each. The first page of the account-wide list (with ``total=true``) tells which."""
        if not ids:
            return {}, {}, "none"
        if len(ids) > 1:
            wide = self._account_log_entries(reader, ids, window)
            if wide is not None:
                return wide, {}, "GET /log_entries"
        entries: dict[str, list[Any]] = {}
        failures: dict[str, HttpError] = {}
        for iid in ids:
            try:
                paged = reader.list(f"/incidents/{segment(iid)}/log_entries", {"time_zone": "UTC"},
                                    NEEDS[INCIDENTS], "log_entries")
            except HttpError as exc:
                failures[iid] = exc
                if exc.unauthorized or exc.state is EvidenceState.UNREACHABLE:
                    break
                continue
            if paged.broken is not None:
                failures[iid] = HttpError(EvidenceState.PARTIAL, f"page {paged.pages + 1} of its "
                                          f"log entries failed: {paged.broken.detail}")
                continue
            entries[iid] = _ack_and_resolve(paged.items)
        return entries, failures, "GET /incidents/{id}/log_entries"

    def _account_log_entries(self, reader: PagerDutyReader, ids: list[str],
                             window: dict[str, Any]) -> dict[str, list[Any]] | None:
        """Every log entry of the window, grouped by incident; None when that would take more
        calls than reading each incident's, or did not complete (then each is read)."""
        params = {"since": window["since"], "until": window["until"], "time_zone": "UTC",
                  "total": "true"}
        worth: list[bool] = []

        def decide(response: Response) -> bool:
            if not worth:
                total = response.body.get("total") if isinstance(response.body, dict) else None
                worth.append(isinstance(total, int) and total <= ITERATION_LIMIT
                             and max(1, math.ceil(total / PAGE)) <= len(ids))
            return worth[0]
        try:
            paged = reader.list("/log_entries", params, NEEDS[INCIDENTS], "log_entries",
                                keep_going=decide)
        except HttpError:
            return None
        if paged.broken is not None or (worth and not worth[0]):
            return None             # broke off, or stopped after its first page: not worth it
        grouped: dict[str, list[Any]] = {iid: [] for iid in ids}
        for entry in _ack_and_resolve(paged.items):
            iid = str((entry.get("incident") or {}).get("id"))
            if iid in grouped:
                grouped[iid].append(entry)
        return grouped

    # -- shared --------------------------------------------------------------------------------

    def _with_unknowns(self, ctx: CollectContext, name: str, payload: dict[str, Any],
                       request: dict[str, Any], ids: list[str], read: dict[str, Any],
                       failures: dict[str, HttpError], kind: str) -> Evidence:
        """One record for a list of detail reads: ``ok``; ``partial`` naming each resource not
        read (``<kind>:<id>``) while the others stay readable; or that failure's state for the
        whole record when the token was rejected, the host did not answer, or every read was
        refused (the credentials may not read this kind of resource at all)."""
        if not failures:
            return ctx.evidence(name, self.scope, payload, request=request)
        fatal = [(rid, f) for rid, f in failures.items()
                 if f.unauthorized or f.state is EvidenceState.UNREACHABLE]
        refused = not read and all(f.state is EvidenceState.DENIED for f in failures.values())
        if fatal or refused:
            rid, first = fatal[0] if fatal else next(iter(failures.items()))
            shown = f"{kind} {rid}: {first.detail}"
            return ctx.evidence(name, self.scope, payload, state=first.state, request=request,
                                detail=shown if len(failures) == 1 else
                                f"{len(failures)} of {len(ids)} {kind} reads failed; {shown}")
        unknown = {f"{kind}:{rid}": exc.detail for rid, exc in failures.items()}
        return ctx.evidence(name, self.scope, payload, state=EvidenceState.PARTIAL, request=request,
                            detail=f"{len(failures)} of {len(ids)} {kind} reads failed",
                            unknown=unknown)


def _ack_and_resolve(entries: list[Any]) -> list[Any]:
    return [e for e in entries if isinstance(e, dict) and e.get("type") in ACK_TYPES + RESOLVE_TYPES]
