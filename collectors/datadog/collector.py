"""Datadog: monitors (with silences and matching downtimes), downtimes (v2), log indexes.

Uses ``datadog-api-client`` unchanged, with ``preload_content=False`` so every evidence payload
is the raw JSON body Datadog sent (the SDK models reject or drop fields the API really returns).
Each evidence record's payload is ``{"pages": [<raw body of each page>, ...]}``.

Rate limits: on 429 the collector waits ``X-RateLimit-Reset`` seconds (bounded) and retries; when
a response says ``X-RateLimit-Remaining: 0`` it waits for the reset before the next call.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterator

from pydantic import BaseModel

from attest.logs import api_call
from attest.model import Evidence, EvidenceState
from collectors.base import CollectContext
from collectors.datadog.source import (DOWNTIMES, LOG_INDEXES, MONITORS, SOURCE, Config,
                                       base_url, scope_of)

MAX_RATE_LIMIT_WAIT = 60.0   # seconds: never sleep longer than this for one 429 or reset
MAX_RATE_LIMIT_RETRIES = 5
MAX_PAGES = 10_000           # a safety stop for an API that never stops paging

NEEDS = {
    MONITORS: "an application key with the monitors_read scope",
    DOWNTIMES: "an application key with the monitors_downtime scope",
    LOG_INDEXES: "an application key with the logs_read_config scope",
}


class _Failed(Exception):
    def __init__(self, state: EvidenceState, detail: str) -> None:
        super().__init__(detail)
        self.state, self.detail = state, detail


@dataclass
class _Page:
    body: Any
    headers: dict[str, str]


def _header(headers: Any, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return value
    return None


def _once(call: Callable[[], Any]) -> Iterator[Callable[[], Any]]:
    """A single, unpaginated call (log indexes are returned all at once)."""
    yield call


def _seconds(value: str | None, default: float) -> float:
    try:
        return min(max(float(value), 0.0), MAX_RATE_LIMIT_WAIT) if value is not None else default
    except ValueError:
        return default


class DatadogCollector:
    source: ClassVar[str] = SOURCE.name
    Config: ClassVar[type[BaseModel]] = Config
    produces: ClassVar[tuple[str, ...]] = SOURCE.produces

    def __init__(self, config: Config) -> None:
        self.config = config
        self.sleep: Callable[[float], None] = time.sleep   # tests replace this to observe waits

    def _client(self) -> Any:
        from datadog_api_client import ApiClient, Configuration
        configuration = Configuration(
            host=base_url(self.config),
            api_key={"apiKeyAuth": self.config.api_key.get_secret_value(),
                     "appKeyAuth": self.config.app_key.get_secret_value()},
            preload_content=False, request_timeout=30, enable_retry=False)
        return ApiClient(configuration)

    def collect(self, ctx: CollectContext) -> Iterator[Evidence]:
        from datadog_api_client.v1.api.logs_indexes_api import LogsIndexesApi
        from datadog_api_client.v1.api.monitors_api import MonitorsApi
        from datadog_api_client.v2.api.downtimes_api import DowntimesApi

        scope = scope_of(self.config)
        size = self.config.page_size
        with self._client() as client:
            ctx.progress("datadog: monitors")
            yield self._paged(ctx, scope, MONITORS, "GET /api/v1/monitor",
                              {"with_downtimes": True, "page_size": size},
                              self._monitor_pages(MonitorsApi(client), size))
            ctx.progress("datadog: downtimes")
            yield self._paged(ctx, scope, DOWNTIMES, "GET /api/v2/downtime",
                              {"current_only": False, "page[limit]": size},
                              self._downtime_pages(DowntimesApi(client), size))
            ctx.progress("datadog: log indexes")
            yield self._paged(ctx, scope, LOG_INDEXES, "GET /api/v1/logs/config/indexes", {},
                              _once(LogsIndexesApi(client).list_log_indexes))

    # -- pagination ----------------------------------------------------------------------------

    def _monitor_pages(self, api: Any, size: int) -> Iterator[Callable[[], Any]]:
        """v1 monitors: ``page`` from 0 with ``page_size``; a short page is the last one."""
        page = 0
        while True:
            body = yield (lambda p=page: api.list_monitors(with_downtimes=True, page=p, page_size=size))
            if not isinstance(body, list) or len(body) < size:
                return
            page += 1

    def _downtime_pages(self, api: Any, size: int) -> Iterator[Callable[[], Any]]:
        """v2 downtimes: ``page[offset]``/``page[limit]`` until ``meta.page.total_filtered_count``."""
        offset = 0
        while True:
            body = yield (lambda o=offset: api.list_downtimes(current_only=False, page_offset=o,
                                                              page_limit=size))
            data = body.get("data") if isinstance(body, dict) else None
            if not data:
                return
            offset += len(data)
            total = ((body.get("meta") or {}).get("page") or {}).get("total_filtered_count")
            if (isinstance(total, int) and offset >= total) or (total is None and len(data) < size):
                return

    def _paged(self, ctx: CollectContext, scope: str, name: str, operation: str,
               params: dict[str, Any], calls: Iterator[Callable[[], Any]]) -> Evidence:
        """Run a page generator to the end; one record holding every raw page."""
        pages: list[Any] = []
        request = {"operation": operation, "params": params}
        try:
            call = next(calls)
            while len(pages) < MAX_PAGES:
                with api_call("datadog", scope, operation) as outcome:
                    try:
                        page = self._call(call)
                    except _Failed as exc:
                        outcome.update(outcome=exc.state.value, detail=exc.detail)
                        raise
                pages.append(page.body)
                call = calls.send(page.body)
            raise _Failed(EvidenceState.PARTIAL, f"stopped after {MAX_PAGES} pages")
        except StopIteration:
            pass
        except _Failed as exc:
            state, detail = exc.state, exc.detail
            if pages and state is not EvidenceState.DENIED:
                state, detail = EvidenceState.PARTIAL, f"page {len(pages) + 1} failed: {detail}"
            elif state is EvidenceState.DENIED:
                detail = f"{detail}; needs {NEEDS[name]} (and a valid API key)"
            ctx.log.warning("datadog %s (%s): %s", name, scope, detail)
            return ctx.evidence(name, scope, {"pages": pages}, state=state, detail=detail,
                                request={**request, "pages": len(pages)})
        return ctx.evidence(name, scope, {"pages": pages}, request={**request, "pages": len(pages)})

    # -- one HTTP call -------------------------------------------------------------------------

    def _call(self, call: Callable[[], Any]) -> _Page:
        """One call: raw JSON body; 429 waits for the reset and retries; errors become _Failed."""
        from datadog_api_client.exceptions import ApiException
        for _ in range(MAX_RATE_LIMIT_RETRIES + 1):
            try:
                response = call()
            except ApiException as exc:
                if exc.status == 429:
                    self.sleep(_seconds(_header(exc.headers, "X-RateLimit-Reset"), 1.0))
                    continue
                raise _Failed(*self._failure(exc)) from None
            except Exception as exc:  # connection refused, timeout, TLS: unknown, not a fact
                raise _Failed(EvidenceState.ERROR, f"{type(exc).__name__}: {exc}") from None
            try:
                body = json.loads(response.data.decode("utf-8"))
            except ValueError as exc:
                raise _Failed(EvidenceState.ERROR, f"response is not JSON: {exc}") from None
            finally:
                response.release_conn()
            headers = dict(response.headers)
            if _header(headers, "X-RateLimit-Remaining") == "0":
                self.sleep(_seconds(_header(headers, "X-RateLimit-Reset"), 0.0))
            return _Page(body, headers)
        raise _Failed(EvidenceState.ERROR,
                      f"rate limited (429) {MAX_RATE_LIMIT_RETRIES + 1} times in a row")

    @staticmethod
    def _failure(exc: Any) -> tuple[EvidenceState, str]:
        errors = exc.body.get("errors") if isinstance(exc.body, dict) else None
        text = "; ".join(str(e) for e in errors) if isinstance(errors, list) else str(exc.reason)
        detail = f"HTTP {exc.status}: {text}"[:500]
        if exc.status in (401, 403):
            return EvidenceState.DENIED, detail
        return EvidenceState.ERROR, detail
