"""Pure rule tests for the IAM controls (credential report rows keep AWS's strings)."""
from __future__ import annotations

from datetime import timedelta

from tests.collectors.aws_fixtures import NOW, evaluate, make

ACCT = "123456789012"
ROOT_ARN = f"arn:aws:iam::{ACCT}:root"
NO = {"password_enabled": "false", "mfa_active": "false", "access_key_1_active": "false",
      "access_key_1_last_rotated": "N/A", "access_key_2_active": "false",
      "access_key_2_last_rotated": "N/A", "cert_1_active": "false", "cert_2_active": "false"}


def row(user: str, **values: str) -> dict[str, str]:
    arn = ROOT_ARN if user == "<root_account>" else f"arn:aws:iam::{ACCT}:user/{user}"
    return {"user": user, "arn": arn, **NO, **values}


def report(*rows, state="ok"):
    payload = {"GeneratedTime": "2026-11-22T01:00:00Z", "Rows": list(rows)} if state == "ok" else None
    return make("aws.iam.credential_report", payload, state=state,
                detail="" if state == "ok" else "iam:GenerateCredentialReport was denied")


def summary(state="ok", **values):
    payload = {"SummaryMap": {"AccountMFAEnabled": 0, "AccountAccessKeysPresent": 0,
                              "AccountSigningCertificatesPresent": 0, **values}}
    return make("aws.iam.account_summary", payload if state == "ok" else None, state=state,
                detail="" if state == "ok" else "iam:GetAccountSummary was denied")


def status(control, records, **params):
    return evaluate(control, records, **params).status.value


