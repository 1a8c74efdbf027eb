"""The default CPU reranker (the learned one, when its model ships) puts the product a shopper
asked for first, in simple cross-lingual cases in all six catalog languages, called directly
over ``/v1/rerank`` without a recall order. The products are written here from domain
knowledge (not from the evaluation's catalog), in the catalog's rerank-text layout."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from ingest.catalog import normalize
from sidecar.settings import Settings


def product(pid: str, title: str, brand: str, description: str, *bullets: str) -> str:
    raw = {
        "id": pid,
        "locale": "en",
        "title": title,
        "brand": brand,
        "description": description,
        "bullets": list(bullets),
    }
    return str(normalize(raw).doc["rerank_text"])


MOUSE = product(
    "m",
    "Logitech M185 wireless optical mouse",
    "Logitech",
    "Compact wireless mouse with a USB nano receiver, 12-month battery life",
    "Connectivity: RF Wireless",
    "Movement detection technology: Optical",
)
TONER = product(
    "t",
    "HP 80A LaserJet toner cartridge",
    "HP",
    "Original black toner cartridge for HP LaserJet Pro 400 printers",
    "Colour: Black",
    "Page yield: 2700 pages",
)
CASE = product(
    "c",
    "Spigen Ultra Hybrid case for iPhone 13",
    "Spigen",
    "Clear protective phone case with shock-absorbing bumper",
    "Case type: Cover",
    "Compatibility: iPhone 13",
)
INK = product(
    "i",
    "HP 302 Black Original Ink Cartridge",
    "HP",
    "Original black ink cartridge for HP DeskJet and ENVY inkjet printers",
    "Ink type: Pigment-based ink",
    "Printing colours: Black",
)
USB = product(
    "u",
    "SanDisk Ultra Flair 64 GB USB 3.0 flash drive",
    "SanDisk",
    "USB flash drive with a sleek metal casing, transfer speeds up to 150 MB/s",
    "Capacity: 64 GB",
    "Interface: USB 3.0",
)
SPEAKER = product(
    "s",
    "JBL Flip 5 portable Bluetooth speaker",
    "JBL",
    "Waterproof portable speaker with 12 hours of playtime",
    "Connectivity: Bluetooth",
    "Audio output channels: Mono",
)
CABLE = product(
    "h",
    "Belkin HDMI cable 2 m",
    "Belkin",
    "High speed HDMI cable with Ethernet, gold-plated connectors",
    "Connector 1: HDMI Type A",
    "Cable length: 2 m",
)
KEYBOARD = product(
    "k",
    "Cherry KC 1000 wired keyboard",
    "Cherry",
    "Flat USB keyboard with quiet keys, German layout",
    "Keyboard layout: QWERTZ",
    "Connectivity: Wired",
)

#: (query, language, the product asked for, the others) — the asked one is sent last
CASES = [
    ("ratón inalámbrico", "es", MOUSE, [TONER, KEYBOARD, CABLE]),
    ("手机壳", "zh", CASE, [MOUSE, TONER, CABLE]),
    ("Druckerpatrone", "de", INK, [MOUSE, CASE, KEYBOARD]),
    ("ワイヤレスマウス", "ja", MOUSE, [TONER, CASE, USB]),
    ("clé usb", "fr", USB, [CASE, TONER, SPEAKER]),
    ("bluetooth speaker", "en", SPEAKER, [CABLE, INK, KEYBOARD]),
    ("无线鼠标", "zh", MOUSE, [KEYBOARD, CASE, INK]),
    ("enceinte bluetooth", "fr", SPEAKER, [MOUSE, CABLE, USB]),
    ("cartucho de tinta", "es", INK, [TONER, USB, CASE]),
]


def test_the_learned_reranker_is_the_cpu_default() -> None:
    assert Settings().resolved_rerank_backend == "learned"


@pytest.mark.parametrize(
    ("query", "language", "asked", "others"), CASES, ids=[f"{c[1]}-{c[0]}" for c in CASES]
)
def test_the_asked_product_comes_first(
    client: FlaskClient, query: str, language: str, asked: str, others: list[str]
) -> None:
    documents = [*others, asked]
    resp = client.post("/v1/rerank", json={"query": query, "documents": documents})
    assert resp.status_code == 200, resp.get_json()
    body: dict[str, Any] = resp.get_json()
    ranked = [r["index"] for r in body["results"]]
    assert ranked[0] == len(others), (query, body["results"])


def metric(client: FlaskClient, line_start: str) -> float:
    text = client.get("/metrics").get_data(as_text=True)
    found = [ln for ln in text.splitlines() if ln.startswith(line_start)]
    return float(found[0].rsplit(" ", 1)[1]) if found else 0.0


def test_document_vectors_are_paid_once_and_metered(client: FlaskClient) -> None:
    docs = [KEYBOARD, CABLE, SPEAKER]
    hits = 'sidecar_vector_cache_hits_total{model="use-multilingual-v3"}'
    before = metric(client, hits)
    for query in ("keyboard", "Tastatur"):
        r = client.post("/v1/rerank", json={"query": query, "documents": docs})
        assert r.status_code == 200
    assert metric(client, hits) >= before + len(docs)
    assert metric(client, "sidecar_vector_cache_entries") >= 2 * len(docs)
    assert metric(client, "sidecar_vector_cache_bytes") > 0


def test_ingest_embeddings_fill_the_cache(client: FlaskClient) -> None:
    passage = "Cherry Stream wireless keyboard. Quiet full-size keyboard for the office"
    r = client.post("/v1/embeddings", json={"input": [passage], "input_type": "document"})
    assert r.status_code == 200, r.get_json()
    hits = 'sidecar_vector_cache_hits_total{model="multilingual-e5-small"}'
    before = metric(client, hits)
    doc = product(
        "w", "Cherry Stream wireless keyboard", "Cherry", "Quiet full-size keyboard for the office"
    )
    r = client.post("/v1/rerank", json={"query": "teclado", "documents": [doc, CASE]})
    assert r.status_code == 200
    assert metric(client, hits) >= before + 1


def test_recall_positions_are_used_when_given(client: FlaskClient) -> None:
    docs = [TONER, MOUSE, CASE, INK]
    plain = client.post("/v1/rerank", json={"query": "mouse", "documents": docs}).get_json()
    ordered = client.post(
        "/v1/rerank", json={"query": "mouse", "documents": docs, "in_recall_order": True}
    ).get_json()
    assert plain["results"][0]["index"] == ordered["results"][0]["index"] == 1
    assert ordered["meta"].get("recall_weight", 0.0) == 0.0  # no blend: a feature instead


def test_the_k_nn_legs_query_embedding_is_reused_by_the_rerank(client: FlaskClient) -> None:
    """A search embeds its query for the k-NN leg (``/v1/embeddings``, ``input_type`` query),
    then reranks: the rerank reads that e5 vector instead of encoding the query again. Its
    English translation's vector is encoded once (a miss), then read from the cache too."""
    query = "kabellose Tastatur mit Ziffernblock"
    query_hits = 'sidecar_vector_cache_hits_total{model="multilingual-e5-small#query"}'
    query_misses = 'sidecar_vector_cache_misses_total{model="multilingual-e5-small#query"}'
    r = client.post("/v1/embeddings", json={"input": [query], "input_type": "query"})
    assert r.status_code == 200, r.get_json()
    hits, misses = metric(client, query_hits), metric(client, query_misses)
    r = client.post("/v1/rerank", json={"query": query, "documents": [KEYBOARD, MOUSE]})
    assert r.status_code == 200
    assert metric(client, query_hits) == hits + 1
    assert metric(client, query_misses) == misses + 1  # the translation's
    r = client.post("/v1/rerank", json={"query": query, "documents": [MOUSE, KEYBOARD]})
    assert r.status_code == 200
    assert metric(client, query_hits) == hits + 3
    assert metric(client, query_misses) == misses + 1


