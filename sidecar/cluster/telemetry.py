"""Rerank telemetry into OpenSearch, for the Dashboards in ``index_templates/dashboards.ndjson``.

The writer listens to the rerank service (``RerankService.listeners``; ``sidecar.cluster``
subscribes it): one record per sampled rerank call (``SIDECAR_TELEMETRY_SAMPLE``) goes
into a bounded in-memory queue; one daemon thread per worker process sends the queue to
the cluster's ``_bulk`` API every ``SIDECAR_TELEMETRY_FLUSH_S`` seconds or
``SIDECAR_TELEMETRY_BATCH`` records, into ``<SIDECAR_TELEMETRY_INDEX>-YYYY.MM.DD`` (UTC).
The request path only ever does a ``put_nowait``: a full queue drops the record, a slow
or down cluster fails the batch; both are counted in
``sidecar_telemetry_records_total{outcome}`` and logged at most once a minute, never
raised. Plain ``requests``, no opensearch-py: the sidecar stays a model service that any
cluster calls.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import requests

from cluster_setup import failures
from sidecar.api.common import status_of
from sidecar.cluster.client import explain, session
from sidecar.metrics import Metrics
from sidecar.services.rerank import RerankEvent
from sidecar.settings import Settings

log = logging.getLogger(__name__)

Record = dict[str, Any]
Detect = Callable[[str], tuple[str | None, float]]

UNKNOWN_LANGUAGE = "und"  # ISO 639-2 "undetermined"
TIMEOUT_S = (2.0, 10.0)  # connect, read: a hanging cluster holds the writer, never a request
LOG_EVERY_S = 60.0
_WAKE = object()  # put by close() so the thread does not wait out its flush interval


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def index_for(prefix: str, timestamp: str) -> str:
    """``<prefix>-YYYY.MM.DD`` of the record's own (UTC) day."""
    return f"{prefix}-{timestamp[0:4]}.{timestamp[5:7]}.{timestamp[8:10]}"


def bulk_body(prefix: str, records: list[Record]) -> bytes:
    """The ``_bulk`` NDJSON: an ``index`` action line, then the document, per record."""
    lines = []
    for rec in records:
        lines.append(json.dumps({"index": {"_index": index_for(prefix, rec["@timestamp"])}}))
        lines.append(json.dumps(rec, ensure_ascii=False))
    return ("\n".join(lines) + "\n").encode("utf-8")


def rerank_record(event: RerankEvent) -> Record:
    """The record of one rerank call (the query text is never stored). ``query_language`` is
    None when the call did not need it: the writer thread detects it then."""
    rec: Record = {
        "@timestamp": utc_now(),
        "route": event.call.route,
        "query_language": event.language,
        "candidates": len(event.call.documents),
    }
    result = event.result
    if result is not None:
        rec.update(
            cache_hits=result.cached,
            cache_hit=result.all_cached,
            top_moved=result.order[0],  # the new top's incoming position: 0 = the top stayed
            first_rank=result.order.index(0),  # where the incoming first document ended up
            recall_weight=result.recall_weight,
            model=result.model,
        )
    reason = result.fallback if result is not None else None
    rec.update(
        latency_ms=round((event.finished - event.started) * 1000, 3),
        fallback=bool(reason),
        fallback_reason=reason,
        status=200 if event.error is None else status_of(event.error),
    )
    return {k: v for k, v in rec.items() if v is not None}


