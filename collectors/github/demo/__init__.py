"""A local GitHub API (REST + GraphQL) over a :class:`World`, for tests and ``attest scan --demo``.

Response bodies follow GitHub's REST description (github/rest-api-description): Link-header
pagination (``page``/``per_page``; cursor ``after`` for Dependabot alerts), ``x-ratelimit-*``
headers, ``{"message": "Bad credentials", ...}`` on a bad token, ``Branch not protected`` on an
unprotected branch, owner-only fields left out for other members. GraphQL is executed against a
subset of GitHub's schema (:mod:`collectors.github.demo.graphql`).
"""
from __future__ import annotations

import json
import secrets
import time
from datetime import datetime
from typing import Any, Callable
from urllib.parse import unquote, urlencode

from werkzeug.wrappers import Request, Response

from attest.demo import DemoSource
from collectors.github.demo.graphql import execute
from collectors.github.demo.seed import acme_world
from collectors.github.demo.world import (
    MEMBER, OWNER, Alert, Repo, World, cursor, iso, node_id, uncursor)
from attest.demo.http import LocalServer

DOCS = "https://docs.github.com/rest"


def _error(status: int, message: str, docs: str = DOCS) -> tuple[int, Any]:
    return status, {"message": message, "documentation_url": docs, "status": str(status)}


