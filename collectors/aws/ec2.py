"""EBS snapshots the account owns, with who may create volumes from them."""
from __future__ import annotations

from typing import Any

from collectors.aws.detail import finish, read_each
from collectors.aws.session import Target


def snapshot_arn(t: Target, snapshot_id: str) -> str:
    return f"arn:{t.account.partition}:ec2:{t.region}:{t.account.id}:snapshot/{snapshot_id}"


def snapshots(t: Target) -> dict[str, Any]:
    """``DescribeSnapshots`` of the snapshots this account owns (every page); each gains the raw
    ``DescribeSnapshotAttribute`` answer for ``createVolumePermission`` (group ``all`` means
    public). A snapshot whose attribute cannot be read is named in ``unknown`` by its ARN."""
    listing = t.paginate("ec2", "DescribeSnapshots", OwnerIds=["self"],
                         Filters=[{"Name": "owner-id", "Values": [t.account.id]}]) or {}

    def read(snapshot: dict[str, Any]) -> dict[str, Any]:
        snapshot_id = snapshot["SnapshotId"]
        return {**snapshot, "DescribeSnapshotAttribute": t.call(
            "ec2", "DescribeSnapshotAttribute", what=snapshot_id, SnapshotId=snapshot_id,
            Attribute="createVolumePermission")}

    found, unknown = read_each(listing.get("Snapshots", []), read,
                               key=lambda s: snapshot_arn(t, s["SnapshotId"]))
    return finish({**listing, "Snapshots": found}, unknown, "snapshots")
