"""Reading the risk exceptions a scan's results.json records (shared by the report and export)."""
from __future__ import annotations

from typing import Any

from attest.results import ExceptionRecord, Results


def exception_key(entry: ExceptionRecord) -> tuple[Any, ...]:
    """What identifies one exception across scans (its status may change)."""
    return (entry.control, entry.resource, entry.reason, entry.approved_by, str(entry.expires))


def listed_exceptions(results: Results) -> list[ExceptionRecord]:
    """Each exception the results record, once: the scan's list and those its controls applied."""
    entries = list(results.exceptions or [])
    for c in results.controls:
        entries.extend(e if e.control else e.model_copy(update={"control": c.id})
                       for e in c.exceptions)
    seen: dict[tuple[Any, ...], ExceptionRecord] = {}
    for e in entries:
        seen.setdefault(exception_key(e), e)
    return list(seen.values())
