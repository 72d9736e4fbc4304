"""Data passed between the stages: evidence records, findings, control results.

Collectors produce :class:`Evidence`; rules turn evidence into :class:`Finding`s; the engine
wraps them into :class:`ControlResult`s. All are plain frozen dataclasses that round-trip to JSON.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import itertools
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from enum import StrEnum
from typing import Any, Iterable, Iterator


class Status(StrEnum):
    """A verdict on a resource or a control."""
    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"                    # evidence missing, partial or denied: never a pass
    NOT_APPLICABLE = "not_applicable"  # no such resources
    EXCEPTED = "excepted"              # failing, but covered by an approved, unexpired exception
    SKIPPED = "skipped"                # the source is not configured


# Worst first: how statuses rank when several verdicts meet (a control's findings, one day's scans).
STATUS_ORDER: tuple[Status, ...] = (Status.FAIL, Status.ERROR, Status.EXCEPTED, Status.PASS,
                                    Status.NOT_APPLICABLE, Status.SKIPPED)


def readiness(counts: dict[str, int]) -> float | None:
    """Percent of judged controls (pass, fail, error, excepted) that pass or are excepted."""
    judged = sum(counts.get(s, 0) for s in ("pass", "fail", "error", "excepted"))
    return round(100.0 * (counts.get("pass", 0) + counts.get("excepted", 0)) / judged, 1) if judged else None


class EvidenceState(StrEnum):
    OK = "ok"            # the API answered; payload is the answer
    ABSENT = "absent"    # the API said the thing does not exist (a fact, e.g. no password policy)
    DENIED = "denied"    # 401/403/AccessDenied: unknown
    ERROR = "error"      # any other failure: unknown
    PARTIAL = "partial"  # some pages or items could not be read: unknown
    UNREACHABLE = "unreachable"  # no answer at all (DNS, refused, timeout): unknown

    @property
    def known(self) -> bool:
        return self in (EvidenceState.OK, EvidenceState.ABSENT)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def isoformat(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def parse_time(value: str | datetime | None) -> datetime | None:
    """Parse an ISO-8601 timestamp (with Z or offset) into an aware UTC datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, datetime):
        return isoformat(obj) if obj.tzinfo else obj.isoformat()
    if isinstance(obj, date):
        return obj.isoformat()
    if isinstance(obj, (bytes, bytearray)):
        return obj.decode("utf-8", "replace")
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    return str(obj)


class Packed:
    """A JSON value held as compact text until it is written: the bundle gets exactly the bytes
    the value itself would give (``canonical_json`` reads it back through ``to_dict``), and a
    collector that must keep many answers until its record is final holds a fifth of the memory
    (Okta's factors of 20,000 users: 9 MB of text, not 45 MB of dicts)."""
    __slots__ = ("text",)

    def __init__(self, value: Any) -> None:
        self.text = json.dumps(value, separators=(",", ":"), ensure_ascii=False,
                               default=_json_default)

    def to_dict(self) -> Any:   # the name _json_default looks for; any JSON value
        return json.loads(self.text)

    def __eq__(self, other: object) -> bool:
        value = self.to_dict()
        return value == (other.to_dict() if isinstance(other, Packed) else other)

    __hash__ = None   # type: ignore[assignment]   (like the list or dict it stands for)

    def __repr__(self) -> str:
        return f"Packed({self.text[:60]}{'...' if len(self.text) > 60 else ''})"


def canonical_json(obj: Any) -> bytes:
    """Canonical bytes for a JSON value: sorted keys, fixed indentation, UTF-8, trailing newline.

    The same state always hashes the same, so bundles of unchanged settings diff cleanly.
    Encoded piece by piece (:func:`canonical_json_pieces`): a large value (a manifest of 16,000
    files) is never also held as the encoder's hundreds of thousands of small strings."""
    return b"".join(canonical_json_pieces(obj))


_CANONICAL = json.JSONEncoder(sort_keys=True, indent=2, ensure_ascii=False, default=_json_default)


def canonical_json_pieces(obj: Any, piece_size: int = 1 << 20) -> Iterator[bytes]:
    """``canonical_json(obj)`` in pieces of about ``piece_size`` bytes (the same bytes, joined):
    a large payload is written without being held whole as text."""
    yield from utf8_pieces(itertools.chain(_CANONICAL.iterencode(obj), ["\n"]), piece_size)


def utf8_pieces(chunks: Iterable[str], piece_size: int) -> Iterator[bytes]:
    """Small text chunks (an encoder's, a template's) as UTF-8 pieces of about ``piece_size``."""
    buffer: list[str] = []
    size = 0
    for chunk in chunks:
        buffer.append(chunk)
        size += len(chunk)
        if size >= piece_size:
            yield "".join(buffer).encode("utf-8")
            buffer, size = [], 0
    if buffer:
        yield "".join(buffer).encode("utf-8")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_path_part(text: str) -> str:
    """A file-name-safe form of a name that came from an API ('../x' never escapes a folder)."""
    cleaned = _SAFE.sub("_", text).strip(".") or "_"
    if cleaned != text:
        cleaned = f"{cleaned[:60]}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"
    return cleaned


