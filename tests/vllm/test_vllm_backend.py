"""The vllm backend against a real vLLM server: the same numbers as the in-process
transformers backend on the same folder, through the backend and through the app."""

from __future__ import annotations

import numpy as np
import pytest
import requests

from sidecar.backends.base import BackendError, InputTooLong, Pair, Prepared
from sidecar.backends.transformers_backend import Qwen3Reranker, TransformersEmbedder
from sidecar.backends.vllm_backend import VllmEmbedder, VllmReranker
from sidecar.settings import DEFAULT_EMBED_INSTRUCTION, Settings
from sidecar.settings import DEFAULT_RERANK_INSTRUCTION as INSTR
from tests.conftest import make_client
from tests.vllm.conftest import Served
from tests.vllm.proxy import FaultProxy

QUERY = "red running shoes"
DOCS = [
    "Nike Air Zoom Pegasus running shoe, red",
    "Stainless steel kitchen knife set",
    "Zapatillas Adidas rojas para correr, talla 42 — ¡oferta!",
    "罗技 M185 无线光电鼠标 灰色",
    "ナイキ ランニングシューズ 赤 27cm",
    "Кроссовки для бега, красные 🏃",
]
CUSTOM = "Given a product search query, find products of the requested colour"
# Scored with the official prompt (both newlines after </think>) on the tiny reranker
# (tests.vllm.conftest: seed 3, VLLM_SHAPE). A server that answers 0.5 for everything, a
# prompt that drifts or a changed yes/no head moves these. They are pinned to the
# model's random initialisation: regenerate them (the vLLM numbers, after checking that
# they equal the transformers backend) only when torch or tokenizers change version.
GOLDEN = [
    (QUERY, DOCS[0], 0.030723),
    ("无线鼠标", DOCS[2], 0.245648),
    ("无线鼠标", DOCS[5], 0.712582),
]


@pytest.fixture(scope="module")
def rerankers(vllm: Served) -> tuple[VllmReranker, Qwen3Reranker]:
    remote = VllmReranker(str(vllm.rerank_model), vllm.rerank_url, max_length=512)
    local = Qwen3Reranker(str(vllm.rerank_model), max_length=512, device="cpu", threads=1)
    return remote, local


def both(rerankers, pairs, truncate=True) -> tuple[list[float], list[float]]:
    remote, local = rerankers
    a, b = remote.prepare(pairs, truncate), local.prepare(pairs, truncate)
    assert [p.payload for p in a] == [p.payload for p in b]  # one tokenizer, one prompt
    return remote.score(a), local.score(b)


def test_scores_equal_the_transformers_backend(rerankers) -> None:
    pairs = [Pair(QUERY, d, INSTR) for d in DOCS] + [Pair("无线鼠标", d, CUSTOM) for d in DOCS]
    remote, local = both(rerankers, pairs)
    assert remote == pytest.approx(local, abs=1e-5)
    probs = [rerankers[0].activate(x) for x in remote]
    assert probs == pytest.approx([rerankers[1].activate(x) for x in local], abs=1e-5)
    # the instruction is really part of what is scored
    assert remote[: len(DOCS)] != pytest.approx(both(rerankers, pairs[len(DOCS) :])[0], abs=1e-3)


def test_truncated_non_latin_documents_score_the_same_ids(vllm: Served) -> None:
    """Cuts inside multi-byte characters included: text could not carry these ids."""
    pairs = [
        Pair("无线鼠标", "罗技无线光电鼠标，灰色，静音按键，一节五号电池可用十二个月。" * 8, INSTR),
        Pair("ランニングシューズ", "軽量で通気性の良いランニングシューズ、赤色。" * 10, CUSTOM),
        Pair(QUERY, "Zapatillas de running rojas con amortiguación reactiva. " * 12, INSTR),
    ]
    round_trips = []
    for limit in (119, 120, 121):
        remote = VllmReranker(str(vllm.rerank_model), vllm.rerank_url, max_length=limit)
        local = Qwen3Reranker(str(vllm.rerank_model), max_length=limit, device="cpu", threads=1)
        items = remote.prepare(pairs)
        assert [p.length for p in items] == [limit] * 3
        assert remote.score(items) == pytest.approx(local.score(local.prepare(pairs)), abs=1e-5)
        tok = remote.tokens.tokenizer
        round_trips += [
            tok(tok.decode(p.payload), add_special_tokens=False)["input_ids"] == p.payload
            for p in items
        ]
        with pytest.raises(InputTooLong) as exc:
            remote.prepare(pairs, truncate=False)
        assert exc.value.index == 0 and exc.value.limit == limit
    # re-tokenizing the decoded text (what vLLM's /score would do) gives other tokens
    assert not all(round_trips)


