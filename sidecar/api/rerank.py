"""Rerank routes: Cohere v1 (``/v1/rerank``) and TEI (``/rerank``)."""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Sequence

from flask import Blueprint, Response, current_app, g, jsonify, request

from sidecar.api.common import check_text_limit, deadline, engine, parse_json, settings
from sidecar.backends.base import BackendError
from sidecar.engine import NotReady, RerankOutcome
from sidecar.errors import ApiError
from sidecar.schemas import (
    CohereRerankRequest,
    CohereRerankResponse,
    CohereRerankResult,
    RerankMeta,
    TeiRank,
    TeiRerankRequest,
    is_blank,
)
from sidecar.scoring.batcher import DeadlineExceeded, Overloaded
from sidecar.scoring.blend import blend_with_recall
from sidecar.scoring.fallback import order_keeping_scores
from sidecar.scoring.multilingual import choose, unpack
from sidecar.telemetry import Telemetry, utc_now

bp = Blueprint("rerank", __name__)
log = logging.getLogger(__name__)


def _check_inputs(model: str | None, query: str, docs: Sequence[str], field: str) -> None:
    s = settings()
    g.items_field = field
    reranker = engine().reranker
    if model and reranker is not None:  # while loading, the served name is not known yet
        names = {"default", reranker.name, s.rerank_model_name} - {""}
        if model not in names:
            raise ApiError(
                "model_not_found",
                f"model {model!r} is not served here; use one of {sorted(names)}",
                "model",
            )
    if is_blank(query):
        raise ApiError("empty_input", "query is empty", "query")
    check_text_limit(query, s.max_query_chars, "query")
    if not docs:
        raise ApiError("empty_input", f"{field} is empty; send at least one", field)
    if len(docs) > s.max_documents:
        raise ApiError(
            "payload_too_large",
            f"{field} has {len(docs)} items; the limit is SIDECAR_MAX_DOCUMENTS={s.max_documents}",
            field,
        )
    for i, doc in enumerate(docs):
        check_text_limit(doc, s.max_document_chars, f"{field}[{i}]")


def _localize(query: str, docs: Sequence[str], hint: str | None) -> tuple[list[str], str | None]:
    """The query's language (the request's hint, else detected: reported in ``meta`` and
    telemetry, and it picks the instruction) and each packed document's section in it
    (see multilingual)."""
    lang = hint or engine().languages.detect(query)[0]
    if not any(unpack(d) for d in docs):
        return list(docs), lang
    return [choose(d, lang)[0] for d in docs], lang


def _instruction(requested: str | None, lang: str | None) -> str | None:
    """The request's instruction, else the one SIDECAR_RERANK_INSTRUCTIONS gives for the
    query's language, else None (the engine's default)."""
    if requested:
        return requested
    s = settings()
    return s.instruction_for(lang) if s.instructions_by_language else None


def _score(query: str, texts: list[str], instruction: str | None, truncate: bool) -> RerankOutcome:
    """The model's scores, or with SIDECAR_ON_TIMEOUT=fallback, when the model cannot
    answer in time (slow, overloaded, loading, failing), order-keeping scores sent before
    the deadline, flagged in ``X-Sidecar-Fallback`` and counted in /metrics."""
    eng = engine()
    timeout = settings().request_timeout_s
    model_deadline = deadline() - min(0.2, 0.1 * timeout)  # leave time to answer
    try:
        eng.wait_ready(model_deadline - time.monotonic())
        return eng.rerank(query, texts, instruction, truncate, model_deadline)
    except (DeadlineExceeded, Overloaded, NotReady, BackendError) as exc:
        if settings().on_timeout != "fallback":
            raise
        reason = {
            DeadlineExceeded: "timeout",
            Overloaded: "overloaded",
            NotReady: "unavailable",
            BackendError: "backend_error",
        }[type(exc)]
        current_app.extensions["sidecar.metrics"].fallbacks.labels(reason).inc()
        g.fallback = reason
        scores = order_keeping_scores(len(texts))
        name = eng.reranker.name if eng.reranker is not None else "fallback"
        return RerankOutcome(raw=scores, scores=scores, cached=0, tokens=0, model=name)


@bp.after_request
def _flag_fallback(resp: Response) -> Response:
    reason = g.get("fallback")
    if reason:
        resp.headers["X-Sidecar-Fallback"] = reason
    return resp


