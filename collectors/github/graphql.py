"""GitHub GraphQL reads: repositories with their default branch's protection and rulesets (100
repositories per call), organization rulesets, and merged pull requests with their reviews.

Payloads are the GraphQL nodes exactly as GitHub returned them.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable

from attest.model import parse_time

RULESET_FIELDS = """
fragment RulesetFields on RepositoryRuleset {
  databaseId name enforcement target
  conditions {
    refName { include exclude }
    repositoryName { include exclude protected }
    repositoryId { repositoryIds }
    repositoryProperty { include { name propertyValues source } exclude { name propertyValues source } }
  }
  rules(first: 50) {
    totalCount
    nodes {
      type
      parameters {
        __typename
        ... on PullRequestParameters {
          requiredApprovingReviewCount dismissStaleReviewsOnPush requireCodeOwnerReview
          requireLastPushApproval
        }
        ... on RequiredStatusChecksParameters {
          strictRequiredStatusChecksPolicy requiredStatusChecks { context integrationId }
        }
      }
    }
  }
}
"""

REPOSITORY_FIELDS = """
fragment RepositoryFields on Repository {
  id databaseId name nameWithOwner isArchived isPrivate viewerCanAdminister
  hasVulnerabilityAlertsEnabled
  defaultBranchRef {
    name
    branchProtectionRule {
      pattern isAdminEnforced requiresApprovingReviews requiredApprovingReviewCount
      allowsForcePushes allowsDeletions requiresStatusChecks requiresStrictStatusChecks
      requiredStatusCheckContexts
    }
  }
  rulesets(first: 25, includeParents: false, targets: [BRANCH]) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes { ...RulesetFields }
  }
}
""" + RULESET_FIELDS

REPOSITORIES = """
query Repositories($org: String!, $cursor: String) {
  organization(login: $org) {
    repositories(first: 100, after: $cursor, orderBy: {field: NAME, direction: ASC}) {
      pageInfo { hasNextPage endCursor }
      nodes { ...RepositoryFields }
    }
  }
}
""" + REPOSITORY_FIELDS

# The same fields for up to 100 repositories named by their node ids (from the REST list):
# these calls do not depend on each other, so they are sent side by side.
REPOSITORY_NODES = """
query RepositoryNodes($ids: [ID!]!) {
  nodes(ids: $ids) { ...RepositoryFields }
}
""" + REPOSITORY_FIELDS
NODES_PER_CALL = 100   # GitHub's limit for nodes(ids:)

REPOSITORY_RULESETS = """
query RepositoryRulesets($owner: String!, $name: String!, $cursor: String) {
  repository(owner: $owner, name: $name) {
    rulesets(first: 100, after: $cursor, includeParents: false, targets: [BRANCH]) {
      pageInfo { hasNextPage endCursor }
      nodes { ...RulesetFields }
    }
  }
}
""" + RULESET_FIELDS

ORG_RULESETS = """
query OrgRulesets($org: String!, $cursor: String) {
  organization(login: $org) {
    rulesets(first: 100, after: $cursor, targets: [BRANCH]) {
      pageInfo { hasNextPage endCursor }
      nodes { ...RulesetFields }
    }
  }
}
""" + RULESET_FIELDS

MERGED_PULLS = """
query MergedPulls($q: String!, $cursor: String) {
  search(query: $q, type: ISSUE, first: 100, after: $cursor) {
    issueCount
    pageInfo { hasNextPage endCursor }
    nodes {
      __typename
      ... on PullRequest {
        number url title createdAt mergedAt baseRefName
        author { login }
        mergedBy { login }
        repository { nameWithOwner isArchived defaultBranchRef { name } }
        reviews(first: 100, states: [APPROVED]) {
          totalCount
          nodes { author { login } state submittedAt }
        }
      }
    }
  }
}
"""

SEARCH_LIMIT = 1000  # GitHub search returns at most 1,000 results per query


class GraphqlError(Exception):
    """GraphQL answered with errors (the data could not be had); ``kind``: the first error's
    ``type`` (e.g. ``FORBIDDEN``), or ``graphql error`` when GitHub gave none."""

    def __init__(self, message: str, kind: str = "graphql error") -> None:
        super().__init__(message)
        self.kind = kind


class GraphqlDenied(GraphqlError):
    """GraphQL answered FORBIDDEN / not accessible: a permission is missing."""


class Graphql:
    """POSTs GraphQL queries through ``post(text, variables, needs) -> Response`` (the collector's
    HTTP layer: auth, retries, rate-limit waits, GraphQL's RATE_LIMITED answers included)."""

    def __init__(self, post: Callable[[str, dict[str, Any], str], Any]) -> None:
        self.post = post

    def query(self, text: str, variables: dict[str, Any], needs: str = "",
              tolerate: frozenset[str] = frozenset()) -> dict[str, Any]:
        """The answer's data; its errors raise, but for those of a type in ``tolerate`` when
        there is data (``NOT_FOUND`` for a node deleted since it was listed: its entry is null)."""
        body = self.post(text, variables, needs).body or {}
        errors = [e for e in body.get("errors") or []
                  if not (e.get("type") in tolerate and body.get("data") is not None)]
        if errors:
            messages = "; ".join(str(e.get("message", e)) for e in errors)[:400]
            kind = next((str(e["type"]) for e in errors if e.get("type")), "graphql error")
            denied = [e["type"] for e in errors if e.get("type") in ("FORBIDDEN", "INSUFFICIENT_SCOPES")]
            if denied:
                raise GraphqlDenied(f"GraphQL: {messages}", denied[0])
            raise GraphqlError(f"GraphQL: {messages}", kind)
        return body["data"]


def _connection(gql: Graphql, text: str, variables: dict[str, Any], path: tuple[str, ...]) -> list[Any]:
    """Every node of the connection at ``path``, following pageInfo.endCursor."""
    nodes: list[Any] = []
    cursor = None
    while True:
        data: Any = gql.query(text, {**variables, "cursor": cursor})
        for key in path:
            data = data.get(key) if data else None
        if data is None:
            raise GraphqlError(f"GraphQL: {'.'.join(path)} is not visible to these credentials")
        nodes.extend(n for n in data["nodes"] if n is not None)
        if not data["pageInfo"]["hasNextPage"]:
            return nodes
        cursor = data["pageInfo"]["endCursor"]


def repositories(gql: Graphql, org: str, include_archived: bool) -> dict[str, Any]:
    """Repositories with default-branch protection and their own branch rulesets."""
    nodes = _connection(gql, REPOSITORIES, {"org": org}, ("organization", "repositories"))
    return _repositories(gql, nodes, include_archived)


def repositories_by_id(gql: Graphql, ids: list[str], include_archived: bool, workers: int,
                       skipped: Iterable[str] = ()) -> dict[str, Any]:
    """:func:`repositories` for the repositories of a list already read (their node ids, in
    its order): ``NODES_PER_CALL`` per call, ``workers`` calls at once. ``skipped``: archived
    repositories the list left out. A repository deleted since it was listed is left out."""
    batches = [ids[i:i + NODES_PER_CALL] for i in range(0, len(ids), NODES_PER_CALL)]

    def read(batch: list[str]) -> list[Any]:
        return gql.query(REPOSITORY_NODES, {"ids": batch}, tolerate=frozenset({"NOT_FOUND"}))["nodes"]
    with ThreadPoolExecutor(max(1, min(workers, len(batches))),
                            thread_name_prefix="attest-github-nodes") as pool:
        pages = list(pool.map(read, batches))
    nodes = [n for page in pages for n in page or [] if n is not None]
    found = _repositories(gql, nodes, include_archived)
    found["archived_skipped"] = sorted({*found["archived_skipped"], *skipped})
    return found


def _repositories(gql: Graphql, nodes: list[Any], include_archived: bool) -> dict[str, Any]:
    keep = [n for n in nodes if include_archived or not n["isArchived"]]
    for repo in keep:
        rulesets = repo.get("rulesets") or {}
        if (rulesets.get("pageInfo") or {}).get("hasNextPage"):
            owner, _, name = repo["nameWithOwner"].partition("/")
            repo["rulesets"] = {"totalCount": rulesets["totalCount"], "nodes": _connection(
                gql, REPOSITORY_RULESETS, {"owner": owner, "name": name}, ("repository", "rulesets"))}
    skipped = sorted(n["nameWithOwner"] for n in nodes if n not in keep)
    return {"repositories": keep, "archived_skipped": skipped}


def org_rulesets(gql: Graphql, org: str) -> list[Any]:
    return _connection(gql, ORG_RULESETS, {"org": org}, ("organization", "rulesets"))


def _ts(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def merged_pulls(gql: Graphql, org: str, since: datetime, until: datetime,
                 include_archived: bool) -> list[Any]:
    """Pull requests merged in [since, until], split into smaller windows past search's cap."""
    since, until = since.replace(microsecond=0), until.replace(microsecond=0)
    q = f"org:{org} is:pr is:merged merged:{_ts(since)}..{_ts(until)}"
    page = gql.query(MERGED_PULLS, {"q": q, "cursor": None})["search"]
    if page["issueCount"] > SEARCH_LIMIT and until - since > timedelta(minutes=1):
        middle = (since + (until - since) / 2).replace(microsecond=0)
        return (merged_pulls(gql, org, since, middle, include_archived)
                + merged_pulls(gql, org, middle + timedelta(seconds=1), until, include_archived))
    nodes = list(page["nodes"])
    while page["pageInfo"]["hasNextPage"]:
        page = gql.query(MERGED_PULLS, {"q": q, "cursor": page["pageInfo"]["endCursor"]})["search"]
        nodes.extend(page["nodes"])
    pulls = [n for n in nodes if n and n.get("__typename") == "PullRequest"]
    return [p for p in pulls
            if (include_archived or not p["repository"]["isArchived"])
            and since <= (parse_time(p["mergedAt"]) or since) <= until]
