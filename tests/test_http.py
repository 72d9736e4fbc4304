"""The shared HTTP layer, over real HTTP to a local server with a fault schedule."""
from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from typing import Any, Iterator

import pytest
import requests
from werkzeug.wrappers import Request as WsgiRequest, Response as WsgiResponse

from attest.demo.http import LocalServer
from attest.model import EvidenceState
from collectors.http import (AsyncHttp, Http, HttpError, RateHeaders, Request, Response, RetryPolicy,
                             Unreachable, https_or_loopback)
from tests.clocks import FakeClock


class Server:
    """Answers each request with the next (status, headers, body) of ``script`` (the last one
    repeats); records the paths it was asked."""

    def __init__(self) -> None:
        self.script: list[tuple[int, dict[str, str], Any]] = [(200, {}, {"ok": True})]
        self.paths: list[str] = []
        self.server = LocalServer(self.app)
        self.url = self.server.start()

    def app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = WsgiRequest(environ)
        self.paths.append(request.full_path.rstrip("?"))
        status, headers, body = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        return WsgiResponse(json.dumps(body), status, {"Content-Type": "application/json", **headers})(
            environ, start_response)


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    yield srv
    srv.server.stop()


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def get(url: str, operation: str = "GET /x", needs: str = "", absent: tuple[int, ...] = ()) -> Request:
    def send() -> Response:
        try:
            r = requests.get(url, timeout=(2, 5))
        except requests.RequestException as exc:
            raise Unreachable(str(exc)) from None
        return Response(r.status_code, {k.lower(): v for k, v in r.headers.items()},
                        r.json() if r.content else None, r.text)
    return Request(operation, send, needs, absent)


def http(sleeps: Sleeps, **policy: Any) -> Http:
    return Http("test", "test:here", sleep=sleeps, policy=RetryPolicy(**policy))


def test_a_5xx_is_retried_with_backoff_then_succeeds(server: Server) -> None:
    server.script = [(500, {}, {"message": "boom"}), (503, {}, {}), (200, {}, {"ok": 1})]
    sleeps = Sleeps()
    h = http(sleeps)
    assert h.call(get(server.url + "/x")).body == {"ok": 1}
    assert h.calls == 3 and len(sleeps) == 2 and all(0 <= s <= 8 for s in sleeps)


def test_a_persistent_5xx_is_an_error_after_the_allowed_attempts(server: Server) -> None:
    server.script = [(502, {}, {"message": "bad gateway"})]
    sleeps = Sleeps()
    with pytest.raises(HttpError) as failed:
        http(sleeps, attempts=3).call(get(server.url + "/x"))
    assert failed.value.state is EvidenceState.ERROR
    assert failed.value.detail == "GET /x: 502 bad gateway after 3 attempts"
    assert len(server.paths) == 3


def test_429_waits_what_the_server_says(server: Server) -> None:
    server.script = [(429, {"Retry-After": "7"}, {}), (200, {}, {})]
    sleeps = Sleeps()
    http(sleeps).call(get(server.url + "/x"))
    assert sleeps == [7.0]


def test_a_rate_limit_longer_than_allowed_fails_at_once_naming_the_setting(server: Server) -> None:
    server.script = [(429, {"Retry-After": "900"}, {})]
    sleeps = Sleeps()
    with pytest.raises(HttpError) as failed:
        http(sleeps, max_wait=60, max_wait_setting="vendor.max_wait").call(get(server.url + "/x"))
    assert sleeps == [] and len(server.paths) == 1
    assert "resets in 900s, longer than the 60s attest may wait (vendor.max_wait)" in failed.value.detail


def test_a_403_that_is_a_rate_limit_is_waited_out_but_a_real_403_is_denied(server: Server) -> None:
    server.script = [(403, {"x-ratelimit-remaining": "0", "Retry-After": "1"}, {"message": "API rate limit"}),
                     (200, {}, {})]
    sleeps = Sleeps()
    http(sleeps).call(get(server.url + "/x"))
    assert sleeps == [1.0]
    server.script = [(403, {}, {"message": "Resource not accessible"})]
    with pytest.raises(HttpError) as failed:
        http(sleeps).call(get(server.url + "/x", needs="Administration: read"))
    assert failed.value.state is EvidenceState.DENIED
    assert failed.value.detail == ("GET /x: 403 Resource not accessible; the credentials need "
                                   "Administration: read")
    server.script = [(401, {}, {"errorCode": "E0000011", "errorSummary": "Invalid token"})]
    with pytest.raises(HttpError) as failed:
        http(sleeps).call(get(server.url + "/x"))
    assert failed.value.unauthorized and "401 E0000011 Invalid token" in failed.value.detail


