"""GitHub controls: one function per control, over the raw REST and GraphQL answers the collector
kept. A value GitHub hides from these credentials (null for non-owners or non-admins) is an
``error`` naming the missing permission, never a pass.
"""
from __future__ import annotations

import fnmatch
from datetime import timedelta
from typing import Any, Callable, Iterator

from attest.model import Finding, errored, failed, parse_time, passed
from controls.rules import EvidenceView, rule

ADMIN = "needs Administration: read on the repository (repo admin, or a token with the repo scope)"


def _org(scope: str) -> str:
    return scope.split(":", 1)[1] if ":" in scope else scope


# --- organization -----------------------------------------------------------------------------

@rule("github.org_2fa_required")
def org_2fa_required(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    for record in ev.get("github.org"):
        org = record.payload or {}
        login = org.get("login") or _org(record.scope)
        required = org.get("two_factor_requirement_enabled")
        if required is None:
            yield errored(login, "two_factor_requirement_enabled is shown only to organization "
                                 "owners: needs an owner's token (read:org) or Organization "
                                 "administration: read")
        elif required:
            yield passed(login, "the organization requires two-factor authentication")
        else:
            yield failed(login, "the organization does not require two-factor authentication")


@rule("github.members_2fa")
def members_2fa(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    for record in ev.get("github.members_2fa_disabled"):
        members = record.payload or []
        for member in members:
            yield failed(member["login"], "organization member without two-factor authentication")
        if not members:
            yield passed(_org(record.scope), "no member has two-factor authentication disabled")


# --- default branch: classic protection and rulesets ------------------------------------------

def _ref_match(patterns: list[str] | None, branch: str) -> bool:
    ref = f"refs/heads/{branch}"
    return any(p in ("~ALL", "~DEFAULT_BRANCH") or fnmatch.fnmatchcase(ref, p)
               for p in patterns or [])


def _applies(ruleset: dict[str, Any], repo: dict[str, Any], branch: str) -> bool | None:
    """Does an active branch ruleset cover this repo's default branch? None: cannot tell."""
    if ruleset.get("enforcement") != "ACTIVE" or ruleset.get("target") not in (None, "BRANCH"):
        return False
    cond = ruleset.get("conditions") or {}
    ref = cond.get("refName") or {}
    if not _ref_match(ref.get("include"), branch) or _ref_match(ref.get("exclude"), branch):
        return False
    names, ids = cond.get("repositoryName"), cond.get("repositoryId")
    if names is not None:
        name = repo["name"].lower()
        hit = [p for p in names.get("include") or [] if p == "~ALL"
               or fnmatch.fnmatchcase(name, p.lower())]
        if not hit or any(fnmatch.fnmatchcase(name, p.lower()) for p in names.get("exclude") or []):
            return False
    if ids is not None and repo.get("id") not in (ids.get("repositoryIds") or []):
        return False
    if cond.get("repositoryProperty") is not None:
        return None
    return True


Check = Callable[[dict[str, Any] | None, list[dict[str, Any]]], tuple[bool, str]]


def _branch_control(ev: EvidenceView, check: Check) -> Iterator[Finding]:
    """Judge every repo's default branch with ``check(classic_rule, ruleset_rules)``."""
    for record in ev.get("github.branch_protection"):
        org_record = ev.one("github.org_rulesets", record.scope)
        org_rulesets = org_record.payload if org_record is not None else None
        for repo in (record.payload or {}).get("repositories", []):
            branch_ref = repo.get("defaultBranchRef")
            name = repo["nameWithOwner"]
            if branch_ref is None:
                continue  # an empty repository has no default branch to protect
            branch = branch_ref["name"]
            unknown: list[str] = []
            rulesets = [rs for rs in (repo.get("rulesets") or {}).get("nodes") or []
                        if _applies(rs, repo, branch)]
            if org_rulesets is None:
                unknown.append("organization rulesets could not be read (needs organization "
                               "Administration: read)")
            for rs in org_rulesets or []:
                applies = _applies(rs, repo, branch)
                if applies is None:
                    unknown.append(f"organization ruleset '{rs.get('name')}' targets repositories "
                                   "by custom property, which attest cannot evaluate")
                elif applies:
                    rulesets.append(rs)
            rules = [r for rs in rulesets for r in (rs.get("rules") or {}).get("nodes") or []]
            classic = branch_ref.get("branchProtectionRule")
            if classic is None and not repo.get("viewerCanAdminister"):
                unknown.append(f"classic branch protection is hidden from these credentials: {ADMIN}")
            ok, detail = check(classic, rules)
            if ok:
                yield passed(name, f"default branch '{branch}': {detail}")
            elif unknown:
                yield errored(name, f"default branch '{branch}': {detail}; " + "; ".join(unknown))
            else:
                yield failed(name, f"default branch '{branch}': {detail}")


def _types(rules: list[dict[str, Any]]) -> set[str]:
    return {r.get("type") for r in rules}


@rule("github.branch_review_required")
def branch_review_required(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    need = int(params.get("min_approvals", 1))

    def check(classic: dict[str, Any] | None, rules: list[dict[str, Any]]) -> tuple[bool, str]:
        if classic and classic.get("requiresApprovingReviews") and \
                (classic.get("requiredApprovingReviewCount") or 0) >= need:
            return True, f"branch protection requires {classic['requiredApprovingReviewCount']} approval(s)"
        for r in rules:
            count = (r.get("parameters") or {}).get("requiredApprovingReviewCount") or 0
            if r.get("type") == "PULL_REQUEST" and count >= need:
                return True, f"a ruleset requires {count} approval(s)"
        return False, f"neither branch protection nor an active ruleset requires {need} approving review(s)"
    return _branch_control(ev, check)


@rule("github.branch_force_push_blocked")
def branch_force_push_blocked(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    def check(classic: dict[str, Any] | None, rules: list[dict[str, Any]]) -> tuple[bool, str]:
        types = _types(rules)
        force = (classic is not None and classic.get("allowsForcePushes") is False) \
            or "NON_FAST_FORWARD" in types
        delete = (classic is not None and classic.get("allowsDeletions") is False) \
            or "DELETION" in types
        if force and delete:
            return True, "force pushes and deletion are blocked"
        allowed = [what for what, blocked in (("force pushes", force), ("deletion", delete))
                   if not blocked]
        return False, " and ".join(allowed) + " allowed"
    return _branch_control(ev, check)


@rule("github.branch_status_checks")
def branch_status_checks(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    def check(classic: dict[str, Any] | None, rules: list[dict[str, Any]]) -> tuple[bool, str]:
        if classic and classic.get("requiresStatusChecks") and classic.get("requiredStatusCheckContexts"):
            return True, "requires " + ", ".join(classic["requiredStatusCheckContexts"])
        for r in rules:
            checks = (r.get("parameters") or {}).get("requiredStatusChecks") or []
            if r.get("type") == "REQUIRED_STATUS_CHECKS" and checks:
                return True, "a ruleset requires " + ", ".join(c["context"] for c in checks)
        return False, "no required status checks"
    return _branch_control(ev, check)


# --- Dependabot and secret scanning ----------------------------------------------------------

@rule("github.dependabot_alerts")
def dependabot_alerts(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    for record in ev.get("github.branch_protection"):
        for repo in (record.payload or {}).get("repositories", []):
            name = repo.get("nameWithOwner", "?")
            enabled = repo.get("hasVulnerabilityAlertsEnabled")
            if repo.get("viewerCanAdminister") is not True:
                yield errored(name, f"GitHub tells whether Dependabot alerts are on only to "
                                    f"repository admins: {ADMIN}")
            elif enabled is True:
                yield passed(name, "Dependabot alerts are enabled")
            elif enabled is False:
                yield failed(name, "Dependabot alerts are disabled")
            else:
                yield errored(name, "hasVulnerabilityAlertsEnabled was not in GitHub's answer")


def _security_feature(ev: EvidenceView, feature: str, label: str,
                      only_private: bool) -> Iterator[Finding]:
    for record in ev.get("github.repos"):
        for repo in (record.payload or {}).get("repositories", []):
            name = repo["full_name"]
            if only_private and not repo.get("private"):
                continue
            settings = repo.get("security_and_analysis")
            if settings is None:
                yield errored(name, f"security_and_analysis is shown only to repo admins: {ADMIN}")
                continue
            status = (settings.get(feature) or {}).get("status")
            if status == "enabled":
                yield passed(name, f"{label} enabled")
            else:
                yield failed(name, f"{label} {status or 'not available'}")


@rule("github.dependabot_security_updates")
def dependabot_security_updates(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    return _security_feature(ev, "dependabot_security_updates", "Dependabot security updates",
                             only_private=False)


@rule("github.secret_scanning")
def secret_scanning(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    return _security_feature(ev, "secret_scanning", "secret scanning", only_private=True)


@rule("github.vulnerability_sla")
def vulnerability_sla(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    limits = {"critical": params.get("critical_days"), "high": params.get("high_days")}
    for record in ev.get("github.dependabot_alerts"):
        alerts = record.payload or []
        late = 0
        for alert in alerts:
            advisory = alert.get("security_advisory") or {}
            severity = advisory.get("severity") or (alert.get("security_vulnerability") or {}).get("severity")
            limit = limits.get(severity or "")
            opened = parse_time(alert.get("created_at"))
            if limit is None or opened is None:
                continue
            age = (ev.now - opened).days
            if age > limit:
                late += 1
                repo = (alert.get("repository") or {}).get("full_name", _org(record.scope))
                ident = advisory.get("cve_id") or advisory.get("ghsa_id") or "advisory"
                package = ((alert.get("dependency") or {}).get("package") or {}).get("name", "?")
                yield failed(repo, f"Dependabot alert #{alert.get('number')} ({severity}, {ident} "
                                   f"in {package}) open for {age} days; limit {limit}")
        if not late:
            yield passed(_org(record.scope), f"{len(alerts)} open alert(s), none past its deadline")


# --- changes ----------------------------------------------------------------------------------

@rule("github.changes_reviewed")
def changes_reviewed(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    floor = ev.now - timedelta(days=int(params.get("max_lookback_days", 30)))
    for record in ev.get("github.merged_pulls"):
        for pull in (record.payload or {}).get("pulls", []):
            repo = pull.get("repository") or {}
            default = (repo.get("defaultBranchRef") or {}).get("name")
            merged = parse_time(pull.get("mergedAt"))
            if merged is None or merged < floor or pull.get("baseRefName") != default:
                continue
            resource = f"{repo['nameWithOwner']}#{pull['number']}"
            author = (pull.get("author") or {}).get("login")
            reviews = pull.get("reviews") or {}
            approvals = [r for r in reviews.get("nodes") or [] if r.get("state") == "APPROVED"]
            by_others = [r for r in approvals
                         if (r.get("author") or {}).get("login") not in (None, author)]
            dated = [(r, parse_time(r.get("submittedAt"))) for r in by_others]
            before = [r for r, at in dated if at is not None and at <= merged]
            undated = [r for r, at in dated if at is None]
            if before:
                yield passed(resource, f"approved by {before[0]['author']['login']} before the merge")
            elif undated:   # a missing submission time is unknown, never "before the merge"
                who = ", ".join(sorted({r["author"]["login"] for r in undated}))
                yield errored(resource, f"approval by {who} has no submission time (submittedAt "
                                        "missing): cannot tell whether it came before the merge")
            elif (reviews.get("totalCount") or 0) > len(reviews.get("nodes") or []):
                yield errored(resource, "more approving reviews than were fetched; cannot tell")
            elif by_others:
                yield failed(resource, "approved only after it was merged")
            else:
                yield failed(resource, f"merged by {(pull.get('mergedBy') or {}).get('login')} "
                                       "without an approving review from someone other than its author")