def _telemetry_start(query: str, language: str | None, candidates: int) -> None:
    """Decide whether this call is recorded (SIDECAR_TELEMETRY_SAMPLE) and note what the
    request already says; the record is queued once the response exists."""
    writer: Telemetry | None = current_app.extensions.get("sidecar.telemetry")
    if writer is None or not writer.sampled():
        return
    g.telemetry = {"query_language": language, "candidates": candidates}
    g.telemetry_query = None if language else query  # detected off the request path


def _telemetry_result(out: RerankOutcome, order: list[int], weight: float) -> None:
    rec = g.get("telemetry")
    if rec is not None:
        rec.update(
            cache_hits=out.cached,
            cache_hit=out.all_cached,
            top_moved=order[0],  # the new top's incoming position: 0 = the top stayed
            first_rank=order.index(0),  # where the incoming first document ended up
            recall_weight=weight,
            model=out.model,
        )


@bp.after_request
def _record_telemetry(resp: Response) -> Response:
    rec = g.pop("telemetry", None)
    if rec is None:
        return resp
    try:
        started = g.get("started")
        reason = g.get("fallback")
        full = {
            "@timestamp": utc_now(),
            "route": request.url_rule.rule if request.url_rule else request.path,
            **rec,
            "latency_ms": round((time.monotonic() - started) * 1000, 3) if started else None,
            "fallback": bool(reason),
            "fallback_reason": reason or None,
            "status": resp.status_code,
        }
        writer: Telemetry = current_app.extensions["sidecar.telemetry"]
        writer.record({k: v for k, v in full.items() if v is not None}, g.get("telemetry_query"))
    except Exception:  # noqa: BLE001 - telemetry never fails a request
        log.exception("telemetry record failed")
    return resp


def _recall_weight(req: CohereRerankRequest) -> float:
    """The blend with the recall order (sidecar/scoring/blend.py): the request's weight, else
    SIDECAR_RERANK_RECALL_WEIGHT when the documents come in recall order, else none; never
    over fallback scores (already that order)."""
    if g.get("fallback"):
        return 0.0
    if req.recall_weight is not None:
        return req.recall_weight
    return settings().recall_weight if req.in_recall_order else 0.0


def _wire(score: float) -> float:
    """A score as ML Commons can read it: its JSON parser (json-smart) turns a number longer
    than 18 characters (0.30000000000000004, 1/7) into a BigDecimal, which the Cohere
    post-process function cannot cast to Double, and the whole rerank is dropped. Ten
    decimals keep every number short and distinct scores apart."""
    return round(float(score), 10)


def _ranked(scores: Sequence[float]) -> list[int]:
    # Stable: equal scores keep the incoming (recall) order.
    return sorted(range(len(scores)), key=lambda i: -scores[i])


@bp.post("/v1/rerank")
def cohere_rerank() -> Response:
    req = parse_json(CohereRerankRequest)
    texts = req.document_texts()
    _check_inputs(req.model, req.query, texts, "documents")
    texts, lang = _localize(req.query, texts, req.language)
    _telemetry_start(req.query, lang, len(texts))
    out = _score(req.query, texts, _instruction(req.instruction, lang), req.truncate)
    weight = _recall_weight(req)
    if weight:
        out = dataclasses.replace(out, scores=blend_with_recall(out.scores, weight))
    order = _ranked(out.scores)
    _telemetry_result(out, order, weight)
    if req.top_n is not None:
        order = order[: req.top_n]
    results = []
    for i in order:
        doc = None
        if req.return_documents:
            d = req.documents[i]
            doc = {"text": d} if isinstance(d, str) else d.model_dump()
        results.append(
            CohereRerankResult(index=i, relevance_score=_wire(out.scores[i]), document=doc)
        )
    body = CohereRerankResponse(
        id=str(uuid.uuid4()),
        results=results,
        meta=RerankMeta(
            model=out.model,
            cached=out.cached,
            tokens=out.tokens,
            query_language=lang,
            recall_weight=weight or None,
        ),
    )
    return jsonify(body.model_dump(exclude_none=True))


@bp.post("/rerank")
def tei_rerank() -> Response:
    req = parse_json(TeiRerankRequest)
    _check_inputs(None, req.query, req.texts, "texts")
    texts = req.texts
    scored, lang = _localize(req.query, texts, req.language)
    _telemetry_start(req.query, lang, len(texts))
    out = _score(req.query, scored, _instruction(req.instruction, lang), req.truncate)
    values = out.raw if req.raw_scores else out.scores
    order = _ranked(values)
    _telemetry_result(out, order, 0.0)
    ranks = [
        TeiRank(index=i, score=float(values[i]), text=texts[i] if req.return_text else None)
        for i in order
    ]
    return jsonify([r.model_dump(exclude_none=True) for r in ranks])
