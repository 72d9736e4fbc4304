"""Pure rule tests for unused credentials and IAM policies (literal credential report rows and
GetAccountAuthorizationDetails answers, as boto3 returns them)."""
from __future__ import annotations

from datetime import timedelta

from tests.collectors.aws_fixtures import NOW, evaluate, make

ACCT = "123456789012"
ADMIN = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
SCOPED = {"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": ["s3:GetObject"],
                                                 "Resource": "arn:aws:s3:::logs/*"}}


def status(control, records, **params):
    return evaluate(control, records, **params).status.value


def ago(days: int) -> str:
    return (NOW - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def row(user, password=None, password_used="no_information", key1=None, key1_used="N/A", created=400):
    return {"user": user, "arn": f"arn:aws:iam::{ACCT}:user/{user}", "user_creation_time": ago(created),
            "password_enabled": "true" if password is not None else "false",
            "password_last_used": password_used if password is not None else "N/A",
            "password_last_changed": ago(password) if password is not None else "N/A",
            "access_key_1_active": "true" if key1 is not None else "false",
            "access_key_1_last_rotated": ago(key1) if key1 is not None else "N/A",
            "access_key_1_last_used_date": key1_used, "access_key_2_active": "false",
            "access_key_2_last_rotated": "N/A", "access_key_2_last_used_date": "N/A"}


def report(*rows):
    return [make("aws.iam.credential_report", {"Rows": list(rows)})]


# --- aws.iam.unused_credentials -------------------------------------------------------------

def test_unused_credentials_pass_when_used_recently():
    records = report(row("<root_account>", password=3000),          # root: not judged here
                     row("alice", password=300, password_used=ago(2), key1=200, key1_used=ago(1)),
                     row("nokeys"))
    result = evaluate("aws.iam.unused_credentials", records)
    assert result.status.value == "pass"
    assert [(f.resource.rsplit("/", 1)[1], f.detail) for f in result.findings] == [
        ("alice", "console password last used 2 days ago; access key 1 last used 1 days ago")]


def test_unused_credentials_fail_on_stale_or_never_used_credentials():
    result = evaluate("aws.iam.unused_credentials", report(
        row("bob", password=400, password_used=ago(120)),
        row("ci-deploy", key1=412),
        row("new-hire", password=5)))
    assert result.status.value == "fail"
    verdicts = {f.resource.rsplit("/", 1)[1]: (f.status.value, f.detail) for f in result.findings}
    assert verdicts["bob"] == ("fail", "console password last used 120 days ago (max 90)")
    assert verdicts["ci-deploy"] == ("fail", "access key 1 never used, set 412 days ago (max 90)")
    assert verdicts["new-hire"][0] == "pass"
    assert status("aws.iam.unused_credentials", report(row("bob", password=400, password_used=ago(120))),
                  max_days=180) == "pass"


def test_unused_credentials_unknown_age_or_report_is_an_error():
    broken = row("x", key1=10)
    broken["access_key_1_last_rotated"] = "N/A"
    assert status("aws.iam.unused_credentials", report(broken)) == "error"
    denied = make("aws.iam.credential_report", None, state="denied",
                  detail="iam:GenerateCredentialReport was denied")
    assert status("aws.iam.unused_credentials", [denied]) == "error"


# --- aws.iam.no_admin_policies / no_user_policies -------------------------------------------

def details(policies=(), users=(), roles=(), groups=()):
    return [make("aws.iam.authorization_details", {
        "Policies": [{"PolicyName": name, "Arn": f"arn:aws:iam::{ACCT}:policy/{name}",
                      "DefaultVersionId": "v2", "AttachmentCount": 1, "PolicyVersionList": [
                          {"VersionId": "v1", "IsDefaultVersion": False, "Document": ADMIN},
                          {"VersionId": "v2", "IsDefaultVersion": True, "Document": document}]}
                     for name, document in policies],
        "UserDetailList": list(users), "RoleDetailList": list(roles), "GroupDetailList": list(groups)})]


def user(name, attached=(), inline=(), groups=()):
    return {"UserName": name, "Arn": f"arn:aws:iam::{ACCT}:user/{name}", "GroupList": list(groups),
            "AttachedManagedPolicies": [{"PolicyName": p, "PolicyArn": f"arn:aws:iam::{ACCT}:policy/{p}"}
                                        for p in attached],
            "UserPolicyList": [{"PolicyName": p, "PolicyDocument": d} for p, d in inline]}


def role(name, inline=()):
    return {"RoleName": name, "Arn": f"arn:aws:iam::{ACCT}:role/{name}", "AttachedManagedPolicies": [],
            "RolePolicyList": [{"PolicyName": p, "PolicyDocument": d} for p, d in inline]}


def test_no_admin_policies_judges_the_default_version_and_inline_policies():
    # v1 (not default) allows * on *: only the default version counts
    assert status("aws.iam.no_admin_policies", details(policies=[("deploy", SCOPED)])) == "pass"
    result = evaluate("aws.iam.no_admin_policies", details(
        policies=[("deploy", SCOPED), ("ops-admin", ADMIN)],
        roles=[role("break-glass", inline=[("all", {"Statement": [
            {"Sid": "Everything", "Effect": "Allow", "Action": ["*:*"], "Resource": ["*"]}]})])]))
    assert result.status.value == "fail"
    bad = {f.resource: f.detail for f in result.findings if f.status.value == "fail"}
    assert bad == {f"arn:aws:iam::{ACCT}:policy/ops-admin":
                   "customer-managed policy, attached 1 time allows * on *: statement 1",
                   f"arn:aws:iam::{ACCT}:role/break-glass#all": "inline policy allows * on *: Everything"}


def test_no_admin_policies_unread_details_are_an_error_never_a_pass():
    denied = make("aws.iam.authorization_details", None, state="denied",
                  detail="iam:GetAccountAuthorizationDetails was denied")
    assert status("aws.iam.no_admin_policies", [denied]) == "error"
    # a listing broken off after its first page: what was read is judged, the control is error
    partial = details(policies=[("deploy", SCOPED)])[0]
    partial = make("aws.iam.authorization_details", partial.payload, state="partial",
                   detail="page 2 of GetAccountAuthorizationDetails failed")
    assert status("aws.iam.no_admin_policies", [partial]) == "error"


def test_no_admin_policies_allowed_list_and_lookalikes():
    not_admin = {"Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"},
                               {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"},
                               {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    assert status("aws.iam.no_admin_policies", details(policies=[("near", not_admin)])) == "pass"
    records = details(policies=[("ops-admin", ADMIN)],
                      roles=[role("break-glass", inline=[("all", ADMIN)])])
    assert status("aws.iam.no_admin_policies", records,
                  allowed_policies=["ops-admin", f"arn:aws:iam::{ACCT}:role/break-glass#all"]) == "pass"
    assert status("aws.iam.no_admin_policies", records, allowed_policies=["ops-admin"]) == "fail"
    as_json_text = details(users=[user("u", inline=[("p", '{"Statement": {"Effect": "Allow", '
                                                         '"Action": "*", "Resource": "*"}}')])])
    assert status("aws.iam.no_admin_policies", as_json_text) == "fail"


def test_no_user_policies():
    result = evaluate("aws.iam.no_user_policies", details(users=[user("alice", groups=["engineers"])]))
    assert result.status.value == "pass" and "through group engineers" in result.findings[0].detail
    result = evaluate("aws.iam.no_user_policies", details(users=[
        user("alice", groups=["engineers"]), user("bob", attached=["s3-full"], inline=[("x", SCOPED)])]))
    assert result.status.value == "fail"
    bad, = [f for f in result.findings if f.status.value == "fail"]
    assert bad.resource == f"arn:aws:iam::{ACCT}:user/bob"
    assert bad.detail == "policies on the user itself (attached: s3-full; inline: x)"
    denied = make("aws.iam.authorization_details", None, state="denied",
                  detail="iam:GetAccountAuthorizationDetails was denied")
    assert status("aws.iam.no_user_policies", [denied]) == "error"
