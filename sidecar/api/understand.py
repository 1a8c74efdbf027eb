"""Query understanding (``/v1/understand``): parse, call the understand service
(``sidecar.services.understand``), answer."""

from __future__ import annotations

from dataclasses import asdict

from flask import Blueprint, Response, current_app, jsonify

from sidecar.api.common import parse_json
from sidecar.schemas import UnderstandRequest, UnderstandResponse
from sidecar.services.understand import UnderstandService

bp = Blueprint("understand", __name__)


@bp.post("/v1/understand")
def understand() -> Response:
    req = parse_json(UnderstandRequest)
    service: UnderstandService = current_app.extensions["sidecar.understand"]
    out = service.understand(req.query, req.language)
    return jsonify(UnderstandResponse.model_validate(asdict(out)).model_dump())
