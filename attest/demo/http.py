"""Run a WSGI app (a vendor API fake) on 127.0.0.1, on a free port, in a background thread."""
from __future__ import annotations

import ssl
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request


@dataclass
class RequestLog:
    """Every request a fake answered: method, path, query string, status. Tests count calls here."""
    entries: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, **entry: Any) -> None:
        with self.lock:
            self.entries.append(entry)

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()

    def count(self, predicate: Callable[[dict[str, Any]], bool] = lambda e: True) -> int:
        with self.lock:
            return sum(1 for e in self.entries if predicate(e))


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:  # the RequestLog keeps requests
        pass


class LocalServer:
    """``with LocalServer(app) as url: ...`` or ``start()``/``stop()``; records requests in ``log``.
    With ``ssl_context`` (see :mod:`attest.demo.tls`) it serves https."""

    def __init__(self, app: Callable, log: RequestLog | None = None,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.app = app
        self.log = log or RequestLog()
        self.ssl_context = ssl_context
        self._server = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def _logged(self, environ: dict, start_response: Callable) -> Any:
        request = Request(environ)
        status_holder: dict[str, str] = {}

        def sr(status: str, headers: list, exc_info: Any = None) -> Any:
            status_holder["status"] = status
            return start_response(status, headers, exc_info)

        result = self.app(environ, sr)
        self.log.add(method=request.method, path=request.path, query=request.query_string.decode(),
                     status=int(status_holder.get("status", "0 ").split()[0]))
        return result

    def start(self) -> str:
        self._server = make_server("127.0.0.1", 0, self._logged, threaded=True,
                                   request_handler=_QuietHandler, ssl_context=self.ssl_context)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
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
