"""Hybrid vs hybrid + the learned CPU rerank, through the loaded OpenSearch node.

For each dev query: the hybrid search of the page (``search_pipeline=hybrid``, ``size`` hits
with their ``rerank_text``; its neural leg embeds the query through the cluster's
connector), then that page reranked by a sidecar of this checkout (``/v1/rerank`` with
``in_recall_order``, exactly what the rerank response processor sends). The hybrid's time,
the sidecar's time (its share) and their sum (hybrid + rerank) are recorded per request, at
each concurrency, cold (a fresh sidecar whose vector cache is empty, queries never sent
before) and warm (the vector cache filled from the ``--warm`` files, after one priming pass).
Nothing in the cluster is created or changed.

    python benchmarks/rerank_latency.py --cluster http://127.0.0.1:52755 \\
        --queries queries.jsonl --queries queries_xl_dev.tsv \\
        --warm /tmp/ltr-vectors.multilingual-e5-small.npz,/tmp/ltr-vectors.use-multilingual-v3.npz

Results: ``benchmarks/results/rerank_latency-<stamp>.json|md`` and ``-latest.md``.
Figures derive from the Chorus/Icecat catalog: product data Specs Icecat.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _servers import ManagedServer  # noqa: E402
from _workload import machine_info, percentile  # noqa: E402

from cluster_setup.queries import hybrid_body  # noqa: E402
from cluster_setup.state import model_id, read_state  # noqa: E402
from evaluation.data import read_queries  # noqa: E402
from sidecar.launcher import free_port  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "results"


def embed_model_id(cluster: str) -> str:
    found = requests.get(f"{cluster}/_index_template/products", timeout=10).json()
    template = found["index_templates"][0]["index_template"]
    mid = model_id(read_state(template))
    if not mid:
        raise SystemExit("the cluster records no embedding model (run the setup first)")
    return mid


class Client:
    def __init__(self, cluster: str, sidecar: str, index: str, size: int, embed_id: str):
        self.cluster, self.sidecar, self.index = cluster, sidecar, index
        self.size, self.embed_id = size, embed_id
        self._local = threading.local()

    def session(self) -> requests.Session:
        s = getattr(self._local, "s", None)
        if s is None:
            s = self._local.s = requests.Session()
        return s

    def one(self, text: str, language: str) -> dict[str, float]:
        s = self.session()
        body = hybrid_body(text, self.embed_id, size=self.size)
        body.pop("ext", None)
        body["_source"] = ["rerank_text"]
        t0 = time.perf_counter()
        r = s.post(
            f"{self.cluster}/{self.index}/_search",
            params={"search_pipeline": "hybrid"},
            json=body,
            timeout=60,
        )
        r.raise_for_status()
        hits = r.json()["hits"]["hits"]
        t1 = time.perf_counter()
        docs = [h["_source"].get("rerank_text") or "" for h in hits]
        if docs:
            rr = s.post(
                f"{self.sidecar}/v1/rerank",
                json={"query": text, "documents": docs, "in_recall_order": True},
                timeout=60,
            )
            rr.raise_for_status()
        t2 = time.perf_counter()
        return {"hybrid": t1 - t0, "rerank": t2 - t1, "total": t2 - t0}


def run_level(client: Client, queries: Sequence[Any], concurrency: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        rows = list(pool.map(lambda q: client.one(q.text, q.language), queries))
    wall = time.perf_counter() - t0
    out: dict[str, Any] = {"concurrency": concurrency, "requests": len(rows), "seconds": wall}
    for part in ("hybrid", "rerank", "total"):
        ms = [r[part] * 1000 for r in rows]
        out[part] = {f"p{p}": round(percentile(ms, p), 1) for p in (50, 90, 99)}
    out["total_over_hybrid_p50"] = round(out["total"]["p50"] / out["hybrid"]["p50"], 2)
    return out


def start_sidecar(warm: str, log: Path) -> ManagedServer:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDECAR_")}
    env.update(
        SIDECAR_HOST="127.0.0.1",
        SIDECAR_PORT=str(port),
        SIDECAR_RERANK_BACKEND="learned",
        SIDECAR_EMBED_BACKEND="none",
        SIDECAR_VECTOR_CACHE_WARM=warm,
        PYTHONPATH=str(REPO),
    )
    return ManagedServer(
        "sidecar",
        [sys.executable, "-m", "sidecar.serve"],
        env,
        port,
        "/readyz",
        log,
        start_timeout_s=600,
        cwd=str(REPO),
    )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--cluster", required=True)
    ap.add_argument("--index", default="products")
    ap.add_argument("--queries", type=Path, action="append", required=True)
    ap.add_argument("--warm", default="", help="vector files, comma-separated")
    ap.add_argument("--size", type=int, default=20)
    ap.add_argument("--concurrency", default="1,4,16")
    ap.add_argument("--requests", type=int, default=48, help="requests per level")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",")]
    queries = read_queries(args.queries)
    embed_id = embed_model_id(args.cluster)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    logs = Path("/tmp") / f"rerank_latency-{stamp}"
    report: dict[str, Any] = {
        "started": stamp,
        "cluster": args.cluster,
        "size": args.size,
        "requests_per_level": args.requests,
        "machine": machine_info(),
        "load_average_start": os.getloadavg(),
        "runs": [],
        "attribution": "Product data: Specs Icecat (https://icecat.biz/), Icecat Open Content "
        "License.",
    }
    n = args.requests
    # cold: a fresh sidecar, no warm file, each level on queries not sent before
    with start_sidecar("", logs / "cold.log") as srv:
        client = Client(
            args.cluster, f"http://127.0.0.1:{srv.port}", args.index, args.size, embed_id
        )
        client.one(queries[-1].text, queries[-1].language)  # connections, translation cache
        for i, c in enumerate(levels):
            part = queries[i * n : (i + 1) * n]
            res = run_level(client, part, c)
            report["runs"].append({"cache": "cold", **res})
            print("cold", json.dumps(res))
    with start_sidecar(args.warm, logs / "warm.log") as srv:
        client = Client(
            args.cluster, f"http://127.0.0.1:{srv.port}", args.index, args.size, embed_id
        )
        part = queries[:n]
        run_level(client, part, 4)  # priming pass: every document of these pages cached
        for c in levels:
            res = run_level(client, part, c)
            report["runs"].append({"cache": "warm", **res})
            print("warm", json.dumps(res))
        metrics = requests.get(f"http://127.0.0.1:{srv.port}/metrics", timeout=10).text
        report["vector_cache"] = [
            line for line in metrics.splitlines() if line.startswith("sidecar_vector_cache")
        ]
    report["load_average_end"] = os.getloadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"rerank_latency-{stamp}.json").write_text(json.dumps(report, indent=2) + "\n")
    md = markdown(report)
    (args.out / f"rerank_latency-{stamp}.md").write_text(md)
    (args.out / "rerank_latency-latest.md").write_text(md)
    print(md)
    return 0


def markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [
        "# Hybrid vs hybrid + learned CPU rerank, through OpenSearch",
        "",
        f"{r['started']}; page {r['size']} hits; {r['requests_per_level']} dev queries per "
        f"level; cluster {r['cluster']}; {m.get('cpu_model')}, {m.get('affinity_cpus')} CPUs; "
        f"load average at start {r['load_average_start'][0]:.1f}, at end "
        f"{r['load_average_end'][0]:.1f} (a machine shared with other work: figures are "
        "upper bounds). Product data: Specs Icecat.",
        "",
        "hybrid = the OpenSearch hybrid search (BM25 + neural leg, its query embedding "
        "included); rerank = the sidecar's `/v1/rerank` of that page (its share); total = "
        "hybrid + rerank. Milliseconds.",
        "",
        "| cache | c | hybrid p50 | hybrid p90 | rerank p50 | rerank p90 | total p50 | "
        "total p90 | total/hybrid p50 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run in r["runs"]:
        lines.append(
            f"| {run['cache']} | {run['concurrency']} | {run['hybrid']['p50']} | "
            f"{run['hybrid']['p90']} | {run['rerank']['p50']} | {run['rerank']['p90']} | "
            f"{run['total']['p50']} | {run['total']['p90']} | {run['total_over_hybrid_p50']} |"
        )
    lines += [
        "",
        "Vector cache after the warm runs:",
        "",
        "```",
        *r.get("vector_cache", []),
        "```",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
