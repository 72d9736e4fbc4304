"""AWS collector: every configured account x every enabled region, read-only, judging nothing.

For each account it first reads who it is (``sts:GetCallerIdentity``) and which regions are
enabled (``ec2:DescribeRegions``), then runs every spec of :mod:`collectors.aws.specs`
concurrently: global specs once per account, regional specs once per region. Each spec yields
one evidence record per scope (``aws:<account>:global`` or ``aws:<account>:<region>``):

* ``ok`` with the raw answers (``ResponseMetadata`` stripped, pages merged);
* ``absent`` when AWS says the thing does not exist (no password policy), or the service is
  not offered in that region (detail ``service not offered in <region>``);
* ``denied`` (AccessDenied, UnauthorizedOperation, HTTP 401/403), ``error`` (anything else),
  ``partial`` (a later page failed), with the failing IAM action in ``detail``.

Throttling is left to botocore's adaptive retry mode. One region failing never stops the others.
"""
from __future__ import annotations

import queue
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, ClassVar, Collection, Iterator

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel

from attest.calls import reading
from attest.logs import log_call
from attest.model import Evidence, EvidenceState
from collectors.aws import (backup, cloudtrail, ec2, eks, elb, guardduty, iam, kms, rds, s3,
                             securityhub)
from collectors.aws.session import (Account, CallFailed, SessionFactory, Target,
                                    failure, open_accounts, release_models)
from collectors.aws_errors import failed_entry
from collectors.aws.organization import SCOPE, Listing, list_organization
from collectors.aws.source import SOURCE, AccountConfig, Config
from collectors.aws.specs import FIRST, SPECS, Spec, iam_action
from collectors.base import CollectContext

__all__ = ["AwsCollector", "Config", "AccountConfig"]

FETCHERS: dict[str, Callable[[Target], dict[str, Any]]] = {
    "credential_report": iam.credential_report,
    "buckets": s3.buckets,
    "trails": cloudtrail.trails,
    "detectors": guardduty.detectors,
    "keys": kms.keys,
    "bucket_policies": s3.bucket_policies,
    "bucket_acls": s3.bucket_acls,
    "bucket_versioning": s3.bucket_versioning,
    "findings": guardduty.findings,
    "hub": securityhub.hub,
    "db_snapshots": rds.db_snapshots,
    "cluster_snapshots": rds.cluster_snapshots,
    "ebs_snapshots": ec2.snapshots,
    "backup_plans": backup.plans,
    "elbv2_listeners": elb.listeners,
    "elbv2_attributes": elb.attributes,
    "classic_load_balancers": elb.classic,
    "eks_clusters": eks.clusters,
    "eks_cluster_versions": eks.cluster_versions,
}


# What one account yields (the organization's listing is read once, not per account).
ACCOUNT_EVIDENCE: tuple[str, ...] = tuple(s.name for s in SPECS if s.fetch != "organization")


@dataclass
class _Plan:
    accounts: list[Account]
    listing: Listing | None
    records: list[Evidence]     # the organization's listing (and, if it failed, why nothing else)


