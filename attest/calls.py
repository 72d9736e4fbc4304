"""The calls that failed for good: every bundle's ``failed-calls.json``.

Where a call finally fails (after its retries), the layer that made it (the shared HTTP layer,
:mod:`collectors.http`; the AWS helpers, :mod:`collectors.aws_errors`) logs its usual line on the
``attest.calls`` logger with one more field, ``failed_call`` (:func:`failed_call` builds it). The
scan keeps those fields while it keeps its log lines, and writes them, sorted, as the bundle's
``failed-calls.json`` (:func:`to_bytes`): a list with one entry per call, ``[]`` when none failed.
A source records nothing itself; it only says which evidence item it is reading
(:func:`reading`, which :meth:`collectors.base.CollectContext.guarded` does for it), so an entry
can name the evidence it concerned.

What is not a failure is not listed: an answer the collector takes as a fact (``absent``: a 404
for "not configured", AWS's NoSuchBucketPolicy) and a call that succeeded after retries.

No secret reaches an entry: calls are named by their operation and path, never a header; query
strings are cut from paths and from the vendor's message; token-shaped text is masked; and
before the file is written every secret of the config is replaced (:func:`to_bytes`).
"""
from __future__ import annotations

import contextlib
import contextvars
import re
from typing import Any, Iterable, Iterator

from attest.model import canonical_json, isoformat, utcnow

FAILED_CALLS = "failed-calls.json"
REASON_MAX = 300
FIELDS = ("source", "scope", "call", "resource", "status", "attempts", "reason", "evidence",
          "state", "at")

_evidence: contextvars.ContextVar[str | None] = contextvars.ContextVar("attest_evidence",
                                                                      default=None)


@contextlib.contextmanager
def reading(name: str | None) -> Iterator[None]:
    """The calls made inside concern evidence item ``name`` (threads and tasks started inside
    inherit it only where the context is copied: asyncio tasks do, plain threads do not)."""
    token = _evidence.set(name)
    try:
        yield
    finally:
        _evidence.reset(token)


def current_evidence() -> str | None:
    return _evidence.get()


# A query string (``?a=1&b=2``) after a path or URL; an Authorization-like value; token shapes:
# GitHub tokens, JWTs, AWS access key ids, Okta's SSWS, bearer tokens, signed-URL parameters.
_QUERY = re.compile(r"\?[^\s'\"<>()\[\]{}]*=[^\s'\"<>()\[\]{}]*")
_SECRETS = re.compile(
    r"(?i)(?P<key>\b(?:bearer|ssws)\s+|\b(?:authorization|x-api-key|dd[-_]api[-_]key|"
    r"dd[-_]application[-_]key|"
    r"api[_-]?key|app[_-]?key|access[_-]?token|token|secret|password|signature|credential)"
    r"[\"']?\s*[:=]\s*[\"']?(?:(?:bearer|ssws|basic|token)\s+)?)[^\s\"',;&()<>\[\]{}]+"
    r"|\bgh[opsur]_\w+|\bgithub_pat_\w+|\beyJ[\w-]+\.[\w-]+\.[\w-]*|\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")


def redact(text: str) -> str:
    """``text`` with query strings cut and token-shaped values masked."""
    text = _QUERY.sub("?[query removed]", text)
    return _SECRETS.sub(lambda m: (m.group("key") or "") + "[redacted]", text)


def path_only(resource: str) -> str:
    """A path or URL without its query string or fragment."""
    return resource.split("?", 1)[0].split("#", 1)[0]


def failed_call(*, call: str, resource: str, status: int | str, attempts: int | None,
                reason: str, state: str, evidence: str | None = None) -> dict[str, Any]:
    """One entry (without ``source`` and ``scope``, which :func:`attest.logs.log_call` adds).

    ``call``: the operation as a template (``GET /api/v1/users/{id}/factors``,
    ``s3:GetBucketPolicy``); ``resource``: what it asked for (a concrete path, an AWS region and
    resource); ``status``: the HTTP status or AWS error code, or ``unreachable``/``timeout``;
    ``attempts``: tries made, the first included (0: not tried, the host had given no answer);
    ``reason``: the vendor's message; ``state``: the evidence state the failure leads to;
    ``evidence``: the item being read (default: the one :func:`reading` names)."""
    return {"call": path_only(call), "resource": redact(path_only(resource)), "status": status,
            "attempts": attempts, "reason": redact(" ".join(str(reason).split()))[:REASON_MAX],
            "state": state, "evidence": evidence if evidence is not None else current_evidence(),
            "at": isoformat(utcnow())}


def _key(entry: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(entry.get(k) if entry.get(k) is not None else "") for k in
                 ("source", "scope", "evidence", "call", "resource", "status", "at", "reason",
                  "attempts", "state"))


def ordered(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries in one deterministic order: source, scope, evidence, call, resource, ..."""
    return sorted(entries, key=_key)


def scrub(value: Any, secrets: Iterable[str]) -> Any:
    """``value`` with every one of ``secrets`` (the config's) replaced wherever it appears."""
    words = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)
    if not words:
        return value
    if isinstance(value, str):
        for word in words:
            value = value.replace(word, "[redacted]")
        return value
    if isinstance(value, list):
        return [scrub(v, words) for v in value]
    if isinstance(value, dict):
        return {k: scrub(v, words) for k, v in value.items()}
    return value


def to_bytes(entries: Iterable[dict[str, Any]], secrets: Iterable[str] = ()) -> bytes:
    """``failed-calls.json``: the entries, scrubbed of ``secrets`` and sorted, as canonical JSON."""
    return canonical_json(ordered(scrub(list(entries), list(secrets))))
