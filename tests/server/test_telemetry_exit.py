"""The telemetry writer inside the real gunicorn worker: records still queued when the
sidecar is stopped (SIGTERM) are sent on the way out, and a cluster that does not answer
does not hold the stop up. The ``_bulk`` endpoint is a real HTTP server on loopback."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import requests

from sidecar.launcher import SidecarProcess
from tests.conftest import MOUSE_DOCS
from tests.loopback import LoopbackServer, wait_for

pytestmark = pytest.mark.server


def start(bulk: LoopbackServer, log: Path) -> SidecarProcess:
    proc = SidecarProcess(
        log_path=log,
        env={
            "SIDECAR_OPENSEARCH_URL": bulk.url,
            "SIDECAR_TELEMETRY_FLUSH_S": "600",  # only the exit sends
            "SIDECAR_SEARCH_PAGE": "false",
        },
    )
    proc.start(timeout=120)
    return proc


def test_queued_records_are_sent_when_the_worker_stops(tmp_path: Path) -> None:
    bulk = LoopbackServer()
    proc = start(bulk, tmp_path / "server.log")
    try:
        for query in ("wireless mouse", "无线鼠标"):
            r = requests.post(
                proc.url + "/v1/rerank",
                json={"query": query, "documents": MOUSE_DOCS},
                timeout=30,
            )
            assert r.status_code == 200
        time.sleep(0.5)
        assert bulk.received == []  # nothing before the interval
    finally:
        proc.stop()
        bulk.close()
    docs = [d for _, d in bulk.bulk_docs()]
    assert [d["route"] for d in docs] == ["/v1/rerank", "/v1/rerank"], proc.tail()
    assert [d["query_language"] for d in docs] == ["en", "zh"]


def test_a_hanging_cluster_does_not_hold_the_stop_up(tmp_path: Path) -> None:
    bulk = LoopbackServer(gate=threading.Event())  # never answers until the test ends
    proc = start(bulk, tmp_path / "server.log")
    try:
        r = requests.post(
            proc.url + "/v1/rerank", json={"query": "mouse", "documents": MOUSE_DOCS}, timeout=30
        )
        assert r.status_code == 200
        started = time.monotonic()
        proc.stop()
        took = time.monotonic() - started
        assert wait_for(lambda: bool(bulk.received), timeout=1)  # it did try
        assert took < 10, proc.tail()  # the writer's close waits 3 s at most
    finally:
        proc.stop()
        bulk.close()
