"""GitHub: org settings, members' 2FA, branch protection and rulesets, Dependabot, secret scanning,
merged pull requests.

PyGithub supplies authentication (token or GitHub App installation), retries and rate-limit
waits; every answer is kept as the raw JSON GitHub sent (``requester.requestJsonAndCheck``),
never as SDK model dumps. Branch protection, rulesets and merged pull requests come from GraphQL
(a page of 100 repositories per call); see :mod:`collectors.github.graphql`.
"""
from __future__ import annotations

import json
import logging
import re
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator
from urllib.parse import parse_qs, quote, urlsplit

from pydantic import BaseModel

from attest.calls import reading
from attest.model import Evidence, EvidenceState, isoformat
from collectors.base import CollectContext
from collectors.http import (Http, HttpError, Paged, Request, Response, RetryPolicy,
                             Unreachable)
from collectors.github.graphql import (
    Graphql, GraphqlDenied, GraphqlError, merged_pulls, org_rulesets, repositories,
    repositories_by_id)
from collectors.github.source import (BRANCHES, DEPENDABOT, MEMBERS_2FA, ORG, ORG_RULESETS, PULLS,
                                      REPOS, SOURCE, Config)

PER_PAGE = 100


# A token in a JSON body ("token": "..."), a GitHub token by its prefix, or a JWT.
_SECRET = re.compile(r'("token"\s*:\s*")[^"]+|\bgh[opsur]_\w+|\beyJ[\w-]+\.[\w-]+\.[\w-]+')


class _RedactSecrets(logging.Filter):
    """PyGithub's DEBUG lines carry response bodies, e.g. a GitHub App's installation token."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        clean = _SECRET.sub(lambda m: (m.group(1) or "") + "[redacted]", text)
        if clean != text:
            record.msg, record.args = clean, None
        return True


def _redact_sdk_debug_log() -> None:
    """Install the filter on PyGithub's request logger (once)."""
    logger = logging.getLogger("github.Requester")
    if not any(isinstance(f, _RedactSecrets) for f in logger.filters):
        logger.addFilter(_RedactSecrets())


