"""Credentials, accounts and boto3 clients for the AWS collector, and the one way it calls AWS.

* :func:`open_accounts` turns the config's ``accounts`` list into boto3 sessions: the default
  credential chain, a named profile, or a role assumed through STS (refreshed when it expires).
* :class:`Clients` is a thread-safe client cache for one account; every client uses the
  configured ``endpoint_url`` (S3 Control included), adaptive retries and path-style S3.
* :class:`Target` is one (account, region) to read; its :meth:`Target.call` and
  :meth:`Target.paginate` strip ``ResponseMetadata`` and turn failures into :class:`CallFailed`
  carrying the evidence state (``denied``, ``error``, ``partial``).
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable
from urllib.parse import urlsplit, urlunsplit

import boto3
import botocore.session
from botocore.client import BaseClient
from botocore.config import Config as BotoConfig
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError

from attest.logs import api_call
from attest.model import EvidenceState
from collectors.aws import client_costs   # shares what botocore builds per client
from collectors.aws.specs import client_operations, iam_action
from collectors.aws_errors import NO_ANSWER, classify, failed_entry

SessionFactory = Callable[..., boto3.Session]

# Paging bookkeeping dropped when pages are merged into one answer.
TOKEN_KEYS = frozenset({"NextToken", "nextToken", "Marker", "NextMarker", "IsTruncated",
                        "Truncated", "ContinuationToken", "NextContinuationToken"})
# Where an account's global services (IAM, S3 listing, S3 Control) are called, per partition.
HOME_REGION = {"aws": "us-east-1", "aws-cn": "cn-north-1", "aws-us-gov": "us-gov-west-1"}

RETRIES = {"mode": "adaptive", "max_attempts": 10}
# The first call to an account (who am I?) may find the endpoint unreachable: a few quick tries,
# so a dead endpoint costs seconds, not the minute ten adaptive attempts take. A fault AWS
# answers (5xx, throttling) on every quick try shows the endpoint alive: see Target.call.
FIRST_CONTACT = {"mode": "standard", "max_attempts": 3}
CONNECT_TIMEOUT = 5


class CallFailed(Exception):
    """An AWS call that could not be answered; ``state`` is the evidence state it leads to.

    ``unknown``: for a ``partial`` answer whose listing was read whole but some resources' detail
    reads failed, those resources (by the id the rules name them with) and why; the record stays
    readable for every other resource."""

    def __init__(self, state: EvidenceState, detail: str, payload: Any = None,
                 unknown: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.state = state
        self.detail = detail
        self.payload = payload
        self.unknown = dict(unknown or {})


def failure(exc: Exception, action: str, what: str = "") -> CallFailed:
    """Classify an SDK exception (see :func:`collectors.aws_errors.classify`)."""
    return CallFailed(*classify(exc, action, what))


def error_code(exc: Exception) -> str:
    return exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""


def strip(response: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


class Clients:
    """boto3 clients for one account, created once per (service, region), safe across threads."""

    def __init__(self, session: boto3.Session, endpoint_url: str | None) -> None:
        self.session = session
        self.endpoint_url = endpoint_url
        self._cache: dict[tuple[str, str], BaseClient] = {}
        self._lock = threading.Lock()

    def get(self, service: str, region: str, first_contact: bool = False) -> BaseClient:
        key = (service, region, first_contact)
        client = self._cache.get(key)   # a client made already: no waiting on one being made
        if client is not None:
            return client
        with self._lock:  # boto3 sessions are not thread-safe; clients are
            client = self._cache.get(key)
            if client is None:
                client = self._cache[key] = self._create(service, region, first_contact)
            return client

    def drop_region(self, region: str) -> None:
        """Let go of the clients of ``region`` (its reads are done): an account read across
        every region holds the clients of a few regions at a time, not of all of them. A read
        that still holds one keeps using it; a later read of the region makes a new one."""
        with self._lock:
            for key in [k for k in self._cache if k[1] == region]:
                del self._cache[key]

    def _create(self, service: str, region: str, first_contact: bool = False) -> BaseClient:
        # a copy: botocore's Config rewrites the dict it is given (max_attempts -> total_...)
        options: dict[str, Any] = {"retries": dict(FIRST_CONTACT if first_contact else RETRIES),
                                   "connect_timeout": CONNECT_TIMEOUT, "read_timeout": 60,
                                   "user_agent_extra": "attest"}
        if self.endpoint_url:
            options["s3"] = {"addressing_style": "path"}
        client = self.session.client(service, region_name=region, endpoint_url=self.endpoint_url,
                                     config=BotoConfig(**options))
        if service == "s3control" and self.endpoint_url:
            pin_endpoint_host(client, self.endpoint_url)
        return client


def pin_endpoint_host(client: BaseClient, endpoint_url: str) -> None:
    """Keep an S3 Control client on the configured host.

    Its endpoint rules put the account id in front of the host (``123456789012.127.0.0.1``),
    which does not resolve for a custom endpoint; ``inject_host_prefix`` does not change that."""
    netloc = urlsplit(endpoint_url).netloc

    def rewrite(request: Any, **_: Any) -> None:
        parts = urlsplit(request.url)
        if parts.netloc != netloc:
            request.url = urlunsplit(parts._replace(netloc=netloc))

    client.meta.events.register("before-sign.s3-control", rewrite)


@dataclass
class Account:
    """One AWS account to scan: how to open its session and, once identified, its id."""
    label: str                 # the role's account id, the profile name or "default"
    make_session: Callable[[], boto3.Session]
    endpoint_url: str | None = None
    id: str = ""
    partition: str = "aws"
    session: boto3.Session | None = None
    clients: Clients | None = None
    offered: dict[str, frozenset[str]] = field(default_factory=dict)  # service -> its regions
    duplicate: bool = False    # identified as an account another entry scans already

    # reads several evidence items share (the S3 bucket listing): computed once per account
    _shared: dict[str, Any] = field(default_factory=dict, repr=False)
    _shared_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def once(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` the first time ``key`` is asked for, its result (or its CallFailed)
        after that; threads asking at once wait for the first."""
        with self._shared_lock:
            slot = self._shared.setdefault(key, {"lock": threading.Lock()})
        with slot["lock"]:
            if "value" not in slot and "failed" not in slot:
                try:
                    slot["value"] = compute()
                except CallFailed as exc:
                    slot["failed"] = exc
            if "failed" in slot:
                failed = slot["failed"]
                raise CallFailed(failed.state, failed.detail, failed.payload, failed.unknown)
            return slot["value"]

    def open(self) -> None:
        """Create the session and its clients once (raises e.g. ProfileNotFound)."""
        if self.session is None:
            self.session = self.make_session()
            share_models(self.session)
            self.clients = Clients(self.session, self.endpoint_url)

    def close(self) -> None:
        """The account is read: let go of its session, clients and shared reads (an
        organization's accounts are read a few at a time; memory holds those few)."""
        self.clients = None
        self.session = None
        with self._shared_lock:
            self._shared.clear()

    @property
    def home_region(self) -> str:
        """Where account-wide calls go: the partition's main region once the account is known."""
        configured = (self.session.region_name if self.session else None) or "us-east-1"
        return HOME_REGION.get(self.partition, configured) if self.id else configured


