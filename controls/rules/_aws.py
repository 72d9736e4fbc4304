"""Small helpers shared by the AWS rule modules (not a rule module itself)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator

from attest.model import Evidence, EvidenceState, Finding, errored, failed

if TYPE_CHECKING:
    from controls.rules import EvidenceView

TRAILS = "aws.cloudtrail.trails"


def account_region(record: Evidence) -> tuple[str, str]:
    """``aws:<account>:<region|global>`` -> (account, region)."""
    _, account, region = record.scope.split(":", 2)
    return account, region


def resource(account: str, region: str, service: str) -> str:
    """The name of an account or region setting that has no ARN: ``aws:<acct>:<region>:<svc>``."""
    return f"aws:{account}:{region}:{service}"


def offered(records: list[Evidence]) -> Iterator[tuple[Evidence, str, str, Any]]:
    """(record, account, region, payload) of regional records where the service exists;
    ``absent`` regional records mean "service not offered in this region": no resources."""
    for record in records:
        if record.state is EvidenceState.ABSENT:
            continue
        account, region = account_region(record)
        yield record, account, region, record.payload or {}


def trails(ev: "EvidenceView") -> dict[str, dict[str, dict[str, Any]]]:
    """account -> trail ARN -> trail, merged over regions (the home region's copy carries the
    GetTrailStatus and GetEventSelectors answers). Accounts with no trails map to {}."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for _, account, _, payload in offered(ev.get(TRAILS)):
        found = out.setdefault(account, {})
        for trail in payload.get("trailList", []):
            arn = trail["TrailARN"]
            if arn not in found or "GetTrailStatus" in trail:
                found[arn] = trail
    return out


def no_trail_qualifies(account: str, unknown: list[str], problems: list[str], unread: str,
                       failure: str) -> Finding:
    """The verdict on an account none of whose trails does what a CloudTrail control asks:
    ``error`` when some trail's answers were not read (``unread``: what is unknown of them),
    else ``fail`` listing each trail's problem."""
    where = resource(account, "global", "cloudtrail")
    if unknown:
        return errored(where, f"{unread} unknown for " + "; ".join(unknown))
    return failed(where, failure + (": " + "; ".join(problems) if problems else ""))


def tags(items: list[dict[str, Any]] | None) -> dict[str, str]:
    """AWS's ``[{"Key": k, "Value": v}]`` as a dict."""
    return {t.get("Key", ""): t.get("Value", "") for t in items or []}


def as_list(value: Any) -> list[Any]:
    """A policy element that may be one value or a list, as a list."""
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]
