"""EKS clusters of a region with their settings, and the region's Kubernetes versions."""
from __future__ import annotations

from typing import Any

from attest.model import EvidenceState
from collectors.aws.session import CallFailed, Target


def cluster_arn(t: Target, name: str) -> str:
    """The ARN ``DescribeCluster`` gives a cluster, for one that could not be described."""
    return f"arn:{t.account.partition}:eks:{t.region}:{t.account.id}:cluster/{name}"


def clusters(t: Target) -> dict[str, Any]:
    """``ListClusters`` (every page) plus, per cluster, the raw ``DescribeCluster`` answer under
    ``Clusters``. One cluster that cannot be described costs only that cluster: the record is
    ``partial`` and names it (by its ARN) in ``unknown``; the others are kept."""
    listing = t.shared_list("eks", "ListClusters")
    described: list[dict[str, Any]] = []
    unknown: dict[str, str] = {}
    for name in listing.get("clusters", []):
        try:
            answer = t.call("eks", "DescribeCluster", what=name, name=name,
                            absent=("ResourceNotFoundException",))
        except CallFailed as exc:
            unknown[cluster_arn(t, name)] = exc.detail
            continue
        if answer is not None:   # None: deleted between the listing and the call
            described.append({"name": name, "DescribeCluster": answer})
    listing["Clusters"] = described
    if unknown:
        raise CallFailed(EvidenceState.PARTIAL, f"{len(unknown)} of {len(listing['clusters'])} "
                         f"clusters could not be described", listing, unknown)
    return listing


def cluster_versions(t: Target) -> dict[str, Any]:
    """``DescribeClusterVersions`` with ``includeAll`` (every page): each Kubernetes version EKS
    knows in this region, with its ``versionStatus`` and end of standard and extended support.

    Read only where clusters run (``ListClusters`` first): a region without clusters is
    ``absent``, as nothing there needs a version judged. An endpoint that does not offer the
    operation (moto, an older emulator) answers 404; that is recorded as ``error`` with a plain
    reason, never as "no versions"."""
    if not t.shared_list("eks", "ListClusters").get("clusters"):
        raise CallFailed(EvidenceState.ABSENT, f"no EKS cluster in {t.region}: its versions "
                         "were not read")
    try:
        return t.paginate("eks", "DescribeClusterVersions", includeAll=True) or {}
    except CallFailed as exc:
        response = getattr(exc.__cause__, "response", None) or {}
        if (exc.state is EvidenceState.ERROR
                and response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404):
            raise CallFailed(EvidenceState.ERROR, "eks:DescribeClusterVersions: the endpoint does "
                             "not support this operation (404), so the support status of the "
                             "clusters' Kubernetes versions is unknown") from exc
        raise
