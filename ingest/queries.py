"""The query bodies every client of the cluster sends (the demo, the tests, the evaluation).

They live with the search page (``sidecar.searchui.queries``), which must not import
``ingest``; this module is their name on the ingest side."""

from sidecar.cluster.search_page.queries import (
    TEXT_FIELDS,
    K,
    bm25,
    bm25_body,
    hybrid_body,
    knn,
    neural,
    rerank_ext,
    search_body,
)

__all__ = [
    "K",
    "TEXT_FIELDS",
    "bm25",
    "bm25_body",
    "hybrid_body",
    "knn",
    "neural",
    "rerank_ext",
    "search_body",
]
