"""Which product text to embed for k-NN: the search behind ``ingest/catalog.py``'s
``EMBED_BULLETS``.

The catalog embeds ``title. description. bullet 1. ... bullet N`` per language. This script
embeds the whole Chorus catalog (19,406 products) once per variant of N through the
sidecar (cached on disk), reads the vectors the index holds now, and compares the variants
on the dev queries with exact k-NN (numpy, no HNSW approximation, so the variants differ only
by their text), alone and fused with the cluster's BM25 lists as the hybrid pipeline does
(the replay of ``tune_rerank.py``).

    python benchmarks/tune_embed_text.py [--variants 0] [--opensearch URL --sidecar URL]

Writes ``benchmarks/results/tune_embed_text-latest.md``. Expensive: one full embedding of
the catalog per new variant (about 15-30 minutes on a 2-core CPU); the vectors are cached.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from tune_rerank import (  # noqa: E402
    CHORUS,
    RESULTS,
    WEIGHTS,
    embed,
    fetch_candidates,
    hybrid,
    log,
    mean,
    ndcg,
)

from cluster_setup.client import make_client  # noqa: E402
from evaluation import metrics as m  # noqa: E402
from evaluation.cli import stack_urls  # noqa: E402
from evaluation.data import read_judgments, read_queries  # noqa: E402
from evaluation.search import embed_model_id  # noqa: E402
from ingest.catalog import MAX_SECTION_CHARS, normalize  # noqa: E402
from local_node.node import run_root  # noqa: E402


def passages(bullets: int) -> tuple[list[str], list[str]]:
    """Ids and embed texts of every product, with ``bullets`` bullets (as catalog.py)."""
    ids, texts = [], []
    with (CHORUS / "products.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            p = normalize(json.loads(line))
            d = p.doc
            bl = [b for b in d["bullets"].get("en", "").split(" | ") if b][:bullets]
            parts = [d["title"].get("en", ""), d["description"].get("en", ""), *bl]
            ids.append(p.id)
            texts.append(". ".join(x for x in parts if x)[:MAX_SECTION_CHARS])
    return ids, texts


def variant_vectors(sidecar: str, cache: Path, bullets: int) -> tuple[list[str], np.ndarray]:
    ids, texts = passages(bullets)
    path = cache / f"catalog-bullets{bullets}.npy"
    done = np.load(path) if path.exists() else np.zeros((0, 384), dtype=np.float32)
    if len(done) < len(ids):
        log(f"embedding {len(ids) - len(done)} catalog texts with {bullets} bullets ...")
        started = time.monotonic()
        parts = [done]
        for start in range(len(done), len(ids), 256):
            parts.append(embed(sidecar, texts[start : start + 256], "document"))
            np.save(path, np.concatenate(parts))
            log(f"  {start + len(parts[-1])}/{len(ids)} in {time.monotonic() - started:.0f} s")
        done = np.concatenate(parts)
    return ids, done


def index_vectors(client: Any, cache: Path) -> tuple[list[str], np.ndarray]:
    path = cache / "catalog-indexed.json"
    if not path.exists():
        from opensearchpy import helpers

        log("reading the indexed vectors ...")
        got = {
            h["_id"]: h["_source"]["embedding"]
            for h in helpers.scan(
                client, index="products", query={"_source": ["embedding"]}, size=500
            )
        }
        path.write_text(json.dumps(got))
    data = json.loads(path.read_text())
    ids = sorted(data)
    return ids, np.asarray([data[i] for i in ids], dtype=np.float32)


def exact_knn(qvecs: np.ndarray, ids: list[str], vecs: np.ndarray, k: int) -> list[list[Any]]:
    sims = qvecs @ vecs.T
    out = []
    for row in sims:
        top = np.argpartition(-row, k)[:k]
        top = top[np.argsort(-row[top], kind="stable")]
        # the index's score for cosinesimil is (1 + cos) / 2: same order, same min-max
        out.append([[ids[j], float((1 + row[j]) / 2)] for j in top])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--opensearch", default=None)
    ap.add_argument("--sidecar", default=None)
    ap.add_argument("--variants", default="0", help="bullet counts to try (comma-separated)")
    ap.add_argument("--cache", type=Path, default=run_root() / "tune-cache")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    node, side = stack_urls()
    os_url, sidecar = args.opensearch or node, args.sidecar or side
    if not os_url or not sidecar:
        raise SystemExit("start the stack (make run CHORUS=1 LIMIT=0) or pass the URLs")
    client = make_client(os_url, timeout=300)
    queries = read_queries([CHORUS / "queries.jsonl", CHORUS / "queries_xl_dev.tsv"])
    judgments = read_judgments([CHORUS / "judgments.jsonl", CHORUS / "judgments_extra.jsonl"])
    keys = [q.key for q in queries]
    qrels = {q.key: judgments.qrels.get(q.id, {}) for q in queries}
    scored = m.scored_keys(qrels, keys)
    en = [k for k in scored if k.endswith("@en")]
    embed_id = embed_model_id(client)
    assert embed_id
    cache = args.cache / "embed-text"
    cache.mkdir(parents=True, exist_ok=True)
    documents = client.count(index="products")["count"]
    probe = client.mget(
        index="products",
        body={"ids": ["1399", "1400", "1401"]},
        params={"_source_includes": "content_hash"},
    )
    marker = "".join(d.get("_source", {}).get("content_hash", "")[:4] for d in probe["docs"])
    cand = fetch_candidates(
        client,
        queries,
        embed_id,
        args.cache / f"{documents}-{embed_id}-{marker}" / "candidates.json",
    )
    qtexts = sorted({q.text for q in queries})
    qv = dict(zip(qtexts, embed(sidecar, qtexts, "query"), strict=True))
    qmat = np.stack([qv[q.text] for q in queries])
    variants: dict[str, tuple[list[str], np.ndarray]] = {
        "the index's vectors": index_vectors(client, cache)
    }
    for b in (int(x) for x in args.variants.split(",") if x.strip()):
        variants[f"{b} bullets"] = variant_vectors(sidecar, cache, b)
    rows = []
    for name, (ids, vecs) in variants.items():
        knn = dict(zip(keys, exact_knn(qmat, ids, vecs, 100), strict=True))
        row: dict[str, Any] = {"variant": name}
        alone = ndcg({k: [d for d, _ in knn[k]] for k in keys}, qrels, keys)
        row["knn"] = (mean(alone, scored), mean(alone, en))
        for w in WEIGHTS:
            runs = {k: hybrid(cand[k]["bm25"], knn[k], w, 100) for k in keys}
            v = ndcg(runs, qrels, keys)
            row[w] = (mean(v, scored), mean(v, en))
        rows.append(row)
        log(f"{name}: k-NN {row['knn'][0]:.4f}, best hybrid {max(row[w][0] for w in WEIGHTS):.4f}")
    lines = [
        "# Which text to embed for k-NN (dev queries, exact k-NN replay)",
        "",
        f"{len(keys)} query lists, {len(scored)} scored ({len(en)} English); nDCG@10 all / en. "
        "Exact cosine k-NN (numpy) over all products, top 100, fused with the cluster's BM25 "
        "top 100 as the hybrid pipeline does at size 100. Variant: bullets embedded after "
        "title and description, against the vectors the index holds.",
        "",
        "| variant | k-NN alone | " + " | ".join(f"hybrid w={w:.1f}" for w in WEIGHTS) + " |",
        "|---|---|" + "---|" * len(WEIGHTS),
    ]
    for r in rows:
        cells = [f"{r['knn'][0]:.4f} / {r['knn'][1]:.4f}"] + [
            f"{r[w][0]:.4f} / {r[w][1]:.4f}" for w in WEIGHTS
        ]
        lines.append(f"| {r['variant']} | " + " | ".join(cells) + " |")
    lines += ["", "Product data: Specs Icecat (https://icecat.biz/).", ""]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tune_embed_text-latest.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
