"""The scans kept in an output folder, one row each, oldest first (`attest history` prints them)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from attest.errors import UsageError
from attest.store import list_bundles, read_results


def history_rows(out_dir: Path) -> list[dict[str, Any]]:
    rows = []
    for bundle in list_bundles(out_dir):
        try:
            results = read_results(bundle)
        except UsageError as exc:
            rows.append({"bundle": bundle.name, "started_at": "", "readiness": None, "counts": {},
                         "incomplete": str(exc)})
            continue
        scan, summary = results["scan"], results.get("summary", {})
        rows.append({"bundle": bundle.name, "started_at": scan.get("started_at", ""),
                     "readiness": summary.get("readiness"), "counts": summary.get("counts", {}),
                     "incomplete": len(scan.get("incomplete", []))})
    return rows
