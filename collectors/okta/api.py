"""The Okta SDK as attest uses it: a client factory and raw, paginated GETs.

attest reads Okta through the SDK's own request executor (``okta.request_executor``, set up as
``okta.client.Client`` sets it up): it adds the SSWS or OAuth 2.0 (private_key_jwt)
authorization and sends the request. We keep the
raw JSON text of every response (the SDK's models drop fields); retries, pacing by the
``X-Rate-Limit-*`` headers, ``Link: rel="next"`` paging and failure states are the shared HTTP
layer's (:mod:`collectors.http`).
"""
from __future__ import annotations

import json
import os
import re
import threading
from typing import Any, Callable
from urllib.parse import urlencode, urlsplit

from attest.model import EvidenceState
from collectors.base import is_loopback
from collectors.http import AsyncHttp, HttpError, Paged, RateHeaders, Request, Response, Unreachable

# The SDK's only switch for plain-http org URLs; it reads it from the environment when a
# Client is built. attest turns it on for loopback URLs (the local fakes) and off otherwise.
HTTPS_CHECK_ENV = "OKTA_TESTING_TESTINGDISABLEHTTPSCHECK"
_ENV_LOCK = threading.Lock()


def build_client(settings: dict[str, Any]) -> "SdkClient":
    """The SDK's request executor for ``settings`` (the SDK's ``client`` config section), set up
    the way ``okta.client.Client`` sets it up (its config loading and validation, no cache).

    ``okta.client.Client`` itself is not built: importing it loads every API class and model of
    the SDK (about 50 MB more resident memory) for the one thing attest uses, the executor. The
    SDK's https check is disabled only while validating a loopback org URL (the local fakes)."""
    from okta.cache.no_op_cache import NoOpCache
    from okta.config.config_setter import ConfigSetter
    from okta.config.config_validator import ConfigValidator
    from okta.request_executor import RequestExecutor

    with _ENV_LOCK:
        saved = os.environ.pop(HTTPS_CHECK_ENV, None)
        if is_loopback(settings["orgUrl"]):
            os.environ[HTTPS_CHECK_ENV] = "true"
        try:
            setter = ConfigSetter()
            setter._apply_config({"client": settings})
            config = setter._prune_config(setter.get_config())
            ConfigValidator(config)
        finally:
            os.environ.pop(HTTPS_CHECK_ENV, None)
            if saved is not None:
                os.environ[HTTPS_CHECK_ENV] = saved
    # As the SDK's client does: its logger stays off (its debug lines carry the Authorization
    # header and the OAuth client assertion).
    import logging
    logging.getLogger("okta-sdk-python").disabled = True
    return SdkClient(RequestExecutor(config, NoOpCache(), None))


class SdkClient:
    """What attest uses of ``okta.client.Client``: the request executor, and an aiohttp session
    for the time of a scan (``async with``), as the SDK's client opens one."""

    def __init__(self, executor: Any) -> None:
        self._executor = executor
        self._session: Any = None

    def get_request_executor(self) -> Any:
        return self._executor

    async def __aenter__(self) -> "SdkClient":
        import aiohttp
        self._session = aiohttp.ClientSession()
        self._executor.set_session(self._session)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._session.close()


_OKTA_ID = re.compile(r"/(?:0[0-9a-z]{2}|[0-9a-z]{3})[0-9A-Za-z]{17}(?=/|$)")
RATES = RateHeaders(remaining="x-rate-limit-remaining", reset="x-rate-limit-reset",
                    reset_is="epoch", limit="x-rate-limit-limit")


class OktaReader:
    """Raw GETs through the SDK's request executor (its SSWS or OAuth authorization), with the
    shared HTTP layer's retries, pacing, paging and failure states. ``http.calls``/``http.waits``
    tell how many requests it sent and how long it waited."""

    def __init__(self, client: Any, org_url: str, http: AsyncHttp) -> None:
        self.client, self.org_url, self.http = client, org_url, http

    def request(self, path_or_url: str, params: dict[str, Any] | None = None, needs: str = "") -> Request:
        url = path_or_url + ("?" + urlencode(params) if params else "")
        path = urlsplit(path_or_url).path
        executor = self.client.get_request_executor()

        async def send() -> Response:
            request, error = await executor.create_request("GET", url)
            if error is not None:   # OAuth: the access token could not be had
                status = getattr(error, "status", None)
                body = {"errorCode": getattr(error, "error_code", ""),
                        "errorSummary": getattr(error, "error_summary", str(error))}
                if status:
                    return Response(int(status), {}, body, "")
                raise Unreachable(f"access token: {body['errorSummary']}")
            _, response, text, error = await executor.fire_request(request)
            if response is None:
                raise Unreachable(f"{type(error).__name__}: {error}")
            headers: dict[str, str] = {}
            for key, value in response.headers.items():
                headers[key.lower()] = f"{headers[key.lower()]}, {value}" if key.lower() in headers else value
            return Response(response.status, headers, _parse(text), text or "")
        # Okta counts its limits per endpoint: one user's factors share a bucket with every other's
        template = "GET " + _OKTA_ID.sub("/{id}", path)
        return Request(f"GET {path}", send, needs, bucket=template, template=template, path=path)

    async def get(self, path: str, params: dict[str, Any] | None = None, needs: str = "") -> Any:
        return (await self.http.call(self.request(path, params, needs))).body

    async def list(self, path: str, params: dict[str, Any] | None = None, needs: str = "",
                   keep: Callable[[list[Any]], list[Any]] | None = None) -> Paged:
        """Every page of a list endpoint, following ``Link: <...>; rel="next"`` on the org only.
        The first page failing raises HttpError; a later one failing is ``broken``. ``keep``:
        what of each page's items is kept (called once per page, as it arrives)."""
        def items(response: Response) -> list[Any]:
            if not isinstance(response.body, list):
                raise HttpError(EvidenceState.ERROR, f"GET {path}: expected a JSON array, got "
                                f"{type(response.body).__name__}", response.status)
            return response.body if keep is None else keep(response.body)

        def next_of(response: Response) -> Request | None:
            target = self.http.link_next(response)
            return self.request(target, None, needs) if target else None
        return await self.http.pages(self.request(path, params, needs), next_of, items)


def _parse(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return {"errorSummary": text[:200]}
