"""Features of (query, document) pairs in one rerank window (pure: vectors and the
translation come in, a matrix goes out). The training command and the served backend
call the same ``window_features``, so what the model learned is what it is served.

Each cosine also appears minus the best in the window: the reranker's question is "which of
these is best", and an absolute cosine of one bi-encoder drifts with the query's language and
length. Both bi-encoders also read the query's English translation (``sidecar.translation``):
a Chinese query's cosine to an English title is weaker evidence than its translation's. The
lexical features match that translation against the product's title, brand and description
with catalog IDF.

When the documents come in recall order (``in_recall_order``) the window also votes: a
document's mean cosine to the recall's first five (without itself) and its cosine to the
recall's centroid (weighted 1/log2(rank+2)), per bi-encoder. The first hits of a hybrid recall
mostly share the product type the shopper asked for; a keyboard combo among mice stands out.
These and the recall position are NaN without a recall order (``RECALL_ORDER``).
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from sidecar.ranker.document import ProductText
from sidecar.translation.text import catalog_tokens, has_digit, singular

FEATURES: tuple[str, ...] = (
    "e5_cos",
    "e5_cos_minus_best",
    "use_cos",
    "use_cos_minus_best",
    "bm25",
    "bm25_minus_best",
    "idf_overlap_title",
    "idf_overlap_text",
    "model_number_match",
    "brand_match",
    "query_terms",
    "translation_confidence",
    "e5_cos_translation",
    "e5_cos_translation_minus_best",
    "use_cos_translation",
    "use_cos_translation_minus_best",
    "e5_top_sim",
    "e5_top_sim_minus_best",
    "e5_centroid_cos",
    "e5_centroid_cos_minus_best",
    "use_top_sim",
    "use_top_sim_minus_best",
    "use_centroid_cos",
    "use_centroid_cos_minus_best",
    "recall_position",
)
#: the recall position (last)
POSITION = FEATURES.index("recall_position")
#: the features that are missing (NaN) when the documents do not come in recall order
RECALL_ORDER: tuple[int, ...] = (*range(FEATURES.index("e5_top_sim"), POSITION), POSITION)
#: how many of the recall's first documents ``*_top_sim`` compares with
TOP = 5

BM25_K1 = 1.2
BM25_B = 0.75


@dataclass(frozen=True)
class QueryView:
    """What the features need of the query."""

    original: str
    #: the English translation's terms (catalog tokens, singular), distinct, in order
    terms: tuple[str, ...]
    confidence: float


def _norm(token: str) -> str:
    return singular(token) if not has_digit(token) else token


def terms_of(text: str) -> tuple[str, ...]:
    """``text``'s catalog terms (model numbers kept, other words singular). Cached: a window's
    documents come back search after search, and tokenizing them was a fifth of a warm
    rerank; the terms are interned, so a cached title costs its tuple, not its strings."""
    return _terms_of(text)


@lru_cache(maxsize=16384)
def _terms_of(text: str) -> tuple[str, ...]:
    return tuple(sys.intern(_norm(t)) for t in catalog_tokens(text))


def query_view(original: str, translation: str, confidence: float) -> QueryView:
    # the original's model numbers too (a translation may drop or split them)
    numbers = [t for t in terms_of(original) if has_digit(t) and t.isascii()]
    terms = tuple(dict.fromkeys([t for t in terms_of(translation) if t.isascii()] + numbers))
    return QueryView(original, terms, confidence)


def _minus_best(values: np.ndarray) -> np.ndarray:
    return values - values.max() if values.size else values


def recall_votes(vectors: np.ndarray, ranks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each document's mean cosine to the recall's first ``TOP`` documents other than itself,
    and its cosine to the recall's centroid weighted 1/log2(rank+2). ``vectors``: unit rows;
    ``ranks``: each row's place in the recall order (0 = first)."""
    n = len(vectors)
    sim = vectors @ vectors.T
    top = ranks < TOP
    others = np.full(n, top.sum(), dtype=np.float32) - top
    top_sim = (sim[:, top].sum(axis=1) - np.where(top, np.diag(sim), 0.0)) / np.maximum(others, 1)
    centroid = (vectors / np.log2(ranks + 2.0)[:, None]).sum(axis=0)
    centroid /= max(float(np.linalg.norm(centroid)), 1e-12)
    return top_sim.astype(np.float32), (vectors @ centroid).astype(np.float32)


