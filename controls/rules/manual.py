"""One rule for every control of kind ``manual``: is its newest document current?

current  -> pass (valid for more than ``expiring_days``)
expiring -> pass, detail says "expiring" (valid for ``expiring_days`` or fewer)
expired  -> fail
missing  -> fail
changed  -> error (the stored file no longer matches its recorded sha256)

Each finding carries the state as a fact (``document_state``), with ``valid_until``, ``file`` and
``sha256`` when a document is stored; the detail says the same in words.
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
            yield failed(resource, "missing: no document stored (attest evidence add)",
                         document_state="missing")
            continue
        newest = max(docs, key=lambda d: (d["valid_until"], d["added_at"]))
        where = f"{newest['filename']} (sha256 {newest['sha256'][:12]}…)"
        facts = {"file": newest["filename"], "sha256": newest["sha256"],
                 "valid_until": newest["valid_until"]}
        if not newest.get("sha256_ok", False):
            yield errored(resource, f"changed: {where} no longer matches its recorded sha256",
                          document_state="changed", **facts)
            continue
        until = date.fromisoformat(newest["valid_until"])
        state = manual_status(until, today, params["expiring_days"])
        text = f"{state}: {where} valid until {until}"
        if state == "expired":
            yield failed(resource, text, document_state=state, **facts)
        else:
            yield passed(resource, text + (f" ({(until - today).days} days left)"
                                           if state == "expiring" else ""),
                         document_state=state, **facts)


def _register() -> None:
    for control in load_catalog():
        if control.kind == "manual":
            rule(control.id)(lambda ev, params, _cid=control.id: _judge(_cid, ev, params))


_register()
