"""Manual RDS snapshots (instance and cluster) with who may restore them."""
from __future__ import annotations

from typing import Any

from collectors.aws.detail import finish, read_each
from collectors.aws.session import Target


def db_snapshots(t: Target) -> dict[str, Any]:
    """``DescribeDBSnapshots`` of manual snapshots (every page); each gains the raw
    ``DescribeDBSnapshotAttributes`` answer (its ``restore`` attribute lists the accounts, or
    ``all``, that may copy or restore it). A snapshot whose attributes cannot be read is named in
    ``unknown`` by its ARN."""
    listing = t.paginate("rds", "DescribeDBSnapshots", SnapshotType="manual") or {}

    def read(snapshot: dict[str, Any]) -> dict[str, Any]:
        name = snapshot["DBSnapshotIdentifier"]
        return {**snapshot, "DescribeDBSnapshotAttributes": t.call(
            "rds", "DescribeDBSnapshotAttributes", what=name, DBSnapshotIdentifier=name)}

    snapshots, unknown = read_each(listing.get("DBSnapshots", []), read,
                                   key=lambda s: s["DBSnapshotArn"])
    return finish({**listing, "DBSnapshots": snapshots}, unknown, "snapshots")


def cluster_snapshots(t: Target) -> dict[str, Any]:
    """``DescribeDBClusterSnapshots`` of manual snapshots, each with the raw
    ``DescribeDBClusterSnapshotAttributes`` answer, as :func:`db_snapshots`."""
    listing = t.paginate("rds", "DescribeDBClusterSnapshots", SnapshotType="manual") or {}

    def read(snapshot: dict[str, Any]) -> dict[str, Any]:
        name = snapshot["DBClusterSnapshotIdentifier"]
        return {**snapshot, "DescribeDBClusterSnapshotAttributes": t.call(
            "rds", "DescribeDBClusterSnapshotAttributes", what=name,
            DBClusterSnapshotIdentifier=name)}

    snapshots, unknown = read_each(listing.get("DBClusterSnapshots", []), read,
                                   key=lambda s: s["DBClusterSnapshotArn"])
    return finish({**listing, "DBClusterSnapshots": snapshots}, unknown, "cluster snapshots")
