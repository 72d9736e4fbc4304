"""What a failed AWS SDK call means as evidence, for every source that calls AWS (the AWS
source itself, and the Kubernetes source reaching EKS clusters): ``denied`` for AccessDenied-like
codes and HTTP 401/403, ``unreachable`` when no answer came, else ``error``; and the call as an
entry of the bundle's failed-calls.json (:func:`failed_entry`)."""
from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from attest.calls import failed_call
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


TIMEOUTS = ("ConnectTimeoutError", "ReadTimeoutError")


def total_attempts(client: Any) -> int | None:
    """The tries a botocore client makes per call, the first included (its retry config)."""
    retries = getattr(getattr(getattr(client, "meta", None), "config", None), "retries", None) or {}
    if "total_max_attempts" in retries:
        return int(retries["total_max_attempts"])
    if "max_attempts" in retries:          # botocore: retries after the first
        return int(retries["max_attempts"]) + 1
    return None


def failed_entry(exc: Exception, action: str, state: EvidenceState, resource: str,
                 client: Any = None, evidence: str | None = None) -> dict[str, Any]:
    """``action`` (``s3:GetBucketPolicy``) that raised ``exc`` for good, as an entry of
    failed-calls.json: the AWS error code (``unreachable``/``timeout`` when no answer came), the
    tries botocore made (from the answer's metadata; for no answer, every try its ``client``
    allows; 0 without credentials, as nothing was sent; else not known) and AWS's message."""
    attempts: int | None
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        meta = exc.response.get("ResponseMetadata", {})
        status: int | str = err.get("Code") or meta.get("HTTPStatusCode") or "error"
        retried = meta.get("RetryAttempts")
        attempts = retried + 1 if isinstance(retried, int) else None
        reason = err.get("Message") or str(exc)
    else:
        name = type(exc).__name__
        status = "timeout" if name in TIMEOUTS else "unreachable" if name in NO_ANSWER else name
        attempts = (total_attempts(client) if name in NO_ANSWER
                    else 0 if name in NO_CREDENTIALS else None)
        reason = str(exc)
    return failed_call(call=action, resource=resource, status=status, attempts=attempts,
                       reason=reason, state=state.value, evidence=evidence)
