"""Scan orchestration: the one module that knows every stage.

config -> collectors (concurrently, one thread per source) -> evidence files in a partial bundle
-> engine -> results.json (attest.results) -> failed-calls.json (attest.calls) -> report.html
-> manifest.json -> atomic rename.

Beyond one machine (:mod:`attest.shards`): :func:`run_shard` runs the first half (collect) for
the units of one shard into a shard folder; :func:`run_merge` copies the shards' evidence into a
partial bundle and runs the second half, :func:`_conclude` (judge, then :func:`_seal`), the very
code a scan ends with.
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import io
import json
import logging
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Collection, Iterator

from attest import __version__
from attest import calls as failed_calls
from attest.config import LoadedConfig
from attest.engine import judge
from attest.logs import CALLS, set_scan_id, text_formatter
from attest.manifest import MANIFEST, build_manifest
from attest.model import (Evidence, EvidenceState, Status, canonical_json, isoformat,
                          sha256_bytes, utcnow)
from attest.results import RESULTS, Results, ScanInfo, SourceStatus, build_results
from attest.sources import WITHOUT_CONFIG_FILE, sources
from attest.store import BundleWriter, bundle_time, list_bundles, next_bundle_name, read_evidence
from collectors.base import CollectContext
from controls import Control, load_catalog

log = logging.getLogger("attest.scan")

EXIT_OK, EXIT_FAIL, EXIT_INCOMPLETE = 0, 1, 3


@dataclass
class ScanOutcome:
    bundle: Path
    results: Results
    records: list[Evidence] = field(default_factory=list)   # without payloads: see the bundle
    previous: Results | None = None          # results of the bundle this one follows
    store_error: str | None = None           # the upload to the S3 store failed (kept locally)
    store: str | None = None                 # the S3 store URL, when there is one

    @property
    def exit_code(self) -> int:
        return EXIT_INCOMPLETE if self.store_error else exit_code_for(self.results)


def exit_code_for(results: Results) -> int:
    """3 when evidence could not be collected or judged, else 1 when a control fails, else 0."""
    statuses = {c.status for c in results.controls}
    if results.scan.incomplete or Status.ERROR in statuses:
        return EXIT_INCOMPLETE
    if Status.FAIL in statuses:
        return EXIT_FAIL
    return EXIT_OK


class _LogCapture(logging.Handler):
    """Keeps this scan's log lines for the bundle's scan.log, and the entries of the calls that
    failed for good (the ``failed_call`` field of their lines) for its failed-calls.json."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.buffer = io.StringIO()
        self.failed: list[dict[str, Any]] = []
        self.setFormatter(text_formatter())

    def emit(self, record: logging.LogRecord) -> None:   # called under the handler's lock
        self.buffer.write(self.format(record) + "\n")
        entry = getattr(record, "failed_call", None)
        if isinstance(entry, dict):
            self.failed.append(dict(entry))

    def carry(self, entries: list[dict[str, Any]]) -> None:
        """Entries recorded elsewhere (a shard's failed-calls.json) join this scan's."""
        with self.lock:   # type: ignore[union-attr]
            self.failed.extend(entries)

    def log_bytes(self, config: LoadedConfig) -> bytes:
        """scan.log: this scan's lines, with no secret of ``config`` in them."""
        with self.lock:   # type: ignore[union-attr]
            text = self.buffer.getvalue()
        return failed_calls.scrub(text, config.secrets()).encode("utf-8")

    def failed_calls(self, config: LoadedConfig) -> bytes:
        """failed-calls.json: every entry so far, sorted, no secret of ``config`` in it."""
        with self.lock:   # type: ignore[union-attr]
            entries = list(self.failed)
        return failed_calls.to_bytes(entries, config.secrets())


@contextlib.contextmanager
def _out_dir_lock(out: Path):
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".attest.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _started_at(results: Results | None, name: str) -> datetime:
    return results.scan.started_at if results is not None else bundle_time(name)


