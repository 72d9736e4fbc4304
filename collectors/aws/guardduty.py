"""GuardDuty detectors of a region, with their settings and administrator account."""
from __future__ import annotations

from typing import Any

from collectors.aws.session import Target


def detectors(t: Target) -> dict[str, Any]:
    """``ListDetectors`` (every page) plus, per detector, the raw ``GetDetector`` and
    ``GetAdministratorAccount`` answers (the latter names a delegated administrator, if any)."""
    listing = t.paginate("guardduty", "ListDetectors") or {}
    listing["Detectors"] = [
        {"DetectorId": detector_id,
         "GetDetector": t.call("guardduty", "GetDetector", what=detector_id,
                               DetectorId=detector_id),
         "GetAdministratorAccount": t.call("guardduty", "GetAdministratorAccount",
                                           what=detector_id, DetectorId=detector_id)}
        for detector_id in listing.get("DetectorIds", [])]
    return listing