@dataclass
class Target:
    """One (account, region) being read; ``region`` is the home region for global services."""
    account: Account
    region: str
    page_size: int | None = None
    # IAM actions used, for the evidence request; a set, as bucket threads add to it at once
    requested: set[str] = field(default_factory=set)

    def client(self, service: str, region: str | None = None, first_contact: bool = False) -> BaseClient:
        assert self.account.clients is not None
        return self.account.clients.get(service, region or self.region, first_contact)

    def call(self, service: str, operation: str, *, absent: tuple[str, ...] = (),
             region: str | None = None, what: str = "", first_contact: bool = False,
             **params: Any) -> dict[str, Any] | None:
        """One call; None when the error code is one of ``absent`` (the thing does not exist).

        ``first_contact``: a few quick tries (:data:`FIRST_CONTACT`); when AWS answered each
        with a fault botocore retries (5xx, throttling), the endpoint is alive, and the call is
        made again with the full budget (:data:`RETRIES`), so that a brief fault does not cost
        the whole account."""
        action = self._note(service, operation)
        client = self.client(service, region, first_contact)
        method = botocore.xform_name(operation)
        with api_call("aws", self.scope(region), action) as outcome:
            try:
                try:
                    return strip(getattr(client, method)(**params))
                except ClientError as exc:
                    if not (first_contact and _gave_up_retrying(exc)):
                        raise
                    client = self.client(service, region)
                    return strip(getattr(client, method)(**params))
            except (ClientError, BotoCoreError) as exc:
                if error_code(exc) in absent:
                    outcome["outcome"] = "absent"
                    return None
                failed = failure(exc, action, what)
                outcome.update(outcome=failed.state.value, detail=failed.detail,
                               failed=failed_entry(exc, action, failed.state,
                                                   _resource(region or self.region, what), client))
                raise failed from exc

    def scope(self, region: str | None = None) -> str:
        return f"aws:{self.account.id or self.account.label}:{region or self.region}"

    def paginate(self, service: str, operation: str, *, absent: tuple[str, ...] = (),
                 region: str | None = None, **params: Any) -> dict[str, Any] | None:
        """Every page of a call merged into one answer (lists concatenated); None as in :meth:`call`.

        A failure after the first page raises ``partial`` carrying the pages read so far."""
        client = self.client(service, region)
        method = botocore.xform_name(operation)
        if not client.can_paginate(method):
            return self.call(service, operation, absent=absent, region=region, **params)
        action = self._note(service, operation)
        paginator = client.get_paginator(method)
        pages = paginator.paginate(**params, PaginationConfig=self._page_config(
            client, operation, paginator))
        merged: dict[str, Any] = {}
        count = 0
        with api_call("aws", self.scope(region), action) as outcome:
            try:
                for page in pages:
                    _merge(merged, page)
                    count += 1
            except (ClientError, BotoCoreError) as exc:
                if count == 0 and error_code(exc) in absent:
                    outcome["outcome"] = "absent"
                    return None
                failed = failure(exc, action)
                if count > 0:
                    failed = CallFailed(EvidenceState.PARTIAL, f"page {count + 1}: {failed.detail}",
                                        merged)
                where = region or self.region
                outcome.update(outcome=failed.state.value, detail=failed.detail,
                               failed=failed_entry(exc, action, failed.state,
                                                   f"{where}, page {count + 1}" if count else where,
                                                   client))
                raise failed from exc
            outcome["detail"] = f"{count} page(s)" if count > 1 else None
        return merged

    def _page_config(self, client: BaseClient, operation: str, paginator: Any) -> dict[str, int]:
        """``PageSize`` when one is configured, raised to the operation's documented minimum."""
        limit_key = getattr(paginator, "_limit_key", None)  # botocore keeps it private
        if self.page_size is None or not limit_key:
            return {}
        member = client.meta.service_model.operation_model(operation).input_shape.members.get(limit_key)
        minimum = int(member.metadata.get("min", 1)) if member is not None else 1
        return {"PageSize": max(self.page_size, minimum)}

    def shared_list(self, service: str, operation: str) -> dict[str, Any]:
        """Every page of a list two evidence items of this region read (``ListClusters``,
        ``ListDetectors``, ``DescribeLoadBalancers``): called once per account and region, the
        answer (or its failure) shared; each item still names the action among its requests."""
        self._note(service, operation)
        key = f"{service}:{operation}:{self.region}"
        return dict(self.account.once(key, lambda: Target(    # a copy: each item adds its keys
            self.account, self.region, page_size=self.page_size).paginate(service, operation) or {}))

    def _note(self, service: str, operation: str) -> str:
        action = iam_action(service, operation)
        self.requested.add(action)  # one atomic step: no check-then-append across threads
        return action


