"""The ``pagerduty`` package's REST API v2 client as attest uses it: raw GETs, one attempt each.

``pagerduty.RestApiV2Client`` (an ``httpx2.Client``) builds the ``Authorization: Token
token=...`` header, the versioned ``Accept`` header, the URL from its https-only base URL, the
``[]`` suffix of list parameters, and sends the request. Its own retry loop (429 retried without
bound, network errors three times, with real sleeps) is switched off: each ``send`` is exactly
one request, and retries, pacing by PagerDuty's ``ratelimit-*`` headers, classic
``offset``/``limit``/``more`` paging and failure states are the shared HTTP layer's
(:mod:`collectors.http`). We keep the JSON body exactly as PagerDuty sent it.
"""
from __future__ import annotations

import json
import logging
import ssl
from typing import Any, Callable
from urllib.parse import quote

from attest.logs import quiet_logger
from attest.model import EvidenceState
from collectors.http import TIMEOUTS, Http, HttpError, Paged, RateHeaders, Request, Response, Unreachable

# PagerDuty's REST rate-limit headers: ``ratelimit-reset`` is seconds until the window resets.
RATES = RateHeaders(remaining="ratelimit-remaining", reset="ratelimit-reset", reset_is="seconds",
                    limit="ratelimit-limit")
BUCKET = "REST API"          # the rate-limit bucket every call shares (one limit per key)
PAGE = 100                  # PagerDuty's largest page
ITERATION_LIMIT = 10_000    # classic pagination: offset + limit may not pass it (server-side)


def _quiet_logger() -> logging.Logger:
    """The logger handed to the client: the layer logs every call itself (attest.calls), so the
    client's own lines (each 5xx at ERROR, each request at DEBUG) would only repeat them."""
    return quiet_logger("attest.collect.pagerduty_client")


def build_client(token: str, base_url: str, ca_file: str | None = None) -> Any:
    """A ``pagerduty.RestApiV2Client`` that makes one attempt per request.

    TLS: the system's CA bundle (``SSL_CERT_FILE``/``SSL_CERT_DIR`` honoured), or ``ca_file``
    instead; certificates are always verified."""
    import httpx2
    import pagerduty

    kwargs: dict[str, Any] = {}
    if ca_file:
        kwargs["verify"] = ssl.create_default_context(cafile=ca_file)
    client = pagerduty.RestApiV2Client(token, base_url=base_url, **kwargs)
    client.timeout = httpx2.Timeout(TIMEOUTS.read, connect=TIMEOUTS.connect)
    # One attempt: a 429 is returned at once (a per-status count whose total is already spent),
    # and the first network error is raised (no reconnect loop, no sleep).
    client.retry = {429: 1}
    client.max_http_attempts = -1
    client.max_network_attempts = 0
    client.log = _quiet_logger()
    return client


def _response(raw: Any) -> Response:
    headers: dict[str, str] = {}
    for key, value in raw.headers.multi_items():
        key = key.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    text = raw.text or ""
    try:
        body = json.loads(text) if text else None
    except ValueError:
        body = None
    return Response(raw.status_code, headers, body, text)


def sdk_send(client: Any, path: str, params: dict[str, Any]) -> Response:
    """One GET through the client: its raw answer, whatever the status (no answer: Unreachable)."""
    import pagerduty
    try:
        raw = client.get(path, params=params)
    except pagerduty.HttpError as exc:      # 401 and redirects are raised, with their answer
        return _response(exc.response)
    except pagerduty.Error as exc:          # no answer: refused, DNS, TLS, timeout
        cause = exc.__cause__
        reason = f"{type(cause).__name__}: {cause}" if cause is not None else str(exc)
        raise Unreachable(reason[:300]) from None
    return _response(raw)


class PagerDutyReader:
    """GETs and classic paged lists through the client and the shared layer. ``http.calls``
    counts the requests sent."""

    def __init__(self, client: Any, http: Http) -> None:
        self.client, self.http = client, http

    def request(self, path: str, params: dict[str, Any], needs: str) -> Request:
        # one rate-limit bucket: PagerDuty counts every REST call of a key against one limit
        return Request(f"GET {_operation(path)}", lambda: sdk_send(self.client, path, params), needs,
                       path=path, bucket=BUCKET)

    def get(self, path: str, params: dict[str, Any], needs: str, key: str) -> Any:
        """One object: the body's ``key`` member (e.g. ``schedule``)."""
        body = self.http.call(self.request(path, params, needs)).body
        if not isinstance(body, dict) or key not in body:
            raise HttpError(EvidenceState.ERROR, f"GET {_operation(path)}: the answer has no "
                            f"'{key}' member")
        return body[key]

    def list(self, path: str, params: dict[str, Any], needs: str, key: str,
             keep_going: Callable[[Response], bool] = lambda response: True) -> Paged:
        """Every item of a classic paginated list (``offset``/``limit``, until ``more`` is false,
        or until ``keep_going`` says no after a page). The first page failing raises HttpError;
        a later one failing is ``broken``; PagerDuty serves at most 10,000 results by offset, so
        a longer list is ``broken`` too."""
        offset = 0

        def page(at: int) -> Request:
            return self.request(path, {**params, "limit": PAGE, "offset": at}, needs)

        def items(response: Response) -> list[Any]:
            body = response.body
            if not isinstance(body, dict) or not isinstance(body.get(key), list):
                raise HttpError(EvidenceState.ERROR, f"GET {_operation(path)}: the answer has no "
                                f"'{key}' list", response.status)
            return body[key]

        def next_of(response: Response) -> Request | None:
            nonlocal offset
            body = response.body
            if not body.get("more") or not body.get(key) or not keep_going(response):
                return None
            offset += len(body[key])
            return page(offset)

        return self.http.pages(page(0), next_of, items, max_pages=ITERATION_LIMIT // PAGE)


def segment(value: Any) -> str:
    """An id from an API answer as one URL path segment (``/`` or ``..`` cannot move the path)."""
    return quote(str(value), safe="").replace(".", "%2E")


def _operation(path: str) -> str:
    """``/schedules/PABC123`` -> ``/schedules/{id}``: logs name the endpoint, not the resource."""
    parts = path.strip("/").split("/")
    return "/" + "/".join(p if i % 2 == 0 else "{id}" for i, p in enumerate(parts))
