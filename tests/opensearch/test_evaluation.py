"""The eval command end to end: Chorus queries in six languages against the real node and
the real sidecar, a report with tables, plots and JSON (product data: Specs Icecat)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from evaluation.cli import main
from tests.opensearch.conftest import CHORUS

QUERIES = ("phone case", "bluetooth speaker", "laptop")  # dev queries in the session's slice
LANGS = ("en", "zh", "es", "ja", "fr", "de")


def write_inputs(tmp: Path) -> tuple[Path, Path, Path]:
    ids = {}
    for line in (CHORUS / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        q = json.loads(line)
        if q["query"] in QUERIES:
            ids[q["query_id"]] = q["query"]
    en = tmp / "queries.jsonl"
    en.write_text("".join(json.dumps({"query_id": i, "query": t}) + "\n" for i, t in ids.items()))
    xl = tmp / "queries_xl.tsv"
    rows = (CHORUS / "queries_xl_dev.tsv").read_text(encoding="utf-8").splitlines()
    xl.write_text("\n".join([rows[0]] + [r for r in rows[1:] if r.split("\t")[0] in ids]) + "\n")
    config = tmp / "config.json"
    config.write_text(
        json.dumps(
            {
                "size": 100,
                "configurations": [
                    {"name": "bm25", "label": "BM25", "template": "bm25"},
                    {"name": "knn", "label": "k-NN", "template": "knn", "k": 100},
                    {"name": "hybrid", "template": "hybrid", "pipeline": "hybrid"},
                    {
                        "name": "hybrid-rerank",
                        "template": "hybrid",
                        "pipeline": "hybrid-rerank",
                        "rerank_depth": 10,
                        "fill_from": "hybrid",
                    },
                ],
                "latency": {
                    "configurations": ["hybrid", "hybrid-rerank"],
                    "size": 10,
                    "concurrency": 2,
                },
                "attribution": "Product data: Specs Icecat (https://icecat.biz/).",
            }
        )
    )
    return en, xl, config


def test_eval_command_writes_the_report(
    tmp_path, opensearch_url, sidecar, wired, catalog, capsys
) -> None:
    en, xl, config = write_inputs(tmp_path)
    out = tmp_path / "report"
    judgments = [
        "--judgments",
        str(CHORUS / "judgments.jsonl"),
        "--judgments",
        str(CHORUS / "judgments_extra.jsonl"),
    ]
    code = main(
        [
            "run",
            "--opensearch",
            opensearch_url,
            "--sidecar",
            sidecar.url,
            "--queries",
            str(en),
            "--queries",
            str(xl),
            *judgments,
            "--config",
            str(config),
            "--out",
            str(out),
            "--resamples",
            "300",
        ]
    )
    assert code == 0
    md = (out / "report.md").read_text(encoding="utf-8")
    for lang in LANGS:  # one row per language, three queries each
        assert f"(`{lang}`, 3) |" in md
    assert "Specs Icecat" in md and "## Latency through OpenSearch" in md
    for png in (
        "ndcg_by_language.png",
        "metrics_overall.png",
        "judged_by_language.png",
        "latency.png",
    ):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    res: dict[str, Any] = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert res["languages"] == list(LANGS)
    assert set(res["summary"]) == {"bm25", "knn", "hybrid", "hybrid-rerank"}
    for name, groups in res["summary"].items():
        assert set(groups) == {"all", *LANGS}, name
        assert 0.0 <= groups["all"]["nDCG@10"]["mean"] <= 1.0
    # English text matches English products: BM25 finds judged products for "phone case"
    assert res["per_query"]["bm25"][next(k for k in res["runs"]["bm25"] if k.endswith("@en"))]
    # the reranked window is continued from the hybrid's list
    key = next(iter(res["runs"]["hybrid-rerank"]))
    assert len(res["runs"]["hybrid-rerank"][key]) > 10
    # the sidecar's share: every search under hybrid-rerank called /v1/rerank once
    rerank_pass = res["latency"]["passes"]["hybrid-rerank"]
    assert rerank_pass["sidecar"]["routes"]["/v1/rerank"]["requests"] == 18
    assert rerank_pass["client"]["n"] == 18 and rerank_pass["client"]["p50"] > 0
    assert res["latency"]["passes"]["hybrid"]["sidecar"]["routes"]["/v1/rerank"]["requests"] == 0
    pipes = {c["name"]: c["pipeline_info"] for c in res["configurations"]}
    assert pipes["hybrid-rerank"]["rerank"] and not pipes["hybrid"]["rerank"]
    assert len(pipes["hybrid"]["weights"]) == 2
    assert "nDCG@10" in capsys.readouterr().out

    # pooling: the unjudged top 5 of k-NN, from the saved results, titles from the index
    sheet = tmp_path / "pool.csv"
    code = main(
        [
            "pool-export",
            "--opensearch",
            opensearch_url,
            "--queries",
            str(en),
            "--queries",
            str(xl),
            *judgments,
            "--config",
            str(config),
            "--configurations",
            "knn",
            "--depth",
            "5",
            "--from-results",
            str(out / "results.json"),
            "--out",
            str(sheet),
        ]
    )
    assert code == 0
    lines = sheet.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# Product data: Specs Icecat")
    rows = list(csv.DictReader(lines[1:]))
    assert rows and all(r["rating"] == "" and r["title"] for r in rows)
    judged = {
        (j["query_id"], j["product_id"])
        for name in ("judgments.jsonl", "judgments_extra.jsonl")
        for j in map(json.loads, (CHORUS / name).read_text(encoding="utf-8").splitlines())
    }
    assert not {(r["query_id"], r["product_id"]) for r in rows} & judged