def _gave_up_retrying(exc: ClientError) -> bool:
    """botocore retried this answered error (a 5xx, a throttle) until its attempts ran out."""
    return bool(exc.response.get("ResponseMetadata", {}).get("MaxAttemptsReached"))


def _resource(region: str, what: str = "") -> str:
    """What a failed call asked for, as failed-calls.json names it: ``bucket logs in us-east-1``."""
    return f"{what} in {region}" if what else region


def _merge(into: dict[str, Any], page: dict[str, Any]) -> None:
    for key, value in page.items():
        if key == "ResponseMetadata" or key in TOKEN_KEYS:
            continue
        if isinstance(value, list) and isinstance(into.get(key), list):
            into[key].extend(value)
        else:
            into.setdefault(key, value)


# At DEBUG, botocore logs signed request headers (access key id, session token) and parsed
# responses (AssumeRole credentials). Whatever level the host application sets, those loggers stay
# at INFO while attest collects: secrets never reach a log.
SECRET_BEARING_LOGGERS = ("botocore", "botocore.endpoint", "botocore.auth", "botocore.parsers",
                          "botocore.hooks", "botocore.credentials", "boto3", "urllib3")


def quiet_secret_logging() -> None:
    for name in SECRET_BEARING_LOGGERS:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.INFO:
            logger.setLevel(logging.INFO)


