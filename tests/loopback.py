"""A real HTTP server on a loopback port that records what it receives: the OpenSearch
``_bulk`` endpoint for the telemetry writer, OpenSearch Dashboards' import API for the
setup CLI. How it answers is set per test; ``gate`` holds requests until released."""

from __future__ import annotations

import email
import email.policy
import json
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


Answer = Callable[[Received], tuple[int, Any]]


def bulk_ok(req: Received) -> tuple[int, Any]:
    """What OpenSearch's ``_bulk`` answers when every item was written."""
    docs = req.body.decode("utf-8").splitlines()[1::2]
    items = [{"index": {"status": 201, "result": "created"}} for _ in docs]
    return 200, {"took": 1, "errors": False, "items": items}


@dataclass
class LoopbackServer:
    answer: Answer = bulk_ok
    received: list[Received] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)
    gate: threading.Event | None = None

    def __post_init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                req = Received(
                    self.command,
                    parts.path,
                    parse_qs(parts.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                )
                owner.received.append(req)
                owner.arrived.set()
                if owner.gate is not None:
                    owner.gate.wait(30)
                status, body = owner.answer(req)
                raw = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_POST = do_PUT = do_GET = _handle  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        if self.gate is not None:
            self.gate.set()
        self.server.shutdown()
        self.server.server_close()

    def bulk_docs(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """Every (action, document) pair received on ``/_bulk``."""
        out = []
        for req in self.received:
            if req.path != "/_bulk":
                continue
            lines = [json.loads(x) for x in req.body.decode("utf-8").splitlines()]
            out += list(zip(lines[0::2], lines[1::2], strict=True))
        return out


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def form_files(req: Received) -> dict[str, tuple[str | None, bytes]]:
    """The parts of a ``multipart/form-data`` body: field name -> (file name, content)."""
    head = f"Content-Type: {req.headers['content-type']}\r\n\r\n".encode()
    message = email.message_from_bytes(head + req.body, policy=email.policy.HTTP)
    out: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        out[str(name)] = (part.get_filename(), payload if isinstance(payload, bytes) else b"")
    return out


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A one-day self-signed certificate for 127.0.0.1 (``openssl``): ``(cert, key)``."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key
