"""Liveness, readiness, Prometheus metrics and the OpenAPI document."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from sidecar.api.common import engine
from sidecar.openapi import openapi_document

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """Alive: the process answers HTTP (models may still be loading)."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    """Ready: models loaded and a probe call through each has answered."""
    eng = engine()
    if eng.ready:
        return jsonify({"status": "ready", "models": eng.status()})
    status = "failed" if eng.load_error else "loading"
    body = {"status": status, "models": eng.status()}
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
    return jsonify(openapi_document())
