"""A fake of the Okta Management API, shaped by Okta's OpenAPI description (okta-sdk-python
``openapi/api.yaml``): users, user factors, policies and policy rules, the org metadata, the
System Log (``/api/v1/logs``: LogEvent objects, ``since``/``until``/``filter``/``limit``/``after``),
and the OAuth 2.0 token endpoint for service apps (client_credentials + private_key_jwt, no DPoP).

Like Okta it paginates with ``limit``/``after`` and ``Link: <...>; rel="next"``, sends
``X-Rate-Limit-*`` headers, answers 401 E0000011 for a bad token, 403 E0000006 for a missing
permission (scope), and 429 E0000047 when told to throttle. Its state is an :class:`OktaWorld`.
Builders (``user``, ``factor``, ``policy``, ``sign_on_rule``...) make spec-shaped objects.
"""
from __future__ import annotations

import itertools
import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import formatdate
from typing import Any, Callable, Iterable
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from attest.demo import DemoSource
from attest.demo.http import LocalServer
from collectors.okta.demo_system_log import PROD_ADMINS, seed_system_log, system_log

READ_SCOPES = frozenset({"okta.users.read", "okta.policies.read", "okta.groups.read",
                         "okta.apps.read", "okta.orgs.read", "okta.logs.read"})
_ids = itertools.count(1)


def new_id(prefix: str) -> str:
    """An Okta-looking 20-character id: ``00u`` users, ``00p`` policies, ``0pr`` rules..."""
    return f"{prefix}{next(_ids):07d}acmeRkt0g4"[:20].ljust(20, "x")