class Chain:
    """The bundles this scan's bundle joins: the local output folder, and the S3 store when the
    config names one (then the store's bundles are the chain; the local folder is where bundles
    are written first and kept until they are uploaded)."""

    def __init__(self, out: Path, store: Any = None) -> None:
        self.out = out
        self.store = store
        self._names: list[str] | None = None

    def names(self) -> list[str]:
        if self._names is None:
            self._names = (self.store.bundle_names() if self.store is not None
                           else [b.name for b in list_bundles(self.out)])
        return self._names

    def read(self, name: str, rel: str) -> bytes | None:
        local = self.out / name / rel
        if local.is_file():   # a bundle uploaded from here is byte for byte the same
            return local.read_bytes()
        if self.store is None:
            return None
        from attest.errors import StoreError
        try:
            return self.store.read(f"{name}/{rel}")
        except StoreError as exc:   # history only: a look-back starts afresh, a trend is shorter
            log.warning("%s", exc)
            return None

    def results(self, name: str) -> Results | None:
        """A bundle's results; None when it has none or they do not read (history only)."""
        data = self.read(name, RESULTS)
        if not data:
            return None
        from attest.errors import UsageError
        try:
            return Results.from_bytes(data, f"{name}/{RESULTS}")
        except UsageError as exc:
            log.warning("%s", exc)
            return None

    def head(self) -> tuple[str, str] | None:
        """(name, manifest sha256) of the newest bundle in the chain, read afresh."""
        self._names = None
        names = self.names()
        if not names:
            return None
        data = self.read(names[-1], MANIFEST)
        return (names[-1], sha256_bytes(data)) if data is not None else None

    @contextlib.contextmanager
    def history(self, limit: int) -> Iterator[list[Path]]:
        """Folders holding the results.json of the newest ``limit`` bundles (for the report)."""
        names = self.names()[-limit:]
        if self.store is None:
            yield [self.out / n for n in names]
            return
        import tempfile
        with tempfile.TemporaryDirectory(prefix="attest-history-") as tmp:
            self.store.materialize(Path(tmp), names, only=[RESULTS])
            yield [Path(tmp) / n for n in names]


def last_collected(chain: Chain | Path) -> Callable[[str, str], datetime | None]:
    """``(name, scope) -> when`` the newest complete bundle holding that evidence with state ok
    was started; None if no bundle has it. Lets a collector window "since the last good read"."""
    chain = chain if isinstance(chain, Chain) else Chain(Path(chain))
    names = chain.names()

    def lookup(name: str, scope: str) -> datetime | None:
        rel = Evidence(name=name, scope=scope, state=EvidenceState.OK).path
        for bundle in reversed(names):
            try:
                state = json.loads(chain.read(bundle, rel) or b"{}").get("state")
            except ValueError:
                continue
            if state == EvidenceState.OK.value:
                return _started_at(chain.results(bundle), bundle)
        return None
    return lookup


@dataclass(frozen=True)
class Selection:
    """A narrowed run: ``--only aws,github`` (sources) and/or ``--controls ID,...``."""
    only: frozenset[str] | None = None
    controls: frozenset[str] | None = None

    def catalog(self, catalog: tuple[Control, ...]) -> tuple[Control, ...]:
        chosen = [c for c in catalog if (self.controls is None or c.id in self.controls)
                  and (self.only is None or c.source in self.only)]
        return tuple(chosen)

    def sources(self, catalog: tuple[Control, ...]) -> frozenset[str] | None:
        if self.only is None and self.controls is None:
            return None
        return frozenset(c.source for c in self.catalog(catalog)) | (
            self.only if self.controls is None and self.only else frozenset())

    def wanted(self, catalog: tuple[Control, ...]) -> frozenset[str] | None:
        """The evidence names the selected controls read (None: everything)."""
        if self.controls is None:
            return None
        return frozenset(e for c in self.catalog(catalog) for e in c.evidence)

    def to_json(self) -> dict[str, list[str]] | None:
        if self.only is None and self.controls is None:
            return None
        out: dict[str, list[str]] = {}
        if self.only is not None:
            out["only"] = sorted(self.only)
        if self.controls is not None:
            out["controls"] = sorted(self.controls)
        return out