def test_an_exhausted_budget_paces_the_next_call(server: Server) -> None:
    server.script = [(200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1000000000"}, {}),
                     (200, {}, {})]
    sleeps = Sleeps()
    h = Http("test", "s", sleep=sleeps, clock=lambda: 1000.0, rates=RateHeaders(reset_is="seconds"))
    server.script[0] = (200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "12"}, {})
    h.call(get(server.url + "/a"))
    h.call(get(server.url + "/b"))
    assert sleeps == [12.0]


def test_no_answer_is_unreachable_and_the_source_stops_trying() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        sleeps = Sleeps()
        h = http(sleeps, attempts=3)
        with pytest.raises(HttpError) as first:
            h.call(get(url + "/a", "GET /a"))
        assert first.value.state is EvidenceState.UNREACHABLE
        assert first.value.detail.startswith("GET /a: no answer after 3 attempts")
        assert h.calls == 3
        with pytest.raises(HttpError) as second:
            h.call(get(url + "/b", "GET /b"))
        assert second.value.state is EvidenceState.UNREACHABLE and h.calls == 3
        assert second.value.detail.startswith("GET /b: not tried: GET /a: no answer")
    finally:
        sock.close()


def test_pages_follow_link_on_the_same_host_and_a_later_failure_is_kept(server: Server) -> None:
    base = server.url
    server.script = [(200, {"Link": f'<{base}/x?page=2>; rel="next"'}, [1, 2]),
                     (200, {"Link": f'<{base}/x?page=3>; rel="next", <{base}/x?page=1>; rel="first"'}, [3]),
                     (500, {}, {})]
    sleeps = Sleeps()
    h = Http("test", "s", sleep=sleeps, base_url=base, policy=RetryPolicy(attempts=2))
    paged = h.pages(get(base + "/x"), lambda r: get(h.link_next(r)) if h.link_next(r) else None,
                    lambda r: r.body)
    assert paged.items == [1, 2, 3] and paged.pages == 2
    assert paged.broken is not None and paged.broken.state is EvidenceState.ERROR
    server.script = [(200, {"Link": '<https://evil.example/x?page=2>; rel="next"'}, [1])]
    with pytest.raises(HttpError, match="another host"):
        h.pages(get(base + "/x"), lambda r: get(h.link_next(r)) if h.link_next(r) else None,
                lambda r: r.body)


