"""The search behind the shipped hybrid weights, rerank depth, rerank text and recall blend.

It fetches, once per (query, language) of the dev set, the BM25 top 100 and the k-NN top
100 with their scores from the cluster, then replays OpenSearch's hybrid fusion offline
(min-max per leg over the page each leg returns, weighted arithmetic mean, exactly as
neural-search 2.19 does it) and the sidecar's rerank (cosine of the bundled e5 query and
passage vectors, localized, blended with the recall order and ranked by the same functions
the rerank service runs: ``sidecar.services.rerank.localize`` and ``rank``), for every
point of a grid. The replay is checked against the real cluster (hybrid
and hybrid-rerank lists for the current settings) before any number is trusted.

Overfitting: there is no holdout in ../shared (it is private), so the grid is scored on
all dev queries, the spread is reported, the choice is the simplest setting within one
standard error of the best, and a 5-fold cross-validation grouped by query id (all six
languages of a query in one fold) estimates what the choosing itself is worth on unseen
queries.

    python benchmarks/tune_rerank.py [--opensearch URL --sidecar URL]   # make run's stack

Writes ``benchmarks/results/tune_rerank-latest.md`` and a timestamped JSON.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cluster_setup import queries as bodies  # noqa: E402
from cluster_setup.client import make_client  # noqa: E402
from evaluation import metrics as m  # noqa: E402
from evaluation.cli import stack_urls  # noqa: E402
from evaluation.data import Query, read_judgments, read_queries  # noqa: E402
from evaluation.search import embed_model_id, pipeline_info  # noqa: E402
from ingest.catalog import MAX_SECTION_CHARS, normalize  # noqa: E402
from local_node.node import run_root  # noqa: E402
from sidecar.services.rerank import localize, rank  # noqa: E402

CHORUS = ROOT.parent / "shared" / "data" / "chorus_icecat"
RESULTS = ROOT / "benchmarks" / "results"
WEIGHTS = [round(0.1 * i, 1) for i in range(11)]  # BM25 weight; k-NN gets 1 - w
DEPTHS = [10, 20, 30, 50]
RECALL_WEIGHTS = [round(0.1 * i, 1) for i in range(11)]
TEXTS = ("rerank_text", "title_brand_description", "title_brand", "title", "embed_text")
MIN_SCORE = 0.001  # neural-search's min-max floor for the lowest hit of a leg


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- OpenSearch's hybrid fusion, replayed ----------------------------------------------------


def min_max(scores: Sequence[float]) -> list[float]:
    """neural-search 2.19 MinMaxScoreNormalizationTechnique: one hit -> 1.0, the lowest of
    several -> 0.001 (so that it differs from a missing hit)."""
    if not scores:
        return []
    lo, hi = min(scores), max(scores)
    if hi == lo:
        return [1.0 for _ in scores]
    return [((s - lo) / (hi - lo)) or MIN_SCORE for s in scores]


def hybrid(
    bm25: Sequence[Sequence[Any]], knn: Sequence[Sequence[Any]], w: float, size: int
) -> list[str]:
    """The page a hybrid query of ``size`` gets: each leg's top ``size`` (``knn``: the k-NN
    search at the hybrid's k), min-max normalised, then the weighted arithmetic mean (a
    missing leg counts 0, its weight still counts)."""
    return [doc for doc, _ in hybrid_scored(bm25, knn, w, size)]


def hybrid_scored(
    bm25: Sequence[Sequence[Any]], knn: Sequence[Sequence[Any]], w: float, size: int
) -> list[tuple[str, float]]:
    legs = [bm25[:size], knn[:size]]
    combined: dict[str, float] = {}
    for weight, leg in zip((w, 1.0 - w), legs, strict=True):
        for (doc, _), s in zip(leg, min_max([s for _, s in leg]), strict=True):
            combined[doc] = combined.get(doc, 0.0) + weight * s
    ranked = sorted(combined.items(), key=lambda x: -x[1])  # stable: BM25 leg order first
    return ranked[:size]


# -- data -----------------------------------------------------------------------------------


def search_pairs(client: Any, body: dict[str, Any], params: dict[str, str]) -> list[list[Any]]:
    body = {**body, "_source": False}
    res = client.search(index="products", body=body, params=params)
    return [[h["_id"], float(h["_score"])] for h in res["hits"]["hits"]]


def fetch_candidates(
    client: Any, queries: Sequence[Query], embed_id: str, cache: Path
) -> dict[str, Any]:
    """Per query: the BM25 top 100, the k-NN lists at k = 50 and 100 (HNSW is approximate:
    a k=50 search is not the top 50 of a k=100 one), and the cluster's own hybrid lists
    (to check the replay). Cached; missing fields are fetched."""

    def hits(body: dict[str, Any], pipeline: str | None = None) -> list[list[Any]]:
        return search_pairs(client, body, {"search_pipeline": pipeline} if pipeline else {})

    fields = {
        "bm25": lambda t: hits(bodies.bm25_body(t, size=100)),
        "knn100": lambda t: hits(bodies.search_body(bodies.neural(t, embed_id, 100), t, 100)),
        "knn50": lambda t: hits(bodies.search_body(bodies.neural(t, embed_id, 50), t, 50)),
        "hybrid100": lambda t: [
            d for d, _ in hits(bodies.hybrid_body(t, embed_id, 100, bodies.K), "hybrid")
        ],
        "hybrid50": lambda t: [
            d for d, _ in hits(bodies.hybrid_body(t, embed_id, 50, bodies.K), "hybrid")
        ],
    }
    data: dict[str, Any] = json.loads(cache.read_text()) if cache.exists() else {}
    todo = [(q, f) for q in queries for f in fields if f not in data.get(q.key, {})]
    if not todo:
        log(f"candidates: from {cache}")
        return data
    log(f"candidates: {len(todo)} searches ...")

    def one(item: tuple[Query, str]) -> tuple[str, str, Any]:
        q, f = item
        return q.key, f, fields[f](q.text)

    with ThreadPoolExecutor(4) as pool:
        for key, f, value in pool.map(one, todo):
            data.setdefault(key, {})[f] = value
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(data))
    return data


def embed(sidecar: str, texts: Sequence[str], input_type: str) -> np.ndarray:
    out = []
    for start in range(0, len(texts), 32):
        body = json.dumps({"input": list(texts[start : start + 32]), "input_type": input_type})
        req = urllib.request.Request(
            sidecar.rstrip("/") + "/v1/embeddings",
            data=body.encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=600) as r:
            data = json.load(r)["data"]
        out += [d["embedding"] for d in sorted(data, key=lambda d: d["index"])]
    return np.asarray(out, dtype=np.float32)


def doc_texts(ids: set[str]) -> dict[str, dict[str, str]]:
    """The candidate texts of each product, as the catalog module builds them."""
    out = {}
    with (CHORUS / "products.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            raw = json.loads(line)
            if raw["id"] in ids:
                p = normalize(raw)
                title = p.doc["title"].get("en", "")
                brand = p.doc.get("brand") or ""
                desc = p.doc["description"].get("en", "")
                out[p.id] = {
                    "rerank_text": localize([p.doc["rerank_text"]], "en")[0],
                    "title_brand_description": " | ".join(x for x in (title, brand, desc) if x)[
                        :MAX_SECTION_CHARS
                    ],
                    "title_brand": " | ".join(x for x in (title, brand) if x),
                    "title": title,
                    "embed_text": p.embed_texts.get("en", ""),
                }
    return out


def vectors(sidecar: str, cache: Path, texts: dict[str, str], kind: str) -> dict[str, np.ndarray]:
    """Vectors of ``texts`` (id -> text), cached on disk by id."""
    have: dict[str, list[float]] = json.loads(cache.read_text()) if cache.exists() else {}
    todo = [i for i in texts if i not in have]
    if todo:
        log(f"embedding {len(todo)} {kind} texts for {cache.name} ...")
        started = time.monotonic()
        for start in range(0, len(todo), 512):
            part = todo[start : start + 512]
            vecs = embed(sidecar, [texts[i] for i in part], kind)
            have.update({i: v.tolist() for i, v in zip(part, vecs, strict=True)})
            cache.write_text(json.dumps(have))
            log(f"  {start + len(part)}/{len(todo)} in {time.monotonic() - started:.0f} s")
    return {i: np.asarray(have[i], dtype=np.float32) for i in texts}


def index_vectors(client: Any, ids: Sequence[str]) -> dict[str, np.ndarray]:
    out = {}
    for start in range(0, len(ids), 200):
        got = client.mget(
            index="products",
            body={"ids": list(ids[start : start + 200])},
            params={"_source_includes": "embedding"},
        )
        for d in got["docs"]:
            if d.get("found"):
                out[d["_id"]] = np.asarray(d["_source"]["embedding"], dtype=np.float32)
    return out


# -- scoring --------------------------------------------------------------------------------


def ndcg(
    runs: dict[str, list[str]], qrels: dict[str, dict[str, int]], keys: list[str]
) -> dict[str, float]:
    return m.per_query(runs, qrels, keys)["nDCG@10"]


def mean(values: dict[str, float], keys: Sequence[str]) -> float:
    return float(np.mean([values[k] for k in keys])) if keys else float("nan")


def folds(queries: Sequence[Query], n: int = 5, seed: int = 20251125) -> list[set[str]]:
    ids = sorted({q.id for q in queries})
    rng = np.random.default_rng(seed)
    rng.shuffle(ids)
    return [set(ids[i::n]) for i in range(n)]


def cross_validate(
    grid: dict[Any, dict[str, float]],
    scored: list[str],
    by_key: dict[str, Query],
    fold_ids: list[set[str]],
) -> dict[str, Any]:
    """Pick the best grid point on 4 folds, score it on the 5th; the mean of the held-out
    scores estimates the tuned setting's worth on unseen queries."""
    held: dict[str, float] = {}
    picks = []
    for test in fold_ids:
        train = [k for k in scored if by_key[k].id not in test]
        best = max(grid, key=lambda p: mean(grid[p], train))
        picks.append(best)
        for k in scored:
            if by_key[k].id in test:
                held[k] = grid[best][k]
    return {
        "cv_ndcg": mean(held, scored),
        "picks": [list(p) if isinstance(p, tuple) else p for p in picks],
    }


