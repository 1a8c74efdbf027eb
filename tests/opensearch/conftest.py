"""A real cluster for the end-to-end tests, and the real sidecar next to it.

Which cluster: ``OPENSEARCH_URL`` (an existing one; ``OPENSEARCH_USER`` /
``OPENSEARCH_PASSWORD`` / ``OPENSEARCH_INSECURE``), else the official image through
testcontainers where a Docker engine answers, else a local node from Maven Central
(``local_node``); the image or node is of the line ``OPENSEARCH_VERSION`` picks (the default
line when unset; ``test_other_line.py`` smoke-tests the other). The fixture prints which.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opensearchpy.exceptions import ConflictError

from cluster_setup import budget as budgets
from cluster_setup.bodies import load_body, substitute
from cluster_setup.budget import Budget
from cluster_setup.client import make_client
from ingest.catalog import normalize
from ingest.loader import SidecarEmbedder, load_products
from sidecar.launcher import SidecarProcess

CHORUS = Path(__file__).resolve().parents[3] / "shared" / "data" / "chorus_icecat"
QUERIES = ("phone case", "wireless mouse", "laptop", "bluetooth speaker", "usb stick", "mouse")
EXTRA_PRODUCTS = 300
SIDECAR_KEY = "e2e-secret-key"
AUTH = {"Authorization": f"Bearer {SIDECAR_KEY}"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/opensearch/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.opensearch)


def docker_available() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def opensearch_url(request: pytest.FixtureRequest) -> Iterator[str]:
    url = os.environ.get("OPENSEARCH_URL")
    if url:
        print(f"\n[opensearch] using the existing cluster at {url} (OPENSEARCH_URL)")
        yield url
        return
    if docker_available():
        try:
            from testcontainers.opensearch import OpenSearchContainer
        except ImportError:
            OpenSearchContainer = None  # noqa: N806
        if OpenSearchContainer is not None:
            from local_node.node import default_version

            version = default_version()
            with OpenSearchContainer(f"opensearchproject/opensearch:{version}") as container:
                cfg = container.get_config()
                url = f"http://{cfg['host']}:{cfg['port']}"
                print(f"\n[opensearch] using a testcontainers image at {url}")
                yield url
            return
    from local_node.node import LocalNode, NodeError, run_root

    run = run_root() / f"pytest-{os.getpid()}"
    node = LocalNode(run_dir=run)
    try:
        url = node.start()
    except NodeError as exc:
        pytest.fail(f"could not start the local OpenSearch node: {exc}")
    print(f"\n[opensearch] using a local node from Maven Central at {url} (logs: {run}/logs)")
    try:
        yield url
    finally:
        node.stop()
        if request.session.testsfailed == 0:  # logs are kept only when something failed
            shutil.rmtree(run, ignore_errors=True)


@pytest.fixture(scope="session")
def sidecar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SidecarProcess]:
    # The sidecar demands an API key: every call below (setup's connectors, the loader, the
    # ingest CLI, the tests' own requests) must carry it, as in production.
    os.environ["SIDECAR_API_KEY"] = SIDECAR_KEY
    proc = SidecarProcess(
        log_path=tmp_path_factory.mktemp("sidecar") / "sidecar.log",
        # the query translator loads at start-up (readiness waits for it), so every search
        # through a translating pipeline is translated the same way
        env={"SIDECAR_API_KEYS": SIDECAR_KEY, "SIDECAR_QU_BACKEND": "dictionary"},
    )
    proc.start()
    yield proc
    proc.stop()
    os.environ.pop("SIDECAR_API_KEY", None)


@pytest.fixture(scope="session")
def client(opensearch_url: str) -> Any:
    return make_client(opensearch_url)


def run_setup(
    opensearch_url: str, sidecar_url: str, *extra: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """``sidecar-setup`` for real, as a user runs it."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "cluster_setup",
            "--opensearch",
            opensearch_url,
            "--sidecar",
            sidecar_url,
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
    )


def trust(client: Any, url: str) -> None:
    """Let ML Commons call ``url``'s origin (as sidecar-setup does for the sidecar)."""
    settings = client.cluster.get_settings(flat_settings=True, include_defaults=True)
    key = "plugins.ml_commons.trusted_connector_endpoints_regex"
    current = {**settings["defaults"], **settings["persistent"]}.get(key) or []
    origin = "^" + url.replace(".", "\\.") + "/.*$"
    if origin not in current:
        client.cluster.put_settings(body={"persistent": {key: [*current, origin]}})