def plan_sources(config: LoadedConfig, selected: frozenset[str] | None = None
                 ) -> tuple[dict[str, Any], dict[str, str]]:
    """(collectors to run, skipped source -> reason). ``selected``: only these sources run."""
    run: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for name, source in sources().items():
        if selected is not None and name not in selected:
            skipped[name] = "skipped: not selected for this run (--only / --controls)"
            continue
        section = config.section(name)
        mode = source.enabled_without_config
        runs_anyway = mode is True or (mode == WITHOUT_CONFIG_FILE and config.path is None)
        if section is None and not runs_anyway:
            skipped[name] = f"skipped: no '{name}' section in the config"
            continue
        cls = source.load_collector()   # imports this source's SDKs, and only this source's
        run[name] = cls(section if section is not None else source.config())
    return run, skipped


def _collect_source(source: str, collector: Any, ctx: CollectContext,
                    sink: Callable[[Evidence], None], units: Collection[str] | None = None,
                    crash_scope: str | None = None) -> dict[str, str]:
    """Run one collector (only its ``units``, when given); a crash becomes `error` evidence for
    every name it may produce, at ``crash_scope`` (default: the source's name)."""
    t0, count, unknown = time.monotonic(), 0, 0
    unreachable: list[Evidence] = []
    try:
        for ev in (collector.collect(ctx) if units is None else collector.collect(ctx, units=units)):
            count += 1
            unknown += not ev.state.known
            if ev.state is EvidenceState.UNREACHABLE:
                unreachable.append(ev)
            sink(ev)
            del ev   # written: its payload is not held while the collector reads on
        if count and len(unreachable) == count:   # nothing answered: one line, not one per record
            detail = next((e.detail for e in unreachable if "not tried" not in e.detail),
                          unreachable[0].detail)
            log.error("%s: unreachable: %s", source, detail)
            return {"status": "unreachable", "detail": detail}
        log.info("%s: %d evidence records (%d could not be read) in %.1f s", source, count, unknown,
                 time.monotonic() - t0)
        return {"status": "collected"}
    except Exception as exc:  # one source failing never stops the others
        detail = f"collector failed: {type(exc).__name__}: {exc}"
        log.error("%s %s", source, detail)
        # Every name, yielded or not: a crash after one region's answer must not let the regions
        # it never reached look like "no resources". These records make each control `error`.
        for name in collector.produces:
            sink(ctx.evidence(name, crash_scope or source, None, state=EvidenceState.ERROR,
                              detail=detail))
        return {"status": "failed", "detail": detail}


def _collect(chosen: dict[str, tuple[Any, Collection[str] | None]], ctx: CollectContext,
             sink: Callable[[Evidence], None], crash_scope: Callable[[str], str | None] = lambda s: None,
             ) -> dict[str, Any]:
    """Run the chosen collectors at once (one thread each): source -> how its collection went."""
    _fewer_malloc_arenas()
    pool = ThreadPoolExecutor(max_workers=max(1, len(chosen)), thread_name_prefix="attest-source")
    try:
        futures = {s: pool.submit(_collect_source, s, c, ctx, sink, units, crash_scope(s))
                   for s, (c, units) in chosen.items()}
        status = {s: f.result() for s, f in futures.items()}
    finally:   # on Ctrl-C or SIGTERM: no waiting for in-flight reads (they are abandoned)
        pool.shutdown(wait=False, cancel_futures=True)
    _give_back_freed_memory()
    return status


# glibc's mallopt parameter for the most malloc arenas (M_ARENA_MAX), and the number attest uses
M_ARENA_MAX, MALLOC_ARENAS = -8, 2