@dataclass(frozen=True)
class Evidence:
    """One raw API answer (or the fact that it could not be had), as a collector saw it.

    name:  the evidence name declared by the collector, e.g. ``aws.cloudtrail.trails``;
           its first dot-part is the source.
    scope: where it was read, e.g. ``aws:123456789012:us-east-1``, ``github:acme``.
    """
    name: str
    scope: str
    state: EvidenceState
    payload: Any = None
    detail: str = ""
    request: dict[str, Any] = field(default_factory=dict)
    collected_at: str = ""
    # Resources that could not be read, by the id the rules name them with -> why. A ``partial``
    # record with such a list is readable for everything else: the engine makes exactly those
    # resources ``error`` (one failed read never erases the verdicts of the resources read).
    unknown: dict[str, str] = field(default_factory=dict)

    @property
    def readable(self) -> bool:
        """Rules may read it: a known state, or partial with its unreadable resources listed."""
        return self.state.known or (self.state is EvidenceState.PARTIAL and bool(self.unknown))

    @property
    def source(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def path(self) -> str:
        """Bundle-relative path of this record's file."""
        parts = self.scope.split(":")
        if parts and parts[0] == self.source:
            parts = parts[1:]
        folder = "/".join(safe_path_part(p) for p in parts if p) or "_"
        return f"evidence/{safe_path_part(self.source)}/{folder}/{safe_path_part(self.name)}.json"

    def to_json(self) -> dict[str, Any]:
        out = {"name": self.name, "scope": self.scope, "state": self.state.value,
               "payload": self.payload, "detail": self.detail, "request": self.request,
               "collected_at": self.collected_at}
        if self.unknown:
            out["unknown"] = dict(self.unknown)
        return out

    def as_stored(self) -> "Evidence":
        """This record as its file in the bundle gives it back, which is what a scan's rules
        judge: read back when its payload (or a value in it) is :class:`Packed`, else itself."""
        payload = self.payload
        inner = (payload.values() if isinstance(payload, dict)
                 else payload if isinstance(payload, list) else ())
        if not isinstance(payload, Packed) and not any(isinstance(v, Packed) for v in inner):
            return self
        return Evidence.from_json(json.loads(canonical_json(self.to_json())))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Evidence":
        return cls(name=data["name"], scope=data["scope"], state=EvidenceState(data["state"]),
                   payload=data.get("payload"), detail=data.get("detail", ""),
                   request=data.get("request") or {}, collected_at=data.get("collected_at", ""),
                   unknown=dict(data.get("unknown") or {}))


@dataclass(frozen=True)
class Finding:
    """One verdict on one resource: the ARN, ``owner/repo``, a login, or ``aws:<acct>:<region>:<svc>``.

    ``facts``: structured details a report may show without parsing ``detail`` (e.g. a manual
    document's ``document_state``); written to results.json only when there are any."""
    resource: str
    status: Status
    detail: str = ""
    facts: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = {"resource": self.resource, "status": self.status.value, "detail": self.detail}
        if self.facts:
            out["facts"] = dict(self.facts)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Finding":
        return cls(data["resource"], Status(data["status"]), data.get("detail", ""),
                   dict(data.get("facts") or {}))


def passed(resource: str, detail: str = "", **facts: Any) -> Finding:
    return Finding(resource, Status.PASS, detail, facts)


def failed(resource: str, detail: str, **facts: Any) -> Finding:
    return Finding(resource, Status.FAIL, detail, facts)


def errored(resource: str, detail: str, **facts: Any) -> Finding:
    return Finding(resource, Status.ERROR, detail, facts)


@dataclass(frozen=True)
class ControlResult:
    id: str
    title: str
    criteria: list[str]
    source: str
    severity: str
    status: Status
    findings: list[Finding]
    evidence: list[str]
    remediation: str = ""
    description: str = ""
    exceptions: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "criteria": list(self.criteria),
                "source": self.source, "severity": self.severity, "status": self.status.value,
                "findings": [f.to_json() for f in self.findings], "evidence": list(self.evidence),
                "remediation": self.remediation, "description": self.description,
                "exceptions": list(self.exceptions)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "ControlResult":
        return cls(id=d["id"], title=d.get("title", ""), criteria=list(d.get("criteria", [])),
                   source=d.get("source", d["id"].split(".")[0]), severity=d.get("severity", ""),
                   status=Status(d["status"]),
                   findings=[Finding.from_json(f) for f in d.get("findings", [])],
                   evidence=list(d.get("evidence", [])), remediation=d.get("remediation", ""),
                   description=d.get("description", ""), exceptions=list(d.get("exceptions", [])))
