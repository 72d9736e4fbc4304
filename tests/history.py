"""Test helper: a history of nightly bundles made by the real demo scan, with a known truth.

``make_history`` starts the demo once (or reuses one), then for each night runs the production
scan (``attest.scan.run_scan``) against it with the clock set to that night 02:00Z. Before a
night's scan it applies that night's :class:`Flip` s, which change the demo's seeded state through
the demo's own handles (the fake's state object on ``DemoSource.extra``, or boto3 against the
moto endpoint) and say what status the control must have from then on. Skipped nights get no
scan at all. Optional second scans on a day (14:00Z) exercise the worst-of-day rule.

The returned truth is what the helper did, per control per day; the helper also checks every
scan's results against it, so a demo that drifts with the clock fails here, not in the export.

Populations: :class:`Event` s (a pull request merged, an Okta user created, an IAM key deleted...)
happen at a time of their own before a night's scan and return a record of what was done; the
helper returns those records (``events``) and, per scan, the window each windowed read covered or
that it failed (``windows``), so a test can say which bundle must have recorded each event.
:class:`Fault` s make one night's read of one evidence fail. The verdict of a windowed control
(``github.changes_reviewed``) follows from the events its scan's window holds.
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


@dataclass(frozen=True)
class Event:
    """Something that happens in the demo at ``at``, applied before the night's scan (a windowed
    read only sees it once ``at`` is inside its window). ``apply`` returns the record of what it
    did; ``control``/``status``: the windowed control that judges it and its verdict."""
    population: str
    evidence: str
    at: datetime
    apply: Callable[[Demo], dict[str, Any]]
    control: str | None = None
    status: str | None = None


@dataclass(frozen=True)
class Fault:
    """The night's read of ``evidence`` fails (``apply`` before the scan, ``undo`` after it);
    ``control``, when given, is ``error`` that night."""
    evidence: str
    apply: Callable[[Demo], None]
    undo: Callable[[Demo], None]
    control: str | None = None


# windowed evidence: (look-back days, whether the window's end is inside it) as the collectors read
WINDOWED = {"github.merged_pulls": (30, True), "okta.system_log": (30, False)}


def at(day: date, when: time = NIGHT) -> datetime:
    return datetime.combine(day, when)


def make_history(out_dir: Path, start: date, nights: int, skip: set[int],
                 flips: dict[int, list[Flip]], *, demo: Demo | None = None,
                 sources: tuple[str, ...] = ("aws",), afternoon: dict[int, list[Flip]] | None = None,
                 exceptions: Any = None, events: dict[int, list[Event]] | None = None,
                 faults: dict[int, list[Fault]] | None = None,
                 overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Run ``nights`` nightly scans from ``start`` into ``out_dir`` and return the truth.

    ``skip``: night indexes with no scan (their flips still happen, unseen until the next scan).
    ``flips``: night index -> changes applied before that night's scan.
    ``afternoon``: night index -> changes applied before a second scan that day at 14:00Z.
    ``events``: night index -> population events applied before that night's scan (skipped or
    not); ``faults``: night index -> reads that fail in that night's scan.
    ``overrides``: config section -> keys to change (e.g. ``{"aws": {"regions": [...]}}``); the
    demo's seeded statuses do not hold for those sources, so their first scan sets the baseline.
    Returns ``{"days": {date: {control: day status}}, "scans": [{"bundle", "at", "statuses",
    "windows": {evidence: (since, until) | None (failed)}}], "events": [records], "start", "end",
    "skipped": [dates], "demo": Demo}``; a skipped day is absent from ``days``.
    """
    own = demo is None
    demo = demo or start_demo(at(start), sources=sources)
    try:
        sections = {name: {**section, **(overrides or {}).get(name, {})}
                    for name, section in demo.config.items()}
        config = load_config(None, overrides=sections)
        truth: dict[str, str] = {cid: status for cid, status in demo.expected.items()
                                 if cid.split(".")[0] not in (overrides or {})}
        window = _Windows(demo, truth, {e for e in WINDOWED if e.split(".")[0] in sources})
        baseline_pending = True
        scans: list[dict[str, Any]] = []
        days: dict[date, dict[str, str]] = {}
        for i in range(nights):
            day = start + timedelta(days=i)
            runs = [(NIGHT, flips.get(i, []))]
            if afternoon and i in afternoon:
                runs.append((AFTERNOON, afternoon[i]))
            for event in (events or {}).get(i, []):
                window.record(event, i)
            for when, changes in runs:
                for flip in changes:
                    flip.apply(demo)
                    truth[flip.control] = flip.status
                if i in skip:
                    continue
                broken = faults.get(i, []) if faults and when == NIGHT else []
                for fault in broken:
                    fault.apply(demo)
                try:
                    outcome = run_scan(config, out_dir=out_dir, now=at(day, when), demo=True,
                                       exceptions=exceptions)
                finally:
                    for fault in broken:
                        fault.undo(demo)
                windows = window.scan(at(day, when), broken)
                statuses = {c.id: c.status.value for c in outcome.results.controls}
                if baseline_pending:  # controls the demo does not seed keep their first status
                    truth.update({**statuses, **truth})
                    baseline_pending = False
                _check(outcome.bundle, statuses, truth)
                scans.append({"bundle": outcome.bundle, "at": at(day, when), "statuses": statuses,
                              "windows": windows})
                seen = days.setdefault(day, {})
                for cid, status in truth.items():
                    seen[cid] = worst([seen[cid], status]) if cid in seen else status
                window.after_scan()
        return {"days": days, "scans": scans, "start": start,
                "end": start + timedelta(days=nights - 1), "events": window.records,
                "skipped": sorted(start + timedelta(days=i) for i in skip), "demo": demo}
    finally:
        if own:
            demo.stop()


