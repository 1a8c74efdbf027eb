"""Existing OpenSearch queries gain reranking by naming a search pipeline: proven against a
real node, the real sidecar and the real ML Commons connectors (Icecat data: Specs Icecat)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from typing import Any

import pytest
import requests

from cluster_setup import queries
from ingest.loader import SidecarEmbedder
from tests.opensearch.conftest import AUTH, run_setup


def hybrid_query(text: str, embed_model_id: str, size: int = 10) -> dict[str, Any]:
    return queries.hybrid_body(text, embed_model_id, size=size)


def search(client: Any, body: dict[str, Any], pipeline: str) -> list[dict[str, Any]]:
    res = client.search(index="products", body=body, params={"search_pipeline": pipeline})
    return list(res["hits"]["hits"])


def test_setup_report_and_rerun_changes_nothing(opensearch_url, sidecar, wired) -> None:
    kinds = {a["kind"] for a in wired["actions"]}
    assert {"index-template", "connector", "model", "search-pipeline"} <= kinds
    out = run_setup(opensearch_url, sidecar.url, "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    again = json.loads(out.stdout)
    assert {a["status"] for a in again["actions"]} == {"unchanged"}
    assert again["rerank_model_id"] == wired["rerank_model_id"]


@pytest.mark.parametrize("query", ["phone case", "wireless mouse", "bluetooth speaker"])
def test_hybrid_rerank_order_is_the_sidecars_order(client, wired, catalog, sidecar, query) -> None:
    hits = search(client, hybrid_query(query, wired["embed_model_id"]), "hybrid-rerank")
    assert len(hits) == 10
    # as the connector sends them: the page in the hybrid's order, blended with that order
    hybrid = search(client, hybrid_query(query, wired["embed_model_id"]), "hybrid")
    docs = [h["_source"]["rerank_text"] for h in hybrid]
    own = requests.post(
        sidecar.url + "/v1/rerank",
        json={"query": query, "documents": docs, "in_recall_order": True},
        headers=AUTH,
        timeout=60,
    ).json()
    score = {hybrid[r["index"]]["_id"]: r["relevance_score"] for r in own["results"]}
    assert [h["_score"] for h in hits] == pytest.approx([score[h["_id"]] for h in hits], abs=1e-6)
    assert [h["_score"] for h in hits] == sorted((h["_score"] for h in hits), reverse=True)
    assert {h["_id"] for h in hybrid} == {h["_id"] for h in hits}


def test_chinese_query_finds_english_products_through_knn(client, wired, catalog) -> None:
    body = {
        "size": 10,
        "query": {
            "neural": {
                "embedding": {"query_text": "手机壳", "model_id": wired["embed_model_id"], "k": 10}
            }
        },
    }
    hits = client.search(index="products", body=body)["hits"]["hits"]
    judged = catalog["judgments"]["phone case"]
    relevant = [h["_id"] for h in hits if judged.get(h["_id"], 0) >= 2]
    assert len(relevant) >= 3, [h["_source"]["title"] for h in hits]
    assert all(h["_source"]["languages"] == ["en"] for h in hits)


def test_plain_http_search_with_pipeline_parameter(opensearch_url, wired, catalog) -> None:
    body = json.dumps(hybrid_query("usb stick", wired["embed_model_id"], size=5)).encode()
    req = urllib.request.Request(
        f"{opensearch_url}/products/_search?search_pipeline=hybrid-rerank",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        hits = json.load(resp)["hits"]["hits"]
    assert len(hits) == 5 and all(0.0 <= h["_score"] <= 1.0 for h in hits)


def test_bad_pipeline_name_gives_opensearchs_error(opensearch_url, catalog) -> None:
    req = urllib.request.Request(
        f"{opensearch_url}/products/_search?search_pipeline=no-such-pipeline",
        data=b'{"query": {"match_all": {}}}',
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req, timeout=30)
    body = json.load(exc.value)
    assert exc.value.code in (400, 404)
    assert "no-such-pipeline" in json.dumps(body)


def test_sidecar_down_degrades_to_the_hybrid_order(client, wired, catalog, sidecar) -> None:
    """Runs last: stops the sidecar, then brings it back on the same port."""
    query = "wireless mouse"
    vector = SidecarEmbedder(sidecar.url).embed([query], "query")[0].tolist()
    body = queries.search_body(
        {"hybrid": {"queries": [queries.bm25(query), queries.knn(vector)]}}, query
    )
    hybrid = search(client, body, "hybrid")
    sidecar.stop()
    try:
        degraded = search(client, body, "hybrid-rerank")  # no error: ignore_failure
        assert [h["_id"] for h in degraded] == [h["_id"] for h in hybrid]
        assert [h["_score"] for h in degraded] == [h["_score"] for h in hybrid]  # min-max
    finally:
        sidecar.start()
    restored = search(client, body, "hybrid-rerank")
    assert [h["_score"] for h in restored] != [h["_score"] for h in hybrid]  # reranked again


def test_make_run_brings_up_the_whole_stack(tmp_path_factory) -> None:
    """``make run``'s driver on its own node and sidecar: ends with the side-by-side table."""
    import os

    from local_node.node import cache_root
    from sidecar.launcher import free_port

    run = cache_root() / "run" / f"stack-test-{os.getpid()}"
    env = {**os.environ, "RANKING_SIDECAR_RUN": str(run)}
    try:
        out = subprocess.run(
            [sys.executable, "-m", "stack", "--port", str(free_port())],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
        text = out.stdout
        assert "BM25" in text and "hybrid + rerank" in text
        for query in ("query: wireless mouse", "query: 无线鼠标"):
            block = text[text.index(query) :].splitlines()
            assert block[2].startswith(" 1. ")  # a first row under the header
        assert "Logitech M185" in text and "make stop" in text
    finally:
        subprocess.run(
            [sys.executable, "-m", "stack", "stop"],
            env=env,
            capture_output=True,
            timeout=120,
        )
    import shutil

    shutil.rmtree(run, ignore_errors=True)


def test_sidecar_refuses_calls_without_the_key(sidecar) -> None:
    r = requests.post(
        sidecar.url + "/v1/rerank", json={"query": "q", "documents": ["a"]}, timeout=30
    )
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
