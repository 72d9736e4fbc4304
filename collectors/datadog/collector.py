"""Datadog: monitors (with silences and matching downtimes), downtimes (v2), log indexes.

Uses ``datadog-api-client`` for authentication, hosts and the requests themselves, with
``preload_content=False`` so every evidence payload is the raw JSON body Datadog sent (the SDK
models reject or drop fields the API really returns). Each evidence record's payload is
``{"pages": [<raw body of each page>, ...]}``. The three lists are read side by side
(``max_workers``), each one's pages in order, and yielded in a fixed order. Retries, pacing from ``X-RateLimit-*`` (whose
reset is in seconds), timeouts and failure states are the shared HTTP layer's
(:mod:`collectors.http`).
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, ClassVar, Iterator

from pydantic import BaseModel

from attest.model import Evidence, EvidenceState
from collectors.base import CollectContext
from collectors.datadog.source import (DOWNTIMES, LOG_INDEXES, MONITORS, SOURCE, Config,
                                       base_url, scope_of)
from collectors.http import (TIMEOUTS, Http, HttpError, RateHeaders, Request, Response, RetryPolicy,
                             Unreachable)

RATES = RateHeaders(reset_is="seconds")   # Datadog's X-RateLimit-Reset: seconds until the reset
NEEDS = {
    MONITORS: "an application key with the monitors_read scope (and a valid API key)",
    DOWNTIMES: "an application key with the monitors_downtime scope (and a valid API key)",
    LOG_INDEXES: "an application key with the logs_read_config scope (and a valid API key)",
}


def sdk_call(call: Callable[[], Any]) -> Response:
    """One attempt through the SDK: its raw answer, whatever the status (no answer: Unreachable)."""
    from datadog_api_client.exceptions import ApiException
    try:
        raw = call()
    except ApiException as exc:
        body = exc.body
        if isinstance(body, (bytes, str)):
            try:
                body = json.loads(body)
            except ValueError:
                body = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        return Response(exc.status or 0, {k.lower(): v for k, v in (exc.headers or {}).items()},
                        body, body if isinstance(body, str) else "")
    except Exception as exc:  # connection refused, timeout, TLS: no answer
        raise Unreachable(f"{type(exc).__name__}: {exc}"[:300]) from None
    try:
        text = raw.data.decode("utf-8")
    finally:
        raw.release_conn()
    try:
        body = json.loads(text) if text else None
    except ValueError:
        body = None
    return Response(raw.status, {k.lower(): v for k, v in raw.headers.items()}, body, text)


class DatadogCollector:
    source: ClassVar[str] = SOURCE.name
    Config: ClassVar[type[BaseModel]] = Config
    produces: ClassVar[tuple[str, ...]] = SOURCE.produces

    def __init__(self, config: Config, policy: RetryPolicy | None = None,
                 **timing: Any) -> None:
        """``timing``: ``sleep`` and ``clock`` for tests that run on a fake server's clock."""
        self.config = config
        self.http = Http(SOURCE.name, scope_of(config),
                         policy=policy or RetryPolicy.of(config), rates=RATES,
                         base_url=base_url(config), **timing)

    def _client(self) -> Any:
        from datadog_api_client import ApiClient, Configuration
        configuration = Configuration(
            host=base_url(self.config),
            api_key={"apiKeyAuth": self.config.api_key.get_secret_value(),
                     "appKeyAuth": self.config.app_key.get_secret_value()},
            preload_content=False, request_timeout=TIMEOUTS.pair(), enable_retry=False)
        return ApiClient(configuration)

    def collect(self, ctx: CollectContext) -> Iterator[Evidence]:
        from datadog_api_client.v1.api.logs_indexes_api import LogsIndexesApi
        from datadog_api_client.v1.api.monitors_api import MonitorsApi
        from datadog_api_client.v2.api.downtimes_api import DowntimesApi

        size = self.config.page_size
        with self._client() as client:
            monitors, downtimes = MonitorsApi(client), DowntimesApi(client)

            def monitor_page(page: int) -> Request:
                return Request("GET /api/v1/monitor", lambda: sdk_call(
                    lambda: monitors.list_monitors(with_downtimes=True, page=page, page_size=size)),
                    NEEDS[MONITORS])

            page = 0

            def next_monitors(response: Response) -> Request | None:
                nonlocal page
                if not isinstance(response.body, list) or len(response.body) < size:
                    return None   # a short page is the last one
                page += 1
                return monitor_page(page)

            def downtime_page(offset: int) -> Request:
                return Request("GET /api/v2/downtime", lambda: sdk_call(
                    lambda: downtimes.list_downtimes(current_only=False, page_offset=offset,
                                                     page_limit=size)), NEEDS[DOWNTIMES])

            seen = 0

            def next_downtimes(response: Response) -> Request | None:
                nonlocal seen
                body = response.body if isinstance(response.body, dict) else {}
                data = body.get("data") or []
                if not data:
                    return None
                seen += len(data)
                total = ((body.get("meta") or {}).get("page") or {}).get("total_filtered_count")
                if (isinstance(total, int) and seen >= total) or (total is None and len(data) < size):
                    return None
                return downtime_page(seen)

            scope = self.http.scope
            indexes = LogsIndexesApi(client)
            reads: dict[str, Callable[[], Evidence]] = {
                MONITORS: lambda: self._paged(
                    ctx, MONITORS, {"with_downtimes": True, "page_size": size}, monitor_page(0),
                    next_monitors),
                DOWNTIMES: lambda: self._paged(
                    ctx, DOWNTIMES, {"current_only": False, "page[limit]": size},
                    downtime_page(0), next_downtimes),
                LOG_INDEXES: lambda: self._paged(ctx, LOG_INDEXES, {}, Request(
                    "GET /api/v1/logs/config/indexes", lambda: sdk_call(indexes.list_log_indexes),
                    NEEDS[LOG_INDEXES]), lambda r: None),
            }
            ctx.progress("datadog: monitors, downtimes, log indexes")
            # the three lists are independent: read side by side (each one's pages in order),
            # yielded in a fixed order; the HTTP layer paces them to the rate limit
            with ThreadPoolExecutor(min(self.config.max_workers, len(reads)),
                                    thread_name_prefix="attest-datadog") as pool:
                futures = {name: pool.submit(ctx.guarded, name, scope, read)
                           for name, read in reads.items()}
                for name in self.produces:
                    yield futures[name].result()

    def _paged(self, ctx: CollectContext, name: str, params: dict[str, Any], first: Request,
               next_of: Callable[[Response], Request | None]) -> Evidence:
        """Every page of one list, as one record holding every raw page."""
        scope = self.http.scope
        request = {"operation": first.operation, "params": params}
        try:
            paged = self.http.pages(first, next_of, lambda r: [r.body])
        except HttpError as exc:
            return ctx.evidence(name, scope, {"pages": []}, state=exc.state, detail=exc.detail,
                                request={**request, "pages": 0})
        request["pages"] = paged.pages
        if paged.broken is not None:
            return ctx.evidence(name, scope, {"pages": paged.items}, state=EvidenceState.PARTIAL,
                                detail=f"page {paged.pages + 1} failed: {paged.broken.detail}",
                                request=request)
        return ctx.evidence(name, scope, {"pages": paged.items}, request=request)
