"""Prometheus metrics, in a registry of the app's own (so several apps can coexist in a
test process). With several gunicorn workers each worker reports its own numbers."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from sidecar.scoring.batcher import BatchStats

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "sidecar_requests",
            "HTTP requests by route and status",
            ["route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "sidecar_request_latency_seconds",
            "Request latency by route",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "sidecar_batch_size",
            "Items per model batch",
            ["model"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.batch_tokens = Histogram(
            "sidecar_batch_padded_tokens",
            "Padded tokens per model batch",
            ["model"],
            buckets=(64, 256, 1024, 4096, 16384, 65536),
            registry=r,
        )
        self.batch_seconds = Histogram(
            "sidecar_batch_seconds",
            "Model time per batch",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.items = Counter(
            "sidecar_items_scored",
            "Pairs scored or texts embedded by the model",
            ["model"],
            registry=r,
        )
        self.items_per_second = Gauge(
            "sidecar_items_per_second",
            "Throughput of the last model batch (pairs/s)",
            ["model"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "sidecar_queue_depth", "Items waiting for the model", ["model"], registry=r
        )
        self.cache_hits = Counter("sidecar_cache_hits", "Score cache hits", registry=r)
        self.cache_misses = Counter("sidecar_cache_misses", "Score cache misses", registry=r)
        self.model_load_seconds = Gauge(
            "sidecar_model_load_seconds",
            "Time to load each model",
            ["role", "model"],
            registry=r,
        )
        self.vector_cache_hits = Counter(
            "sidecar_vector_cache_hits", "Document vectors read from memory", ["model"], registry=r
        )
        self.vector_cache_misses = Counter(
            "sidecar_vector_cache_misses",
            "Document vectors not in memory (encoded, then cached)",
            ["model"],
            registry=r,
        )
        self.vector_cache_entries = Gauge(
            "sidecar_vector_cache_entries", "Document vectors in memory", registry=r
        )
        self.vector_cache_bytes = Gauge(
            "sidecar_vector_cache_bytes",
            "Memory the cached document vectors take (SIDECAR_VECTOR_CACHE_MB bounds it)",
            registry=r,
        )
        self.fallbacks = Counter(
            "sidecar_fallbacks",
            "Rerank requests answered with order-keeping scores, by reason",
            ["reason"],
            registry=r,
        )
        self.model_ready = Gauge(
            "sidecar_model_ready", "1 once the models are loaded and answering", registry=r
        )
        self.telemetry_records = Counter(
            "sidecar_telemetry_records",
            "Rerank telemetry records: written to OpenSearch, dropped (queue full) or failed "
            "(bulk error, cluster down)",
            ["outcome"],
            registry=r,
        )

    def batch_stats(self, model: str) -> BatchStats:
        return _Stats(self, model)

    def vector_meter(self) -> _VectorMeter:
        return _VectorMeter(self)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Stats(BatchStats):
    def __init__(self, metrics: Metrics, model: str) -> None:
        self.m = metrics
        self.model = model

    def batch(self, items: int, tokens: int, seconds: float) -> None:
        self.m.batch_size.labels(self.model).observe(items)
        self.m.batch_tokens.labels(self.model).observe(tokens)
        self.m.batch_seconds.labels(self.model).observe(seconds)
        self.m.items.labels(self.model).inc(items)
        if seconds > 0:
            self.m.items_per_second.labels(self.model).set(items / seconds)

    def queue(self, depth: int) -> None:
        self.m.queue_depth.labels(self.model).set(depth)


class _VectorMeter:
    """What ``sidecar.ranker.vectors.VectorCache`` reports."""

    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics

    def lookups(self, model: str, hits: int, misses: int) -> None:
        if hits:
            self.m.vector_cache_hits.labels(model).inc(hits)
        if misses:
            self.m.vector_cache_misses.labels(model).inc(misses)

    def size(self, entries: int, nbytes: int) -> None:
        self.m.vector_cache_entries.set(entries)
        self.m.vector_cache_bytes.set(nbytes)
