"""Access controls: unused credentials, administrator policies, permissions on users.

Unused credentials come from the credential report (AWS's strings: ISO times, "N/A",
"no_information"); policies from GetAccountAuthorizationDetails (every user, group and role with
its inline and attached policies, and every customer-managed policy with its versions).
"""
from __future__ import annotations

import json
from typing import Any, Iterator

from attest.model import Finding, errored, failed, parse_time, passed
from controls.rules import EvidenceView, rule
from controls.rules._aws import as_list

REPORT = "aws.iam.credential_report"
DETAILS = "aws.iam.authorization_details"
ROOT = "<root_account>"
NEVER = ("", "N/A", "no_information", "not_supported")


# --- aws.iam.unused_credentials -------------------------------------------------------------

def _when(row: dict[str, str], *columns: str) -> tuple[str, Any] | None:
    """The first of ``columns`` holding a time: (column, time)."""
    for column in columns:
        value = row.get(column, "")
        if value not in NEVER:
            return column, parse_time(value)
    return None


@rule("aws.iam.unused_credentials")
def unused_credentials(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    max_days = params["max_days"]
    for record in ev.get(REPORT):
        for row in (record.payload or {}).get("Rows", []):
            if row.get("user") == ROOT:
                continue        # the root user: aws.iam.root_mfa and root_no_access_keys
            credentials = []
            if row.get("password_enabled") == "true":
                credentials.append(("console password", _when(
                    row, "password_last_used", "password_last_changed", "user_creation_time")))
            for n in (1, 2):
                if row.get(f"access_key_{n}_active") == "true":
                    credentials.append((f"access key {n}", _when(
                        row, f"access_key_{n}_last_used_date", f"access_key_{n}_last_rotated")))
            if not credentials:
                continue
            stale, fresh, unknown = [], [], []
            for what, seen in credentials:
                if seen is None:
                    unknown.append(what)
                    continue
                column, when = seen
                days = max((ev.now - when).days, 0)
                used = "last used" if "used" in column else "never used, set"
                text = f"{what} {used} {days} days ago"
                (stale if days > max_days else fresh).append(text)
            if stale:
                yield failed(row["arn"], "; ".join(stale) + f" (max {max_days})")
            elif unknown:
                yield errored(row["arn"], "last use unknown for " + ", ".join(unknown))
            else:
                yield passed(row["arn"], "; ".join(fresh))


# --- aws.iam.no_admin_policies / no_user_policies -------------------------------------------

def _document(value: Any) -> dict[str, Any]:
    """A policy document: boto3 URL-decodes and parses it; a JSON string is parsed here."""
    return value if isinstance(value, dict) else json.loads(str(value or "{}"))


def _grants_everything(document: dict[str, Any]) -> list[str]:
    """The Sids (or positions) of Allow statements with Action ``*`` on Resource ``*``."""
    found = []
    for i, statement in enumerate(as_list(document.get("Statement"))):
        if statement.get("Effect") != "Allow" or "NotAction" in statement or "NotResource" in statement:
            continue
        actions = {str(a) for a in as_list(statement.get("Action"))}
        if actions & {"*", "*:*"} and "*" in as_list(statement.get("Resource")):
            found.append(statement.get("Sid") or f"statement {i + 1}")
    return found


def _policies(payload: dict[str, Any]) -> Iterator[tuple[str, set[str], dict[str, Any], str]]:
    """(resource id, names it may be allowed by, document, kind) of every customer-managed
    policy (its default version) and every inline policy."""
    for policy in payload.get("Policies", []):
        default = next((v for v in policy.get("PolicyVersionList", [])
                        if v.get("IsDefaultVersion")), None)
        if default is None:
            continue
        attached = policy.get("AttachmentCount", 0)
        kind = f"customer-managed policy, attached {attached} time{'s' * (attached != 1)}"
        yield (policy["Arn"], {policy["Arn"], policy.get("PolicyName", "")},
               _document(default.get("Document")), kind)
    for listing, inline in (("UserDetailList", "UserPolicyList"),
                            ("GroupDetailList", "GroupPolicyList"),
                            ("RoleDetailList", "RolePolicyList")):
        for entity in payload.get(listing, []):
            for policy in entity.get(inline, []):
                name = policy.get("PolicyName", "")
                key = f"{entity['Arn']}#{name}"
                yield key, {key, name}, _document(policy.get("PolicyDocument")), "inline policy"


@rule("aws.iam.no_admin_policies")
def no_admin_policies(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    allowed = set(params.get("allowed_policies") or [])
    for record in ev.get(DETAILS):
        for key, names, document, kind in _policies(record.payload or {}):
            admin = _grants_everything(document)
            if not admin:
                yield passed(key, f"{kind}: no statement allows * on *")
            elif names & allowed:
                yield passed(key, f"{kind} allows * on * ({', '.join(admin)}), listed in "
                                  "allowed_policies")
            else:
                yield failed(key, f"{kind} allows * on *: {', '.join(admin)}")


@rule("aws.iam.no_user_policies")
def no_user_policies(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    for record in ev.get(DETAILS):
        for user in (record.payload or {}).get("UserDetailList", []):
            attached = [p.get("PolicyName") or p.get("PolicyArn")
                        for p in user.get("AttachedManagedPolicies", [])]
            inline = [p.get("PolicyName") for p in user.get("UserPolicyList", [])]
            if attached or inline:
                parts = ([f"attached: {', '.join(attached)}"] if attached else []) + (
                    [f"inline: {', '.join(inline)}"] if inline else [])
                yield failed(user["Arn"], "policies on the user itself (" + "; ".join(parts) + ")")
            else:
                groups = user.get("GroupList", [])
                yield passed(user["Arn"], "no policy on the user" + (
                    f"; permissions through group {', '.join(groups)}" if groups else ""))