def _fewer_malloc_arenas() -> None:
    """At most :data:`MALLOC_ARENAS` glibc malloc arenas, unless ``MALLOC_ARENA_MAX`` says
    otherwise. glibc gives threads up to 8 arenas per core, and memory freed in one stays with
    it: with the dozens of reader threads of a scan the process holds far more than it uses
    (1/100 bench: peak RSS 233 -> 200 MB with 2 arenas, CPU no higher). Set before the readers
    start; a no-op elsewhere than glibc."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, MALLOC_ARENAS)
    except (OSError, AttributeError):   # not glibc (macOS, musl): nothing to do
        pass


def _give_back_freed_memory() -> None:
    """What the collectors held is written out and let go of; hand the freed memory back to the
    system before judging. glibc keeps what a thread freed in that thread's own arena, where the
    engine (in another thread) cannot reuse it: without ``malloc_trim`` the payloads read while
    collecting and those read back while judging would add up. Elsewhere a no-op."""
    import gc
    gc.collect()
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):   # not glibc (macOS, musl): nothing to do
        pass


class StoredRecords:
    """The evidence of the bundle being built, as the engine reads it: every record is kept in
    memory without its payload, and the payloads are read back from the record's file in the
    bundle when a control is judged (:class:`attest.engine.EvidenceStore`). Memory does not grow
    with the estate, and every verdict is reached from the very bytes the manifest hashes."""

    def __init__(self, writer: BundleWriter) -> None:
        self.writer = writer
        self._stubs: list[Evidence] = []
        self._lock = threading.Lock()

    def add(self, ev: Evidence) -> None:
        """``ev`` was written to the bundle: keep it without its payload."""
        with self._lock:
            self._stubs.append(dataclasses.replace(ev, payload=None))

    def __len__(self) -> int:
        return len(self._stubs)

    def __iter__(self) -> Iterator[Evidence]:
        """The records without their payloads (names, scopes, states, details)."""
        return iter(list(self._stubs))

    def __bool__(self) -> bool:
        return bool(self._stubs)

    def select(self, names: frozenset[str]) -> list[Evidence]:
        with self._lock:
            chosen = [s for s in self._stubs if s.name in names]
        return [self._load(s) for s in chosen]

    def _load(self, stub: Evidence) -> Evidence:
        return read_evidence(self.writer.tmp / stub.path)   # a large payload: lazily


class _Sink:
    """Where collected evidence goes: written to the folder being built, then kept for the
    engine without its payload (:class:`StoredRecords`)."""

    def __init__(self, writer: BundleWriter, secrets: Collection[str] = ()) -> None:
        self.writer = writer
        self.records = StoredRecords(writer)
        self.secrets = list(secrets)

    def __call__(self, ev: Evidence) -> None:
        if self.writer.closed:   # the scan stopped: a collector still running keeps nothing
            return
        if self.secrets:   # a vendor's error message that quotes a credential keeps none
            ev = dataclasses.replace(ev, detail=failed_calls.scrub(ev.detail, self.secrets),
                                     unknown=failed_calls.scrub(ev.unknown, self.secrets))
        self.writer.write_evidence(ev)  # thread-safe; fsyncs outside any shared lock
        self.records.add(ev)
        if not ev.state.known and ev.state is not EvidenceState.UNREACHABLE:
            log.warning("%s %s: %s %s", ev.name, ev.scope, ev.state.value, ev.detail)


@contextlib.contextmanager
def _kept_on_failure(writer: BundleWriter, records: StoredRecords | list[Evidence],
                     what: str = "bundle") -> Iterator[None]:
    """A scan that does not complete never loses the evidence it collected, and never leaves
    it where it could look like a bundle (or a shard)."""
    try:
        yield
    except BaseException as exc:
        if records:
            kept = writer.quarantine()
            if isinstance(exc, KeyboardInterrupt):   # the CLI's one line says where they are
                exc.kept = (len(records), kept)      # type: ignore[attr-defined]
            else:
                log.error("scan did not complete; the %d evidence files collected so far are "
                          "kept in %s (not a %s)", len(records), kept, what)
        else:
            writer.abandon()
        raise


@contextlib.contextmanager
def _scan_log(scan_id: str) -> Iterator[_LogCapture]:
    """This scan's log lines, kept for its scan.log, each tagged with its scan id."""
    capture = _LogCapture()
    set_scan_id(scan_id)
    attest_log = logging.getLogger("attest")
    attest_log.addHandler(capture)
    if attest_log.getEffectiveLevel() > logging.INFO:   # a library caller: scan.log keeps INFO
        attest_log.setLevel(logging.INFO)
    calls_log = logging.getLogger(CALLS)   # its lines carry the failed calls: never filtered out
    if calls_log.getEffectiveLevel() > logging.INFO:
        calls_log.setLevel(logging.INFO)
    try:
        yield capture
    finally:
        attest_log.removeHandler(capture)
        set_scan_id(None)


