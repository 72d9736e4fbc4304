"""Security Hub in one region: is the account subscribed, and which standards are enabled."""
from __future__ import annotations

from typing import Any

from collectors.aws.session import Target

# What DescribeHub answers when the account is not subscribed to Security Hub in the region.
NOT_SUBSCRIBED = ("InvalidAccessException",)


def hub(t: Target) -> dict[str, Any]:
    """The raw ``DescribeHub`` answer (``null``: not subscribed in this region) and, when
    subscribed, the raw ``GetEnabledStandards`` answer (every page)."""
    described = t.call("securityhub", "DescribeHub", absent=NOT_SUBSCRIBED)
    standards = None if described is None else t.paginate("securityhub", "GetEnabledStandards")
    return {"DescribeHub": described, "GetEnabledStandards": standards}
