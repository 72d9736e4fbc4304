"""The GraphQL half of the GitHub fake: a subset of GitHub's schema (field names and types copied
from its public schema, octokit/graphql-schema) executed with graphql-core over a :class:`World`.

Queries that use a field GitHub does not have fail validation here as they would on GitHub.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Callable

from collectors.github.demo.world import (
    OWNER, Protection, Pull, Repo, Ruleset, World, cursor, iso, node_id, uncursor)
from attest.model import parse_time

SDL = """
scalar DateTime
scalar URI
type Query {
  organization(login: String!): Organization
  repository(owner: String!, name: String!): Repository
  search(after: String, before: String, first: Int, last: Int, query: String!,
         type: SearchType!): SearchResultItemConnection!
  nodes(ids: [ID!]!): [Node]!
}
interface Node { id: ID! }
enum SearchType { DISCUSSION ISSUE REPOSITORY USER }
enum OrderDirection { ASC DESC }
enum RepositoryOrderField { CREATED_AT NAME PUSHED_AT STARGAZERS UPDATED_AT }
input RepositoryOrder { direction: OrderDirection! field: RepositoryOrderField! }
type PageInfo { endCursor: String hasNextPage: Boolean! hasPreviousPage: Boolean! startCursor: String }
type Organization {
  login: String!
  requiresTwoFactorAuthentication: Boolean
  repositories(after: String, before: String, first: Int, isArchived: Boolean, last: Int,
               orderBy: RepositoryOrder): RepositoryConnection!
  rulesets(after: String, before: String, first: Int, includeParents: Boolean = true, last: Int,
           targets: [RepositoryRulesetTarget!] = null): RepositoryRulesetConnection
}
type RepositoryConnection { nodes: [Repository] pageInfo: PageInfo! totalCount: Int! }
type Repository implements Node {
  id: ID!
  databaseId: Int
  name: String!
  nameWithOwner: String!
  isArchived: Boolean!
  isPrivate: Boolean!
  viewerCanAdminister: Boolean!
  hasVulnerabilityAlertsEnabled: Boolean!
  defaultBranchRef: Ref
  rulesets(after: String, before: String, first: Int, includeParents: Boolean = true, last: Int,
           targets: [RepositoryRulesetTarget!] = null): RepositoryRulesetConnection
}
type Ref { name: String! branchProtectionRule: BranchProtectionRule }
type BranchProtectionRule {
  allowsDeletions: Boolean!
  allowsForcePushes: Boolean!
  isAdminEnforced: Boolean!
  pattern: String!
  requiredApprovingReviewCount: Int
  requiredStatusCheckContexts: [String]
  requiresApprovingReviews: Boolean!
  requiresStatusChecks: Boolean!
  requiresStrictStatusChecks: Boolean!
}
type RepositoryRulesetConnection { nodes: [RepositoryRuleset] pageInfo: PageInfo! totalCount: Int! }
enum RuleEnforcement { ACTIVE DISABLED EVALUATE }
enum RepositoryRulesetTarget { BRANCH PUSH REPOSITORY TAG }
type RepositoryRuleset {
  conditions: RepositoryRuleConditions!
  databaseId: Int
  enforcement: RuleEnforcement!
  name: String!
  rules(after: String, before: String, first: Int, last: Int,
        type: RepositoryRuleType): RepositoryRuleConnection
  target: RepositoryRulesetTarget
}
type RepositoryRuleConditions {
  refName: RefNameConditionTarget
  repositoryId: RepositoryIdConditionTarget
  repositoryName: RepositoryNameConditionTarget
  repositoryProperty: RepositoryPropertyConditionTarget
}
type RefNameConditionTarget { exclude: [String!]! include: [String!]! }
type RepositoryNameConditionTarget { exclude: [String!]! include: [String!]! protected: Boolean! }
type RepositoryIdConditionTarget { repositoryIds: [ID!]! }
type RepositoryPropertyConditionTarget {
  exclude: [PropertyTargetDefinition!]!
  include: [PropertyTargetDefinition!]!
}
type PropertyTargetDefinition { name: String! propertyValues: [String!]! source: String }
type RepositoryRuleConnection { nodes: [RepositoryRule] pageInfo: PageInfo! totalCount: Int! }
enum RepositoryRuleType {
  CREATION DELETION NON_FAST_FORWARD PULL_REQUEST REQUIRED_LINEAR_HISTORY REQUIRED_SIGNATURES
  REQUIRED_STATUS_CHECKS UPDATE
}
type RepositoryRule { parameters: RuleParameters type: RepositoryRuleType! }
union RuleParameters = PullRequestParameters | RequiredStatusChecksParameters
type PullRequestParameters {
  allowedMergeMethods: [String!]
  dismissStaleReviewsOnPush: Boolean!
  requireCodeOwnerReview: Boolean!
  requireLastPushApproval: Boolean!
  requiredApprovingReviewCount: Int!
  requiredReviewThreadResolution: Boolean!
}
type RequiredStatusChecksParameters {
  doNotEnforceOnCreate: Boolean!
  requiredStatusChecks: [StatusCheckConfiguration!]!
  strictRequiredStatusChecksPolicy: Boolean!
}
type StatusCheckConfiguration { context: String! integrationId: Int }
type SearchResultItemConnection {
  issueCount: Int! nodes: [SearchResultItem] pageInfo: PageInfo!
}
union SearchResultItem = Issue | PullRequest
type Issue { number: Int! title: String! }
interface Actor { login: String! }
type User implements Actor { login: String! }
type PullRequest {
  author: Actor
  baseRefName: String!
  createdAt: DateTime!
  mergedAt: DateTime
  mergedBy: Actor
  number: Int!
  repository: Repository!
  reviews(after: String, before: String, first: Int, last: Int,
          states: [PullRequestReviewState!]): PullRequestReviewConnection
  title: String!
  url: URI!
}
enum PullRequestReviewState { APPROVED CHANGES_REQUESTED COMMENTED DISMISSED PENDING }
type PullRequestReviewConnection { nodes: [PullRequestReview] pageInfo: PageInfo! totalCount: Int! }
type PullRequestReview { author: Actor state: PullRequestReviewState! submittedAt: DateTime }
"""

SEARCH_CAP = 1000


@lru_cache(maxsize=1)
def schema() -> Any:
    from graphql import build_schema
    return build_schema(SDL)


class Forbidden(Exception):
    """Raised by a resolver the viewer may not read (GitHub: type FORBIDDEN)."""


def connection(items: list[Any], first: int | None, after: str | None,
               cap: int | None = None, node: Callable[[Any], Any] = lambda item: item
               ) -> dict[str, Any]:
    """One page of ``items``; ``node`` builds the schema-shaped dict of each item on the page
    only (a page of 100 repositories does not build the other 2,900)."""
    start = uncursor(after)
    limit = min(first or 100, 100)
    visible = items[:cap] if cap is not None else items
    page = [node(item) for item in visible[start:start + limit]]
    end = start + len(page) - 1
    return {"nodes": page, "totalCount": len(items),
            "pageInfo": {"hasNextPage": start + limit < len(visible),
                         "hasPreviousPage": start > 0,
                         "startCursor": cursor(start) if page else None,
                         "endCursor": cursor(end) if page else None}}


def _conn(items: Callable[[], list[Any]],
          node: Callable[[Any], Any] = lambda item: item) -> Callable[..., dict[str, Any]]:
    return lambda info, first=None, after=None, **_: connection(items(), first, after, node=node)


class Resolver:
    """Builds schema-shaped dicts for one request's viewer (an owner/admin, or a plain member)."""

    def __init__(self, world: World, role: str) -> None:
        self.world = world
        self.admin = role == OWNER

    def root(self) -> dict[str, Any]:
        return {"organization": self.organization, "repository": self.repository,
                "search": self.search, "nodes": self.nodes}

    def nodes(self, info: Any, ids: list[str]) -> list[dict[str, Any] | None]:
        """Repositories by node id (GitHub allows 100 per call); null for an unknown id."""
        if len(ids) > 100:
            raise ValueError("You may not request more than 100 nodes at once")
        by_id = {node_id("Repository", r.id): r for r in self.world.repos}
        return [{**self.repo(by_id[i]), "__typename": "Repository"} if i in by_id else None
                for i in ids]

    def organization(self, info: Any, login: str) -> dict[str, Any] | None:
        w = self.world
        if login.lower() != w.org.lower():
            return None
        return {"login": w.org,
                "requiresTwoFactorAuthentication":
                    w.two_factor_requirement_enabled if self.admin else None,
                "repositories": _conn(lambda: sorted(w.repos, key=lambda r: r.name.lower()),
                                      self.repo),
                "rulesets": self.org_rulesets}

    def org_rulesets(self, info: Any, first: int | None = None, after: str | None = None,
                     **_: Any) -> dict[str, Any]:
        if not self.admin:
            raise Forbidden("Resource not accessible by integration")
        return connection([self.ruleset(rs, org=True) for rs in self.world.org_rulesets],
                          first, after)

    def repository(self, info: Any, owner: str, name: str) -> dict[str, Any] | None:
        repo = self.world.repo(name)
        return self.repo(repo) if repo and owner.lower() == self.world.org.lower() else None

    def repo(self, repo: Repo) -> dict[str, Any]:
        protection = repo.protection if self.admin else None
        return {"id": node_id("Repository", repo.id), "databaseId": repo.id, "name": repo.name,
                "nameWithOwner": f"{self.world.org}/{repo.name}", "isArchived": repo.archived,
                "isPrivate": repo.private, "viewerCanAdminister": self.admin,
                # GitHub answers this truthfully only to repository admins (others see false)
                "hasVulnerabilityAlertsEnabled": repo.vulnerability_alerts and self.admin,
                "defaultBranchRef": {"name": repo.default_branch,
                                     "branchProtectionRule": protection_rule(repo, protection)},
                "rulesets": _conn(lambda: [self.ruleset(rs, org=False) for rs in repo.rulesets])}

    def ruleset(self, rs: Ruleset, org: bool) -> dict[str, Any]:
        rules = [rule_node(kind, value) for kind, value in rs.rules.items()]
        conditions: dict[str, Any] = {
            "refName": {"include": rs.ref_include, "exclude": rs.ref_exclude},
            "repositoryName": None, "repositoryId": None, "repositoryProperty": None}
        if org:
            conditions["repositoryName"] = {"include": rs.repo_include, "exclude": rs.repo_exclude,
                                            "protected": False}
        return {"databaseId": rs.id, "name": rs.name, "enforcement": rs.enforcement.upper(),
                "target": "BRANCH", "conditions": conditions, "rules": _conn(lambda: rules)}

    def search(self, info: Any, query: str, type: str, first: int | None = None,
               after: str | None = None, **_: Any) -> dict[str, Any]:
        if self.world.search_forbidden:
            raise Forbidden("Resource not accessible by integration")
        pulls = search_pulls(self.world, query) if type == "ISSUE" else []
        result = connection(pulls, first, after, cap=SEARCH_CAP, node=self.pull)
        return {"issueCount": len(pulls), "nodes": result["nodes"], "pageInfo": result["pageInfo"]}

    def pull(self, pull: Pull) -> dict[str, Any]:
        repo = self.world.repo(pull.repo)
        assert repo is not None
        reviews = [{"author": user(r.author), "state": r.state, "submittedAt": iso(r.submitted_at)}
                   for r in pull.reviews]

        def review_conn(info: Any, first: int | None = None, after: str | None = None,
                        states: list[str] | None = None, **_: Any) -> dict[str, Any]:
            chosen = [r for r in reviews if not states or r["state"] in states]
            return connection(chosen, first, after)

        return {"__typename": "PullRequest", "number": pull.number, "title": pull.title,
                "url": f"https://github.com/{self.world.org}/{repo.name}/pull/{pull.number}",
                "createdAt": iso(pull.merged_at.replace(hour=0)), "mergedAt": iso(pull.merged_at),
                "baseRefName": pull.base or repo.default_branch, "author": user(pull.author),
                "mergedBy": user(pull.merged_by or pull.author), "repository": self.repo(repo),
                "reviews": review_conn}


