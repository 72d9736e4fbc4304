"""What a failed AWS SDK call means as evidence, for every source that calls AWS (the AWS
source itself, and the Kubernetes source reaching EKS clusters): ``denied`` for AccessDenied-like
codes and HTTP 401/403, ``unreachable`` when no answer came, else ``error``."""
from __future__ import annotations

from botocore.exceptions import ClientError

from attest.model import EvidenceState

DENIED_CODES = frozenset({
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedAccess",
    "AuthorizationError", "AuthFailure", "InvalidClientTokenId", "ExpiredToken",
    "ExpiredTokenException", "UnrecognizedClientException", "SignatureDoesNotMatch",
})
NO_ANSWER = ("EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError",
             "ReadTimeoutError", "ProxyConnectionError", "SSLError")
NO_CREDENTIALS = ("NoCredentialsError", "PartialCredentialsError")


def classify(exc: Exception, action: str, what: str = "") -> tuple[EvidenceState, str]:
    """(evidence state, detail) of ``action`` (e.g. ``eks:DescribeCluster``) that raised ``exc``;
    ``what`` names the resource or place in the detail."""
    where = f" ({what})" if what else ""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = err.get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        message = err.get("Message", "") or str(exc)
        if code in DENIED_CODES or status in (401, 403):
            return EvidenceState.DENIED, f"{action} was denied{where}: {code}: {message}"
        return EvidenceState.ERROR, f"{action} failed{where}: {code}: {message}"
    if type(exc).__name__ in NO_ANSWER:
        return EvidenceState.UNREACHABLE, f"{action}: no answer{where}: {exc}"
    if type(exc).__name__ in NO_CREDENTIALS:
        return EvidenceState.DENIED, f"{action}: no AWS credentials{where}: {exc}"
    return EvidenceState.ERROR, f"{action} failed{where}: {type(exc).__name__}: {exc}"
