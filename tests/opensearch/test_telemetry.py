"""Rerank telemetry against the real node: a second sidecar (real gunicorn) with
``SIDECAR_OPENSEARCH_URL`` set writes its records into the daily telemetry index that the
setup CLI's template maps, both for direct calls and for reranks that OpenSearch's own
``rerank`` processor sends through ML Commons; and ``sidecar-setup --dashboards`` sends
the documented import request to OpenSearch Dashboards (a loopback server answering as it
does: no Dashboards here)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from cluster_setup import queries
from cluster_setup.bodies import TEMPLATES
from cluster_setup.dashboards import DASHBOARDS_FILE
from sidecar.launcher import SidecarProcess
from sidecar.scoring.multilingual import pack
from tests.loopback import LoopbackServer, Received, form_files
from tests.opensearch.conftest import AUTH, SIDECAR_KEY, rerank_pipeline_to, run_setup

TELEMETRY = "ranking-sidecar-telemetry"
PIPELINE = "telemetry-hybrid-rerank"


@pytest.fixture(scope="module")
def recording(
    opensearch_url: str, client: Any, wired: dict[str, Any], tmp_path_factory: Any
) -> Iterator[str]:
    """A second sidecar that records every rerank (sample 1.0) into the node; after the
    setup CLI, so the template maps the first record."""
    proc = SidecarProcess(
        log_path=tmp_path_factory.mktemp("telemetry") / "sidecar.log",
        env={
            "SIDECAR_API_KEYS": SIDECAR_KEY,
            "SIDECAR_OPENSEARCH_URL": opensearch_url,
            "SIDECAR_TELEMETRY_FLUSH_S": "0.2",
            "SIDECAR_SEARCH_PAGE": "false",
        },
    )
    proc.start(timeout=180)
    yield proc.url
    proc.stop()
    client.indices.delete(index=f"{TELEMETRY}-*", ignore_unavailable=True)


def find(client: Any, timeout: float = 30.0, **match: Any) -> list[dict[str, Any]]:
    """The telemetry records with these field values (waits for the writer's flush)."""
    query = {"bool": {"filter": [{"term": {k: v}} for k, v in match.items()]}}
    deadline = time.monotonic() + timeout
    while True:
        if client.indices.exists(index=f"{TELEMETRY}-*"):
            # the writer's first record creates the index: its shard may not have started
            # yet, and a search then answers 503 (all shards failed)
            client.cluster.health(  # the server waits up to its default 30 s
                index=f"{TELEMETRY}-*", wait_for_status="yellow", request_timeout=40
            )
            client.indices.refresh(index=f"{TELEMETRY}-*")
            res = client.search(index=f"{TELEMETRY}-*", body={"query": query, "size": 100})
            hits = res["hits"]["hits"]
            if hits or time.monotonic() > deadline:
                return [{"_index": h["_index"], **h["_source"]} for h in hits]
        elif time.monotonic() > deadline:
            return []
        time.sleep(0.3)


def today_index() -> str:
    return f"{TELEMETRY}-{datetime.now(UTC):%Y.%m.%d}"


def test_setup_created_the_telemetry_template(client: Any, wired: dict[str, Any]) -> None:
    [action] = [a for a in wired["actions"] if a["name"] == TELEMETRY]
    assert action["kind"] == "index-template"
    assert action["status"] in ("created", "updated", "unchanged")
    got = client.indices.get_index_template(name=TELEMETRY)["index_templates"][0]
    assert got["index_template"]["index_patterns"] == [f"{TELEMETRY}-*"]


def test_direct_reranks_land_in_the_daily_index_with_their_language(
    client: Any, recording: str
) -> None:
    packed = [
        pack({"en": "HP LaserJet toner cartridge", "zh": "惠普激光打印机硒鼓"}),
        pack({"en": "Dell USB keyboard", "zh": "戴尔 USB 键盘"}),
        pack({"en": "Logitech M185 wireless optical mouse", "zh": "罗技 M185 无线光电鼠标"}),
    ]
    zh = requests.post(
        recording + "/v1/rerank",
        json={"query": "无线鼠标", "documents": packed},
        headers=AUTH,
        timeout=60,
    )
    assert zh.status_code == 200
    es_texts = ["Teclado USB Dell", "Tóner HP", "Funda para teléfono Samsung", "Ratón Logitech"]
    es = requests.post(
        recording + "/rerank",
        json={"query": "funda para teléfono", "texts": es_texts},
        headers=AUTH,
        timeout=60,
    )
    assert es.status_code == 200

    [rec] = find(client, route="/v1/rerank", query_language="zh", candidates=3)
    top = zh.json()["results"][0]["index"]
    assert rec["_index"] == today_index()
    assert rec["top_moved"] == top == 2
    assert rec["first_rank"] == [r["index"] for r in zh.json()["results"]].index(0)
    assert (rec["fallback"], rec["cache_hit"], rec["cache_hits"]) == (False, False, 0)
    assert rec["status"] == 200 and rec["model"] == zh.json()["meta"]["model"]
    assert 0 < rec["latency_ms"] < 60_000
    assert rec["recall_weight"] == 0.0
    stamp = datetime.fromisoformat(rec["@timestamp"].replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - stamp).total_seconds()) < 300

    [rec_es] = find(client, route="/rerank", query_language="es", candidates=4)
    assert rec_es["top_moved"] == es.json()[0]["index"] == 2
    # the template's mapping, not dynamic guesses: what the dashboards aggregate on
    mapping = client.indices.get_mapping(index=today_index())[today_index()]["mappings"]
    props = mapping["properties"]
    assert props["@timestamp"]["type"] == "date"
    assert props["query_language"]["type"] == "keyword"
    assert props["cache_hit"]["type"] == "boolean"
    assert props["latency_ms"]["type"] == "float"


