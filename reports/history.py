"""``attest history [DIR]``: the scans kept in an output folder, one line each, oldest first."""
from __future__ import annotations

import argparse
import json
import sys
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


def cmd_history(args: argparse.Namespace) -> int:
    from attest.config import location_for
    from attest.s3store import local_view
    out = location_for(args.dir, args.config)
    with local_view(out, args.config, only=("results.json", "manifest.json")) as folder:
        rows = history_rows(folder)
    if not rows:
        raise UsageError(f"{out}: no bundles found")
    if args.json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return 0
    from rich.console import Console
    from rich.table import Table
    table = Table(title=f"{len(rows)} scans in {out}")
    for col in ("bundle", "started", "readiness", "pass", "fail", "error", "unreadable evidence"):
        table.add_column(col)
    for r in rows:
        c = r["counts"]
        table.add_row(r["bundle"], r["started_at"], "" if r["readiness"] is None else f"{r['readiness']}%",
                      str(c.get("pass", "")), str(c.get("fail", "")), str(c.get("error", "")),
                      str(r["incomplete"] or ""))
    Console(width=max(110, Console().width)).print(table)
    return 0
