"""The OpenAPI 3.1 document, generated from the pydantic schemas so it cannot drift."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import models_json_schema

from sidecar import __version__
from sidecar.errors import ERROR_CODES
from sidecar.schemas import (
    CohereRerankRequest,
    CohereRerankResponse,
    CohereV2RerankRequest,
    CohereV2RerankResponse,
    EmbeddingsRequest,
    EmbeddingsResponse,
    ErrorEnvelope,
    Health,
    KnnLegRequest,
    KnnLegResponse,
    TeiRank,
    TeiRerankRequest,
    UnderstandRequest,
    UnderstandResponse,
)
from sidecar.settings import Settings

_REF = "#/components/schemas/{model}"


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    out = {}
    for status in statuses:
        codes = sorted(c for c, s in ERROR_CODES.items() if s == status)
        out[str(status)] = _json(_ref(ErrorEnvelope), "error: " + ", ".join(codes))
    return out


_INPUT_ERRORS = (400, 404, 413, 415, 422, 429, 500, 502, 503, 504)


def _post(summary: str, req: type[BaseModel], ok: dict[str, Any]) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref(req)}},
            },
            "responses": {"200": _json(ok, "success"), **_errors(*_INPUT_ERRORS)},
        }
    }


def _limit(schemas: dict[str, Any], model: str, field: str, **bounds: int) -> None:
    """Write a configured limit into a property's schema (for every string/array branch)."""
    prop = schemas[model]["properties"][field]
    for branch in [prop, *prop.get("anyOf", [])]:
        kind = branch.get("type")
        if kind == "array":
            if "maxItems" in bounds:
                branch["maxItems"] = bounds["maxItems"]
            items = branch.get("items", {})
            if "maxLength" in bounds and items.get("type") == "string":
                items["maxLength"] = bounds["maxLength"]
            for sub in items.get("anyOf", []):
                if sub.get("type") == "string" and "maxLength" in bounds:
                    sub["maxLength"] = bounds["maxLength"]
        elif kind == "string" and "maxLength" in bounds:
            branch["maxLength"] = bounds["maxLength"]


@lru_cache(maxsize=8)
def openapi_document(
    settings: Settings | None = None, embed_dimensions: int | None = None
) -> dict[str, Any]:
    """The document; with ``settings`` (and the loaded embedder's width), the configured
    limits are part of it, so a client can tell a valid request from the schema alone."""
    models: list[type[BaseModel]] = [
        CohereRerankRequest,
        CohereRerankResponse,
        CohereV2RerankRequest,
        CohereV2RerankResponse,
        TeiRerankRequest,
        TeiRank,
        EmbeddingsRequest,
        EmbeddingsResponse,
        KnnLegRequest,
        KnnLegResponse,
        UnderstandRequest,
        UnderstandResponse,
        ErrorEnvelope,
        Health,
    ]
    _, defs = models_json_schema([(m, "validation") for m in models], ref_template=_REF)
    schemas = defs.get("$defs", {})
    if settings is not None:
        docs, chars = settings.max_documents, settings.max_document_chars
        _limit(schemas, "CohereRerankRequest", "query", maxLength=settings.max_query_chars)
        _limit(schemas, "CohereRerankRequest", "documents", maxItems=docs, maxLength=chars)
        schemas["RerankDocument"]["properties"]["text"]["maxLength"] = chars
        _limit(schemas, "CohereV2RerankRequest", "query", maxLength=settings.max_query_chars)
        _limit(schemas, "CohereV2RerankRequest", "documents", maxItems=docs, maxLength=chars)
        _limit(schemas, "TeiRerankRequest", "query", maxLength=settings.max_query_chars)
        _limit(schemas, "TeiRerankRequest", "texts", maxItems=docs, maxLength=chars)
        _limit(
            schemas,
            "EmbeddingsRequest",
            "input",
            maxItems=settings.max_embed_inputs,
            maxLength=chars,
        )
        _limit(schemas, "UnderstandRequest", "query", maxLength=settings.max_query_chars)
    if embed_dimensions:
        dims = schemas["EmbeddingsRequest"]["properties"]["dimensions"]
        for branch in dims.get("anyOf", [dims]):
            if branch.get("type") == "integer":
                branch["maximum"] = embed_dimensions
    tei_list = TypeAdapter(list[TeiRank]).json_schema(ref_template=_REF)
    text = {
        "description": "Prometheus text format",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ranking sidecar",
            "version": __version__,
            "description": "Rerank, embedding and query-understanding service for OpenSearch "
            "(ML Commons connectors).",
        },
        "paths": {
            "/v1/rerank": _post(
                "Rerank documents for a query (Cohere v1 shape)",
                CohereRerankRequest,
                _ref(CohereRerankResponse),
            ),
            "/v2/rerank": _post(
                "Rerank documents for a query (Cohere v2 shape, as Elasticsearch's cohere "
                "inference service parses it)",
                CohereV2RerankRequest,
                _ref(CohereV2RerankResponse),
            ),
            "/rerank": _post(
                "Rerank texts for a query (text-embeddings-inference shape)",
                TeiRerankRequest,
                tei_list,
            ),
            "/v1/embeddings": _post(
                "Embed texts (OpenAI shape)", EmbeddingsRequest, _ref(EmbeddingsResponse)
            ),
            "/v1/knn-leg": _post(
                "Embed a query as the hybrid query's k-NN leg; the search ext answered back "
                "repaired (the embed-leg connector's call)",
                KnnLegRequest,
                _ref(KnnLegResponse),
            ),
            "/v1/understand": _post(
                "Translate a query into the catalog's language; what BM25 and k-NN should search",
                UnderstandRequest,
                _ref(UnderstandResponse),
            ),
            "/healthz": {
                "get": {"summary": "Liveness", "responses": {"200": _json(_ref(Health), "alive")}}
            },
            "/readyz": {
                "get": {
                    "summary": "Readiness: models loaded and answering",
                    "responses": {
                        "200": _json(_ref(Health), "ready"),
                        "503": _json(_ref(Health), "loading or failed"),
                    },
                }
            },
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": text}}},
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1")},
                }
            },
        },
        "components": {"schemas": schemas},
    }
