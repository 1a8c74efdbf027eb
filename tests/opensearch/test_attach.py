"""``sidecar-setup attach`` on an index this project did not make: its own mapping and field
names (``name``, ``details.summary``, ``maker``, a knn_vector ``vec``), filled here from the
shared catalog with vectors from the sidecar. The attach runs as a user runs it (one command),
and the searches through its pipelines are reranked by the sidecar: the order is the sidecar's
own ranking of the recall's top hits."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from opensearchpy import helpers
from opensearchpy.exceptions import NotFoundError

from cluster_setup.pipelines import failed_processors
from ingest.loader import SidecarEmbedder
from tests.opensearch.conftest import AUTH, chorus_slice

INDEX = "attach-shop"
PIPELINES = [f"{INDEX}-rerank", f"{INDEX}-translate-rerank", f"{INDEX}-hybrid-rerank"]
TEXT_FIELDS = ["name", "details.summary"]
#: the one documented command, less the connection flags
ATTACH = ["--index", INDEX, "--text-field", "name", "--text-field", "details.summary"]
ATTACH_VECTORS = [*ATTACH, "--vector-field", "vec"]


def attach(opensearch_url: str, sidecar_url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """``sidecar-setup attach`` for real, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "cluster_setup", "attach", "--opensearch", opensearch_url]
        + ["--sidecar", sidecar_url, *extra],
        capture_output=True,
        text=True,
        timeout=300,
    )


def ml_objects(client: Any) -> set[tuple[str, str]]:
    """Every ML Commons connector and model: (kind, id)."""
    out = set()
    for kind in ("connectors", "models"):
        res = client.transport.perform_request(
            "POST",
            f"/_plugins/_ml/{kind}/_search",
            body={"size": 1000, "query": {"match_all": {}}, "_source": ["name"]},
        )
        out |= {(kind, h["_id"]) for h in res["hits"]["hits"]}
    return out


def all_pipelines(client: Any) -> dict[str, Any]:
    try:
        found: dict[str, Any] = client.transport.perform_request("GET", "/_search/pipeline/*")
    except NotFoundError:
        return {}
    return found


def embed(sidecar_url: str, texts: list[str]) -> list[list[float]]:
    """Document vectors from the sidecar (the loader's client: a batch that misses the
    sidecar's deadline on a busy CPU is split, not resent)."""
    vectors: list[list[float]] = SidecarEmbedder(sidecar_url).embed(texts).tolist()
    return vectors


def dimension(sidecar_url: str) -> int:
    return int(
        requests.get(sidecar_url + "/readyz", timeout=60).json()["models"]["embed"]["dimensions"]
    )


@pytest.fixture(scope="module")
def shop(client: Any, sidecar: Any) -> Iterator[dict[str, dict[str, Any]]]:
    """The user's index, made and filled without this project's setup or ingest."""
    raw, _ = chorus_slice()
    products = {
        p["id"]: {
            "name": p["title"],
            "details": {"summary": p.get("description") or ""},
            "maker": p.get("brand") or "",
        }
        for p in raw
    }
    vectors = embed(
        sidecar.url, [f"{d['name']} {d['details']['summary']}" for d in products.values()]
    )
    client.indices.create(
        index=INDEX,
        body={
            "settings": {"index": {"knn": True, "number_of_replicas": 0}},
            "mappings": {
                "properties": {
                    "name": {"type": "text", "fields": {"raw": {"type": "keyword"}}},
                    "details": {"properties": {"summary": {"type": "text"}}},
                    "maker": {"type": "keyword"},
                    "vec": {
                        "type": "knn_vector",
                        "dimension": dimension(sidecar.url),
                        "method": {"name": "hnsw", "engine": "lucene", "space_type": "cosinesimil"},
                    },
                }
            },
        },
    )
    actions = [
        {"_index": INDEX, "_id": pid, "_source": {**doc, "vec": vec}}
        for (pid, doc), vec in zip(products.items(), vectors, strict=True)
    ]
    try:
        helpers.bulk(client, actions, refresh=True)
        yield products
    finally:
        client.indices.delete(index=INDEX, ignore_unavailable=True)


@pytest.fixture(scope="module")
def attached(opensearch_url: str, sidecar: Any, client: Any, shop: Any) -> Iterator[dict[str, Any]]:
    before = ml_objects(client)
    out = attach(opensearch_url, sidecar.url, *ATTACH_VECTORS, "--json")
    assert out.returncode == 0, out.stderr[-3000:]
    report: dict[str, Any] = json.loads(out.stdout)
    report["stderr"] = out.stderr
    report["before"] = before
    try:
        yield report
    finally:
        gone = attach(opensearch_url, sidecar.url, "--index", INDEX, "--detach", "--json")
        assert gone.returncode == 0, gone.stderr[-3000:]
        for name in PIPELINES:
            assert name not in all_pipelines(client)
        # the ML indices' search lags a refresh behind: ask each new object by its id
        left = [o for o in ml_objects(client) - before if exists(client, *o)]
        kept = [a for a in json.loads(gone.stdout)["actions"] if a["status"] == "kept"]
        # ML Commons 2.19 may refuse a connector's delete (409, see conftest.remote_model)
        assert {("models", i) for i in report["models"].values()}.isdisjoint(left)
        assert len(left) <= len(kept), (left, kept)


