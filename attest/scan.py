"""Scan orchestration: the one module that knows every stage.

config -> collectors (concurrently, one thread per source) -> evidence files in a partial bundle
-> engine -> results.json -> report.html -> manifest.json -> atomic rename.
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
from typing import Any, Callable

from attest import __version__
from attest.config import LoadedConfig
from attest.engine import evaluate
from attest.manifest import MANIFEST, build_manifest
from attest.model import (ControlResult, Evidence, EvidenceState, Status, isoformat, parse_time,
                          readiness, utcnow)
from attest.errors import AttestError
from attest.store import RESULTS, BundleWriter, bundle_time, list_bundles, read_results
from collectors import SOURCES, load_collector
from collectors.base import WITHOUT_CONFIG_FILE, CollectContext
from controls import Control, load_catalog

log = logging.getLogger("attest.scan")

EXIT_OK, EXIT_FAIL, EXIT_INCOMPLETE = 0, 1, 3


@dataclass
class ScanOutcome:
    bundle: Path
    results: dict[str, Any]
    controls: list[ControlResult]
    records: list[Evidence] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return exit_code_for(self.results)


def exit_code_for(results: dict[str, Any]) -> int:
    """3 when evidence could not be collected or judged, else 1 when a control fails, else 0."""
    statuses = {c["status"] for c in results["controls"]}
    if results["scan"].get("incomplete") or Status.ERROR in statuses:
        return EXIT_INCOMPLETE
    if Status.FAIL in statuses:
        return EXIT_FAIL
    return EXIT_OK


def summarize(controls: list[dict[str, Any]]) -> dict[str, Any]:
    counts = {s.value: 0 for s in Status}
    for c in controls:
        counts[c["status"]] += 1
    return {"counts": counts, "readiness": readiness(counts), "total": len(controls)}


class _LogCapture(logging.Handler):
    """Keeps this scan's log lines for the bundle's scan.log."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.buffer = io.StringIO()
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

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


def _bundle_started_at(bundle: Path) -> datetime:
    try:
        return parse_time(read_results(bundle)["scan"]["started_at"]) or bundle_time(bundle.name)
    except (AttestError, KeyError):
        return bundle_time(bundle.name)


def last_collected(out: Path) -> Callable[[str, str], datetime | None]:
    """``(name, scope) -> when`` the newest complete bundle holding that evidence with state ok
    was started; None if no bundle has it. Lets a collector window "since the last good read"."""
    bundles = list_bundles(out)

    def lookup(name: str, scope: str) -> datetime | None:
        rel = Evidence(name=name, scope=scope, state=EvidenceState.OK).path
        for bundle in reversed(bundles):
            try:
                state = json.loads((bundle / rel).read_text(encoding="utf-8")).get("state")
            except (OSError, ValueError):
                continue
            if state == EvidenceState.OK.value:
                return _bundle_started_at(bundle)
        return None
    return lookup


def plan_sources(config: LoadedConfig) -> tuple[dict[str, Any], dict[str, str]]:
    """(collectors to run, skipped source -> reason)."""
    run: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for source in SOURCES:
        cls = load_collector(source)
        section = config.section(source)
        mode = cls.enabled_without_config
        runs_anyway = mode is True or (mode == WITHOUT_CONFIG_FILE and config.path is None)
        if section is None and not runs_anyway:
            skipped[source] = f"skipped: no '{source}' section in the config"
            continue
        run[source] = cls(section if section is not None else cls.Config())
    return run, skipped


