"""Reading the risk exceptions a scan's results.json records (shared by the report and export)."""
from __future__ import annotations

from typing import Any


def exception_key(entry: dict[str, Any]) -> tuple[Any, ...]:
    """What identifies one exception across scans (its status may change)."""
    return (entry.get("control"), entry.get("resource"), entry.get("reason"),
            entry.get("approved_by"), str(entry.get("expires")))


def listed_exceptions(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each exception the results record, once: the scan's list and those its controls applied
    (with the control's id). Keys as ``RiskException.to_json`` writes them: control, resource,
    reason, approved_by, approved_on, expires, status."""
    entries = list(results.get("exceptions") or [])
    for c in results.get("controls", []):
        entries.extend({"control": c["id"], **e} for e in c.get("exceptions") or [])
    seen: dict[tuple[Any, ...], dict[str, Any]] = {}
    for e in entries:
        if isinstance(e, dict):
            seen.setdefault(exception_key(e), e)
    return list(seen.values())
