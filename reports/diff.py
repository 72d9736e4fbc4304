"""What changed between two scans: control status changes, resources that started or stopped
failing (``fail`` and ``error`` kept apart), and resources seen for the first time.

Reads two results.json documents only; ``attest diff OLD NEW`` is the command line face.
"""
from __future__ import annotations

import argparse
import json
from typing import Any

from attest.model import isoformat
from attest.results import FindingRecord, Results
from attest.store import read_results

BAD = ("fail", "error")


def _findings(results: Results) -> dict[tuple[str, str], FindingRecord]:
    """(control id, resource) -> the finding (the worst one if a resource appears twice)."""
    rank = {"fail": 0, "error": 1}
    out: dict[tuple[str, str], FindingRecord] = {}
    for c in results.controls:
        for f in c.findings:
            key = (c.id, f.resource)
            if key not in out or rank.get(f.status, 9) < rank.get(out[key].status, 9):
                out[key] = f
    return out


def _scan_ref(results: Results) -> dict[str, Any]:
    scan = results.scan
    return {"bundle": scan.bundle, "started_at": isoformat(scan.started_at),
            "readiness": results.summary.readiness}


def diff_results(old: Results, new: Results) -> dict[str, Any]:
    """The changes from ``old`` to ``new`` (two results.json documents).

    ``started_failing``/``stopped_failing`` are about findings with status ``fail``;
    ``started_erroring``/``stopped_erroring`` about ``error`` (evidence that could not be judged).
    Each entry: control, resource, old and new finding status (None: not reported), new detail.
    """
    old_c = {c.id: c for c in old.controls}
    new_c = {c.id: c for c in new.controls}
    status_changes = [
        {"id": cid, "title": new_c[cid].title, "old": old_c[cid].status.value,
         "new": new_c[cid].status.value}
        for cid in sorted(old_c.keys() & new_c.keys())
        if old_c[cid].status != new_c[cid].status]
    of, nf = _findings(old), _findings(new)
    changes: dict[str, list[dict[str, Any]]] = {
        "started_failing": [], "stopped_failing": [], "started_erroring": [], "stopped_erroring": []}
    for key in sorted(of.keys() | nf.keys()):
        o, n = of.get(key), nf.get(key)
        s0 = o.status.value if o is not None else None
        s1 = n.status.value if n is not None else None
        entry = {"control": key[0], "resource": key[1], "old": s0, "new": s1,
                 "detail": (n or o).detail if (n or o) is not None else ""}
        for kind, started, stopped in (("fail", "started_failing", "stopped_failing"),
                                       ("error", "started_erroring", "stopped_erroring")):
            if s1 == kind and s0 != kind:
                changes[started].append(entry)
            elif s0 == kind and s1 != kind:
                changes[stopped].append(entry)
    old_resources = {r for _, r in of}
    seen: dict[str, dict[str, Any]] = {}
    for (cid, resource), f in sorted(nf.items()):
        if resource in old_resources:
            continue
        item = seen.setdefault(resource, {"resource": resource, "controls": [], "failing": []})
        item["controls"].append(cid)
        if f.status in BAD:
            item["failing"].append(cid)
    return {
        "old": _scan_ref(old), "new": _scan_ref(new),
        "status_changes": status_changes,
        "added_controls": sorted(new_c.keys() - old_c.keys()),
        "removed_controls": sorted(old_c.keys() - new_c.keys()),
        **changes,
        "new_resources": sorted(seen.values(), key=lambda r: r["resource"]),
    }


def is_empty(diff: dict[str, Any]) -> bool:
    return not any(diff[k] for k in ("status_changes", "added_controls", "removed_controls",
                                     "started_failing", "stopped_failing", "started_erroring",
                                     "stopped_erroring", "new_resources"))


def cmd_diff(args: argparse.Namespace) -> int:
    from attest.s3store import local_view
    config = getattr(args, "config", None)
    with local_view(args.old, config, only=("results.json",)) as old, \
            local_view(args.new, config, only=("results.json",)) as new:
        diff = diff_results(read_results(old), read_results(new))
    if args.json:
        print(json.dumps(diff, indent=2, ensure_ascii=False))
        return 0
    _print_table(diff)
    return 0


def _print_table(diff: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table
    console = Console(soft_wrap=True, width=max(100, Console().width))
    o, n = diff["old"], diff["new"]
    console.print(f"[bold]{escape(str(o['bundle']))}[/] -> [bold]{escape(str(n['bundle']))}[/]  "
                  f"readiness {o['readiness']}% -> {n['readiness']}%")
    if is_empty(diff):
        console.print("no changes")
        return
    colors = {"pass": "green", "fail": "red", "error": "yellow", "excepted": "cyan"}

    def st(value: str | None) -> str:
        return f"[{colors.get(value or '', 'dim')}]{value or '-'}[/]"

    if diff["status_changes"]:
        t = Table(title="control status changes")
        for col in ("control", "old", "new"):
            t.add_column(col)
        for c in diff["status_changes"]:
            t.add_row(escape(c["id"]), st(c["old"]), st(c["new"]))
        console.print(t)
    rows = [(label, e) for key, label in (("started_failing", "started failing"),
                                          ("started_erroring", "started erroring"),
                                          ("stopped_failing", "stopped failing"),
                                          ("stopped_erroring", "stopped erroring"))
            for e in diff[key]]
    if rows:
        t = Table(title="resources")
        for col in ("change", "control", "resource", "old", "new", "detail"):
            t.add_column(col, overflow="fold")
        for label, e in rows:
            t.add_row(label, escape(e["control"]), escape(e["resource"]), st(e["old"]), st(e["new"]),
                      escape(e["detail"] or ""))
        console.print(t)
    if diff["new_resources"]:
        t = Table(title="new resources")
        for col in ("resource", "controls", "failing"):
            t.add_column(col, overflow="fold")
        for r in diff["new_resources"]:
            t.add_row(escape(r["resource"]), str(len(r["controls"])),
                      escape(", ".join(r["failing"])))
        console.print(t)
    for key, label in (("added_controls", "controls added"), ("removed_controls", "controls removed")):
        if diff[key]:
            console.print(f"{label}: {escape(', '.join(diff[key]))}")