def exists(client: Any, kind: str, object_id: str) -> bool:
    try:
        client.transport.perform_request("GET", f"/_plugins/_ml/{kind}/{object_id}")
    except NotFoundError:
        return False
    return True


def search(client: Any, body: dict[str, Any], pipeline: str) -> dict[str, Any]:
    res: dict[str, Any] = client.search(
        index=INDEX,
        body=body,
        params={"search_pipeline": pipeline, "verbose_pipeline": "true"},
        request_timeout=60,
    )
    return res


def processors(res: dict[str, Any]) -> dict[str, str]:
    return {
        f"{p.get('processor_name')}:{p.get('tag', '')}": p.get("status", "")
        for p in res.get("processor_results") or []
    }


def glued(doc: dict[str, Any]) -> str:
    """The text the rerank processor sends for ``name`` + ``details.summary``: no separator."""
    return str(doc["name"] + doc["details"]["summary"])


def sidecar_order(
    sidecar_url: str, query: str, hits: list[dict[str, Any]], texts: dict[str, str]
) -> tuple[list[str], list[float]]:
    """The sidecar's own ranking of ``hits`` (in recall order), given each hit's text as the
    rerank processor sends it (``texts``: by ``_id``): ids and scores, best first."""
    documents = [texts[h["_id"]] for h in hits]
    own = requests.post(
        sidecar_url + "/v1/rerank",
        json={
            "query": query,
            "documents": documents,
            "in_recall_order": True,
            "top_n": len(documents),
        },
        headers=AUTH,
        timeout=120,
    ).json()
    ids = [hits[r["index"]]["_id"] for r in own["results"]]
    return ids, [r["relevance_score"] for r in own["results"]]


def bm25(text: str, size: int = 10) -> dict[str, Any]:
    return {
        "size": size,
        "query": {"multi_match": {"query": text, "fields": ["name^2", "details.summary"]}},
        # a field inside an object reaches neural-search 2.19's rerank only through "fields"
        "fields": ["details.summary"],
        "ext": {"rerank": {"query_context": {"query_text": text}}},
    }


def test_attach_creates_only_connectors_models_and_pipelines(attached, client) -> None:
    kinds = {a["kind"] for a in attached["actions"]}
    assert kinds <= {"cluster-settings", "connector", "model", "search-pipeline"}, kinds
    assert attached["pipelines"] == PIPELINES
    assert set(attached["models"]) == {"rerank", "translate", "embed-leg"}
    assert "no separator" in attached["stderr"] and len(attached["warnings"]) == 2
    assert "--text-field details.summary is inside an object" in attached["stderr"]
    assert attached["check"]["rerank"] == "ok"
    # the user's index is as the user made it
    mapping = client.indices.get_mapping(index=INDEX)[INDEX]["mappings"]
    assert "_meta" not in mapping and set(mapping["properties"]) == {
        "name",
        "details",
        "maker",
        "vec",
    }
    settings = client.indices.get_settings(index=INDEX)[INDEX]["settings"]["index"]
    assert "search" not in settings and "default_pipeline" not in settings


@pytest.mark.parametrize("query", ["wireless mouse", "bluetooth speaker"])
def test_rerank_pipeline_orders_the_hits_as_the_sidecar_scores_them(
    attached, client, sidecar, shop, query
) -> None:
    recall = client.search(index=INDEX, body=bm25(query))["hits"]["hits"]
    res = search(client, bm25(query), f"{INDEX}-rerank")
    assert not failed_processors(res), failed_processors(res)
    assert processors(res).get("rerank:") == "success", processors(res)
    hits = res["hits"]["hits"]
    assert {h["_id"] for h in hits} == {h["_id"] for h in recall}
    ids, scores = sidecar_order(
        sidecar.url, query, recall, {pid: glued(d) for pid, d in shop.items()}
    )
    assert [h["_id"] for h in hits] == ids
    assert [h["_score"] for h in hits] == pytest.approx(scores, abs=1e-5)


