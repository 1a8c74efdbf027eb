"""Running configurations against a cluster: result lists, latencies, the sidecar's share.

Searches go through opensearch-py like any client's, ``concurrency`` at a time. Each one
is timed on the client (wall time of the HTTP call) and by OpenSearch (``took``). The
sidecar's ``/metrics`` are read before and after a pass: the difference of its request
latency sums per route (``/v1/rerank``, ``/v1/embeddings``) divided by the searches gives
the sidecar's time per search, and its cache and fallback counters say whether the reranks
were computed, answered from the cache, or replaced by order-keeping fallback scores.
(With several gunicorn workers each reports only its own numbers: use one worker.)
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from cluster_setup.pipelines import failed_processors
from cluster_setup.state import model_id, read_state, template_path
from evaluation.config import Configuration
from evaluation.data import Query

SIDECAR_ROUTES = ("/v1/rerank", "/v1/embeddings")


@dataclass
class Pass:
    """One configuration's pass over the queries."""

    name: str
    size: int
    concurrency: int
    results: dict[str, list[str]] = field(default_factory=dict)  # query key -> ids
    seconds: dict[str, float] = field(default_factory=dict)  # client wall time
    took_ms: dict[str, float] = field(default_factory=dict)  # OpenSearch's own
    errors: dict[str, str] = field(default_factory=dict)
    # searches whose pipeline processor failed and was ignored (OpenSearch's verbose mode)
    processor_failures: dict[str, str] = field(default_factory=dict)
    wall_seconds: float = 0.0
    sidecar: dict[str, Any] = field(default_factory=dict)


def pipeline_info(client: Any, name: str | None) -> dict[str, Any]:
    """What a search pipeline does, read from the cluster (weights, rerank or not)."""
    if not name:
        return {"name": None, "rerank": False, "weights": None}
    try:
        body = client.transport.perform_request("GET", f"/_search/pipeline/{name}")[name]
    except Exception as exc:  # noqa: BLE001 - reported, the search will fail loudly
        return {"name": name, "error": str(exc)[:200], "rerank": False, "weights": None}
    weights = None
    for proc in body.get("phase_results_processors", []):
        norm = proc.get("normalization-processor")
        if norm:
            weights = norm.get("combination", {}).get("parameters", {}).get("weights")
    rerank = any("rerank" in p for p in body.get("response_processors", []))
    return {"name": name, "rerank": rerank, "weights": weights}


def embed_model_id(client: Any) -> str | None:
    """The query-embedding model the setup CLI registered (kept in the index template)."""
    try:
        got = client.transport.perform_request("GET", template_path())
    except Exception:  # noqa: BLE001 - not set up by sidecar-setup
        return None
    return model_id(read_state(got))


def run_pass(
    client: Any,
    index: str,
    config: Configuration,
    queries: Sequence[Query],
    embed_model: str,
    concurrency: int,
    size: int | None = None,
    rerank: bool = False,
    progress: Callable[[int], None] | None = None,
    verbose: bool = False,
) -> Pass:
    """Every query once under ``config``; ``size`` overrides the page size. ``verbose``
    asks OpenSearch for its pipeline's processor results, to count the failures that
    ``ignore_failure`` hides (a rerank that failed leaves the hybrid order)."""
    n = size if size is not None else (config.rerank_depth or config.size)
    out = Pass(config.name, n, concurrency)
    params = {"search_pipeline": config.pipeline} if config.pipeline else {}
    if verbose and config.pipeline:
        params["verbose_pipeline"] = "true"

    def one(q: Query) -> tuple[str, list[str] | None, float, float, str, str]:
        body = config.search_body(q.text, embed_model, n)
        # the rerank processor reads its text from the returned _source; else ids suffice
        body.setdefault("_source", ["rerank_text"] if rerank else False)
        started = time.perf_counter()
        try:
            res = client.search(index=index, body=body, params=params)
        except Exception as exc:  # noqa: BLE001 - one failed search is reported, not fatal
            error = f"{type(exc).__name__}: {exc}"
            return q.key, None, time.perf_counter() - started, 0.0, error, ""
        elapsed = time.perf_counter() - started
        ids = [str(h["_id"]) for h in res["hits"]["hits"]]
        failed = "; ".join(failed_processors(res))
        return q.key, ids, elapsed, float(res.get("took", 0)), "", failed

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for done, (key, ids, seconds, took, error, failed) in enumerate(pool.map(one, queries), 1):
            if ids is None:
                out.errors[key] = error[:500]
            else:
                out.results[key] = ids
                out.seconds[key] = seconds
                out.took_ms[key] = took
            if failed:
                out.processor_failures[key] = failed[:500]
            if progress:
                progress(done)
    out.wall_seconds = time.perf_counter() - started
    return out


