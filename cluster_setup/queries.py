"""The query bodies the project sends: BM25 over the per-language fields, k-NN through the
sidecar's query embeddings, and their hybrid.

The hybrid body is fail-open: its k-NN leg is a placeholder ``{"match_none": {}}`` and the text
rides along in ``ext.ml_inference.query_texts``; the ``ml_inference`` request processor of the
``hybrid`` / ``hybrid-rerank`` pipelines (model ``embed-leg``) swaps in the whole k-NN leg. When
the sidecar fails, the placeholder stays and the search answers from BM25 alone (a ``neural``
leg would fail the whole search). :func:`neural_hybrid_body` is the older form, still accepted
by the pipelines unchanged. Shared by the search page, ``make run``, the
tests, the benchmarks and the evaluation, so all of them search the same way.

Plain dicts of the OpenSearch query DSL: nothing here talks to a cluster."""

from __future__ import annotations

from typing import Any

TEXT_FIELDS = ["title.*^3", "brand.text^2", "description.*", "bullets.*"]
#: the query's words may match across fields (a brand in ``brand``, the type in ``title``):
#: ``cross_fields`` beat ``best_fields`` and ``most_fields`` on the dev set, 5-fold CV
#: (benchmarks/results/tune_bm25-latest.md)
MULTI_MATCH_TYPE = "cross_fields"
#: k of the k-NN leg. The index's HNSW search is approximate: asking for k=100 finds better
#: neighbours than k=50, and the hybrid gains from it (README "Evaluation").
K = 100


def bm25(text: str) -> dict[str, Any]:
    return {"multi_match": {"query": text, "fields": TEXT_FIELDS, "type": MULTI_MATCH_TYPE}}


def neural(text: str, embed_model_id: str, k: int = K) -> dict[str, Any]:
    return {"neural": {"embedding": {"query_text": text, "model_id": embed_model_id, "k": k}}}


def knn(vector: list[float], k: int = K) -> dict[str, Any]:
    return {"knn": {"embedding": {"vector": vector, "k": k}}}


def rerank_ext(text: str) -> dict[str, Any]:
    return {"rerank": {"query_context": {"query_text": text}}}


def search_body(query: dict[str, Any], text: str, size: int = 10) -> dict[str, Any]:
    """A search body; ``ext.rerank`` is set so the same body works with any pipeline."""
    return {"size": size, "query": query, "ext": rerank_ext(text)}


#: the k-NN leg's placeholder until the pipeline's ``ml_inference`` processor replaces it
PLACEHOLDER_LEG: dict[str, Any] = {"match_none": {}}


def hybrid_body(
    text: str, embed_model_id: str | None = None, size: int = 10, k: int = K
) -> dict[str, Any]:
    """The fail-open hybrid: BM25 + a placeholder the pipeline turns into the k-NN leg (k =
    :data:`K`, written into the ``embed-leg`` connector). Another ``k`` needs the ``neural``
    form, which :func:`neural_hybrid_body` sends (it fails the search when the sidecar does)."""
    if k != K:
        if not embed_model_id:
            raise ValueError(f"k={k} needs the neural form, and so the embed model id")
        return neural_hybrid_body(text, embed_model_id, size, k)
    body = search_body({"hybrid": {"queries": [bm25(text), dict(PLACEHOLDER_LEG)]}}, text, size)
    body["ext"]["ml_inference"] = {"query_texts": [text]}
    return body


def neural_hybrid_body(
    text: str, embed_model_id: str, size: int = 10, k: int = K
) -> dict[str, Any]:
    """BM25 + a ``neural`` leg: OpenSearch embeds the text during the query rewrite, and a
    failed embedding fails the search (HTTP 500)."""
    return search_body(
        {"hybrid": {"queries": [bm25(text), neural(text, embed_model_id, k)]}}, text, size
    )


def bm25_body(text: str, size: int = 10) -> dict[str, Any]:
    return search_body(bm25(text), text, size)
