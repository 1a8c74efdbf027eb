"""OpenAI-compatible embeddings (``/v1/embeddings``), plus ``input_type``."""

from __future__ import annotations

import base64

import numpy as np
from flask import Blueprint, Response, g, jsonify

from sidecar.api.common import check_text_limit, deadline, parse_json, ready_engine, settings
from sidecar.backends.base import EmbedKind
from sidecar.errors import ApiError
from sidecar.schemas import (
    EmbeddingData,
    EmbeddingsRequest,
    EmbeddingsResponse,
    EmbeddingUsage,
    is_blank,
)

bp = Blueprint("embeddings", __name__)


@bp.post("/v1/embeddings")
def embeddings() -> Response:
    req = parse_json(EmbeddingsRequest)
    s = settings()
    g.items_field = "input"
    texts = req.texts()
    if not texts:
        raise ApiError("empty_input", "input is empty; send a string or a list of strings", "input")
    if len(texts) > s.max_embed_inputs:
        raise ApiError(
            "payload_too_large",
            f"input has {len(texts)} items; the limit is SIDECAR_MAX_EMBED_INPUTS="
            f"{s.max_embed_inputs}",
            "input",
        )
    for i, text in enumerate(texts):
        param = "input" if isinstance(req.input, str) else f"input[{i}]"
        if is_blank(text):
            raise ApiError("empty_input", f"{param} is empty", param)
        check_text_limit(text, s.max_document_chars, param)
    eng = ready_engine()
    served = {"default", s.embed_model_name} | ({eng.embedder.name} if eng.embedder else set())
    if req.model and req.model not in served:
        raise ApiError(
            "model_not_found",
            f"model {req.model!r} is not served here; use one of {sorted(served - {''})}",
            "model",
        )
    kind: EmbedKind = "query" if req.is_query else "document"
    out = eng.embed(texts, kind, req.instruction, deadline())
    vectors = out.vectors
    if req.dimensions is not None:
        if req.dimensions > vectors.shape[1]:
            raise ApiError(
                "validation_error",
                f"dimensions: {req.dimensions} is more than the model's {vectors.shape[1]}",
                "dimensions",
            )
        # Matryoshka: keep the leading dimensions, then re-normalise.
        vectors = vectors[:, : req.dimensions]
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = vectors / np.maximum(norms, 1e-12)
    data = []
    for i, vec in enumerate(vectors):
        emb: list[float] | str
        if req.encoding_format == "base64":
            emb = base64.b64encode(vec.astype("<f4").tobytes()).decode("ascii")
        else:
            emb = [float(x) for x in vec]
        data.append(EmbeddingData(index=i, embedding=emb))
    body = EmbeddingsResponse(
        data=data,
        model=out.model,
        usage=EmbeddingUsage(prompt_tokens=out.tokens, total_tokens=out.tokens),
    )
    return jsonify(body.model_dump())
