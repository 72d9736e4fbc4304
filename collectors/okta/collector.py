"""Okta: users, their factors, sign-on / authentication / password policies and rules, and the
System Log's access events (:mod:`collectors.okta.system_log`).

Every evidence record keeps the raw JSON Okta sent (see :mod:`collectors.okta.api`). The
collector judges nothing; it records which engine the org runs (``/.well-known/okta-organization``
``pipeline``: ``v1`` Classic, ``idx`` Identity Engine) so the rules can read the right policies.
"""
from __future__ import annotations

import asyncio
import dataclasses
from typing import Any, AsyncIterator, ClassVar, Iterator
from urllib.parse import urlsplit

from pydantic import BaseModel

from attest.calls import reading
from attest.model import Evidence, EvidenceState, Packed
from collectors.base import CollectContext
from collectors.http import AsyncHttp, HttpError, Paged, RetryPolicy
from collectors.okta.api import RATES, OktaReader, build_client
from collectors.okta.source import POLICY_EVIDENCE, SOURCE, Config
from collectors.okta.system_log import NAME as SYSTEM_LOG, read_system_log

PAGE_SIZE = 200            # the users API maximum

NEEDS = {
    "okta.users": "a read-only admin role, or the okta.users.read scope",
    "okta.factors": "a read-only admin role, or the okta.users.read scope",
    "okta.policies": "a read-only admin role, or the okta.policies.read scope",
}


