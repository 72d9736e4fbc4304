"""Okta controls: MFA enrolled and required, password policy strength, inactive users.

Payload shapes (raw Okta JSON, see collectors/okta.py): ``okta.users`` a list of User objects;
``okta.factors`` ``{user id: [UserFactor]}``; ``okta.policies.*`` ``{"policies": [Policy],
"rules": {policy id: [PolicyRule]}}``; ``okta.org`` the ``/.well-known/okta-organization`` body.
"""
from __future__ import annotations

from typing import Any, Iterator

from attest.model import Finding, Status, errored, failed, parse_time, passed
from controls.rules import EvidenceView, rule

NOT_MFA = frozenset({"password", "question"})   # a password or a security question is no MFA
# rule conditions whose value matches every sign-in
NEUTRAL: dict[str, dict[str, Any]] = {"authContext": {"authType": "ANY"}, "riskScore": {"level": "ANY"},
                                      "risk": {"behaviors": []}, "identityProvider": {"provider": "ANY"}}


def _login(user: dict[str, Any]) -> str:
    return str((user.get("profile") or {}).get("login") or user.get("id"))


def _active_users(payload: Any) -> Iterator[dict[str, Any]]:
    """One at a time: 20,000 users are read back from the bundle one by one, never all at once."""
    return (u for u in payload or [] if isinstance(u, dict) and u.get("status") == "ACTIVE")


