"""One HTTP layer for the SaaS collectors (AWS keeps botocore's own retry modes).

Each collector keeps its vendor's SDK for what an SDK is for (authentication, endpoints, the
request itself) and hands every request to :class:`Http` (or :class:`AsyncHttp` for an async
SDK) as a :class:`Request`: an operation name and a ``send`` function making one attempt. This
module does the rest, once for every source:

* **retries** of 429, 5xx and no answer at all, with exponential backoff and full jitter, bounded
  in attempts (each source's ``max_retries`` + 1, 10 by default; 4 when no answer comes at all)
  and in total time (tenacity); a server's ``Retry-After`` or rate-limit reset is honoured up to
  ``max_wait``, and a longer one fails the call at once; after ``outage_after`` calls in a row failed for good on a 429/5xx (a
  vendor outage, never random faults), each further call gets ``outage_attempts`` tries until
  one succeeds, so an outage costs seconds per call, not a minute;
* **pacing** from the rate-limit headers: when a response says nothing is left of the budget,
  the next call waits for the reset (bounded), so a scan does not run into 429s;
* **failure to evidence state**: 401/403 ``denied`` (naming what the credentials need), no
  answer ``unreachable``, anything else ``error``; a list that breaks after its first page is
  ``partial``, carrying the pages read;
* **pagination** by ``Link: rel="next"`` (same host only) or by a cursor the caller reads;
* **timeouts**: :data:`TIMEOUTS` is what every SDK client is built with (connect, read);
* **logs**: one line per call (``attest.logs.api_call``) with its outcome and attempts; a call
  that failed for good (or was not tried, its host having given no answer) carries its entry for
  the bundle's ``failed-calls.json`` (:mod:`attest.calls`);
* **concurrency**: a source's threads (or tasks) share one layer. Every call that starts while
  an announced pause lasts waits for it (the pause is never cleared by the first caller to wait);
  the budget of a bucket is counted under a lock as each attempt goes, so concurrent calls never
  spend more than the estimate leaves (before a bucket's first answer announces its budget
  nothing holds calls back: up to the source's ``max_workers`` may go, and a 429 then is
  retried); ``Http(max_in_flight=N)`` bounds the requests being sent at once;
* the **https-or-loopback** rule for every configured URL (:func:`https_or_loopback`).
"""
from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Awaitable, Callable, Iterable
from urllib.parse import urljoin, urlsplit

from tenacity import (AsyncRetrying, RetryCallState, Retrying, retry_if_exception_type,
                      stop_after_delay, stop_any, wait_random_exponential)

from attest.calls import failed_call
from attest.logs import log_call
from attest.model import EvidenceState
from collectors.base import https_or_loopback  # noqa: F401 (re-exported: the rule lives in base)

log = logging.getLogger("attest.collect")


@dataclass(frozen=True)
class Timeouts:
    connect: float = 5.0     # an unreachable host fails fast
    read: float = 30.0

    def pair(self) -> tuple[float, float]:
        return (self.connect, self.read)


TIMEOUTS = Timeouts()


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 10             # tries per call, the first included (each source: max_retries + 1)
    unreachable_attempts: int = 4  # tries when no answer comes at all (a dead host costs seconds)
    max_elapsed: float = 120.0     # seconds per call, waits included
    max_wait: float = 60.0         # longest single wait for a rate limit to reset
    backoff: float = 0.5           # first backoff (seconds); doubles, full jitter, at most 8 s
    statuses: frozenset[int] = frozenset({429, 500, 502, 503, 504})
    max_wait_setting: str = ""     # the config key that sets max_wait, named when it is exceeded
    # A vendor that is down costs a bounded time: after this many calls in a row failed for good
    # on a retried status (429/5xx, every try spent), each further call gets outage_attempts
    # tries, until one call succeeds. Random faults never string failed calls together.
    outage_after: int = 3
    outage_attempts: int = 2

    @classmethod
    def of(cls, config: Any, **settings: Any) -> "RetryPolicy":
        """A source's policy: its section's ``max_retries`` (:func:`collectors.base.max_retries_field`)
        plus ``settings``."""
        return cls(attempts=config.max_retries + 1, **settings)


