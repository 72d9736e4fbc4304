"""What changed between two scans: control status changes, resources that started or stopped
failing (``fail`` and ``error`` kept apart), and resources seen for the first time.

Reads two results.json documents only; ``attest diff OLD NEW`` is the command line face.
"""
from __future__ import annotations

from typing import Any

BAD = ("fail", "error")


def _findings(results: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """(control id, resource) -> the finding (the worst one if a resource appears twice)."""
    rank = {"fail": 0, "error": 1}
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for c in results.get("controls", []):
        for f in c.get("findings", []):
            key = (c["id"], f["resource"])
            if key not in out or rank.get(f["status"], 9) < rank.get(out[key]["status"], 9):
                out[key] = f
    return out


def _scan_ref(results: dict[str, Any]) -> dict[str, Any]:
    scan = results.get("scan", {})
    return {"bundle": scan.get("bundle"), "started_at": scan.get("started_at"),
            "readiness": results.get("summary", {}).get("readiness")}


def diff_results(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The changes from ``old`` to ``new`` (two results.json documents).

    ``started_failing``/``stopped_failing`` are about findings with status ``fail``;
    ``started_erroring``/``stopped_erroring`` about ``error`` (evidence that could not be judged).
    Each entry: control, resource, old and new finding status (None: not reported), new detail.
    """
    old_c = {c["id"]: c for c in old.get("controls", [])}
    new_c = {c["id"]: c for c in new.get("controls", [])}
    status_changes = [
        {"id": cid, "title": new_c[cid].get("title", ""), "old": old_c[cid]["status"],
         "new": new_c[cid]["status"]}
        for cid in sorted(old_c.keys() & new_c.keys())
        if old_c[cid]["status"] != new_c[cid]["status"]]
    of, nf = _findings(old), _findings(new)
    changes: dict[str, list[dict[str, Any]]] = {
        "started_failing": [], "stopped_failing": [], "started_erroring": [], "stopped_erroring": []}
    for key in sorted(of.keys() | nf.keys()):
        o, n = of.get(key), nf.get(key)
        s0, s1 = (o or {}).get("status"), (n or {}).get("status")
        entry = {"control": key[0], "resource": key[1], "old": s0, "new": s1,
                 "detail": (n or o or {}).get("detail", "")}
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
        if f["status"] in BAD:
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