def test_golden_scores(rerankers) -> None:
    remote, _ = rerankers
    raw = remote.score(remote.prepare([Pair(q, d, INSTR) for q, d, _ in GOLDEN]))
    got = [remote.activate(x) for x in raw]
    assert got == pytest.approx([g for _, _, g in GOLDEN], abs=1e-4)
    assert max(got) - min(got) > 0.3 and all(abs(s - 0.5) > 0.1 for s in got)


def test_the_app_answers_the_same_through_vllm_and_transformers(vllm: Served) -> None:
    common = dict(rerank_model=str(vllm.rerank_model), max_length=256, cache_size=0)
    via_vllm, c1 = make_client(
        Settings(
            **common,
            vllm_rerank_url=vllm.rerank_url,
            embed_model=str(vllm.embed_model),
            vllm_embed_url=vllm.embed_url,
        )
    )
    in_proc, c2 = make_client(
        Settings(**common, rerank_backend="transformers", embed_backend="none")
    )
    try:
        ready = c1.get("/readyz").get_json()
        assert ready["models"]["rerank"]["kind"] == "vllm"
        assert ready["models"]["embed"]["kind"] == "vllm"
        long_doc = "Logitech wireless keyboard and mouse combo, black. " * 40
        for body in (
            {"query": QUERY, "documents": DOCS},
            {"query": "无线鼠标", "documents": DOCS, "instruction": CUSTOM},
            {"query": QUERY, "documents": [*DOCS, long_doc]},  # truncated to 256 tokens
        ):
            r1, r2 = c1.post("/v1/rerank", json=body), c2.post("/v1/rerank", json=body)
            assert r1.status_code == r2.status_code == 200, r1.get_data(as_text=True)
            s1 = {x["index"]: x["relevance_score"] for x in r1.get_json()["results"]}
            s2 = {x["index"]: x["relevance_score"] for x in r2.get_json()["results"]}
            assert [s1[i] for i in sorted(s1)] == pytest.approx(
                [s2[i] for i in sorted(s2)], abs=1e-5
            )
            assert [x["index"] for x in r1.get_json()["results"]] == [
                x["index"] for x in r2.get_json()["results"]
            ]
        body = {"query": QUERY, "documents": [long_doc], "truncate": False}
        r1, r2 = c1.post("/v1/rerank", json=body), c2.post("/v1/rerank", json=body)
        assert r1.status_code == r2.status_code == 413
        assert r1.get_json()["error"]["param"] == r2.get_json()["error"]["param"]
        # the TEI shape's raw score is the logit itself
        r = c1.post("/rerank", json={"query": QUERY, "texts": DOCS[:2], "raw_scores": True})
        local = Qwen3Reranker(str(vllm.rerank_model), max_length=256, device="cpu", threads=1)
        want = local.score(local.prepare([Pair(QUERY, d, INSTR) for d in DOCS[:2]]))
        got = {x["index"]: x["score"] for x in r.get_json()}
        assert [got[0], got[1]] == pytest.approx(want, abs=1e-5)
    finally:
        via_vllm.extensions["sidecar.engine"].close()
        in_proc.extensions["sidecar.engine"].close()


TEXTS = ["red running shoes", "zapatillas de running rojas, talla 42", "无线鼠标 罗技", "赤い靴"]


@pytest.fixture(scope="module")
def embedders(vllm: Served) -> tuple[VllmEmbedder, TransformersEmbedder]:
    remote = VllmEmbedder(str(vllm.embed_model), vllm.embed_url, max_length=512)
    local = TransformersEmbedder(str(vllm.embed_model), max_length=512, device="cpu", threads=1)
    return remote, local


def test_embeddings_equal_last_token_pooling(embedders) -> None:
    remote, local = embedders
    assert remote.dimensions == local.dimensions == 128
    for kind, instruction in (("document", ""), ("query", DEFAULT_EMBED_INSTRUCTION)):
        a = remote.prepare(TEXTS, kind, instruction)
        b = local.prepare(TEXTS, kind, instruction)
        assert [p.payload for p in a] == [p.payload for p in b]
        got, want = remote.embed(a), local.embed(b)
        assert np.allclose(got, want, atol=1e-5)
        assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    # queries carry the instruction, documents do not
    q = remote.tokens.tokenizer.decode(remote.prepare(["x"], "query", "Find")[0].payload)
    d = remote.tokens.tokenizer.decode(remote.prepare(["x"], "document", "Find")[0].payload)
    assert q.startswith("Instruct: Find\nQuery:x") and d.startswith("x")
    (long,) = remote.prepare(["mouse " * 600], "document", "", truncate=True)
    assert long.length == 512 and long.payload[-1] == remote.tokens.eos_id
    assert np.allclose(remote.embed([long]), local.embed([long]), atol=1e-5)


