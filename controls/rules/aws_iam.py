"""IAM controls: root user, console users' MFA, access key age, password policy.

They read the credential report (rows keep AWS's strings: "true"/"false", ISO times, "N/A")
and the account summary; the root user's row is ``user == "<root_account>"``.
"""
from __future__ import annotations

from typing import Any, Iterator

from attest.model import EvidenceState, Finding, errored, failed, parse_time, passed
from controls.rules import EvidenceView, rule
from controls.rules._aws import account_region, resource

REPORT = "aws.iam.credential_report"
SUMMARY = "aws.iam.account_summary"
ROOT = "<root_account>"


def _accounts(ev: EvidenceView) -> Iterator[tuple[str, list[dict[str, str]] | None, dict[str, Any] | None]]:
    """(account, credential report rows or None, account summary map or None) per account."""
    scopes = sorted({r.scope for r in ev.get(REPORT)} | {r.scope for r in ev.get(SUMMARY)})
    for scope in scopes:
        report = ev.payload(REPORT, scope)
        summary = ev.payload(SUMMARY, scope)
        account = scope.split(":")[1]
        yield (account, None if report is None else report.get("Rows", []),
               None if summary is None else summary.get("SummaryMap", {}))


def _user_rows(ev: EvidenceView) -> Iterator[dict[str, str]]:
    """Every credential report row of every account, the root user's included."""
    for record in ev.get(REPORT):
        yield from (record.payload or {}).get("Rows", [])


def _root(rows: list[dict[str, str]] | None) -> dict[str, str] | None:
    return next((r for r in rows or [] if r.get("user") == ROOT), None)


def _root_has_no_credentials(summary: dict[str, Any], row: dict[str, str] | None) -> bool:
    """Centralized root access: no password, access keys or signing certificates."""
    keys = ("AccountPasswordPresent", "AccountAccessKeysPresent",
            "AccountSigningCertificatesPresent")
    if any(summary.get(k) != 0 for k in keys):
        return False
    columns = ("password_enabled", "access_key_1_active", "access_key_2_active",
               "cert_1_active", "cert_2_active")
    return row is None or all(row.get(c) != "true" for c in columns)


@rule("aws.iam.root_mfa")
def root_mfa(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    for account, rows, summary in _accounts(ev):
        row = _root(rows)
        arn = row["arn"] if row else f"arn:aws:iam::{account}:root"
        if summary is None and row is None:
            yield errored(arn, "neither the account summary nor the root user's report row was read")
        elif (summary or {}).get("AccountMFAEnabled") == 1 or (row or {}).get("mfa_active") == "true":
            yield passed(arn, "the root user has MFA")
        elif summary is not None and _root_has_no_credentials(summary, row):
            yield passed(arn, "the root user has no password, access keys or signing certificates")
        else:
            yield failed(arn, "the root user has no MFA device")


@rule("aws.iam.root_no_access_keys")
def root_no_access_keys(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    for account, rows, summary in _accounts(ev):
        row = _root(rows)
        arn = row["arn"] if row else f"arn:aws:iam::{account}:root"
        active = [n for n in (1, 2) if (row or {}).get(f"access_key_{n}_active") == "true"]
        present = (summary or {}).get("AccountAccessKeysPresent")
        if active or present == 1:
            yield failed(arn, "the root user has an active access key"
                         + (f" (key {', '.join(map(str, active))})" if active else ""))
        elif row is None and present is None:
            yield errored(arn, "neither the account summary nor the root user's report row was read")
        else:
            yield passed(arn, "the root user has no access keys")


@rule("aws.iam.user_mfa")
def user_mfa(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    for row in _user_rows(ev):
        if row.get("user") == ROOT or row.get("password_enabled") != "true":
            continue
        if row.get("mfa_active") == "true":
            yield passed(row["arn"], "console user has MFA")
        else:
            yield failed(row["arn"], "console password without MFA")


@rule("aws.iam.access_key_rotation")
def access_key_rotation(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    max_age = params["max_age_days"]
    for row in _user_rows(ev):
        for n in (1, 2):
            if row.get(f"access_key_{n}_active") != "true":
                continue
            rotated = row.get(f"access_key_{n}_last_rotated", "")
            when = parse_time(rotated) if rotated not in ("", "N/A") else None
            if when is None:
                yield errored(row["arn"], f"access key {n} is active but its age is unknown")
                continue
            age = max((ev.now - when).days, 0)
            if age > max_age:
                yield failed(row["arn"], f"access key {n} is {age} days old (max {max_age})")
            else:
                yield passed(row["arn"], f"access key {n} is {age} days old")


@rule("aws.iam.password_policy")
def password_policy(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    for record in ev.get("aws.iam.password_policy"):
        account, _ = account_region(record)
        where = resource(account, "global", "iam")
        if record.state is EvidenceState.ABSENT:
            yield failed(where, "no account password policy (AWS defaults apply)")
            continue
        policy = (record.payload or {}).get("PasswordPolicy", {})
        problems = []
        length = policy.get("MinimumPasswordLength") or 0
        if length < params["min_length"]:
            problems.append(f"minimum length {length} < {params['min_length']}")
        for param, field in (("require_symbols", "RequireSymbols"),
                             ("require_numbers", "RequireNumbers"),
                             ("require_uppercase", "RequireUppercaseCharacters"),
                             ("require_lowercase", "RequireLowercaseCharacters")):
            if params[param] and not policy.get(field):
                problems.append(f"{field} is off")
        reuse, remembered = params["password_reuse_prevention"], policy.get("PasswordReusePrevention") or 0
        if reuse and remembered < reuse:
            problems.append(f"reuse prevention {remembered} < {reuse}")
        max_age, age = params["max_password_age"], policy.get("MaxPasswordAge") or 0
        if max_age and not 0 < age <= max_age:
            problems.append(f"maximum age {age or 'unset'} > {max_age} days")
        if problems:
            yield failed(where, "; ".join(problems))
        else:
            yield passed(where, "password policy meets the minimums")