def window_features(
    query: QueryView,
    docs: Sequence[ProductText],
    e5_cos: np.ndarray,
    use_cos: np.ndarray,
    idf: Callable[[str], float],
    brands: frozenset[str],
    positions: Sequence[int] | None,
    e5_cos_translation: np.ndarray | None = None,
    use_cos_translation: np.ndarray | None = None,
    doc_vectors: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """``(len(docs), len(FEATURES))`` float32; ``positions``: each document's place in the
    recall order (0 = first), None when unknown (``RECALL_ORDER`` features are then NaN).
    ``*_cos_translation``: the cosines of the query's translation (default: the query's);
    ``doc_vectors``: the documents' e5 and USE unit vectors, for the recall votes."""
    n = len(docs)
    out = np.full((n, len(FEATURES)), np.nan, dtype=np.float32)
    if n == 0:
        return out
    for name, cos in (
        ("e5_cos", e5_cos),
        ("use_cos", use_cos),
        ("e5_cos_translation", e5_cos if e5_cos_translation is None else e5_cos_translation),
        ("use_cos_translation", use_cos if use_cos_translation is None else use_cos_translation),
    ):
        values = np.asarray(cos, dtype=np.float32)
        out[:, FEATURES.index(name)] = values
        out[:, FEATURES.index(name + "_minus_best")] = _minus_best(values)

    q = query.terms
    q_idf = {t: idf(t) for t in q}
    total_idf = sum(q_idf.values()) or 1.0
    lexical = [terms_of(d.lexical) for d in docs]
    avg_len = sum(len(t) for t in lexical) / n or 1.0
    bm25 = np.zeros(n, dtype=np.float32)
    numbers = [t for t in q if has_digit(t)]
    query_brands = {t for t in q if t in brands}
    for i, (doc, toks) in enumerate(zip(docs, lexical, strict=True)):
        tf = Counter(toks)
        norm = BM25_K1 * (1 - BM25_B + BM25_B * len(toks) / avg_len)
        bm25[i] = sum(q_idf[t] * tf[t] * (BM25_K1 + 1) / (tf[t] + norm) for t in q if tf.get(t))
        title = set(terms_of(doc.title))
        every = set(toks) | {t for b in doc.bullets for t in terms_of(b)}
        out[i, 6] = sum(q_idf[t] for t in q if t in title) / total_idf
        out[i, 7] = sum(q_idf[t] for t in q if t in every) / total_idf
        out[i, 8] = (sum(t in every for t in numbers) / len(numbers)) if numbers else np.nan
        if query_brands:
            doc_brand = set(terms_of(doc.brand)) | (title & brands)
            out[i, 9] = 1.0 if query_brands & doc_brand else -1.0
        else:
            out[i, 9] = 0.0
    out[:, 4] = bm25
    out[:, 5] = _minus_best(bm25)
    out[:, 10] = len(q)
    out[:, 11] = query.confidence
    if positions is not None:
        out[:, POSITION] = np.asarray(positions, dtype=np.float32)
        if doc_vectors is not None:
            ranks = np.argsort(np.argsort(np.asarray(positions), kind="stable"), kind="stable")
            for prefix, vectors in zip(("e5", "use"), doc_vectors, strict=True):
                top_sim, centroid_cos = recall_votes(np.asarray(vectors, np.float32), ranks)
                for name, values in (("top_sim", top_sim), ("centroid_cos", centroid_cos)):
                    out[:, FEATURES.index(f"{prefix}_{name}")] = values
                    out[:, FEATURES.index(f"{prefix}_{name}_minus_best")] = _minus_best(values)
    return out


def ndcg_at(gains: Sequence[float], ideal: Sequence[float], k: int = 10) -> float:
    """nDCG@k with linear gains (the training objective's; reports use ir-measures)."""

    def dcg(values: Sequence[float]) -> float:
        return sum(g / math.log2(i + 2) for i, g in enumerate(values[:k]))

    best = dcg(sorted(ideal, reverse=True))
    return dcg(gains) / best if best > 0 else 0.0
