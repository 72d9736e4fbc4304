"""The evidence store: bundles of write-once files under the output directory.

A bundle is ``<out>/<UTC timestamp>/`` holding ``evidence/...``, ``results.json``,
``report.html``, ``scan.log``, ``failed-calls.json`` and, written last, ``manifest.json``. It is built under
``<out>/.<timestamp>.partial/`` and renamed when complete, so a killed scan never leaves a
folder that looks like a bundle.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from attest.errors import UsageError
from attest.model import Evidence, canonical_json_pieces, sha256_bytes

if TYPE_CHECKING:
    from attest.results import Results

BUNDLE_NAME = re.compile(r"^\d{8}T\d{6}Z(-\d+)?$")
TS_FORMAT = "%Y%m%dT%H%M%SZ"


def bundle_name(started_at: datetime) -> str:
    return started_at.astimezone(timezone.utc).strftime(TS_FORMAT)


def bundle_time(name: str) -> datetime:
    return datetime.strptime(name.split("-")[0], TS_FORMAT).replace(tzinfo=timezone.utc)


def bundle_sort_key(name: str) -> tuple[str, int]:
    """Chain order: by time, then by the suffix of bundles sealed in the same second."""
    stamp, _, n = name.partition("-")
    return stamp, int(n) if n.isdigit() else 0


def next_bundle_name(started_at: datetime, head: str | None) -> str:
    """The name a bundle seals under: its start time, unless the newest bundle (sealed by a scan
    that ran at the same time) sorts after that; then just after the newest, so that names keep
    the order of the chain."""
    name = bundle_name(started_at)
    if head is None or bundle_sort_key(name) > bundle_sort_key(head):
        return name
    stamp, n = bundle_sort_key(head)
    return f"{stamp}-{n + 1}"


def list_bundles(out_dir: str | Path) -> list[Path]:
    """Complete bundles in ``out_dir``, oldest first (a folder counts once it has a manifest)."""
    out = Path(out_dir)
    if not out.is_dir():
        return []
    return sorted((p for p in out.iterdir()
                   if p.is_dir() and BUNDLE_NAME.match(p.name) and (p / "manifest.json").is_file()),
                  key=lambda p: bundle_sort_key(p.name))


def is_bundle(path: str | Path) -> bool:
    return (Path(path) / "manifest.json").is_file() and BUNDLE_NAME.match(Path(path).name) is not None


class BundleWriter:
    """Writes one bundle; files are write-once; ``commit()`` makes it visible atomically.

    The bundle is built under a hidden ``.<start time>-<random>.partial`` folder; its final name
    is chosen when it is sealed (:func:`next_bundle_name`, under the output folder's lock)."""

    def __init__(self, out_dir: str | Path, started_at: datetime) -> None:
        import uuid
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.name = bundle_name(started_at)      # until sealed: the start time
        self.tmp = self.out_dir / f".{self.name}-{uuid.uuid4().hex[:8]}.partial"
        self.tmp.mkdir()
        self._lock = threading.Lock()
        self.closed = False   # after quarantine or abandon: a late collector thread writes nothing
        self.digests: dict[str, tuple[str, int]] = {}  # relpath -> (sha256, size) of what was written

    def write_bytes(self, relpath: str, data: bytes) -> str:
        target = self._claim(relpath)
        with self._lock:
            self.digests[relpath] = (sha256_bytes(data), len(data))
        with open(target, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        return relpath

    def write_json(self, relpath: str, obj: Any) -> str:
        """``canonical_json(obj)`` to ``relpath``, encoded and hashed piece by piece: a large
        payload is never held a second (and third) time as one string and one bytes object."""
        return self.write_pieces(relpath, canonical_json_pieces(obj))

    def write_pieces(self, relpath: str, pieces: Iterable[bytes]) -> str:
        """The concatenation of ``pieces`` to ``relpath``, hashed as it is written."""
        target = self._claim(relpath)
        digest, size = hashlib.sha256(), 0
        try:
            with open(target, "xb") as fh:
                for piece in pieces:
                    digest.update(piece)
                    size += len(piece)
                    fh.write(piece)
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException:
            with self._lock:
                self.digests.pop(relpath, None)
            raise
        with self._lock:
            self.digests[relpath] = (digest.hexdigest(), size)
        return relpath

    def _claim(self, relpath: str) -> Path:
        """The file ``relpath`` will be written to, reserved (write-once) under the lock."""
        target = (self.tmp / relpath).resolve()
        if not str(target).startswith(str(self.tmp.resolve()) + os.sep):
            raise ValueError(f"refusing to write outside the bundle: {relpath}")
        with self._lock:
            if self.closed:
                raise RuntimeError("the bundle was closed (the scan stopped)")
            if relpath in self.digests:
                raise FileExistsError(f"evidence file written twice: {relpath}")
            self.digests[relpath] = ("", 0)    # reserved; the digest follows once written
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def write_evidence(self, evidence: Evidence) -> str:
        return self.write_json(evidence.path, evidence.to_json())

    def commit(self, name: str | None = None) -> Path:
        """Make the bundle visible under its final name, durably (the rename is fsynced too)."""
        self.name = name or self.name
        self.final = self.out_dir / self.name
        if self.final.exists():
            raise FileExistsError(f"{self.final}: a bundle of that name exists already")
        os.replace(self.tmp, self.final)
        fd = os.open(self.out_dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return self.final

    def abandon(self) -> None:
        with self._lock:
            self.closed = True
        shutil.rmtree(self.tmp, ignore_errors=True)

    def quarantine(self) -> Path:
        """Keep what was written, under a hidden name that is never taken for a bundle."""
        with self._lock:
            self.closed = True
        kept = self.out_dir / f".{self.name}.incomplete"
        n = 1
        while kept.exists():
            kept = self.out_dir / f".{self.name}-{n}.incomplete"
            n += 1
        os.replace(self.tmp, kept)
        return kept


RESULTS = "results.json"


def writable_output(path: str | Path, what: str = "--out") -> Path:
    """A local file path a command may write: never ``s3://``, never inside a bundle (sealed,
    being written, or kept after an interrupted scan), where it would break the manifest."""
    text = str(path)
    if text.startswith("s3://"):
        raise UsageError(f"{what} {text}: must be a local file (only a scan writes to the store)")
    resolved = Path(text).expanduser().resolve()
    for folder in [resolved, *resolved.parents]:
        sealed = BUNDLE_NAME.match(folder.name) and (
            (folder / "manifest.json").is_file() or (folder / RESULTS).is_file())
        hidden = folder.name.startswith(".") and folder.name.endswith((".partial", ".incomplete"))
        if sealed or hidden:
            raise UsageError(f"{what} {text}: refusing to write inside the bundle {folder.name} "
                             "(a sealed bundle is never written again)")
    if resolved.is_dir():
        raise UsageError(f"{what} {text}: is a folder; give a file name")
    return resolved


def read_results(target: str | Path) -> "Results":
    """results.json of a bundle folder (or a results file itself), as the typed model;
    UsageError, one line naming the file, if it is missing or does not fit."""
    from attest.results import Results
    return Results.load(target)


def load_evidence(bundle: str | Path) -> list[Evidence]:
    import json
    root = Path(bundle) / "evidence"
    records = []
    for path in sorted(root.rglob("*.json")):
        records.append(Evidence.from_json(json.loads(path.read_text(encoding="utf-8"))))
    return records
