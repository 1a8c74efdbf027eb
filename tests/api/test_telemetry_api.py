"""Rerank telemetry from the routes, through the app and the real bundled model, to a real
HTTP server on loopback acting as OpenSearch's ``_bulk`` endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from sidecar.scoring.multilingual import pack
from sidecar.services.rerank import default_recall_weight
from sidecar.settings import Settings
from tests.conftest import WrappedReranker, make_client, wrapping_loader
from tests.loopback import LoopbackServer, wait_for

# the mouse last, so the rerank moves it to the top from position 2
DOCS = [
    pack({"en": "HP LaserJet toner cartridge", "zh": "惠普激光打印机硒鼓"}),
    pack({"en": "Dell USB keyboard", "zh": "戴尔 USB 键盘"}),
    pack({"en": "Logitech M185 wireless optical mouse", "zh": "罗技 M185 无线光电鼠标"}),
]


class Recorded:
    def __init__(self) -> None:
        self.bulk = LoopbackServer()
        holder: dict[str, WrappedReranker] = {}
        settings = Settings(opensearch_url=self.bulk.url, telemetry_flush_s=0.05)
        self.app, self.client = make_client(settings, loader=wrapping_loader(holder))
        self.wrapped = holder["reranker"]

    def docs(self) -> list[dict[str, Any]]:
        return [doc for _, doc in self.bulk.bulk_docs()]

    def call(self, path: str, body: dict[str, Any], records: int = 1) -> tuple[Any, list]:
        """The response, and the records this call produced (waits for them)."""
        before = len(self.docs())
        resp = self.client.post(path, json=body)
        assert wait_for(lambda: len(self.docs()) >= before + records), resp.get_data()
        return resp, self.docs()[before:]

    def close(self) -> None:
        self.app.extensions["sidecar.telemetry"].close()
        self.app.extensions["sidecar.engine"].close()
        self.bulk.close()


@pytest.fixture(scope="module")
def recorded() -> Iterator[Recorded]:
    r = Recorded()
    yield r
    r.close()


def test_a_cohere_rerank_is_recorded_with_its_outcome(recorded: Recorded) -> None:
    body = {"query": "无线鼠标", "documents": DOCS}
    resp, [rec] = recorded.call("/v1/rerank", body)
    answer = resp.get_json()
    top = answer["results"][0]["index"]
    assert top == 2
    assert rec["@timestamp"].endswith("Z")
    assert {k: v for k, v in rec.items() if k not in ("@timestamp", "latency_ms")} == {
        "route": "/v1/rerank",
        "query_language": "zh",
        "candidates": 3,
        "cache_hits": 0,
        "cache_hit": False,
        "top_moved": top,
        "first_rank": [r["index"] for r in answer["results"]].index(0),
        "recall_weight": 0.0,
        "model": answer["meta"]["model"],
        "fallback": False,
        "status": 200,
    }
    assert 0 < rec["latency_ms"] < 10_000
    # the same call again: every pair from the cache
    _, [again] = recorded.call("/v1/rerank", body)
    assert (again["cache_hits"], again["cache_hit"]) == (3, True)
    # blended with the recall order
    _, [blended] = recorded.call("/v1/rerank", {**body, "in_recall_order": True})
    assert blended["recall_weight"] == pytest.approx(default_recall_weight(Settings()))


def test_a_tei_rerank_gets_its_language_detected_off_the_request_path(
    recorded: Recorded,
) -> None:
    texts = ["Teclado USB Dell", "Ratón inalámbrico Logitech M185", "Tóner HP LaserJet"]
    resp, [rec] = recorded.call("/rerank", {"query": "ratón inalámbrico", "texts": texts})
    assert resp.status_code == 200
    assert rec["route"] == "/rerank"
    assert rec["query_language"] == "es"  # plain documents: the writer thread detected it
    assert rec["top_moved"] == resp.get_json()[0]["index"] == 1
    assert rec["candidates"] == 3 and rec["recall_weight"] == 0.0
    assert "ratón" not in str(rec)  # the query text is not stored


def test_a_fallback_is_recorded_with_its_reason(recorded: Recorded) -> None:
    recorded.wrapped.fail = RuntimeError("boom")
    try:
        resp, [rec] = recorded.call(
            "/v1/rerank", {"query": "fallback probe", "documents": ["a", "b"], "language": "en"}
        )
    finally:
        recorded.wrapped.fail = None
    assert resp.headers["X-Sidecar-Fallback"] == "backend_error"
    assert (rec["fallback"], rec["fallback_reason"], rec["top_moved"]) == (
        True,
        "backend_error",
        0,
    )
    assert rec["query_language"] == "en" and rec["status"] == 200


def test_rejected_requests_and_other_routes_are_not_recorded(recorded: Recorded) -> None:
    before = len(recorded.docs())
    assert recorded.client.post("/v1/rerank", json={"query": "q"}).status_code == 422
    assert recorded.client.post("/v1/embeddings", json={"input": ["x"]}).status_code == 200
    recorded.call("/v1/rerank", {"query": "marker", "documents": ["x"]})
    assert [d["candidates"] for d in recorded.docs()[before:]] == [1]


def test_metrics_count_written_records(recorded: Recorded) -> None:
    recorded.call("/v1/rerank", {"query": "metrics", "documents": ["x"]})
    text = recorded.client.get("/metrics").get_data(as_text=True)
    line = next(x for x in text.splitlines() if x.startswith("sidecar_telemetry_records_total"))
    assert 'outcome="written"' in line and float(line.split()[-1]) >= 1


def test_sample_zero_records_nothing() -> None:
    bulk = LoopbackServer()
    app: Flask | None = None
    try:
        settings = Settings(opensearch_url=bulk.url, telemetry_sample=0.0, telemetry_flush_s=0.05)
        app, client = make_client(settings)
        telemetry = app.extensions["sidecar.telemetry"]
        assert not telemetry.enabled
        c: FlaskClient = client
        for _ in range(3):
            assert c.post("/v1/rerank", json={"query": "q", "documents": DOCS}).status_code == 200
        assert not wait_for(lambda: bool(bulk.received), timeout=0.5)
    finally:
        if app is not None:
            app.extensions["sidecar.engine"].close()
        bulk.close()