def _collect_source(source: str, collector: Any, ctx: CollectContext,
                    sink: Callable[[Evidence], None]) -> dict[str, str]:
    """Run one collector; a crash becomes `error` evidence for every name it may produce."""
    t0, count, unknown = time.monotonic(), 0, 0
    try:
        for ev in collector.collect(ctx):
            count += 1
            unknown += not ev.state.known
            sink(ev)
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
             exceptions: Any = None) -> ScanOutcome:
    started = now or utcnow()
    t0 = time.monotonic()
    clock = (lambda: started + timedelta(seconds=time.monotonic() - t0)) if now else utcnow
    out = Path(out_dir) if out_dir else config.output_dir
    capture = _LogCapture()
    logging.getLogger("attest").addHandler(capture)
    try:
        return _run(config, out, started, clock, progress or (lambda step: None), demo, capture,
                    exceptions)
    finally:
        logging.getLogger("attest").removeHandler(capture)


def _run(config: LoadedConfig, out: Path, started: datetime, clock: Callable[[], datetime],
         progress: Callable[[str], None],
         demo: bool, capture: _LogCapture, exceptions: Any) -> ScanOutcome:
    collectors, skipped = plan_sources(config)
    catalog: tuple[Control, ...] = load_catalog()
    writer = BundleWriter(out, started)
    records: list[Evidence] = []
    lock = threading.Lock()

    def sink(ev: Evidence) -> None:
        writer.write_evidence(ev)  # thread-safe; fsyncs outside any shared lock
        with lock:
            records.append(ev)
        if not ev.state.known:
            log.warning("%s %s: %s %s", ev.name, ev.scope, ev.state.value, ev.detail)

    try:
        ctx = CollectContext(now=started, last_collected=last_collected(out),
                             progress=progress, output_dir=out)
        log.info("scan %s started: sources %s; skipped %s", writer.name, ", ".join(collectors) or "none",
                 ", ".join(skipped) or "none")
        with ThreadPoolExecutor(max_workers=max(1, len(collectors))) as pool:
            futures = {s: pool.submit(_collect_source, s, c, ctx, sink) for s, c in collectors.items()}
            source_status = {s: f.result() for s, f in futures.items()}
        for s, reason in skipped.items():
            source_status[s] = {"status": "skipped", "detail": reason}
        params = config.model.controls
        results_list = evaluate(catalog, records, params, started, skipped, exceptions)
        finished = clock()
        controls_json = [r.to_json() for r in results_list]
        incomplete = sorted({f"{r.name} {r.scope}" for r in records if not r.state.known})
        results = {
            "scan": {"id": str(uuid.uuid4()), "bundle": writer.name, "started_at": isoformat(started),
                     "finished_at": isoformat(finished), "tool_version": __version__,
                     "demo": demo, "config_digest": config.digest, "sources": source_status,
                     "incomplete": incomplete, "params": params},
            "summary": summarize(controls_json),
            "controls": controls_json,
        }
        if exceptions is not None:
            results["exceptions"] = exceptions.to_json(started)
        writer.write_json(RESULTS, results)
        _write_report(writer, results, out)
        log.info("scan %s finished: %s", writer.name, results["summary"]["counts"])
        with _out_dir_lock(out):
            previous = (list_bundles(out) or [None])[-1]
            writer.write_bytes("scan.log", capture.buffer.getvalue().encode("utf-8"))
            manifest = build_manifest(writer.digests, scan_id=results["scan"]["id"],
                                      created_at=isoformat(finished), tool_version=__version__,
                                      config_digest=config.digest, previous=previous)
            writer.write_json(MANIFEST, manifest)
            bundle = writer.commit()
    except BaseException:
        if records:  # never lose evidence already collected, never let it look like a bundle
            kept = writer.quarantine()
            log.error("scan %s did not complete; the %d evidence files collected so far are kept "
                      "in %s (not a bundle)", writer.name, len(records), kept)
        else:
            writer.abandon()
        raise
    return ScanOutcome(bundle=bundle, results=results, controls=results_list, records=records)


def _write_report(writer: BundleWriter, results: dict[str, Any], out: Path) -> None:
    from reports.html import render_report
    history = list_bundles(out)
    digests = {path: sha for path, (sha, _) in writer.digests.items()}  # hashed once, as written
    writer.write_bytes("report.html", render_report(
        results, history, evidence_sha256=digests).encode("utf-8"))