def _clock(now: datetime | None) -> tuple[datetime, Callable[[], datetime]]:
    """The start time, and a clock that runs on from it (a fixed ``now`` in tests)."""
    started = now or utcnow()
    t0 = time.monotonic()
    return started, ((lambda: started + timedelta(seconds=time.monotonic() - t0)) if now
                     else utcnow)


def run_scan(config: LoadedConfig, *, out_dir: Path | None = None, now: datetime | None = None,
             progress: Callable[[str], None] | None = None, demo: bool = False,
             exceptions: Any = None, allow_unsafe_store: bool = False,
             selection: Selection = Selection()) -> ScanOutcome:
    started, clock = _clock(now)
    out = Path(out_dir) if out_dir else config.output_dir
    scan_id = str(uuid.uuid4())
    full = load_catalog()
    with _scan_log(scan_id) as capture:
        seal = prepare_seal(config, out, allow_unsafe_store=allow_unsafe_store)
        collectors, skipped = plan_sources(config, selection.sources(full))
        writer = BundleWriter(out, started)
        sink = _Sink(writer, config.secrets())
        with _kept_on_failure(writer, sink.records):
            ctx = CollectContext(now=started, last_collected=last_collected(seal.chain),
                                 progress=progress or (lambda step: None), output_dir=out,
                                 wanted=selection.wanted(full))
            log.info("scan started: sources %s; skipped %s", ", ".join(collectors) or "none",
                     ", ".join(skipped) or "none")
            source_status = _collect({s: (c, None) for s, c in collectors.items()}, ctx, sink)
            return _conclude(writer, sink.records, source_status, skipped, config, started, clock,
                             capture, exceptions, seal, scan_id, demo, selection=selection)


@dataclass
class Seal:
    """How this scan's bundle will be sealed and kept: its chain, signer and store claim."""
    chain: Chain
    signer: Any = None                      # attest.signing.LoadedSigner, or None (unsigned)
    store_claim: dict[str, Any] | None = None
    synced: Any = None                      # attest.s3store.SyncResult of the start-up sync


def prepare_seal(config: LoadedConfig, out: Path, *, allow_unsafe_store: bool = False) -> Seal:
    """Before any evidence is collected: load the signing key (a scan that could not seal its
    bundle must not start), check the S3 store, and upload what an earlier scan left behind."""
    from attest.errors import StoreError
    from attest.s3store import configured_store, sync
    signer = None
    if config.model.signing is not None:
        from attest.signing import load_signer
        aws = config.section("aws")
        signer = load_signer(config.model.signing,
                             base_dir=config.path.parent if config.path else None,
                             endpoint_url=getattr(aws, "endpoint_url", None))
        log.info("bundles are signed with %s", signer.description)
    store = configured_store(config)
    claim = synced = None
    if store is not None:
        check = store.check()
        problems = check.problems + [n for n in check.notes if "uploads would be refused" in n]
        if problems and not allow_unsafe_store:
            raise StoreError(f"{store.url}: refusing an unsafe evidence store: {'; '.join(problems)} "
                             "(attest store check shows the details; --allow-unsafe-store scans "
                             "anyway)", exit_code=2)
        claim = {"url": store.url, "versioning": check.versioning,
                 "object_lock": check.lock_claim(store.options)}
        try:
            with store.lock(f"scan {uuid.uuid4()}"):
                synced = sync(store, out)
        except StoreError as exc:   # collect anyway: the bundle is kept here, the exit code says so
            log.error("the store could not be reached before collecting (the bundle will be kept "
                      "in %s): %s", out, exc)
        else:
            for name in synced.uploaded:
                log.info("uploaded %s to %s (left by an earlier scan)", name, store.url)
            for line in synced.kept_local:
                log.warning("%s", line)
    return Seal(chain=Chain(out, store), signer=signer, store_claim=claim, synced=synced)


