"""Reading one evidence name out of verified bundles, each file with the sha256 its manifest
recorded, and the verdicts the same bundle's results.json gave."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from attest.errors import IntegrityError
from attest.manifest import read_manifest
from attest.model import isoformat, parse_time, safe_path_part, sha256_bytes
from attest.results import FindingRecord, Results
from attest.store import read_results


def iso(value: Any) -> str | None:
    """An API time as ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z`` (so that text order is time order);
    None when it is missing or not a time."""
    try:
        dt = parse_time(value)
    except (TypeError, ValueError):
        return None
    return isoformat(dt) if dt is not None else None


@dataclass(frozen=True)
class EvidenceFile:
    """One evidence record of one bundle."""
    bundle: str
    started_at: datetime        # the scan's start (the bundle's time)
    path: str                   # bundle-relative path
    sha256: str                 # as its bundle's manifest.json recorded it
    name: str
    scope: str
    state: str
    payload: Any
    detail: str
    results: Results = field(repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.state == "ok" and isinstance(self.payload, dict | list)

    def findings(self, control: str) -> dict[str, FindingRecord]:
        """resource -> finding of ``control`` in this bundle's results (empty: not evaluated)."""
        record = self.results.control(control)
        return {f.resource: f for f in record.findings} if record is not None else {}

    def provenance(self) -> dict[str, str]:
        return {"bundle": self.bundle, "evidence_file": self.path, "evidence_sha256": self.sha256}


class BundleView:
    """A bundle's manifest, results and evidence records, read on demand."""

    def __init__(self, path: Path, results: Results | None = None) -> None:
        self.path = path
        self.name = path.name
        self._results = results

    @cached_property
    def results(self) -> Results:
        return self._results if self._results is not None else read_results(self.path)

    @cached_property
    def files(self) -> dict[str, str]:
        return {f["path"]: f["sha256"] for f in read_manifest(self.path)["files"]}

    @property
    def started_at(self) -> datetime:
        return self.results.scan.started_at

    def records(self, name: str) -> list[EvidenceFile]:
        """Every record of evidence ``name`` in this bundle (one per scope), by path."""
        folder = f"evidence/{safe_path_part(name.split('.', 1)[0])}/"
        leaf = f"/{safe_path_part(name)}.json"
        out = []
        for rel, sha in sorted(self.files.items()):
            if not (rel.startswith(folder) and rel.endswith(leaf)):
                continue
            raw = (self.path / rel).read_bytes()
            if sha256_bytes(raw) != sha:   # verified before, changed since: never read it
                raise IntegrityError(f"{self.name}: {rel}: changed (sha256 does not match the "
                                     "manifest)")
            data = json.loads(raw)
            if not isinstance(data, dict) or data.get("name") != name:
                continue
            out.append(EvidenceFile(bundle=self.name, started_at=self.started_at, path=rel,
                                    sha256=sha, name=name, scope=str(data.get("scope", "")),
                                    state=str(data.get("state", "")), payload=data.get("payload"),
                                    detail=str(data.get("detail") or ""), results=self.results))
        return out


def verdict_columns(verdict: Any, control: str, what: str) -> dict[str, str]:
    """A row's ``verdict`` and ``verdict_detail``: the finding the bundle's run of ``control``
    gave this resource, or "not judged" saying so (``what``: the resource as the row names it)."""
    if verdict is None:
        return {"verdict": "not judged",
                "verdict_detail": f"{control} has no finding for {what} in this bundle"}
    return {"verdict": verdict.status.value, "verdict_detail": verdict.detail}
