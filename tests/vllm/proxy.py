"""A loopback proxy in front of the real vLLM server that can misbehave on purpose.

Fault tests wrap the real thing: every request reaches the real server unless the proxy
was told to answer a 503 first (``fail_next``), to be slow (``delay_s``) or to report
another vLLM version.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        target = urlsplit(upstream)
        self.upstream = (target.hostname or "127.0.0.1", target.port or 80)
        self.fail_next = 0  # answer this many requests with 503 before forwarding again
        self.version: str | None = None  # report this on GET /version
        self.delay_s = 0.0  # wait this long before forwarding a POST
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status answered)
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                proxy._handle(self, "GET")

            def do_POST(self) -> None:
                proxy._handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else None
        with self._lock:
            fail = self.fail_next > 0
            if fail:
                self.fail_next -= 1
        if fail:
            self._reply(h, method, 503, b'{"error": {"message": "injected 503"}}')
            return
        if method == "POST" and self.delay_s:
            time.sleep(self.delay_s)
        if method == "GET" and h.path == "/version" and self.version is not None:
            self._reply(h, method, 200, json.dumps({"version": self.version}).encode())
            return
        conn = http.client.HTTPConnection(*self.upstream, timeout=60)
        try:
            headers = {"Content-Type": h.headers.get("Content-Type", "application/json")}
            conn.request(method, h.path, body=body, headers=headers)
            resp = conn.getresponse()
            self._reply(h, method, resp.status, resp.read())
        finally:
            conn.close()

    def _reply(self, h: BaseHTTPRequestHandler, method: str, status: int, data: bytes) -> None:
        with self._lock:
            self.requests.append((method, h.path, status))
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)
