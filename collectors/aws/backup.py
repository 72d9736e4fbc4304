"""AWS Backup plans of a region, with their resource selections."""
from __future__ import annotations

from typing import Any

from collectors.aws.detail import finish, read_each
from collectors.aws.session import Target


def plans(t: Target) -> dict[str, Any]:
    """``ListBackupPlans`` (every page); each plan gains the raw ``ListBackupSelections`` answer
    (every page). A plan whose selections cannot be read is named in ``unknown`` by its ARN."""
    listing = t.paginate("backup", "ListBackupPlans") or {}

    def read(plan: dict[str, Any]) -> dict[str, Any]:
        return {**plan, "ListBackupSelections": t.paginate(
            "backup", "ListBackupSelections", BackupPlanId=plan["BackupPlanId"])}

    found, unknown = read_each(listing.get("BackupPlansList", []), read,
                               key=lambda p: p["BackupPlanArn"])
    return finish({**listing, "BackupPlansList": found}, unknown, "backup plans")
