"""OpenAI-compatible embeddings (``/v1/embeddings``), plus ``input_type``; and the hybrid
query's k-NN leg (``/v1/knn-leg``, ``sidecar.services.knn_leg``). Parse, call the embed
service (``sidecar.services.embed``), answer."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, g, jsonify

from sidecar.api.common import parse_json
from sidecar.schemas import (
    EmbeddingData,
    EmbeddingsRequest,
    EmbeddingsResponse,
    EmbeddingUsage,
    KnnLegRequest,
    KnnLegResponse,
)
from sidecar.services.embed import EmbedCall, EmbedService
from sidecar.services.knn_leg import knn_leg

bp = Blueprint("embeddings", __name__)


@bp.post("/v1/embeddings")
def embeddings() -> Response:
    req = parse_json(EmbeddingsRequest)
    g.items_field = "input"
    service: EmbedService = current_app.extensions["sidecar.embed"]
    out = service.embed(
        EmbedCall(
            texts=req.texts(),
            model=req.model,
            is_query=req.is_query,
            instruction=req.instruction,
            dimensions=req.dimensions,
            encoding=req.encoding_format,
            single=isinstance(req.input, str),
        ),
        started=g.get("started"),
    )
    body = EmbeddingsResponse(
        data=[EmbeddingData(index=i, embedding=e) for i, e in enumerate(out.embeddings)],
        model=out.model,
        usage=EmbeddingUsage(prompt_tokens=out.tokens, total_tokens=out.tokens),
    )
    return jsonify(body.model_dump())


@bp.post("/v1/knn-leg")
def knn_leg_route() -> Response:
    req = parse_json(KnnLegRequest)
    g.items_field = "input"
    service: EmbedService = current_app.extensions["sidecar.embed"]
    out = knn_leg(
        service,
        req.input[0],
        req.search_ext,
        req.field,
        req.k,
        model=req.model,
        instruction=req.instruction,
        started=g.get("started"),
    )
    tokens = out.embedded.tokens
    body = KnnLegResponse(
        leg=out.leg,
        ext=out.ext,
        model=out.embedded.model,
        usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens),
    )
    return jsonify(body.model_dump())