def _conclude(writer: BundleWriter, records: StoredRecords, source_status: dict[str, Any],
              skipped: dict[str, str], config: LoadedConfig, started: datetime,
              clock: Callable[[], datetime], capture: _LogCapture, exceptions: Any, seal: Seal,
              scan_id: str, demo: bool = False, selection: Selection = Selection()) -> ScanOutcome:
    """Judge the evidence and seal the bundle: how a scan ends, and how a merge of shards ends."""
    catalog: tuple[Control, ...] = selection.catalog(load_catalog())
    source_status = dict(source_status)
    for s, reason in skipped.items():
        source_status[s] = SourceStatus(status="skipped", detail=reason)
    params = config.model.controls
    verdicts = judge(catalog, records, params, started, skipped, exceptions)  # one at a time
    incomplete = sorted({f"{r.name} {r.scope}" for r in records if not r.state.known})
    scan = ScanInfo(id=scan_id, started_at=started, tool_version=__version__, demo=demo,
                    config_digest=config.digest, sources=source_status,
                    incomplete=incomplete, params=params, selection=selection.to_json())
    results = build_results(verdicts, scan,
                            exceptions.to_json(started) if exceptions is not None else None)
    bundle, results, previous, store_error = _seal(writer, results, seal, config, started,
                                                   clock, capture)
    return ScanOutcome(bundle=bundle, results=results, records=list(records),
                       previous=previous, store_error=store_error,
                       store=seal.chain.store.url if seal.chain.store is not None else None)


def _seal(writer: BundleWriter, results: Results, seal: Seal, config: LoadedConfig,
          started: datetime, clock: Callable[[], datetime],
          capture: _LogCapture) -> tuple[Path, Results, Results | None, str | None]:
    """Join the chain: under the folder's (and the store's) lock, take the newest bundle as the
    previous one, name the bundle after it, write results, report, log and manifest, sign, make
    it visible, and upload it. Returns (bundle, the sealed results, the previous bundle's results,
    upload error)."""
    from attest.errors import StoreError
    from attest.s3store import sync
    chain, store = seal.chain, seal.chain.store
    store_error: str | None = None
    with contextlib.ExitStack() as held:
        held.enter_context(_out_dir_lock(writer.out_dir))
        listing: dict[str, int] = {}
        head = chain.head() if store is None else None
        if store is not None:
            try:
                held.enter_context(store.lock(f"scan {results.scan.id}"))
                synced = sync(store, writer.out_dir)
                head, listing = synced.head, synced.listing
                chain._names = None
            except StoreError as exc:
                # The store cannot be reached now: seal after the newest bundle known at the
                # start; the next scan uploads this one if nothing joined the store meanwhile.
                store_error = str(exc)
                store, chain = None, Chain(writer.out_dir)
                head = seal.synced.head if seal.synced is not None else chain.head()
                log.error("the store could not be reached to seal; sealing locally after %s: %s",
                          head[0] if head else "no earlier bundle", exc)
        name = next_bundle_name(started, head[0] if head else None)
        while (writer.out_dir / name).exists():   # a local bundle the store does not have
            name = next_bundle_name(started, name)
        results = results.sealed(bundle=name, finished_at=clock())
        previous_results = chain.results(head[0]) if head else None
        writer.write_pieces(RESULTS, results.json_pieces())   # = results.to_bytes()
        failed = capture.failed_calls(config)
        writer.write_bytes(failed_calls.FAILED_CALLS, failed)
        _write_report(writer, results, chain, signed=seal.signer is not None,
                      failed_calls=len(json.loads(failed)))
        log.info("scan %s finished: %s", name,
                 {s.value: n for s, n in results.summary.counts.items()})
        writer.write_bytes("scan.log", capture.log_bytes(config))
        manifest = build_manifest(writer.digests, scan_id=results.scan.id,
                                  created_at=isoformat(results.scan.finished_at),
                                  tool_version=__version__,
                                  config_digest=config.digest, previous=head,
                                  store=seal.store_claim)
        manifest_bytes = canonical_json(manifest)
        writer.write_bytes(MANIFEST, manifest_bytes)
        if seal.signer is not None:
            from attest.signing import ATTESTATION, build_statement, sign_statement
            statement = build_statement(manifest_bytes, manifest, bundle=name, results=results)
            writer.write_bytes(ATTESTATION, sign_statement(statement, seal.signer))
        bundle = writer.commit(name)
        if store is not None:
            try:
                count = store.upload_bundle(bundle, listing)
                store.upload_manual(writer.out_dir / "manual", listing)
                log.info("uploaded %s to %s (%d objects)", name, store.url, count)
            except StoreError as exc:
                store_error = str(exc)
                log.error("upload of %s failed; the bundle is kept in %s and the next scan uploads "
                          "it: %s", name, bundle, exc)
    return bundle, results, previous_results, store_error