class _Windows:
    """The windowed reads as the collectors make them (since the last good read, at most the
    look-back), the events each window holds, and what the windowed controls must say."""

    def __init__(self, demo: Demo, truth: dict[str, str], evidence: set[str]) -> None:
        from controls import load_catalog
        self.demo, self.truth, self.evidence = demo, truth, evidence
        self.last_good: dict[str, datetime] = {}
        self.pending: list[Event] = []
        self.records: list[dict[str, Any]] = []
        self.controls = {c.id for c in load_catalog() if c.population == "windowed"
                         and c.source in {e.split(".")[0] for e in evidence}}
        self.first = True

    def record(self, event: Event, night: int) -> None:
        done = event.apply(self.demo)
        self.records.append({"population": event.population, "evidence": event.evidence,
                             "at": event.at, "night": night, "status": event.status, **done})
        self.pending.append(event)

    def scan(self, now: datetime, broken: list[Fault]) -> dict[str, Any]:
        """This scan's windows (None: the read failed), and the windowed controls' truth."""
        failed = {f.evidence for f in broken}
        windows: dict[str, Any] = {}
        for name in self.evidence:
            days = WINDOWED[name][0]
            since = max(now - timedelta(days=days), self.last_good.get(name, now - timedelta(days=days)))
            windows[name] = None if name in failed else (since, now)
            if name not in failed:
                self.last_good[name] = now
        for control in self.controls:
            evidence = next(e for e in self.evidence if e.split(".")[0] == control.split(".")[0])
            if windows.get(evidence) is None:
                self.truth[control] = "error"
                continue
            since, until = windows[evidence]
            closed = WINDOWED[evidence][1]
            verdicts = [e.status for e in self.pending if e.control == control and e.status
                        and since <= e.at and (e.at <= until if closed else e.at < until)]
            if self.first and control in self.truth:   # the demo's seeded events
                verdicts.append(self.truth[control])
            self.truth[control] = ("fail" if "fail" in verdicts else "pass" if "pass" in verdicts
                                   else "not_applicable")
        return windows

    def after_scan(self) -> None:
        self.first = False


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


# Population events and faults. -----------------------------------------------------------------

def _github(demo: Demo) -> Any:
    return demo.sources["github"].extra["world"]


def merge_pull(when: datetime, repo: str, number: int, author: str,
               approvals: tuple[tuple[str, timedelta], ...] = (), *, base: str | None = None,
               merged_by: str | None = None) -> Event:
    """A pull request merged at ``when``; ``approvals``: (reviewer, offset from the merge; negative
    = before it). Its verdict follows the rule: approved by someone else before the merge."""
    from collectors.github.demo.world import Pull, Review

    def apply(demo: Demo) -> dict[str, Any]:
        _github(demo).pulls.append(Pull(repo, number, author, when,
                                        [Review(who, when + offset) for who, offset in approvals],
                                        base=base, merged_by=merged_by))
        return {"repository": f"{_github(demo).org}/{repo}", "number": number, "author": author,
                "merged_by": merged_by or author, "default_branch": base is None,
                "approvers": [(who, when + offset) for who, offset in approvals]}
    before = [who for who, offset in approvals if who != author and offset <= timedelta(0)]
    status = None if base is not None else "pass" if before else "fail"
    return Event("changes", "github.merged_pulls", when, apply, "github.changes_reviewed", status)


