"""GitHub: org settings, members' 2FA, branch protection and rulesets, Dependabot, secret scanning,
merged pull requests.

PyGithub supplies authentication (token or GitHub App installation), retries and rate-limit
waits; every answer is kept as the raw JSON GitHub sent (``requester.requestJsonAndCheck``),
never as SDK model dumps. Branch protection, rulesets and merged pull requests come from GraphQL
(a page of 100 repositories per call); see :mod:`collectors.github.graphql`.
"""
from __future__ import annotations

import logging
import re
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator
from urllib.parse import quote

from pydantic import BaseModel

from attest.logs import api_call
from attest.model import Evidence, EvidenceState, isoformat
from collectors.base import CollectContext
from collectors.github.graphql import (
    Graphql, GraphqlDenied, GraphqlError, merged_pulls, org_rulesets, repositories)
from collectors.github.source import (BRANCHES, DEPENDABOT, MEMBERS_2FA, ORG, ORG_RULESETS, PULLS,
                                      REPOS, SOURCE, VULN_ALERTS, Config)

PER_PAGE = 100
_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="next"')


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

    def __init__(self, config: Config) -> None:
        self.config = config
        self.scope = f"github:{config.org}"

    def _client(self) -> Any:
        from github import Auth, Github, GithubRetry

        _redact_sdk_debug_log()
        cfg = self.config
        if cfg.token is not None:
            auth: Any = Auth.Token(cfg.token.get_secret_value())
        else:
            key = (cfg.private_key.get_secret_value() if cfg.private_key
                   else Path(cfg.private_key_path or "").read_text(encoding="utf-8"))
            auth = Auth.AppAuth(cfg.app_id, key).get_installation_auth(cfg.installation_id)
        retry = GithubRetry(total=cfg.max_retries, backoff_factor=0.5,
                            status_forcelist=[429, 500, 502, 503, 504],
                            max_rate_limit_wait=cfg.max_rate_limit_wait,
                            secondary_rate_wait=min(60, cfg.max_rate_limit_wait),
                            retry_after_max=cfg.max_rate_limit_wait)
        return Github(auth=auth, base_url=cfg.base_url, per_page=PER_PAGE, retry=retry,
                      timeout=cfg.timeout, seconds_between_requests=None,
                      seconds_between_writes=None,  # GraphQL reads are POSTs, not writes
                      user_agent="attest")

    # --- REST helpers -------------------------------------------------------------------------

    def _get(self, req: Any, path: str, params: dict[str, Any] | None = None) -> Any:
        return self._request(req, "GET", path, parameters=params)[1]

    def _request(self, req: Any, verb: str, url: str, **kwargs: Any) -> tuple[Any, Any]:
        """One REST or GraphQL request, logged as an API call (PyGithub retries inside it)."""
        call = f"{verb} {url.split('?')[0].replace(self.config.base_url, '') or '/'}"
        with api_call("github", f"github:{self.config.org}", call) as outcome:
            try:
                return req.requestJsonAndCheck(verb, url, **kwargs)
            except Exception as exc:
                status = getattr(exc, "status", None)
                outcome.update(outcome="denied" if status in (401, 403) else
                               "absent" if status == 404 else "error",
                               detail=f"HTTP {status}" if status else type(exc).__name__)
                raise

    def _pages(self, req: Any, path: str, params: dict[str, Any]) -> list[Any]:
        """Every item of a paginated list, following the Link header's rel="next"."""
        items: list[Any] = []
        url: str | None = path
        query: dict[str, Any] | None = {**params, "per_page": PER_PAGE}
        while url:
            headers, data = self._request(req, "GET", url, parameters=query)
            items.extend(data)
            match = _LINK_NEXT.search(headers.get("link", ""))
            url, query = (match.group(1), None) if match else (None, None)
        return items

    # --- collection ---------------------------------------------------------------------------

    def collect(self, ctx: CollectContext) -> Iterator[Evidence]:
        org = self.config.org
        gh = self._client()
        req = gh.requester
        ev = self._record(ctx)
        ctx.progress("github: organization")
        try:
            org_data = self._get(req, f"/orgs/{_segment(org)}")
        except Exception as exc:  # first call: bad credentials etc. stop the whole source
            state, detail = _failure(exc, "read the organization (Members: read / read:org)")
            for name in self.produces:
                yield ev(name, None, state, detail, {"method": "GET", "path": f"/orgs/{org}"})
            return
        yield ev(ORG, org_data, request={"method": "GET", "path": f"/orgs/{org}"})

        yield self._rest_list(ctx, req, MEMBERS_2FA, f"/orgs/{_segment(org)}/members",
                              {"filter": "2fa_disabled"},
                              "be an organization owner (filter=2fa_disabled is owner-only)")

        ctx.progress("github: repositories")
        repos = self._rest_list(ctx, req, REPOS, f"/orgs/{_segment(org)}/repos",
                                {"type": "all"}, "list repositories (Metadata: read / repo)",
                                shape=self._repos_payload)
        yield repos

        ctx.progress("github: branch protection and rulesets")
        gql = Graphql(req, self.config.max_rate_limit_wait, request=self._request)
        yield self._graphql(ctx, BRANCHES, "organization.repositories",
                            "read repositories and branch protection (Administration: read, "
                            "Metadata: read / repo)",
                            lambda: repositories(gql, org, self.config.include_archived))
        yield self._graphql(ctx, ORG_RULESETS, "organization.rulesets",
                            "read organization rulesets (organization Administration: read / "
                            "admin:org read, org owner)",
                            lambda: org_rulesets(gql, org))

        ctx.progress("github: Dependabot")
        yield self._vulnerability_alerts(ctx, req, repos)
        archived = set(repos.payload["archived_skipped"]) if repos.state.known else set()
        yield self._rest_list(ctx, req, DEPENDABOT, f"/orgs/{_segment(org)}/dependabot/alerts",
                              {"state": "open"},
                              "read Dependabot alerts (Dependabot alerts: read / security_events; "
                              "org owner or security manager)",
                              shape=lambda alerts: [a for a in alerts if _repo_of(a) not in archived])

        ctx.progress("github: merged pull requests")
        until = ctx.now
        since = until - timedelta(days=self.config.changes_lookback_days)
        # since the last scan that read the merged pulls successfully (a failed night must not
        # leave a hole in the window), at most changes_lookback_days back
        last_ok = ctx.last_collected(PULLS, self.scope)
        if last_ok is not None and last_ok > since:
            since = last_ok
        yield self._graphql(ctx, PULLS, "search(is:pr is:merged)",
                            "read pull requests and reviews (Pull requests: read / repo)",
                            lambda: {"since": isoformat(since), "until": isoformat(until),
                                     "pulls": merged_pulls(gql, org, since, until,
                                                           self.config.include_archived)})

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
            items = self._pages(req, path, params)
        except Exception as exc:
            state, detail = _failure(exc, permission)
            return self._record(ctx)(name, None, state, detail, request)
        return self._record(ctx)(name, shape(items), request=request)

    def _graphql(self, ctx: CollectContext, name: str, operation: str, permission: str,
                 fetch: Callable[[], Any]) -> Evidence:
        request = {"method": "POST", "path": "/graphql", "operation": operation}
        try:
            payload = fetch()
        except GraphqlDenied as exc:
            detail = f"{exc}: the credentials must {permission}"
            return self._record(ctx)(name, None, EvidenceState.DENIED, detail, request)
        except GraphqlError as exc:
            return self._record(ctx)(name, None, EvidenceState.ERROR, str(exc), request)
        except Exception as exc:
            state, detail = _failure(exc, permission)
            return self._record(ctx)(name, None, state, detail, request)
        return self._record(ctx)(name, payload, request=request)

    def _vulnerability_alerts(self, ctx: CollectContext, req: Any, repos: Evidence) -> Evidence:
        """GET /repos/{o}/{r}/vulnerability-alerts per repo: 204 enabled, 404 disabled."""
        from github import GithubException

        request = {"method": "GET", "path": "/repos/{owner}/{repo}/vulnerability-alerts"}
        if not repos.state.known:
            return self._record(ctx)(VULN_ALERTS, None, repos.state,
                                     f"repositories could not be listed: {repos.detail}", request)
        result: dict[str, Any] = {}
        for repo in repos.payload["repositories"]:
            full = repo["full_name"]
            owner, _, name = full.partition("/")
            path = f"/repos/{_segment(owner)}/{_segment(name)}/vulnerability-alerts"
            admin = (repo.get("permissions") or {}).get("admin")
            try:
                self._request(req, "GET", path)
                result[full] = {"status": 204, "enabled": True, "viewer_admin": admin}
            except GithubException as exc:
                entry: dict[str, Any] = {"status": exc.status, "viewer_admin": admin,
                                         "message": _message(exc)}
                if exc.status == 404:
                    entry["enabled"] = False
                result[full] = entry
        return self._record(ctx)(VULN_ALERTS, result, request=request)


