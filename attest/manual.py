"""The manual evidence store: documents (policies, training records, pentest reports...) that
controls of kind ``manual`` need, each stored once, hashed, with a validity date.

Layout: ``<output_dir>/manual/<control id>/<added UTC ts>-<sha256[:12]>/`` holding the document
(file name sanitised) and ``meta.json``. Entries are never changed; a newer document for the same
control is a new entry. Each scan records the store's entries (with their sha256, re-computed) in
its bundle through the ``manual`` collector.
"""
from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path
from typing import Any, Iterator

from attest.errors import UsageError
from attest.manifest import file_sha256
from attest.model import canonical_json, isoformat, safe_path_part, utcnow

STORE = "manual"
# What the manual rule's finding details start with ("<state>: ..."); the first three are
# manual_status's answers.
STATES = ("current", "expiring", "expired", "missing", "changed")


def manual_status(valid_until: date, today: date, expiring_days: int) -> str:
    """A document's validity on ``today``: expired (after ``valid_until``), expiring (valid for
    ``expiring_days`` or fewer days) or current."""
    if valid_until < today:
        return "expired"
    if (valid_until - today).days <= expiring_days:
        return "expiring"
    return "current"


def store_dir(output_dir: Path) -> Path:
    return Path(output_dir) / STORE


def add_document(output_dir: Path, control_id: str, file: Path, valid_until: date,
                 note: str = "") -> dict[str, Any]:
    from controls import catalog_by_id
    control = catalog_by_id().get(control_id)
    if control is None:
        raise UsageError(f"{control_id}: unknown control id (see `attest controls --source manual`)")
    if control.kind != "manual":
        raise UsageError(f"{control_id}: not a manual control; its evidence is collected from APIs")
    if not file.is_file():
        raise UsageError(f"{file}: no such file")
    digest = file_sha256(file)
    now = utcnow()
    entry_dir = store_dir(output_dir) / control_id / f"{now.strftime('%Y%m%dT%H%M%S%fZ')}-{digest[:12]}"
    entry_dir.mkdir(parents=True)
    name = safe_path_part(file.name)
    shutil.copyfile(file, entry_dir / name)
    meta = {"control": control_id, "filename": file.name, "stored_as": name, "sha256": digest,
            "size": file.stat().st_size, "valid_until": valid_until.isoformat(),
            "added_at": isoformat(now), "note": note,
            "path": (entry_dir / name).relative_to(output_dir).as_posix()}
    (entry_dir / "meta.json").write_bytes(canonical_json(meta))
    return meta


def iter_documents(output_dir: Path) -> Iterator[dict[str, Any]]:
    """Every stored document's metadata, with ``sha256_ok``: does the file still match?"""
    root = store_dir(output_dir)
    if not root.is_dir():
        return
    for meta_path in sorted(root.glob("*/*/meta.json")):
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        doc = meta_path.parent / meta["stored_as"]
        meta["sha256_ok"] = doc.is_file() and file_sha256(doc) == meta["sha256"]
        yield meta