class NumberedList:
    """A list paged by number as GitHub's REST lists are (``page``, ``per_page``; ``Link`` with
    rel="next" and rel="last"), over real HTTP: ``fail`` pages answer with that status;
    ``grow_after_first`` items are added once page 1 was served. Counts requests in flight."""

    def __init__(self, count: int, per_page: int = 2) -> None:
        self.items, self.per_page = list(range(count)), per_page
        self.fail: dict[int, int] = {}
        self.grow_after_first = 0
        self.served: list[int] = []
        self.in_flight = self.most_in_flight = 0
        self.lock = threading.Lock()
        self.server = LocalServer(self.app)
        self.url = self.server.start()

    def app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = WsgiRequest(environ)
        page = int(request.args.get("page", 1))
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(0.05)   # long enough for pages sent side by side to overlap
        with self.lock:
            self.in_flight -= 1
            self.served.append(page)
            if page == 1 and self.grow_after_first:
                self.items += range(len(self.items), len(self.items) + self.grow_after_first)
                self.grow_after_first = 0
        if page in self.fail:
            return WsgiResponse("{}", self.fail[page])(environ, start_response)
        n = self.per_page
        last = max(1, -(-len(self.items) // n))
        links = [f'<{self.url}/x?page={last}>; rel="last"']
        if page < last:
            links.insert(0, f'<{self.url}/x?page={page + 1}>; rel="next"')
        return WsgiResponse(json.dumps(self.items[(page - 1) * n: page * n]), 200,
                            {"Content-Type": "application/json", "Link": ", ".join(links)})(
            environ, start_response)

    def read(self, workers: int = 4, max_pages: int = 10_000) -> Any:
        h = Http("test", "s", sleep=Sleeps(), base_url=self.url, policy=RetryPolicy(attempts=1))

        def last_of(r: Response) -> int | None:
            target = h.link(r, "last")
            return int(target.rsplit("=", 1)[1]) if target else None
        return h.numbered_pages(
            get(self.url + "/x"), lambda n: get(f"{self.url}/x?page={n}"), last_of,
            lambda r: get(h.link_next(r)) if h.link_next(r) else None, lambda r: r.body,
            workers=workers, max_pages=max_pages)


@pytest.fixture
def numbered() -> Iterator[NumberedList]:
    srv = NumberedList(9)
    yield srv
    srv.server.stop()


def test_numbered_pages_are_read_side_by_side_and_kept_in_page_order(numbered: NumberedList) -> None:
    paged = numbered.read(workers=3)
    assert paged.items == list(range(9)) and paged.pages == 5 and paged.broken is None
    assert numbered.served[0] == 1 and sorted(numbered.served) == [1, 2, 3, 4, 5]
    assert numbered.most_in_flight == 3      # pages 2-5, three at once: the bound holds
    numbered.served.clear()
    numbered.most_in_flight = 0
    assert numbered.read(workers=1).items == list(range(9))
    assert numbered.served == [1, 2, 3, 4, 5] and numbered.most_in_flight == 1


def test_numbered_pages_a_later_failure_ends_the_list_there_the_first_raises(
        numbered: NumberedList) -> None:
    numbered.fail = {4: 500}
    paged = numbered.read()
    assert paged.items == [0, 1, 2, 3, 4, 5] and paged.pages == 3   # pages 1-3, then broken
    assert paged.broken is not None and paged.broken.state is EvidenceState.ERROR
    numbered.fail = {2: 401}    # bad credentials anywhere are never a partial list
    with pytest.raises(HttpError) as caught:
        numbered.read()
    assert caught.value.unauthorized
    numbered.fail = {1: 403}
    with pytest.raises(HttpError):
        numbered.read()


def test_numbered_pages_follow_next_past_the_last_page_named_first(numbered: NumberedList) -> None:
    numbered.grow_after_first = 4     # the list grew while it was read: 13 items, 7 pages
    paged = numbered.read()
    assert paged.items == list(range(13)) and paged.pages == 7 and paged.broken is None
    numbered.items, numbered.grow_after_first = list(range(9)), 0
    capped = numbered.read(max_pages=3)
    assert capped.items == list(range(6)) and capped.pages == 3
    assert capped.broken is not None and "stopped after 3 pages" in capped.broken.detail


def test_absent_statuses_are_facts_not_failures(server: Server) -> None:
    server.script = [(404, {}, {"message": "Not Found"})]
    response = http(Sleeps()).call(get(server.url + "/x", absent=(404,)))
    assert response.status == 404
    with pytest.raises(HttpError) as failed:
        http(Sleeps()).call(get(server.url + "/x", needs="Metadata: read"))
    assert failed.value.state is EvidenceState.ERROR and "not found or not visible" in failed.value.detail


def test_the_async_layer_behaves_the_same(server: Server) -> None:
    server.script = [(503, {}, {}), (200, {}, {"ok": True})]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async def main() -> Any:
        h = AsyncHttp("test", "s", sleep=sleep)
        request = get(server.url + "/x")
        sync_send = request.send

        async def send() -> Response:
            return await asyncio.to_thread(sync_send)
        return (await h.call(Request(request.operation, send))).body, h.calls
    body, calls = asyncio.run(main())
    assert body == {"ok": True} and calls == 2 and len(waits) == 1


@pytest.mark.parametrize("url,ok", [("https://api.example.com/", True), ("http://127.0.0.1:8080", True),
                                    ("http://localhost:1", True), ("http://[::1]:9", True),
                                    ("http://127.0.0.1.example.com", False), ("http://example.com", False),
                                    ("ftp://example.com", False), ("example.com", False)])
def test_https_or_loopback(url: str, ok: bool) -> None:
    if ok:
        assert https_or_loopback(url, "base_url") == url.rstrip("/")
    else:
        with pytest.raises(ValueError):
            https_or_loopback(url, "base_url")


def test_a_share_of_the_announced_budget_is_left_to_others(server: Server) -> None:
    """limit 10 a window, share 0.5: once the server says 5 are left, the layer waits for the
    window to reset instead of using the others' half (no 429 ever comes into it)."""
    script = [(200, {"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": str(9 - i),
                     "X-RateLimit-Reset": "60"}, {"i": i}) for i in range(5)]
    script += [(200, {"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "9",
                      "X-RateLimit-Reset": "60"}, {"i": 5}), (200, {}, {"i": 6})]
    server.script = script
    clock = FakeClock()
    sleeps = clock.waits
    h = Http("test", "s", sleep=clock.sleep, clock=clock, share=0.5,
             rates=RateHeaders(reset_is="seconds"))
    sent_at = []
    for i in range(7):
        h.call(get(server.url + f"/x{i}", "GET /x", ))
        sent_at.append(clock())
    assert sent_at[:5] == [1000.0] * 5          # the first five go at once
    assert sleeps and abs(sum(sleeps) - 60) < 1  # then one wait for the window's reset
    assert sent_at[5] >= 1059
    # buckets are per endpoint: another operation has a budget of its own
    assert h._budget_wait("GET /other") == 0.0


def test_a_tiny_budget_still_lets_one_call_a_window_go(server: Server) -> None:
    """limit 1 and share 0.5 (half a call): each window's first call goes, after waiting for the
    window, instead of the layer waiting for ever; and with no reset announced nobody waits."""
    server.script = [(200, {"X-RateLimit-Limit": "1", "X-RateLimit-Remaining": "0",
                            "X-RateLimit-Reset": "30"}, {"i": i}) for i in range(3)]
    server.script += [(200, {"X-RateLimit-Limit": "1", "X-RateLimit-Remaining": "0"}, {"i": i})
                      for i in range(3, 6)]
    clock = FakeClock()
    sleeps = clock.waits
    h = Http("test", "s", sleep=clock.sleep, clock=clock, share=0.5,
             rates=RateHeaders(reset_is="seconds"))
    for i in range(3):
        h.call(get(server.url + f"/x{i}", "GET /x"))
    assert sleeps == [30.0, 30.0]                 # one call a window
    h2 = Http("test", "s", sleep=clock.sleep, clock=clock, share=0.5,
              rates=RateHeaders(reset_is="seconds"))
    sleeps.clear()
    for i in range(3, 6):
        h2.call(get(server.url + f"/y{i}", "GET /y"))
    assert sleeps == []                           # no window announced: nothing to wait for


# --- the calls that failed for good: the entries of the bundle's failed-calls.json ------------

def failed_calls(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The ``failed_call`` fields of the attest.calls lines logged so far."""
    return [r.failed_call for r in caplog.records if hasattr(r, "failed_call")]


def test_a_call_that_failed_for_good_is_one_entry_naming_call_status_attempts_and_reason(
        server: Server, caplog: pytest.LogCaptureFixture) -> None:
    from attest.calls import reading
    caplog.set_level("INFO", logger="attest.calls")
    server.script = [(502, {}, {"message": "bad gateway"})]
    request = get(server.url + "/api/v1/users/00u1/factors?after=s3cr3t-cursor", "GET /api/v1/users/00u1/factors")
    request.template, request.path = "GET /api/v1/users/{id}/factors", "/api/v1/users/00u1/factors?after=x"
    with reading("okta.factors"), pytest.raises(HttpError):
        http(Sleeps(), attempts=3).call(request)
    (entry,) = failed_calls(caplog)
    at = entry.pop("at")
    assert at.endswith("Z") and at[:2] == "20"
    assert entry == {"source": "test", "scope": "test:here", "call": "GET /api/v1/users/{id}/factors",
                     "resource": "/api/v1/users/00u1/factors", "status": 502, "attempts": 3,
                     "reason": "bad gateway", "state": "error", "evidence": "okta.factors"}


def test_calls_that_answer_or_are_absent_are_not_failures(server: Server,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="attest.calls")
    server.script = [(503, {}, {}), (200, {}, {"ok": True})]    # succeeded after a retry
    http(Sleeps()).call(get(server.url + "/x"))
    server.script = [(404, {}, {"message": "Not Found"})]      # a fact: no such thing
    http(Sleeps()).call(get(server.url + "/x", absent=(404,)))
    assert failed_calls(caplog) == []
    server.script = [(403, {}, {"message": "Resource not accessible by integration"})]
    with pytest.raises(HttpError):
        http(Sleeps()).call(get(server.url + "/x", needs="Members: read"))
    (denied,) = failed_calls(caplog)
    assert (denied["status"], denied["attempts"], denied["state"], denied["evidence"]) == \
        (403, 1, "denied", None)
    assert denied["reason"] == "Resource not accessible by integration"


def test_no_answer_is_listed_and_so_is_every_call_then_not_tried(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="attest.calls")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        h = http(Sleeps(), attempts=2)
        for path in ("/a", "/b"):
            with pytest.raises(HttpError):
                h.call(get(url + path, f"GET {path}"))
    finally:
        sock.close()
    first, second = failed_calls(caplog)
    assert (first["call"], first["status"], first["attempts"], first["state"]) == \
        ("GET /a", "unreachable", 2, "unreachable")
    assert (second["call"], second["status"], second["attempts"]) == ("GET /b", "unreachable", 0)
    assert second["reason"].startswith("GET /b: not tried: GET /a: no answer")


def test_a_vendor_message_never_carries_a_secret_or_a_query_into_an_entry(
        server: Server, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="attest.calls")
    server.script = [(400, {}, {"message": "bad request: Authorization: Bearer eyJhbGciOi.eyJzdWIi.c2ln "
                                           "token=ghp_0123456789abcdef from /x?api_key=k3y&page=2"})]
    with pytest.raises(HttpError):
        http(Sleeps()).call(get(server.url + "/x"))
    (entry,) = failed_calls(caplog)
    for secret in ("eyJhbGciOi", "ghp_0123456789abcdef", "k3y"):
        assert secret not in json.dumps(entry)
    assert "[redacted]" in entry["reason"] and "?[query removed]" in entry["reason"]


def test_the_async_layer_names_the_evidence_of_each_task(server: Server,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    from attest.calls import reading
    caplog.set_level("INFO", logger="attest.calls")
    server.script = [(500, {}, {"message": "down"})]

    async def sleep(seconds: float) -> None:
        pass

    async def main() -> None:
        h = AsyncHttp("test", "s", sleep=sleep, policy=RetryPolicy(attempts=2))

        async def one(n: int) -> None:
            request = get(server.url + f"/u/{n}", f"GET /u/{n}")
            sync_send = request.send

            async def send() -> Response:
                return await asyncio.to_thread(sync_send)
            with pytest.raises(HttpError):
                await h.call(Request(request.operation, send, template="GET /u/{id}"))
        with reading("okta.factors"):
            await asyncio.gather(one(1), one(2))
    asyncio.run(main())
    entries = failed_calls(caplog)
    assert sorted(e["resource"] for e in entries) == ["/u/1", "/u/2"]
    assert {(e["call"], e["evidence"], e["attempts"], e["status"]) for e in entries} == \
        {("GET /u/{id}", "okta.factors", 2, 500)}


# -- one layer shared by a source's threads ------------------------------------------------------

def _at_once(n: int, call: Any) -> list[Any]:
    """``call(i)`` in ``n`` threads released together; their results (or exceptions) in order."""
    barrier = threading.Barrier(n)
    out: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = call(i)
        except Exception as exc:  # noqa: BLE001 - handed back to the test
            out[i] = exc
    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return out


def test_an_announced_pause_holds_every_concurrent_call_not_only_the_first(server: Server) -> None:
    """The budget is spent (remaining 0, reset in 12 s, no limit announced, so only pacing can
    hold calls back): each of three threads calling next waits for the reset. (The first caller
    to wait used to clear the pause for everyone, so the other two went at once into a 429.)"""
    server.script = [(200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "12"}, {}),
                     (200, {}, {})]
    sleeps = Sleeps()
    h = Http("test", "s", sleep=sleeps, clock=lambda: 1000.0, rates=RateHeaders(reset_is="seconds"))
    h.call(get(server.url + "/a"))
    results = _at_once(3, lambda i: h.call(get(server.url + f"/b{i}")).status)
    assert results == [200, 200, 200]
    assert sleeps == [12.0, 12.0, 12.0]
    assert h.calls == 4


def test_concurrent_calls_never_spend_more_than_the_budget_left(server: Server) -> None:
    """limit 10, 4 left in this window: of 8 threads calling at once, exactly 4 go now and the
    other 4 wait for the window's reset (the budget is counted under a lock as each goes)."""
    server.script = [(200, {"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "4",
                            "X-RateLimit-Reset": "60"}, {}), (200, {}, {})]
    clock = FakeClock()
    lock = threading.Lock()

    def sleep(seconds: float) -> None:     # a wait takes real time too: every thread decides
        time.sleep(0.3)                    # whether it may go before any wait moves the clock
        with lock:
            clock.sleep(seconds)
    h = Http("test", "s", sleep=sleep, clock=clock, rates=RateHeaders(reset_is="seconds"))
    h.call(get(server.url + "/first", "GET /x"))
    results = _at_once(8, lambda i: h.call(get(server.url + f"/x{i}", "GET /x")).status)
    assert results == [200] * 8
    assert sorted(clock.waits) == [60.0] * 4
    assert h.calls == 9 and len(server.paths) == 9


def test_max_in_flight_bounds_the_requests_sent_at_once(server: Server) -> None:
    server.server.latency = 0.1
    h = Http("test", "s", sleep=Sleeps(), max_in_flight=2)
    results = _at_once(6, lambda i: h.call(get(server.url + f"/x{i}")).status)
    assert results == [200] * 6
    assert server.server.log.most_in_flight == 2
    unbounded = Http("test", "s", sleep=Sleeps())
    server.server.log.clear()
    _at_once(6, lambda i: unbounded.call(get(server.url + f"/y{i}")).status)
    assert server.server.log.most_in_flight > 2


def test_a_vendor_that_looks_down_costs_two_tries_a_call_until_one_succeeds(
        server: Server, caplog: pytest.LogCaptureFixture) -> None:
    """Random faults never string calls that failed for good together (each needs every one of
    its 10 tries to fail); an outage does. After 3 calls in a row failed for good on a 5xx, each
    further call gets 2 tries (an outage costs seconds a call, not a minute of backoff), and one
    call that succeeds restores the full budget. A denial or an absence ends the streak too."""
    caplog.set_level(logging.INFO, "attest")
    sleeps = Sleeps()
    h = http(sleeps)
    assert h.policy.attempts == 10 and h.policy.outage_after == 3
    server.script = [(503, {}, {"message": "down"})]
    for n in range(5):
        before = len(server.paths)
        with pytest.raises(HttpError):
            h.call(get(server.url + f"/x{n}"))
        assert len(server.paths) - before == (10 if n < 3 else 2), n
    assert "3 calls in a row failed for good" in caplog.text and "test:here" in caplog.text
    server.script = [(503, {}, {}), (200, {}, {"ok": 1}), (503, {}, {})]
    assert h.call(get(server.url + "/back")).body == {"ok": 1}       # 2nd of its 2 tries
    assert h.failing == 0 and "full retries (10 tries) restored" in caplog.text
    before = len(server.paths)
    with pytest.raises(HttpError):
        h.call(get(server.url + "/again"))
    assert len(server.paths) - before == 10                         # the full budget again
    # a streak is of 429/5xx failures only: a denial in between ends it
    for path, status in (("/a", 503), ("/b", 503), ("/c", 403), ("/d", 503)):
        server.script = [(status, {}, {"message": "no"})]
        with pytest.raises(HttpError):
            h.call(get(server.url + path))
    assert h.failing == 1
