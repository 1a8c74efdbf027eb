"""The search pipelines ``sidecar-setup`` creates, and what a search through them reports.

Plain dicts: nothing here talks to a cluster (the sidecar's search page imports it)."""

from __future__ import annotations

import copy
from typing import Any

#: the search pipelines ``sidecar-setup`` creates, from ``index_templates/pipeline.NAME.json``:
#: ``hybrid`` and ``hybrid-rerank`` translate the query first (an ``ml_inference`` request
#: processor calling the sidecar's ``/v1/understand``, fail-open); the ``-untranslated``
#: ones keep the old behaviour for comparison; ``translate`` is the request processor
#: alone, for plain BM25 (``multi_match``) bodies
PIPELINES = (
    "hybrid",
    "hybrid-rerank",
    "hybrid-untranslated",
    "hybrid-untranslated-rerank",
    "translate",
    "rerank",
)
#: the pipelines whose request processor translates the query
TRANSLATING = ("hybrid", "hybrid-rerank", "translate")


def set_weights(pipeline: dict[str, Any], weights: list[float]) -> dict[str, Any]:
    """``pipeline`` with the hybrid weights (BM25, k-NN) of its normalization processor."""
    out = copy.deepcopy(pipeline)
    for proc in out.get("phase_results_processors", []):
        norm = proc.get("normalization-processor")
        if norm:
            norm["combination"]["parameters"]["weights"] = weights
    return out


def failed_processors(response: dict[str, Any]) -> list[str]:
    """``"name: error"`` of each search pipeline processor that failed in a search run with
    ``verbose_pipeline`` (a rerank that ``ignore_failure`` hid, say)."""
    return [
        f"{p.get('processor_name')}: {p.get('error')}"
        for p in response.get("processor_results") or []
        if p.get("status") == "fail"
    ]