def user(login: str, *, status: str = "ACTIVE", first: str = "", last: str = "",
         created: datetime | None = None, activated: datetime | None = None,
         last_login: datetime | None = None, user_id: str | None = None) -> dict[str, Any]:
    """A User object as GET /api/v1/users returns it."""
    uid = user_id or new_id("00u")
    ts = (lambda d: d.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z") if d else None)
    return {
        "id": uid, "status": status, "created": ts(created) or "2023-01-09T10:00:00.000Z",
        "activated": ts(activated), "statusChanged": ts(activated), "lastLogin": ts(last_login),
        "lastUpdated": ts(last_login or activated) or "2023-01-09T10:00:00.000Z",
        "passwordChanged": ts(activated), "type": {"id": "oty1acmeRocketsDflt0g4"},
        "profile": {"firstName": first, "lastName": last, "mobilePhone": None, "secondEmail": None,
                    "login": login, "email": login},
        "credentials": {"password": {}, "provider": {"type": "OKTA", "name": "OKTA"}},
        "_links": {"self": {"href": f"/api/v1/users/{uid}"}},
    }


def factor(factor_type: str, status: str = "ACTIVE", provider: str = "OKTA") -> dict[str, Any]:
    """A UserFactor object (factorType: push, token:software:totp, webauthn, sms, question...)."""
    fid = new_id({"push": "opf", "sms": "sms", "question": "ufs"}.get(factor_type, "fwf"))
    return {"id": fid, "factorType": factor_type, "provider": provider, "vendorName": provider,
            "status": status, "created": "2023-02-01T09:00:00.000Z",
            "lastUpdated": "2023-02-01T09:00:00.000Z", "profile": {},
            "_links": {"self": {"href": f"/api/v1/users/factors/{fid}"}}}


def policy(policy_type: str, name: str, priority: int = 1, *, status: str = "ACTIVE",
           system: bool = False, settings: dict[str, Any] | None = None,
           groups: list[str] | None = None, policy_id: str | None = None) -> dict[str, Any]:
    """A Policy object (OKTA_SIGN_ON, ACCESS_POLICY, PASSWORD...)."""
    pid = policy_id or new_id("00p")
    body: dict[str, Any] = {
        "type": policy_type, "id": pid, "status": status, "name": name, "description": name,
        "priority": priority, "system": system,
        "conditions": {"people": {"groups": {"include": groups or ["00g1everyone0000g4"]}}}
        if policy_type != "ACCESS_POLICY" else None,
        "created": "2023-01-09T10:00:00.000Z", "lastUpdated": "2024-04-25T17:35:02.000Z",
        "_links": {"self": {"href": f"/api/v1/policies/{pid}"},
                   "rules": {"href": f"/api/v1/policies/{pid}/rules"}}}
    if settings is not None:
        body["settings"] = settings
    return body


def password_settings(min_length: int, max_attempts: int) -> dict[str, Any]:
    """``settings`` of a PASSWORD policy."""
    return {"password": {
        "complexity": {"minLength": min_length, "minLowerCase": 1, "minUpperCase": 1,
                       "minNumber": 1, "minSymbol": 0, "excludeUsername": True,
                       "dictionary": {"common": {"exclude": True}}, "excludeAttributes": []},
        "age": {"maxAgeDays": 0, "expireWarnDays": 0, "minAgeMinutes": 0, "historyCount": 4},
        "lockout": {"maxAttempts": max_attempts, "autoUnlockMinutes": 0,
                    "userLockoutNotificationChannels": [], "showLockoutFailures": False}},
        "recovery": {"factors": {"okta_email": {"status": "ACTIVE"}}},
        "delegation": {"options": {"skipUnlock": False}}}


def _conditions(groups: list[str] | None, zones: list[str] | None) -> dict[str, Any]:
    cond: dict[str, Any] = {"people": {"users": {"exclude": []}},
                            "network": {"connection": "ANYWHERE"}}
    if groups:
        cond["people"]["groups"] = {"include": groups}
    if zones:
        cond["network"] = {"connection": "ZONE", "include": zones}
    return cond


def _rule(rule_type: str, name: str, priority: int, actions: dict[str, Any],
          conditions: dict[str, Any] | None, status: str, system: bool) -> dict[str, Any]:
    rid = new_id("0pr")
    return {"id": rid, "status": status, "name": name, "priority": priority,
            "created": "2023-01-09T10:00:00.000Z", "lastUpdated": "2024-04-25T17:35:02.000Z",
            "system": system, "conditions": conditions, "actions": actions, "type": rule_type,
            "_links": {"self": {"href": f"/api/v1/policies/rules/{rid}"}}}


def sign_on_rule(name: str, priority: int, *, require_factor: bool, access: str = "ALLOW",
                 groups: list[str] | None = None, zones: list[str] | None = None,
                 status: str = "ACTIVE", system: bool = False,
                 primary_factor: str | None = None) -> dict[str, Any]:
    """An OKTA_SIGN_ON rule (Classic sign-on policy, or Identity Engine global session policy)."""
    signon: dict[str, Any] = {"access": access, "requireFactor": require_factor,
                              "factorPromptMode": "ALWAYS", "rememberDeviceByDefault": False,
                              "session": {"maxSessionIdleMinutes": 120,
                                          "maxSessionLifetimeMinutes": 0,
                                          "usePersistentCookie": False}}
    if require_factor:
        signon["factorLifetime"] = 15
    if primary_factor:
        signon["primaryFactor"] = primary_factor
    return _rule("SIGN_ON", name, priority, {"signon": signon},
                 {**_conditions(groups, zones), "authContext": {"authType": "ANY"}}, status, system)


def access_rule(name: str, priority: int, *, factor_mode: str, access: str = "ALLOW",
                groups: list[str] | None = None, zones: list[str] | None = None,
                status: str = "ACTIVE", system: bool = False) -> dict[str, Any]:
    """An ACCESS_POLICY rule (Identity Engine app authentication policy)."""
    catch_all = not groups and not zones
    return _rule("ACCESS_POLICY", name, priority,
                 {"appSignOn": {"access": access, "verificationMethod": {
                     "factorMode": factor_mode, "type": "ASSURANCE", "reauthenticateIn": "PT12H",
                     "constraints": [{"possession": {"required": True}}] if factor_mode == "2FA" else []}}},
                 None if catch_all else _conditions(groups, zones), status, system)


def password_rule(name: str = "Default Rule", priority: int = 1) -> dict[str, Any]:
    return _rule("PASSWORD", name, priority,
                 {"passwordChange": {"access": "ALLOW"},
                  "selfServicePasswordReset": {"access": "ALLOW"},
                  "selfServiceUnlock": {"access": "DENY"}},
                 {"people": {"users": {"exclude": []}}, "network": {"connection": "ANYWHERE"}},
                 "ACTIVE", True)


@dataclass
class OAuthApp:
    public_key_pem: str
    scopes: frozenset[str] = READ_SCOPES


@dataclass
class OktaWorld:
    """Everything the fake knows. Tests build one and mutate it freely."""
    users: list[dict[str, Any]] = field(default_factory=list)
    factors: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    policies: list[dict[str, Any]] = field(default_factory=list)
    rules: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    pipeline: str = "idx"                         # "v1": Classic Engine
    org_id: str = "00o1acmeRockets00g4x"
    tokens: dict[str, frozenset[str]] = field(default_factory=dict)   # SSWS token -> scopes
    apps: dict[str, OAuthApp] = field(default_factory=dict)          # OAuth client_id -> app
    issued: dict[str, frozenset[str]] = field(default_factory=dict)  # access token -> scopes
    max_limit: int = 200                          # the largest page the API serves
    rate_limit: int = 600
    throttle: int = 0                             # answer the next N API calls with 429
    throttle_reset_in: int = 1                    # seconds until X-Rate-Limit-Reset when throttling
    outage_after: int | None = None               # answer 500 after this many API calls
    logs: list[dict[str, Any]] = field(default_factory=list)   # System Log events (log_event)
    log_max_limit: int = 1000                     # the largest System Log page

    def add_user(self, u: dict[str, Any], factors: Iterable[dict[str, Any]] = ()) -> dict[str, Any]:
        self.users.append(u)
        self.factors[u["id"]] = list(factors)
        return u

    def add_policy(self, p: dict[str, Any], rules: Iterable[dict[str, Any]] = ()) -> dict[str, Any]:
        self.policies.append(p)
        self.rules[p["id"]] = list(rules)
        return p


def _error(status: int, code: str, summary: str, headers: dict[str, str] | None = None) -> Response:
    body = {"errorCode": code, "errorSummary": summary, "errorLink": code,
            "errorId": "oae" + secrets.token_hex(8), "errorCauses": []}
    return Response(json.dumps(body), status, headers=headers, mimetype="application/json")


def _page(request: Request, items: list[dict[str, Any]], world: OktaWorld,
          default_limit: int) -> Response:
    """One page of ``items`` after the ``after`` cursor (an item id), with Okta's Link headers."""
    try:
        limit = min(max(int(request.args.get("limit", default_limit)), 1), world.max_limit)
    except ValueError:
        return _error(400, "E0000001", "Api validation failed: limit")
    return _linked_page(request, items, limit, "id")


def _linked_page(request: Request, items: list[dict[str, Any]], limit: int, key: str) -> Response:
    """The ``limit`` items after the ``after`` cursor (the ``key`` of the last item of the
    previous page), with Okta's Link headers: ``self``, and ``next`` while more remain."""
    start = 0
    after = request.args.get("after")
    if after:
        ids = [i[key] for i in items]
        if after not in ids:
            return _error(400, "E0000001", "Api validation failed: after")
        start = ids.index(after) + 1
    chunk = items[start:start + limit]
    base = request.host_url.rstrip("/") + request.path
    keep = {k: v for k, v in request.args.items() if k not in ("after", "limit")}
    links = [f'<{base}?{urlencode({**keep, "limit": limit})}>; rel="self"']
    if start + limit < len(items):
        links.append(f'<{base}?{urlencode({**keep, "after": chunk[-1][key], "limit": limit})}>; '
                     'rel="next"')
    return Response(json.dumps(chunk), 200, headers={"Link": ", ".join(links)},
                    mimetype="application/json")


class FakeOkta:
    """The WSGI app. ``FakeOkta(world)`` is served by :class:`attest.demo.http.LocalServer`."""

    def __init__(self, world: OktaWorld) -> None:
        self.world = world
        self._window = (0, 0)   # (minute, requests in it) for X-Rate-Limit-Remaining
        self.served = 0

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        request = Request(environ)
        response = self.dispatch(request)
        response.headers.setdefault("Date", formatdate(usegmt=True))
        response.headers["X-Okta-Request-Id"] = secrets.token_hex(10)
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        path = request.path.rstrip("/")
        if path == "/.well-known/okta-organization" and request.method == "GET":
            host = request.host_url.rstrip("/")
            return Response(json.dumps({"id": self.world.org_id, "pipeline": self.world.pipeline,
                                        "_links": {"organization": {"href": host}}}),
                            mimetype="application/json")
        if path == "/oauth2/v1/token" and request.method == "POST":
            return self.token(request)
        if not path.startswith("/api/v1/"):
            return _error(404, "E0000022", "The endpoint does not support the provided HTTP method")
        return self.rate_limited(request, lambda: self.api(request, path))

    def rate_limited(self, request: Request, handler: Callable[[], Response]) -> Response:
        now = int(time.time())
        minute, used = self._window
        if now // 60 != minute:
            minute, used = now // 60, 0
        if self.world.throttle > 0:
            self.world.throttle -= 1
            reset = now + self.world.throttle_reset_in
            return _error(429, "E0000047", "API call exceeded rate limit due to too many requests.",
                          {"X-Rate-Limit-Limit": str(self.world.rate_limit),
                           "X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": str(reset)})
        self._window = (minute, used + 1)
        self.served += 1
        if self.world.outage_after is not None and self.served > self.world.outage_after:
            return _error(500, "E0000009", "Internal Server Error")
        response = handler()
        response.headers["X-Rate-Limit-Limit"] = str(self.world.rate_limit)
        response.headers["X-Rate-Limit-Remaining"] = str(max(self.world.rate_limit - used - 1, 0))
        response.headers["X-Rate-Limit-Reset"] = str((minute + 1) * 60)
        return response

    def scopes(self, request: Request) -> frozenset[str] | None:
        kind, _, credential = request.headers.get("Authorization", "").partition(" ")
        if kind == "SSWS":
            return self.world.tokens.get(credential)
        if kind == "Bearer":
            return self.world.issued.get(credential)
        return None

    def api(self, request: Request, path: str) -> Response:
        granted = self.scopes(request)
        if granted is None:
            return _error(401, "E0000011", "Invalid token provided")
        if request.method != "GET":
            return _error(405, "E0000022", "The endpoint does not support the provided HTTP method")
        parts = path.split("/")[3:]   # after /api/v1
        needed = {"users": "okta.users.read", "policies": "okta.policies.read",
                  "logs": "okta.logs.read"}.get(parts[0])
        if needed is None:
            return _error(404, "E0000007", f"Not found: Resource not found: {path} (Path)")
        if needed not in granted:
            return _error(403, "E0000006", "You do not have permission to perform the requested action",
                          {"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{needed}"'})
        world = self.world
        if parts == ["logs"]:
            return system_log(request, world.logs, world.log_max_limit)
        if parts == ["users"]:
            visible = [u for u in world.users if u["status"] != "DEPROVISIONED"]
            return _page(request, visible, world, 200)
        if len(parts) == 3 and parts[0] == "users" and parts[2] == "factors":
            if parts[1] not in world.factors:
                return _error(404, "E0000007", f"Not found: Resource not found: {parts[1]} (User)")
            return Response(json.dumps(world.factors[parts[1]]), mimetype="application/json")
        if parts == ["policies"]:
            kind = request.args.get("type")
            if not kind or (kind == "ACCESS_POLICY" and world.pipeline == "v1"):
                return _error(400, "E0000001", "Api validation failed: type")
            chosen = sorted((p for p in world.policies if p["type"] == kind),
                            key=lambda p: p["priority"])
            return _page(request, chosen, world, 200)
        if len(parts) == 3 and parts[0] == "policies" and parts[2] == "rules":
            if parts[1] not in world.rules:
                return _error(404, "E0000007", f"Not found: Resource not found: {parts[1]} (Policy)")
            return _page(request, sorted(world.rules[parts[1]], key=lambda r: r["priority"]),
                         world, 200)
        return _error(404, "E0000007", f"Not found: Resource not found: {path} (Path)")

    def token(self, request: Request) -> Response:
        """POST /oauth2/v1/token: client_credentials with a private_key_jwt client assertion."""
        import jwt

        def oauth_error(status: int, error: str, description: str) -> Response:
            return Response(json.dumps({"error": error, "error_description": description}),
                            status, mimetype="application/json")

        form = request.form
        if form.get("grant_type") != "client_credentials":
            return oauth_error(400, "unsupported_grant_type", "The grant type is not supported.")
        if form.get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            return oauth_error(401, "invalid_client", "Client authentication failed.")
        assertion = form.get("client_assertion", "")
        try:
            client_id = jwt.decode(assertion, options={"verify_signature": False}).get("iss", "")
            app = self.world.apps.get(client_id)
            if app is None:
                return oauth_error(401, "invalid_client", "The client_id is invalid.")
            jwt.decode(assertion, app.public_key_pem, algorithms=["RS256"], issuer=client_id,
                       audience=request.host_url.rstrip("/") + "/oauth2/v1/token",
                       options={"require": ["exp", "iat", "sub", "jti"]})
        except jwt.PyJWTError as exc:
            return oauth_error(401, "invalid_client", f"The client_assertion is invalid: {exc}")
        wanted = frozenset(form.get("scope", "").split())
        if not wanted or not wanted <= app.scopes:
            return oauth_error(400, "invalid_scope", "The following scopes are not allowed: "
                               + " ".join(sorted(wanted - app.scopes)))
        access_token = secrets.token_urlsafe(24)
        self.world.issued[access_token] = wanted
        return Response(json.dumps({"token_type": "Bearer", "expires_in": 3600,
                                    "access_token": access_token, "scope": " ".join(sorted(wanted))}),
                        mimetype="application/json")


def seed_acme(world: OktaWorld, now: datetime) -> dict[str, str]:
    """Acme Rockets' Identity Engine org; returns the control statuses it is built to give."""
    days = lambda n: now - timedelta(days=n)  # noqa: E731
    domain = "acmerockets.example"
    world.add_user(user(f"alice.ng@{domain}", first="Alice", last="Ng", activated=days(400),
                        last_login=days(1)), [factor("push"), factor("webauthn")])
    world.add_user(user(f"zoe.muller@{domain}", first="Zoë", last="Müller", activated=days(200),
                        last_login=days(20)), [factor("token:software:totp"), factor("question")])
    world.add_user(user(f"bob.stone@{domain}", first="Bob", last="Stone", activated=days(300),
                        last_login=days(2)), [factor("question")])            # no MFA at all
    world.add_user(user(f"carl.diaz@{domain}", first="Carl", last="Diaz", activated=days(250),
                        last_login=days(4)),
                   [factor("token:software:totp", status="INACTIVE")])         # only deactivated
    world.add_user(user(f"dana.okafor@{domain}", first="Dana", last="Okafor", activated=days(500),
                        last_login=days(140)), [factor("push")])                # inactive 140 days
    world.add_user(user(f"erin.cho@{domain}", first="Erin", last="Cho", activated=days(5)),
                   [factor("sms")])                                             # new, not yet signed in
    world.add_user(user(f"frank.old@{domain}", status="DEPROVISIONED", activated=days(900)))
    world.add_user(user(f"gina.leave@{domain}", status="SUSPENDED", activated=days(700),
                        last_login=days(200)))
    world.add_policy(policy("OKTA_SIGN_ON", "Default Policy", 1, system=True),
                     [sign_on_rule("Default Rule", 1, require_factor=False, system=True,
                                   primary_factor="PASSWORD_IDP_ANY_FACTOR")])
    world.add_policy(policy("ACCESS_POLICY", "Okta Dashboard", 1),
                     [access_rule("Office network", 0, factor_mode="2FA", zones=["nzo1acmeOffice00g4x"]),
                      access_rule("Catch-all Rule", 99, factor_mode="2FA", system=True)])
    world.add_policy(policy("ACCESS_POLICY", "Okta Admin Console", 2),
                     [access_rule("Catch-all Rule", 99, factor_mode="2FA", system=True)])
    world.add_policy(policy("PASSWORD", "Default Policy", 2, system=True,
                            settings=password_settings(12, 10)), [password_rule()])
    world.add_policy(policy("PASSWORD", "Contractors", 1, groups=["00g1contractors00g4"],
                            settings=password_settings(8, 0)), [password_rule()])
    seed_system_log(world, now, {u["profile"]["login"].split(".")[0]: u for u in world.users})
    return {"okta.mfa_enrolled": "fail", "okta.mfa_required": "pass",
            "okta.password_policy": "fail", "okta.inactive_users": "fail"}


def start_demo(now: datetime) -> DemoSource:
    world = OktaWorld()
    expected = seed_acme(world, now)
    token = "demo-" + secrets.token_urlsafe(18)
    world.tokens[token] = READ_SCOPES
    server = LocalServer(FakeOkta(world))
    url = server.start()
    return DemoSource(section={"org_url": url, "token": "${ATTEST_DEMO_OKTA_TOKEN}",
                               "access_groups": [PROD_ADMINS["displayName"]]},
                      env={"ATTEST_DEMO_OKTA_TOKEN": token}, expected=expected, stop=server.stop,
                      extra={"world": world, "log": server.log})
