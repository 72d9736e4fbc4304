"""Run a WSGI app (a vendor API fake) on 127.0.0.1, on a free port, in a background thread."""
from __future__ import annotations

import os
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request


@dataclass
class RequestLog:
    """Every request a fake answered: method, path, query string, status. Tests count calls here,
    and read ``most_in_flight``: the most requests the fake was answering at one time."""
    entries: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    in_flight: int = 0
    most_in_flight: int = 0

    def add(self, **entry: Any) -> None:
        with self.lock:
            self.entries.append(entry)

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()
            self.most_in_flight = self.in_flight

    def enter(self) -> None:
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)

    def leave(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def count(self, predicate: Callable[[dict[str, Any]], bool] = lambda e: True) -> int:
        with self.lock:
            return sum(1 for e in self.entries if predicate(e))


POLL_S = 0.05   # how often a fake's serve loop looks whether it was asked to stop


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:  # the RequestLog keeps requests
        pass


def _latency_from_env() -> float:
    """``ATTEST_DEMO_LATENCY_MS``: milliseconds every fake adds to every answer (benchmarks, and
    tests of what happens while reads are in flight)."""
    try:
        return max(0.0, float(os.environ.get("ATTEST_DEMO_LATENCY_MS", "0")) / 1000)
    except ValueError:
        return 0.0


def window_hit(window: tuple[float, int], now: float, period: float) -> tuple[tuple[float, int], int]:
    """One request counted in a fixed rate-limit window of ``period`` seconds, as vendors count
    them: ``window`` is (its start, requests in it); returns the window after this request and
    the whole seconds until it resets (at least 1)."""
    start, count = window
    if now - start >= period:
        start, count = now, 0
    return (start, count + 1), max(int(round(start + period - now)), 1)


class LocalServer:
    """``with LocalServer(app) as url: ...`` or ``start()``/``stop()``; records requests in ``log``.
    With ``ssl_context`` (see :mod:`attest.demo.tls`) it serves https."""

    def __init__(self, app: Callable, log: RequestLog | None = None,
                 latency: float | None = None, ssl_context: ssl.SSLContext | None = None) -> None:
        self.app = app
        self.log = log or RequestLog()
        self.latency = _latency_from_env() if latency is None else latency
        self.ssl_context = ssl_context       # an ssl.SSLContext: serve https (a fake's own CA)
        self._server = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def _logged(self, environ: dict, start_response: Callable) -> Any:
        self.log.enter()
        try:
            if self.latency:
                time.sleep(self.latency)
            request = Request(environ)
            status_holder: dict[str, str] = {}

            def sr(status: str, headers: list, exc_info: Any = None) -> Any:
                status_holder["status"] = status
                return start_response(status, headers, exc_info)

            result = self.app(environ, sr)
        finally:
            self.log.leave()
        self.log.add(method=request.method, path=request.path, query=request.query_string.decode(),
                     status=int(status_holder.get("status", "0 ").split()[0]))
        return result

    def start(self) -> str:
        self._server = make_server("127.0.0.1", 0, self._logged, threaded=True,
                                   request_handler=_QuietHandler, ssl_context=self.ssl_context)
        # stop() must not wait for handler threads: a client's kept-alive connection (or a read
        # abandoned by a stopped scan) would hold it until the client goes away
        self._server.block_on_close = False
        # a short poll: stop() (and so a stopped scan) waits at most that long for the loop
        self._thread = threading.Thread(target=self._server.serve_forever, args=(POLL_S,),
                                        daemon=True)
        self._thread.start()
        scheme = "https" if self.ssl_context is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self._server.server_port}"
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