def supports_verbose(client: Any, index: str, pipeline: str) -> bool:
    """Whether the cluster knows ``verbose_pipeline`` (OpenSearch 2.19+)."""
    try:
        client.search(
            index=index,
            body={"size": 0, "query": {"match_all": {}}},
            params={"search_pipeline": pipeline, "verbose_pipeline": "true"},
        )
    except Exception:  # noqa: BLE001 - an older cluster rejects the parameter
        return False
    return True


def fill(head: dict[str, list[str]], tail: dict[str, list[str]], size: int) -> dict[str, list[str]]:
    """``head``'s lists continued with ``tail``'s results not already in them, to ``size``."""
    out = {}
    for key in set(head) | set(tail):
        first = head.get(key, [])
        seen = set(first)
        out[key] = (first + [d for d in tail.get(key, []) if d not in seen])[:size]
    return out


# -- the sidecar's /metrics ---------------------------------------------------------------------


def _get(sidecar_url: str, path: str) -> urllib.request.Request:
    """A GET to the sidecar, with its API key (``SIDECAR_API_KEY``, as the ingest and setup
    commands use it) for a sidecar that guards /metrics too."""
    key = os.environ.get("SIDECAR_API_KEY")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return urllib.request.Request(sidecar_url.rstrip("/") + path, headers=headers)


def scrape(sidecar_url: str | None, timeout: float = 10) -> dict[str, float] | None:
    """The sidecar's counters as ``{name{labels}: value}``; None when it cannot be read."""
    if not sidecar_url:
        return None
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(_get(sidecar_url, "/metrics"), timeout=timeout) as r:
            text = r.read().decode("utf-8")
    except (urllib.error.URLError, OSError):
        return None
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()) if k != "le")
            if "le" in s.labels:
                continue
            out[f"{s.name}{{{labels}}}"] = float(s.value)
    return out


def sidecar_share(
    before: dict[str, float] | None, after: dict[str, float] | None, searches: int
) -> dict[str, Any]:
    """What the sidecar did during a pass, from two scrapes of its counters."""
    if before is None or after is None or searches == 0:
        return {}

    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    routes = {}
    for route in SIDECAR_ROUTES:
        seconds = delta(f"sidecar_request_latency_seconds_sum{{route={route}}}")
        count = delta(f"sidecar_request_latency_seconds_count{{route={route}}}")
        routes[route] = {"requests": int(round(count)), "seconds": seconds}
    fallbacks = sum(
        after[k] - before.get(k, 0.0) for k in after if k.startswith("sidecar_fallbacks_total{")
    )
    errors = sum(
        after[k] - before.get(k, 0.0)
        for k in after
        if k.startswith("sidecar_requests_total{")
        and "status=2" not in k
        and any(f"route={r}" in k for r in SIDECAR_ROUTES)
    )
    hits = delta("sidecar_cache_hits_total{}")
    misses = delta("sidecar_cache_misses_total{}")
    total = sum(r["seconds"] for r in routes.values())
    return {
        "routes": routes,
        "seconds_per_search": total / searches,
        "cache_hits": int(round(hits)),
        "cache_misses": int(round(misses)),
        "cache_hit_ratio": hits / (hits + misses) if hits + misses else None,
        "fallbacks": int(round(fallbacks)),
        "errors": int(round(errors)),
    }


def sidecar_status(sidecar_url: str | None) -> dict[str, Any] | None:
    if not sidecar_url:
        return None
    try:
        with urllib.request.urlopen(_get(sidecar_url, "/readyz"), timeout=10) as r:
            status: dict[str, Any] = json.load(r)
            return status
    except (urllib.error.URLError, OSError, ValueError):
        return None
