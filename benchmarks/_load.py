"""A small closed-loop HTTP load client: N threads, one keep-alive connection each.

It uses ``http.client`` with pre-encoded bodies rather than ``requests`` so that the client,
which shares the CPU with the server on a small box, costs as little as possible. Every
run is bounded by time and by a request count and stops by itself.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from _workload import percentile

Check = Callable[[bytes], None]


@dataclass
class RunResult:
    """One measured run of one system at one concurrency."""

    system: str
    concurrency: int
    requests: int
    errors: int
    seconds: float
    pairs_per_s: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    error_samples: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # diagnostics: CPU load, batches

    @classmethod
    def from_latencies(
        cls,
        system: str,
        concurrency: int,
        latencies: Sequence[float],
        errors: int,
        seconds: float,
        pairs_per_request: int,
        error_samples: Sequence[str] = (),
    ) -> RunResult:
        n = len(latencies)
        return cls(
            system=system,
            concurrency=concurrency,
            requests=n,
            errors=errors,
            seconds=round(seconds, 3),
            pairs_per_s=round(n * pairs_per_request / seconds, 2) if seconds > 0 else 0.0,
            p50_ms=round(1000 * percentile(latencies, 50), 2),
            p99_ms=round(1000 * percentile(latencies, 99), 2),
            mean_ms=round(1000 * sum(latencies) / n, 2) if n else float("nan"),
            error_samples=list(error_samples)[:5],
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_rerank_response(expected: int) -> Check:
    """Both servers answer ``{"results": [{"index": i, "relevance_score": s}, ...]}``."""

    def check(raw: bytes) -> None:
        body = json.loads(raw)
        indices = sorted(r["index"] for r in body["results"])
        if indices != list(range(expected)):
            raise AssertionError(f"got indices {indices[:5]}... for {expected} documents")
        for r in body["results"]:
            float(r["relevance_score"])

    return check


class _Counter:
    def __init__(self, start: int) -> None:
        self._next = start
        self._lock = threading.Lock()

    def take(self) -> int:
        with self._lock:
            i = self._next
            self._next += 1
            return i

    @property
    def value(self) -> int:
        return self._next


def post(conn: http.client.HTTPConnection, path: str, body: bytes) -> tuple[int, bytes]:
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    return resp.status, resp.read()


def run_http_load(
    *,
    system: str,
    port: int,
    path: str,
    bodies: Sequence[bytes],
    check: Check,
    concurrency: int,
    seconds: float,
    pairs_per_request: int,
    first_request: int = 0,
    max_requests: int = 100_000,
    request_timeout_s: float = 120.0,
) -> tuple[RunResult, int]:
    """Closed loop: each thread sends its next request as soon as the last one is answered.

    New requests start only during ``seconds``; requests in flight then run to completion.
    Throughput is completed pairs over the time from the first send to the last answer,
    a period during which the server never idles (this matters at high concurrency, where
    one request takes seconds). Returns the result and the next request number.
    """
    counter = _Counter(first_request)
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []
    t0 = time.perf_counter()
    deadline = t0 + seconds
    last_answer = [t0]

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=request_timeout_s)
        consecutive_errors = 0
        try:
            while time.perf_counter() < deadline and consecutive_errors < 20:
                i = counter.take()
                if i - first_request >= max_requests:
                    return
                started = time.perf_counter()
                try:
                    status, raw = post(conn, path, bodies[i % len(bodies)])
                    if status != 200:
                        raise RuntimeError(f"HTTP {status}: {raw[:200]!r}")
                    check(raw)
                except Exception as exc:  # a failed request is counted, never fatal
                    ended = time.perf_counter()
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=request_timeout_s)
                    consecutive_errors += 1
                    with lock:
                        errors.append(f"{type(exc).__name__}: {exc}"[:300])
                        last_answer[0] = max(last_answer[0], ended)
                    time.sleep(0.05)
                    continue
                ended = time.perf_counter()
                consecutive_errors = 0
                with lock:
                    latencies.append(ended - started)
                    last_answer[0] = max(last_answer[0], ended)
        finally:
            conn.close()

    threads = [
        threading.Thread(target=worker, name=f"load-{k}", daemon=True) for k in range(concurrency)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + request_timeout_s + 10)
    elapsed = last_answer[0] - t0
    result = RunResult.from_latencies(
        system, concurrency, latencies, len(errors), elapsed, pairs_per_request, errors
    )
    return result, counter.value


def get_status(port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()
