"""The sidecar's cluster-facing side: the search page and the telemetry writer, the only
sidecar code that calls OpenSearch (``client``, plain ``requests``).

``create_app`` mounts it only when ``SIDECAR_OPENSEARCH_URL`` is set; the scoring core
(api, services, engine, scoring, backends) never imports it (tests/unit/test_layering.py).
"""

from __future__ import annotations

from flask import Flask

from sidecar.cluster import search_page
from sidecar.cluster.telemetry import Telemetry
from sidecar.engine import Engine
from sidecar.metrics import Metrics
from sidecar.services.rerank import RerankService
from sidecar.settings import Settings


def mount(
    app: Flask, settings: Settings, metrics: Metrics, engine: Engine, rerank: RerankService
) -> None:
    """Start the telemetry writer (one thread per worker, when sampled) and subscribe it to
    the rerank service; serve the search page unless ``SIDECAR_SEARCH_PAGE=false``."""
    telemetry = Telemetry(settings, metrics, detect=engine.languages.detect).start()
    app.extensions["sidecar.telemetry"] = telemetry
    if telemetry.enabled:
        rerank.listeners.append(telemetry.on_rerank)
    if settings.search_page_enabled:
        app.register_blueprint(search_page.bp)
        # a browser sends no API key: the page is open (README "Search page")
        app.extensions["sidecar.open_prefixes"] += search_page.OPEN_PREFIXES
