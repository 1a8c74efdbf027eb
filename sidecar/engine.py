"""The work behind the API: models loaded off the request path, then cache -> batcher ->
backend for every rerank and embedding call. Knows nothing of Flask or HTTP."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from sidecar.backends import LoadedBackends, load_backends
from sidecar.backends.base import (
    BackendError,
    Embedder,
    EmbedKind,
    InputTooLong,
    Pair,
    Prepared,
    Reranker,
    WindowReranker,
    check_scores,
)
from sidecar.metrics import Metrics
from sidecar.ranker.vectors import VectorCache, query_model
from sidecar.scoring.batcher import DeadlineExceeded, MicroBatcher
from sidecar.scoring.cache import ScoreCache, pair_key
from sidecar.scoring.language import LanguageDetector
from sidecar.settings import Settings

log = logging.getLogger(__name__)


class NotReady(Exception):
    """Models are still loading (or failed to load)."""

    def __init__(self, message: str, retry_after: float | None = 5.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class RerankOutcome:
    raw: list[float]
    scores: list[float]
    cached: int
    tokens: int
    model: str

    @property
    def all_cached(self) -> bool:
        """Every pair was answered from the score cache (no model call)."""
        return bool(self.raw) and self.cached == len(self.raw)


@dataclass
class EmbedOutcome:
    vectors: np.ndarray
    tokens: int
    model: str


class Engine:
    """Owns the models, their batchers and the score cache for one worker process.

    Loading starts on a background thread when the engine is created, which happens
    inside each gunicorn worker (after the fork): no model is ever loaded in the master.
    """

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        loader: Callable[[Settings], LoadedBackends] = load_backends,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.cache = ScoreCache(settings.cache_size)
        #: document vectors of the window rerankers (SIDECAR_VECTOR_CACHE_MB)
        self.vectors = VectorCache(settings.vector_cache_mb << 20, metrics.vector_meter())
        self.languages = LanguageDetector()
        self._loader = loader
        self._ready = threading.Event()
        self._error: str | None = None
        self.reranker: Reranker | None = None
        self.embedder: Embedder | None = None
        self._rerank_batcher: MicroBatcher[float] | None = None
        self._embed_batcher: MicroBatcher[np.ndarray] | None = None
        self._thread = threading.Thread(target=self._load, name="model-loader", daemon=True)
        self._thread.start()

    # -- lifecycle ---------------------------------------------------------------------
    def _load(self) -> None:
        s = self.settings
        try:
            loaded = self._loader(s)
            self.reranker = loaded.reranker
            self.embedder = loaded.embedder
            self.metrics.model_load_seconds.labels("rerank", loaded.reranker.name).set(
                loaded.load_seconds.get("rerank", 0.0)
            )
            common = dict(
                max_batch_tokens=s.max_batch_tokens,
                max_batch_size=s.max_batch_size,
                max_queue=s.max_queue_pairs,
                wait_s=s.batch_wait_ms / 1000.0,
            )
            reranker = loaded.reranker
            self._rerank_batcher = MicroBatcher(
                "rerank",
                lambda batch: check_scores(reranker.score(batch), len(batch)),
                stats=self.metrics.batch_stats(reranker.name),
                **common,  # type: ignore[arg-type]
            )
            if loaded.embedder is not None:
                embedder = loaded.embedder
                self.metrics.model_load_seconds.labels("embed", embedder.name).set(
                    loaded.load_seconds.get("embed", 0.0)
                )
                self._embed_batcher = MicroBatcher(
                    "embed",
                    lambda batch: list(_check_vectors(embedder.embed(batch), len(batch))),
                    stats=self.metrics.batch_stats(embedder.name),
                    **common,  # type: ignore[arg-type]
                )
            self.languages.load()
            self.vectors.clear()  # vectors of models no longer served
            self._warm_vectors()
            self._probe()
        except Exception as exc:
            log.exception("model loading failed")
            self._error = f"model loading failed: {type(exc).__name__}: {exc}"
            self.metrics.model_ready.set(0)
        else:
            self.metrics.model_ready.set(1)
        finally:
            self._ready.set()

    def _probe(self) -> None:
        """One real call through each model, so 'ready' means 'answering'."""
        deadline = time.monotonic() + self.settings.load_timeout_s
        self._score_uncached(
            [Pair("probe", "probe", self.settings.default_instruction)], True, deadline
        )
        if self.embedder is not None and self._embed_batcher is not None:
            items = self.embedder.prepare(["probe"], "query", "")
            self._embed_batcher.submit(items, deadline).wait()

    def _warm_vectors(self) -> None:
        """SIDECAR_VECTOR_CACHE_WARM: vector files written for the served models."""
        served = set(getattr(self.reranker, "vector_models", ()))
        for path in filter(None, (p.strip() for p in self.settings.vector_cache_warm.split(","))):
            try:
                model = _vector_file_model(path)
                if model not in served:
                    log.warning(
                        "vector cache: %s holds %s vectors, not served; skipped", path, model
                    )
                    continue
                put = self.vectors.load(path, model)
            except (OSError, ValueError, KeyError) as exc:
                log.warning("vector cache: cannot read %s: %s", path, exc)
                continue
            log.info("vector cache: %d vectors of %s from %s", put, model, path)

    def _caches_documents_of(self, model: str) -> bool:
        return model in getattr(self.reranker, "vector_models", ())

    def wait_ready(self, timeout: float) -> None:
        if not self._ready.wait(max(0.0, timeout)):
            raise NotReady("models are still loading")
        if self._error:
            raise NotReady(self._error, retry_after=None)

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and self._error is None

    @property
    def load_error(self) -> str | None:
        return self._error

    def status(self) -> dict[str, object]:
        out: dict[str, object] = {}
        if self.reranker is not None:
            out["rerank"] = {"name": self.reranker.name, "kind": self.reranker.kind}
        if self.embedder is not None:
            out["embed"] = {
                "name": self.embedder.name,
                "kind": self.embedder.kind,
                "dimensions": self.embedder.dimensions,
            }
        return out

    def stuck_for(self) -> float:
        """How long the longest running model call has been running."""
        return max(
            (b.busy_for() for b in (self._rerank_batcher, self._embed_batcher) if b is not None),
            default=0.0,
        )

    def close(self) -> None:
        for b in (self._rerank_batcher, self._embed_batcher):
            if b is not None:
                b.close()
        closer = getattr(self.reranker, "close", None)
        if closer is not None:
            closer()

    # -- rerank --------------------------------------------------------------------------
    def rerank(
        self,
        query: str,
        documents: Sequence[str],
        instruction: str | None,
        truncate: bool,
        deadline: float,
        language: str | None = None,
        positions: Sequence[int] | None = None,
    ) -> RerankOutcome:
        """``language``, ``positions`` (each document's place in the recall order): read by
        rerankers of the whole window only."""
        self.wait_ready(deadline - time.monotonic())
        assert self.reranker is not None
        reranker = self.reranker
        if isinstance(reranker, WindowReranker):
            return self._rerank_window(reranker, query, documents, language, positions, deadline)
        instr = instruction or self.settings.default_instruction
        keys = [pair_key(reranker.name, instr, query, d) for d in documents]
        cached = self.cache.get_many(keys)
        raw: list[float | None] = list(cached)
        # Score each distinct missing document once.
        todo: dict[bytes, int] = {}
        for i, (key, value) in enumerate(zip(keys, cached, strict=True)):
            if value is None and key not in todo:
                todo[key] = i
        hits = len(documents) - sum(1 for v in cached if v is None)
        self.metrics.cache_hits.inc(hits)
        self.metrics.cache_misses.inc(len(documents) - hits)
        tokens = 0
        if todo:
            firsts = list(todo.values())
            pairs = [Pair(query, documents[i], instr) for i in firsts]
            scored, tokens = self._score_uncached(pairs, truncate, deadline, index_map=firsts)
            fresh = dict(zip(todo.keys(), scored, strict=True))
            self.cache.put_many(list(fresh.items()))
            raw = [fresh[k] if v is None else v for k, v in zip(keys, raw, strict=True)]
        final = [float(v) for v in raw if v is not None]
        return RerankOutcome(
            raw=final,
            scores=[reranker.activate(v) for v in final],
            cached=hits,
            tokens=tokens,
            model=reranker.name,
        )

    def _rerank_window(
        self,
        reranker: WindowReranker,
        query: str,
        documents: Sequence[str],
        language: str | None,
        positions: Sequence[int] | None,
        deadline: float,
    ) -> RerankOutcome:
        """In the request thread: its models are small and locked per call, and a window's
        document vectors come from the vector cache (paid once)."""
        if time.monotonic() >= deadline:
            raise DeadlineExceeded("no time left for the reranker")
        t0 = time.perf_counter()
        try:
            raw, cached = reranker.score_window(query, documents, language, positions, self.vectors)
        except (DeadlineExceeded, InputTooLong):
            raise
        except Exception as exc:
            raise BackendError(f"{type(exc).__name__}: {exc}") from exc
        raw = check_scores(raw, len(documents))
        self.metrics.batch_stats(reranker.name).batch(len(documents), 0, time.perf_counter() - t0)
        return RerankOutcome(
            raw=raw,
            scores=[reranker.activate(v) for v in raw],
            cached=cached,
            tokens=0,
            model=reranker.name,
        )

    def _score_uncached(
        self,
        pairs: Sequence[Pair],
        truncate: bool,
        deadline: float,
        index_map: Sequence[int] | None = None,
    ) -> tuple[list[float], int]:
        assert self.reranker is not None and self._rerank_batcher is not None
        try:
            items = self.reranker.prepare(pairs, truncate)
        except InputTooLong as exc:
            if index_map is not None:
                exc.index = index_map[exc.index]
            raise
        ticket = self._rerank_batcher.submit(items, deadline)
        return list(ticket.wait()), sum(p.length for p in items)

    # -- embeddings ----------------------------------------------------------------------
    def embed(
        self,
        texts: Sequence[str],
        kind: EmbedKind,
        instruction: str | None,
        deadline: float,
        truncate: bool = True,
    ) -> EmbedOutcome:
        self.wait_ready(deadline - time.monotonic())
        if self.embedder is None or self._embed_batcher is None:
            raise BackendError("no embedding model is configured (SIDECAR_EMBED_BACKEND=none)")
        instr = instruction or self.settings.embed_query_instruction
        items: list[Prepared] = self.embedder.prepare(texts, kind, instr, truncate)
        vectors = self._embed_batcher.submit(items, deadline).wait()
        if vectors and self._caches_documents_of(self.embedder.name):
            # ingest embeds every product's passage, and a search's k-NN leg its query: the
            # window reranker reads both later (a query under its own cache model name)
            model = self.embedder.name if kind == "document" else query_model(self.embedder.name)
            self.vectors.put_many(model, list(texts), np.stack(vectors))
        return EmbedOutcome(
            vectors=np.stack(vectors) if vectors else np.zeros((0, self.embedder.dimensions)),
            tokens=sum(p.length for p in items),
            model=self.embedder.name,
        )


def _vector_file_model(path: str) -> str:
    with np.load(path, allow_pickle=False) as data:
        return str(data["model"])


def _check_vectors(vecs: np.ndarray, expected: int) -> np.ndarray:
    arr = np.asarray(vecs, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] != expected:
        raise BackendError(f"embedder returned shape {arr.shape} for {expected} inputs")
    if not np.isfinite(arr).all():
        raise BackendError("embedder returned non-finite values")
    return arr