_LOADER: Any = None
_LOADER_LOCK = threading.Lock()


def share_models(session: boto3.Session) -> None:
    """Give ``session`` the one botocore data loader every account's session uses: the service
    models (EC2's alone is megabytes of JSON) are read and held once per scan, not once per
    account. Sessions themselves stay one per account (credentials differ)."""
    global _LOADER
    core = getattr(session, "_session", None)   # boto3.Session's botocore session
    if core is None:
        return
    with _LOADER_LOCK:
        if _LOADER is None:   # its models hold only the operations attest calls
            _LOADER = client_costs.trimmed_loader(core.get_config_variable("data_path"),
                                                  client_operations())
        if core.get_component("data_loader") is not _LOADER:
            core.register_component("data_loader", _LOADER)


def release_models() -> None:
    """The AWS collection is over: let go of the shared loader and what botocore built from it
    (the service models are tens of MB that judging and reporting do not need)."""
    global _LOADER
    with _LOADER_LOCK:
        _LOADER = None
    client_costs.release()


def open_accounts(accounts: list[Any], endpoint_url: str | None,
                  factory: SessionFactory = boto3.Session, *,
                  default: bool = True) -> list[Account]:
    """The configured accounts (none configured and ``default``: the default credential chain).

    Sessions are opened, and roles assumed, on first use, so a failure stays with its account."""
    quiet_secret_logging()
    if not accounts:
        return [Account("default", factory, endpoint_url)] if default else []
    out = []
    for entry in accounts:
        if entry.profile:
            out.append(Account(entry.profile, partial(factory, profile_name=entry.profile),
                               endpoint_url))
        else:
            label = entry.role_arn.split(":")[4]
            out.append(Account(label, partial(_assumed, entry, endpoint_url, factory),
                               endpoint_url))
    return out


def _assumed(entry: Any, endpoint_url: str | None, factory: SessionFactory) -> boto3.Session:
    """A session on the role's credentials. The role is assumed now, so that a role that cannot be
    assumed fails here, named (``sts:AssumeRole was denied (arn:...)``), for its account only;
    the credentials are refreshed by assuming it again when they expire."""
    base = factory()
    share_models(base)

    def sts_client(retries: dict[str, Any]) -> BaseClient:
        return base.client("sts", region_name=base.region_name or "us-east-1",
                           endpoint_url=endpoint_url,
                           config=BotoConfig(retries=dict(retries), connect_timeout=CONNECT_TIMEOUT))
    sts = sts_client(FIRST_CONTACT)
    params = {"RoleArn": entry.role_arn, "RoleSessionName": entry.session_name or "attest"}
    if entry.external_id:
        params["ExternalId"] = entry.external_id

    def fetch() -> dict[str, str]:
        # a few quick tries (a dead endpoint costs seconds); a fault STS answered on each of them
        # (5xx, throttling) shows it alive: then the full budget, as for Target.call's first contact
        nonlocal sts
        with api_call("aws", f"aws:{entry.role_arn.split(':')[4]}:global", "sts:AssumeRole") as outcome:
            try:
                try:
                    creds = sts.assume_role(**params)["Credentials"]
                except ClientError as exc:
                    if not _gave_up_retrying(exc):
                        raise
                    sts = sts_client(RETRIES)
                    creds = sts.assume_role(**params)["Credentials"]
            except (ClientError, BotoCoreError) as exc:
                failed = failure(exc, "sts:AssumeRole", entry.role_arn)
                outcome.update(outcome=failed.state.value, detail=failed.detail,
                               failed=failed_entry(exc, "sts:AssumeRole", failed.state,
                                                   entry.role_arn, sts))
                raise failed from exc
        return {"access_key": creds["AccessKeyId"], "secret_key": creds["SecretAccessKey"],
                "token": creds["SessionToken"], "expiry_time": creds["Expiration"].isoformat()}

    core = botocore.session.Session()
    if _LOADER is not None:
        core.register_component("data_loader", _LOADER)
    core._credentials = RefreshableCredentials.create_from_metadata(  # noqa: SLF001 (c7n's way)
        metadata=fetch(), refresh_using=fetch, method="sts-assume-role")
    return factory(botocore_session=core, region_name=base.region_name)