def github_search_denied() -> Fault:
    """The token loses Pull requests: read for one night: GraphQL search answers FORBIDDEN."""
    def flip(on: bool) -> Callable[[Demo], None]:
        return lambda demo: setattr(_github(demo), "search_forbidden", on)
    return Fault("github.merged_pulls", flip(True), flip(False), "github.changes_reviewed")


def _okta(demo: Demo) -> Any:
    return demo.sources["okta"].extra["world"]


def _okta_user(demo: Demo, login: str) -> dict[str, Any]:
    return next(u for u in _okta(demo).users if u["profile"]["login"].startswith(login))


def okta_event(when: datetime, event_type: str, login: str, *, group: str | None = None,
               role: str | None = None, result: str = "SUCCESS", create: bool = False,
               status: str | None = None) -> Event:
    """One System Log event about the user whose login starts with ``login`` (``create``: a new
    ACTIVE user with a push factor first; ``status``: set the user's status, e.g. DEPROVISIONED).
    ``group``: the group of a membership event; ``role``: the admin role granted or revoked."""
    from collectors.okta import demo as fk
    from collectors.okta.demo_system_log import MARKETING, PROD_ADMINS, actor, log_event
    GROUPS = {g["displayName"]: g for g in (PROD_ADMINS, MARKETING)}

    def apply(demo: Demo) -> dict[str, Any]:
        world = _okta(demo)
        if create:
            world.add_user(fk.user(f"{login}@acmerockets.example", first=login.title(),
                                   created=when, activated=when, last_login=when),
                           [fk.factor("push")])
        user = _okta_user(demo, login)
        if status:
            user["status"] = status
        targets = [actor(user)] + ([GROUPS[group]] if group else [])
        key = "privilegeGranted" if event_type.endswith("grant") else "privilegeRevoked"
        event = log_event(event_type, when, actor(_okta_user(demo, "alice.ng")), targets,
                          result=result, debug={key: role} if role else None)
        world.logs.append(event)
        return {"event_type": event_type, "user": user["profile"]["login"], "group": group,
                "role": role, "result": result, "uuid": event["uuid"]}
    return Event("access", "okta.system_log", when, apply)


def okta_logs_denied() -> Fault:
    """The token loses the okta.logs.read scope for one night."""
    saved: dict[str, Any] = {}

    def apply(demo: Demo) -> None:
        world = _okta(demo)
        saved.update(world.tokens)
        for token, scopes in world.tokens.items():
            world.tokens[token] = frozenset(scopes - {"okta.logs.read"})

    def undo(demo: Demo) -> None:
        _okta(demo).tokens.update(saved)
    return Fault("okta.system_log", apply, undo)


def iam_change(when: datetime, action: str, user: str) -> Event:
    """``action``: "create user", "create key", "delete key" (the user's newest key), "delete user"
    (its keys first), or "create and delete user" (gone again before any scan sees it). Creation
    times are set to ``when`` in moto (which stamps the wall clock)."""
    from collectors.aws.demo import backdate_access_key, backdate_user

    def apply(demo: Demo) -> dict[str, Any]:
        iam = _aws(demo, "iam")
        record: dict[str, Any] = {"action": action, "user": user,
                                  "arn": f"arn:aws:iam::123456789012:user/{user}"}
        if action in ("create user", "create and delete user"):
            iam.create_user(UserName=user)
            backdate_user(user, when)
        if action == "create key":
            key = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
            backdate_access_key(user, key, when)
        if action == "delete key":
            keys = iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
            newest = max(keys, key=lambda k: k["CreateDate"])
            record["key_created"] = newest["CreateDate"]
            iam.delete_access_key(UserName=user, AccessKeyId=newest["AccessKeyId"])
        if action in ("delete user", "create and delete user"):
            record["key_created"] = [k["CreateDate"] for k in
                                     iam.list_access_keys(UserName=user)["AccessKeyMetadata"]]
            for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]:
                iam.delete_access_key(UserName=user, AccessKeyId=k["AccessKeyId"])
            record["user_created"] = iam.get_user(UserName=user)["User"]["CreateDate"]
            iam.delete_user(UserName=user)
        return record
    return Event("aws_access", "aws.iam.credential_report", when, apply)
