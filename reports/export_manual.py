"""The manual evidence documents of an export period, checked against the bundles recording them.

Each scan's bundle records the manual store (attest.manual) in its ``manual.documents`` evidence
file: per control, each document's path (relative to the output folder) and sha256. The export
copies every document any bundle of the period recorded, and checks each file's sha256 against
the sha256 in the first (chain-verified) bundle of the period that recorded it, never against the
store's own meta.json, which could be replaced together with the document.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path, PurePosixPath
from typing import Any

from attest.errors import IntegrityError
from attest.manifest import MANIFEST, file_sha256
from attest.manual import STORE, manual_status
from attest.model import Evidence, EvidenceState, sha256_bytes
from controls import catalog_by_id

RECORD = Evidence(name="manual.documents", scope="manual:store", state=EvidenceState.OK).path


@dataclass
class Document:
    """One recorded document: where it is, what its first bundle of the period said about it."""
    control: str
    path: str            # relative to the output folder, as recorded (manual/<control>/...)
    filename: str
    sha256: str
    valid_until: str
    bundle: str          # the first bundle of the period that recorded it
    status: str = ""     # at the last scan of the period

    @property
    def archive_path(self) -> str:
        """Where the document goes in the export: its stored path, with the file name ending in
        the original extension, so that the auditor's machine opens ``manual/.../policy.pdf``
        as a PDF (the store keeps a sanitised name such as ``policy_v3.pdf-2e02d156``)."""
        return archive_path(self.path, self.filename)

    def row(self) -> dict[str, Any]:
        return {"control": self.control, "path": self.path, "filename": self.filename,
                "sha256": self.sha256, "valid_until": self.valid_until, "bundle": self.bundle,
                "status": self.status, "archive_path": self.archive_path}


_EXTENSION = re.compile(r"(?:\.tar)?\.[A-Za-z0-9]{1,10}$")


def archive_path(stored: str, filename: str) -> str:
    """``stored`` (a path in the manual store) with its last part ending in ``filename``'s
    extension: ``.../policy_v3.pdf-2e02d156`` -> ``.../policy_v3-2e02d156.pdf``; unchanged when
    it already ends so, or when the original name has no plain extension."""
    ext = _EXTENSION.search(PurePosixPath(filename).name)
    parent, _, name = stored.rpartition("/")
    if ext is None or name.lower().endswith(ext.group().lower()):
        return stored
    suffix = ext.group()
    cut = name.lower().rfind(suffix.lower() + "-")    # the store's "<name><ext>-<hash>" form
    name = (name[:cut] + name[cut + len(suffix):] if cut > 0 else name) + suffix
    return f"{parent}/{name}" if parent else name


def _recorded(bundle: Path, manifest_sha: str) -> dict[str, list[dict[str, Any]]]:
    """The bundle's manual.documents payload, read from bytes that match its verified manifest."""
    raw = (bundle / MANIFEST).read_bytes()
    if sha256_bytes(raw) != manifest_sha:
        raise IntegrityError(f"{bundle.name}: {MANIFEST}: changed during the export")
    entry = next((e for e in json.loads(raw)["files"] if e["path"] == RECORD), None)
    if entry is None:           # a scan without the manual collector
        return {}
    data = (bundle / RECORD).read_bytes()
    if sha256_bytes(data) != entry["sha256"]:
        raise IntegrityError(f"{bundle.name}: {RECORD}: changed (sha256 does not match the "
                             "manifest)")
    record = json.loads(data)
    payload = record.get("payload") if record.get("state") == EvidenceState.OK.value else None
    return payload if isinstance(payload, dict) else {}


def document_status(control: str, meta: dict[str, Any] | None, day: date,
                    params: dict[str, dict[str, Any]]) -> str:
    """The document's state on ``day`` as the manual rule judges it (current / expiring /
    expired), with the control's ``expiring_days`` from ``params`` (a scan's recorded
    ``scan.params``) or the catalog."""
    if meta is None:
        return "not recorded by the last scan"
    if not meta.get("sha256_ok", False):
        return "changed (did not match at the last scan)"
    known = catalog_by_id().get(control)
    values = known.param_values(params.get(control)) if known else params.get(control) or {}
    return manual_status(date.fromisoformat(meta["valid_until"]), day,
                         int(values.get("expiring_days", 0)))


def _safe(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return (len(parts) > 1 and parts[0] == STORE and not PurePosixPath(path).is_absolute()
            and not any(p in ("", ".", "..") or "\\" in p for p in parts))


def recorded_documents(out_dir: Path, bundles: list[tuple[Path, str]], last_day: date,
                       params: dict[str, dict[str, Any]] | None = None) -> list[Document]:
    """Every document the bundles (oldest first, with their verified manifest sha256) recorded,
    each file checked against its first recording; IntegrityError lists every problem.

    Each document's status is the one on ``last_day`` with the last scan's control ``params``."""
    docs: dict[str, Document] = {}
    last: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for bundle, manifest_sha in bundles:
        last = {}
        for control, metas in sorted(_recorded(bundle, manifest_sha).items()):
            for meta in metas:
                path = str(meta.get("path", ""))
                last[path] = meta
                first = docs.get(path)
                if first is None:
                    docs[path] = Document(control, path, str(meta.get("filename", "")),
                                          str(meta.get("sha256", "")),
                                          str(meta.get("valid_until", "")), bundle.name)
                elif meta.get("sha256") != first.sha256:
                    problems.append(f"{path}: manual document {first.filename!r} ({control}): "
                                    f"recorded by {bundle.name} with sha256 {meta.get('sha256')}, "
                                    f"by {first.bundle} with {first.sha256}")
    for doc in docs.values():
        doc.status = document_status(doc.control, last.get(doc.path), last_day, params or {})
        problem = check_document(out_dir, doc)
        if problem:
            problems.append(problem)
    if problems:
        raise IntegrityError(f"export refused, {len(problems)} problem(s); first: {problems[0]}",
                             problems)
    return sorted(docs.values(), key=lambda d: (d.control, d.path))


def _what(doc: Document) -> str:
    return f"{doc.path}: manual document {doc.filename!r} ({doc.control}) recorded by {doc.bundle}"


def check_document(out_dir: Path, doc: Document, data: bytes | None = None) -> str | None:
    """What is wrong with the stored file (or with ``data`` read from it), or None."""
    if not _safe(doc.path):
        return f"{_what(doc)}: path is outside the manual store"
    file = out_dir / doc.path
    if data is None and not file.is_file():
        return f"{_what(doc)}: missing"
    got = sha256_bytes(data) if data is not None else file_sha256(file)
    if got != doc.sha256:
        return f"{_what(doc)}: changed (sha256 {got} does not match the recorded {doc.sha256})"
    return None


def read_document(out_dir: Path, doc: Document) -> bytes:
    """The document's bytes, checked again as they are read for the zip."""
    file = out_dir / doc.path
    data = file.read_bytes() if _safe(doc.path) and file.is_file() else None
    problem = check_document(out_dir, doc, data)
    if problem or data is None:
        raise IntegrityError(problem or f"{_what(doc)}: missing")
    return data
