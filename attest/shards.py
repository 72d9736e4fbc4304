"""Sharded scans: the collection split over N machines, sealed as ONE bundle by ``attest merge``.

The work is split into units: one per source (``github``, ``okta``, ``manual`` ...), except for a
source whose collector splits itself (``units(ctx)``): AWS gives one unit per account
(``aws:111122223333``, ``aws:default``, a profile's name) plus ``aws:organization``, the
organization's account list. A unit belongs to shard ``sha256(unit) mod N`` (0-based, as a
Kubernetes Indexed Job's ``JOB_COMPLETION_INDEX``): the same assignment on every machine.

``attest scan --shard I/N`` collects the units of shard I into a shard folder,
``<output_dir>/.shards/<night>/<I>-of-<N>/`` (night: the UTC day the shard started), holding its
``evidence/`` files, its ``scan.log``, its ``failed-calls.json`` and, written last,
``shard.json``: which units it covered
(and every unit it saw), each file's sha256 and size, its scan id and start time. It is built
under a hidden ``.partial`` name and renamed when complete, like a bundle; it is not a bundle
(no manifest, no bundle name, inside a hidden folder), so nothing that lists bundles sees it.

``attest merge`` checks each shard against its ``shard.json`` and the shards of a night against
each other (the same N and config, every unit of its own shard, no evidence file twice), then
judges the union of the evidence and seals one bundle exactly as a scan does. A unit that no
shard collected (a shard missing, or the shards saw different account lists) is recorded as
``error`` evidence for every evidence name of its source: its controls are ``error``, never
``pass``; the bundle is sealed all the same (exit 3), so a night is never a gap.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from attest.errors import AttestError, UsageError
from attest.manifest import file_sha256
from attest.model import isoformat, parse_time

SHARDS_DIR = ".shards"
SHARD_MANIFEST = "shard.json"
FORMAT = "attest-shard/1"
_SPEC = re.compile(r"^(\d+)/(\d+)$")
_FOLDER = re.compile(r"^(\d+)-of-(\d+)$")
WAIT_STEP = 15.0     # seconds between looks at the shard folder while merge --wait waits


class ShardError(AttestError):
    """The shards cannot be merged as they are (changed, inconsistent): exit 3, one line."""
    exit_code = 3


@dataclass(frozen=True)
class ShardSpec:
    """Shard ``index`` of ``count``; 0-based: 0 <= index < count."""
    index: int
    count: int

    @classmethod
    def parse(cls, text: str, what: str = "--shard") -> "ShardSpec":
        m = _SPEC.match(text.strip())
        if not m:
            raise UsageError(f"{what} {text}: expected I/N, e.g. 0/4 (shard I of N, counted from 0)")
        index, count = int(m.group(1)), int(m.group(2))
        if count < 1:
            raise UsageError(f"{what} {text}: N must be at least 1")
        if index >= count:
            raise UsageError(f"{what} {text}: I must be 0 to {count - 1} (shards are counted from "
                             f"0, as JOB_COMPLETION_INDEX is)")
        return cls(index, count)

    @property
    def name(self) -> str:
        return f"{self.index}-of-{self.count}"

    def owns(self, unit: str) -> bool:
        return shard_of(unit, self.count) == self.index


def shard_of(unit: str, count: int) -> int:
    """The shard a unit belongs to: the first 8 bytes of sha256(unit), big-endian, mod ``count``."""
    return int.from_bytes(hashlib.sha256(unit.encode("utf-8")).digest()[:8], "big") % count


def unit_names(source: str, parts: list[str] | None) -> list[str]:
    """A source's units: the source itself, or ``source:part`` for each part it splits into."""
    return [source] if parts is None else [f"{source}:{p}" for p in dict.fromkeys(parts)]


def night_of(started: datetime) -> str:
    """The night a shard belongs to: the UTC day it started."""
    return started.astimezone(timezone.utc).date().isoformat()


def shards_root(out: Path) -> Path:
    return out / SHARDS_DIR


def shard_manifest(spec: ShardSpec, *, night: str, scan_id: str, started_at: datetime,
                   finished_at: datetime, tool_version: str, config_digest: str,
                   all_units: list[str], covered: list[str], sources: dict[str, Any],
                   files: dict[str, tuple[str, int]]) -> dict[str, Any]:
    return {
        "format": FORMAT, "shard": {"index": spec.index, "count": spec.count}, "night": night,
        "scan_id": scan_id, "started_at": isoformat(started_at),
        "finished_at": isoformat(finished_at), "tool_version": tool_version,
        "config_digest": config_digest,
        "units": {"all": sorted(all_units), "covered": sorted(covered)},
        "sources": sources,
        "files": [{"path": rel, "sha256": sha, "size": size}
                  for rel, (sha, size) in sorted(files.items()) if rel != SHARD_MANIFEST],
    }


