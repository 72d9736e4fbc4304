"""Scan orchestration: the one module that knows every stage.

config -> collectors (concurrently, one thread per source) -> evidence files in a partial bundle
-> engine -> results.json (attest.results) -> report.html -> manifest.json -> atomic rename.
"""
from __future__ import annotations

import contextlib
import fcntl
import io
import json
import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Iterator

from attest import __version__
from attest.config import LoadedConfig
from attest.engine import evaluate
from attest.logs import set_scan_id, text_formatter
from attest.manifest import MANIFEST, build_manifest
from attest.model import (ControlResult, Evidence, EvidenceState, Status, canonical_json, isoformat,
                          sha256_bytes, utcnow)
from attest.results import RESULTS, Results, ScanInfo, SourceStatus, build_results
from attest.sources import WITHOUT_CONFIG_FILE, sources
from attest.store import BundleWriter, bundle_time, list_bundles, next_bundle_name
from collectors.base import CollectContext
from controls import Control, load_catalog

log = logging.getLogger("attest.scan")

EXIT_OK, EXIT_FAIL, EXIT_INCOMPLETE = 0, 1, 3


@dataclass
class ScanOutcome:
    bundle: Path
    results: Results
    controls: list[ControlResult]
    records: list[Evidence] = field(default_factory=list)
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
    """Keeps this scan's log lines for the bundle's scan.log."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.buffer = io.StringIO()
        self.setFormatter(text_formatter())

    def emit(self, record: logging.LogRecord) -> None:
        self.buffer.write(self.format(record) + "\n")


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
                    sink: Callable[[Evidence], None]) -> dict[str, str]:
    """Run one collector; a crash becomes `error` evidence for every name it may produce."""
    t0, count, unknown = time.monotonic(), 0, 0
    unreachable: list[Evidence] = []
    try:
        for ev in collector.collect(ctx):
            count += 1
            unknown += not ev.state.known
            if ev.state is EvidenceState.UNREACHABLE:
                unreachable.append(ev)
            sink(ev)
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
            sink(ctx.evidence(name, source, None, state=EvidenceState.ERROR, detail=detail))
        return {"status": "failed", "detail": detail}


def run_scan(config: LoadedConfig, *, out_dir: Path | None = None, now: datetime | None = None,
             progress: Callable[[str], None] | None = None, demo: bool = False,
             exceptions: Any = None, allow_unsafe_store: bool = False,
             selection: Selection = Selection()) -> ScanOutcome:
    started = now or utcnow()
    t0 = time.monotonic()
    clock = (lambda: started + timedelta(seconds=time.monotonic() - t0)) if now else utcnow
    out = Path(out_dir) if out_dir else config.output_dir
    capture = _LogCapture()
    scan_id = str(uuid.uuid4())
    set_scan_id(scan_id)
    attest_log = logging.getLogger("attest")
    attest_log.addHandler(capture)
    if attest_log.getEffectiveLevel() > logging.INFO:   # a library caller: scan.log keeps INFO
        attest_log.setLevel(logging.INFO)
    try:
        seal = prepare_seal(config, out, allow_unsafe_store=allow_unsafe_store)
        return _run(config, out, started, clock, progress or (lambda step: None), demo, capture,
                    exceptions, seal, scan_id, selection)
    finally:
        attest_log.removeHandler(capture)
        set_scan_id(None)


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


def _run(config: LoadedConfig, out: Path, started: datetime, clock: Callable[[], datetime],
         progress: Callable[[str], None], demo: bool, capture: _LogCapture, exceptions: Any,
         seal: Seal, scan_id: str, selection: Selection = Selection()) -> ScanOutcome:
    full = load_catalog()
    catalog: tuple[Control, ...] = selection.catalog(full)
    collectors, skipped = plan_sources(config, selection.sources(full))
    writer = BundleWriter(out, started)
    records: list[Evidence] = []
    lock = threading.Lock()
    chain = seal.chain

    def sink(ev: Evidence) -> None:
        if writer.closed:   # the scan stopped: a collector still running keeps nothing
            return
        writer.write_evidence(ev)  # thread-safe; fsyncs outside any shared lock
        with lock:
            records.append(ev)
        if not ev.state.known and ev.state is not EvidenceState.UNREACHABLE:
            log.warning("%s %s: %s %s", ev.name, ev.scope, ev.state.value, ev.detail)

    try:
        ctx = CollectContext(now=started, last_collected=last_collected(chain),
                             progress=progress, output_dir=out, wanted=selection.wanted(full))
        log.info("scan started: sources %s; skipped %s", ", ".join(collectors) or "none",
                 ", ".join(skipped) or "none")
        pool = ThreadPoolExecutor(max_workers=max(1, len(collectors)), thread_name_prefix="attest-source")
        try:
            futures = {s: pool.submit(_collect_source, s, c, ctx, sink) for s, c in collectors.items()}
            source_status = {s: f.result() for s, f in futures.items()}
        finally:   # on Ctrl-C or SIGTERM: no waiting for in-flight reads (they are abandoned)
            pool.shutdown(wait=False, cancel_futures=True)
        for s, reason in skipped.items():
            source_status[s] = SourceStatus(status="skipped", detail=reason)
        params = config.model.controls
        results_list = evaluate(catalog, records, params, started, skipped, exceptions)
        incomplete = sorted({f"{r.name} {r.scope}" for r in records if not r.state.known})
        scan = ScanInfo(id=scan_id, started_at=started, tool_version=__version__, demo=demo,
                        config_digest=config.digest, sources=source_status,
                        incomplete=incomplete, params=params, selection=selection.to_json())
        results = build_results(results_list, scan,
                                exceptions.to_json(started) if exceptions is not None else None)
        bundle, results, previous, store_error = _seal(writer, results, seal, config, started,
                                                       clock, capture)
    except BaseException as exc:
        if records:  # never lose evidence already collected, never let it look like a bundle
            kept = writer.quarantine()
            if isinstance(exc, KeyboardInterrupt):   # the CLI's one line says where they are
                exc.kept = (len(records), kept)      # type: ignore[attr-defined]
            else:
                log.error("scan did not complete; the %d evidence files collected so far are "
                          "kept in %s (not a bundle)", len(records), kept)
        else:
            writer.abandon()
        raise
    return ScanOutcome(bundle=bundle, results=results, controls=results_list, records=records,
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
        writer.write_bytes(RESULTS, results.to_bytes())
        _write_report(writer, results, chain, signed=seal.signer is not None)
        log.info("scan %s finished: %s", name,
                 {s.value: n for s, n in results.summary.counts.items()})
        writer.write_bytes("scan.log", capture.buffer.getvalue().encode("utf-8"))
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
                  signed: bool = False) -> None:
    from reports.html import TREND_SCANS, render_report
    digests = {path: sha for path, (sha, _) in writer.digests.items()}  # hashed once, as written
    with chain.history(TREND_SCANS + 1) as history:
        html = render_report(results, history, evidence_sha256=digests, signed=signed,
                             bundle_dir=writer.out_dir / str(results.scan.bundle))
    writer.write_bytes("report.html", html.encode("utf-8"))
