"""Okta rules from literal payloads (raw Okta JSON shapes): pass, fail and error per control."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from attest.engine import evaluate_control
from attest.model import Evidence, EvidenceState, Status
from controls import catalog_by_id

NOW = datetime(2026, 3, 1, tzinfo=timezone.utc)
SCOPE = "okta:acme.okta.com"


def record(name: str, payload: Any, state: EvidenceState = EvidenceState.OK) -> Evidence:
    return Evidence(name=name, scope=SCOPE, state=state, payload=payload,
                    detail="" if state.known else "HTTP 403 E0000006")


def run(control_id: str, *records: Evidence, **params: Any):
    control = catalog_by_id()[control_id]
    return evaluate_control(control, list(records), control.param_values(params), NOW)


def user(uid: str, login: str, status: str = "ACTIVE", last_login: str | None = "2026-02-20T08:00:00.000Z",
         activated: str | None = "2024-01-01T00:00:00.000Z") -> dict[str, Any]:
    return {"id": uid, "status": status, "created": "2023-06-01T00:00:00.000Z", "activated": activated,
            "lastLogin": last_login, "profile": {"login": login, "firstName": "X"}}


def factor(factor_type: str, status: str = "ACTIVE") -> dict[str, Any]:
    return {"id": "f" + factor_type, "factorType": factor_type, "provider": "OKTA", "status": status}


# --- okta.mfa_enrolled -----------------------------------------------------------------------

def test_mfa_enrolled_pass_fail_and_ignored_statuses():
    users = [user("u1", "a@x"), user("u2", "b@x"), user("u3", "c@x"), user("u4", "d@x"),
             user("u5", "gone@x", status="SUSPENDED")]
    factors = {"u1": [factor("push")],
               "u2": [factor("question"), factor("password")],           # not MFA
               "u3": [factor("webauthn", "INACTIVE"), factor("sms", "PENDING_ACTIVATION")],
               "u4": []}
    result = run("okta.mfa_enrolled", record("okta.users", users), record("okta.factors", factors))
    assert result.status is Status.FAIL
    assert {f.resource: f.status for f in result.findings} == {
        "a@x": Status.PASS, "b@x": Status.FAIL, "c@x": Status.FAIL, "d@x": Status.FAIL}
    assert "INACTIVE" in next(f.detail for f in result.findings if f.resource == "c@x")


def test_mfa_enrolled_passes_when_everyone_has_an_active_factor():
    result = run("okta.mfa_enrolled", record("okta.users", [user("u1", "a@x")]),
                 record("okta.factors", {"u1": [factor("token:software:totp")]}))
    assert result.status is Status.PASS


def test_mfa_enrolled_errors_when_factors_are_unknown():
    users = record("okta.users", [user("u1", "a@x"), user("u2", "b@x")])
    assert run("okta.mfa_enrolled", users,
               record("okta.factors", None, EvidenceState.DENIED)).status is Status.ERROR
    assert run("okta.mfa_enrolled", users).status is Status.ERROR        # never collected
    partial = run("okta.mfa_enrolled", users, record("okta.factors", {"u1": [factor("push")]}))
    assert partial.status is Status.ERROR
    assert [f.resource for f in partial.findings if f.status is Status.ERROR] == ["b@x"]


def test_mfa_enrolled_not_applicable_without_active_users():
    result = run("okta.mfa_enrolled", record("okta.users", [user("u1", "a@x", status="STAGED")]),
                 record("okta.factors", {}))
    assert result.status is Status.NOT_APPLICABLE


# --- okta.inactive_users ---------------------------------------------------------------------

def test_inactive_users_pass_fail_and_never_logged_in():
    users = [user("u1", "recent@x", last_login="2026-02-01T00:00:00.000Z"),
             user("u2", "stale@x", last_login="2025-10-01T00:00:00.000Z"),
             user("u3", "new@x", last_login=None, activated="2026-02-15T00:00:00.000Z"),
             user("u4", "never@x", last_login=None, activated="2025-01-01T00:00:00.000Z"),
             user("u5", "off@x", status="DEPROVISIONED", last_login="2020-01-01T00:00:00.000Z")]
    result = run("okta.inactive_users", record("okta.users", users))
    assert result.status is Status.FAIL
    assert {f.resource: f.status for f in result.findings} == {
        "recent@x": Status.PASS, "stale@x": Status.FAIL, "new@x": Status.PASS, "never@x": Status.FAIL}
    assert "never logged in" in next(f.detail for f in result.findings if f.resource == "never@x")


def test_inactive_users_param_and_pass():
    users = record("okta.users", [user("u1", "a@x", last_login="2025-12-15T00:00:00.000Z")])
    assert run("okta.inactive_users", users).status is Status.PASS
    assert run("okta.inactive_users", users, max_days=30).status is Status.FAIL


def test_inactive_users_error_when_unknown():
    assert run("okta.inactive_users", record("okta.users", None, EvidenceState.DENIED)).status is Status.ERROR
    assert run("okta.inactive_users", record("okta.users", None, EvidenceState.PARTIAL)).status is Status.ERROR


# --- okta.password_policy --------------------------------------------------------------------

def pw_policy(pid: str, min_length: int | None, max_attempts: int | None, status: str = "ACTIVE"):
    complexity = {} if min_length is None else {"minLength": min_length}
    return {"id": pid, "type": "PASSWORD", "name": pid, "status": status, "priority": 1,
            "settings": {"password": {"complexity": complexity,
                                      "lockout": {"maxAttempts": max_attempts}}}}


def test_password_policy_pass_and_fail_per_policy():
    payload = {"policies": [pw_policy("00pGood", 12, 10), pw_policy("00pShort", 8, 5),
                            pw_policy("00pNoLock", 16, 0), pw_policy("00pMany", 14, 11),
                            pw_policy("00pOff", 4, 0, status="INACTIVE")], "rules": {}}
    result = run("okta.password_policy", record("okta.policies.password", payload))
    assert result.status is Status.FAIL
    assert {f.resource: f.status for f in result.findings} == {
        "00pGood": Status.PASS, "00pShort": Status.FAIL, "00pNoLock": Status.FAIL, "00pMany": Status.FAIL}
    assert run("okta.password_policy", record("okta.policies.password", payload),
               min_length=4, max_attempts=20).findings[1].status is Status.PASS


def test_password_policy_pass():
    payload = {"policies": [pw_policy("00pGood", 14, 3)], "rules": {}}
    assert run("okta.password_policy", record("okta.policies.password", payload)).status is Status.PASS


def test_password_policy_errors():
    assert run("okta.password_policy",
               record("okta.policies.password", None, EvidenceState.DENIED)).status is Status.ERROR
    unreadable = {"policies": [pw_policy("00pHidden", None, 5)], "rules": {}}
    assert run("okta.password_policy", record("okta.policies.password", unreadable)).status is Status.ERROR


# --- okta.mfa_required -----------------------------------------------------------------------

def org(pipeline: str) -> Evidence:
    return record("okta.org", {"id": "00o1", "pipeline": pipeline})


def sign_on_rule(rid: str, priority: int, require: bool, access: str = "ALLOW",
                 conditions: dict | None = None, status: str = "ACTIVE") -> dict[str, Any]:
    base = {"people": {"users": {"exclude": []}}, "network": {"connection": "ANYWHERE"},
            "authContext": {"authType": "ANY"}, "riskScore": {"level": "ANY"}}
    return {"id": rid, "name": rid, "type": "SIGN_ON", "status": status, "priority": priority,
            "conditions": {**base, **(conditions or {})},
            "actions": {"signon": {"access": access, "requireFactor": require}}}


def access_rule(rid: str, priority: int, mode: str | None = "2FA", conditions: dict | None = None,
                method_type: str = "ASSURANCE", constraints: list | None = None) -> dict[str, Any]:
    method = {"type": method_type, "factorMode": mode, "constraints": constraints or []}
    return {"id": rid, "name": rid, "type": "ACCESS_POLICY", "status": "ACTIVE", "priority": priority,
            "conditions": conditions, "actions": {"appSignOn": {"access": "ALLOW",
                                                                "verificationMethod": method}}}


def policies(kind: str, rules_by_policy: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    return {"policies": [{"id": pid, "type": kind, "name": pid, "status": "ACTIVE", "priority": i}
                         for i, pid in enumerate(rules_by_policy, 1)],
            "rules": rules_by_policy}


ABSENT_ACCESS = record("okta.policies.access", {"policies": [], "rules": {}}, EvidenceState.ABSENT)
GROUP = {"people": {"groups": {"include": ["00gContractors"]}}}
ZONE = {"network": {"connection": "ZONE", "include": ["nzoOffice"]}}


def test_classic_mfa_required_pass_with_conditional_mfa_rules_first():
    rules = {"00pDefault": [sign_on_rule("r-catchall", 2, True), sign_on_rule("r-group", 1, True, conditions=GROUP),
                            sign_on_rule("r-after", 3, False)]}           # never reached
    result = run("okta.mfa_required", org("v1"),
                 record("okta.policies.sign_on", policies("OKTA_SIGN_ON", rules)), ABSENT_ACCESS)
    assert result.status is Status.PASS


@pytest.mark.parametrize("first", [
    sign_on_rule("r-office", 1, False, conditions=ZONE),
    sign_on_rule("r-contractors", 1, False, conditions=GROUP),
    sign_on_rule("r-everyone", 1, False),
])
def test_classic_mfa_required_fails_on_a_rule_without_mfa_before_the_mfa_rule(first):
    rules = {"00pDefault": [first, sign_on_rule("r-mfa", 2, True)]}
    result = run("okta.mfa_required", org("v1"),
                 record("okta.policies.sign_on", policies("OKTA_SIGN_ON", rules)), ABSENT_ACCESS)
    assert result.status is Status.FAIL
    [finding] = result.findings
    assert finding.resource == "00pDefault" and first["id"] in finding.detail


def test_classic_inactive_rules_and_deny_rules_do_not_count():
    rules = {"00pDefault": [sign_on_rule("r-off", 1, False, status="INACTIVE"),
                            sign_on_rule("r-deny", 2, False, access="DENY", conditions=ZONE),
                            sign_on_rule("r-mfa", 3, True)]}
    result = run("okta.mfa_required", org("v1"),
                 record("okta.policies.sign_on", policies("OKTA_SIGN_ON", rules)), ABSENT_ACCESS)
    assert result.status is Status.PASS


GSP_NO_MFA = record("okta.policies.sign_on",
                    policies("OKTA_SIGN_ON", {"00pGsp": [sign_on_rule("gsp-default", 1, False)]}))


def test_identity_engine_passes_when_every_authentication_policy_requires_2fa():
    access = policies("ACCESS_POLICY", {
        "00pDash": [access_rule("office", 0, "2FA", ZONE), access_rule("catch-all", 99, "2FA")],
        "00pAdmin": [access_rule("catch-all", 99, "1FA",
                                 constraints=[{"knowledge": {"types": ["password"]},
                                               "possession": {"required": True}}])]})
    result = run("okta.mfa_required", org("idx"), GSP_NO_MFA, record("okta.policies.access", access))
    assert result.status is Status.PASS
    assert {f.resource for f in result.findings} == {"00pDash", "00pAdmin"}


def test_identity_engine_fails_on_1fa_rule_before_catch_all():
    access = policies("ACCESS_POLICY", {
        "00pDash": [access_rule("office", 0, "1FA", ZONE), access_rule("catch-all", 99, "2FA")],
        "00pAdmin": [access_rule("catch-all", 99, "2FA")]})
    result = run("okta.mfa_required", org("idx"), GSP_NO_MFA, record("okta.policies.access", access))
    assert result.status is Status.FAIL
    failing = [f for f in result.findings if f.status is Status.FAIL]
    assert [f.resource for f in failing] == ["00pDash"] and "office" in failing[0].detail


def test_identity_engine_global_session_policy_requiring_mfa_is_enough():
    gsp = record("okta.policies.sign_on",
                 policies("OKTA_SIGN_ON", {"00pGsp": [sign_on_rule("gsp", 1, True)]}))
    access = policies("ACCESS_POLICY", {"00pDash": [access_rule("catch-all", 99, "1FA")]})
    result = run("okta.mfa_required", org("idx"), gsp, record("okta.policies.access", access))
    assert result.status is Status.PASS


def test_mfa_required_errors():
    access = record("okta.policies.access", policies("ACCESS_POLICY", {"00pDash": [access_rule("c", 99)]}))
    denied = record("okta.policies.sign_on", None, EvidenceState.DENIED)
    assert run("okta.mfa_required", org("idx"), denied, access).status is Status.ERROR
    assert run("okta.mfa_required", org("idx"), GSP_NO_MFA,
               record("okta.policies.access", None, EvidenceState.DENIED)).status is Status.ERROR
    assert run("okta.mfa_required", org("mystery"), GSP_NO_MFA, access).status is Status.ERROR
    chain = record("okta.policies.access", policies(
        "ACCESS_POLICY", {"00pDash": [access_rule("c", 99, None, method_type="AUTH_METHOD_CHAIN")]}))
    result = run("okta.mfa_required", org("idx"), GSP_NO_MFA, chain)
    assert result.status is Status.ERROR and "AUTH_METHOD_CHAIN" in result.findings[0].detail