@dataclass(frozen=True)
class RateHeaders:
    """How a vendor announces its rate limit (header names are matched case-insensitively)."""
    remaining: str = "x-ratelimit-remaining"
    reset: str = "x-ratelimit-reset"
    reset_is: str = "epoch"        # "epoch": a Unix time; "seconds": seconds from now
    limit: str = "x-ratelimit-limit"


class Unreachable(Exception):
    """No answer at all: DNS, refused connection, TLS failure, timeout. Raised by a transport."""


@dataclass
class Response:
    status: int
    headers: dict[str, str]        # lower-case names; repeated headers joined with ", "
    body: Any = None               # the parsed JSON body (None when empty or not JSON)
    text: str = ""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Request:
    """One call: ``send`` makes one attempt and returns the answer, whatever its status."""
    operation: str                                   # "GET /api/v1/users": logs and details
    send: Callable[[], Any]                          # -> Response (an awaitable for AsyncHttp)
    needs: str = ""                                  # what the credentials need, when denied
    absent: tuple[int, ...] = ()                     # statuses meaning "no such thing" (a fact)
    bucket: str = ""                                 # its rate-limit bucket (default: operation)
    # for failed-calls.json: the call as a template ("GET /api/v1/users/{id}/factors"; default:
    # operation) and the concrete path it asked for, no query (default: operation's path)
    template: str = ""
    path: str = ""


class HttpError(Exception):
    """A call that failed for good, with the evidence state it leads to."""

    def __init__(self, state: EvidenceState, detail: str, status: int | None = None,
                 response: Response | None = None) -> None:
        super().__init__(detail)
        self.state, self.detail, self.status, self.response = state, detail, status, response

    @property
    def unauthorized(self) -> bool:
        return self.status == 401


@dataclass
class Paged:
    """Every item of a paginated call, the pages read, and a failure after the first page."""
    items: list[Any] = field(default_factory=list)
    pages: int = 0
    broken: HttpError | None = None
    last: Response | None = None

    def add(self, response: Response, items: Iterable[Any]) -> None:
        """One more page read: its items, counted, and its answer kept as the last."""
        self.items.extend(items)
        self.pages += 1
        self.last = response


class _Again(Exception):
    """A retryable answer; ``wait`` is what the server asked for (seconds), if anything."""

    def __init__(self, detail: str, wait: float | None = None, response: Response | None = None,
                 status: int | None = None) -> None:
        super().__init__(detail)
        self.detail, self.wait, self.response, self.status = detail, wait, response, status


def message_of(body: Any) -> str:
    """The vendor's own error message, whatever its shape (GitHub, Okta, Datadog, Slack...)."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):   # PagerDuty's shape
        inner = body["error"]
        errors = [str(e) for e in inner.get("errors") or [] if e]
        text = "; ".join([str(inner.get("message") or "")] + errors).strip("; ")
        code = f" (code {inner['code']})" if inner.get("code") is not None else ""
        return (text + code).strip()[:300]
    if isinstance(body, dict):
        code = body.get("errorCode") or ""
        for key in ("errorSummary", "message", "error_description", "error"):
            if body.get(key):
                return f"{code} {body[key]}".strip()[:300]
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            return "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e)
                             for e in errors)[:300]
    if isinstance(body, str):
        return body[:300]
    return ""


def _numbers(value: str | None) -> list[float]:
    out = []
    for part in (value or "").split(","):
        try:
            out.append(float(part.strip()))
        except ValueError:
            continue
    return out


def _server_now(response: Response) -> float:
    date = response.header("date")
    if date:
        try:
            return parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            pass
    return time.time()


def reset_in(response: Response, rates: RateHeaders) -> float | None:
    """Seconds until the rate-limit window resets, by the server's clock; None if not said."""
    resets = _numbers(response.header(rates.reset))
    if not resets:
        return None
    reset = min(resets)
    if rates.reset_is == "seconds":
        return max(0.0, reset)
    return max(0.0, reset - _server_now(response) + 1)


