"""``changes``: pull requests merged to a default branch, from ``github.merged_pulls``.

Each good read holds the pull requests merged in its window (``since`` .. ``until``: from the
last good read, at most ``changes_lookback_days`` back), as GitHub's GraphQL search returned them
(:mod:`collectors.github.graphql`). A row is one pull request into its repository's default
branch, with its approving reviews (all of them, with their times: the verdict says whether one
came from someone else before the merge) and the verdict ``github.changes_reviewed`` gave it in
the same bundle. A pull request is identified by repository and number; two windows sharing a
boundary second may both list it: one row, naming the first bundle.
"""
from __future__ import annotations

from typing import Any, Iterator

from reports.populations import Population
from reports.populations._evidence import EvidenceFile, iso, verdict_columns

CONTROL = "github.changes_reviewed"


def _approvals(pull: dict[str, Any]) -> list[tuple[str, str]]:
    nodes = (pull.get("reviews") or {}).get("nodes") or []
    approved = [((r.get("author") or {}).get("login") or "(deleted user)",
                 iso(r.get("submittedAt")) or "")
                for r in nodes if isinstance(r, dict) and r.get("state") == "APPROVED"]
    return sorted(approved, key=lambda a: (a[1], a[0]))


def extract(records: list[EvidenceFile]) -> Iterator[tuple[EvidenceFile, dict[str, Any]]]:
    for rec in records:
        if not rec.ok:
            continue
        verdicts = rec.findings(CONTROL)
        for pull in rec.payload.get("pulls") or []:
            repo = pull.get("repository") or {}
            default = (repo.get("defaultBranchRef") or {}).get("name")
            if not repo.get("nameWithOwner") or pull.get("baseRefName") != default:
                continue
            resource = f"{repo['nameWithOwner']}#{pull.get('number')}"
            verdict = verdicts.get(resource)
            approvals = _approvals(pull)
            yield rec, {
                "repository": repo["nameWithOwner"], "number": pull.get("number"),
                "title": pull.get("title"), "url": pull.get("url"),
                "base_branch": pull.get("baseRefName"),
                "author": (pull.get("author") or {}).get("login"),
                "merged_by": (pull.get("mergedBy") or {}).get("login"),
                "merged_at": iso(pull.get("mergedAt")),
                "approvers": "; ".join(a for a, _ in approvals),
                "approved_at": "; ".join(t for _, t in approvals),
                **verdict_columns(verdict, CONTROL, resource),
            }


CHANGES = Population(
    name="changes", title="Changes: pull requests merged to default branches",
    evidence="github.merged_pulls",
    columns=("repository", "number", "title", "url", "base_branch", "author", "merged_by",
             "merged_at", "approvers", "approved_at", "verdict", "verdict_detail"),
    key=("repository", "number"), when="merged_at", extract=extract,
    brief=("repository", "number", "author", "merged_at", "approvers", "verdict"),
    notes=("one row per pull request merged to its repository's default branch; approvers and "
           "approved_at list every approving review (login; time), in time order",
           f"verdict: the {CONTROL} finding of the same bundle (pass: approved by someone other "
           "than the author before the merge)",
           "merges into other branches and archived repositories are not in it"))