# --- reading shards ------------------------------------------------------------------------------

@dataclass
class Shard:
    folder: Path
    manifest: dict[str, Any]
    manifest_bytes: bytes

    @property
    def spec(self) -> ShardSpec:
        s = self.manifest["shard"]
        return ShardSpec(int(s["index"]), int(s["count"]))

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def night(self) -> str:
        return str(self.manifest["night"])

    @property
    def started_at(self) -> datetime:
        return parse_time(self.manifest["started_at"])   # type: ignore[return-value]

    @property
    def covered(self) -> list[str]:
        return list(self.manifest["units"]["covered"])

    @property
    def all_units(self) -> list[str]:
        return list(self.manifest["units"]["all"])

    def files(self) -> Iterator[tuple[str, bytes]]:
        """(path, bytes) of each listed file, each checked against its sha256 as it is read."""
        for entry in self.manifest["files"]:
            rel = entry["path"]
            data = (self.folder / rel).read_bytes()
            if len(data) != entry["size"] or hashlib.sha256(data).hexdigest() != entry["sha256"]:
                raise ShardError(f"{self.folder}: {rel}: changed since the shard was written "
                                 f"(sha256 does not match {SHARD_MANIFEST}); merge refused")
            yield rel, data


def load_shard(folder: Path) -> Shard:
    """A shard folder, every file checked against its shard.json: ShardError (one line) if a file
    is missing, changed or added, or the manifest does not read."""
    path = folder / SHARD_MANIFEST
    try:
        data = path.read_bytes()
        manifest = json.loads(data)
        spec = manifest["shard"]
        ShardSpec(int(spec["index"]), int(spec["count"]))
        if manifest.get("format") != FORMAT or not isinstance(manifest.get("files"), list):
            raise ValueError(f"not an {FORMAT} manifest")
        for key in ("night", "scan_id", "started_at", "config_digest", "units", "sources"):
            manifest[key]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ShardError(f"{path}: unreadable shard manifest ({exc}); merge refused") from None
    listed = {e["path"]: e for e in manifest["files"]}
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    present.discard(SHARD_MANIFEST)
    missing, added = sorted(listed.keys() - present), sorted(present - listed.keys())
    if missing:
        raise ShardError(f"{folder}: {missing[0]}: missing (listed in {SHARD_MANIFEST}); "
                         "merge refused")
    if added:
        raise ShardError(f"{folder}: {added[0]}: not in {SHARD_MANIFEST} (added); merge refused")
    for rel in sorted(listed):
        entry, p = listed[rel], folder / rel
        if p.stat().st_size != entry["size"] or file_sha256(p) != entry["sha256"]:
            raise ShardError(f"{folder}: {rel}: changed since the shard was written (sha256 does "
                             f"not match {SHARD_MANIFEST}); merge refused")
    return Shard(folder, manifest, data)


def find_shards(out: Path, given: list[str] | None = None) -> dict[str, list[Shard]]:
    """The shards to merge, by night, oldest night first: the folders ``given`` (each a shard
    folder, or a folder of shards such as ``.shards/<night>``), else every shard under
    ``<out>/.shards/``."""
    folders: list[Path] = []
    if given:
        for value in given:
            p = Path(value)
            if (p / SHARD_MANIFEST).is_file():
                folders.append(p)
            elif p.is_dir() and _shard_folders(p):
                folders.extend(_shard_folders(p))
            else:
                raise UsageError(f"--shards {value}: not a shard folder (no {SHARD_MANIFEST}) "
                                 "nor a folder holding shards")
    else:
        root = shards_root(out)
        for night in sorted(root.iterdir()) if root.is_dir() else []:
            if night.is_dir() and not night.name.startswith("."):
                folders.extend(_shard_folders(night))
    by_night: dict[str, list[Shard]] = {}
    for folder in dict.fromkeys(f.resolve() for f in folders):
        shard = load_shard(folder)
        by_night.setdefault(shard.night, []).append(shard)
    return {n: sorted(s, key=lambda x: x.spec.index) for n, s in sorted(by_night.items())}


def _shard_folders(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir()
                   if p.is_dir() and _FOLDER.match(p.name) and (p / SHARD_MANIFEST).is_file()),
                  key=lambda p: int(p.name.split("-")[0]))


# --- checking a night's shards -------------------------------------------------------------------

