"""Rerank routes: Cohere v1 (``/v1/rerank``), Cohere v2 (``/v2/rerank``, the shape
Elasticsearch's ``cohere`` inference service parses) and TEI (``/rerank``). Parse, call the
rerank service (``sidecar.services.rerank``), answer."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request

from sidecar.api.common import parse_json
from sidecar.schemas import (
    CohereRerankRequest,
    CohereRerankResponse,
    CohereRerankResult,
    CohereV2Document,
    CohereV2RerankRequest,
    CohereV2RerankResponse,
    CohereV2RerankResult,
    RerankMeta,
    TeiRank,
    TeiRerankRequest,
)
from sidecar.services.rerank import RerankCall, RerankResult, RerankService, wire_score

bp = Blueprint("rerank", __name__)


def _rerank(
    req: CohereRerankRequest | CohereV2RerankRequest | TeiRerankRequest,
    documents: list[str],
    **options: Any,
) -> RerankResult:
    """What both APIs ask the same way, plus their ``options`` (see ``RerankCall``)."""
    call = RerankCall(
        query=req.query,
        documents=documents,
        language=req.language,
        instruction=req.instruction,
        truncate=req.truncate,
        route=str(request.url_rule),
        **options,
    )
    service: RerankService = current_app.extensions["sidecar.rerank"]
    g.items_field = call.field  # names the list in a "too long" error
    return service.rerank(call, started=g.get("started"))


def _answer(body: object, result: RerankResult) -> Response:
    resp = jsonify(body)
    if result.fallback:
        resp.headers["X-Sidecar-Fallback"] = result.fallback
    return resp


@bp.post("/v1/rerank")
def cohere_rerank() -> Response:
    req = parse_json(CohereRerankRequest)
    result = _rerank(
        req,
        req.document_texts(),
        model=req.model,
        recall_weight=req.recall_weight,
        in_recall_order=req.in_recall_order,
    )
    order = result.order if req.top_n is None else result.order[: req.top_n]
    results = []
    for i in order:
        doc = None
        if req.return_documents:
            d = req.documents[i]
            doc = {"text": d} if isinstance(d, str) else d.model_dump()
        results.append(
            CohereRerankResult(index=i, relevance_score=wire_score(result.scores[i]), document=doc)
        )
    body = CohereRerankResponse(
        id=str(uuid.uuid4()),
        results=results,
        meta=RerankMeta(
            model=result.model,
            cached=result.cached,
            tokens=result.tokens,
            query_language=result.language,
            recall_weight=result.recall_weight or None,
        ),
    )
    return _answer(body.model_dump(exclude_none=True), result)


@bp.post("/v2/rerank")
def cohere_v2_rerank() -> Response:
    req = parse_json(CohereV2RerankRequest)
    result = _rerank(
        req,
        req.documents,
        model=req.model,
        recall_weight=req.recall_weight,
        in_recall_order=req.in_recall_order,
    )
    order = result.order if req.top_n is None else result.order[: req.top_n]
    results = [
        CohereV2RerankResult(
            index=i,
            relevance_score=wire_score(result.scores[i]),
            document=CohereV2Document(text=req.documents[i]) if req.return_documents else None,
        )
        for i in order
    ]
    body = CohereV2RerankResponse(results=results, id=str(uuid.uuid4()))
    return _answer(body.model_dump(exclude_none=True), result)


@bp.post("/rerank")
def tei_rerank() -> Response:
    req = parse_json(TeiRerankRequest)
    result = _rerank(req, req.texts, raw_scores=req.raw_scores, field="texts")
    ranks = [
        TeiRank(index=i, score=result.scores[i], text=req.texts[i] if req.return_text else None)
        for i in result.order
    ]
    return _answer([r.model_dump(exclude_none=True) for r in ranks], result)
