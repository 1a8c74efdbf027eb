"""Qwen3-Embedding-style embeddings (last-token pooling) on the tiny random Qwen3."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from sidecar.backends.transformers_backend import TransformersEmbedder
from sidecar.scoring.prompts import qwen3_embed_query
from sidecar.settings import Settings
from tests.conftest import make_client

TEXTS = ["red running shoes", "zapatillas de running rojas, talla 42", "无线鼠标"]


def reference(folder, texts) -> np.ndarray:
    """The Qwen3-Embedding model card's recipe: EOS appended, last token, L2 norm."""
    tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModel.from_pretrained(folder, local_files_only=True).eval()
    out = []
    for text in texts:
        ids = tok(text, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        with torch.no_grad():
            h = model(input_ids=torch.tensor([ids])).last_hidden_state[0, -1]
        out.append(torch.nn.functional.normalize(h, dim=-1).numpy())
    return np.stack(out)


def test_last_token_pooling_matches_the_reference(tiny_qwen3) -> None:
    emb = TransformersEmbedder(str(tiny_qwen3), threads=1)
    docs = emb.embed(emb.prepare(TEXTS, "document", "unused"))
    assert np.allclose(docs, reference(tiny_qwen3, TEXTS), atol=1e-5)
    instr = "Given a product search query, retrieve relevant products"
    queries = emb.embed(emb.prepare(TEXTS, "query", instr))
    want = reference(tiny_qwen3, [qwen3_embed_query(t, instr) for t in TEXTS])
    assert np.allclose(queries, want, atol=1e-5)
    # a batch (left-padded) equals one text at a time
    alone = np.stack([emb.embed(emb.prepare([t], "document", ""))[0] for t in TEXTS])
    assert np.allclose(docs, alone, atol=1e-5)


def test_served_with_dimensions(tiny_qwen3) -> None:
    app, client = make_client(Settings(embed_model=str(tiny_qwen3)))
    try:
        r = client.post(
            "/v1/embeddings", json={"input": TEXTS, "dimensions": 32, "input_type": "document"}
        )
        assert r.status_code == 200, r.get_data(as_text=True)
        got = np.array([d["embedding"] for d in r.get_json()["data"]])
        full = reference(tiny_qwen3, TEXTS)[:, :32]
        assert np.allclose(got, full / np.linalg.norm(full, axis=1, keepdims=True), atol=1e-5)
        assert r.get_json()["model"] == tiny_qwen3.name
    finally:
        app.extensions["sidecar.engine"].close()


@pytest.mark.parametrize("kind", ["query", "document"])
def test_truncation_keeps_the_eos_token(tiny_qwen3, kind) -> None:
    emb = TransformersEmbedder(str(tiny_qwen3), max_length=16, threads=1)
    (item,) = emb.prepare(["mouse " * 100], kind, "Find")
    assert item.length == 16 and item.payload[-1] == emb.eos_id
