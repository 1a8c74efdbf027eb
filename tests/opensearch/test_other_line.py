"""The other OpenSearch line, end to end in a few minutes.

The whole real-node suite runs on the line ``OPENSEARCH_VERSION`` picks (the default line when
unset); this module boots a node of the other supported line (``local_node.node.LINES``) and
runs the path every search takes on it: ``sidecar-setup`` (and a re-run that changes nothing),
a hybrid search (the query embedding swapped in by the ``ml_inference`` request processor), a
hybrid-rerank search in the sidecar's order, and the fail-open legs with the sidecar stopped.
The catalog is the bundled sample (100 products), so the module stays within a few minutes.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from cluster_setup import queries
from cluster_setup.bodies import load_body
from cluster_setup.client import make_client
from cluster_setup.pipelines import failed_processors
from ingest.catalog import ProductError, normalize, read_jsonl
from ingest.loader import SidecarEmbedder, load_products
from local_node.node import LocalNode, NodeError, other_version, run_root
from sidecar.launcher import SidecarProcess
from stack.run import SAMPLE
from tests.opensearch.conftest import AUTH, run_setup

OTHER = other_version()
QUERY = "wireless mouse"
#: the sample's judgments of QUERY (q01): graded 0-3
QUERY_ID = "q01"


@pytest.fixture(scope="module")
def other_url(request: pytest.FixtureRequest) -> Iterator[str]:
    run = run_root() / f"other-line-{os.getpid()}"
    node = LocalNode(version=OTHER, run_dir=run)
    failed_before = request.session.testsfailed
    try:
        url = node.start()
    except NodeError as exc:
        pytest.fail(f"could not start a local OpenSearch {OTHER} node: {exc}")
    print(f"\n[opensearch] the other line: a local {OTHER} node at {url} (logs: {run}/logs)")
    try:
        yield url
    finally:
        node.stop()
        if request.session.testsfailed == failed_before:
            shutil.rmtree(run, ignore_errors=True)


@pytest.fixture(scope="module")
def other(other_url: str, sidecar: SidecarProcess) -> dict[str, Any]:
    """The other node wired by sidecar-setup, with the sample catalog loaded."""
    out = run_setup(other_url, sidecar.url, "--json")
    assert out.returncode == 0, out.stderr[-3000:]
    client = make_client(other_url)
    with SAMPLE.open(encoding="utf-8") as fh:
        rows = [obj for _, obj in read_jsonl(fh)]
    products = [normalize(obj) for obj in rows if not isinstance(obj, ProductError)]
    result = load_products(client, products, "products", SidecarEmbedder(sidecar.url))
    assert not result.failed and result.written == len(products), result.failed[:3]
    judged = SAMPLE.with_name("judgments.jsonl").read_text(encoding="utf-8").splitlines()
    grades = {
        j["product_id"]: j["grade"] for j in map(json.loads, judged) if j["query_id"] == QUERY_ID
    }
    return {"url": other_url, "client": client, "report": json.loads(out.stdout), "grades": grades}


def search(
    other: dict[str, Any], body: dict[str, Any], pipeline: str
) -> tuple[list[dict[str, Any]], list[str]]:
    """The hits of one search, and the processors that failed in it (``verbose_pipeline``)."""
    res = other["client"].search(
        index="products",
        body=body,
        params={"search_pipeline": pipeline, "verbose_pipeline": "true"},
        request_timeout=60,
    )
    return list(res["hits"]["hits"]), failed_processors(res)


def test_setup_on_the_other_line_and_a_rerun_changes_nothing(other, sidecar) -> None:
    info = other["client"].info()
    assert info["version"]["number"] == OTHER
    kinds = {a["kind"] for a in other["report"]["actions"]}
    assert {"index-template", "connector", "model", "search-pipeline"} <= kinds
    again = run_setup(other["url"], sidecar.url, "--json")
    assert again.returncode == 0, again.stderr[-3000:]
    assert {a["status"] for a in json.loads(again.stdout)["actions"]} == {"unchanged"}


def test_hybrid_search_embeds_the_query_on_the_other_line(other) -> None:
    hits, failed = search(other, queries.hybrid_body(QUERY), "hybrid")
    assert not failed
    assert len(hits) == 10 and all(0.0 <= h["_score"] <= 1.0 for h in hits)
    assert other["grades"].get(hits[0]["_id"], 0) >= 2, [h["_source"]["title"] for h in hits]


@pytest.mark.parametrize("text", [QUERY, "无线鼠标"])
def test_hybrid_rerank_order_is_the_sidecars_on_the_other_line(other, sidecar, text) -> None:
    """The rerank scores the hybrid's page with the query as typed, on both lines: 3.x reads
    the ext the request processors rewrote (the query-understanding step puts its
    translation in the BM25 leg, and the k-NN leg's text in ext.ml_inference), 2.19 the
    ext as sent."""
    hits, failed = search(other, queries.hybrid_body(text), "hybrid-rerank")
    assert not failed
    hybrid, _ = search(other, queries.hybrid_body(text), "hybrid")
    own = requests.post(
        sidecar.url + "/v1/rerank",
        json={
            "query": text,
            "documents": [h["_source"]["rerank_text"] for h in hybrid],
            "in_recall_order": True,
        },
        headers=AUTH,
        timeout=60,
    ).json()
    score = {hybrid[r["index"]]["_id"]: r["relevance_score"] for r in own["results"]}
    assert [h["_score"] for h in hits] == pytest.approx([score[h["_id"]] for h in hits], abs=1e-6)
    assert {h["_id"] for h in hits} == {h["_id"] for h in hybrid}


def test_sidecar_down_answers_from_bm25_on_the_other_line(other, sidecar) -> None:
    """Stops the sidecar: the query embedding and the rerank fail open (BM25 alone, in its
    order, no failed search); then brings the sidecar back."""
    client = other["client"]
    bm25_only = {
        "phase_results_processors": load_body("pipeline.hybrid.json")["phase_results_processors"]
    }
    client.transport.perform_request("PUT", "/_search/pipeline/smoke-bm25-only", body=bm25_only)
    body = queries.hybrid_body(QUERY)
    placeholder = {k: v for k, v in body.items() if k != "ext"}
    bm25, _ = search(other, placeholder, "smoke-bm25-only")
    assert bm25
    sidecar.stop()
    try:
        for pipeline in ("hybrid", "hybrid-rerank"):
            hits, _ = search(other, body, pipeline)  # no error: each leg fails open
            assert [h["_id"] for h in hits] == [h["_id"] for h in bm25], pipeline
            assert [h["_score"] for h in hits] == pytest.approx([h["_score"] for h in bm25])
    finally:
        sidecar.start()
        client.transport.perform_request("DELETE", "/_search/pipeline/smoke-bm25-only")
    hits, failed = search(other, body, "hybrid-rerank")  # reranked again
    assert not failed and [h["_score"] for h in hits] != [h["_score"] for h in bm25]
