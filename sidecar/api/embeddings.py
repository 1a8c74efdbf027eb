"""OpenAI-compatible embeddings (``/v1/embeddings``), plus ``input_type``. Parse, call the
embed service (``sidecar.services.embed``), answer."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, g, jsonify

from sidecar.api.common import parse_json
from sidecar.schemas import EmbeddingData, EmbeddingsRequest, EmbeddingsResponse, EmbeddingUsage
from sidecar.services.embed import EmbedCall, EmbedService

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
