"""CloudTrail trails visible in a region, with status and selectors of those homed there."""
from __future__ import annotations

from typing import Any

from collectors.aws.session import Target


def trails(t: Target) -> dict[str, Any]:
    """``DescribeTrails`` (shadow trails included); trails whose ``HomeRegion`` is this region gain
    the raw ``GetTrailStatus`` and ``GetEventSelectors`` answers (read by ARN, so organization
    trails are included)."""
    answer = t.call("cloudtrail", "DescribeTrails", includeShadowTrails=True) or {}
    for trail in answer.get("trailList", []):
        if trail.get("HomeRegion") != t.region:
            continue
        arn = trail["TrailARN"]
        trail["GetTrailStatus"] = t.call("cloudtrail", "GetTrailStatus", what=arn, Name=arn)
        trail["GetEventSelectors"] = t.call("cloudtrail", "GetEventSelectors", what=arn,
                                            TrailName=arn)
    return answer
