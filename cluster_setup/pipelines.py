"""The search pipelines ``sidecar-setup`` creates, and what a search through them reports.

Plain dicts: nothing here talks to a cluster (the sidecar's search page imports it)."""

from __future__ import annotations

import copy
from typing import Any

#: the search pipelines ``sidecar-setup`` creates, from ``index_templates/pipeline.NAME.json``
PIPELINES = ("hybrid", "hybrid-rerank", "rerank")


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
