"""The evidence store: bundles of write-once files under the output directory.

A bundle is ``<out>/<UTC timestamp>/`` holding ``evidence/...``, ``results.json``,
``report.html``, ``scan.log``, ``failed-calls.json`` and, written last, ``manifest.json``. It is built under
``<out>/.<timestamp>.partial/`` and renamed when complete, so a killed scan never leaves a
folder that looks like a bundle.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

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
    root = Path(bundle) / "evidence"
    return [read_evidence(path) for path in sorted(root.rglob("*.json"))]


# A record file at least this large is read back with its payload's items (a list's, or a
# dict's values) kept as their JSON text, each decoded when a rule reads it.
LAZY_BYTES = 1 << 20
_DECODER = json.JSONDecoder()
_BLANK = re.compile(r"[ \t\n\r]*")


def read_evidence(path: str | Path, lazy_bytes: int | None = None) -> Evidence:
    """One evidence file as the record it holds. A large one (``LAZY_BYTES``) keeps its payload's
    items in the file's text until read (:class:`LazyList`, :class:`LazyDict`): Okta's 20,000
    users and their factors are 33 MB of text, where decoded at once they took 120 MB for every
    control that judges them. The values a rule reads are the same either way (tested)."""
    text = Path(path).read_text(encoding="utf-8")
    limit = LAZY_BYTES if lazy_bytes is None else lazy_bytes
    data = json.loads(text) if len(text) < limit else _lazy_record(text)
    return Evidence.from_json(data)


def _lazy_record(text: str) -> dict[str, Any]:
    """The record's top-level object; its payload, if a list or an object, lazily."""
    out: dict[str, Any] = {}
    i = _expect(text, _BLANK.match(text, 0).end(), "{")
    if text[i] == "}":
        return out
    while True:
        key, i = _DECODER.raw_decode(text, i)
        i = _expect(text, _BLANK.match(text, i).end(), ":")
        if key == "payload" and text[i] in "[{":
            out[key], i = _lazy_container(text, i)
        else:
            out[key], i = _DECODER.raw_decode(text, i)
        i = _BLANK.match(text, i).end()
        if text[i] == "}":
            return out
        i = _expect(text, i, ",")


def _lazy_container(text: str, i: int) -> tuple["LazyList | LazyDict", int]:
    """The list or object at ``text[i]``: each item (value) parsed once to find where it ends,
    and kept as its text."""
    closing = "]" if text[i] == "[" else "}"
    keys: list[str] = []
    starts: list[int] = []
    i = _BLANK.match(text, i + 1).end()
    while text[i] != closing:
        if closing == "}":
            key, i = _DECODER.raw_decode(text, i)
            keys.append(key)
            i = _expect(text, _BLANK.match(text, i).end(), ":")
        starts.append(i)
        _, i = _DECODER.raw_decode(text, i)      # decoded only to find its end; let go of
        i = _BLANK.match(text, i).end()
        if text[i] == ",":
            i = _BLANK.match(text, i + 1).end()
        elif text[i] != closing:
            raise ValueError(f"expected ',' or {closing!r} at {i}")
    container = LazyList(text, starts) if closing == "]" else LazyDict(text, zip(keys, starts))
    return container, i + 1


def _expect(text: str, i: int, char: str) -> int:
    if text[i] != char:
        raise ValueError(f"expected {char!r} at {i}")
    return _BLANK.match(text, i + 1).end()


def _read_only(self: Any, *args: Any, **kwargs: Any) -> Any:
    raise TypeError("evidence read back from a bundle is read-only")


def _decoded(text: str, start: int) -> Any:
    return _DECODER.raw_decode(text, start)[0]


class LazyList(list):  # type: ignore[type-arg]
    """A list read back from a large evidence file: it holds the file's text and where each
    item starts in it, and every way of reading it gives the decoded items (a rule cannot tell
    it from a list). Read-only."""

    def __init__(self, text: str, starts: Iterable[int]) -> None:
        super().__init__(starts)
        self._text = text

    def __iter__(self) -> Iterator[Any]:
        for start in list.__iter__(self):
            yield _decoded(self._text, start)

    def __getitem__(self, index: Any) -> Any:
        got = list.__getitem__(self, index)
        return ([_decoded(self._text, x) for x in got] if isinstance(index, slice)
                else _decoded(self._text, got))

    def __reversed__(self) -> Iterator[Any]:
        for start in list.__reversed__(self):
            yield _decoded(self._text, start)

    def __contains__(self, value: object) -> bool:
        return any(item == value for item in self)

    def index(self, value: Any, *args: Any) -> int:
        return list(self).index(value, *args)

    def count(self, value: Any) -> int:
        return sum(1 for item in self if item == value)

    def copy(self) -> list[Any]:
        return list(self)

    def __eq__(self, other: object) -> bool:
        return list(self) == (list(other) if isinstance(other, LazyList) else other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __add__(self, other: Any) -> list[Any]:
        return list(self) + list(other)

    def __radd__(self, other: Any) -> list[Any]:
        return list(other) + list(self)

    def __repr__(self) -> str:
        return f"LazyList({len(self)} items)"

    __hash__ = None   # type: ignore[assignment]
    append = extend = insert = remove = pop = clear = sort = reverse = _read_only
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _read_only


class LazyDict(dict):  # type: ignore[type-arg]
    """A JSON object read back from a large evidence file: its keys as they are, each value
    decoded from the file's text when read (a rule cannot tell it from a dict). Read-only."""

    def __init__(self, text: str, starts: Iterable[tuple[str, int]]) -> None:
        super().__init__(starts)
        self._text = text

    def __iter__(self) -> Iterator[str]:   # (overridden so that dict(this) reads values below)
        return dict.__iter__(self)

    def __getitem__(self, key: str) -> Any:
        return _decoded(self._text, dict.__getitem__(self, key))

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default

    def values(self) -> Any:   # type: ignore[override]
        return (_decoded(self._text, v) for v in dict.values(self))

    def items(self) -> Any:   # type: ignore[override]
        return ((k, _decoded(self._text, v)) for k, v in dict.items(self))

    def copy(self) -> dict[str, Any]:
        return dict(self.items())

    def __eq__(self, other: object) -> bool:
        return dict(self.items()) == (dict(other.items()) if isinstance(other, LazyDict) else other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __or__(self, other: Any) -> dict[str, Any]:
        return {**dict(self.items()), **other}

    def __repr__(self) -> str:
        return f"LazyDict({len(self)} keys)"

    __hash__ = None   # type: ignore[assignment]
    __setitem__ = __delitem__ = pop = popitem = clear = update = setdefault = _read_only
    __ior__ = _read_only