def days_ago(days: int) -> str:
    return (NOW - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S+00:00")


# --- aws.iam.root_mfa --------------------------------------------------------------------

def test_root_mfa_passes_with_mfa():
    assert status("aws.iam.root_mfa", [report(row("<root_account>")),
                                       summary(AccountMFAEnabled=1)]) == "pass"
    assert status("aws.iam.root_mfa", [report(row("<root_account>", mfa_active="true")),
                                       summary()]) == "pass"


def test_root_mfa_passes_when_root_has_no_credentials_at_all():
    result = evaluate("aws.iam.root_mfa", [
        report(row("<root_account>", password_enabled="not_supported")),
        summary(AccountPasswordPresent=0)])
    assert result.status.value == "pass"
    assert "no password, access keys or signing certificates" in result.findings[0].detail


def test_root_mfa_fails_without_mfa():
    result = evaluate("aws.iam.root_mfa", [report(row("<root_account>")), summary()])
    assert result.status.value == "fail"     # no AccountPasswordPresent: a password may exist
    assert result.findings[0].resource == ROOT_ARN
    assert status("aws.iam.root_mfa", [report(row("<root_account>")),
                                       summary(AccountPasswordPresent=1)]) == "fail"
    with_key = row("<root_account>", access_key_1_active="true")
    assert status("aws.iam.root_mfa", [report(with_key), summary(AccountPasswordPresent=0)]) == "fail"


def test_root_mfa_unknown_is_an_error():
    assert status("aws.iam.root_mfa", [report(state="denied"), summary(state="denied")]) == "error"
    assert status("aws.iam.root_mfa", [report(row("<root_account>")),
                                       summary(state="denied")]) == "fail"


# --- aws.iam.root_no_access_keys ---------------------------------------------------------

def test_root_no_access_keys():
    assert status("aws.iam.root_no_access_keys", [report(row("<root_account>")), summary()]) == "pass"
    result = evaluate("aws.iam.root_no_access_keys",
                      [report(row("<root_account>", access_key_2_active="true")), summary()])
    assert result.status.value == "fail" and "(key 2)" in result.findings[0].detail
    assert status("aws.iam.root_no_access_keys",
                  [report(), summary(AccountAccessKeysPresent=1)]) == "fail"
    assert status("aws.iam.root_no_access_keys",
                  [report(state="denied"), summary(state="denied")]) == "error"


# --- aws.iam.user_mfa --------------------------------------------------------------------

def test_user_mfa():
    alice = row("alice", password_enabled="true", mfa_active="true")
    bob = row("bob", password_enabled="true")
    robot = row("robot")  # no console password: not judged
    assert status("aws.iam.user_mfa", [report(row("<root_account>"), alice, robot)]) == "pass"
    result = evaluate("aws.iam.user_mfa", [report(alice, bob, robot)])
    assert result.status.value == "fail"
    assert [f.resource for f in result.findings if f.status.value == "fail"] == [bob["arn"]]
    assert status("aws.iam.user_mfa", [report(robot)]) == "not_applicable"
    assert status("aws.iam.user_mfa", [report(state="denied")]) == "error"


# --- aws.iam.access_key_rotation ---------------------------------------------------------

def test_access_key_rotation():
    fresh = row("alice", access_key_1_active="true", access_key_1_last_rotated=days_ago(10))
    stale = row("ci", access_key_2_active="true", access_key_2_last_rotated=days_ago(200))
    inactive = row("old", access_key_1_active="false", access_key_1_last_rotated=days_ago(900))
    assert status("aws.iam.access_key_rotation", [report(fresh, inactive)]) == "pass"
    result = evaluate("aws.iam.access_key_rotation", [report(fresh, stale)])
    assert result.status.value == "fail"
    assert [f.detail for f in result.findings if f.status.value == "fail"] == [
        "access key 2 is 200 days old (max 90)"]
    assert status("aws.iam.access_key_rotation", [report(fresh, stale)], max_age_days=365) == "pass"
    assert status("aws.iam.access_key_rotation", [report(fresh)], now=NOW + timedelta(days=100)) == "fail"


def test_access_key_rotation_unknown_is_an_error():
    assert status("aws.iam.access_key_rotation", [report(state="partial")]) == "error"
    odd = row("x", access_key_1_active="true", access_key_1_last_rotated="N/A")
    assert status("aws.iam.access_key_rotation", [report(odd)]) == "error"


# --- aws.iam.password_policy -------------------------------------------------------------

STRONG = {"MinimumPasswordLength": 16, "RequireSymbols": True, "RequireNumbers": True,
          "RequireUppercaseCharacters": True, "RequireLowercaseCharacters": True,
          "PasswordReusePrevention": 24, "MaxPasswordAge": 90, "ExpirePasswords": True}


def policy(**changes):
    return make("aws.iam.password_policy", {"PasswordPolicy": {**STRONG, **changes}})


def test_password_policy():
    assert status("aws.iam.password_policy", [policy()]) == "pass"
    result = evaluate("aws.iam.password_policy", [policy(MinimumPasswordLength=8, RequireSymbols=False,
                                                         PasswordReusePrevention=5)])
    assert result.status.value == "fail"
    assert result.findings[0].resource == f"aws:{ACCT}:global:iam"
    assert "minimum length 8 < 14" in result.findings[0].detail
    assert "RequireSymbols is off" in result.findings[0].detail
    absent = make("aws.iam.password_policy", None, state="absent", detail="NoSuchEntity")
    assert status("aws.iam.password_policy", [absent]) == "fail"


def test_password_policy_parameters():
    no_expiry = policy(ExpirePasswords=False)
    del no_expiry.payload["PasswordPolicy"]["MaxPasswordAge"]
    assert status("aws.iam.password_policy", [no_expiry]) == "fail"
    assert status("aws.iam.password_policy", [no_expiry], max_password_age=0) == "pass"
    assert status("aws.iam.password_policy", [policy(MinimumPasswordLength=12)], min_length=12) == "pass"
    assert status("aws.iam.password_policy", [policy(RequireSymbols=False)],
                  require_symbols=False) == "pass"


def test_password_policy_unknown_is_an_error():
    denied = make("aws.iam.password_policy", None, state="denied",
                  detail="iam:GetAccountPasswordPolicy was denied")
    assert status("aws.iam.password_policy", [denied]) == "error"
