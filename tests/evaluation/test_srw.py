"""Search Relevance Workbench export and import, against the documented shapes.

The shapes are the examples of OpenSearch's documentation (opensearch-project/
documentation-website, ``_search-plugins/search-relevance/``): ``query-sets.md`` ("Uploading a
query set manually"), ``search-configurations.md`` ("Creating a search configuration"),
``judgments.md`` ("Importing judgments", and the ``GET .../judgments/<id>`` example response),
``experiments.md`` (the pointwise example),
and the create answers of the plugin's REST actions (opensearch-project/search-relevance:
``query_set_id``, ``search_configuration_id``, ``judgment_id``). The plugin is not on Maven
Central, so the ``--url`` test answers as those actions do from a loopback server.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evaluation import srw
from evaluation.cli import main
from evaluation.config import load_config
from evaluation.data import DataError, Query, read_judgments, read_queries
from tests.loopback import LoopbackServer, Received

SAMPLE = Path(__file__).resolve().parents[2] / "ingest" / "sample_data"

#: query-sets.md, "Uploading a query set manually"
DOC_QUERY_SET = {
    "name": "TVs",
    "description": "TV queries",
    "sampling": "manual",
    "querySetQueries": [{"queryText": "tv"}, {"queryText": "led tv"}],
}
#: search-configurations.md, "Creating a search configuration" (plus the optional pipeline)
DOC_SEARCH_CONFIGURATION = {
    "name": "baseline",
    "query": '{"query":{"multi_match":{"query":"%SearchText%","fields":["id","title"]}}}',
    "index": "ecommerce",
    "searchPipeline": "my-pipeline",
}
#: judgments.md, "Importing judgments"
DOC_JUDGMENTS = {
    "name": "Imported Judgments",
    "description": "Judgments generated outside SRW",
    "type": "IMPORT_JUDGMENT",
    "judgmentRatings": [
        {
            "query": "red dress",
            "ratings": [
                {"docId": "B077ZJXCTS", "rating": "3.000"},
                {"docId": "B071S6LTJJ", "rating": "2.000"},
            ],
        },
        {"query": "blue jeans", "ratings": [{"docId": "B07L9V4Y98", "rating": "0.000"}]},
    ],
}
#: experiments.md, "Example request" (pointwise)
DOC_EXPERIMENT = {
    "querySetId": "a02cedc2-249d-41de-be3e-662f6f221689",
    "searchConfigurationList": ["4f90e474-0806-4dd2-a8dd-0fb8a5f836eb"],
    "judgmentList": ["d3d93bb3-2cf4-4da0-8d31-c298427c2756"],
    "size": 8,
    "type": "POINTWISE_EVALUATION",
}
#: judgments.md, the GET _plugins/_search_relevance/judgments/<id> example response (cut)
DOC_JUDGMENTS_GET = {
    "took": 36,
    "timed_out": False,
    "hits": {
        "total": {"value": 1, "relation": "eq"},
        "max_score": 1,
        "hits": [
            {
                "_index": "search-relevance-judgment",
                "_id": "b54f791a-3b02-49cb-a06c-46ab650b2ade",
                "_score": 1,
                "_source": {
                    "id": "b54f791a-3b02-49cb-a06c-46ab650b2ade",
                    "timestamp": "2025-06-11T06:07:23.766Z",
                    "name": "Imported Judgments",
                    "status": "COMPLETED",
                    "type": "IMPORT_JUDGMENT",
                    "metadata": {},
                    "judgmentRatings": [
                        {
                            "query": "red dress",
                            "ratings": [
                                {"rating": "3.000", "docId": "B077ZJXCTS"},
                                {"rating": "2.000", "docId": "B071S6LTJJ"},
                            ],
                        },
                        {
                            "query": "blue jeans",
                            "ratings": [{"rating": "0.000", "docId": "B07L9V4Y98"}],
                        },
                    ],
                },
            }
        ],
    },
}


def shape(obj: Any) -> Any:
    """Keys and value types, recursively (lists by their first item)."""
    if isinstance(obj, dict):
        return {k: shape(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [shape(obj[0])] if obj else []
    return type(obj).__name__


@pytest.fixture()
def multilingual(tmp_path: Path) -> tuple[list[Query], dict[str, dict[str, int]], Path, Path]:
    q = tmp_path / "q.jsonl"
    q.write_text(
        '{"query_id": "q1", "query": "laptop"}\n{"query_id": "q2", "query": "usb stick"}\n'
        '{"query_id": "q3", "query": "toner"}\n',
        encoding="utf-8",
    )
    xl = tmp_path / "xl.tsv"
    xl.write_text(
        "query_id\tlang\tquery\nq1\tzh\t笔记本电脑\nq2\tde\tusb stick\n", encoding="utf-8"
    )
    j = tmp_path / "j.jsonl"
    j.write_text(
        '{"query_id": "q1", "product_id": "p1", "rating": 3}\n'
        '{"query_id": "q1", "product_id": "p2", "rating": 0}\n'
        '{"query_id": "q2", "product_id": "p9", "rating": 2}\n',
        encoding="utf-8",
    )
    return read_queries([q, xl]), read_judgments([j]).qrels, q, xl


def test_query_set_has_the_documented_shape(multilingual: Any) -> None:
    queries, _, _, _ = multilingual
    body = srw.query_set_body(queries, "x" * 80, "y" * 400)
    assert shape(body) == shape(DOC_QUERY_SET)
    assert len(body["name"]) <= 50 and len(body["description"]) <= 250
    # one Workbench query per distinct text: 'usb stick' in en and de is asked once
    assert [q["queryText"] for q in body["querySetQueries"]] == [
        "laptop",
        "usb stick",
        "toner",
        "笔记本电脑",
    ]


@pytest.mark.parametrize("name", ["bm25", "hybrid", "hybrid-rerank", "knn"])
def test_search_configurations_name_our_pipelines(name: str) -> None:
    cfg = load_config()
    c = cfg.by_name(name)
    body = srw.search_configuration_body(c, cfg.index, "embed-model-1")
    assert shape(body) == shape(DOC_SEARCH_CONFIGURATION) or (
        not c.pipeline and shape(body) == {k: "str" for k in ("name", "index", "query")}
    )
    assert body["index"] == "products" and body.get("searchPipeline") == c.pipeline
    query = json.loads(body["query"])  # a JSON string, as the documentation's example
    assert "size" not in query  # the experiment's size decides the page
    assert '"%SearchText%"' in body["query"]
    if c.pipeline and "rerank" in c.pipeline:
        assert query["ext"]["rerank"]["query_context"]["query_text"] == "%SearchText%"
    if name == "knn":
        assert "embed-model-1" in body["query"]


def test_judgments_have_the_documented_shape(multilingual: Any) -> None:
    queries, qrels, _, _ = multilingual
    body = srw.judgments_body(queries, qrels, "eval-search", "dev judgments")
    assert shape(body) == shape(DOC_JUDGMENTS)
    by_query = {e["query"]: e["ratings"] for e in body["judgmentRatings"]}
    # an id asked in two languages: each text carries the id's ratings
    assert (
        by_query["laptop"]
        == by_query["笔记本电脑"]
        == [
            {"docId": "p1", "rating": "3.000"},
            {"docId": "p2", "rating": "0.000"},
        ]
    )
    assert "toner" not in by_query  # no ratings, no entry


def test_import_reads_the_documented_bodies() -> None:
    queries = [Query("rd", "red dress", "en")]
    for doc in (DOC_JUDGMENTS, DOC_JUDGMENTS_GET, DOC_JUDGMENTS_GET["hits"]["hits"][0]):
        got = srw.import_judgments(doc, queries)
        assert got.rows[0] == {
            "query_id": "rd",
            "query": "red dress",
            "product_id": "B077ZJXCTS",
            "rating": 3,
        }
        assert {r["query_id"] for r in got.rows} == {"rd", "srw:blue jeans"}
        assert got.unknown_queries == ["blue jeans"]


def test_import_refuses_fractional_ratings_unless_asked() -> None:
    doc = {"judgmentRatings": [{"query": "q", "ratings": [{"docId": "d", "rating": "1.370"}]}]}
    with pytest.raises(DataError, match="--round"):
        srw.import_judgments(doc, [])
    assert srw.import_judgments(doc, [], round_ratings=True).rows[0]["rating"] == 1
    with pytest.raises(DataError, match="judgmentRatings"):
        srw.import_judgments({"name": "x"}, [])


def test_export_then_import_gives_the_judgments_back(multilingual: Any, tmp_path: Path) -> None:
    queries, qrels, _, _ = multilingual
    body = srw.judgments_body(queries, qrels, "n", "d")
    got = srw.import_judgments(body, queries)
    out = tmp_path / "back.jsonl"
    srw.write_jsonl(got.rows, out)
    assert read_judgments([out]).qrels == qrels
    assert got.unknown_queries == []


def test_cli_export_writes_bodies_ready_to_put(tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "srw"
    rc = main(
        [
            "srw-export",
            "--queries", str(SAMPLE / "queries.jsonl"),
            "--judgments", str(SAMPLE / "judgments.jsonl"),
            "--out", str(out),
        ]
    )  # fmt: skip
    assert rc == 0
    names = sorted(p.name for p in out.iterdir())
    assert "query_set.json" in names and "judgments.json" in names
    assert "search_configuration.hybrid-rerank.json" in names
    # knn needs the embedding model's id: left out without --embed-model-id or --url
    assert "search_configuration.knn.json" not in names
    assert "knn" in capsys.readouterr().err
    judged = json.loads((out / "judgments.json").read_text(encoding="utf-8"))
    assert judged["type"] == "IMPORT_JUDGMENT"
    sample = read_judgments([SAMPLE / "judgments.jsonl"])
    assert sum(len(e["ratings"]) for e in judged["judgmentRatings"]) == sample.pairs
    experiment = json.loads((out / "experiment.json").read_text(encoding="utf-8"))
    assert shape(experiment) == shape(DOC_EXPERIMENT)
    assert experiment["type"] == "POINTWISE_EVALUATION" and experiment["size"] == 10


def test_cli_export_creates_them_on_a_cluster(tmp_path: Path) -> None:
    ids = iter(range(1, 100))

    def answer(req: Received) -> tuple[int, Any]:
        if req.method == "GET":  # the index template: no embedding model recorded
            return 404, {"error": "not found"}
        kind = next(k for k, path in srw.ENDPOINTS.items() if path == req.path)
        return 200, {srw.ID_FIELDS[kind]: f"{kind}-{next(ids)}", "result": "CREATED"}

    server = LoopbackServer(answer=answer)
    try:
        rc = main(
            [
                "srw-export",
                "--queries", str(SAMPLE / "queries.jsonl"),
                "--judgments", str(SAMPLE / "judgments.jsonl"),
                "--configurations", "bm25,hybrid,hybrid-rerank",
                "--size", "20",
                "--out", str(tmp_path / "srw"),
                "--url", server.url,
            ]
        )  # fmt: skip
    finally:
        server.close()
    assert rc == 0
    puts = [r for r in server.received if r.method == "PUT"]
    assert [r.path for r in puts] == [
        srw.ENDPOINTS["query_set"],
        *[srw.ENDPOINTS["search_configuration"]] * 3,
        srw.ENDPOINTS["judgments"],
        srw.ENDPOINTS["experiment"],
    ]
    experiment = json.loads(puts[-1].body)
    assert shape(experiment) == shape(DOC_EXPERIMENT)
    assert experiment == {
        "querySetId": "query_set-1",
        "searchConfigurationList": [
            "search_configuration-2",
            "search_configuration-3",
            "search_configuration-4",
        ],
        "judgmentList": ["judgments-5"],
        "size": 20,
        "type": "POINTWISE_EVALUATION",
    }
    created = json.loads((tmp_path / "srw" / "created.json").read_text(encoding="utf-8"))
    assert created["experiment"] == "experiment-6"


def test_cli_import_round_trip(multilingual: Any, tmp_path: Path) -> None:
    queries, qrels, q, xl = multilingual
    export = tmp_path / "workbench.json"
    export.write_text(
        json.dumps(srw.judgments_body(queries, qrels, "n", "d"), ensure_ascii=False), "utf-8"
    )
    out = tmp_path / "judgments_srw.jsonl"
    rc = main(["srw-import", str(export), "--queries", str(q), "--queries", str(xl),
               "--out", str(out)])  # fmt: skip
    assert rc == 0
    assert read_judgments([out]).qrels == qrels
    rc = main(["srw-import", str(tmp_path / "missing.json"), "--out", str(out)])
    assert rc == 2
