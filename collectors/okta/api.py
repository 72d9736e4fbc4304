"""The Okta SDK as attest uses it: a client factory and raw, paginated, rate-limit-aware GETs.

attest reads Okta through the SDK's own client (``okta.client.Client``): its request executor
adds the SSWS or OAuth 2.0 (private_key_jwt) authorization and sends the request. We keep the
raw JSON text of every response (the SDK's models drop fields), follow ``Link: rel="next"``
cursors, and pace ourselves with the ``X-Rate-Limit-*`` headers, with a bounded wait.
"""
from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Awaitable, Callable
from urllib.parse import urlencode, urlsplit

from attest.logs import api_call
from collectors.base import is_loopback

# The SDK's only switch for plain-http org URLs; it reads it from the environment when a
# Client is built. attest turns it on for loopback URLs (the local fakes) and off otherwise.
HTTPS_CHECK_ENV = "OKTA_TESTING_TESTINGDISABLEHTTPSCHECK"
_ENV_LOCK = threading.Lock()


def build_client(settings: dict[str, Any]) -> Any:
    """An ``okta.client.Client`` for ``settings`` (the SDK's ``client`` config section).

    The SDK's https check is disabled only while building a client for a loopback org URL."""
    from okta.client import Client

    with _ENV_LOCK:
        saved = os.environ.pop(HTTPS_CHECK_ENV, None)
        if is_loopback(settings["orgUrl"]):
            os.environ[HTTPS_CHECK_ENV] = "true"
        try:
            return Client(settings)
        finally:
            os.environ.pop(HTTPS_CHECK_ENV, None)
            if saved is not None:
                os.environ[HTTPS_CHECK_ENV] = saved


class OktaCallError(Exception):
    """A non-2xx answer (or no answer) from Okta, with the error body Okta sent."""

    def __init__(self, operation: str, status: int | None, body: Any, message: str = "") -> None:
        self.operation = operation
        self.status = status
        self.body = body if isinstance(body, dict) else {}
        parts = [f"HTTP {status}" if status else "no response",
                 self.body.get("errorCode") or self.body.get("error"),
                 self.body.get("errorSummary") or self.body.get("error_description")]
        self.summary = " ".join(str(p) for p in parts if p) + (f"; {message}" if message else "")
        super().__init__(f"{operation}: {self.summary}")

    @property
    def unauthorized(self) -> bool:
        return self.status == 401

    @property
    def forbidden(self) -> bool:
        return self.status == 403


@dataclass
class Listing:
    """Every item of a paginated GET, the number of pages read, and a mid-way failure if any."""
    items: list[Any] = field(default_factory=list)
    pages: int = 0
    broken: OktaCallError | None = None


@dataclass
class OktaReader:
    """Raw GETs through the SDK's request executor.

    ``max_wait`` bounds any single rate-limit wait (seconds); ``sleep`` is injectable for tests.
    """
    client: Any
    org_url: str
    max_wait: float = 60.0
    retries: int = 3
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    waits: list[float] = field(default_factory=list)

    async def get(self, path: str, params: dict[str, Any] | None = None) -> tuple[Any, Any]:
        """One GET: (parsed JSON body, aiohttp response). Raises OktaCallError when not 2xx."""
        with api_call("okta", f"okta:{urlsplit(self.org_url).netloc}", f"GET {path.split('?')[0]}") as outcome:
            try:
                return await self._get(path, params)
            except OktaCallError as exc:
                outcome.update(outcome="denied" if exc.unauthorized or exc.forbidden else "error",
                               detail=f"HTTP {exc.status}" if exc.status else str(exc)[:200])
                raise

    async def _get(self, path: str, params: dict[str, Any] | None = None) -> tuple[Any, Any]:
        url = path + ("?" + urlencode(params) if params else "")
        operation = f"GET {path}"
        executor = self.client.get_request_executor()
        for attempt in range(self.retries + 1):
            request, error = await executor.create_request("GET", url)
            if error is not None:   # OAuth: the access token could not be had
                raise OktaCallError(operation, getattr(error, "status", None),
                                    {"errorCode": getattr(error, "error_code", ""),
                                     "errorSummary": getattr(error, "error_summary", str(error))})
            _, response, text, error = await executor.fire_request(request)
            if response is None:
                raise OktaCallError(operation, None, None, f"{type(error).__name__}: {error}")
            body = _parse(text)
            if response.status == 429 and attempt < self.retries:
                await self._pause(response, operation, body)
                continue
            if not 200 <= response.status <= 299:
                raise OktaCallError(operation, response.status, body)
            if _header_min(response, "X-Rate-Limit-Remaining") == 0:
                await self._pause(response, operation, body, required=False)
            return body, response
        raise AssertionError("unreachable")  # the loop returns or raises

    async def list(self, path: str, params: dict[str, Any] | None = None) -> Listing:
        """Every page of a list endpoint, following ``Link: <...>; rel="next"`` on the org only.

        The first page failing raises; a later page failing is recorded in ``broken``."""
        out = Listing()
        url: str | None = path
        query = params
        while url is not None:
            try:
                body, response = await self.get(url, query)
            except OktaCallError as exc:
                if out.pages == 0:
                    raise
                out.broken = exc
                return out
            if not isinstance(body, list):
                raise OktaCallError(f"GET {path}", response.status, None,
                                    f"expected a JSON array, got {type(body).__name__}")
            out.items.extend(body)
            out.pages += 1
            url, query = self._next(response), None
        return out

    def _next(self, response: Any) -> str | None:
        link = response.links.get("next")
        if not link:
            return None
        target = urlsplit(str(link["url"]))
        own = urlsplit(self.org_url)
        if target.scheme and (target.scheme, target.netloc) != (own.scheme, own.netloc):
            raise OktaCallError("follow Link rel=next", response.status, None,
                                f"next page is on another host ({target.netloc}); not followed")
        return target.path + (f"?{target.query}" if target.query else "")

    async def _pause(self, response: Any, operation: str, body: Any, required: bool = True) -> None:
        """Wait until X-Rate-Limit-Reset (by the server's Date), at most ``max_wait`` seconds."""
        reset = _header_min(response, "X-Rate-Limit-Reset")
        now = _server_time(response)
        wait = max(0.0, reset - now + 1) if reset is not None else 1.0
        if wait > self.max_wait:
            if not required:
                return   # go on; a 429, if it comes, is handled then
            raise OktaCallError(operation, 429, body,
                                f"rate limited; the limit resets in {wait:.0f}s, more than the "
                                f"configured rate_limit_max_wait of {self.max_wait:g}s")
        self.waits.append(wait)
        await self.sleep(wait)


def _parse(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return {"errorSummary": text[:200]}


def _header_min(response: Any, name: str) -> float | None:
    values = []
    for value in response.headers.getall(name, []):
        try:
            values.append(float(value))
        except ValueError:
            continue
    return min(values) if values else None


def _server_time(response: Any) -> float:
    date = response.headers.get("Date")
    if date:
        try:
            return parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            pass
    return time.time()
