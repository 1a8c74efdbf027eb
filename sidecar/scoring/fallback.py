"""Scores that keep the incoming (recall) order, for a rerank that cannot be answered.

OpenSearch's rerank processor re-sorts the page by the scores it gets back; strictly
decreasing scores in the incoming order leave the hybrid order as it was, so a slow or
failing model costs the search its reranking, never the search itself.
"""

from __future__ import annotations


def order_keeping_scores(n: int) -> list[float]:
    """``n`` floats in (0, 1], strictly decreasing: ``(n - i) / n``."""
    return [(n - i) / n for i in range(n)]