def _write_report(writer: BundleWriter, results: Results, chain: Chain, *,
                  signed: bool = False, failed_calls: int | None = None) -> None:
    from reports.html import TREND_SCANS, report_pieces
    digests = {path: sha for path, (sha, _) in writer.digests.items()}  # hashed once, as written
    with chain.history(TREND_SCANS + 1) as history:
        writer.write_pieces("report.html", report_pieces(
            results, history, evidence_sha256=digests, signed=signed,
            bundle_dir=writer.out_dir / str(results.scan.bundle), failed_calls=failed_calls))


# --- beyond one machine: shards and their merge (attest.shards) --------------------------------

@dataclass
class ShardOutcome:
    folder: Path                             # <output_dir>/.shards/<night>/<I>-of-<N>
    manifest: dict[str, Any]                 # its shard.json
    records: list[Evidence] = field(default_factory=list)


def _reading_chain(config: LoadedConfig, out: Path) -> Chain:
    """The chain as a shard reads it (for "since the last good read"): the store's bundles when
    it can be reached, else the local folder's. A shard writes nothing to the store."""
    from attest.errors import StoreError
    from attest.s3store import configured_store
    try:
        store = configured_store(config)
        chain = Chain(out, store)
        chain.names()
        return chain
    except StoreError as exc:
        log.warning("the store could not be read; earlier bundles are read from %s: %s", out, exc)
        return Chain(out)


def run_shard(config: LoadedConfig, shard: Any, *, out_dir: Path | None = None,
              now: datetime | None = None,
              progress: Callable[[str], None] | None = None) -> ShardOutcome:
    """Collect the units of shard ``shard`` (an :class:`attest.shards.ShardSpec`) into its shard
    folder. Nothing is judged, signed or uploaded: ``attest merge`` does that for the night."""
    from attest.shards import (SHARD_MANIFEST, night_of, shard_manifest, shards_root,
                               unit_names)
    started, clock = _clock(now)
    out = Path(out_dir) if out_dir else config.output_dir
    night = night_of(started)
    target = shards_root(out) / night / shard.name
    if target.exists():
        from attest.errors import UsageError
        raise UsageError(f"{target}: shard {shard.name} of {night} was written already (merge it "
                         "with `attest merge`, or remove it to collect it again)")
    scan_id = str(uuid.uuid4())
    with _scan_log(scan_id) as capture:
        ctx = CollectContext(now=started, last_collected=last_collected(_reading_chain(config, out)),
                             progress=progress or (lambda step: None), output_dir=out)
        collectors, skipped = plan_sources(config)
        every: list[str] = []
        chosen: dict[str, tuple[Any, Collection[str] | None]] = {}
        for name, collector in collectors.items():
            split = hasattr(collector, "units")
            parts = collector.units(ctx) if split else None
            units = unit_names(name, parts)
            every += units
            mine = [u for u in units if shard.owns(u)]
            if mine:
                chosen[name] = (collector, {u.split(":", 1)[1] for u in mine} if split else None)
        covered = sorted(u for u in every if shard.owns(u))
        log.info("shard %s of %s: units %s (of %d); skipped %s", shard.name, night,
                 ", ".join(covered) or "none", len(every), ", ".join(skipped) or "none")
        writer = BundleWriter(target.parent, started)
        sink = _Sink(writer, config.secrets())
        with _kept_on_failure(writer, sink.records, what="shard"):
            status = _collect(chosen, ctx, sink, crash_scope=lambda s: f"{s}:shard-{shard.name}")
            log.info("shard %s of %s collected: %d evidence records", shard.name, night,
                     len(sink.records))
            writer.write_bytes(failed_calls.FAILED_CALLS, capture.failed_calls(config))
            writer.write_bytes("scan.log", capture.log_bytes(config))
            manifest = shard_manifest(shard, night=night, scan_id=scan_id, started_at=started,
                                      finished_at=clock(), tool_version=__version__,
                                      config_digest=config.digest, all_units=every,
                                      covered=covered, sources=status, files=writer.digests)
            writer.write_bytes(SHARD_MANIFEST, canonical_json(manifest))
            try:
                folder = writer.commit(shard.name)
            except FileExistsError:
                from attest.errors import UsageError
                raise UsageError(f"{target}: shard {shard.name} of {night} was written meanwhile "
                                 "by another run") from None
    return ShardOutcome(folder=folder, manifest=manifest, records=list(sink.records))


