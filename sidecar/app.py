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

from sidecar.api import embeddings, health, rerank, understand
from sidecar.api.common import register_engine_errors
from sidecar.auth import ApiKeys
from sidecar.backends import LoadedBackends
from sidecar.engine import Engine
from sidecar.errors import ApiError, error_response, register_error_handlers
from sidecar.metrics import Metrics
from sidecar.services.embed import EmbedService
from sidecar.services.rerank import RerankService
from sidecar.services.understand import TranslatorFactory, UnderstandService
from sidecar.settings import Settings


def create_app(
    settings: Settings | None = None,
    loader: Callable[[Settings], LoadedBackends] | None = None,
    translator: TranslatorFactory | None = None,
) -> Flask:
    """Build the app. ``loader`` replaces how models are loaded (tests wrap real ones);
    ``translator`` how the query translator is built."""
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
    rerank_service = RerankService(settings, engine)
    app.extensions["sidecar.rerank"] = rerank_service
    app.extensions["sidecar.embed"] = EmbedService(settings, engine)
    # the query translator loads on its own thread, like the models (one per worker)
    app.extensions["sidecar.understand"] = UnderstandService(settings, translator)
    #: path prefixes served without an API key (besides the health routes)
    app.extensions["sidecar.open_prefixes"] = ()

    for bp in (rerank.bp, embeddings.bp, understand.bp, health.bp):
        app.register_blueprint(bp)
    if settings.opensearch_url:
        # the search page and the telemetry writer: the only parts that call a cluster
        from sidecar.cluster import mount

        mount(app, settings, metrics, engine, rerank_service)
    register_error_handlers(app)
    register_engine_errors(app)

    keys = ApiKeys(settings.api_keys, settings.api_keys_file)
    app.extensions["sidecar.keys"] = keys
    open_routes = {"/healthz", "/readyz", "/metrics", "/openapi.json"}
    open_prefixes: tuple[str, ...] = app.extensions["sidecar.open_prefixes"]

    @app.before_request
    def _start_clock_and_authenticate() -> Response | None:
        g.started = time.monotonic()
        if not keys.enabled or (request.path in open_routes and not settings.auth_health):
            return None
        if open_prefixes and request.path.startswith(open_prefixes):
            return None
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