class Telemetry:
    """The writer of one worker process. Disabled (no thread, nothing sampled) unless
    ``settings.telemetry_enabled``."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        detect: Detect | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.enabled = settings.telemetry_enabled
        self.sample = settings.telemetry_sample
        self.prefix = settings.telemetry_index
        self.batch_size = settings.telemetry_batch
        self.flush_s = settings.telemetry_flush_s
        self.url = settings.opensearch_url.rstrip("/") + "/_bulk"
        self._detect = detect
        self._rng = rng or random.Random()
        self._counter = metrics.telemetry_records
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=settings.telemetry_queue)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._session = session(settings)
        self._settings = settings
        self._last_log = float("-inf")
        self._unlogged = 0

    # -- the request path --------------------------------------------------------------
    def on_rerank(self, event: RerankEvent) -> None:
        """A ``RerankService`` listener: record a sampled call."""
        if self.sampled():
            self.record(rerank_record(event), None if event.language else event.call.query)

    def sampled(self) -> bool:
        """Whether this call is recorded (decided before any record is built)."""
        return self.enabled and self._rng.random() < self.sample

    def record(self, rec: Record, query: str | None = None) -> bool:
        """Queue one record without ever waiting; ``False`` when it was dropped. ``query``
        (not stored) lets the writer thread detect a language the route did not need."""
        if not self.enabled:
            return False
        rec.setdefault("@timestamp", utc_now())
        try:
            self._queue.put_nowait((rec, query))
        except queue.Full:
            self._counter.labels("dropped").inc()
            self._warn("telemetry queue full (SIDECAR_TELEMETRY_QUEUE); records dropped")
            return False
        return True

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> Telemetry:
        if self.enabled and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="telemetry-writer", daemon=True)
            self._thread.start()
            atexit.register(self.close)
        return self

    def close(self, timeout: float = 3.0) -> None:
        """Send what is queued, for at most ``timeout`` seconds (best effort at exit)."""
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        with contextlib.suppress(queue.Full):  # then the thread is busy and sees the flag next
            self._queue.put_nowait(_WAKE)
        thread.join(timeout)
        self._thread = None
        atexit.unregister(self.close)
        if not thread.is_alive():  # else it is still in a request, on a daemon thread
            self._session.close()

    # -- the writer thread -------------------------------------------------------------
    def _run(self) -> None:
        batch: list[Record] = []
        deadline = time.monotonic() + self.flush_s
        while not self._stop.is_set():
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                item = None
            if item is not None and item is not _WAKE:
                batch.append(self._complete(*item))
            if len(batch) >= self.batch_size or time.monotonic() >= deadline:
                self._send(batch)
                batch = []
                deadline = time.monotonic() + self.flush_s
        # closing: what is queued now, in batches, then stop
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _WAKE:
                batch.append(self._complete(*item))
            if len(batch) >= self.batch_size:
                self._send(batch)
                batch = []
        self._send(batch)

    def _complete(self, rec: Record, query: str | None) -> Record:
        if rec.get("query_language") is None:
            lang = None
            if query and self._detect is not None:
                try:
                    lang = self._detect(query)[0]
                except Exception:  # noqa: BLE001 - a record without a language is still a record
                    lang = None
            rec["query_language"] = lang or UNKNOWN_LANGUAGE
        return rec

    def _send(self, batch: list[Record]) -> None:
        if not batch:
            return
        try:
            rejected, reason = self._post(batch)
        except Exception as exc:  # noqa: BLE001 - cluster down, slow or odd: the thread goes on
            self._failed(len(batch), str(exc)[:300] or type(exc).__name__)
            return
        if len(batch) > rejected:
            self._counter.labels("written").inc(len(batch) - rejected)
        if rejected:
            self._failed(rejected, f"rejected: {reason}"[:300])

    def _post(self, batch: list[Record]) -> tuple[int, str]:
        """One ``_bulk`` request: how many items the cluster rejected, and the first reason."""
        try:
            resp = self._session.post(
                self.url,
                data=bulk_body(self.prefix, batch),
                headers={"Content-Type": "application/x-ndjson"},
                timeout=TIMEOUT_S,
            )
        except requests.RequestException as exc:
            line = explain(exc, self._settings)
            raise RuntimeError(line or f"no answer: {type(exc).__name__}") from None
        if resp.status_code >= 300:
            line = failures.describe_status(
                resp.status_code,
                resp.text,
                self.url,
                self._settings.opensearch_user,
                failures.SIDECAR,
            )
            raise RuntimeError(line or f"HTTP {resp.status_code}: {resp.text[:200]}")
        answer = resp.json()
        errors = [
            result["error"]
            for item in answer.get("items", [])
            for result in item.values()
            if result.get("error")
        ]
        if not errors:
            return 0, ""
        first = errors[0]
        return len(errors), str(first.get("reason", first) if isinstance(first, dict) else first)

    def _failed(self, count: int, why: str) -> None:
        self._counter.labels("failed").inc(count)
        self._warn(f"telemetry: {count} records not written to {self.url} ({why})")

    def _warn(self, message: str) -> None:
        """Log at most once a minute, with how many were not logged meanwhile."""
        now = time.monotonic()
        if now - self._last_log < LOG_EVERY_S:
            self._unlogged += 1
            return
        more = f" [{self._unlogged} similar messages suppressed]" if self._unlogged else ""
        self._last_log, self._unlogged = now, 0
        log.warning("%s%s", message, more)