def within_one_se(grid: dict[Any, dict[str, float]], keys: Sequence[str]) -> set[Any]:
    """Grid points whose mean is within one paired standard error of the best one's (the
    per-query differences to the best: settings are scored on the same queries)."""
    best = max(grid, key=lambda p: mean(grid[p], keys))
    out = set()
    for p, vals in grid.items():
        d = [grid[best][k] - vals[k] for k in keys]
        se = float(np.std(d, ddof=1) / math.sqrt(len(d))) if len(d) > 1 else 0.0
        if float(np.mean(d)) <= se:
            out.add(p)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--opensearch", default=None)
    ap.add_argument("--sidecar", default=None)
    ap.add_argument("--cache", type=Path, default=run_root() / "tune-cache")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    node, side = stack_urls()
    os_url, sidecar = args.opensearch or node, args.sidecar or side
    if not os_url or not sidecar:
        raise SystemExit(
            "start the stack (make run CHORUS=1 LIMIT=0) or pass --opensearch/--sidecar"
        )
    client = make_client(os_url, timeout=300)
    started = time.monotonic()
    queries = read_queries([CHORUS / "queries.jsonl", CHORUS / "queries_xl_dev.tsv"])
    judgments = read_judgments([CHORUS / "judgments.jsonl", CHORUS / "judgments_extra.jsonl"])
    keys = [q.key for q in queries]
    by_key = {q.key: q for q in queries}
    qrels = {q.key: judgments.qrels.get(q.id, {}) for q in queries}
    scored = m.scored_keys(qrels, keys)
    en = [k for k in scored if by_key[k].language == "en"]
    documents = client.count(index="products")["count"]
    embed_id = embed_model_id(client)
    assert embed_id, "no embed model registered"
    current = pipeline_info(client, "hybrid")["weights"]
    # the cache follows the index's content: the content hash of a few products
    probe = client.mget(
        index="products",
        body={"ids": ["1399", "1400", "1401"]},
        params={"_source_includes": "content_hash"},
    )
    marker = "".join(d.get("_source", {}).get("content_hash", "")[:4] for d in probe["docs"])
    cache = args.cache / f"{documents}-{embed_id}-{marker}"
    cand = fetch_candidates(client, queries, embed_id, cache / "candidates.json")
    report: dict[str, Any] = {
        "documents": documents,
        "queries": len(queries),
        "scored": len(scored),
        "scored_en": len(en),
        "pipeline_weights_now": current,
    }

    def summary(vals: dict[str, float]) -> dict[str, float]:
        return {"ndcg": mean(vals, scored), "ndcg_en": mean(vals, en)}

    # 1. the replay reproduces the cluster's hybrid lists (its weights, the default k)
    w_now = float(current[0])
    check = {}
    for size in (100, 50):
        replay = {k: hybrid(cand[k]["bm25"], cand[k][f"knn{bodies.K}"], w_now, size) for k in keys}
        cluster = {k: cand[k][f"hybrid{size}"] for k in keys}
        check[size] = {
            "same_top10": sum(replay[k][:10] == cluster[k][:10] for k in keys) / len(keys),
            "same_top10_set": sum(set(replay[k][:10]) == set(cluster[k][:10]) for k in keys)
            / len(keys),
            "ndcg_replay": mean(ndcg(replay, qrels, keys), scored),
            "ndcg_cluster": mean(ndcg(cluster, qrels, keys), scored),
        }
    report["replay_check"] = check
    log(f"replay check: {check}")

    # 2. hybrid weights and k, at size 100 (the evaluation's hybrid list)
    stage1: dict[Any, dict[str, float]] = {}
    recall: dict[Any, float] = {}
    for w, k in itertools.product(WEIGHTS, (50, 100)):
        runs = {key: hybrid(cand[key]["bm25"], cand[key][f"knn{k}"], w, 100) for key in keys}
        vals = m.per_query(runs, qrels, keys)
        stage1[(w, k)] = vals["nDCG@10"]
        recall[(w, k)] = mean(vals["R@100"], scored)
    near1 = within_one_se(stage1, scored)
    rows1 = [
        {
            "bm25_weight": w,
            "k": k,
            **summary(v),
            "recall100": recall[(w, k)],
            "within_1se": (w, k) in near1,
        }
        for (w, k), v in stage1.items()
    ]
    best1 = max(rows1, key=lambda r: r["ndcg"])
    # among those within one paired s.e. of the best nDCG@10: the best recall@100 (what a
    # rerank window works with), then the weight closest to an even 0.5 / 0.5
    pick1 = min(
        (r for r in rows1 if r["within_1se"]),
        key=lambda r: (-round(r["recall100"], 2), abs(r["bm25_weight"] - 0.5)),
    )
    report["hybrid_grid"] = rows1
    report["hybrid_best"], report["hybrid_pick"] = best1, pick1
    report["hybrid_cv"] = cross_validate(stage1, scored, by_key, folds(queries))
    for name in ("bm25", "knn100"):
        runs = {key: [d for d, _ in cand[key][name]] for key in keys}
        report[f"{name}_ndcg"] = summary(ndcg(runs, qrels, keys))
    log(f"hybrid: best {best1}, pick {pick1}, cv {report['hybrid_cv']['cv_ndcg']:.4f}")

    # 3. the rerank stage on the picked hybrid: depth (the page size sent), text, recall weight
    w, k = pick1["bm25_weight"], pick1["k"]
    heads = {
        d: {key: hybrid(cand[key]["bm25"], cand[key][f"knn{k}"], w, d) for key in keys}
        for d in DEPTHS
    }
    ids = {doc for d in DEPTHS for key in keys for doc in heads[d][key]}  # pages differ by size
    texts = doc_texts(ids)
    qvec = vectors(sidecar, cache / "queries.json", {q.text: q.text for q in queries}, "query")
    dvec = {
        t: vectors(sidecar, cache / f"docs-{t}.json", {i: texts[i][t] for i in ids}, "document")
        for t in TEXTS
        if t != "embed_text"
    }
    # the embed text's vector is the indexed one (a product's mean over its languages;
    # the Chorus products are English only): read it back instead of embedding again
    dvec["embed_text"] = index_vectors(client, sorted(ids))
    stage2: dict[Any, dict[str, float]] = {}
    for d, text, rw in itertools.product(DEPTHS, TEXTS, RECALL_WEIGHTS):
        runs = {}
        for key in keys:
            head = heads[d][key]
            q = qvec[by_key[key].text]
            _, order = rank([(float(dvec[text][i] @ q) + 1) / 2 for i in head], rw)
            runs[key] = [head[i] for i in order]
        stage2[(d, text, rw)] = ndcg(runs, qrels, keys)
    near2 = within_one_se(stage2, scored)
    rows2 = [
        {
            "depth": d,
            "text": t,
            "recall_weight": rw,
            **summary(v),
            "within_1se": (d, t, rw) in near2,
        }
        for (d, t, rw), v in stage2.items()
    ]
    best2 = max(rows2, key=lambda r: r["ndcg"])
    # simplest: the current text (no re-indexing), the shallowest depth (CPU time), then the
    # heavier recall weight (the smaller change to the hybrid order)
    pick2 = min(
        (r for r in rows2 if r["within_1se"]),
        key=lambda r: (r["text"] != "rerank_text", r["depth"], -r["recall_weight"]),
    )
    report["rerank_grid"] = rows2
    report["rerank_best"], report["rerank_pick"] = best2, pick2
    report["rerank_cv"] = cross_validate(stage2, scored, by_key, folds(queries))
    report["pure_cosine_top50"] = summary(stage2[(50, "rerank_text", 0.0)])
    report["hybrid_at_pick"] = summary(stage1[(w, k)])
    log(f"rerank: best {best2}, pick {pick2}, cv {report['rerank_cv']['cv_ndcg']:.4f}")
    report["seconds"] = time.monotonic() - started
    write(report, args.out)
    return 0


