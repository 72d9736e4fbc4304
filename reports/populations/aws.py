"""``aws_access``: IAM users and access keys created or deleted, from the credential reports
(``aws.iam.credential_report``, one per account) of successive nights.

A credential report is a snapshot: one row per user with ``user_creation_time`` and, for each of
its two access-key slots, ``access_key_N_last_rotated`` (the key's creation time; AWS keys are
never rotated in place). A user is identified by its ARN and creation time (a user deleted and
created again under the same name is two users), a key by its user's ARN and creation time.

* **created**: a user or key a report of the period lists, dated by the report's creation time
  (so a user created on the last night before a scan is dated that night, not the scan's);
* **deleted**: a user or key the previous good report listed and this one does not, dated by this
  report's scan (the deletion happened between the two scans; ``last_seen_bundle`` names the
  previous one). A night whose report failed is compared across: the next good report is
  compared with the last good one, so nothing falls between.

Not visible in snapshots: a user or key created and deleted between two good reports (CloudTrail
records those), and what was deleted before the period's first good report (only the period's own
bundles are read, so that the export's bundles rebuild the same population).
The root user's own row counts for its access keys only.
"""
from __future__ import annotations

from typing import Any, Iterator

from reports.populations import Population
from reports.populations._evidence import EvidenceFile, iso

ROOT = "<root_account>"


def _items(report: Any) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(kind, arn, created) -> facts, for every user and access key of one report."""
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    rows = report.get("Rows") if isinstance(report, dict) else None
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, dict):
            continue
        user, arn = row.get("user"), row.get("arn")
        if not user or not arn:
            continue
        created = iso(row.get("user_creation_time")) if user != ROOT else None
        if created:
            out[("user", arn, created)] = {"user": user}
        for n in (1, 2):
            rotated = iso(row.get(f"access_key_{n}_last_rotated"))
            if rotated:
                out[("access key", arn, rotated)] = {"user": user}
    return out


def extract(records: list[EvidenceFile]) -> Iterator[tuple[EvidenceFile, dict[str, Any]]]:
    previous: EvidenceFile | None = None
    last: dict[tuple[str, str, str], dict[str, Any]] | None = None
    for rec in records:
        if not rec.ok:
            continue
        account = rec.scope.split(":")[1] if rec.scope.count(":") >= 1 else rec.scope
        items = _items(rec.payload)
        for (kind, arn, created), facts in items.items():
            yield rec, {"account": account, "event": f"{kind} created", "user": facts["user"],
                        "arn": arn, "at": created, "created": created, "last_seen_bundle": None}
        if last is not None and previous is not None:
            for (kind, arn, created), facts in last.items():
                if (kind, arn, created) not in items:
                    yield rec, {"account": account, "event": f"{kind} deleted",
                                "user": facts["user"], "arn": arn, "at": iso(rec.started_at),
                                "created": created, "last_seen_bundle": previous.bundle}
        previous, last = rec, items


AWS_ACCESS = Population(
    name="aws_access", title="AWS access: IAM users and access keys created or deleted",
    evidence="aws.iam.credential_report",
    columns=("account", "event", "user", "arn", "at", "created", "last_seen_bundle"),
    key=("account", "event", "arn", "created"), when="at", extract=extract, windowed=False,
    brief=("account", "at", "event", "user", "created"),
    notes=("created: dated by the credential report's user_creation_time or "
           "access_key_N_last_rotated; deleted: dated by the first scan whose report no longer "
           "lists it (last_seen_bundle: the previous good report)",
           "a user or key created and deleted between two good reports is not in it (CloudTrail "
           "records those)"))
