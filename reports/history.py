"""The scans kept in an output folder, one row each, oldest first (`attest history` prints them)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from attest.errors import UsageError
from attest.model import isoformat
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
        scan, summary = results.scan, results.summary
        rows.append({"bundle": bundle.name, "started_at": isoformat(scan.started_at),
                     "readiness": summary.readiness,
                     "counts": {s.value: n for s, n in summary.counts.items()},
                     "incomplete": len(scan.incomplete)})
    return rows