def write(report: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (out / f"tune_rerank-{stamp}.json").write_text(json.dumps(report, indent=1, default=str))
    chk = report["replay_check"]
    lines = [
        "# Tuning the hybrid weights and the rerank stage (dev queries, offline replay)",
        "",
        f"{report['documents']} products; {report['queries']} query lists (68 dev queries x 6 "
        f"languages), {report['scored']} scored ({report['scored_en']} English); judgments: "
        "judgments.jsonl + judgments_extra.jsonl; nDCG@10 over all scored lists (en: English "
        f"only). Cluster weights when run: {report['pipeline_weights_now']}. "
        f"Run in {report['seconds']:.0f} s by `benchmarks/tune_rerank.py`.",
        "",
        f"Replay check (the cluster's weights, k {bodies.K}): its hybrid top 10 equals the "
        "replay's "
        + "; ".join(
            f"at size {size}: {c['same_top10']:.0%} of lists exactly, {c['same_top10_set']:.0%} "
            f"as a set (the rest differ by float ties); nDCG@10 {c['ndcg_cluster']:.4f} "
            f"(cluster) vs {c['ndcg_replay']:.4f} (replay)"
            for size, c in chk.items()
        )
        + ".",
        "",
        f"BM25 alone: nDCG@10 {report['bm25_ndcg']['ndcg']:.4f} (en "
        f"{report['bm25_ndcg']['ndcg_en']:.4f}); k-NN alone (k 100): "
        f"{report['knn100_ndcg']['ndcg']:.4f} (en {report['knn100_ndcg']['ndcg_en']:.4f}).",
        "",
        "## Hybrid weights (size 100)",
        "",
        "| BM25 weight | k | nDCG@10 (all) | nDCG@10 (en) | R@100 | within 1 s.e. of best |",
        "|---|---|---|---|---|---|",
    ]
    for r in sorted(report["hybrid_grid"], key=lambda r: (r["k"], r["bm25_weight"])):
        lines.append(
            f"| {r['bm25_weight']:.1f} | {r['k']} | {r['ndcg']:.4f} | {r['ndcg_en']:.4f} | "
            f"{r['recall100']:.4f} | {'yes' if r['within_1se'] else ''} |"
        )
    b, p = report["hybrid_best"], report["hybrid_pick"]
    cv = report["hybrid_cv"]
    lines += [
        "",
        f"Best: BM25 weight {b['bm25_weight']}, k {b['k']} ({b['ndcg']:.4f}). Picked among "
        "those within one paired standard error of the best (the best recall@100, then the "
        f"weight closest to 0.5): weight {p['bm25_weight']}, k {p['k']} ({p['ndcg']:.4f}, "
        f"R@100 {p['recall100']:.4f}). 5-fold cross-validation of choosing the best point "
        f"(folds by query id): {cv['cv_ndcg']:.4f} on held-out queries (picks {cv['picks']}).",
        "",
        "## Rerank stage on that hybrid (bundled e5 cosine, blended with the recall order)",
        "",
        f"Hybrid alone at the picked weight (size 100): nDCG@10 "
        f"{report['hybrid_at_pick']['ndcg']:.4f} (en {report['hybrid_at_pick']['ndcg_en']:.4f});"
        f" re-sorting its top 50 by the cosine alone (recall weight 0): "
        f"{report['pure_cosine_top50']['ndcg']:.4f} (en "
        f"{report['pure_cosine_top50']['ndcg_en']:.4f}). Recall weight 1.0 = the hybrid's own "
        "order at that page size.",
        "",
        "| depth | text | recall weight | nDCG@10 (all) | nDCG@10 (en) | within 1 s.e. |",
        "|---|---|---|---|---|---|",
    ]
    for r in sorted(
        report["rerank_grid"], key=lambda r: (r["text"], r["depth"], r["recall_weight"])
    ):
        lines.append(
            f"| {r['depth']} | {r['text']} | {r['recall_weight']:.1f} | {r['ndcg']:.4f} | "
            f"{r['ndcg_en']:.4f} | {'yes' if r['within_1se'] else ''} |"
        )
    b, p = report["rerank_best"], report["rerank_pick"]
    cv = report["rerank_cv"]
    lines += [
        "",
        f"Best: depth {b['depth']}, {b['text']}, recall weight {b['recall_weight']} "
        f"({b['ndcg']:.4f}). Picked (simplest within one paired s.e.): depth {p['depth']}, "
        f"{p['text']}, recall weight {p['recall_weight']} ({p['ndcg']:.4f}, en "
        f"{p['ndcg_en']:.4f}). 5-fold grouped cross-validation of the choice: "
        f"{cv['cv_ndcg']:.4f} on held-out queries (picks {cv['picks']}).",
        "",
        "Texts: rerank_text = the catalog's rerank text (title | brand | description | "
        "RERANK_BULLETS spec bullets), title_brand_description = the same without bullets, "
        "title_brand, title = the title alone, embed_text = the text the k-NN vector was made "
        "of (title. description, plus EMBED_BULLETS bullets).",
        "",
        "Product data: Specs Icecat (https://icecat.biz/).",
        "",
    ]
    (out / "tune_rerank-latest.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
