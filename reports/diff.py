"""What changed between two scans, told truthfully: control status changes; resources that
started failing or erroring; resources that were failing (or erroring) and are fixed, gone, out of
their look-back window, or not judged this time; resources seen for the first time; and why
readiness moved when controls entered or left its denominator.

A failing resource is only *fixed* when the new scan still reports it and it passes (or is
excepted). One the new scan does not report at all is, for its control:

* ``left_window`` when the control's population is ``windowed`` in the catalog (it judges events
  in a look-back window that moves with each scan, e.g. github.changes_reviewed: a pull request
  judged last time is simply not in this scan's window);
* ``not_judged`` when the new scan could not fully judge the control (it is ``skipped``, or has an
  ``error`` finding: some of its evidence was missing), so whether the resource is still there is
  unknown;
* ``disappeared`` otherwise: it is no longer present (deleted, renamed, replaced by a new id,
  which then shows under the new resources).

Reads two results.json documents (and the catalog, for which controls are windowed);
``attest diff OLD NEW`` is the command line face.
"""
from __future__ import annotations

from typing import Any, Collection

from attest.model import Status, isoformat
from attest.results import ControlRecord, FindingRecord, Results

BAD = ("fail", "error")
OK = ("pass", "excepted")
JUDGED = ("pass", "fail", "error", "excepted")   # the statuses readiness counts (attest.model)
GONE = ("disappeared", "left_window", "not_judged")
RESOURCE_KEYS = ("started_failing", "started_erroring", "fixed", "stopped_failing",
                 "stopped_erroring", *GONE)


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


def windowed_controls() -> frozenset[str]:
    """Ids of the catalog's controls whose population is ``windowed``."""
    from controls import load_catalog
    return frozenset(c.id for c in load_catalog() if c.population == "windowed")


def _why_absent(control: ControlRecord | None, windowed: Collection[str]) -> str | None:
    """Why a resource the old scan reported is absent from the new one (None: its control is
    gone from the new scan, which ``removed_controls`` says)."""
    if control is None:
        return None
    if control.id in windowed:
        return "left_window"
    if control.status is Status.SKIPPED or any(f.status is Status.ERROR for f in control.findings):
        return "not_judged"
    return "disappeared"


def _not_judged_reason(status: str, windowed: bool) -> str:
    if status == "skipped":
        return "its source is not configured"
    return "nothing to judge" + (" in its look-back window" if windowed else "")


def _readiness_change(old: Results, new: Results, old_c: dict[str, ControlRecord],
                      new_c: dict[str, ControlRecord], windowed: Collection[str]) -> dict[str, Any]:
    """How readiness moved, and the controls that entered or left its denominator (a control
    that becomes not_applicable or skipped is no longer counted, whatever it was before)."""
    before, after = old.summary.readiness, new.summary.readiness
    moved = []
    for cid in sorted(old_c.keys() | new_c.keys()):
        s0 = old_c[cid].status.value if cid in old_c else None
        s1 = new_c[cid].status.value if cid in new_c else None
        was, now = s0 in JUDGED, s1 in JUDGED
        if was == now:
            continue
        if s1 is None:
            why = f"{cid} is no longer in the scan, which removes it from the denominator"
        elif s0 is None:
            why = f"{cid} is new ({s1}), which adds it to the denominator"
        elif was:
            why = (f"{cid} became {s1} ({_not_judged_reason(s1, cid in windowed)}), which "
                   "removes it from the denominator")
        else:
            why = f"{cid} was {s0} and is now {s1}, which adds it to the denominator"
        moved.append({"id": cid, "old": s0, "new": s1,
                      "effect": "added" if now else "removed", "why": why})
    verdicts = sum(1 for cid in old_c.keys() & new_c.keys()
                   if old_c[cid].status != new_c[cid].status
                   and old_c[cid].status in JUDGED and new_c[cid].status in JUDGED)
    explanation = None
    if moved:
        def pct(value: float | None) -> str:
            return "n/a" if value is None else f"{value}%"
        explanation = f"readiness {pct(before)} → {pct(after)}: " + "; ".join(m["why"] for m in moved)
        if verdicts:
            explanation += (f"; and {verdicts} control{'s' if verdicts > 1 else ''} changed "
                            "verdict (see the status changes)")
    return {"old": before, "new": after,
            "delta": round(after - before, 1) if before is not None and after is not None else None,
            "denominator": moved, "explanation": explanation}


def diff_results(old: Results, new: Results,
                 windowed: Collection[str] | None = None) -> dict[str, Any]:
    """The changes from ``old`` to ``new`` (two scans' results).

    Resource entries (control, resource, old and new finding status, detail; ``new`` is None when
    the new scan does not report the resource, ``old`` None when the old one did not):

    * ``started_failing`` / ``started_erroring``: now ``fail`` / ``error`` and not before (also a
      resource the old scan did not report);
    * ``fixed``: reported by both, was fail or error, now pass or excepted;
    * ``stopped_failing`` / ``stopped_erroring``: reported by both, no longer fail / error (a
      fix, or fail -> error and back, which ``started_*`` lists too);
    * ``disappeared`` / ``left_window`` / ``not_judged``: was fail or error and the new scan does
      not report it (see the module docstring; the old detail is kept).

    ``windowed``: ids of controls whose population is a look-back window (default: from the
    catalog). ``readiness`` explains a readiness change caused by controls entering or leaving its
    denominator.
    """
    windowed = windowed_controls() if windowed is None else windowed
    old_c = {c.id: c for c in old.controls}
    new_c = {c.id: c for c in new.controls}
    status_changes = [
        {"id": cid, "title": new_c[cid].title, "old": old_c[cid].status.value,
         "new": new_c[cid].status.value}
        for cid in sorted(old_c.keys() & new_c.keys())
        if old_c[cid].status != new_c[cid].status]
    of, nf = _findings(old), _findings(new)
    changes: dict[str, list[dict[str, Any]]] = {key: [] for key in RESOURCE_KEYS}
    for key in sorted(of.keys() | nf.keys()):
        o, n = of.get(key), nf.get(key)
        s0 = o.status.value if o is not None else None
        s1 = n.status.value if n is not None else None
        detail = n.detail if n is not None else o.detail if o is not None else ""
        entry = {"control": key[0], "resource": key[1], "old": s0, "new": s1, "detail": detail}
        if s1 in BAD and s0 != s1:
            changes["started_failing" if s1 == "fail" else "started_erroring"].append(entry)
        if s0 not in BAD or s0 == s1:
            continue
        if n is None:
            why = _why_absent(new_c.get(key[0]), windowed)
            if why is not None:
                changes[why].append(entry)
            continue
        changes["stopped_failing" if s0 == "fail" else "stopped_erroring"].append(entry)
        if s1 in OK:
            changes["fixed"].append(entry)
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
        "readiness": _readiness_change(old, new, old_c, new_c, windowed),
    }


def is_empty(diff: dict[str, Any]) -> bool:
    return not any(diff[k] for k in ("status_changes", "added_controls", "removed_controls",
                                     *RESOURCE_KEYS, "new_resources"))
