"""Blending the reranker's scores with the recall order (pure).

OpenSearch's rerank processor sends the page in the order the first stage ranked it (the
hybrid's order). That order is a signal of its own: BM25 and k-NN over the whole catalog.
A weak reranker (the bundled bi-encoder, whose cosine mostly repeats the k-NN leg) that
re-sorts the page alone throws it away; blending keeps it::

    final[i] = (1 - w) * minmax(scores)[i] + w * (n - i) / n

with ``i`` the document's incoming position, ``n`` the page size and ``w`` the recall
weight. ``w = 0`` returns the model's scores untouched; ``w = 1`` keeps the incoming order
(the same scores as the fallback). Results stay in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from sidecar.scoring.fallback import order_keeping_scores

#: ``SIDECAR_RERANK_RECALL_WEIGHT=auto`` for the bundled embedder: the weight chosen by
#: ``benchmarks/tune_rerank.py`` on the Chorus/Icecat dev queries (README, "Evaluation").
TUNED_RECALL_WEIGHT = 0.7


def blend_with_recall(scores: Sequence[float], recall_weight: float) -> list[float]:
    """The scores of documents given in recall order, blended with that order."""
    if not 0.0 <= recall_weight <= 1.0:
        raise ValueError(f"recall_weight must be in [0, 1], not {recall_weight}")
    if recall_weight == 0.0 or not scores:
        return [float(s) for s in scores]
    lo, hi = min(scores), max(scores)
    spread = hi - lo
    model = [(s - lo) / spread if spread > 0 else 1.0 for s in scores]
    prior = order_keeping_scores(len(scores))
    w = recall_weight
    return [min(1.0, max(0.0, (1.0 - w) * a + w * b)) for a, b in zip(model, prior, strict=True)]


def configured_recall_weight(setting: float | Literal["auto"], reranker_backend: str) -> float:
    """The weight ``SIDECAR_RERANK_RECALL_WEIGHT`` means for a reranker backend. ``auto``:
    the weight tuned on the Chorus dev queries for the bundled embedder (whose cosine alone
    repeats the k-NN leg); none for a cross-encoder, whose scores were not measured here."""
    if setting == "auto":
        return TUNED_RECALL_WEIGHT if reranker_backend == "embedding" else 0.0
    return float(setting)
