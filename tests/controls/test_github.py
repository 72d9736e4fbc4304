"""GitHub rules from literal payloads (GraphQL / REST shapes): pass, fail and error per control."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from attest.engine import evaluate_control
from attest.model import Evidence, EvidenceState, Status
from controls import catalog_by_id

NOW = datetime(2025, 6, 1, 12, tzinfo=timezone.utc)
SCOPE = "github:acme"
GITHUB_IDS = {"github.org_2fa_required", "github.members_2fa", "github.branch_review_required",
              "github.branch_force_push_blocked", "github.branch_status_checks",
              "github.dependabot_alerts", "github.dependabot_security_updates",
              "github.vulnerability_sla", "github.secret_scanning", "github.changes_reviewed"}


def rec(name: str, payload: Any, state: EvidenceState = EvidenceState.OK) -> Evidence:
    return Evidence(name=f"github.{name}", scope=SCOPE, state=state, payload=payload,
                    detail="" if state.known else "403 Must have admin rights")


def run(control_id: str, *records: Evidence, **params: Any) -> tuple[Status, dict[str, Status]]:
    control = catalog_by_id()[control_id]
    result = evaluate_control(control, list(records), control.param_values(params), NOW)
    return result.status, {f.resource: f.status for f in result.findings}


def test_catalog_has_exactly_the_github_controls() -> None:
    assert {c for c in catalog_by_id() if c.startswith("github.")} == GITHUB_IDS


# --- organization -----------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [(True, Status.PASS), (False, Status.FAIL),
                                             (None, Status.ERROR)])
def test_org_2fa_required(value: bool | None, expected: Status) -> None:
    org: dict[str, Any] = {"login": "acme"}
    if value is not None:
        org["two_factor_requirement_enabled"] = value
    status, findings = run("github.org_2fa_required", rec("org", org))
    assert status is expected and findings == {"acme": expected}


def test_members_2fa() -> None:
    assert run("github.members_2fa", rec("members_2fa_disabled", []))[0] is Status.PASS
    status, findings = run("github.members_2fa", rec("members_2fa_disabled", [{"login": "ivan"}]))
    assert status is Status.FAIL and findings == {"ivan": Status.FAIL}
    denied = rec("members_2fa_disabled", None, EvidenceState.DENIED)
    assert run("github.members_2fa", denied)[0] is Status.ERROR


# --- branches ---------------------------------------------------------------------------------

def classic(**kw: Any) -> dict[str, Any]:
    rule = {"pattern": "main", "requiresApprovingReviews": True, "requiredApprovingReviewCount": 1,
            "allowsForcePushes": False, "allowsDeletions": False, "requiresStatusChecks": True,
            "requiredStatusCheckContexts": ["ci"], "isAdminEnforced": True,
            "requiresStrictStatusChecks": False}
    rule.update(kw)
    return rule


def ruleset(rules: dict[str, Any], include: list[str] | None = None, exclude: list[str] | None = None,
            enforcement: str = "ACTIVE", repos: dict[str, Any] | None = None,
            prop: dict[str, Any] | None = None) -> dict[str, Any]:
    nodes = []
    for kind, value in rules.items():
        params = None
        if kind == "pull_request":
            params = {"__typename": "PullRequestParameters", "requiredApprovingReviewCount": value}
        elif kind == "required_status_checks":
            params = {"__typename": "RequiredStatusChecksParameters",
                      "requiredStatusChecks": [{"context": c, "integrationId": None} for c in value]}
        nodes.append({"type": kind.upper(), "parameters": params})
    return {"databaseId": 1, "name": "rs", "enforcement": enforcement, "target": "BRANCH",
            "conditions": {"refName": {"include": include or ["~DEFAULT_BRANCH"],
                                       "exclude": exclude or []},
                           "repositoryName": repos, "repositoryId": None,
                           "repositoryProperty": prop},
            "rules": {"totalCount": len(nodes), "nodes": nodes}}


def repo(name: str = "api", protection: dict[str, Any] | None = None,
         rulesets: list[dict[str, Any]] | None = None, admin: bool = True) -> dict[str, Any]:
    return {"id": f"R_{name}", "name": name, "nameWithOwner": f"acme/{name}", "isArchived": False,
            "isPrivate": True, "viewerCanAdminister": admin,
            "defaultBranchRef": {"name": "main", "branchProtectionRule": protection},
            "rulesets": {"totalCount": len(rulesets or []), "nodes": rulesets or []}}


def branch(*repos: dict[str, Any], org_rulesets: list[dict[str, Any]] | None = None,
           org_state: EvidenceState = EvidenceState.OK) -> list[Evidence]:
    return [rec("branch_protection", {"repositories": list(repos), "archived_skipped": []}),
            rec("org_rulesets", org_rulesets or [] if org_state.known else None, org_state)]


FULL = {"pull_request": 1, "non_fast_forward": True, "deletion": True,
        "required_status_checks": ["ci"]}


@pytest.mark.parametrize("control", ["github.branch_review_required",
                                     "github.branch_force_push_blocked",
                                     "github.branch_status_checks"])
@pytest.mark.parametrize("case, expected", [
    (lambda: branch(repo(protection=classic())), Status.PASS),
    (lambda: branch(repo(rulesets=[ruleset(FULL)])), Status.PASS),
    (lambda: branch(repo(rulesets=[ruleset(FULL, include=["refs/heads/main"])])), Status.PASS),
    (lambda: branch(repo(rulesets=[ruleset(FULL, include=["~ALL"])])), Status.PASS),
    (lambda: branch(repo(), org_rulesets=[ruleset(FULL, repos={"include": ["a*"], "exclude": [],
                                                               "protected": False})]), Status.PASS),
    (lambda: branch(repo()), Status.FAIL),
    (lambda: branch(repo(rulesets=[ruleset(FULL, enforcement="EVALUATE")])), Status.FAIL),
    (lambda: branch(repo(rulesets=[ruleset(FULL, include=["~ALL"], exclude=["refs/heads/main"])])),
     Status.FAIL),
    (lambda: branch(repo(rulesets=[ruleset(FULL, include=["refs/heads/release/*"])])), Status.FAIL),
    (lambda: branch(repo(), org_rulesets=[ruleset(FULL, repos={"include": ["~ALL"],
                                                               "exclude": ["api"],
                                                               "protected": False})]), Status.FAIL),
    (lambda: branch(repo(admin=False)), Status.ERROR),
    (lambda: branch(repo(), org_state=EvidenceState.DENIED), Status.ERROR),
    (lambda: branch(repo(), org_rulesets=[ruleset(FULL, prop={"include": [{"name": "tier",
                     "propertyValues": ["prod"], "source": "custom"}], "exclude": []})]), Status.ERROR),
])
def test_branch_controls(control: str, case: Any, expected: Status) -> None:
    status, findings = run(control, *case())
    assert status is expected
    assert findings.get("acme/api") is expected


def test_review_count_param_and_partial_rules() -> None:
    records = branch(repo(protection=classic(requiredApprovingReviewCount=1)))
    assert run("github.branch_review_required", *records, min_approvals=2)[0] is Status.FAIL
    records = branch(repo(rulesets=[ruleset({"pull_request": 2})]))
    assert run("github.branch_review_required", *records, min_approvals=2)[0] is Status.PASS
    not_required = branch(repo(protection=classic(requiresApprovingReviews=False,
                                                  requiredApprovingReviewCount=None)))
    assert run("github.branch_review_required", *not_required)[0] is Status.FAIL


def test_force_push_layers_classic_and_rulesets() -> None:
    mixed = repo(protection=classic(allowsForcePushes=True),
                 rulesets=[ruleset({"non_fast_forward": True})])
    assert run("github.branch_force_push_blocked", *branch(mixed))[0] is Status.PASS
    only_force = repo(rulesets=[ruleset({"non_fast_forward": True})])
    status, _ = run("github.branch_force_push_blocked", *branch(only_force))
    assert status is Status.FAIL


def test_status_checks_must_name_a_check() -> None:
    empty = repo(protection=classic(requiredStatusCheckContexts=[]))
    assert run("github.branch_status_checks", *branch(empty))[0] is Status.FAIL


def test_hidden_protection_still_passes_by_ruleset_and_empty_repo_is_skipped() -> None:
    by_ruleset = repo(admin=False, rulesets=[ruleset(FULL)])
    empty = {**repo("empty"), "defaultBranchRef": None}
    status, findings = run("github.branch_review_required", *branch(by_ruleset, empty))
    assert status is Status.PASS and findings == {"acme/api": Status.PASS}


# --- Dependabot and secret scanning ----------------------------------------------------------

@pytest.mark.parametrize("fields, expected", [
    ({"viewerCanAdminister": True, "hasVulnerabilityAlertsEnabled": True}, Status.PASS),
    ({"viewerCanAdminister": True, "hasVulnerabilityAlertsEnabled": False}, Status.FAIL),
    # GitHub answers the setting truthfully only to admins: false from a non-admin is unknown
    ({"viewerCanAdminister": False, "hasVulnerabilityAlertsEnabled": False}, Status.ERROR),
    ({"viewerCanAdminister": True}, Status.ERROR),
])
def test_dependabot_alerts(fields: dict[str, Any], expected: Status) -> None:
    node = {"nameWithOwner": "acme/api", **fields}
    status, findings = run("github.dependabot_alerts",
                           rec("branch_protection", {"repositories": [node], "archived_skipped": []}))
    assert status is expected and findings == {"acme/api": expected}
    status, _ = run("github.dependabot_alerts", rec("branch_protection", None, EvidenceState.DENIED))
    assert status is Status.ERROR


def rest_repo(private: bool = True, **features: str | None) -> dict[str, Any]:
    data: dict[str, Any] = {"full_name": "acme/api", "private": private}
    if features:
        data["security_and_analysis"] = {k: {"status": v} for k, v in features.items() if v}
    return data


def repos(*items: dict[str, Any]) -> Evidence:
    return rec("repos", {"repositories": list(items), "archived_skipped": []})


@pytest.mark.parametrize("control, feature", [
    ("github.dependabot_security_updates", "dependabot_security_updates"),
    ("github.secret_scanning", "secret_scanning")])
def test_security_features(control: str, feature: str) -> None:
    assert run(control, repos(rest_repo(**{feature: "enabled"})))[0] is Status.PASS
    assert run(control, repos(rest_repo(**{feature: "disabled"})))[0] is Status.FAIL
    assert run(control, repos(rest_repo(other="enabled")))[0] is Status.FAIL  # not available
    assert run(control, repos(rest_repo()))[0] is Status.ERROR  # needs admin
    assert run(control, rec("repos", None, EvidenceState.DENIED))[0] is Status.ERROR


def test_secret_scanning_ignores_public_repos() -> None:
    public = rest_repo(private=False, secret_scanning="disabled")
    assert run("github.secret_scanning", repos(public))[0] is Status.NOT_APPLICABLE
    assert run("github.dependabot_security_updates",
               repos(rest_repo(private=False, dependabot_security_updates="disabled")))[0] is Status.FAIL


def alert(severity: str, days: int, number: int = 1) -> dict[str, Any]:
    return {"number": number, "state": "open", "created_at": (NOW - timedelta(days=days)).isoformat(),
            "security_advisory": {"severity": severity, "cve_id": "CVE-1", "ghsa_id": "GHSA-1"},
            "security_vulnerability": {"severity": severity},
            "dependency": {"package": {"ecosystem": "npm", "name": "lodash"}},
            "repository": {"full_name": "acme/api"}}


@pytest.mark.parametrize("alerts, params, expected", [
    ([], {}, Status.PASS),
    ([alert("critical", 10), alert("high", 29), alert("medium", 400)], {}, Status.PASS),
    ([alert("critical", 20)], {}, Status.FAIL),
    ([alert("high", 31)], {}, Status.FAIL),
    ([alert("critical", 20)], {"critical_days": 30}, Status.PASS),
])
def test_vulnerability_sla(alerts: list[dict[str, Any]], params: dict[str, Any],
                           expected: Status) -> None:
    status, findings = run("github.vulnerability_sla", rec("dependabot_alerts", alerts), **params)
    assert status is expected
    if expected is Status.FAIL:
        assert findings == {"acme/api": Status.FAIL}


def test_vulnerability_sla_denied_is_error() -> None:
    denied = rec("dependabot_alerts", None, EvidenceState.DENIED)
    assert run("github.vulnerability_sla", denied)[0] is Status.ERROR


# --- changes ----------------------------------------------------------------------------------

def pull(number: int, merged_days_ago: float, reviews: list[tuple[str, float]],
         base: str = "main", author: str = "alice", total: int | None = None) -> dict[str, Any]:
    merged = NOW - timedelta(days=merged_days_ago)
    nodes = [{"author": {"login": who}, "state": "APPROVED",
              "submittedAt": (merged + timedelta(hours=hours)).isoformat()} for who, hours in reviews]
    return {"__typename": "PullRequest", "number": number, "mergedAt": merged.isoformat(),
            "baseRefName": base, "author": {"login": author}, "mergedBy": {"login": author},
            "repository": {"nameWithOwner": "acme/api", "isArchived": False,
                           "defaultBranchRef": {"name": "main"}},
            "reviews": {"totalCount": total if total is not None else len(nodes), "nodes": nodes}}


def changes(*pulls: dict[str, Any]) -> Evidence:
    return rec("merged_pulls", {"since": (NOW - timedelta(days=30)).isoformat(),
                                "until": NOW.isoformat(), "pulls": list(pulls)})


@pytest.mark.parametrize("pr, expected", [
    (pull(1, 2, [("bob", -1)]), Status.PASS),
    (pull(1, 2, [("alice", -1)]), Status.FAIL),           # approved by its author only
    (pull(1, 2, [("bob", 1)]), Status.FAIL),              # approved after the merge
    (pull(1, 2, []), Status.FAIL),
    (pull(1, 2, [("alice", -1)], total=150), Status.ERROR),
])
def test_changes_reviewed(pr: dict[str, Any], expected: Status) -> None:
    status, findings = run("github.changes_reviewed", changes(pr))
    assert status is expected and findings == {"acme/api#1": expected}


def test_changes_out_of_scope_are_skipped() -> None:
    feature = pull(2, 1, [], base="feature/x")
    old = pull(3, 40, [])
    assert run("github.changes_reviewed", changes(feature, old))[0] is Status.NOT_APPLICABLE
    assert run("github.changes_reviewed", changes(pull(4, 10, [])),
               max_lookback_days=5)[0] is Status.NOT_APPLICABLE
    denied = rec("merged_pulls", None, EvidenceState.ERROR)
    assert run("github.changes_reviewed", denied)[0] is Status.ERROR


def undated(pr: dict[str, Any], who: str, missing: Any = None) -> dict[str, Any]:
    """Add an approval by ``who`` whose submission time is unknown (null, "" or no key)."""
    node = {"author": {"login": who}, "state": "APPROVED"}
    if missing != "no key":
        node["submittedAt"] = missing
    pr["reviews"]["nodes"].append(node)
    pr["reviews"]["totalCount"] += 1
    return pr


@pytest.mark.parametrize("missing", [None, "", "no key"])
def test_approval_without_submission_time_is_never_a_pass(missing: Any) -> None:
    control = catalog_by_id()["github.changes_reviewed"]
    only_undated = undated(pull(1, 2, []), "bob", missing)
    result = evaluate_control(control, [changes(only_undated)], control.param_values({}), NOW)
    assert result.status is Status.ERROR
    assert [f.resource for f in result.findings] == ["acme/api#1"]
    assert "bob" in result.findings[0].detail and "submittedAt" in result.findings[0].detail
    # an undated approval next to one after the merge may have come first: still unknown
    late_and_undated = undated(pull(1, 2, [("carol", 1)]), "bob", missing)
    assert run("github.changes_reviewed", changes(late_and_undated))[0] is Status.ERROR
    # a dated approval before the merge is enough on its own
    early_and_undated = undated(pull(1, 2, [("carol", -1)]), "bob", missing)
    assert run("github.changes_reviewed", changes(early_and_undated))[0] is Status.PASS
    # the author's own undated approval changes nothing: merged without review
    own = undated(pull(1, 2, []), "alice", missing)
    assert run("github.changes_reviewed", changes(own))[0] is Status.FAIL
