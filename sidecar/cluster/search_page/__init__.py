"""The side-by-side search page: ``GET /search`` (HTML) and ``GET /search.json``.

Mounted (``sidecar.cluster.mount``) when ``SIDECAR_OPENSEARCH_URL`` is set
(``SIDECAR_SEARCH_PAGE=false`` turns it off). A person types a query in any language; the
page shows BM25, hybrid and hybrid + rerank from that cluster side by side, with the
position change the reranker made, and what they searched: the query translated into the
catalog's language by the pipelines' query understanding ("searched as"). Flask
templates, no front-end build step, no JavaScript needed.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template, request

from sidecar.cluster.client import Cluster
from sidecar.cluster.search_page import page
from sidecar.errors import ApiError
from sidecar.languages import CATALOG_NATIVE_NAMES
from sidecar.services.understand import UnderstandService
from sidecar.settings import Settings

bp = Blueprint(
    "search_page",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/search/static",
)

#: the page's routes; they carry no API key (a browser cannot send one): see README
OPEN_PREFIXES = ("/search",)


def _cluster() -> Cluster:
    cluster: Cluster | None = current_app.extensions.get("sidecar.search_cluster")
    if cluster is None:
        settings: Settings = current_app.extensions["sidecar.settings"]
        cluster = Cluster(settings)
        current_app.extensions["sidecar.search_cluster"] = cluster
    return cluster


def _query() -> tuple[str, str, str, str]:
    """``(text, hint, language used, how it was chosen)`` from the request's arguments."""
    settings: Settings = current_app.extensions["sidecar.settings"]
    text = (request.args.get("q") or "").strip()
    hint = (request.args.get("lang") or "auto").strip().lower()
    if hint != "auto" and hint not in CATALOG_NATIVE_NAMES:
        raise ApiError(
            "validation_error",
            f"lang={hint!r}: use auto or one of {', '.join(CATALOG_NATIVE_NAMES)}",
            "lang",
        )
    if len(text) > settings.max_query_chars:
        raise ApiError(
            "validation_error",
            f"the query has {len(text)} characters; the limit is {settings.max_query_chars}",
            "q",
        )
    if hint != "auto":
        return text, hint, hint, "hint"
    if not text:
        return text, hint, "en", ""
    detected, confidence = current_app.extensions["sidecar.engine"].languages.detect(text)
    if detected is None:
        return text, hint, "en", f"not sure ({confidence:.2f}); English assumed"
    return text, hint, detected, f"detected ({confidence:.2f})"


def _searched_as(text: str, lang: str) -> str:
    """What the translating pipelines search for ``text`` in the catalog's language, from
    this sidecar's own query understanding (the pipelines ask the one ``sidecar-setup``
    wired, normally this one): the translation, or the query itself."""
    service: UnderstandService | None = current_app.extensions.get("sidecar.understand")
    if service is None or not text:
        return text
    try:
        return service.understand(text, lang).translation
    except ApiError:
        return text


def _results(text: str, lang: str) -> list[page.Column]:
    settings: Settings = current_app.extensions["sidecar.settings"]
    if not text:
        return []
    return page.run(_cluster(), text, lang, settings.search_rerank_depth)


@bp.get("/search")
def search_page() -> Any:
    settings: Settings = current_app.extensions["sidecar.settings"]
    error, status = "", 200
    try:
        text, hint, lang, how = _query()
    except ApiError as exc:  # shown on the page, with the form to try again
        text, hint, lang, how = "", "auto", "en", ""
        error, status = exc.message, exc.status
    cols = _results(text, lang)
    searched_as = _searched_as(text, lang)
    html = render_template(
        "search.html",
        error=error,
        text=text,
        hint=hint,
        lang=lang,
        lang_name=CATALOG_NATIVE_NAMES.get(lang, lang),
        how=how,
        searched_as=searched_as,
        languages=CATALOG_NATIVE_NAMES,
        columns=cols,
        depth=settings.search_rerank_depth,
        attribution=settings.search_attribution,
        index=settings.search_index,
    )
    return Response(html, status=status, mimetype="text/html")


@bp.get("/search.json")
def search_json() -> Any:
    text, hint, lang, how = _query()
    if not text:
        raise ApiError("empty_input", "the query must not be empty", "q")
    cols = _results(text, lang)
    return jsonify(
        {
            "query": text,
            "language": lang,
            "language_source": how,
            "searched_as": _searched_as(text, lang),
            "columns": page.as_json(cols),
        }
    )