def server_wait(response: Response, rates: RateHeaders) -> float | None:
    """What the server asks a client to wait before trying again (Retry-After, then the reset)."""
    retry_after = response.header("retry-after")
    if retry_after:
        values = _numbers(retry_after)
        if values:
            return max(0.0, values[0])
        try:
            return max(0.0, parsedate_to_datetime(retry_after).timestamp() - time.time())
        except (TypeError, ValueError):
            pass
    return reset_in(response, rates)


def _rate_limited(response: Response, rates: RateHeaders) -> bool:
    """429, or a 403 that is a rate limit (GitHub answers its limits with 403 too)."""
    if response.status == 429:
        return True
    if response.status == 403:
        remaining = _numbers(response.header(rates.remaining))
        return (bool(remaining) and min(remaining) == 0) or response.header("retry-after") is not None
    return False


def classify(request: Request, response: Response, policy: RetryPolicy, rates: RateHeaders,
             denied: tuple[int, ...] = (401, 403)) -> Response:
    """The one place an answer becomes a result: returns it (2xx, or an ``absent`` status), raises
    :class:`_Again` (retry) or :class:`HttpError` (a final evidence state)."""
    status = response.status
    if 200 <= status < 300 or status in request.absent:
        return response
    message = message_of(response.body) or response.text[:200]
    if _rate_limited(response, rates):
        wait = server_wait(response, rates)
        if wait is not None and wait > policy.max_wait:
            raise HttpError(EvidenceState.ERROR,
                            f"{request.operation}: rate limited ({status}); the limit resets in "
                            f"{wait:.0f}s, longer than the {policy.max_wait:g}s attest may wait"
                            + (f" ({policy.max_wait_setting})" if policy.max_wait_setting else ""),
                            status, response)
        raise _Again(f"{request.operation}: rate limited ({status})", wait, response, status)
    if status in policy.statuses:
        raise _Again(f"{request.operation}: {status} {message}".strip(), server_wait(response, rates)
                     if response.header("retry-after") else None, response, status)
    if status == 401:
        raise HttpError(EvidenceState.DENIED, f"{request.operation}: the credentials were rejected "
                        f"(401 {message})".strip(), status, response)
    if status in denied:
        needs = f"; the credentials need {request.needs}" if request.needs else ""
        raise HttpError(EvidenceState.DENIED, f"{request.operation}: {status} {message}{needs}",
                        status, response)
    if status == 404:
        needs = f"; the credentials need {request.needs}" if request.needs else ""
        raise HttpError(EvidenceState.ERROR, f"{request.operation}: 404 {message}: not found or "
                        f"not visible{needs}", status, response)
    raise HttpError(EvidenceState.ERROR, f"{request.operation}: {status} {message}".strip(),
                    status, response)


def _final(exc: BaseException, request: Request, attempts: int) -> HttpError:
    if isinstance(exc, HttpError):
        return exc
    tries = f" after {attempts} attempt{'s' if attempts != 1 else ''}"
    if isinstance(exc, Unreachable):
        return HttpError(EvidenceState.UNREACHABLE, f"{request.operation}: no answer{tries}: {exc}")
    if isinstance(exc, _Again):
        return HttpError(EvidenceState.ERROR, f"{exc.detail}{tries}", exc.status, exc.response)
    return HttpError(EvidenceState.ERROR, f"{request.operation}: {type(exc).__name__}: {exc}"[:400])


_TIMEOUT = re.compile(r"(?i)time[sd]?[ _-]?out")


