"""Test helper: a history of nightly bundles made by the real demo scan, with a known truth.

``make_history`` starts the demo once (or reuses one), then for each night runs the production
scan (``attest.scan.run_scan``) against it with the clock set to that night 02:00Z. Before a
night's scan it applies that night's :class:`Flip` s, which change the demo's seeded state through
the demo's own handles (the fake's state object on ``DemoSource.extra``, or boto3 against the
moto endpoint) and say what status the control must have from then on. Skipped nights get no
scan at all. Optional second scans on a day (14:00Z) exercise the worst-of-day rule.

The returned truth is what the helper did, per control per day; the helper also checks every
scan's results against it, so a demo that drifts with the clock fails here, not in the export.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from attest.config import load_config
from attest.demo import Demo, start_demo
from attest.scan import run_scan
from reports.coverage import worst

NIGHT = time(2, 0, tzinfo=timezone.utc)
AFTERNOON = time(14, 0, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Flip:
    """Change the demo (``apply``) so that ``control`` has ``status`` from this scan on."""
    control: str
    status: str
    apply: Callable[[Demo], None]


def at(day: date, when: time = NIGHT) -> datetime:
    return datetime.combine(day, when)


def make_history(out_dir: Path, start: date, nights: int, skip: set[int],
                 flips: dict[int, list[Flip]], *, demo: Demo | None = None,
                 sources: tuple[str, ...] = ("aws",), afternoon: dict[int, list[Flip]] | None = None,
                 exceptions: Any = None) -> dict[str, Any]:
    """Run ``nights`` nightly scans from ``start`` into ``out_dir`` and return the truth.

    ``skip``: night indexes with no scan (their flips still happen, unseen until the next scan).
    ``flips``: night index -> changes applied before that night's scan.
    ``afternoon``: night index -> changes applied before a second scan that day at 14:00Z.
    Returns ``{"days": {date: {control: day status}}, "scans": [{"bundle", "at", "statuses"}],
    "start", "end", "skipped": [dates], "demo": Demo}``; a skipped day is absent from ``days``.
    """
    own = demo is None
    demo = demo or start_demo(at(start), sources=sources)
    try:
        config = load_config(None, overrides=demo.config)
        truth: dict[str, str] = dict(demo.expected)
        baseline_pending = True
        scans: list[dict[str, Any]] = []
        days: dict[date, dict[str, str]] = {}
        for i in range(nights):
            day = start + timedelta(days=i)
            runs = [(NIGHT, flips.get(i, []))]
            if afternoon and i in afternoon:
                runs.append((AFTERNOON, afternoon[i]))
            for when, changes in runs:
                for flip in changes:
                    flip.apply(demo)
                    truth[flip.control] = flip.status
                if i in skip:
                    continue
                outcome = run_scan(config, out_dir=out_dir, now=at(day, when), demo=True,
                                   exceptions=exceptions)
                statuses = {c.id: c.status.value for c in outcome.results.controls}
                if baseline_pending:  # controls the demo does not seed keep their first status
                    truth = {**statuses, **truth}
                    baseline_pending = False
                _check(outcome.bundle, statuses, truth)
                scans.append({"bundle": outcome.bundle, "at": at(day, when), "statuses": statuses})
                seen = days.setdefault(day, {})
                for cid, status in truth.items():
                    seen[cid] = worst([seen[cid], status]) if cid in seen else status
        return {"days": days, "scans": scans, "start": start,
                "end": start + timedelta(days=nights - 1),
                "skipped": sorted(start + timedelta(days=i) for i in skip), "demo": demo}
    finally:
        if own:
            demo.stop()


def _check(bundle: Path, statuses: dict[str, str], truth: dict[str, str]) -> None:
    wrong = {cid: (want, statuses.get(cid)) for cid, want in truth.items()
             if statuses.get(cid) != want}
    if wrong:
        detail = json.loads((bundle / "results.json").read_text(encoding="utf-8"))
        findings = {c["id"]: c["findings"] for c in detail["controls"] if c["id"] in wrong}
        raise AssertionError(f"{bundle.name}: the demo does not match the helper's truth "
                             f"(control: (wanted, got)): {wrong}; findings: {findings}")


# Changes to the demo estate, through the demo's own handles. ------------------------------------

def _aws(demo: Demo, service: str, region: str = "us-east-1") -> Any:
    from collectors.aws.demo import client
    return client(demo.sources["aws"].section["endpoint_url"], service, region)


def ebs_default_encryption(enabled: bool) -> Flip:
    """EBS default encryption in ap-southeast-2, the one region the demo leaves off."""
    def apply(demo: Demo) -> None:
        ec2 = _aws(demo, "ec2", "ap-southeast-2")
        (ec2.enable_ebs_encryption_by_default if enabled else ec2.disable_ebs_encryption_by_default)()
    return Flip("aws.ebs.default_encryption", "pass" if enabled else "fail", apply)


def marketing_bucket_encryption(enabled: bool) -> Flip:
    """Default encryption of acme-marketing-site, the demo's one unencrypted bucket."""
    def apply(demo: Demo) -> None:
        s3 = _aws(demo, "s3")
        if enabled:
            s3.put_bucket_encryption(Bucket="acme-marketing-site", ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
        else:
            s3.delete_bucket_encryption(Bucket="acme-marketing-site")
    return Flip("aws.s3.encrypted", "pass" if enabled else "fail", apply)


def guardduty_everywhere() -> Flip:
    """A GuardDuty detector in ap-southeast-2, the region the demo leaves without one."""
    def apply(demo: Demo) -> None:
        _aws(demo, "guardduty", "ap-southeast-2").create_detector(Enable=True)
    return Flip("aws.guardduty.enabled", "pass", apply)


def _datadog(demo: Demo) -> Any:
    return demo.sources["datadog"].extra["world"]


def disk_monitor_notifies(notifies: bool) -> Flip:
    """Datadog monitor 40110003 (the demo's one monitor that notifies nobody) gets a handle."""
    def apply(demo: Demo) -> None:
        for m in _datadog(demo).monitors:
            if m["id"] == 40110003:
                base = m["message"].replace(" @slack-platform-alerts", "")
                m["message"] = base + (" @slack-platform-alerts" if notifies else "")
    return Flip("datadog.monitors_notify", "pass" if notifies else "fail", apply)


def log_retention(days: int | None) -> Flip:
    """The "debug" log index keeps ``days`` days (30 passes); None: the app key loses the
    logs_read_config scope, so the control is ``error`` until a later flip gives it back."""
    def apply(demo: Demo) -> None:
        world = _datadog(demo)
        if days is None:
            world.app_key_scopes = {"monitors_read", "monitors_downtime"}
            return
        world.app_key_scopes = None
        for index in world.indexes:
            if index["name"] == "debug":
                index["num_retention_days"] = days
    status = "error" if days is None else ("pass" if days >= 30 else "fail")
    return Flip("datadog.log_retention", status, apply)


def no_change(control: str, status: str) -> Flip:
    """Nothing changes in the demo; the status changes because of the clock (e.g. an exception
    expiring) or because of what the scan is given (exceptions)."""
    return Flip(control, status, lambda demo: None)