class AwsCollector:
    source: ClassVar[str] = SOURCE.name
    Config: ClassVar[type[BaseModel]] = Config
    produces: ClassVar[tuple[str, ...]] = SOURCE.produces

    def __init__(self, config: Config | None = None,
                 session_factory: SessionFactory = boto3.Session) -> None:
        self.config = config or Config()
        self.session_factory = session_factory
        self._plan: _Plan | None = None
        self._lock = threading.Lock()
        self._claimed: set[str] = set()     # account ids identified so far

    def units(self, ctx: CollectContext) -> list[str]:
        """The parts a sharded scan splits AWS into: the organization's account list (with
        ``organization``) and one per account (its id, profile name or ``default``)."""
        plan = self._planned(ctx)
        labels = ["organization"] if plan.listing is not None else []
        return list(dict.fromkeys(labels + [a.label for a in plan.accounts]))

    def collect(self, ctx: CollectContext, units: Collection[str] | None = None) -> Iterator[Evidence]:
        """Every account (or only the ``units`` named, see :meth:`units`), ``max_accounts`` at
        once; in each, ``max_workers`` reads at once. When it ends, the service models botocore
        loaded are let go of (:func:`collectors.aws.session.release_models`)."""
        try:
            plan = self._planned(ctx)
            if plan.listing is not None and (units is None or "organization" in units):
                yield from plan.records
            accounts = [a for a in plan.accounts if units is None or a.label in units]
            if len(accounts) <= 1 or self.config.max_accounts == 1:
                for account in accounts:
                    yield from self._collect_account(ctx, account)
                return
            yield from interleave([partial(self._collect_account, ctx, a) for a in accounts],
                                  self.config.max_accounts)
        finally:
            release_models()

    def _planned(self, ctx: CollectContext) -> "_Plan":
        """The accounts to scan: those configured under ``accounts`` and, with ``organization``,
        every account of the organization in scope that is not listed there already (listed
        once per scan, on first use)."""
        if self._plan is not None:
            return self._plan
        cfg = self.config
        entries = list(cfg.accounts)
        listing, records = None, []
        if cfg.organization is not None:
            org = cfg.organization
            listing = list_organization(org, ctx, cfg.endpoint_url, self.session_factory,
                                        cfg.page_size)
            records = [listing.record]
            if not listing.record.state.known:
                # The organization's accounts are unknown: every control says so, never "none".
                records += [ctx.evidence(name, SCOPE, None, state=listing.record.state,
                                         detail=f"the organization's accounts are unknown: "
                                                f"{listing.record.detail}")
                            for name in ACCOUNT_EVIDENCE]
            named = {e.role_arn.split(":")[4] for e in entries if e.role_arn}
            entries += [AccountConfig(role_arn=listing.role_arn(i, org.role_name),
                                      external_id=org.external_id, session_name=org.session_name)
                        for i in listing.account_ids if i not in named]
        accounts = open_accounts(entries, cfg.endpoint_url, self.session_factory,
                                 default=cfg.organization is None)
        self._plan = _Plan(accounts, listing, records)
        return self._plan

    def _collect_account(self, ctx: CollectContext, account: Account) -> Iterator[Evidence]:
        first, regions = self._prelude(ctx, account)
        for ev in first:
            yield self._report(ctx, ev)
        if not account.id or account.duplicate:
            return
        pool = ThreadPoolExecutor(self.config.max_workers, thread_name_prefix="attest-aws")
        try:
            # Region by region (the pool takes reads in order), and a region's clients are let
            # go of once its reads are done: memory holds the clients of a few regions.
            futures = {pool.submit(self._run, ctx, spec, account, region): region
                       for spec, region in self._plan_reads(regions, ctx.wanted)}
            left = Counter(futures.values())
            for future in as_completed(futures):
                region = futures[future]
                left[region] -= 1
                if not left[region] and region != "global" and account.clients is not None:
                    account.clients.drop_region(region)
                yield self._report(ctx, future.result())
        finally:   # also when the consumer stops early: queued reads are dropped
            pool.shutdown(wait=True, cancel_futures=True)
            account.close()

    def _report(self, ctx: CollectContext, ev: Evidence) -> Evidence:
        _, account, region = ev.scope.split(":", 2)
        ctx.progress(f"aws {account} {region} {ev.name}")
        return ev

    def _plan_reads(self, regions: list[str], wanted: frozenset[str] | None = None
                    ) -> Iterator[tuple[Spec, str]]:
        chosen = [s for s in SPECS
                  if s.fetch not in FIRST and (wanted is None or s.name in wanted)]
        for spec in chosen:
            if spec.scope == "global":
                yield spec, "global"
        for region in regions:           # region by region (see _collect_account)
            for spec in chosen:
                if spec.scope != "global":
                    yield spec, region

    def _prelude(self, ctx: CollectContext, account: Account) -> tuple[list[Evidence], list[str]]:
        """Identify the account and list its enabled regions. An account that cannot be
        identified gets a record for every evidence name, so its controls become ``error``."""
        try:
            with reading("aws.sts.caller_identity"):   # and sts:AssumeRole, when a role is assumed
                account.open()
                identity = Target(account, account.home_region).call("sts", "GetCallerIdentity",
                                                                     first_contact=True) or {}
        except (CallFailed, BotoCoreError, ClientError) as exc:
            scope = f"aws:{account.label}:global"
            if isinstance(exc, CallFailed):   # the call itself recorded it
                failed = exc
            else:                             # no session (e.g. no such profile): nothing sent
                failed = failure(exc, "sts:GetCallerIdentity")
                log_call("aws", scope, "sts:GetCallerIdentity", 0.0, failed.state.value,
                         failed.detail, failed=failed_entry(
                             exc, "sts:GetCallerIdentity", failed.state, account.label,
                             evidence="aws.sts.caller_identity"))
            return [ctx.evidence(name, scope, failed.payload, state=failed.state,
                                 detail=f"account {account.label} could not be identified: "
                                        f"{failed.detail}")
                    for name in ACCOUNT_EVIDENCE], []
        with self._lock:
            if identity["Account"] in self._claimed:   # e.g. a profile and the organization
                ctx.log.warning("aws: account %s is reached twice (again as %s): scanned once",
                                identity["Account"], account.label)
                account.id, account.duplicate = identity["Account"], True
                return [], []
            self._claimed.add(identity["Account"])
        account.id = identity["Account"]
        account.partition = identity["Arn"].split(":")[1]
        account.offered = _offered(account)
        t = Target(account, account.home_region)
        records = [ctx.evidence("aws.sts.caller_identity", f"aws:{account.id}:global", identity,
                                request={"operations": ["sts:GetCallerIdentity"]})]
        regions_ev = self._fetch(ctx, "aws.ec2.regions", t, lambda: t.call("ec2", "DescribeRegions"))
        records.append(regions_ev)
        if self.config.regions != "all":
            return records, list(self.config.regions)
        if regions_ev.state is not EvidenceState.OK:
            # No region list: every regional record carries the reason, at the account scope.
            records += [ctx.evidence(s.name, f"aws:{account.id}:global", None, state=regions_ev.state,
                                     detail=f"enabled regions unknown: {regions_ev.detail}")
                        for s in SPECS if s.scope == "regional"]
            return records, []
        return records, sorted(r["RegionName"] for r in regions_ev.payload.get("Regions", [])
                               if r.get("OptInStatus") != "not-opted-in")

    def _run(self, ctx: CollectContext, spec: Spec, account: Account, region: str) -> Evidence:
        if region != "global" and region not in account.offered[spec.service]:
            return ctx.evidence(spec.name, f"aws:{account.id}:{region}", None,
                                state=EvidenceState.ABSENT,
                                detail=f"service not offered in {region}",
                                request={"service": spec.service, "region": region})
        t = Target(account, account.home_region if region == "global" else region,
                   page_size=self.config.page_size)
        fetch = FETCHERS[spec.fetch] if spec.fetch else partial(_plain, spec)
        return self._fetch(ctx, spec.name, t, partial(fetch, t), scope_region=region)

    def _fetch(self, ctx: CollectContext, name: str, t: Target, call: Callable[[], Any],
               scope_region: str = "global") -> Evidence:
        scope = f"aws:{t.account.id}:{scope_region}"
        unknown: dict[str, str] = {}
        try:
            with reading(name):
                payload = call()
            state, detail = EvidenceState.OK, ""
        except CallFailed as exc:
            payload, state, detail, unknown = exc.payload, exc.state, exc.detail, exc.unknown
        except Exception as exc:  # noqa: BLE001 - an unexpected answer stays with its scope
            ctx.log.warning("aws %s at %s: %s: %s", name, scope, type(exc).__name__, exc)
            payload, state, detail = None, EvidenceState.ERROR, f"{type(exc).__name__}: {exc}"
        request = {"operations": sorted(t.requested), "region": t.region}
        return ctx.evidence(name, scope, payload, state=state, detail=detail, request=request,
                            unknown=unknown)


