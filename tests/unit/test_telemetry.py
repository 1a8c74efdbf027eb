"""The telemetry writer against a real HTTP server on loopback acting as OpenSearch's
``_bulk`` endpoint: what arrives, what a full queue or a failing cluster does, sampling."""

from __future__ import annotations

import base64
import logging
import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sidecar.cluster.telemetry import Telemetry, bulk_body, index_for
from sidecar.metrics import Metrics
from sidecar.settings import Settings
from tests.loopback import LoopbackServer, Received, wait_for


@pytest.fixture()
def bulk() -> Iterator[LoopbackServer]:
    server = LoopbackServer()
    yield server
    server.close()


def writer(url: str, **overrides: Any) -> tuple[Telemetry, Metrics]:
    settings = Settings(opensearch_url=url, **{"telemetry_flush_s": 0.05, **overrides})
    metrics = Metrics()
    return Telemetry(settings, metrics, detect=lambda q: ("zh", 1.0)).start(), metrics


def count(metrics: Metrics, outcome: str) -> float:
    value = metrics.registry.get_sample_value(
        "sidecar_telemetry_records_total", {"outcome": outcome}
    )
    return value or 0.0


def rec(n: int = 0, day: str = "2025-03-01T10:00:00.000Z", **fields: Any) -> dict[str, Any]:
    return {"@timestamp": day, "route": "/v1/rerank", "query_language": "en", "n": n, **fields}


def test_records_arrive_as_bulk_ndjson_in_daily_indices(bulk: LoopbackServer) -> None:
    w, m = writer(bulk.url, opensearch_user="telemetry", opensearch_password="s3cret")
    try:
        w.record(rec(0, "2025-03-01T23:59:59.999Z"))
        w.record(rec(1, "2025-03-02T00:00:00.000Z"))
        w.record(rec(2, "2025-12-31T12:00:00.000Z"))
        assert wait_for(lambda: count(m, "written") == 3)
    finally:
        w.close()
    req = bulk.received[0]
    assert (req.method, req.path) == ("POST", "/_bulk")
    assert req.headers["content-type"] == "application/x-ndjson"
    token = base64.b64encode(b"telemetry:s3cret").decode()
    assert req.headers["authorization"] == f"Basic {token}"
    assert req.body.endswith(b"\n")  # _bulk needs the final newline
    pairs = bulk.bulk_docs()
    assert [a["index"]["_index"] for a, _ in pairs] == [
        "ranking-sidecar-telemetry-2025.03.01",
        "ranking-sidecar-telemetry-2025.03.02",
        "ranking-sidecar-telemetry-2025.12.31",
    ]
    assert [d["n"] for _, d in pairs] == [0, 1, 2]
    assert count(m, "failed") == count(m, "dropped") == 0


def test_timestamp_is_utc_iso_and_the_index_follows_it(bulk: LoopbackServer) -> None:
    w, m = writer(bulk.url, telemetry_index="my-telemetry")
    try:
        w.record({"route": "/rerank", "query_language": "es"})
        assert wait_for(lambda: count(m, "written") == 1)
    finally:
        w.close()
    action, doc = bulk.bulk_docs()[0]
    ts = doc["@timestamp"]
    assert ts.endswith("Z") and time.strftime("%Y-%m-%d", time.gmtime()) == ts[:10]
    assert action["index"]["_index"] == index_for("my-telemetry", ts)
    assert action["index"]["_index"] == "my-telemetry-" + ts[:10].replace("-", ".")


def test_a_full_batch_is_sent_before_the_interval(bulk: LoopbackServer) -> None:
    w, m = writer(bulk.url, telemetry_flush_s=60.0, telemetry_batch=2)
    try:
        w.record(rec(0))
        w.record(rec(1))
        assert wait_for(lambda: count(m, "written") == 2, timeout=5)
        assert len(bulk.received) == 1
    finally:
        w.close()


def test_close_sends_what_is_queued(bulk: LoopbackServer) -> None:
    w, m = writer(bulk.url, telemetry_flush_s=60.0, telemetry_batch=500)
    for i in range(3):
        w.record(rec(i))
    started = time.monotonic()
    w.close()
    assert time.monotonic() - started < 3
    assert count(m, "written") == 3
    assert [d["n"] for _, d in bulk.bulk_docs()] == [0, 1, 2]


def test_language_is_detected_on_the_writer_thread_and_the_query_not_stored(
    bulk: LoopbackServer,
) -> None:
    w, m = writer(bulk.url)
    try:
        w.record(rec(0, query_language=None), query="无线鼠标")
        w.record(rec(1, query_language=None))  # nothing to detect from
        w.record(rec(2, query_language="fr"), query="souris sans fil")
        assert wait_for(lambda: count(m, "written") == 3)
    finally:
        w.close()
    docs = [d for _, d in bulk.bulk_docs()]
    assert [d["query_language"] for d in docs] == ["zh", "und", "fr"]
    assert all("无线鼠标" not in str(d) and "souris" not in str(d) for d in docs)