@contextlib.contextmanager
def remote_model(
    client: Any, url: str, name: str, role: str = "rerank", budget: Budget = budgets.DEFAULT
) -> Iterator[str]:
    """A connector ``index_templates/connector.ROLE.json`` to ``url`` (with ``budget``'s
    timeouts) and a deployed remote model on it, as sidecar-setup wires the main ones;
    yields the model id; removed afterwards."""
    req = client.transport.perform_request
    trust(client, url)
    connector = budgets.apply(
        substitute(
            load_body(f"connector.{role}.json"),
            {"SIDECAR_URL": url, "SIDECAR_API_KEY": SIDECAR_KEY},
        ),
        budget,
    )
    connector["name"] = name
    cid = req("POST", "/_plugins/_ml/connectors/_create", body=connector)["connector_id"]
    res = req(
        "POST",
        "/_plugins/_ml/models/_register",
        params={"deploy": "true"},
        body={"name": name, "function_name": "remote", "connector_id": cid},
    )
    model_id = res.get("model_id")
    for _ in range(120):
        task = req("GET", f"/_plugins/_ml/tasks/{res['task_id']}")
        if task["state"] == "COMPLETED":
            model_id = model_id or task["model_id"]
            break
        time.sleep(0.5)
    try:
        yield model_id
    finally:
        req("POST", f"/_plugins/_ml/models/{model_id}/_undeploy")
        req("DELETE", f"/_plugins/_ml/models/{model_id}")
        # ML Commons 2.19 looks for models still using a connector with a *match* query on
        # the model index's text-mapped connector_id, so another connector's id that shares
        # an analysed token ("PnO" in "pzqIE6IBs3-PnO-UGv95") blocks the delete with a 409.
        # A leftover connector is harmless: the node is thrown away after the session.
        try:
            req("DELETE", f"/_plugins/_ml/connectors/{cid}")
        except ConflictError as exc:
            print(f"\n[opensearch] connector {cid} kept: {exc.info}")


@contextlib.contextmanager
def rerank_pipeline_to(
    client: Any, sidecar_url: str, name: str, budget: Budget = budgets.DEFAULT
) -> Iterator[str]:
    """A hybrid-rerank search pipeline ``name`` whose rerank step calls another sidecar
    through a connector and model of its own (as sidecar-setup wires the main one); removed
    afterwards."""
    req = client.transport.perform_request
    with remote_model(client, sidecar_url, name, "rerank", budget) as model_id:
        pipeline = substitute(
            load_body("pipeline.rerank.json"), {"RERANK_MODEL_ID": model_id}
        )
        pipeline["phase_results_processors"] = load_body("pipeline.hybrid.json")[
            "phase_results_processors"
        ]
        req("PUT", f"/_search/pipeline/{name}", body=pipeline)
        try:
            yield name
        finally:
            req("DELETE", f"/_search/pipeline/{name}")


@pytest.fixture(scope="session")
def wired(opensearch_url: str, sidecar: SidecarProcess) -> dict[str, Any]:
    """The setup CLI applied for real; returns its JSON report."""
    out = run_setup(opensearch_url, sidecar.url, "--json")
    assert out.returncode == 0, out.stderr[-3000:]
    report: dict[str, Any] = json.loads(out.stdout)
    return report


def chorus_slice() -> tuple[list[dict[str, Any]], dict[str, dict[str, int]]]:
    """Products judged for QUERIES plus a deterministic sample of others, and the
    judgments of QUERIES: a slice small enough to embed in seconds."""
    queries = {}
    for line in (CHORUS / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        q = json.loads(line)
        if q["query"] in QUERIES:
            queries[q["query_id"]] = q["query"]
    judgments: dict[str, dict[str, int]] = {}
    for name in ("judgments.jsonl", "judgments_extra.jsonl"):
        for line in (CHORUS / name).read_text(encoding="utf-8").splitlines():
            j = json.loads(line)
            if j["query_id"] in queries:
                judgments.setdefault(queries[j["query_id"]], {})[j["product_id"]] = j["rating"]
    wanted = {pid for js in judgments.values() for pid in js}
    products, others = [], 0
    with (CHORUS / "products.jsonl").open(encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            p = json.loads(line)
            if p["id"] in wanted:
                products.append(p)
            elif i % 61 == 0 and others < EXTRA_PRODUCTS:
                products.append(p)
                others += 1
    return products, judgments


@pytest.fixture(scope="session")
def catalog(client: Any, wired: dict[str, Any], sidecar: SidecarProcess) -> dict[str, Any]:
    if not CHORUS.exists():
        pytest.fail(f"the Chorus data is missing at {CHORUS}")
    raw, judgments = chorus_slice()
    products = [normalize(p) for p in raw]
    result = load_products(client, products, "products", SidecarEmbedder(sidecar.url))
    assert not result.failed, result.failed[:3]
    return {
        "count": result.written,
        "judgments": judgments,
        "products": {p.id: p for p in products},
    }