def _offered(account: Account) -> dict[str, frozenset[str]]:
    """The regions offering each regional service, read once per account on the thread that
    opened it (boto3 sessions are not thread-safe; each account has its own)."""
    assert account.session is not None
    services = sorted({s.service for s in SPECS if s.scope == "regional"})
    return {service: frozenset(account.session.get_available_regions(
        service, partition_name=account.partition)) for service in services}


def _plain(spec: Spec, t: Target) -> dict[str, Any]:
    """Call each operation of a spec (every page) and merge the answers.

    One of the spec's ``absent`` error codes makes the whole record ``absent``."""
    payload: dict[str, Any] = {}
    params = {k: _filled(v, t.account.id) for k, v in spec.params.items()}
    for operation in spec.operations:
        answer = t.paginate(spec.service, operation, absent=spec.absent, **params)
        if answer is None:
            raise CallFailed(EvidenceState.ABSENT, f"{iam_action(spec.service, operation)}: AWS "
                                                   f"reports none ({' / '.join(spec.absent)})")
        payload.update(answer)
    return payload


def _filled(value: Any, account: str) -> Any:
    """A spec parameter with ``{account}`` replaced in every string it holds."""
    if isinstance(value, str):
        return value.format(account=account)
    if isinstance(value, list):
        return [_filled(v, account) for v in value]
    if isinstance(value, dict):
        return {k: _filled(v, account) for k, v in value.items()}
    return value
_DONE = object()


def interleave(makers: list[Callable[[], Iterator[Any]]], parallel: int) -> Iterator[Any]:
    """Run ``parallel`` of the generators ``makers`` make at once, each in its own thread, and
    yield their items as they come. A generator that raises ends the whole (after the others
    stopped); a consumer that stops early stops them too. The queue is bounded: a slow consumer
    slows the producers down instead of holding every answer in memory."""
    items: queue.Queue[Any] = queue.Queue(maxsize=64)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def run(make: Callable[[], Iterator[Any]]) -> None:
        gen = None
        try:
            gen = make()
            for item in gen:
                if not put(item):
                    break
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            put(_Failed(exc))
        finally:
            if gen is not None:
                gen.close()
            put(_DONE)

    pool = ThreadPoolExecutor(parallel, thread_name_prefix="attest-aws-account")
    try:
        for make in makers:
            pool.submit(run, make)
        remaining = len(makers)
        while remaining:
            item = items.get()
            if item is _DONE:
                remaining -= 1
            elif isinstance(item, _Failed):
                raise item.exc
            else:
                yield item
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)


@dataclass
class _Failed:
    exc: BaseException