class OktaCollector:
    source: ClassVar[str] = SOURCE.name
    Config: ClassVar[type[BaseModel]] = Config
    produces: ClassVar[tuple[str, ...]] = SOURCE.produces

    def __init__(self, config: Config, **timing: Any) -> None:
        """``timing``: ``sleep`` (async) and ``clock`` for tests that must not really wait."""
        self.config = config
        self.scope = f"okta:{urlsplit(config.org_url).netloc}"
        self.policy = RetryPolicy.of(config, max_wait=config.rate_limit_max_wait,
                                     max_wait_setting="okta.rate_limit_max_wait")
        self.timing = timing

    def collect(self, ctx: CollectContext) -> Iterator[Evidence]:
        """Each record as soon as it is final (the users before the factors are read), so that
        the scan writes it out and lets go of its payload: memory holds one list at a time."""
        with asyncio.Runner() as runner:
            records = self._collect(ctx)

            async def next_record() -> Evidence:
                return await records.__anext__()
            try:
                while True:
                    try:
                        ev = runner.run(next_record())
                    except StopAsyncIteration:
                        return
                    yield ev
                    del ev   # handed on: not held while the next record is read
            finally:
                runner.run(records.aclose())

    async def _collect(self, ctx: CollectContext) -> AsyncIterator[Evidence]:
        out: dict[str, Evidence] = {}
        sent: set[str] = set()

        def ready() -> list[Evidence]:
            """The records final so far and not yet handed on; ``out`` keeps them without
            their payloads (the state is what later reads look at). Handed on with
            ``yield pending.pop(0)``: no name here keeps a payload alive afterwards."""
            pending = []
            for name in self.produces:
                if name in out and name not in sent:
                    sent.add(name)
                    pending.append(out[name])
                    out[name] = dataclasses.replace(out[name], payload=None)
            return pending

        client = build_client(self.config.sdk_settings())
        async with client:
            http = AsyncHttp(self.source, self.scope, policy=self.policy, rates=RATES,
                             base_url=self.config.org_url, share=self.config.rate_limit_share,
                             **self.timing)
            reader = OktaReader(client, self.config.org_url, http)
            async def step(names: tuple[str, ...], work: Any, default: Any = None) -> Any:
                """One read; an unexpected exception stays with the evidence it was for, and a
                call failing for good is listed as concerning it (its first name)."""
                try:
                    with reading(names[0]):
                        return await work
                except HttpError:
                    raise
                except Exception as exc:  # noqa: BLE001
                    ctx.log.warning("okta %s: unexpected %s: %s", names[0], type(exc).__name__, exc)
                    for name in names:
                        out.setdefault(name, ctx.evidence(
                            name, self.scope, state=EvidenceState.ERROR,
                            detail=f"unexpected {type(exc).__name__} while reading: {exc}"[:400]))
                    return default
            try:
                ctx.progress("okta: users")
                users = await step(("okta.users", "okta.factors"), self._users(ctx, reader, out), [])
                pending = ready()
                while pending:
                    yield pending.pop(0)
                ctx.progress("okta: org")
                pipeline = await step(("okta.org",), self._org(ctx, reader, out))
                ctx.progress("okta: factors")
                await step(("okta.factors",), self._factors(ctx, reader, out, users))
                del users
                pending = ready()
                while pending:
                    yield pending.pop(0)
                ctx.progress("okta: policies")
                for name, policy_type in POLICY_EVIDENCE.items():
                    await step((name,), self._policies(ctx, reader, out, name, policy_type, pipeline))
                ctx.progress("okta: system log")
                log_record = await step((SYSTEM_LOG,), read_system_log(
                    ctx, reader, self.config, self.scope))
                if log_record is not None:   # None: step() recorded the unexpected error
                    out[SYSTEM_LOG] = log_record
            except HttpError as exc:
                if not exc.unauthorized:
                    raise
                detail = (f"Okta rejected the credentials: {exc.detail}; check the API token or "
                          "the OAuth service app")
                for name in self.produces:
                    out.setdefault(name, ctx.evidence(name, self.scope, state=EvidenceState.DENIED,
                                                      detail=detail))
        if http.waits:
            ctx.log.info("okta: waited %.0fs in total (rate limits, retries)", sum(http.waits))
        pending = ready()
        while pending:
            yield pending.pop(0)

    def _failure(self, ctx: CollectContext, name: str, exc: HttpError,
                 request: dict[str, Any]) -> Evidence:
        """A failed call as evidence (its state from the HTTP layer); a 401 propagates: every
        name is then denied."""
        if exc.unauthorized:
            raise exc
        return ctx.evidence(name, self.scope, state=exc.state, request=request, detail=exc.detail)

    async def _users(self, ctx: CollectContext, reader: OktaReader,
                     out: dict[str, Evidence]) -> list[tuple[str, str]]:
        """Reads the user list into ``out``; returns (id, login) of every ACTIVE user."""
        request = {"operation": "GET /api/v1/users", "params": {"limit": PAGE_SIZE},
                   "note": "the default list: every status except DEPROVISIONED"}
        active: list[tuple[str, str]] = []

        def keep(page: list[Any]) -> list[Any]:
            """As each page arrives: its ACTIVE users noted, and every user kept as compact JSON
            text until the record is written (20,000 users: about 15 MB of text, where the
            parsed pages would hold about 100 MB, and leave the memory they took fragmented)."""
            active.extend((str(u.get("id")), str((u.get("profile") or {}).get("login") or u.get("id")))
                          for u in page if isinstance(u, dict) and u.get("status") == "ACTIVE")
            return [Packed(u) for u in page]
        try:
            listing = await reader.list("/api/v1/users", {"limit": PAGE_SIZE}, NEEDS["okta.users"],
                                        keep=keep)
        except HttpError as exc:
            out["okta.users"] = self._failure(ctx, "okta.users", exc, request)
            return []
        listing.last = None    # the last page's raw answer is not kept with the record
        out["okta.users"] = self._listing(ctx, "okta.users", listing, listing.items, request)
        return active

    async def _org(self, ctx: CollectContext, reader: OktaReader, out: dict[str, Evidence]) -> str | None:
        request = {"operation": "GET /.well-known/okta-organization"}
        try:
            body = await reader.get("/.well-known/okta-organization")
        except HttpError as exc:
            out["okta.org"] = self._failure(ctx, "okta.org", exc, request)
            return None
        out["okta.org"] = ctx.evidence("okta.org", self.scope, body, request=request)
        return body.get("pipeline") if isinstance(body, dict) else None

    async def _factors(self, ctx: CollectContext, reader: OktaReader, out: dict[str, Evidence],
                       users: list[tuple[str, str]]) -> None:
        """``{user id: [raw factors]}`` for every ACTIVE user."""
        request = {"operation": "GET /api/v1/users/{id}/factors", "users": "every ACTIVE user"}
        if not out["okta.users"].state.known:
            out["okta.factors"] = ctx.evidence(
                "okta.factors", self.scope, state=out["okta.users"].state, request=request,
                detail="not read: the user list could not be read")
            return
        results: list[tuple[str, Paged | HttpError]] = []
        todo = iter(users)

        async def worker() -> None:
            """``max_workers`` of these share the users (not one task per user: 20,000 tasks
            waiting at a semaphore would hold memory for nothing)."""
            for user_id, _ in todo:
                try:
                    listing = await reader.list(f"/api/v1/users/{user_id}/factors",
                                                needs=NEEDS["okta.factors"])
                except HttpError as exc:
                    results.append((user_id, exc))
                    continue
                listing.last = None    # the items are kept; the raw answer need not be, twice
                listing.items = Packed(listing.items)   # kept as text until the record is written
                results.append((user_id, listing))

        await asyncio.gather(*(worker() for _ in range(min(self.config.max_workers, len(users)) or 1)))
        order = {user_id: i for i, (user_id, _) in enumerate(users)}
        results.sort(key=lambda r: order[r[0]])
        logins = dict(users)
        factors: dict[str, Any] = {}      # user id -> Packed([raw factors])
        unknown: dict[str, str] = {}   # login -> why: only these users' verdicts are lost
        for user_id, result in results:
            if isinstance(result, HttpError):
                if result.state is EvidenceState.DENIED:
                    out["okta.factors"] = self._failure(ctx, "okta.factors", result, request)
                    return
                unknown[logins[user_id]] = result.detail
            elif result.broken is not None:
                unknown[logins[user_id]] = f"{result.broken.detail} after {result.pages} page(s)"
            else:
                factors[user_id] = result.items
        if unknown:
            out["okta.factors"] = ctx.evidence(
                "okta.factors", self.scope, factors, state=EvidenceState.PARTIAL, request=request,
                detail=f"the factors of {len(unknown)} of {len(users)} users could not be read",
                unknown=unknown)
        else:
            out["okta.factors"] = ctx.evidence("okta.factors", self.scope, factors, request=request)

    async def _policies(self, ctx: CollectContext, reader: OktaReader, out: dict[str, Evidence],
                        name: str, policy_type: str, pipeline: str | None) -> None:
        """``{"policies": [raw policies], "rules": {policy id: [raw rules]}}`` for one type."""
        request = {"operation": "GET /api/v1/policies", "params": {"type": policy_type},
                   "rules": "GET /api/v1/policies/{id}/rules"}
        if policy_type == "ACCESS_POLICY" and pipeline == "v1":
            out[name] = ctx.evidence(name, self.scope, {"policies": [], "rules": {}},
                                     state=EvidenceState.ABSENT, request=request,
                                     detail="Classic Engine org (pipeline v1): no authentication policies")
            return
        needs = NEEDS["okta.policies"]
        try:
            listing = await reader.list("/api/v1/policies", {"type": policy_type}, needs)
            rules: dict[str, list[Any]] = {}
            for policy in listing.items:
                policy_id = str(policy.get("id"))
                rule_listing = await reader.list(f"/api/v1/policies/{policy_id}/rules", needs=needs)
                if rule_listing.broken is not None:
                    listing.broken = rule_listing.broken
                rules[policy_id] = rule_listing.items
        except HttpError as exc:
            out[name] = self._failure(ctx, name, exc, request)
            return
        out[name] = self._listing(ctx, name, listing, {"policies": listing.items, "rules": rules},
                                  request)

    def _listing(self, ctx: CollectContext, name: str, listing: Paged, payload: Any,
                 request: dict[str, Any]) -> Evidence:
        request = {**request, "pages": listing.pages}
        if listing.broken is not None:
            if listing.broken.unauthorized:
                raise listing.broken
            return ctx.evidence(name, self.scope, payload, state=EvidenceState.PARTIAL,
                                request=request,
                                detail=f"pagination broke after {listing.pages} page(s): {listing.broken.detail}")
        return ctx.evidence(name, self.scope, payload, request=request)
