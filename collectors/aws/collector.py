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

from concurrent.futures import ThreadPoolExecutor, as_completed
from functools import partial
from typing import Any, Callable, ClassVar, Iterator

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel

from attest.model import Evidence, EvidenceState
from collectors.aws import (backup, cloudtrail, ec2, eks, elb, guardduty, iam, kms, rds, s3,
                             securityhub)
from collectors.aws.session import (Account, CallFailed, SessionFactory, Target,
                                    failure, open_accounts)
from collectors.aws.source import SOURCE, AccountConfig, Config
from collectors.aws.specs import SPECS, Spec, iam_action
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


class AwsCollector:
    source: ClassVar[str] = SOURCE.name
    Config: ClassVar[type[BaseModel]] = Config
    produces: ClassVar[tuple[str, ...]] = SOURCE.produces

    def __init__(self, config: Config | None = None,
                 session_factory: SessionFactory = boto3.Session) -> None:
        self.config = config or Config()
        self.session_factory = session_factory

    def collect(self, ctx: CollectContext) -> Iterator[Evidence]:
        cfg = self.config
        accounts = open_accounts(cfg.accounts, cfg.endpoint_url, self.session_factory)
        with ThreadPoolExecutor(cfg.max_workers, thread_name_prefix="attest-aws") as pool:
            futures = []
            for account in accounts:
                first, regions = self._prelude(ctx, account)
                for ev in first:
                    yield self._report(ctx, ev)
                if not account.id:
                    continue
                for spec, region in self._plan(regions, ctx.wanted):
                    futures.append(pool.submit(self._run, ctx, spec, account, region))
            for future in as_completed(futures):
                yield self._report(ctx, future.result())

    def _report(self, ctx: CollectContext, ev: Evidence) -> Evidence:
        _, account, region = ev.scope.split(":", 2)
        ctx.progress(f"aws {account} {region} {ev.name}")
        return ev

    def _plan(self, regions: list[str], wanted: frozenset[str] | None = None
              ) -> Iterator[tuple[Spec, str]]:
        for spec in SPECS:
            if spec.fetch == "prelude" or (wanted is not None and spec.name not in wanted):
                continue
            if spec.scope == "global":
                yield spec, "global"
            else:
                for region in regions:
                    yield spec, region

    def _prelude(self, ctx: CollectContext, account: Account) -> tuple[list[Evidence], list[str]]:
        """Identify the account and list its enabled regions. An account that cannot be
        identified gets a record for every evidence name, so its controls become ``error``."""
        try:
            account.open()
            identity = Target(account, account.home_region).call("sts", "GetCallerIdentity",
                                                                 first_contact=True) or {}
        except (CallFailed, BotoCoreError, ClientError) as exc:
            failed = exc if isinstance(exc, CallFailed) else failure(exc, "sts:GetCallerIdentity")
            scope = f"aws:{account.label}:global"
            return [ctx.evidence(name, scope, failed.payload, state=failed.state,
                                 detail=f"account {account.label} could not be identified: "
                                        f"{failed.detail}")
                    for name in SOURCE.produces], []
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
    """The regions offering each regional service, read once per account on the main thread
    (boto3 sessions are not thread-safe)."""
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
