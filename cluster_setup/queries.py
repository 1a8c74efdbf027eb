"""The query bodies the project sends: BM25 over the per-language fields, k-NN through the
sidecar's query embeddings, and their hybrid. Shared by the search page, ``make run``, the
tests, the benchmarks and the evaluation, so all of them search the same way.

Plain dicts of the OpenSearch query DSL: nothing here talks to a cluster."""

from __future__ import annotations

from typing import Any

TEXT_FIELDS = ["title.*^3", "brand.text^2", "description.*", "bullets.*"]
#: k of the k-NN leg. The index's HNSW search is approximate: asking for k=100 finds better
#: neighbours than k=50, and the hybrid gains from it (README "Evaluation").
K = 100


def bm25(text: str) -> dict[str, Any]:
    return {"multi_match": {"query": text, "fields": TEXT_FIELDS}}


def neural(text: str, embed_model_id: str, k: int = K) -> dict[str, Any]:
    return {"neural": {"embedding": {"query_text": text, "model_id": embed_model_id, "k": k}}}


def knn(vector: list[float], k: int = K) -> dict[str, Any]:
    return {"knn": {"embedding": {"vector": vector, "k": k}}}


def rerank_ext(text: str) -> dict[str, Any]:
    return {"rerank": {"query_context": {"query_text": text}}}


def search_body(query: dict[str, Any], text: str, size: int = 10) -> dict[str, Any]:
    """A search body; ``ext.rerank`` is set so the same body works with any pipeline."""
    return {"size": size, "query": query, "ext": rerank_ext(text)}


def hybrid_body(text: str, embed_model_id: str, size: int = 10, k: int = K) -> dict[str, Any]:
    return search_body(
        {"hybrid": {"queries": [bm25(text), neural(text, embed_model_id, k)]}}, text, size
    )


def bm25_body(text: str, size: int = 10) -> dict[str, Any]:
    return search_body(bm25(text), text, size)
