"""Loopback stand-ins for the sidecar, as ML Commons connectors see it: an echo upstream that
records every body and answers like the sidecar's ``/v1/rerank`` (Cohere), ``/v1/embeddings``
(OpenAI) and ``/v1/knn-leg``, a black hole that accepts connections and never answers, and a
port that refuses connections."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from typing import Any

from tests.loopback import LoopbackServer, Received


def echo_answer(dim: int) -> Any:
    def answer(req: Received) -> tuple[int, Any]:
        try:
            body = json.loads(req.body.decode("utf-8"))
        except ValueError as exc:
            return 400, {"error": str(exc)}
        if req.path.endswith("/knn-leg"):  # the embed-leg connector: the leg, the ext back
            from sidecar.services.knn_leg import knn_clause, repaired_ext

            vector = [1.0 / dim**0.5] * dim
            return 200, {
                "leg": knn_clause(body.get("field", "embedding"), vector, body.get("k", 100)),
                "ext": repaired_ext(body.get("search_ext") or {}),
            }
        if req.path.endswith("/rerank"):
            docs = body.get("documents") or []
            return 200, {
                "results": [
                    {"index": i, "relevance_score": 1.0 / (i + 1)} for i in range(len(docs))
                ]
            }
        texts = body.get("input")
        texts = texts if isinstance(texts, list) else [texts]
        vec = [1.0 / dim**0.5] * dim
        return 200, {
            "object": "list",
            "model": "echo",
            "data": [
                {"object": "embedding", "index": i, "embedding": vec} for i in range(len(texts))
            ],
        }

    return answer


def echo_server(dim: int = 384) -> LoopbackServer:
    """Records every request (``.received``); answers rerank and embeddings requests."""
    return LoopbackServer(answer=echo_answer(dim))


def received_json(server: LoopbackServer, path_end: str) -> list[Any]:
    """The parsed bodies the echo received on paths ending with ``path_end``."""
    return [
        json.loads(r.body.decode("utf-8")) for r in server.received if r.path.endswith(path_end)
    ]


class BlackHole:
    """Accepts connections, reads them, never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.conns: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._drain, args=(conn,), daemon=True).start()

    @staticmethod
    def _drain(conn: socket.socket) -> None:
        try:
            while conn.recv(65536):
                pass
        except OSError:
            pass

    def close(self) -> None:
        self._closed = True
        for c in [*self.conns, self.sock]:
            with contextlib.suppress(OSError):
                c.close()


def refused_url() -> str:
    """A loopback port nobody listens on (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"
