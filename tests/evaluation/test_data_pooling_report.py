"""Query sets, judgments, configurations, the pooling round trip and the report files."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from evaluation import pooling, report
from evaluation.config import ConfigError, load_config
from evaluation.data import DataError, Query, read_judgments, read_queries
from evaluation.evaluate import percentiles, score_runs


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_queries_from_jsonl_and_a_translations_tsv(tmp_path: Path) -> None:
    a = write(
        tmp_path / "q.jsonl",
        '{"query_id": "q1", "query": "laptop", "split": "dev"}\n'
        '\n{"id": "q2", "text": "mouse", "language": "fr"}\n',
    )
    b = write(tmp_path / "xl.tsv", "query_id\tlang\tquery\nq1\tzh\t笔记本电脑\nq1\tes\tportátil\n")
    c = write(tmp_path / "plain.tsv", "q9\tusb  stick\n")
    got = read_queries([a, b, c])
    assert got == [
        Query("q1", "laptop", "en"),
        Query("q2", "mouse", "fr"),
        Query("q1", "笔记本电脑", "zh"),
        Query("q1", "portátil", "es"),
        Query("q9", "usb stick", "en"),
    ]
    assert got[2].key == "q1@zh"


def test_bad_query_files_name_file_and_line(tmp_path: Path) -> None:
    bad = write(tmp_path / "q.jsonl", '{"query_id": "q1", "query": "a"}\n{"query_id": "q1"\n')
    with pytest.raises(DataError, match=r"q.jsonl:2: malformed JSON"):
        read_queries([bad])
    twice = write(tmp_path / "t.jsonl", '{"id": "q1", "query": "a"}\n{"id": "q1", "query": "b"}\n')
    with pytest.raises(DataError, match=r"t.jsonl:2: query 'q1' in 'en' again"):
        read_queries([twice])


def test_judgments_from_several_files_and_formats(tmp_path: Path) -> None:
    a = write(
        tmp_path / "j.jsonl",
        '{"query_id": "q1", "product_id": "p1", "rating": 3}\n'
        '{"query_id": "q1", "product_id": "p2", "rating": 0}\n',
    )
    b = write(
        tmp_path / "extra.csv",
        "query_id,product_id,rating,source\nq1,p3,2,project\nq1,p2,1,project\nq2,p1,,project\n",
    )
    c = write(tmp_path / "trec.qrels", "q3 0 p9 1\n")
    got = read_judgments([a, b, c])
    assert got.qrels == {"q1": {"p1": 3, "p2": 1, "p3": 2}, "q3": {"p9": 1}}
    assert got.conflicts == 1  # p2: 0 in the first file, 1 in the second (the later wins)
    assert [f["judgments"] for f in got.files] == [2, 2, 1]
    assert got.relevant("q1") == 3 and got.histogram() == {1: 2, 2: 1, 3: 1}
    with pytest.raises(DataError, match=r"bad.jsonl:1: gain 1.5"):
        read_judgments(
            [write(tmp_path / "bad.jsonl", '{"query_id": "q", "product_id": "p", "rating": 1.5}\n')]
        )


def test_default_config_and_validation(tmp_path: Path) -> None:
    cfg = load_config()
    names = [c.name for c in cfg.configurations]
    assert {"bm25", "knn", "hybrid", "hybrid-rerank"} <= set(names)
    rerank = cfg.by_name("hybrid-rerank")
    assert rerank.fill_from == "hybrid" and rerank.pipeline == "hybrid-rerank"
    assert names.index("hybrid") < [c.name for c in cfg.execution_order()].index("hybrid-rerank")
    body = rerank.search_body("usb stick", "model-1")
    assert body["size"] == rerank.rerank_depth
    assert body["ext"]["rerank"]["query_context"]["query_text"] == "usb stick"
    custom = write(
        tmp_path / "c.json",
        json.dumps(
            {
                "configurations": [
                    {
                        "name": "title",
                        "body": {"query": {"match": {"title.en": "{{query}}"}}, "size": "{{size}}"},
                    }
                ]
            }
        ),
    )
    c = load_config(custom).configurations[0]
    assert c.search_body("usb", "m", 7) == {"query": {"match": {"title.en": "usb"}}, "size": 7}
    for bad, message in [
        ({"configurations": [{"name": "x", "template": "sparse"}]}, "unknown template"),
        ({"configurations": [{"name": "x"}]}, "either 'template'"),
        ({"configurations": [{"name": "x", "template": "bm25", "fill_from": "y"}]}, "fill_from"),
        ({"configurations": [{"name": "x", "template": "bm25"}], "compare": [["x", "z"]]}, "'z'"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_config(write(tmp_path / "bad.json", json.dumps(bad)))


def test_pool_export_and_import_round_trip(tmp_path: Path) -> None:
    queries = [
        Query("q1", "laptop", "en"),
        Query("q1", "portátil", "es"),
        Query("q2", "mouse", "en"),
    ]
    qrels = {"q1": {"p1": 3}, "q2": {}}
    runs = {
        "hybrid": {"q1@en": ["p1", "p2", "p3"], "q1@es": ["p3", "p4"], "q2@en": ["p5"]},
        "knn": {"q1@en": ["p4", "p1"], "q2@en": ["p6", "p5", "p7"]},
    }
    rows = pooling.unjudged_pool(runs, queries, qrels, depth=2)
    # p1 is judged; p3 is pooled once with its best rank (1, from Spanish); depth 2 drops p7
    assert [(r.query_id, r.product_id, r.best_rank) for r in rows] == [
        ("q1", "p3", 1),
        ("q1", "p4", 1),
        ("q1", "p2", 2),
        ("q2", "p5", 1),
        ("q2", "p6", 1),
    ]
    assert rows[0].seen_in == "hybrid@es" and rows[1].seen_in == "hybrid@es knn@en"
    assert rows[0].query == "laptop"  # raters read the English query
    rows = pooling.with_products(rows, {"p3": {"title": {"en": "Dell XPS 13"}, "brand": "Dell"}})
    sheet = tmp_path / "pool.csv"
    pooling.export_pool(rows, sheet, note="Product data: Specs Icecat (https://icecat.biz/)")
    text = sheet.read_text(encoding="utf-8").splitlines()
    assert text[0].startswith("# Product data: Specs Icecat")
    assert text[1] == ",".join(pooling.COLUMNS) and "Dell XPS 13" in text[2]
    # a rater fills some ratings, leaves one blank
    filled = [text[0], text[1]] + [
        line + r for line, r in zip(text[2:], ["3", "0", "", "1", "2"], strict=True)
    ]
    write(sheet, "\n".join(filled) + "\n")
    out = tmp_path / "pooled.jsonl"
    assert pooling.import_ratings(sheet, out) == 4
    back = read_judgments([out])
    assert back.qrels == {"q1": {"p3": 3, "p4": 0}, "q2": {"p5": 1, "p6": 2}}
    assert json.loads(out.read_text().splitlines()[0])["query"] == "laptop"
    combined = read_judgments(
        [write(tmp_path / "j.jsonl", '{"query_id": "q1", "product_id": "p1", "rating": 3}\n'), out]
    )
    assert not pooling.unjudged_pool({"hybrid": runs["hybrid"]}, queries[:2], combined.qrels, 1)


def test_import_rejects_a_bad_rating_with_its_line(tmp_path: Path) -> None:
    sheet = write(tmp_path / "s.csv", "query_id,query,product_id,rating\nq1,a,p1,3\nq1,a,p2,x\n")
    with pytest.raises(DataError, match=r"s.csv:3: gain 'x'"):
        pooling.import_ratings(sheet, tmp_path / "o.jsonl")


LANGS = ("en", "zh", "es", "ja", "fr", "de")


def test_report_writes_markdown_plots_and_json(tmp_path: Path) -> None:
    queries = [Query(q, t, lang) for q, t in (("q1", "laptop"), ("q2", "mouse")) for lang in LANGS]
    qrels = {"q1": {"a": 3, "b": 1}, "q2": {"c": 2, "d": 0}}
    runs = {
        "bm25": {q.key: ["a", "x", "b"] if q.id == "q1" else ["d", "c"] for q in queries},
        "knn": {q.key: ["b", "a"] if q.id == "q1" else ["y", "c"] for q in queries},
    }
    res = score_runs(runs, queries, qrels, [("knn", "bm25")], resamples=200)
    res["meta"] = {
        "started": "now",
        "seconds": 1.0,
        "command": "eval-search run ...",
        "cluster": {"url": "http://127.0.0.1:9200", "version": "2.19.1", "documents": 4},
        "index": "products",
        "sidecar_url": None,
        "sidecar_models": None,
        "query_files": ["q.jsonl"],
        "resamples": 200,
        "seed": 0,
        "judged_warning": 0.8,
        "judgments": {
            "files": [{"path": "j.jsonl", "judgments": 4}],
            "pairs": 4,
            "histogram": {0: 1, 1: 1, 2: 1, 3: 1},
        },
        "attribution": "Product data: Specs Icecat (https://icecat.biz/).",
    }
    res["configurations"] = [
        {
            "name": n,
            "label": n.upper(),
            "template": n,
            "pipeline": None,
            "size": 100,
            "k": 50,
            "rerank_depth": None,
            "fill_from": None,
            "pipeline_info": {},
        }
        for n in runs
    ]
    secs = [0.01 * (i + 1) for i in range(12)]
    res["latency"] = {
        "concurrency": 2,
        "passes": {
            "knn": {
                "size": 50,
                "client": percentiles(secs),
                "took": percentiles([5.0] * 12),
                "seconds": secs,
                "searches_per_second": 10.0,
                "errors": {},
                "sidecar": {"seconds_per_search": 0.004, "cache_hit_ratio": 0.0, "fallbacks": 0},
            }
        },
        "warnings": [],
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        paths = report.write(res, tmp_path / "out")
    md = paths["markdown"].read_text(encoding="utf-8")
    for lang in LANGS:
        assert f"(`{lang}`, 2)" in md  # one nDCG@10 row per language
    assert "Specs Icecat" in md and "| KNN − BM25 | nDCG@10 |" in md
    for png in (
        "ndcg_by_language.png",
        "metrics_overall.png",
        "judged_by_language.png",
        "latency.png",
    ):
        assert (tmp_path / "out" / png).read_bytes()[:4] == b"\x89PNG"
        assert f"({png})" in md
    saved = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert set(saved["summary"]) == {"bm25", "knn"} and saved["languages"] == list(LANGS)


def test_the_icecat_credit_goes_only_with_icecat_data() -> None:
    from argparse import Namespace

    from evaluation.cli import attribution

    line = "Product data: Specs Icecat (https://icecat.biz/)"
    icecat = Namespace(
        attribution=None,
        queries=[Path("../shared/data/chorus_icecat/queries.jsonl")],
        judgments=[Path("mine.jsonl")],
    )
    sample = Namespace(
        attribution=None,
        queries=[Path("ingest/sample_data/queries.jsonl")],
        judgments=[Path("ingest/sample_data/judgments.jsonl")],
    )
    assert attribution(line, icecat) == line
    assert attribution(line, sample) == ""
    assert attribution(line, Namespace(**{**vars(sample), "attribution": "Our data"})) == "Our data"
