"""Logging: plain lines on a terminal, one JSON object a line with ``--log-format json``.

Every API call a collector makes is logged through :func:`api_call` on the ``attest.calls``
logger with the fields ``scan_id``, ``source``, ``scope``, ``call``, ``duration`` (seconds) and
``outcome`` (``ok``, ``absent``, ``denied``, ``error``); a call that failed for good carries one
more, ``failed_call`` (:mod:`attest.calls`: what the bundle's ``failed-calls.json`` lists). The
JSON formatter is python-json-logger's;
``scan_id`` is added to every record of a scan by a filter. No secret is ever a field: a call is
named by its operation (``s3:ListBuckets``, ``GET /api/v1/users``), never by a header or token.

In plain-text mode the per-call lines are shown only with ``-v``; every scan's own ``scan.log``
keeps them all, so each verdict's evidence can be traced to the calls that produced it.
"""
from __future__ import annotations

import contextlib
import logging
import sys
import time
from typing import Any, Iterator

CALLS = "attest.calls"
FIELDS = ("scan_id", "source", "scope", "call", "duration", "outcome")
_scan_id: str | None = None


def set_scan_id(scan_id: str | None) -> None:
    """The id every log record of this process carries until the next scan (one scan at a time)."""
    global _scan_id
    _scan_id = scan_id


class ScanIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "scan_id"):
            record.scan_id = _scan_id
        return True


class _Stderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a line is logged (not when set up)."""

    @property
    def stream(self) -> Any:  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def json_formatter() -> logging.Formatter:
    from pythonjsonlogger.json import JsonFormatter
    return JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                         rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                         timestamp=False)


def text_formatter() -> logging.Formatter:
    return logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


class _QuietCalls(logging.Filter):
    """On a terminal, per-call lines are noise: what failed is said once per evidence record or
    source. They stay in the bundle's scan.log and in JSON logs, and show with -v."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name != CALLS


def setup(verbose: bool = False, fmt: str = "text") -> None:
    """Configure the ``attest`` loggers for the command line."""
    handler = _Stderr()
    handler.setFormatter(json_formatter() if fmt == "json" else text_formatter())
    handler.addFilter(ScanIdFilter())
    if fmt != "json" and not verbose:
        handler.addFilter(_QuietCalls())
    root = logging.getLogger("attest")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # SDK loggers propagate to the root logger, which has no handler here, so only their warnings
    # show (collectors keep secret-bearing SDK loggers quiet themselves). werkzeug would add a
    # handler of its own and print every request the demo's servers answer.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


@contextlib.contextmanager
def api_call(source: str, scope: str, call: str) -> Iterator[dict[str, Any]]:
    """Time one API call and log it; set ``outcome`` in the yielded dict (default: ``ok``, or
    ``error`` when the block raises), and ``failed`` (an :func:`attest.calls.failed_call` entry)
    when it failed for good."""
    info: dict[str, Any] = {"outcome": "ok"}
    t0 = time.monotonic()
    try:
        yield info
    except BaseException:
        if info["outcome"] == "ok":
            info["outcome"] = "error"
        raise
    finally:
        log_call(source, scope, call, time.monotonic() - t0, info["outcome"], info.get("detail"),
                 failed=info.get("failed"))


def log_call(source: str, scope: str, call: str, duration: float, outcome: str,
             detail: str | None = None, *, failed: dict[str, Any] | None = None) -> None:
    """One line per call. ``failed``: the call failed for good; its entry for the bundle's
    failed-calls.json (:func:`attest.calls.failed_call`), given ``source`` and ``scope`` here."""
    # INFO whatever the outcome: the records a call leads to carry the warnings people read
    logger = logging.getLogger(CALLS)
    extra: dict[str, Any] = {"source": source, "scope": scope, "call": call,
                             "duration": round(duration, 4), "outcome": outcome}
    if failed is not None:
        extra["failed_call"] = {"source": source, "scope": scope, **failed}
    logger.log(logging.INFO, "%s %s %s %s %.3fs%s", source, scope, call, outcome, duration,
               f": {detail}" if detail else "", extra=extra)


def quiet_logger(name: str) -> logging.Logger:
    """A logger that says nothing anywhere, to hand to an SDK whose own lines would leak a
    secret (a webhook URL) or only repeat what ``attest.calls`` already logs."""
    quiet = logging.getLogger(name)
    quiet.setLevel(logging.CRITICAL + 10)
    quiet.propagate = False
    if not quiet.handlers:
        quiet.addHandler(logging.NullHandler())
    return quiet
