"""Faults, against the real node and the real gunicorn server (the real objects wrapped,
nothing mocked): what the searcher sees, what the ingest sees, how long recovery takes.

Searches use a hybrid query with a precomputed vector, so the only sidecar call in the
search path is the rerank (the one that may fail open)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from cluster_setup import queries
from ingest.loader import SidecarEmbedder
from sidecar.launcher import SidecarProcess, is_ready
from tests.opensearch.conftest import AUTH, SIDECAR_KEY, rerank_pipeline_to
from tests.opensearch.test_ingest import chorus_products, ids_in, write_jsonl

DEADLINE_S = 1.5


def report(what: str, **facts: Any) -> None:
    print(f"\n[fault] {what}: " + ", ".join(f"{k}={v}" for k, v in facts.items()))


class Faulty:
    def __init__(self, client: Any, tmp: Path) -> None:
        self.client = client
        self.control = tmp / "fault.json"
        self.set("none")
        self.proc = SidecarProcess(
            log_path=tmp / "faulty-sidecar.log",
            app="tests.faults_app:create()",
            env={
                "FAULT_CONTROL": str(self.control),
                "SIDECAR_REQUEST_TIMEOUT_S": str(DEADLINE_S),
                "SIDECAR_CACHE_SIZE": "0",
                "SIDECAR_API_KEYS": SIDECAR_KEY,
                "SIDECAR_THREADS": "8",
            },
        )

    def set(self, mode: str, delay: float = 0.0) -> None:
        self.control.write_text(json.dumps({"mode": mode, "delay": delay}))

    def start(self) -> None:
        self.proc.start(timeout=120)

    def fallbacks(self) -> float:
        text = requests.get(self.proc.url + "/metrics", timeout=10).text
        return sum(
            float(line.split()[-1])
            for line in text.splitlines()
            if line.startswith("sidecar_fallbacks_total")
        )


@pytest.fixture(scope="module")
def faulty(client, wired, catalog, tmp_path_factory) -> Any:
    f = Faulty(client, tmp_path_factory.mktemp("faults"))
    f.start()
    # ML Commons calls this second sidecar through a pipeline of its own
    with rerank_pipeline_to(client, f.proc.url, "faulty-hybrid-rerank"):
        yield f
        f.proc.stop()


@pytest.fixture(scope="module")
def search_body(sidecar) -> dict[str, Any]:
    text = "wireless mouse"
    vector = SidecarEmbedder(sidecar.url).embed([text], "query")[0].tolist()
    return queries.search_body(
        {"hybrid": {"queries": [queries.bm25(text), queries.knn(vector)]}}, text
    )


def ids(client: Any, body: dict[str, Any], pipeline: str) -> list[str]:
    res = client.search(index="products", body=body, params={"search_pipeline": pipeline})
    return [h["_id"] for h in res["hits"]["hits"]]


@pytest.mark.parametrize(
    "mode,delay", [("slow", 5.0), ("hang", 3600.0), ("raise", 0.0), ("nan", 0.0)]
)
def test_fault_model_slow_hanging_raising_nan_keeps_searches_in_hybrid_order(
    client, faulty, search_body, mode, delay
) -> None:
    hybrid = ids(client, search_body, "hybrid")
    faulty.set(mode, delay)
    before = faulty.fallbacks()
    try:
        times = []
        for _ in range(3):
            started = time.monotonic()
            got = ids(client, search_body, "faulty-hybrid-rerank")
            times.append(time.monotonic() - started)
            assert got == hybrid  # no failed search; the recall order is kept
    finally:
        faulty.set("none")
    assert faulty.fallbacks() - before == 3
    assert max(times) < DEADLINE_S + 2.0  # bounded by the sidecar's own deadline
    report(
        f"model {mode}",
        searches="3/3 ok in hybrid order",
        slowest_s=round(max(times), 2),
        sidecar_deadline_s=DEADLINE_S,
    )


def test_fault_gunicorn_worker_killed_mid_request(client, faulty, search_body) -> None:
    hybrid = ids(client, search_body, "hybrid")
    faulty.set("slow", 0.8)  # the request is inside the model when the worker dies
    result: dict[str, Any] = {}

    def search() -> None:
        try:
            result["ids"] = ids(client, search_body, "faulty-hybrid-rerank")
        except Exception as exc:  # noqa: BLE001 - a failed search is what we look for
            result["error"] = exc

    thread = threading.Thread(target=search)
    thread.start()
    time.sleep(0.4)
    master = faulty.proc.pid
    workers = subprocess.run(
        ["pgrep", "-P", str(master)], capture_output=True, text=True
    ).stdout.split()
    assert workers, "no gunicorn worker found"
    os.kill(int(workers[0]), signal.SIGKILL)
    killed_at = time.monotonic()
    thread.join(30)
    faulty.set("none")
    assert "error" not in result, result.get("error")
    assert result["ids"] == hybrid
    while not is_ready(faulty.proc.url) and time.monotonic() - killed_at < 120:
        time.sleep(0.2)
    r = requests.post(
        faulty.proc.url + "/v1/rerank",
        headers=AUTH,
        timeout=30,
        json={"query": "mouse", "documents": ["a mouse", "a toner"]},
    )
    recovery = time.monotonic() - killed_at
    assert r.status_code == 200 and "X-Sidecar-Fallback" not in r.headers
    assert recovery < 60
    report(
        "gunicorn worker SIGKILLed mid-request",
        search="answered in hybrid order",
        recovery_s=round(recovery, 2),
    )


def test_fault_sidecar_killed_during_search_load(client, faulty, search_body) -> None:
    hybrid = ids(client, search_body, "hybrid")
    stop = threading.Event()
    outcomes: list[Any] = []

    def load() -> None:
        while not stop.is_set():
            try:
                outcomes.append(ids(client, search_body, "faulty-hybrid-rerank"))
            except Exception as exc:  # noqa: BLE001 - counted as a failed search
                outcomes.append(exc)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    faulty.proc.stop()  # the whole sidecar goes away under load
    killed_at = time.monotonic()
    time.sleep(2.0)
    faulty.start()  # back on the same port
    recovery = time.monotonic() - killed_at
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join(30)
    failures = [o for o in outcomes if isinstance(o, Exception)]
    assert outcomes and not failures, failures[:3]
    assert all(o == hybrid or set(o) == set(hybrid) for o in outcomes)
    report(
        "sidecar killed under 4 concurrent searchers",
        searches=len(outcomes),
        failed=len(failures),
        restart_to_ready_s=round(recovery, 2),
    )


def test_fault_opensearch_restarted_during_ingest(sidecar, wired, tmp_path) -> None:
    from cluster_setup.client import make_client
    from local_node.node import LocalNode, run_root

    if os.environ.get("OPENSEARCH_URL"):
        pytest.skip("restarts a local node; an external cluster is not restarted")
    node = LocalNode(run_dir=run_root() / f"restart-{os.getpid()}")
    url = node.start()
    try:
        setup = subprocess.run(
            [
                sys.executable,
                "-m",
                "cluster_setup",
                "--opensearch",
                url,
                "--sidecar",
                sidecar.url,
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert setup.returncode == 0, setup.stderr[-2000:]
        products = chorus_products(300, offset=6000)
        feed = write_jsonl(tmp_path / "feed.jsonl", products)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ingest",
                "--opensearch",
                url,
                "--sidecar",
                sidecar.url,
                "--batch-size",
                "16",
                "--json",
                str(feed),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        client = make_client(url)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if client.indices.exists_alias(name="products"):
                client.indices.refresh(index="products")
                if client.count(index="products")["count"] >= 32:
                    break
            time.sleep(0.2)
        node.stop()
        down_at = time.monotonic()
        time.sleep(1.0)
        node.start()
        back = time.monotonic() - down_at
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
        summary = json.loads(out)
        assert summary["retries"] >= 1  # it waited the restart out
        got = ids_in(make_client(url), "products")
        assert len(got) == len(set(got)) == len(products)  # no loss, no duplicate
        report(
            "OpenSearch restarted during an ingest",
            ingest="paused and went on",
            retries=summary["retries"],
            node_down_s=round(back, 1),
            lost=0,
            duplicated=0,
        )
    finally:
        node.stop()
        import shutil

        if node.run_dir is not None:
            shutil.rmtree(node.run_dir, ignore_errors=True)
