"""What a collector is, and the context a scan hands it.

A collector reads one source (AWS, GitHub, ...) and yields :class:`attest.model.Evidence`
records: the raw API answers, or the fact that an answer could not be had (``denied``,
``error``, ``partial``) or that the thing asked for does not exist (``absent``).
Collectors never judge: no pass, no fail.

A collector class has:

* ``source``: its name, the first part of every evidence name it produces and its config key;
* ``Config``: a pydantic model for its config section (``extra="forbid"``; secrets as SecretStr);
* ``produces``: every evidence name it may yield (the catalog may only reference these);
* ``__init__(self, config)`` and ``collect(self, ctx) -> Iterator[Evidence]``.
* optionally ``units(self, ctx) -> list[str]`` and ``collect(self, ctx, units=...)``: the parts
  a sharded scan (``attest scan --shard I/N``, :mod:`attest.shards`) may give to different
  machines, e.g. AWS's accounts; ``collect`` with ``units`` reads only those. Without them the
  whole source is one unit.

What a source is beyond its collector (when it runs without a config section, its SDKs, its demo)
is its :class:`collectors.Source` entry, in ``collectors/<name>/source.py``.
"""
from __future__ import annotations

import logging
from pathlib import Path
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, ClassVar, Iterator, Protocol

from pydantic import BaseModel

from attest.calls import reading
from attest.model import Evidence, EvidenceState, isoformat, utcnow




@dataclass
class CollectContext:
    """What a scan hands a collector: its clock, when evidence was last collected, a logger,
    progress, and the output folder."""
    now: datetime = field(default_factory=utcnow)
    # when (name, scope) was last collected with state ok in a complete bundle (None: never)
    last_collected: Callable[[str, str], datetime | None] = lambda name, scope: None
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("attest.collect"))
    progress: Callable[[str], None] = lambda step: None
    output_dir: Path | None = None
    # a narrowed run (--controls): the evidence names its controls read; None = everything.
    # A collector may skip what is not wanted (AWS does); collecting more is never wrong.
    wanted: frozenset[str] | None = None

    def since(self, name: str, scope: str, days: int) -> datetime:
        """Where the look-back window of an event list (merged pulls, incidents, the System Log)
        starts: the last time ``name`` was read successfully, so that a failed night leaves no
        hole, but at most ``days`` before now."""
        since = self.now - timedelta(days=days)
        last_ok = self.last_collected(name, scope)
        return last_ok if last_ok is not None and last_ok > since else since

    def evidence(self, name: str, scope: str, payload: Any = None, *,
                 state: EvidenceState = EvidenceState.OK, detail: str = "",
                 request: dict[str, Any] | None = None,
                 unknown: dict[str, str] | None = None) -> Evidence:
        return Evidence(name=name, scope=scope, state=state, payload=payload, detail=detail,
                        request=request or {}, collected_at=isoformat(utcnow()),
                        unknown=dict(unknown or {}))


    def guarded(self, name: str, scope: str, read: Callable[[], Evidence],
                request: dict[str, Any] | None = None) -> Evidence:
        """``read()``, but an unexpected exception (a payload of an unexpected shape, a bug)
        stays with this one evidence item as ``error``, instead of ending the whole source.
        A call that fails for good inside is listed in failed-calls.json as concerning ``name``."""
        try:
            with reading(name):
                return read()
        except Exception as exc:  # noqa: BLE001
            self.log.warning("%s at %s: unexpected %s: %s", name, scope, type(exc).__name__, exc)
            return self.evidence(name, scope, state=EvidenceState.ERROR, request=request,
                                 detail=f"unexpected {type(exc).__name__} while reading: {exc}"[:400])


class Collector(Protocol):
    source: ClassVar[str]
    Config: ClassVar[type[BaseModel]]
    produces: ClassVar[tuple[str, ...]]

    def __init__(self, config: Any) -> None: ...

    def collect(self, ctx: CollectContext) -> Iterator[Evidence]: ...


def is_loopback(url: str | None) -> bool:
    """Is the URL's host this machine (localhost, 127.0.0.0/8, ::1)? ``127.0.0.1.example.com``
    is not."""
    import ipaddress
    from urllib.parse import urlparse
    if not url:
        return False
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def https_or_loopback(url: str, what: str = "URL") -> str:
    """The rule for every configured vendor URL: https, or plain http to a loopback address only
    (the local fakes). Returns the URL without a trailing slash; ValueError otherwise."""
    value = (url or "").strip().rstrip("/")
    from urllib.parse import urlsplit
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"expected a {what} such as https://example.com")
    if parts.scheme == "http" and not is_loopback(value):
        raise ValueError(f"{what} must be https:// (plain http only for 127.0.0.1/localhost)")
    return value


def max_retries_field() -> Any:
    """Every SaaS source's ``max_retries``: retries of a call answered 429 or 5xx, with backoff
    and jitter, at most 120 s a call (the shared HTTP layer, :mod:`collectors.http`). The
    default, 9 (10 tries), keeps a call whose every answer fails with probability 0.3 lost once
    in ~170,000; a vendor that looks down (calls in a row failing for good) costs 2 tries a call."""
    from pydantic import Field
    return Field(9, ge=0, le=20, description="retries of a call answered 429 or 5xx (backoff with "
                 "jitter, at most 120 s a call; 2 tries a call once the vendor looks down)")
