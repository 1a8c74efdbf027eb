"""The rerank pipeline behind ``/v1/rerank`` and ``/rerank``: check the request, localize
(each packed document's section in the query's language, or in the one the reranker reads),
choose the instruction, score (with order-keeping fallback scores when the model cannot
answer in time), blend with the recall order, rank.

``RerankService.rerank`` returns a ``RerankResult`` and tells its listeners about every
call that reached the model (``RerankEvent``): the telemetry writer is one, when a cluster
is configured. The steps that matter are pure functions here (``localize``, ``rank``,
``wire_score``), so a benchmark replays exactly what the service does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sidecar.backends.base import BackendError
from sidecar.engine import Engine, NotReady, RerankOutcome
from sidecar.errors import ApiError
from sidecar.schemas import is_blank
from sidecar.scoring.batcher import DeadlineExceeded, Overloaded
from sidecar.scoring.blend import blend_with_recall, configured_recall_weight
from sidecar.scoring.fallback import order_keeping_scores
from sidecar.scoring.multilingual import choose, unpack
from sidecar.scoring.prompts import instruction_for
from sidecar.services.checks import check_count, check_model, check_text_limit
from sidecar.settings import Settings

log = logging.getLogger(__name__)

#: why a rerank was answered with fallback scores (``X-Sidecar-Fallback``, /metrics)
FALLBACK_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (DeadlineExceeded, "timeout"),
    (Overloaded, "overloaded"),
    (NotReady, "unavailable"),
    (BackendError, "backend_error"),
)


@dataclass(frozen=True)
class RerankCall:
    """One rerank as the caller asked for it."""

    query: str
    documents: Sequence[str]
    #: the model the caller named (None: any)
    model: str | None = None
    #: the query's language when the caller knows it; else detected
    language: str | None = None
    #: the caller's instruction; else the one configured for the query's language
    instruction: str | None = None
    truncate: bool = True
    #: the blend with the recall order; None: the setting when ``in_recall_order``
    recall_weight: float | None = None
    in_recall_order: bool = False
    #: rank by the model's raw scores (logits) instead of activated ones
    raw_scores: bool = False
    #: the request field that holds the documents, for error messages
    field: str = "documents"
    #: who asked (the API route), for the listeners; empty for a benchmark or a CLI
    route: str = ""


@dataclass(frozen=True)
class RerankResult:
    #: per document (the caller's indices): the scores the ranking sorted by
    scores: list[float]
    #: document indices, best first (stable: equal scores keep the incoming order)
    order: list[int]
    #: the query's language (the caller's, else detected; None: not known)
    language: str | None
    recall_weight: float
    model: str
    #: pairs answered from the score cache, and tokens scored by the model
    cached: int
    tokens: int
    #: why fallback scores were answered (see FALLBACK_REASONS); None: the model's
    fallback: str | None = None

    @property
    def all_cached(self) -> bool:
        """Every pair was answered from the score cache (no model call)."""
        return bool(self.scores) and self.cached == len(self.scores)


@dataclass(frozen=True)
class RerankEvent:
    """What a listener hears after a call that passed its checks: its result, or the
    exception it ended with (raised to the caller right after)."""

    call: RerankCall
    language: str | None
    #: monotonic times
    started: float
    finished: float
    result: RerankResult | None = None
    error: Exception | None = None


Listener = Callable[[RerankEvent], None]


# -- the pure steps ---------------------------------------------------------------------------


def localize(
    documents: Sequence[str], language: str | None, reader_language: str | None = None
) -> list[str]:
    """Each packed document's section in ``language`` (see ``scoring.multilingual``), or
    first in ``reader_language`` when the reranker reads one; documents without sections as
    they are."""
    if not any(unpack(d) for d in documents):
        return list(documents)
    return [choose(d, language, reader_language)[0] for d in documents]


def reader_language(reranker: object) -> str | None:
    """The language whose section of a packed document a reranker reads before the query's:
    its ``document_language`` (the learned ranker: English, the language its features match
    the query's translation in and it was trained on), else None."""
    return getattr(reranker, "document_language", None)


def ranked(scores: Sequence[float]) -> list[int]:
    """Indices by descending score. Stable: equal scores keep the incoming (recall) order."""
    return sorted(range(len(scores)), key=lambda i: -scores[i])


def rank(scores: Sequence[float], recall_weight: float = 0.0) -> tuple[list[float], list[int]]:
    """The scores blended with the recall order (``scoring.blend``), and their ranking."""
    final = blend_with_recall(scores, recall_weight)
    return final, ranked(final)


def default_recall_weight(settings: Settings) -> float:
    """SIDECAR_RERANK_RECALL_WEIGHT for the configured reranker: the weight documents that
    come in recall order are blended with when the caller names none."""
    return configured_recall_weight(settings.rerank_recall_weight, settings.resolved_rerank_backend)


def wire_score(score: float) -> float:
    """A score as ML Commons can read it: its JSON parser (json-smart) turns a number longer
    than 18 characters (0.30000000000000004, 1/7) into a BigDecimal, which the Cohere
    post-process function cannot cast to Double, and the whole rerank is dropped. Ten
    decimals keep every number short and distinct scores apart."""
    return round(float(score), 10)


# -- the service ------------------------------------------------------------------------------


class RerankService:
    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        #: called with a RerankEvent after every call that passed its checks
        self.listeners: list[Listener] = []
        self.instructions = dict(settings.rerank_instructions)
        #: SIDECAR_RERANK_RECALL_WEIGHT for documents that come in recall order
        self.recall_weight = default_recall_weight(settings)

    def rerank(self, call: RerankCall, started: float | None = None) -> RerankResult:
        """Answer ``call`` by ``started + SIDECAR_REQUEST_TIMEOUT_S`` (``started``: when the
        request arrived, monotonic; default now)."""
        started = time.monotonic() if started is None else started
        self.check(call)
        language = call.language or self.engine.languages.detect(call.query)[0]
        try:
            result = self._run(call, language, started + self.settings.request_timeout_s)
        except Exception as exc:
            self._emit(RerankEvent(call, language, started, time.monotonic(), error=exc))
            raise
        self._emit(RerankEvent(call, language, started, time.monotonic(), result=result))
        return result

    def check(self, call: RerankCall) -> None:
        s, where = self.settings, call.field
        reranker = self.engine.reranker
        if reranker is not None:  # while loading, the served name is not known yet
            check_model(call.model, (reranker.name, s.rerank_model_name))
        if is_blank(call.query):
            raise ApiError("empty_input", "query is empty", "query")
        check_text_limit(call.query, s.max_query_chars, "query")
        if not call.documents:
            raise ApiError("empty_input", f"{where} is empty; send at least one", where)
        check_count(len(call.documents), s.max_documents, where, "SIDECAR_MAX_DOCUMENTS")
        for i, doc in enumerate(call.documents):
            check_text_limit(doc, s.max_document_chars, f"{where}[{i}]")

    def instruction(self, requested: str | None, language: str | None) -> str | None:
        """The caller's instruction, else the one SIDECAR_RERANK_INSTRUCTIONS gives for the
        query's language, else None (the engine's default)."""
        if requested:
            return requested
        if not self.instructions:
            return None
        return instruction_for(language, self.instructions, self.settings.default_instruction)

    def _run(self, call: RerankCall, language: str | None, deadline: float) -> RerankResult:
        texts = localize(call.documents, language, reader_language(self.engine.reranker))
        instruction = self.instruction(call.instruction, language)
        positions = list(range(len(texts))) if call.in_recall_order else None
        out, fallback = self._score(
            call.query, texts, instruction, call.truncate, deadline, language, positions
        )
        weight = self._recall_weight(call, fallback)
        scores, order = rank(out.raw if call.raw_scores else out.scores, weight)
        return RerankResult(
            scores=scores,
            order=order,
            language=language,
            recall_weight=weight,
            model=out.model,
            cached=out.cached,
            tokens=out.tokens,
            fallback=fallback,
        )

    def _score(
        self,
        query: str,
        texts: list[str],
        instruction: str | None,
        truncate: bool,
        deadline: float,
        language: str | None = None,
        positions: list[int] | None = None,
    ) -> tuple[RerankOutcome, str | None]:
        """The model's scores, or with SIDECAR_ON_TIMEOUT=fallback, when the model cannot
        answer in time (slow, overloaded, loading, failing), order-keeping scores sent before
        the deadline, with the reason (counted in /metrics)."""
        eng = self.engine
        timeout = self.settings.request_timeout_s
        model_deadline = deadline - min(0.2, 0.1 * timeout)  # leave time to answer
        try:
            eng.wait_ready(model_deadline - time.monotonic())
            out = eng.rerank(
                query, texts, instruction, truncate, model_deadline, language, positions
            )
            return out, None
        except tuple(kind for kind, _ in FALLBACK_REASONS) as exc:
            if self.settings.on_timeout != "fallback":
                raise
            reason = next(why for kind, why in FALLBACK_REASONS if isinstance(exc, kind))
        eng.metrics.fallbacks.labels(reason).inc()
        scores = order_keeping_scores(len(texts))
        name = eng.reranker.name if eng.reranker is not None else "fallback"
        return RerankOutcome(raw=scores, scores=scores, cached=0, tokens=0, model=name), reason

    def _recall_weight(self, call: RerankCall, fallback: str | None) -> float:
        """The blend with the recall order (sidecar/scoring/blend.py): the caller's weight,
        else SIDECAR_RERANK_RECALL_WEIGHT when the documents come in recall order, else none;
        never over fallback scores (already that order)."""
        if fallback:
            return 0.0
        if call.recall_weight is not None:
            return call.recall_weight
        return self.recall_weight if call.in_recall_order else 0.0

    def _emit(self, event: RerankEvent) -> None:
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:  # noqa: BLE001 - a listener never fails a rerank
                log.exception("rerank listener %r failed", listener)
