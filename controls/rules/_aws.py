"""Small helpers shared by the AWS rule modules (not a rule module itself)."""
from __future__ import annotations

from typing import Any, Iterator

from attest.model import Evidence, EvidenceState


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
