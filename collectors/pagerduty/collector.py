"""PagerDuty: services, escalation policies, the schedules they target (rendered), users with
their notification rules, and the high-urgency incidents of a look-back window with their
acknowledgement and resolution log entries.

Reads REST API v2 through the ``pagerduty`` package's client (:mod:`collectors.pagerduty.api`);
retries, pacing, paging and failure states are the shared HTTP layer's. The lists, and the
detail reads of each, run side by side with at most ``max_workers`` requests in flight; records
are yielded in a fixed order, their content independent of the order reads finish in. Every
payload holds the objects exactly as PagerDuty returned them:

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
import threading
from concurrent.futures import Executor, ThreadPoolExecutor
from datetime import timedelta
from typing import Any, Callable, ClassVar, Iterator

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

    def __init__(self, config: Config, policy: RetryPolicy | None = None, **timing: Any) -> None:
        """``timing``: ``sleep`` and ``clock`` for tests that run on a fake server's clock."""
        self.config = config
        self.scope = scope_of(config)
        # at most max_workers requests in flight, however the reads fan out (lists, details)
        self.http = Http(SOURCE.name, self.scope,
                         policy=policy or RetryPolicy.of(config), rates=RATES,
                         base_url=config.base_url, max_in_flight=config.max_workers, **timing)

    def collect(self, ctx: CollectContext) -> Iterator[Evidence]:
        client = build_client(self.config.token.get_secret_value(), self.config.base_url,
                              self.config.ca_file)
        reader = PagerDutyReader(client, self.http)
        scope = self.scope
        workers = self.config.max_workers

        def guard(name: str, read: Callable[[], Evidence]) -> Evidence:
            return ctx.guarded(name, scope, read)
        try:
            ctx.progress("pagerduty: services, escalation policies and schedules, users, incidents")
            # The four lists side by side (the schedules follow the policies that name them, the
            # log entries the incidents); the detail reads of one list in a pool of their own,
            # so that a list waiting for its details never holds a thread they need. The records
            # are yielded in a fixed order.
            with ThreadPoolExecutor(workers, thread_name_prefix="attest-pagerduty") as lists, \
                    ThreadPoolExecutor(workers, thread_name_prefix="attest-pagerduty-detail") as details:
                def policies_then_schedules() -> tuple[Evidence, Evidence]:
                    policies = guard(ESCALATION_POLICIES, lambda: self._list(
                        ctx, reader, ESCALATION_POLICIES, "/escalation_policies", {},
                        "escalation_policies"))
                    return policies, guard(SCHEDULES, lambda: self._schedules(
                        ctx, reader, policies, details))
                services = lists.submit(guard, SERVICES, lambda: self._list(
                    ctx, reader, SERVICES, "/services", {"time_zone": "UTC"}, "services"))
                chain = lists.submit(policies_then_schedules)
                users = lists.submit(guard, USERS, lambda: self._list(
                    ctx, reader, USERS, "/users", {"include[]": ["notification_rules"]}, "users"))
                incidents = lists.submit(guard, INCIDENTS, lambda: self._incidents(
                    ctx, reader, details))
                yield services.result()
                yield from chain.result()
                yield users.result()
                yield incidents.result()
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
                   policies: Evidence, pool: Executor) -> Evidence:
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
        found, failures = _each(pool, ids, lambda sid: reader.get(
            f"/schedules/{segment(sid)}", params, NEEDS[SCHEDULES], "schedule"))
        payload = {"since": params["since"], "until": params["until"], "schedules": found}
        return self._with_unknowns(ctx, SCHEDULES, payload, request, ids, found, failures,
                                   "schedule")

    # -- incidents ---------------------------------------------------------------------------

    def _incidents(self, ctx: CollectContext, reader: PagerDutyReader, pool: Executor) -> Evidence:
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
        entries, failures, how = self._log_entries(reader, ids, params, pool)
        request["log_entries"] = how
        payload = {**window, "incidents": incidents, "log_entries": entries}
        return self._with_unknowns(ctx, INCIDENTS, payload, request, ids, entries, failures,
                                   "incident")

    def _log_entries(self, reader: PagerDutyReader, ids: list[str], window: dict[str, Any],
                     pool: Executor) -> tuple[dict[str, list[Any]], dict[str, HttpError], str]:
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
        def read(iid: str) -> list[Any]:
            paged = reader.list(f"/incidents/{segment(iid)}/log_entries", {"time_zone": "UTC"},
                                NEEDS[INCIDENTS], "log_entries")
            if paged.broken is not None:
                raise HttpError(EvidenceState.PARTIAL, f"page {paged.pages + 1} of its log "
                                f"entries failed: {paged.broken.detail}")
            return _ack_and_resolve(paged.items)
        entries, failures = _each(pool, ids, read)
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
        if fatal:
            # the token or the host: the reads not yet started were not sent, and how many had
            # started depends on timing, so the detail names the first failure (by id) only
            rid, first = fatal[0]
            return ctx.evidence(name, self.scope, payload, state=first.state, request=request,
                                detail=f"{kind} {rid}: {first.detail}" + (
                                    f" ({kind} reads not yet started were not sent)"
                                    if len(ids) > 1 else ""))
        if refused:
            rid, first = next(iter(failures.items()))
            shown = f"{kind} {rid}: {first.detail}"
            return ctx.evidence(name, self.scope, payload, state=first.state, request=request,
                                detail=shown if len(failures) == 1 else
                                f"{len(failures)} of {len(ids)} {kind} reads failed; {shown}")
        unknown = {f"{kind}:{rid}": exc.detail for rid, exc in failures.items()}
        return ctx.evidence(name, self.scope, payload, state=EvidenceState.PARTIAL, request=request,
                            detail=f"{len(failures)} of {len(ids)} {kind} reads failed",
                            unknown=unknown)


def _each(pool: Executor, ids: list[str], read: Callable[[str], Any]
          ) -> tuple[dict[str, Any], dict[str, HttpError]]:
    """``read(id)`` for every id, side by side in ``pool``: (what was read, what failed), each
    in the ids' order whatever order the reads finished in. After a failure every other read
    would share (the token rejected, the host gone), the reads not yet started are not sent."""
    stop = threading.Event()

    def one(rid: str) -> tuple[str, Any] | None:
        if stop.is_set():
            return None
        try:
            return "ok", read(rid)
        except HttpError as exc:
            if exc.unauthorized or exc.state is EvidenceState.UNREACHABLE:
                stop.set()
            return "failed", exc
    found: dict[str, Any] = {}
    failures: dict[str, HttpError] = {}
    for rid, outcome in zip(ids, list(pool.map(one, ids))):
        if outcome is None:
            continue
        (found if outcome[0] == "ok" else failures)[rid] = outcome[1]
    return found, failures


def _ack_and_resolve(entries: list[Any]) -> list[Any]:
    return [e for e in entries if isinstance(e, dict) and e.get("type") in ACK_TYPES + RESOLVE_TYPES]