def test_dimensions_match_vllm_and_transformers(vllm: Served, embedders) -> None:
    remote, local = embedders
    app, client = make_client(
        Settings(embed_model=str(vllm.embed_model), vllm_embed_url=vllm.embed_url)
    )
    try:
        r = client.post(
            "/v1/embeddings", json={"input": TEXTS, "dimensions": 32, "input_type": "query"}
        )
        assert r.status_code == 200, r.get_data(as_text=True)
        got = np.array([d["embedding"] for d in r.get_json()["data"]])
    finally:
        app.extensions["sidecar.engine"].close()
    full = local.embed(local.prepare(TEXTS, "query", DEFAULT_EMBED_INSTRUCTION))[:, :32]
    want = full / np.linalg.norm(full, axis=1, keepdims=True)
    assert np.allclose(got, want, atol=1e-5)
    # vLLM's own Matryoshka truncation (--hf-overrides is_matryoshka) gives the same
    ids = [p.payload for p in remote.prepare(TEXTS, "query", DEFAULT_EMBED_INSTRUCTION)]
    direct = requests.post(
        vllm.embed_url + "/v1/embeddings",
        json={"model": remote.server.model, "input": ids, "dimensions": 32},
        timeout=30,
    ).json()
    assert np.allclose([d["embedding"] for d in direct["data"]], want, atol=1e-5)


def test_retries_a_503_and_gives_up_after_the_budget(vllm: Served) -> None:
    with FaultProxy(vllm.rerank_url) as proxy:
        remote = VllmReranker(str(vllm.rerank_model), proxy.url, max_length=512, retries=2)
        items = remote.prepare([Pair(QUERY, DOCS[0], INSTR)])
        want = remote.score(items)
        proxy.requests.clear()
        proxy.fail_next = 2
        assert remote.score(items) == want  # two 503s, then the real answer
        assert [s for _, _, s in proxy.requests] == [503, 503, 200]
        proxy.fail_next = 3
        with pytest.raises(BackendError, match="503"):
            remote.score(items)
        # a 400 (the server refuses the input) is not retried
        proxy.requests.clear()
        too_long = [Prepared(2000, list(items[0].payload) * 30)]  # over --max-model-len
        with pytest.raises(BackendError, match="400"):
            remote.score(too_long)
        assert [s for _, _, s in proxy.requests] == [400]


def test_start_up_checks_name_the_problem(vllm: Served, minilm_ce) -> None:
    with FaultProxy(vllm.rerank_url) as proxy:
        proxy.version = "0.31.2"
        with pytest.raises(BackendError, match=r"vLLM 0\.31\.2.*>=0\.32\.0,<0\.33"):
            VllmReranker(str(vllm.rerank_model), proxy.url)
        VllmReranker(str(vllm.rerank_model), proxy.url, check_version=False)
    with pytest.raises(BackendError, match="max-model-len 1024"):
        VllmReranker(str(vllm.rerank_model), vllm.rerank_url, max_length=4096)
    with pytest.raises(BackendError, match="is_original_qwen3_reranker"):
        VllmReranker(str(vllm.rerank_model), vllm.embed_url)  # an embedding server
    with pytest.raises(ValueError, match="cross-encoder"):
        VllmReranker(str(minilm_ce), vllm.rerank_url)
    with pytest.raises(BackendError, match="does not answer"):
        VllmReranker(str(vllm.rerank_model), "http://127.0.0.1:9", retries=0)


def test_cache_batching_deadline_and_metrics_apply_to_vllm(vllm: Served) -> None:
    with FaultProxy(vllm.rerank_url) as proxy:
        app, client = make_client(
            Settings(
                rerank_model=str(vllm.rerank_model),
                vllm_rerank_url=proxy.url,
                embed_backend="none",
                request_timeout_s=2.0,
            )
        )
        try:
            proxy.requests.clear()
            body = {"query": QUERY, "documents": DOCS}
            first = client.post("/v1/rerank", json=body).get_json()
            again = client.post("/v1/rerank", json=body).get_json()
            assert again["results"] == first["results"] and again["meta"]["cached"] == len(DOCS)
            assert [p for _, p, _ in proxy.requests] == ["/classify"]  # one call, then the cache
            metrics = client.get("/metrics").get_data(as_text=True)
            assert (
                "sidecar_batch_size_count" in metrics and "sidecar_cache_hits_total 6.0" in metrics
            )
            proxy.delay_s = 3.0  # slower than the request's deadline: fail open, in time
            r = client.post("/v1/rerank", json={"query": "slow", "documents": DOCS[:2]})
            assert r.status_code == 200 and r.headers["X-Sidecar-Fallback"] == "timeout"
        finally:
            proxy.delay_s = 0.0
            app.extensions["sidecar.engine"].close()