def test_translate_rerank_pipeline_translates_and_reranks(attached, client) -> None:
    res = search(client, bm25("无线鼠标"), f"{INDEX}-translate-rerank")
    assert not failed_processors(res), failed_processors(res)
    statuses = processors(res)
    assert statuses.get("rerank:") == "success", statuses
    assert statuses.get("ml_inference:translate-bm25") == "success", statuses
    names = [h["_source"]["name"].lower() for h in res["hits"]["hits"][:5]]
    assert any("mouse" in n for n in names), names


def hybrid(text: str, fields: list[str], size: int = 10) -> dict[str, Any]:
    return {
        "size": size,
        "query": {
            "hybrid": {
                "queries": [{"multi_match": {"query": text, "fields": fields}}, {"match_none": {}}]
            }
        },
        "fields": ["details.summary"],
        "ext": {
            "ml_inference": {"query_texts": [text]},
            "rerank": {"query_context": {"query_text": text}},
        },
    }


def test_hybrid_rerank_uses_the_vectors_and_the_sidecars_order(
    attached, client, sidecar, shop
) -> None:
    # the lexical leg searches a keyword field that no query word matches: every hit is the
    # k-NN leg's, on the user's own vector field
    res = search(client, hybrid("无线鼠标", ["maker"]), f"{INDEX}-hybrid-rerank")
    assert not failed_processors(res), failed_processors(res)
    statuses = processors(res)
    assert statuses.get("ml_inference:embed-leg") == "success", statuses
    assert statuses.get("rerank:") == "success", statuses
    names = [h["_source"]["name"].lower() for h in res["hits"]["hits"][:5]]
    assert any("mouse" in n for n in names), names
    # the order: the sidecar's ranking of the hybrid's own hits (the same pipeline less its
    # rerank gives the recall)
    query = "wireless mouse"
    body = hybrid(query, ["name^2", "details.summary"])
    pipe = client.transport.perform_request("GET", f"/_search/pipeline/{INDEX}-hybrid-rerank")
    recall_pipe = dict(pipe[f"{INDEX}-hybrid-rerank"])
    recall_pipe.pop("response_processors")
    client.transport.perform_request(
        "PUT", "/_search/pipeline/attach-test-recall", body=recall_pipe
    )
    try:
        recall = search(client, body, "attach-test-recall")["hits"]["hits"]
    finally:
        client.transport.perform_request("DELETE", "/_search/pipeline/attach-test-recall")
    res = search(client, body, f"{INDEX}-hybrid-rerank")
    assert processors(res).get("rerank:") == "success", processors(res)
    ids, scores = sidecar_order(
        sidecar.url, query, recall, {pid: glued(d) for pid, d in shop.items()}
    )
    assert [h["_id"] for h in res["hits"]["hits"]] == ids


def test_a_rerun_changes_nothing(attached, opensearch_url, sidecar) -> None:
    out = attach(opensearch_url, sidecar.url, *ATTACH_VECTORS, "--json")
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout)
    changed = [a for a in report["actions"] if a["status"] != "unchanged"]
    assert not changed, changed
    assert report["models"] == attached["models"]


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--index", INDEX, "--text-field", "title"], "--text-field title: no such field"),
        (["--index", INDEX, "--text-field", "name.raw"], "a multi-field of name"),
        (["--index", INDEX, "--text-field", "details"], "--text-field details: mapped as object"),
        ([*ATTACH, "--vector-field", "maker"], "--vector-field maker: mapped as keyword"),
        (["--index", "attach-nowhere", "--text-field", "name"], "'attach-nowhere' does not exist"),
    ],
)
def test_a_bad_field_is_one_line_and_leaves_nothing(
    attached, opensearch_url, sidecar, client, extra, said
) -> None:
    before = ml_objects(client)
    pipelines = all_pipelines(client)
    out = attach(opensearch_url, sidecar.url, *extra)
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and said in lines[0], out.stderr
    assert ml_objects(client) == before
    assert all_pipelines(client) == pipelines


def test_a_vector_of_another_width_is_refused(attached, opensearch_url, sidecar, client) -> None:
    other = f"{INDEX}-narrow"
    client.indices.create(
        index=other,
        body={
            "settings": {"index": {"knn": True, "number_of_replicas": 0}},
            "mappings": {
                "properties": {"t": {"type": "text"}, "v": {"type": "knn_vector", "dimension": 3}}
            },
        },
    )
    try:
        before = ml_objects(client)
        out = attach(
            opensearch_url,
            sidecar.url,
            "--index",
            other,
            "--text-field",
            "t",
            "--vector-field",
            "v",
        )
        assert out.returncode != 0
        assert "dimension 3" in out.stderr and len(out.stderr.strip().splitlines()) == 1
        assert ml_objects(client) == before
    finally:
        client.indices.delete(index=other)


