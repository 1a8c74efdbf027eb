"""Features of (query, document) pairs in one rerank window (pure: vectors and the
translation come in, a matrix goes out). The training command and the served backend
call the same ``window_features``, so what the model learned is what it is served.

Each cosine also appears minus the best in the window: the reranker's question is "which of
these is best", and an absolute cosine of one bi-encoder drifts with the query's language and
length. The lexical features match the query's English translation (``sidecar.translation``)
against the product's title, brand and description with catalog IDF.
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
    "recall_position",
)
#: the feature that is missing (NaN) when the documents do not come in recall order
POSITION = FEATURES.index("recall_position")

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


def window_features(
    query: QueryView,
    docs: Sequence[ProductText],
    e5_cos: np.ndarray,
    use_cos: np.ndarray,
    idf: Callable[[str], float],
    brands: frozenset[str],
    positions: Sequence[int] | None,
) -> np.ndarray:
    """``(len(docs), len(FEATURES))`` float32; ``positions``: each document's place in the
    recall order (0 = first), None when unknown (the feature is then NaN)."""
    n = len(docs)
    out = np.full((n, len(FEATURES)), np.nan, dtype=np.float32)
    if n == 0:
        return out
    out[:, 0] = e5_cos
    out[:, 1] = _minus_best(np.asarray(e5_cos, dtype=np.float32))
    out[:, 2] = use_cos
    out[:, 3] = _minus_best(np.asarray(use_cos, dtype=np.float32))

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
    return out


def ndcg_at(gains: Sequence[float], ideal: Sequence[float], k: int = 10) -> float:
    """nDCG@k with linear gains (the training objective's; reports use ir-measures)."""

    def dcg(values: Sequence[float]) -> float:
        return sum(g / math.log2(i + 2) for i, g in enumerate(values[:k]))

    best = dcg(sorted(ideal, reverse=True))
    return dcg(gains) / best if best > 0 else 0.0