class FakeGithub:
    """The WSGI app. ``world`` may be changed between requests by tests."""

    def __init__(self, world: World) -> None:
        self.world = world

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        request = Request(environ)
        raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or request.path
        parts = [unquote(p) for p in raw.split("?", 1)[0].split("/") if p]
        self.world.calls += 1
        status, body, headers = self.dispatch(request, parts)
        response = Response(json.dumps(body) if body is not None else b"", status=status,
                            content_type="application/json; charset=utf-8")
        reset = int(time.time()) + 3600
        remaining = max(0, 5000 - self.world.calls)
        response.headers.update({
            "x-ratelimit-limit": "5000", "x-ratelimit-remaining": str(remaining),
            "x-ratelimit-reset": str(reset), "x-ratelimit-used": str(5000 - remaining),
            "x-ratelimit-resource": "graphql" if parts == ["graphql"] else "core",
            "x-github-api-version-selected": "2022-11-28",
            "x-github-request-id": secrets.token_hex(8).upper()})
        response.headers.update(headers)
        return response(environ, start_response)

    def dispatch(self, request: Request, parts: list[str]) -> tuple[int, Any, dict[str, str]]:
        w = self.world
        if w.throttled:
            w.throttled -= 1
            return (*_error(429, "You have exceeded a secondary rate limit."), {"retry-after": "1"})
        if w.rate_limited:
            w.rate_limited -= 1
            status, body = _error(403, "API rate limit exceeded for user ID 1.",
                                  "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api")
            return status, body, {"x-ratelimit-remaining": "0",
                                  "x-ratelimit-reset": str(int(time.time()))}
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        if parts[:2] == ["app", "installations"] and request.method == "POST":
            return (*self.installation_token(parts, credential), {})
        role = w.tokens.get(credential) if scheme.lower() in ("token", "bearer") else None
        if role is None:
            return (*_error(401, "Bad credentials"), {})
        if parts == ["graphql"] and request.method == "POST":
            if w.graphql_rate_limited:
                w.graphql_rate_limited -= 1
                return 200, {"errors": [{"type": "RATE_LIMITED", "message":
                                         "API rate limit exceeded for user ID 1."}]}, {
                    "x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(time.time()))}
            return 200, execute(w, role, request.get_json(silent=True) or {}), {}
        if request.method != "GET":
            return (*_error(404, "Not Found"), {})
        return self.rest(request, parts, role)

    def rest(self, request: Request, parts: list[str], role: str) -> tuple[int, Any, dict[str, str]]:
        w, owner = self.world, role == OWNER
        if len(parts) >= 2 and parts[0] == "orgs":
            if parts[1].lower() != w.org.lower():
                return (*_error(404, "Not Found"), {})
            tail = parts[2:]
            if not tail:
                return 200, self.org_json(owner), {}
            if tail == ["members"]:
                if request.args.get("filter") == "2fa_disabled" and not owner:
                    return (*_error(422, "Only owners can use this filter."), {})
                chosen = [m for m in w.members
                          if request.args.get("filter") != "2fa_disabled" or not m.two_factor]
                return self.paged(request, [member_json(m.login, i) for i, m in enumerate(chosen)])
            if tail == ["repos"]:
                return self.paged(request, [self.repo_json(r, owner) for r in w.repos])
            if tail == ["dependabot", "alerts"]:
                if not owner:
                    return (*_error(403, "Resource not accessible by integration"), {})
                state = request.args.get("state", "open")
                alerts = [self.alert_json(a) for a in w.alerts if a.state in state.split(",")]
                return self.cursor_paged(request, alerts)
        if len(parts) >= 4 and parts[0] == "repos" and parts[1].lower() == w.org.lower():
            repo = w.repo(parts[2])
            if repo is None:
                return (*_error(404, "Not Found"), {})
            tail = parts[3:]
            if tail == ["vulnerability-alerts"]:
                if owner and repo.vulnerability_alerts:
                    return 204, None, {}
                return (*_error(404, "Not Found"), {})
            if len(tail) == 3 and tail[0] == "branches" and tail[2] == "protection":
                if tail[1] != repo.default_branch or repo.protection is None or not owner:
                    return (*_error(404, "Branch not protected",
                                    f"{DOCS}/branches/branch-protection#get-branch-protection"), {})
                return 200, self.protection_json(repo), {}
        return (*_error(404, "Not Found"), {})

    # --- pagination ---------------------------------------------------------------------------

    def paged(self, request: Request, items: list[Any]) -> tuple[int, Any, dict[str, str]]:
        per_page = max(1, min(int(request.args.get("per_page", 30)), 100))
        page = max(1, int(request.args.get("page", 1)))
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page: page * per_page]
        links = []
        args = {k: v for k, v in request.args.items() if k != "page"}

        def link(n: int, rel: str) -> str:
            return f'<{request.base_url}?{urlencode({**args, "page": n})}>; rel="{rel}"'
        if page > 1:
            links += [link(page - 1, "prev"), link(1, "first")]
        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        return 200, chunk, ({"link": ", ".join(links)} if links else {})

    def cursor_paged(self, request: Request, items: list[Any]) -> tuple[int, Any, dict[str, str]]:
        per_page = max(1, min(int(request.args.get("per_page", 30)), 100))
        start = uncursor(request.args.get("after"))
        chunk = items[start:start + per_page]
        headers = {}
        if start + per_page < len(items):
            args = {k: v for k, v in request.args.items() if k != "after"}
            args["after"] = cursor(start + per_page - 1)
            headers["link"] = f'<{request.base_url}?{urlencode(args)}>; rel="next"'
        return 200, chunk, headers

    # --- GitHub App ---------------------------------------------------------------------------

    def installation_token(self, parts: list[str], jwt_token: str) -> tuple[int, Any]:
        import jwt

        app = self.world.app
        if app is None or parts[2:] != [str(app.installation_id), "access_tokens"]:
            return _error(404, "Not Found")
        try:
            claims = jwt.decode(jwt_token, app.public_key_pem, algorithms=["RS256"])
        except jwt.PyJWTError:
            return _error(401, "A JSON web token could not be decoded")
        if str(claims.get("iss")) != str(app.app_id):
            return _error(401, "Integration not found")
        token = "ghs_" + secrets.token_hex(18)
        self.world.tokens[token] = OWNER
        return 201, {"token": token, "expires_at": iso(self.world.now.replace(year=2100)),
                     "permissions": {"administration": "read", "members": "read",
                                     "metadata": "read", "vulnerability_alerts": "read",
                                     "secret_scanning_alerts": "read", "pull_requests": "read",
                                     "organization_administration": "read"},
                     "repository_selection": "all"}

    # --- REST shapes --------------------------------------------------------------------------

    def org_json(self, owner: bool) -> dict[str, Any]:
        w = self.world
        org = {"login": w.org, "id": 4242, "node_id": node_id("Organization", 4242),
               "url": f"https://api.github.com/orgs/{w.org}",
               "repos_url": f"https://api.github.com/orgs/{w.org}/repos",
               "html_url": f"https://github.com/{w.org}", "name": "Acme Rockets, Inc.",
               "description": "We build rockets.", "type": "Organization",
               "public_repos": sum(1 for r in w.repos if not r.private),
               "created_at": "2019-03-01T09:00:00Z", "updated_at": iso(w.now),
               "members_can_create_repositories": True, "default_repository_permission": "read"}
        if owner:  # owner-only fields: absent for other members, as on GitHub
            org.update({"two_factor_requirement_enabled": w.two_factor_requirement_enabled,
                        "total_private_repos": sum(1 for r in w.repos if r.private),
                        "billing_email": "billing@acme-rockets.example",
                        "plan": {"name": "team", "seats": 50, "filled_seats": len(w.members)}})
        return org

    def repo_json(self, repo: Repo, owner: bool) -> dict[str, Any]:
        w = self.world
        full = f"{w.org}/{repo.name}"
        data: dict[str, Any] = {
            "id": repo.id, "node_id": node_id("Repository", repo.id), "name": repo.name,
            "full_name": full, "private": repo.private,
            "owner": {"login": w.org, "id": 4242, "type": "Organization"},
            "html_url": f"https://github.com/{full}", "description": None, "fork": False,
            "url": f"https://api.github.com/repos/{full}", "archived": repo.archived,
            "disabled": False, "visibility": "private" if repo.private else "public",
            "default_branch": repo.default_branch, "created_at": "2020-01-01T00:00:00Z",
            "updated_at": iso(w.now), "pushed_at": iso(w.now),
            "permissions": {"admin": owner, "maintain": owner, "push": owner, "triage": owner,
                            "pull": True}}
        if owner:  # security_and_analysis is shown to admins only
            def status(on: bool) -> dict[str, str]:
                return {"status": "enabled" if on else "disabled"}
            data["security_and_analysis"] = {
                "dependabot_security_updates": status(repo.security_updates),
                "secret_scanning": status(repo.secret_scanning),
                "secret_scanning_push_protection": status(repo.secret_scanning)}
        return data

    def alert_json(self, a: Alert) -> dict[str, Any]:
        w = self.world
        full = f"{w.org}/{a.repo}"
        package = {"ecosystem": "npm", "name": a.package}
        return {
            "number": a.number, "state": a.state,
            "dependency": {"package": package, "manifest_path": "package-lock.json",
                           "scope": "runtime"},
            "security_advisory": {
                "ghsa_id": a.ghsa_id, "cve_id": a.cve_id, "summary": f"Vulnerability in {a.package}",
                "description": "Prototype pollution.", "severity": a.severity,
                "identifiers": [{"type": "GHSA", "value": a.ghsa_id}],
                "references": [], "published_at": "2019-07-10T00:00:00Z",
                "updated_at": "2023-01-01T00:00:00Z", "withdrawn_at": None},
            "security_vulnerability": {"package": package, "severity": a.severity,
                                       "vulnerable_version_range": "< 4.17.12",
                                       "first_patched_version": {"identifier": "4.17.12"}},
            "url": f"https://api.github.com/repos/{full}/dependabot/alerts/{a.number}",
            "html_url": f"https://github.com/{full}/security/dependabot/{a.number}",
            "created_at": iso(a.created_at), "updated_at": iso(a.created_at),
            "dismissed_at": None, "dismissed_by": None, "dismissed_reason": None,
            "dismissed_comment": None, "fixed_at": None, "auto_dismissed_at": None,
            "repository": {"id": (w.repo(a.repo) or Repo(a.repo)).id, "name": a.repo,
                           "full_name": full, "private": True,
                           "owner": {"login": w.org, "type": "Organization"}}}

    def protection_json(self, repo: Repo) -> dict[str, Any]:
        p = repo.protection
        assert p is not None
        url = f"https://api.github.com/repos/{self.world.org}/{repo.name}/branches/{repo.default_branch}/protection"
        data: dict[str, Any] = {
            "url": url, "enforce_admins": {"url": f"{url}/enforce_admins", "enabled": p.enforce_admins},
            "allow_force_pushes": {"enabled": p.allow_force_pushes},
            "allow_deletions": {"enabled": p.allow_deletions}}
        if p.required_reviews is not None:
            data["required_pull_request_reviews"] = {
                "url": f"{url}/required_pull_request_reviews", "dismiss_stale_reviews": False,
                "require_code_owner_reviews": False,
                "required_approving_review_count": p.required_reviews}
        if p.status_checks is not None:
            data["required_status_checks"] = {
                "url": f"{url}/required_status_checks", "strict": False,
                "contexts": p.status_checks,
                "checks": [{"context": c, "app_id": None} for c in p.status_checks]}
        return data