def test_a_cached_query_vector_is_the_one_the_ranker_computes(client: FlaskClient) -> None:
    """The embedder's query vector (cached by ``/v1/embeddings``) equals the ranker's own
    encoding of the query, so reusing it changes no score."""
    import numpy as np

    from sidecar.ranker.vectors import VectorCache

    engine = client.application.extensions["sidecar.engine"]
    featurizer = engine.reranker.featurizer
    query = "écouteurs sans fil à réduction de bruit"
    own_e5, own_use = featurizer.query_vectors(query, VectorCache(1 << 20))
    r = client.post("/v1/embeddings", json={"input": [query], "input_type": "query"})
    assert r.status_code == 200
    got = np.asarray(r.get_json()["data"][0]["embedding"], dtype=np.float32)
    assert np.allclose(got, own_e5, atol=1e-5)
    cached_e5, cached_use = featurizer.query_vectors(query, engine.vectors)
    assert np.allclose(cached_e5, own_e5, atol=1e-6)
    assert np.allclose(cached_use, own_use, atol=1e-6)


def test_warm_files_answer_every_document_vector(tmp_path) -> None:
    """``python -m sidecar.ranker.warm`` encodes what the ranker looks up (each product's
    title and description, its English section): a sidecar started with the files reads
    every document vector of a rerank from them, e5 and USE alike."""
    from sidecar.ranker.warm import main as warm
    from sidecar.scoring.multilingual import pack, unpack
    from tests.conftest import make_client

    chinese = {"zh": "罗技 M185 无线光电鼠标 | 罗技 | 小巧的无线鼠标"}
    docs = [pack({**(unpack(MOUSE) or {}), **chinese}), KEYBOARD, CASE]
    texts = tmp_path / "texts.jsonl"
    texts.write_text("".join(json.dumps({"rerank_text": d}) + "\n" for d in docs))
    assert warm(["--texts", str(texts), "--out", str(tmp_path / "v"), "--language", "zh"]) == 0
    files = ",".join(str(p) for p in sorted(tmp_path.glob("v.*.npz")))
    app, client = make_client(Settings(vector_cache_warm=files))
    try:
        r = client.post("/v1/rerank", json={"query": "无线鼠标", "documents": docs})
        assert r.status_code == 200, r.get_json()
        for model in ("multilingual-e5-small", "use-multilingual-v3"):
            label = f'{{model="{model}"}}'
            assert metric(client, f"sidecar_vector_cache_hits_total{label}") == len(docs), model
            assert metric(client, f"sidecar_vector_cache_misses_total{label}") == 0, model
    finally:
        app.extensions["sidecar.engine"].close()
