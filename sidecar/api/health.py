"""Liveness, readiness, Prometheus metrics and the OpenAPI document."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from sidecar.api.common import engine
from sidecar.openapi import openapi_document

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """Alive: the process answers HTTP (models may still be loading). A model call running
    longer than SIDECAR_STUCK_AFTER_S makes it 503, so an orchestrator's liveness probe
    restarts a worker whose model hangs (requests meanwhile get fallback scores)."""
    eng = engine()
    stuck = eng.stuck_for()
    limit = current_app.extensions["sidecar.settings"].stuck_after_s
    if stuck > limit:
        resp = jsonify({"status": "stuck", "error": f"a model call has run for {stuck:.0f}s"})
        resp.status_code = 503
        return resp
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    """Ready: models loaded and a probe call through each has answered, and the query
    translator loaded when it loads at start-up (``SIDECAR_QU_*``)."""
    eng = engine()
    qu = current_app.extensions["sidecar.understand"]
    models = {**eng.status(), "understand": qu.status()}
    if eng.ready and (qu.ready or not qu.eager):
        return jsonify({"status": "ready", "models": models})
    status = "failed" if eng.load_error else "loading"
    body = {"status": status, "models": models}
    if eng.load_error:
        body["error"] = eng.load_error
    resp = jsonify(body)
    resp.status_code = 503
    resp.headers["Retry-After"] = "5"
    return resp


@bp.get("/metrics")
def metrics() -> Response:
    data = current_app.extensions["sidecar.metrics"].render()
    return Response(data, mimetype="text/plain; version=0.0.4; charset=utf-8")


@bp.get("/openapi.json")
def openapi() -> Response:
    embedder = engine().embedder
    dims = embedder.dimensions if embedder is not None else None
    return jsonify(openapi_document(current_app.extensions["sidecar.settings"], dims))