def failure_entry(request: Request, error: HttpError, attempts: int,
                  status: int | str | None = None) -> dict[str, Any]:
    """``error``, the final failure of ``request`` after ``attempts`` tries, as an entry of the
    bundle's failed-calls.json: the HTTP status (``unreachable``/``timeout`` when no answer came;
    ``status`` when the caller knows better) and the vendor's own message."""
    if status is None:
        if error.status is not None:
            status = error.status
        elif error.state is EvidenceState.UNREACHABLE:
            status = "timeout" if _TIMEOUT.search(error.detail) else "unreachable"
        else:
            status = "error"
    said = ""
    if error.response is not None:
        said = message_of(error.response.body) or error.response.text[:200]
    return failed_call(call=request.template or request.operation,
                       resource=request.path or request.operation.partition(" ")[2]
                       or request.operation,
                       status=status, attempts=attempts, reason=said or error.detail,
                       state=error.state.value)


@dataclass
class _Budget:
    """What one rate-limit bucket allows: its limit per window, what is left (our estimate: the
    server's count, less what we sent since), and when the window resets (our clock)."""
    limit: float | None = None
    remaining: float | None = None
    reset_at: float | None = None


class _Base:
    def __init__(self, source: str, scope: str, *, policy: RetryPolicy = RetryPolicy(),
                 rates: RateHeaders = RateHeaders(), denied: tuple[int, ...] = (401, 403),
                 base_url: str | None = None, clock: Callable[[], float] = time.monotonic,
                 share: float = 1.0) -> None:
        self.source, self.scope, self.policy, self.rates = source, scope, policy, rates
        self.clock = clock             # for pacing (tests pass the fake server's clock)
        # the share of each window's budget this scan may use: the rest is left to the org's
        # other integrations (a budget the server announces is shared by all of them)
        self.share = share
        self._budgets: dict[str, _Budget] = {}
        self._budget_lock = threading.Lock()
        self.denied, self.base_url = denied, base_url
        self.calls = 0                 # requests sent (attempts), for benchmarks and tests
        self.waits: list[float] = []   # every wait: backoff, retry-after, pacing
        self._pause_until = 0.0        # monotonic time before which no call starts (pacing)
        self.dead: HttpError | None = None   # the host gave no answer: later calls are not tried
        self.failing = 0               # calls in a row that failed for good on a 429/5xx

    def _retrying_args(self, call: "_Call") -> dict[str, Any]:
        backoff = wait_random_exponential(multiplier=self.policy.backoff, max=8)

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            told = getattr(exc, "wait", None)
            seconds = max(told or 0.0, backoff(state))
            seconds = min(seconds, self.policy.max_wait)
            pause, until = self._pacing(call.paced_to)
            if seconds >= pause:
                call.paced_to = until     # this wait already covers the pacing one
            self.waits.append(seconds)
            return seconds
        attempts = self.policy.attempts if self.failing < self.policy.outage_after else \
            min(self.policy.attempts, self.policy.outage_attempts)

        def spent(state: RetryCallState) -> bool:
            exc = state.outcome.exception() if state.outcome else None
            limit = min(attempts, self.policy.unreachable_attempts) \
                if isinstance(exc, Unreachable) else attempts
            return state.attempt_number >= limit
        return {"stop": stop_any(spent, stop_after_delay(self.policy.max_elapsed)),
                "wait": wait, "retry": retry_if_exception_type((_Again, Unreachable)),
                "reraise": True}

    def _note(self, response: Response) -> None:
        """Pacing: nothing left of the budget -> every call that starts an attempt before the
        reset waits for it (bounded), whichever thread or task it runs in."""
        remaining = _numbers(response.header(self.rates.remaining))
        if remaining and min(remaining) <= 0:
            wait = reset_in(response, self.rates)
            if wait is not None and 0 < wait <= self.policy.max_wait:
                with self._budget_lock:
                    self._pause_until = max(self._pause_until, self.clock() + wait)

    def _check_alive(self, request: Request) -> None:
        """After a call found the host unreachable (every retry included), the source's other
        calls fail at once: one dead host costs one bounded wait, not one per call."""
        if self.dead is not None:
            raise HttpError(EvidenceState.UNREACHABLE, f"{request.operation}: not tried: "
                            f"{self.dead.detail}")

    def _failed(self, error: HttpError) -> HttpError:
        if error.state is EvidenceState.UNREACHABLE and self.dead is None:
            self.dead = error
        self._streak(failed=error.status in self.policy.statuses)
        return error

    def _streak(self, failed: bool) -> None:
        """Count the calls in a row that failed for good on a 429/5xx (a vendor outage); any
        other end of a call (an answer, a denial, an absence) ends the streak."""
        with self._budget_lock:
            before = self.failing
            self.failing = before + 1 if failed else 0
        if failed and self.failing == self.policy.outage_after:
            log.warning("%s: %d calls in a row failed for good (429/5xx, every try spent): the "
                        "vendor looks down; each further call is tried %d times until one succeeds",
                        self.scope, self.failing, self.policy.outage_attempts)
        elif not failed and before >= self.policy.outage_after:
            log.info("%s: a call succeeded again: full retries (%d tries) restored", self.scope,
                     self.policy.attempts)

    def _pacing(self, served: float = 0.0) -> tuple[float, float]:
        """(seconds until the pause the rate limit announced ends, that end); 0 seconds when
        there is no pause, or when the asking call has already waited out this very pause
        (``served``: the end of the last pause it waited for). The pause is never cleared for
        everyone: each concurrent call waits for it, and a call that has waited goes on, even
        on a clock that does not move (tests)."""
        until = self._pause_until
        if until <= served:
            return 0.0, until
        return max(0.0, until - self.clock()), until

    def _count(self) -> None:
        with self._budget_lock:
            self.calls += 1

    def _budget_wait(self, bucket: str) -> float:
        """0: a request may go now (and is counted); else seconds to wait before asking again.
        Each window keeps ``(1 - share)`` of its announced limit for others."""
        with self._budget_lock:
            b = self._budgets.setdefault(bucket, _Budget())
            now = self.clock()
            if b.reset_at is not None and now >= b.reset_at and b.limit is not None:
                b.remaining, b.reset_at = b.limit, None          # a new window
            if b.limit is None or b.remaining is None or b.reset_at is None:
                return 0.0                     # no budget or no window announced: no waiting
            fresh = b.remaining >= b.limit     # a window's first call always goes, whatever share
            if b.remaining >= 1 and (fresh or b.remaining - 1 >= b.limit * (1 - self.share)):
                b.remaining -= 1
                return 0.0
            return max(0.05, b.reset_at - now)

    def _budget_note(self, bucket: str, response: Response) -> None:
        limits = _numbers(response.header(self.rates.limit))
        remaining = _numbers(response.header(self.rates.remaining))
        if not limits or not remaining:
            return
        wait = reset_in(response, self.rates)
        with self._budget_lock:
            b = self._budgets.setdefault(bucket, _Budget())
            new_window = b.reset_at is None or (wait is not None and self.clock() + wait > b.reset_at + 1)
            b.limit = min(limits)
            b.remaining = min(remaining) if new_window or b.remaining is None else \
                min(b.remaining, min(remaining))
            if wait is not None:
                b.reset_at = self.clock() + wait

    def _log(self, request: Request, t0: float, outcome: str, attempts: int, detail: str | None,
             failed: dict[str, Any] | None = None) -> None:
        extra = f"{attempts} attempts" if attempts > 1 else None
        log_call(self.source, self.scope, request.operation, time.monotonic() - t0, outcome,
                 "; ".join(x for x in (extra, detail) if x) or None, failed=failed)

    def failed_answer(self, request: Request, error: HttpError, status: int | str | None = None,
                      attempts: int = 1) -> None:
        """Record a call whose answer came (2xx) but says it failed, e.g. a GraphQL answer with
        ``errors`` (``status``: its error type): the collector tells, as the layer cannot read
        the body's meaning."""
        self._log(request, time.monotonic(), error.state.value, attempts, error.detail,
                  failure_entry(request, error, attempts, status))

    def link_next(self, response: Response) -> str | None:
        """The ``Link: <url>; rel="next"`` target, on the same host as ``base_url`` only."""
        return self.link(response, "next")

    def link(self, response: Response, rel: str) -> str | None:
        """The ``Link: <url>; rel="<rel>"`` target, on the same host as ``base_url`` only."""
        for part in (response.header("link") or "").split(","):
            m = re.match(r'\s*<([^>]+)>\s*;(.*)', part)
            if m and re.search(rf'rel="?{re.escape(rel)}"?', m.group(2)):
                target = urljoin((self.base_url or "") + "/", m.group(1))
                if self.base_url:
                    own, there = urlsplit(self.base_url), urlsplit(target)
                    if (there.scheme, there.netloc) != (own.scheme, own.netloc):
                        raise HttpError(EvidenceState.ERROR, f"the next page is on another host "
                                        f"({there.netloc}); not followed")
                return target
        return None