@dataclass
class MergePlan:
    """What a night's shards hold, checked: what to copy, and what nobody collected."""
    night: str
    count: int
    shards: list[Shard]
    config_digest: str
    started_at: datetime
    missing_shards: list[int] = field(default_factory=list)
    missing_units: dict[str, str] = field(default_factory=dict)   # unit -> why it is missing

    def source_status(self) -> dict[str, dict[str, str]]:
        """Each source's collection over the shards: failed if it failed in any shard or a unit
        of it is missing; unreachable if it was unreachable in every shard that ran it."""
        seen: dict[str, list[dict[str, str]]] = {}
        for shard in self.shards:
            for source, status in shard.manifest["sources"].items():
                seen.setdefault(source, []).append(status)
        out: dict[str, dict[str, str]] = {}
        for source, statuses in seen.items():
            failed = [s for s in statuses if s.get("status") == "failed"]
            if failed:
                out[source] = {"status": "failed", "detail": failed[0].get("detail", "")}
            elif all(s.get("status") == "unreachable" for s in statuses):
                out[source] = {"status": "unreachable", "detail": statuses[0].get("detail", "")}
            else:
                out[source] = {"status": "collected"}
        for unit, why in self.missing_units.items():
            source = unit.split(":", 1)[0]
            if out.get(source, {}).get("status") != "failed":
                out[source] = {"status": "failed", "detail": f"{unit} {why}"}
        return out


def plan_merge(shards: list[Shard]) -> MergePlan:
    """Check one night's shards against each other; ShardError (one line) when they cannot be
    one bundle: different N or config, a shard twice, a unit in the wrong shard, a file twice."""
    if not shards:
        raise ShardError("no shards to merge")
    night = shards[0].night
    counts = sorted({s.spec.count for s in shards})
    if len(counts) > 1:
        raise ShardError(f"the shards of {night} were split differently "
                         f"({', '.join(s.name for s in shards)}); merge refused")
    count = counts[0]
    digests = {s.manifest["config_digest"] for s in shards}
    if len(digests) > 1:
        raise ShardError(f"the shards of {night} were collected with different configs "
                         f"({', '.join(s.name for s in shards)}); merge refused")
    indexes = [s.spec.index for s in shards]
    if len(set(indexes)) != len(indexes):
        raise ShardError(f"shard {next(s.name for s in shards if indexes.count(s.spec.index) > 1)} "
                         f"of {night} is given twice; merge refused")
    owner: dict[str, str] = {}
    for shard in shards:
        for unit in shard.covered:
            if shard_of(unit, count) != shard.spec.index:
                raise ShardError(f"{shard.folder}: unit {unit} belongs to shard "
                                 f"{shard_of(unit, count)}-of-{count}, not {shard.name}; "
                                 "merge refused")
        for entry in shard.manifest["files"]:
            path = entry["path"]
            if not path.startswith("evidence/"):
                continue          # scan.log, failed-calls.json: kept under shards/<I>-of-<N>/
            if path in owner:
                raise ShardError(f"{path}: collected by shard {owner[path]} and by {shard.name} "
                                 f"of {night}; merge refused")
            owner[path] = shard.name
    present = set(indexes)
    missing_shards = [i for i in range(count) if i not in present]
    every = sorted({u for s in shards for u in s.all_units})
    covered = {u for s in shards for u in s.covered}
    missing_units = {}
    for unit in every:
        if unit not in covered:
            index = shard_of(unit, count)
            missing_units[unit] = (f"was not collected: shard {index}-of-{count} is missing"
                                   if index not in present else
                                   f"was not collected: shard {index}-of-{count} did not see it "
                                   "(the shards listed different units)")
    return MergePlan(night=night, count=count, shards=shards, config_digest=digests.pop(),
                     started_at=min(s.started_at for s in shards),
                     missing_shards=missing_shards, missing_units=missing_units)


def remove_shards(plan: MergePlan) -> None:
    """After the bundle is sealed: the shards are in it (their evidence, shard.json, scan.log,
    failed-calls.json)."""
    for shard in plan.shards:
        shutil.rmtree(shard.folder, ignore_errors=True)
        parent = shard.folder.parent
        try:
            parent.rmdir()            # the night's folder, once empty
        except OSError:
            pass


def wait_for_night(out: Path, night: str, timeout: float, *,
                   sleep: Callable[[float], None] = time.sleep,
                   clock: Callable[[], float] = time.monotonic,
                   log: Callable[[str], None] = lambda line: None) -> bool:
    """Wait until every shard of ``night`` is in ``<out>/.shards/<night>/`` (N read from the first
    one there), or ``timeout`` seconds passed. True when all are there."""
    folder = shards_root(out) / night
    t0 = clock()
    while True:
        names = [p.name for p in _shard_folders(folder)] if folder.is_dir() else []
        counts = {int(n.split("-of-")[1]) for n in names}
        if len(counts) == 1 and len(names) == counts.pop():
            return True
        left = timeout - (clock() - t0)
        if left <= 0:
            return False
        log(f"waiting for the shards of {night}: {len(names)} there ({', '.join(names) or 'none'})")
        sleep(min(WAIT_STEP, left))