def member_json(login: str, index: int) -> dict[str, Any]:
    return {"login": login, "id": 5000 + index, "node_id": node_id("User", 5000 + index),
            "avatar_url": f"https://avatars.githubusercontent.com/u/{5000 + index}",
            "url": f"https://api.github.com/users/{login}", "html_url": f"https://github.com/{login}",
            "type": "User", "site_admin": False}


def serve(world: World) -> LocalServer:
    """Start the fake on 127.0.0.1 (a free port); ``.url`` is the base_url, ``.log`` the requests."""
    server = LocalServer(FakeGithub(world))
    server.start()
    return server


def start_demo(now: datetime) -> DemoSource:
    """Acme Rockets' GitHub organization on a local fake, with a random demo token."""
    world, expected = acme_world(now)
    token = "ghp_demo" + secrets.token_hex(16)
    world.tokens[token] = OWNER
    server = serve(world)
    return DemoSource(section={"org": world.org, "base_url": server.url,
                               "token": "${ATTEST_DEMO_GITHUB_TOKEN}"},
                      env={"ATTEST_DEMO_GITHUB_TOKEN": token}, expected=expected,
                      stop=server.stop, extra={"world": world, "log": server.log})


__all__ = ["FakeGithub", "MEMBER", "OWNER", "World", "serve", "start_demo"]