def run_merge(config: LoadedConfig, shards: list[Any], *, out_dir: Path | None = None,
              exceptions: Any = None, allow_unsafe_store: bool = False) -> ScanOutcome:
    """Seal one night's shards (:class:`attest.shards.Shard`) into ONE bundle of the chain: each
    shard checked against its shard.json, the shards against each other, the union of their
    evidence judged and sealed exactly as a scan seals (:func:`_conclude`). A unit no shard
    collected is `error` evidence, never a pass. The shards are removed once the bundle is sealed."""
    from attest.errors import UsageError
    from attest.shards import plan_merge, remove_shards
    from attest.sources import sources as registered
    plan = plan_merge(shards)
    if plan.config_digest != config.digest:
        raise UsageError(f"the shards of {plan.night} were collected with another config (digest "
                         f"{plan.config_digest[:12]}, this one {config.digest[:12]}); merge with "
                         "the config the shards used")
    out = Path(out_dir) if out_dir else config.output_dir
    started = plan.started_at
    scan_id = str(uuid.uuid4())
    with _scan_log(scan_id) as capture:
        log.info("merging the shards of %s: %s of %d%s", plan.night,
                 ", ".join(s.name for s in plan.shards), plan.count,
                 f"; missing: {', '.join(f'{i}-of-{plan.count}' for i in plan.missing_shards)}"
                 if plan.missing_shards else "")
        seal = prepare_seal(config, out, allow_unsafe_store=allow_unsafe_store)
        _, skipped = plan_sources(config)
        writer = BundleWriter(out, started)
        records = StoredRecords(writer)
        try:
            for shard in plan.shards:
                for rel, data in shard.files():
                    if rel.startswith("evidence/"):
                        writer.write_bytes(rel, data)   # byte for byte: the same sha256
                        records.add(Evidence.from_json(json.loads(data)))
                    else:
                        writer.write_bytes(f"shards/{shard.name}/{rel}", data)
                        if rel == failed_calls.FAILED_CALLS:   # into the bundle's own list
                            capture.carry(json.loads(data))
                writer.write_bytes(f"shards/{shard.name}/shard.json", shard.manifest_bytes)
            ctx = CollectContext(now=started)
            for unit, why in plan.missing_units.items():
                source = unit.split(":", 1)[0]
                log.error("%s %s: its controls are error", unit, why)
                produces = registered()[source].produces if source in registered() else ()
                for name in produces:
                    ev = ctx.evidence(name, unit, None, state=EvidenceState.ERROR,
                                      detail=f"{unit} {why}")
                    writer.write_evidence(ev)
                    records.add(ev)
            outcome = _conclude(writer, records, plan.source_status(), skipped, config, started,
                                utcnow, capture, exceptions, seal, scan_id)
        except BaseException:
            writer.abandon()         # the shards are untouched: the merge can run again
            raise
    remove_shards(plan)
    return outcome
