"""The application factory: ``gunicorn 'sidecar.app:create_app()'``.

Nothing happens at import time. ``create_app`` runs inside each gunicorn worker
(never with ``--preload``), so models load after the fork, on a background thread;
``/readyz`` turns 200 once they answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from flask import Flask, Response, g, request

from sidecar import searchui
from sidecar.api import embeddings, health, rerank
from sidecar.api.common import register_engine_errors
from sidecar.auth import ApiKeys
from sidecar.backends import LoadedBackends
from sidecar.engine import Engine
from sidecar.errors import ApiError, error_response, register_error_handlers
from sidecar.metrics import Metrics
from sidecar.settings import Settings
from sidecar.telemetry import Telemetry


def create_app(
    settings: Settings | None = None,
    loader: Callable[[Settings], LoadedBackends] | None = None,
) -> Flask:
    """Build the app. ``loader`` replaces how models are loaded (tests wrap real ones)."""
    settings = settings or Settings.from_env()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    metrics = Metrics()
    app.extensions["sidecar.settings"] = settings
    app.extensions["sidecar.metrics"] = metrics
    engine = Engine(settings, metrics, loader) if loader else Engine(settings, metrics)
    app.extensions["sidecar.engine"] = engine
    # rerank telemetry into OpenSearch: one writer thread per worker, when configured
    app.extensions["sidecar.telemetry"] = Telemetry(
        settings, metrics, detect=engine.languages.detect
    ).start()

    for bp in (rerank.bp, embeddings.bp, health.bp):
        app.register_blueprint(bp)
    if settings.search_page_enabled:
        app.register_blueprint(searchui.bp)
    register_error_handlers(app)
    register_engine_errors(app)

    keys = ApiKeys(settings.api_keys, settings.api_keys_file)
    app.extensions["sidecar.keys"] = keys
    open_routes = {"/healthz", "/readyz", "/metrics", "/openapi.json"}

    @app.before_request
    def _start_clock_and_authenticate() -> Response | None:
        g.started = time.monotonic()
        if not keys.enabled or (request.path in open_routes and not settings.auth_health):
            return None
        if settings.search_page_enabled and request.path.startswith(searchui.OPEN_PREFIXES):
            return None  # a browser sends no API key: the page is open (README "Search page")
        if keys.check(request.headers.get("Authorization")):
            return None
        resp = error_response(
            ApiError("unauthorized", "missing or invalid API key (Authorization: Bearer <key>)")
        )
        resp.headers["WWW-Authenticate"] = 'Bearer realm="ranking-sidecar"'
        return resp

    @app.after_request
    def _observe(resp: Response) -> Response:
        route = request.url_rule.rule if request.url_rule else "unmatched"
        metrics.requests.labels(route, str(resp.status_code)).inc()
        started = g.get("started")
        if started is not None:
            metrics.latency.labels(route).observe(time.monotonic() - started)
        return resp

    return app