def test_join_into_joins_the_text_fields_with_a_separator_for_the_rerank(
    opensearch_url, sidecar, client, shop
) -> None:
    """``--join-into rerank_text`` on a second index of the same products (no vectors): the
    documents already indexed and the ones indexed after carry the joined text, the rerank
    reads it (the scores are the sidecar's for the newline-joined texts), and ``--detach``
    removes the ingest pipeline and the default pipeline, not the values."""
    other = f"{INDEX}-joined"
    join = f"{other}-join-text"
    client.indices.create(
        index=other,
        body={
            "settings": {"index": {"number_of_replicas": 0}},
            "mappings": {
                "properties": {
                    "name": {"type": "text"},
                    "details": {"properties": {"summary": {"type": "text"}}},
                    "maker": {"type": "keyword"},
                }
            },
        },
    )
    try:
        helpers.bulk(
            client,
            [{"_index": other, "_id": pid, "_source": doc} for pid, doc in shop.items()],
            refresh=True,
        )
        argv = ["--index", other, "--text-field", "name", "--text-field", "details.summary"]
        out = attach(
            opensearch_url, sidecar.url, *argv, "--join-into", "rerank_text", "--no-translate"
        )
        assert out.returncode == 0, out.stderr[-3000:]
        assert f"rewriting the documents of {other} through {join}" in out.stderr
        assert "no separator" not in out.stderr
        assert f"{len(shop)} joined into rerank_text" in out.stdout, out.stdout
        settings = client.indices.get_settings(index=other)[other]["settings"]["index"]
        assert settings["default_pipeline"] == join
        mapping = client.indices.get_mapping(index=other)[other]["mappings"]["properties"]
        assert mapping["rerank_text"] == {"type": "text"}

        def joined(doc: dict[str, Any]) -> str:
            return "\n".join(t for t in (doc["name"], doc["details"]["summary"]) if t.strip())

        got = client.get(index=other, id=next(iter(shop)))["_source"]
        assert got["rerank_text"] == joined(shop[next(iter(shop))])
        # a document indexed later goes through the default pipeline
        client.index(
            index=other,
            id="later",
            body={"name": "Later Mouse", "details": {"summary": "wireless"}},
            refresh=True,
        )
        assert client.get(index=other, id="later")["_source"]["rerank_text"] == (
            "Later Mouse\nwireless"
        )
        # lists, blanks, missing fields and a dotted key
        sim = client.transport.perform_request(
            "POST",
            f"/_ingest/pipeline/{join}/_simulate",
            body={
                "docs": [
                    {"_source": {"name": ["a", "", "b"], "details": {"summary": " "}}},
                    {"_source": {"details": {"summary": "only"}}},
                    {"_source": {"name": "n", "details.summary": "dotted"}},
                    {"_source": {"maker": "x"}},
                ]
            },
        )
        texts = [d["doc"]["_source"].get("rerank_text") for d in sim["docs"]]
        assert texts == ["a\nb", "only", "n\ndotted", None], texts
        # the rerank reads the joined text: the sidecar's own scores of it
        query = "wireless mouse"
        body = bm25(query)
        recall = client.search(index=other, body=body)["hits"]["hits"]
        res = client.search(
            index=other,
            body=body,
            params={"search_pipeline": f"{other}-rerank", "verbose_pipeline": "true"},
        )
        assert not failed_processors(res), failed_processors(res)
        docs = {**shop, "later": {"name": "Later Mouse", "details": {"summary": "wireless"}}}
        rerank_texts = {pid: joined(doc) for pid, doc in docs.items()}
        ids, scores = sidecar_order(sidecar.url, query, recall, rerank_texts)
        hits = res["hits"]["hits"]
        assert [h["_id"] for h in hits] == ids
        assert [h["_score"] for h in hits] == pytest.approx(scores, abs=1e-5)
        # a re-run changes nothing and rewrites nothing
        again = attach(
            opensearch_url,
            sidecar.url,
            *argv,
            "--join-into",
            "rerank_text",
            "--no-translate",
            "--json",
        )
        assert again.returncode == 0, again.stderr[-3000:]
        changed = [a for a in json.loads(again.stdout)["actions"] if a["status"] != "unchanged"]
        assert not changed, changed
        gone = attach(opensearch_url, sidecar.url, "--index", other, "--detach")
        assert gone.returncode == 0, gone.stderr[-3000:]
        settings = client.indices.get_settings(index=other)[other]["settings"]["index"]
        assert "default_pipeline" not in settings
        with pytest.raises(NotFoundError):
            client.transport.perform_request("GET", f"/_ingest/pipeline/{join}")
        assert client.get(index=other, id="later")["_source"]["rerank_text"]
    finally:
        attach(opensearch_url, sidecar.url, "--index", other, "--detach")
        client.indices.delete(index=other, ignore_unavailable=True)