def user(login: str | None) -> dict[str, Any] | None:
    return {"__typename": "User", "login": login} if login else None


def protection_rule(repo: Repo, p: Protection | None) -> dict[str, Any] | None:
    if p is None:
        return None
    return {"pattern": repo.default_branch, "isAdminEnforced": p.enforce_admins,
            "requiresApprovingReviews": p.required_reviews is not None,
            "requiredApprovingReviewCount": p.required_reviews,
            "allowsForcePushes": p.allow_force_pushes, "allowsDeletions": p.allow_deletions,
            "requiresStatusChecks": p.status_checks is not None, "requiresStrictStatusChecks": False,
            "requiredStatusCheckContexts": list(p.status_checks or [])}


def rule_node(kind: str, value: Any) -> dict[str, Any]:
    parameters: dict[str, Any] | None = None
    if kind == "pull_request":
        parameters = {"__typename": "PullRequestParameters", "requiredApprovingReviewCount": value,
                      "dismissStaleReviewsOnPush": False, "requireCodeOwnerReview": False,
                      "requireLastPushApproval": False, "requiredReviewThreadResolution": False,
                      "allowedMergeMethods": ["merge", "squash", "rebase"]}
    elif kind == "required_status_checks":
        parameters = {"__typename": "RequiredStatusChecksParameters", "doNotEnforceOnCreate": False,
                      "strictRequiredStatusChecksPolicy": False,
                      "requiredStatusChecks": [{"context": c, "integrationId": None} for c in value]}
    return {"type": kind.upper(), "parameters": parameters}


