"""One rule for every control of kind ``manual``: is its newest document current?

current  -> pass (valid for more than ``expiring_days``)
expiring -> pass, detail says "expiring" (valid for ``expiring_days`` or fewer)
expired  -> fail
missing  -> fail
changed  -> error (the stored file no longer matches its recorded sha256)

Each detail starts with the state and a colon (``expired: ...``); the HTML report reads it there.
"""
from __future__ import annotations

from datetime import date
from typing import Any, Iterator

from attest.manual import manual_status
from attest.model import Finding, errored, failed, passed
from controls import load_catalog
from controls.rules import EvidenceView, rule


def _judge(control_id: str, ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    today = ev.now.date()
    for record in ev.get("manual.documents"):
        docs = (record.payload or {}).get(control_id, [])
        resource = f"manual:{control_id}"
        if not docs:
            yield failed(resource, "missing: no document stored (attest evidence add)")
            continue
        newest = max(docs, key=lambda d: (d["valid_until"], d["added_at"]))
        where = f"{newest['filename']} (sha256 {newest['sha256'][:12]}…)"
        if not newest.get("sha256_ok", False):
            yield errored(resource, f"changed: {where} no longer matches its recorded sha256")
            continue
        until = date.fromisoformat(newest["valid_until"])
        state = manual_status(until, today, params["expiring_days"])
        text = f"{state}: {where} valid until {until}"
        if state == "expired":
            yield failed(resource, text)
        else:
            yield passed(resource, text + (f" ({(until - today).days} days left)"
                                           if state == "expiring" else ""))


def _register() -> None:
    for control in load_catalog():
        if control.kind == "manual":
            rule(control.id)(lambda ev, params, _cid=control.id: _judge(_cid, ev, params))


_register()
