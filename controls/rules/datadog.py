"""Datadog rules: monitor coverage, notification, muting, log retention, critical monitors paging.

Payloads are ``{"pages": [...]}`` of raw Datadog JSON (see collectors/datadog.py): monitor pages
are arrays of v1 Monitor objects, downtime pages are v2 ``{"data": [...]}`` bodies, and the log
index page is ``{"indexes": [...]}``.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

from attest.model import Evidence, Finding, errored, failed, isoformat, parse_time, passed
from controls.rules import EvidenceView, rule

MONITORS = "datadog.monitors"
DOWNTIMES = "datadog.downtimes"
LOG_INDEXES = "datadog.log_indexes"

_EMAIL = re.compile(r"@[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _pages(record: Evidence) -> list[Any]:
    return list((record.payload or {}).get("pages") or [])


def _monitors(record: Evidence) -> list[dict[str, Any]]:
    return [m for page in _pages(record) for m in page]


def _downtimes(record: Evidence) -> list[dict[str, Any]]:
    return [d for page in _pages(record) for d in page.get("data") or []]


def _tags(obj: dict[str, Any]) -> set[str]:
    return {str(t).lower() for t in obj.get("tags") or []}


@rule("datadog.monitor_coverage")
def monitor_coverage(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    records = ev.get(MONITORS)
    if not records:
        return
    monitors = [m for r in records for m in _monitors(r)]
    for category in params["required"]:
        name = str(category["name"])
        tags = {str(t).lower() for t in category.get("tags") or []}
        needles = [str(q).lower() for q in category.get("query_contains") or []]
        hits = [m for m in monitors
                if tags & _tags(m) or any(n in str(m.get("query") or "").lower() for n in needles)]
        resource = f"datadog:category:{name}"
        if hits:
            ids = ", ".join(str(m.get("id")) for m in hits[:3])
            yield passed(resource, f"{len(hits)} monitor(s) cover {name}, e.g. {ids}")
        else:
            yield failed(resource, f"no monitor is tagged {sorted(tags)} or has a query containing "
                                   f"{needles}")


@rule("datadog.monitors_notify")
def monitors_notify(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    names = "|".join(re.escape(str(h)) for h in params["handles"])
    handle = re.compile(rf"@(?:{names})-[^\s{{}}@,;]+", re.IGNORECASE)
    for record in ev.get(MONITORS):
        for m in _monitors(record):
            message = str(m.get("message") or "")
            found = sorted(set(handle.findall(message)) | set(_EMAIL.findall(message)))
            if found:
                yield passed(str(m["id"]), "notifies " + ", ".join(found[:5]))
            else:
                yield failed(str(m["id"]), "the message names no @-handle (e.g. @pagerduty-…, "
                                           "@slack-…, @team-… or an email address)")


def _epoch(value: Any) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(int(value), tz=timezone.utc)


def _too_long(what: str, start: datetime | None, end: datetime | None, now: datetime,
              max_days: int) -> str | None:
    """Why a mute from ``start`` to ``end`` is too long, or None (ended, or short enough)."""
    if end is None:
        return f"{what} has no end"
    if end <= now:
        return None
    if end - max(start or now, now) > timedelta(days=max_days):
        return f"{what} runs until {isoformat(end)}, more than {max_days} days"
    return None


def _applies(downtime: dict[str, Any], monitor: dict[str, Any]) -> bool:
    ident = (downtime.get("attributes") or {}).get("monitor_identifier") or {}
    if "monitor_id" in ident:
        return str(ident["monitor_id"]) == str(monitor.get("id"))
    tags = [str(t).lower() for t in ident.get("monitor_tags") or []]
    return bool(tags) and (tags == ["*"] or set(tags) <= _tags(monitor))


def _downtime_problems(dt: dict[str, Any], now: datetime, max_days: int
                       ) -> tuple[list[str], tuple[Any, Any] | None]:
    """Problems with one v2 downtime, and its (start, end) epoch pair for de-duplication."""
    attrs = dt.get("attributes") or {}
    if attrs.get("status") in ("ended", "canceled") or attrs.get("canceled"):
        return [], None
    what = f"downtime {dt.get('id')} (scope {attrs.get('scope')!r})"
    schedule = attrs.get("schedule") or {}
    if "recurrences" in schedule:
        problems = []
        for rec in schedule.get("recurrences") or []:
            m = _DURATION.match(str(rec.get("duration") or ""))
            if m is None:
                raise ValueError(f"{what}: unreadable recurrence duration {rec.get('duration')!r}")
            length = timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
            if length > timedelta(days=max_days):
                problems.append(f"{what} recurs for {rec['duration']} at a time, more than "
                                f"{max_days} days")
        return problems, None
    start, end = parse_time(schedule.get("start")), parse_time(schedule.get("end"))
    problem = _too_long(what, start, end, now, max_days)
    key = (int(start.timestamp()) if start else None, int(end.timestamp()) if end else None)
    return ([problem] if problem else []), key


@rule("datadog.monitors_not_muted")
def monitors_not_muted(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    now, max_days = ev.now, int(params["max_mute_days"])
    for record in ev.get(MONITORS):
        downtime_record = ev.one(DOWNTIMES, record.scope)
        downtimes = _downtimes(downtime_record) if downtime_record is not None else None
        for m in _monitors(record):
            resource = str(m["id"])
            problems = []
            for group, end in sorted(((m.get("options") or {}).get("silenced") or {}).items()):
                problem = _too_long(f"silenced for {group!r}", None, _epoch(end), now, max_days)
                if problem:
                    problems.append(problem)
            seen: set[tuple[Any, Any]] = set()
            for dt in downtimes or []:
                if _applies(dt, m):
                    found, key = _downtime_problems(dt, now, max_days)
                    problems.extend(found)
                    if key:
                        seen.add(key)
            for md in m.get("matching_downtimes") or []:   # Datadog's own matching (v1 ids)
                if (md.get("start"), md.get("end")) in seen:
                    continue
                problem = _too_long(f"downtime {md.get('id')} (scope {md.get('scope')})",
                                    _epoch(md.get("start")), _epoch(md.get("end")), now, max_days)
                if problem:
                    problems.append(problem)
            if problems:
                yield failed(resource, "; ".join(problems))
            elif downtimes is None:
                yield errored(resource, f"{DOWNTIMES} for {record.scope} could not be read, so "
                                        "downtimes applying to this monitor are unknown")
            else:
                yield passed(resource, f"not muted for more than {max_days} days")


@rule("datadog.log_retention")
def log_retention(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    min_days = int(params["min_days"])
    for record in ev.get(LOG_INDEXES):
        for page in _pages(record):
            for index in page.get("indexes") or []:
                name = str(index.get("name"))
                days = [d for d in (index.get("num_retention_days"),
                                    index.get("num_flex_logs_retention_days"))
                        if isinstance(d, int) and not isinstance(d, bool)]
                if not days:
                    yield errored(name, "the index reports no num_retention_days")
                elif max(days) < min_days:
                    yield failed(name, f"keeps logs {max(days)} days, fewer than {min_days}")
                else:
                    yield passed(name, f"keeps logs {max(days)} days")


_PAGERDUTY = re.compile(r"@pagerduty-[^\s{}@,;]+", re.IGNORECASE)


@rule("datadog.critical_monitors_page")
def critical_monitors_page(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    critical_tags = {str(t).lower() for t in params["tags"]}
    for record in ev.get(MONITORS):
        for m in _monitors(record):
            priority = m.get("priority")
            tagged = sorted(critical_tags & _tags(m))
            if priority not in (1, 2) and not tagged:
                continue
            why = f"P{priority}" if priority in (1, 2) else f"tagged {', '.join(tagged)}"
            handles = sorted(set(_PAGERDUTY.findall(str(m.get("message") or ""))))
            if handles:
                yield passed(str(m["id"]), f"{why}; pages {', '.join(handles[:3])}")
            else:
                yield failed(str(m["id"]), f"{why}, but its message mentions no @pagerduty-… "
                                           "handle, so its alerts page nobody")