class _Call:
    """The bookkeeping of one call, shared by the sync and async layers: what to wait before an
    attempt, what an answer means, and the log line at the end."""

    def __init__(self, layer: "_Base", request: Request) -> None:
        try:
            layer._check_alive(request)
        except HttpError as error:   # not tried: listed among the failed calls, 0 attempts
            layer._log(request, time.monotonic(), error.state.value, 0, error.detail,
                       failure_entry(request, error, 0))
            raise
        self.layer, self.request = layer, request
        self.t0, self.attempts = time.monotonic(), 0
        self.paced_to = 0.0        # the end of the last pacing pause this call waited out

    def before(self) -> float:
        """Seconds to wait before this attempt may go (pacing, the rate budget): 0 when it may
        go now, and then the attempt is counted. Ask again after waiting."""
        delay, until = self.layer._pacing(self.paced_to)
        if delay:
            self.layer.waits.append(delay)
            self.paced_to = until
            return delay
        delay = self.layer._budget_wait(self.request.bucket or self.request.operation)
        if delay:
            self.layer.waits.append(delay)
            return delay
        self.attempts += 1
        self.layer._count()
        return 0.0

    def after(self, response: Response) -> Response:
        self.layer._note(response)
        self.layer._budget_note(self.request.bucket or self.request.operation, response)
        return classify(self.request, response, self.layer.policy, self.layer.rates,
                        self.layer.denied)

    def failed(self, exc: Exception) -> HttpError:
        error = self.layer._failed(_final(exc, self.request, self.attempts))
        self.layer._log(self.request, self.t0, error.state.value, self.attempts, error.detail,
                        failure_entry(self.request, error, self.attempts))
        return error

    def done(self, response: Response) -> Response:
        self.layer._streak(failed=False)
        outcome = "absent" if response.status in self.request.absent else "ok"
        self.layer._log(self.request, self.t0, outcome, self.attempts, None)
        return response


