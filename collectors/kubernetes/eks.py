"""An EKS cluster's endpoint, CA and bearer token, from the AWS credential chain.

The token is what ``aws eks get-token`` prints and what EKS's authenticator accepts: the text
``k8s-aws-v1.`` followed by the unpadded base64url of a presigned STS ``GetCallerIdentity`` URL
whose signature covers the ``x-k8s-aws-id`` header (the cluster name). It is signed here with
botocore's own signer; no aws-iam-authenticator binary is needed. Tokens are good for 15 minutes:
the collector signs a fresh one before that.
"""
from __future__ import annotations

import base64
from typing import Any

from attest.model import EvidenceState

TOKEN_PREFIX = "k8s-aws-v1."
CLUSTER_HEADER = "x-k8s-aws-id"
PRESIGN_SECONDS = 60          # as aws eks get-token; EKS accepts the token for 15 minutes
REFRESH_AFTER = 10 * 60       # a new token after 10 minutes


def token(session: Any, cluster: str, region: str) -> str:
    """A bearer token for ``cluster``, signed with ``session``'s credentials."""
    sts = session.client("sts", region_name=region)

    def name_the_cluster(request: Any, **_: Any) -> None:
        request.headers[CLUSTER_HEADER] = cluster

    sts.meta.events.register("before-sign.sts.GetCallerIdentity", name_the_cluster)
    url = sts.generate_presigned_url("get_caller_identity", Params={}, ExpiresIn=PRESIGN_SECONDS,
                                     HttpMethod="GET")
    return TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def describe(session: Any, cluster: str, region: str) -> dict[str, Any]:
    """``eks:DescribeCluster``'s ``cluster`` (endpoint, certificateAuthority, status...)."""
    from botocore.config import Config as BotoConfig
    eks = session.client("eks", region_name=region, config=BotoConfig(
        retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=30,
        user_agent_extra="attest"))
    return eks.describe_cluster(name=cluster)["cluster"]


def failure(exc: Exception, name: str, region: str) -> tuple[EvidenceState, str]:
    """The evidence state and detail of an AWS call for an EKS cluster that failed."""
    from collectors.aws_errors import classify   # botocore: only when an EKS cluster is read
    return classify(exc, f"eks:DescribeCluster ({name} in {region})")


def record_failure(exc: Exception, scope: str, name: str, region: str, state: EvidenceState,
                   detail: str) -> None:
    """List the failed ``eks:DescribeCluster`` (or the token it needs) among the bundle's failed
    calls: the cluster's evidence is all ``state`` because of it."""
    from attest.logs import log_call
    from collectors.aws_errors import failed_entry
    from collectors.kubernetes.source import CLUSTER
    log_call("kubernetes", scope, "eks:DescribeCluster", 0.0, state.value, detail,
             failed=failed_entry(exc, "eks:DescribeCluster", state, f"cluster {name} in {region}",
                                 evidence=CLUSTER))
