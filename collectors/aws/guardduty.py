"""GuardDuty detectors of a region, with their settings and administrator account."""
from __future__ import annotations

from typing import Any

from collectors.aws.detail import chunks, finish, read_each
from collectors.aws.session import Target


def detectors(t: Target) -> dict[str, Any]:
    """``ListDetectors`` (every page) plus, per detector, the raw ``GetDetector`` and
    ``GetAdministratorAccount`` answers (the latter names a delegated administrator, if any)."""
    listing = t.shared_list("guardduty", "ListDetectors")
    listing["Detectors"] = [
        {"DetectorId": detector_id,
         "GetDetector": t.call("guardduty", "GetDetector", what=detector_id,
                               DetectorId=detector_id),
         "GetAdministratorAccount": t.call("guardduty", "GetAdministratorAccount",
                                           what=detector_id, DetectorId=detector_id)}
        for detector_id in listing.get("DetectorIds", [])]
    return listing


# Unarchived findings of high or critical severity (GuardDuty's 7.0-10.0); the rest is not read.
HIGH_UNARCHIVED = {"Criterion": {"severity": {"GreaterThanOrEqual": 7},
                                 "service.archived": {"Equals": ["false"]}}}
GET_FINDINGS_MAX = 50   # GetFindings takes at most 50 ids


def findings(t: Target) -> dict[str, Any]:
    """``ListDetectors``; per detector, ``ListFindings`` (every page) with the criteria
    :data:`HIGH_UNARCHIVED` and the raw findings (``GetFindings``, 50 ids a call). A detector
    whose findings cannot be read is named in ``unknown`` by its ARN."""
    listing = t.shared_list("guardduty", "ListDetectors")

    def detector_arn(detector_id: str) -> str:
        return f"arn:{t.account.partition}:guardduty:{t.region}:{t.account.id}:detector/{detector_id}"

    def read(detector_id: str) -> dict[str, Any]:
        ids = (t.paginate("guardduty", "ListFindings", DetectorId=detector_id,
                          FindingCriteria=HIGH_UNARCHIVED) or {}).get("FindingIds", [])
        found: list[dict[str, Any]] = []
        for batch in chunks(ids, GET_FINDINGS_MAX):
            found += (t.call("guardduty", "GetFindings", what=detector_id, DetectorId=detector_id,
                             FindingIds=batch) or {}).get("Findings", [])
        return {"DetectorId": detector_id, "FindingCriteria": HIGH_UNARCHIVED, "Findings": found}

    detectors, unknown = read_each(listing.get("DetectorIds", []), read, key=detector_arn)
    return finish({**listing, "Detectors": detectors}, unknown, "detectors")