def _segment(name: str) -> str:
    """One URL path segment for a name from the API ('/' and dot segments escaped)."""
    quoted = quote(name, safe="")
    return quoted.replace(".", "%2E") if quoted in (".", "..") else quoted


def _repo_of(alert: dict[str, Any]) -> str:
    return (alert.get("repository") or {}).get("full_name", "")


def _message(exc: Any) -> str:
    data = getattr(exc, "data", None)
    if isinstance(data, dict) and data.get("message"):
        return str(data["message"])
    return str(data or exc)[:300]


def _failure(exc: Exception, permission: str) -> tuple[EvidenceState, str]:
    """Evidence state and a one-line detail for a failed call (never containing the token)."""
    from github import GithubException, RateLimitExceededException

    if isinstance(exc, RateLimitExceededException):
        return EvidenceState.ERROR, f"rate limited by GitHub beyond the configured wait: {_message(exc)}"
    if isinstance(exc, GithubException):
        msg = _message(exc)
        if exc.status == 401:
            return EvidenceState.DENIED, f"GitHub rejected the credentials (401 {msg})"
        if exc.status in (403, 422):
            return EvidenceState.DENIED, f"{exc.status} {msg}: the credentials must {permission}"
        if exc.status == 404:
            return EvidenceState.ERROR, f"404 {msg}: not found or not visible; the credentials must {permission}"
        return EvidenceState.ERROR, f"GitHub answered {exc.status}: {msg}"
    return EvidenceState.ERROR, f"{type(exc).__name__}: {exc}"[:300]