def _paging(request: Request | None, next_of: Callable[[Response], Request | None],
            items_of: Callable[[Response], Iterable[Any]], max_pages: int,
            start: Paged | None = None) -> Any:
    """The paging rule, as a generator the layers drive: it yields each page's request and is
    sent its answer (or thrown its HttpError). The first page failing raises; a later one failing
    ends the list as ``broken`` (the evidence is then ``partial``). ``start``: the pages already
    read, which ``request`` (None: no more) goes on from."""
    out = start if start is not None else Paged()
    current = request
    while current is not None:
        if out.pages >= max_pages:
            out.broken = HttpError(EvidenceState.PARTIAL, f"stopped after {max_pages} pages")
            return out
        try:
            response = yield current
        except HttpError as exc:
            if out.pages == 0 or exc.unauthorized:
                raise
            out.broken = exc
            return out
        out.add(response, items_of(response))
        current = next_of(response)
    return out


class Http(_Base):
    """Synchronous calls (PyGithub, datadog-api-client, pagerduty, kubernetes), safe to share
    between threads: pacing, the rate budget and the call count are the layer's, whichever
    thread calls. ``max_in_flight``: at most that many requests are being sent at once, however
    many threads call (a collector whose reads fan out in more than one pool)."""

    def __init__(self, *args: Any, sleep: Callable[[float], None] = time.sleep,
                 max_in_flight: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sleep = sleep
        self._gate = threading.BoundedSemaphore(max_in_flight) if max_in_flight else None

    def _send(self, request: Request) -> Any:
        if self._gate is None:
            return request.send()
        with self._gate:
            return request.send()

    def call(self, request: Request) -> Response:
        call = _Call(self, request)

        def attempt() -> Response:
            while delay := call.before():
                self.sleep(delay)
            return call.after(self._send(request))
        try:
            response = Retrying(sleep=self.sleep, **self._retrying_args(call))(attempt)
        except Exception as exc:
            raise call.failed(exc) from None
        return call.done(response)

    def pages(self, request: Request | None, next_of: Callable[[Response], Request | None],
              items_of: Callable[[Response], Iterable[Any]], max_pages: int = 10_000,
              start: Paged | None = None) -> Paged:
        """Follow pages until ``next_of`` says there are no more (see :func:`_paging`)."""
        pager = _paging(request, next_of, items_of, max_pages, start)
        try:
            current = next(pager)
            while True:
                try:
                    response = self.call(current)
                except HttpError as exc:
                    current = pager.throw(exc)
                    continue
                current = pager.send(response)
        except StopIteration as finished:
            return finished.value

    def numbered_pages(self, request: Request, page: Callable[[int], Request],
                       last_of: Callable[[Response], int | None],
                       next_of: Callable[[Response], Request | None],
                       items_of: Callable[[Response], Iterable[Any]], workers: int,
                       max_pages: int = 10_000) -> Paged:
        """A list whose pages are numbered and whose first answer names the last one (GitHub's
        REST lists: ``page=N``, ``Link: rel="last"``): page 1, then pages 2 to the last side by
        side, at most ``workers`` at once, their items kept in page order; then ``next_of`` is
        followed from the last page, in case the list grew meanwhile. As :meth:`pages`: the
        first page failing raises, a later one failing ends the list there as ``broken``."""
        first = self.call(request)
        out = Paged()
        out.add(first, items_of(first))
        last = min(last_of(first) or 1, max_pages)
        if last > 1:
            pool = ThreadPoolExecutor(min(workers, last - 1), thread_name_prefix="attest-pages")
            try:
                answers = [pool.submit(self.call, page(n)) for n in range(2, last + 1)]
                for answer in answers:
                    try:
                        response = answer.result()
                    except HttpError as exc:
                        if exc.unauthorized:
                            raise
                        out.broken = exc
                        return out
                    out.add(response, items_of(response))
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
        return self.pages(next_of(out.last), next_of, items_of, max_pages, start=out)


class AsyncHttp(_Base):
    """The same, for an asyncio SDK (okta)."""

    def __init__(self, *args: Any, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sleep = sleep

    async def call(self, request: Request) -> Response:
        call = _Call(self, request)

        async def attempt() -> Response:
            while delay := call.before():
                await self.sleep(delay)
            return call.after(await request.send())
        try:
            response = await AsyncRetrying(sleep=self.sleep, **self._retrying_args(call))(attempt)
        except Exception as exc:
            raise call.failed(exc) from None
        return call.done(response)

    async def pages(self, request: Request, next_of: Callable[[Response], Request | None],
                    items_of: Callable[[Response], Iterable[Any]], max_pages: int = 10_000) -> Paged:
        pager = _paging(request, next_of, items_of, max_pages)
        try:
            current = next(pager)
            while True:
                try:
                    response = await self.call(current)
                except HttpError as exc:
                    current = pager.throw(exc)
                    continue
                current = pager.send(response)
        except StopIteration as finished:
            return finished.value