@pytest.fixture(scope="module")
def pipeline_to_recording(client: Any, wired: dict[str, Any], recording: str) -> Iterator[str]:
    """A hybrid-rerank pipeline whose rerank processor calls the recording sidecar through
    its own ML Commons connector (as tests/opensearch/test_faults.py wires its sidecar)."""
    with rerank_pipeline_to(client, recording, PIPELINE) as name:
        yield name


def test_searches_through_a_pipeline_are_recorded(
    client: Any, wired: dict[str, Any], catalog: dict[str, Any], pipeline_to_recording: str
) -> None:
    # this pipeline has no query-embedding processor: the neural form embeds the text itself
    body = queries.neural_hybrid_body("无线鼠标", wired["embed_model_id"], size=10)
    res = client.search(
        index="products", body=body, params={"search_pipeline": pipeline_to_recording}
    )
    assert len(res["hits"]["hits"]) == 10
    [rec] = find(client, route="/v1/rerank", query_language="zh", candidates=10)
    # the connector says the page comes in the hybrid's order; the CPU default (the learned
    # reranker) reads the recall position as a feature, so it blends nothing on top
    assert rec["recall_weight"] == 0.0
    assert rec["status"] == 200 and rec["fallback"] is False
    assert 0 <= rec["top_moved"] < 10


# -- sidecar-setup --dashboards ------------------------------------------------------------


def dashboards_answer(req: Received) -> tuple[int, Any]:
    """As OpenSearch Dashboards 2.19 answers an import that succeeded."""
    objects = [json.loads(x) for x in form_files(req)["file"][1].decode().splitlines()]
    results = [
        {"type": o["type"], "id": o["id"], "meta": {"title": o["attributes"]["title"]}}
        for o in objects
    ]
    return 200, {"success": True, "successCount": len(objects), "successResults": results}


def test_setup_imports_the_dashboards_with_the_documented_request(
    opensearch_url: str, sidecar: SidecarProcess, wired: dict[str, Any]
) -> None:
    dashboards = LoopbackServer(answer=dashboards_answer)
    try:
        out = run_setup(opensearch_url, sidecar.url, "--dashboards", dashboards.url, "--json")
    finally:
        dashboards.close()
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout)
    ndjson = (TEMPLATES / DASHBOARDS_FILE).read_bytes()
    [action] = [a for a in report["actions"] if a["kind"] == "dashboards"]
    assert action["status"] == "imported"
    assert action["detail"] == f"{len(ndjson.splitlines())} objects -> {dashboards.url}"
    assert {a["status"] for a in report["actions"] if a["kind"] != "dashboards"} == {"unchanged"}
    [req] = dashboards.received
    assert (req.method, req.path, req.query) == (
        "POST",
        "/api/saved_objects/_import",
        {"overwrite": ["true"]},
    )
    assert req.headers["osd-xsrf"] == "true"
    assert form_files(req) == {"file": ("dashboards.ndjson", ndjson)}


def test_setup_fails_with_the_errors_dashboards_reports(
    opensearch_url: str, sidecar: SidecarProcess, wired: dict[str, Any]
) -> None:
    error = {
        "id": "ranking-sidecar-rerank-languages",
        "type": "visualization",
        "title": "Rerank calls by query language",
        "error": {"type": "unsupported_type"},
    }
    dashboards = LoopbackServer(
        answer=lambda req: (200, {"success": False, "successCount": 7, "errors": [error]})
    )
    try:  # the URL from the environment this time
        out = run_setup(opensearch_url, sidecar.url, OPENSEARCH_DASHBOARDS_URL=dashboards.url)
    finally:
        dashboards.close()
    assert out.returncode != 0
    assert "reported errors (7 objects imported)" in out.stderr
    assert "visualization ranking-sidecar-rerank-languages" in out.stderr
    assert "unsupported_type" in out.stderr
    assert len(dashboards.received) == 1


def test_dry_run_shows_the_template_and_the_import_and_sends_nothing(
    opensearch_url: str, sidecar: SidecarProcess, wired: dict[str, Any]
) -> None:
    dashboards = LoopbackServer(answer=dashboards_answer)
    try:
        out = run_setup(opensearch_url, sidecar.url, "--dry-run", "--dashboards", dashboards.url)
    finally:
        dashboards.close()
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"--- PUT /_index_template/{TELEMETRY}" in out.stdout
    assert f"--- POST {dashboards.url}/api/saved_objects/_import?overwrite=true" in out.stdout
    assert "dashboard ranking-sidecar-telemetry-dashboard" in out.stdout
    assert dashboards.received == []