class GithubCollector:
    source: ClassVar[str] = SOURCE.name
    Config: ClassVar[type[BaseModel]] = Config
    produces: ClassVar[tuple[str, ...]] = SOURCE.produces

    def __init__(self, config: Config, **timing: Any) -> None:
        """``timing``: ``sleep`` and ``clock`` for tests that must not really wait."""
        self.config = config
        self.scope = f"github:{config.org}"
        self.http = Http(SOURCE.name, self.scope, base_url=config.base_url, denied=(401, 403, 422),
                         policy=RetryPolicy.of(config, max_wait=config.max_rate_limit_wait,
                                               max_wait_setting="github.max_rate_limit_wait"),
                         **timing)

    def _client(self) -> Any:
        from github import Auth, Github

        _redact_sdk_debug_log()
        cfg = self.config
        if cfg.token is not None:
            auth: Any = Auth.Token(cfg.token.get_secret_value())
        else:
            key = (cfg.private_key.get_secret_value() if cfg.private_key
                   else Path(cfg.private_key_path or "").read_text(encoding="utf-8"))
            auth = Auth.AppAuth(cfg.app_id, key).get_installation_auth(cfg.installation_id)
        # retries, rate-limit waits and pacing are the shared HTTP layer's: PyGithub sends once
        return Github(auth=auth, base_url=cfg.base_url, per_page=PER_PAGE, retry=0,
                      timeout=cfg.timeout, seconds_between_requests=None,
                      seconds_between_writes=None,  # GraphQL reads are POSTs, not writes
                      user_agent="attest")

    # --- REST helpers -------------------------------------------------------------------------

    def _request(self, req: Any, verb: str, url: str, needs: str = "", absent: tuple[int, ...] = (),
                 **kwargs: Any) -> Request:
        """One REST or GraphQL request through PyGithub's requester (its auth and transport)."""
        path = url.split("?")[0].replace(self.config.base_url, "") or "/"
        graphql = path.rstrip("/").endswith("graphql")

        def send() -> Response:
            from github import GithubException
            from requests.exceptions import RequestException
            try:
                status, headers, text = req.requestJson(verb, url, **kwargs)
            except GithubException as exc:   # e.g. a GitHub App's installation token refused
                return Response(exc.status, {k.lower(): v for k, v in (exc.headers or {}).items()},
                                exc.data, "")
            except RequestException as exc:
                raise Unreachable(f"{type(exc).__name__}: {exc}"[:300]) from None
            try:
                body = json.loads(text) if text else None
            except ValueError:
                body = None
            headers = {k.lower(): v for k, v in headers.items()}
            errors = body.get("errors") if graphql and isinstance(body, dict) else None
            if errors and any(e.get("type") == "RATE_LIMITED" for e in errors):
                status = 429   # GraphQL's rate limit comes as 200 with an error: same handling
            return Response(status, headers, body, text or "")
        operation = f"{verb} {'/graphql' if graphql else path}"
        return Request(operation, send, needs, absent,
                       template=f"{verb} {'/graphql' if graphql else _template(path)}",
                       path="/graphql" if graphql else path)

    def _get(self, req: Any, path: str, needs: str = "") -> Any:
        return self.http.call(self._request(req, "GET", path, needs)).body

    def _pages(self, req: Any, path: str, params: dict[str, Any], needs: str = "") -> Paged:
        """Every item of a paginated list. A list paged by number (its first answer's Link
        header names the ``rel="last"`` page) is read side by side, ``max_workers`` pages at
        once; one paged by cursor (Dependabot alerts) follows ``rel="next"`` in turn."""
        def next_of(response: Response) -> Request | None:
            target = self.http.link_next(response)
            return self._request(req, "GET", target, needs) if target else None

        def page(n: int) -> Request:
            return self._request(req, "GET", path, needs,
                                 parameters={**params, "per_page": PER_PAGE, "page": n})

        def last_of(response: Response) -> int | None:
            target = self.http.link(response, "last")
            numbers = parse_qs(urlsplit(target).query).get("page", []) if target else []
            return int(numbers[0]) if numbers and numbers[0].isdigit() else None
        return self.http.numbered_pages(
            self._request(req, "GET", path, needs, parameters={**params, "per_page": PER_PAGE}),
            page, last_of, next_of, lambda r: r.body if isinstance(r.body, list) else [],
            workers=self.config.max_workers)

    # --- collection ---------------------------------------------------------------------------

    def collect(self, ctx: CollectContext) -> Iterator[Evidence]:
        org = self.config.org
        gh = self._client()
        req = gh.requester
        ev = self._record(ctx)
        ctx.progress("github: organization")
        try:
            with reading(ORG):
                org_data = self._get(req, f"/orgs/{_segment(org)}",
                                     "to read the organization (Members: read / read:org)")
        except HttpError as exc:
            if exc.status not in self.http.policy.statuses:
                # first call: bad credentials, no answer, no such org... stop the source
                for name in self.produces:
                    yield ev(name, None, exc.state, exc.detail, {"method": "GET", "path": f"/orgs/{org}"})
                return
            # a server fault (5xx, 429) that outlasted the retries costs the org record only:
            # the other reads do not depend on it
            yield ev(ORG, None, exc.state, exc.detail, {"method": "GET", "path": f"/orgs/{org}"})
        else:
            yield ev(ORG, org_data, request={"method": "GET", "path": f"/orgs/{org}"})

        guard = lambda name, read: ctx.guarded(name, self.scope, read)   # noqa: E731
        gql = Graphql(lambda text, variables, needs: self.http.call(self._request(
            req, "POST", req.graphql_url, needs, input={"query": text, "variables": variables})))
        until = ctx.now
        since = ctx.since(PULLS, self.scope, self.config.changes_lookback_days)

        reads: dict[str, Callable[[], Evidence]] = {
            MEMBERS_2FA: lambda: self._rest_list(
                ctx, req, MEMBERS_2FA, f"/orgs/{_segment(org)}/members", {"filter": "2fa_disabled"},
                "be an organization owner (filter=2fa_disabled is owner-only)"),
            REPOS: lambda: self._rest_list(
                ctx, req, REPOS, f"/orgs/{_segment(org)}/repos", {"type": "all"},
                "list repositories (Metadata: read / repo)", shape=self._repos_payload),
            # repositories with their default branch's protection, rulesets and Dependabot-alerts
            # setting: 100 repositories per GraphQL call, no call per repository
            BRANCHES: lambda: self._branches(ctx, gql, futures[REPOS]),
            ORG_RULESETS: lambda: self._graphql(
                ctx, ORG_RULESETS, "organization.rulesets",
                "read organization rulesets (organization Administration: read / admin:org read, "
                "org owner)", lambda: org_rulesets(gql, org)),
            DEPENDABOT: lambda: self._rest_list(
                ctx, req, DEPENDABOT, f"/orgs/{_segment(org)}/dependabot/alerts", {"state": "open"},
                "read Dependabot alerts (Dependabot alerts: read / security_events; org owner or "
                "security manager)"),
            PULLS: lambda: self._graphql(
                ctx, PULLS, "search(is:pr is:merged)",
                "read pull requests and reviews (Pull requests: read / repo)",
                lambda: {"since": isoformat(since), "until": isoformat(until),
                         "pulls": merged_pulls(gql, org, since, until, self.config.include_archived)}),
        }
        ctx.progress("github: members, repositories, branch protection, Dependabot, pull requests")
        # independent reads run side by side; the HTTP layer paces them to the rate limit
        futures: dict[str, Future[Evidence]] = {}
        with ThreadPoolExecutor(self.config.max_workers, thread_name_prefix="attest-github") as pool:
            for name, read in reads.items():   # REPOS first: BRANCHES waits for its list
                futures[name] = pool.submit(guard, name, read)
            got = {name: f.result() for name, f in futures.items()}
        repos, alerts = got[REPOS], got[DEPENDABOT]
        if alerts.state.known and isinstance(alerts.payload, list):   # archived repos are out of scope
            if repos.state.known:
                archived = set(repos.payload["archived_skipped"])
                alerts = replace(alerts, payload=[a for a in alerts.payload
                                                  if _repo_of(a) not in archived])
            elif not self.config.include_archived:
                # which repositories are archived is unknown: the alerts cannot be scoped, and
                # judging them anyway would fail on repositories that are out of scope
                alerts = replace(alerts, state=EvidenceState.ERROR, payload=None,
                                 detail=f"the repositories could not be listed, so the archived "
                                        f"ones cannot be left out: {repos.detail}")
        got[DEPENDABOT] = alerts
        for name in self.produces:
            if name in got:
                yield got[name]

    def _branches(self, ctx: CollectContext, gql: Graphql, listed: "Future[Evidence]") -> Evidence:
        """The repositories' protection, rulesets and Dependabot-alerts setting. With the REST
        list of repositories in hand, GraphQL is asked for them by node id, batches side by side;
        without it (that read failed), through the organization's repositories connection, one
        page after the other. Either way the payload has the same shape."""
        permission = ("read repositories, branch protection and the Dependabot-alerts setting "
                      "(Administration: read, Metadata: read / repo; a repository admin)")
        include_archived = self.config.include_archived
        repos = listed.result()
        if repos.state is EvidenceState.OK and isinstance(repos.payload, dict):
            ids = [r["node_id"] for r in repos.payload["repositories"]
                   if isinstance(r, dict) and r.get("node_id")]
            if len(ids) == len(repos.payload["repositories"]):
                return self._graphql(
                    ctx, BRANCHES, "nodes(ids) of the repositories GET /orgs/{org}/repos listed",
                    permission, lambda: repositories_by_id(
                        gql, ids, include_archived, self.config.max_workers,
                        repos.payload["archived_skipped"]))
        return self._graphql(ctx, BRANCHES, "organization.repositories", permission,
                             lambda: repositories(gql, self.config.org, include_archived))

    def _record(self, ctx: CollectContext) -> Callable[..., Evidence]:
        def make(name: str, payload: Any, state: EvidenceState = EvidenceState.OK,
                 detail: str = "", request: dict[str, Any] | None = None) -> Evidence:
            return ctx.evidence(name, self.scope, payload, state=state, detail=detail,
                                request=request)
        return make

    def _repos_payload(self, repos: list[dict[str, Any]]) -> dict[str, Any]:
        keep = [r for r in repos if self.config.include_archived or not r.get("archived")]
        skipped = sorted(r["full_name"] for r in repos if r not in keep)
        return {"repositories": keep, "archived_skipped": skipped}

    def _rest_list(self, ctx: CollectContext, req: Any, name: str, path: str,
                   params: dict[str, Any], permission: str,
                   shape: Callable[[list[Any]], Any] = lambda items: items) -> Evidence:
        request = {"method": "GET", "path": path, "params": params}
        try:
            paged = self._pages(req, path, params, f"to {permission}")
        except HttpError as exc:
            return self._record(ctx)(name, None, exc.state, exc.detail, request)
        request["pages"] = paged.pages
        if paged.broken is not None:
            return self._record(ctx)(name, shape(paged.items), EvidenceState.PARTIAL,
                                     f"page {paged.pages + 1} failed: {paged.broken.detail}", request)
        return self._record(ctx)(name, shape(paged.items), request=request)

    def _graphql(self, ctx: CollectContext, name: str, operation: str, permission: str,
                 fetch: Callable[[], Any]) -> Evidence:
        request = {"method": "POST", "path": "/graphql", "operation": operation}
        try:
            payload = fetch()
        except GraphqlDenied as exc:
            detail = f"{exc}: the credentials must {permission}"
            self._graphql_failed(operation, exc, EvidenceState.DENIED, detail)
            return self._record(ctx)(name, None, EvidenceState.DENIED, detail, request)
        except GraphqlError as exc:
            self._graphql_failed(operation, exc, EvidenceState.ERROR, str(exc))
            return self._record(ctx)(name, None, EvidenceState.ERROR, str(exc), request)
        except HttpError as exc:
            return self._record(ctx)(name, None, exc.state, exc.detail, request)
        return self._record(ctx)(name, payload, request=request)


    def _graphql_failed(self, operation: str, exc: GraphqlError, state: EvidenceState,
                        detail: str) -> None:
        """A GraphQL answer (HTTP 200) whose errors end the read: a failed call all the same."""
        call = Request("POST /graphql", lambda: None, path=f"/graphql ({operation})")
        self.http.failed_answer(call, HttpError(state, detail), status=exc.kind)


_TEMPLATES = ((re.compile(r"^/orgs/[^/]+"), "/orgs/{org}"),
              (re.compile(r"^/organizations/\d+"), "/organizations/{id}"),
              (re.compile(r"^/repos/[^/]+/[^/]+"), "/repos/{owner}/{repo}"),
              (re.compile(r"^/users/[^/]+"), "/users/{user}"))


def _template(path: str) -> str:
    """A REST path as a template: ``/orgs/acme/members`` -> ``/orgs/{org}/members``."""
    for pattern, template in _TEMPLATES:
        path = pattern.sub(template, path)
    return path


def _segment(name: str) -> str:
    """One URL path segment for a name from the API ('/' and dot segments escaped)."""
    quoted = quote(name, safe="")
    return quoted.replace(".", "%2E") if quoted in (".", "..") else quoted


def _repo_of(alert: dict[str, Any]) -> str:
    return (alert.get("repository") or {}).get("full_name", "")