def test_a_full_queue_drops_and_counts_and_never_blocks() -> None:
    bulk = LoopbackServer(gate=threading.Event())  # the cluster holds the first batch
    w, m = writer(bulk.url, telemetry_queue=2, telemetry_batch=1)
    try:
        assert w.record(rec(0))
        assert bulk.arrived.wait(5)  # the writer thread is now stuck in its POST
        took = []
        accepted = []
        for i in range(1, 8):
            started = time.perf_counter()
            accepted.append(w.record(rec(i)))
            took.append(time.perf_counter() - started)
        assert accepted == [True, True] + [False] * 5
        assert max(took) < 0.05  # the request path never waits for the writer
        assert count(m, "dropped") == 5
        bulk.gate.set()  # type: ignore[union-attr]
        assert wait_for(lambda: count(m, "written") == 3)
    finally:
        w.close()
        bulk.close()
    assert sorted(d["n"] for _, d in bulk.bulk_docs()) == [0, 1, 2]


def test_cluster_errors_count_failed_log_once_and_the_writer_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    answers = iter([(500, {"error": "boom"}), (503, b"not json")])

    def answer(req: Received) -> tuple[int, Any]:
        return next(answers, None) or bulk_partial(req)

    bulk = LoopbackServer(answer=answer)
    w, m = writer(bulk.url, telemetry_batch=2, telemetry_flush_s=60.0)
    caplog.set_level(logging.WARNING, logger="sidecar.cluster.telemetry")
    try:
        for i in range(6):  # three batches: 500, 503, then one item rejected
            w.record(rec(i))
            if i % 2:
                assert wait_for(lambda i=i: len(bulk.received) == (i + 1) // 2)
        assert wait_for(lambda: count(m, "failed") == 5 and count(m, "written") == 1)
        assert w._thread is not None and w._thread.is_alive()
    finally:
        w.close()
        bulk.close()
    warnings = [r for r in caplog.records if r.name == "sidecar.cluster.telemetry"]
    assert len(warnings) == 1  # rate-limited: once a minute
    assert "HTTP 500" in warnings[0].getMessage()


def bulk_partial(req: Received) -> tuple[int, Any]:
    """A ``_bulk`` answer where the second item was rejected (a mapping conflict)."""
    error = {"type": "mapper_parsing_exception", "reason": "failed to parse field [candidates]"}
    items = [
        {"index": {"status": 201, "result": "created"}},
        {"index": {"status": 400, "error": error}},
    ]
    return 200, {"took": 1, "errors": True, "items": items}


def test_a_cluster_that_is_down_counts_failed_and_never_raises() -> None:
    closed = LoopbackServer()
    closed.close()  # nothing listens on this port any more
    w, m = writer(closed.url)
    try:
        for i in range(3):
            assert w.record(rec(i))
        assert wait_for(lambda: count(m, "failed") == 3)
        assert w._thread is not None and w._thread.is_alive()
    finally:
        w.close()
    assert count(m, "written") == 0


def test_close_is_bounded_when_the_cluster_hangs() -> None:
    bulk = LoopbackServer(gate=threading.Event())
    w, _ = writer(bulk.url)
    try:
        w.record(rec(0))
        assert bulk.arrived.wait(5)
        started = time.monotonic()
        w.close(timeout=0.5)
        assert time.monotonic() - started < 1.5
    finally:
        bulk.close()


@pytest.mark.parametrize(
    "overrides",
    [
        {"telemetry_sample": 0.0},  # sampled out
        {"opensearch_url": ""},  # no cluster
    ],
)
def test_sample_zero_or_no_cluster_records_nothing(
    bulk: LoopbackServer, overrides: dict[str, Any]
) -> None:
    settings = Settings(**{"opensearch_url": bulk.url, "telemetry_flush_s": 0.05, **overrides})
    before = {t.name for t in threading.enumerate()}
    w = Telemetry(settings, Metrics()).start()
    assert not w.enabled
    assert not any(w.sampled() for _ in range(100))
    assert w.record(rec(0)) is False
    assert "telemetry-writer" not in {t.name for t in threading.enumerate()} - before
    time.sleep(0.2)
    w.close()
    assert bulk.received == []


def test_sampling_is_a_seeded_coin_per_call(bulk: LoopbackServer) -> None:
    settings = Settings(opensearch_url=bulk.url, telemetry_sample=0.3)
    w = Telemetry(settings, Metrics(), rng=random.Random(7))
    got = sum(w.sampled() for _ in range(1000))
    coin = random.Random(7)
    assert got == sum(coin.random() < 0.3 for _ in range(1000))
    assert 250 < got < 350
    every = Telemetry(settings.with_overrides(telemetry_sample=1.0), Metrics())
    assert all(every.sampled() for _ in range(1000))


def test_bulk_body_keeps_unicode_and_one_action_per_document() -> None:
    body = bulk_body("t", [rec(0, query_language="zh", model="é")]).decode("utf-8")
    lines = body.splitlines()
    assert len(lines) == 2 and body.endswith("\n")
    assert '"model": "é"' in lines[1]