_MERGED = re.compile(r"merged:(\S+?)\.\.(\S+)")


def search_pulls(world: World, query: str) -> list[Pull]:
    """``org:X is:pr is:merged merged:A..B`` over the world's pull requests, newest first."""
    terms = query.split()
    if f"org:{world.org}".lower() not in (t.lower() for t in terms) or "is:pr" not in terms:
        return []
    match = _MERGED.search(query)
    since, until = ((parse_time(match.group(1)), parse_time(match.group(2))) if match
                    else (None, None))
    out = [p for p in world.pulls
           if world.repo(p.repo) and (since is None or since <= p.merged_at)
           and (until is None or p.merged_at <= until)]
    return sorted(out, key=lambda p: p.merged_at, reverse=True)


def execute(world: World, role: str, body: dict[str, Any]) -> dict[str, Any]:
    """Run one GraphQL request; errors come back in GitHub's shape (with ``type``)."""
    from graphql import graphql_sync

    result = graphql_sync(schema(), body.get("query") or "", root_value=Resolver(world, role).root(),
                          variable_values=body.get("variables") or {})
    out: dict[str, Any] = {}
    if result.errors:
        out["errors"] = []
        for err in result.errors:
            kind = "FORBIDDEN" if isinstance(err.original_error, Forbidden) else None
            entry: dict[str, Any] = {"message": err.message, "locations":
                                     [{"line": loc.line, "column": loc.column}
                                      for loc in err.locations or []]}
            if err.path:
                entry["path"] = list(err.path)
            if kind:
                entry["type"] = kind
            out["errors"].append(entry)
    if result.data is not None or not result.errors:
        out["data"] = result.data
    return out