@rule("okta.mfa_enrolled")
def mfa_enrolled(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    for record in ev.get("okta.users"):
        factors = ev.payload("okta.factors", record.scope)
        if factors is None:
            yield errored(record.scope, "the users' factors (okta.factors) were not collected")
            continue
        for user in _active_users(record.payload):
            login = _login(user)
            enrolled = factors.get(user.get("id"))
            if enrolled is None:
                yield errored(login, "this user's factors were not collected")
                continue
            mfa = [f for f in enrolled if f.get("status") == "ACTIVE"
                   and f.get("factorType") not in NOT_MFA]
            if mfa:
                yield passed(login, "active MFA factors: "
                             + ", ".join(sorted({str(f.get("factorType")) for f in mfa})))
            elif enrolled:
                seen = ", ".join(f"{f.get('factorType')} ({f.get('status')})" for f in enrolled)
                yield failed(login, f"no active MFA factor; enrolled: {seen}")
            else:
                yield failed(login, "no MFA factor enrolled")


@rule("okta.inactive_users")
def inactive_users(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    max_days = params["max_days"]
    for record in ev.get("okta.users"):
        for user in _active_users(record.payload):
            login = _login(user)
            last_login = parse_time(user.get("lastLogin"))
            since = last_login or parse_time(user.get("activated")) or parse_time(user.get("created"))
            if since is None:
                yield errored(login, "the user has no lastLogin, activated or created time")
                continue
            days = (ev.now - since).days
            what = (f"last login {since.date()}" if last_login
                    else f"never logged in; active since {since.date()}")
            if days > max_days:
                yield failed(login, f"no login for {days} days ({what}); limit {max_days}")
            else:
                yield passed(login, f"{what} ({days} days ago)")


@rule("okta.password_policy")
def password_policy(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    min_length, max_attempts = params["min_length"], params["max_attempts"]
    for record in ev.get("okta.policies.password"):
        policies = [p for p in (record.payload or {}).get("policies", []) if p.get("status") == "ACTIVE"]
        if not policies:
            yield failed(record.scope, "no active password policy")
        for p in policies:
            settings = ((p.get("settings") or {}).get("password") or {})
            length = (settings.get("complexity") or {}).get("minLength")
            attempts = (settings.get("lockout") or {}).get("maxAttempts")
            name = f"password policy '{p.get('name')}'"
            if length is None:
                yield errored(str(p.get("id")), f"{name} shows no minimum length")
                continue
            problems = []
            if length < min_length:
                problems.append(f"minimum length {length} < {min_length}")
            if not attempts:
                problems.append("no lockout after failed attempts")
            elif attempts > max_attempts:
                problems.append(f"lockout after {attempts} failed attempts > {max_attempts}")
            if problems:
                yield failed(str(p.get("id")), f"{name}: " + "; ".join(problems))
            else:
                yield passed(str(p.get("id")),
                             f"{name}: minimum length {length}, lockout after {attempts} attempts")


def _narrowing(conditions: Any) -> list[str]:
    """Why a rule might not apply to everyone (empty: it matches every sign-in)."""
    c = conditions if isinstance(conditions, dict) else {}
    out = []
    people = c.get("people") or {}
    for kind in ("groups", "users"):
        chosen = people.get(kind) or {}
        if chosen.get("include"):
            out.append(f"{kind} {', '.join(map(str, chosen['include']))}")
        if chosen.get("exclude"):
            out.append(f"everyone but {kind} {', '.join(map(str, chosen['exclude']))}")
    network = c.get("network") or {}
    if network.get("connection") == "ZONE" or network.get("include") or network.get("exclude"):
        zones = network.get("include") or [f"not {z}" for z in network.get("exclude") or []]
        out.append(f"network zones {', '.join(map(str, zones))}")
    for key, value in c.items():
        if key in ("people", "network") or not value:
            continue
        everyone = NEUTRAL.get(key)
        if everyone is not None and isinstance(value, dict) and set(value) <= set(everyone) \
                and all(value[k] in (everyone[k], None) for k in value):
            continue
        out.append(f"{key} condition")
    return out


def _verdict(rule_obj: dict[str, Any]) -> str:
    """'mfa', 'deny', 'no_mfa', or 'unknown: <why>' for one policy rule's actions."""
    actions = rule_obj.get("actions") or {}
    if "signon" in actions:        # OKTA_SIGN_ON: Classic sign-on / OIE global session policy
        signon = actions["signon"] or {}
        if signon.get("access") == "DENY":
            return "deny"
        return "mfa" if signon.get("requireFactor") is True else "no_mfa"
    if "appSignOn" in actions:     # ACCESS_POLICY: OIE app authentication policy
        app = actions["appSignOn"] or {}
        if app.get("access") == "DENY":
            return "deny"
        method = app.get("verificationMethod") or {}
        if method.get("type") != "ASSURANCE":
            return f"unknown: verification method {method.get('type')!r}"
        if method.get("factorMode") == "2FA":
            return "mfa"
        constraints = method.get("constraints") or []
        if constraints and all({"knowledge", "possession"} <= set(c or {}) for c in constraints):
            return "mfa"
        return "no_mfa"
    return "unknown: no signon or appSignOn action"


def _judge(policy: dict[str, Any], rules: list[dict[str, Any]]) -> Finding:
    """Walk the ACTIVE rules in priority order up to the first that matches every sign-in."""
    pid, name = str(policy.get("id")), f"{policy.get('type')} policy '{policy.get('name')}'"
    gaps, unknown, reached = [], [], 0
    for r in sorted((r for r in rules if r.get("status") == "ACTIVE"),
                    key=lambda r: r.get("priority") or 0):
        reached += 1
        scope = _narrowing(r.get("conditions"))
        who = "; ".join(scope) if scope else "everyone"
        label = f"rule '{r.get('name')}' ({r.get('id')}, priority {r.get('priority')})"
        verdict = _verdict(r)
        if verdict == "no_mfa":
            gaps.append(f"{label} allows sign-in without MFA for {who}")
        elif verdict.startswith("unknown"):
            unknown.append(f"{label}: {verdict}")
        if not scope:
            break   # a rule for everyone: later rules are never reached
    if gaps:
        return failed(pid, f"{name}: " + "; ".join(gaps))
    if unknown:
        return errored(pid, f"{name}: cannot judge " + "; ".join(unknown))
    return passed(pid, f"{name}: each of the {reached} rule(s) reached requires MFA or denies access")


def _active(payload: Any) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    payload = payload or {}
    rules = payload.get("rules") or {}
    return [(p, rules.get(p.get("id")) or []) for p in payload.get("policies") or []
            if p.get("status") == "ACTIVE"]


@rule("okta.mfa_required")
def mfa_required(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    for org in ev.get("okta.org"):
        scope = org.scope
        pipeline = (org.payload or {}).get("pipeline") if isinstance(org.payload, dict) else None
        sign_on = ev.payload("okta.policies.sign_on", scope)
        if sign_on is None:
            yield errored(scope, "the sign-on policies (okta.policies.sign_on) were not collected")
            continue
        session = [_judge(p, rules) for p, rules in _active(sign_on)]
        if pipeline == "v1":        # Classic: the Okta sign-on policies decide
            yield from session or [failed(scope, "no active Okta sign-on policy")]
            continue
        if pipeline != "idx":
            yield errored(scope, f"unknown Okta engine (pipeline {pipeline!r})")
            continue
        # Identity Engine: MFA is required if every global session policy requires it,
        # otherwise every app authentication policy must.
        if session and all(f.status is Status.PASS for f in session):
            yield from session
            continue
        access = ev.payload("okta.policies.access", scope)
        if access is None:
            yield errored(scope, "the authentication policies (okta.policies.access) were not collected")
            continue
        judged = [_judge(p, rules) for p, rules in _active(access)]
        yield from judged or [failed(scope, "no active authentication policy, and the global "
                                            "session policy does not require MFA")]
