"""Bounded load and soak test of the sidecar, alone and through OpenSearch.

Starts its own OpenSearch node and sidecar (loopback only), loads the bundled sample
catalog, then:

1. direct ``/v1/rerank`` calls (20 documents each) at rising concurrency,
2. searches through ``hybrid-rerank`` (BM25 + k-NN, then the sidecar) at rising
   concurrency,
3. a soak: mixed direct and search traffic for ``--soak-seconds`` with every request
   unique (so the score cache keeps filling), reporting the sidecar's memory before and
   after: the cache (``--cache-size``) and the queues must keep it bounded.

Every level runs a fixed time with a fixed number of client threads and stops by itself.
Prints a table and writes ``benchmarks/results/load_soak-*.{json,md}``.

    .venv/bin/python benchmarks/load_soak.py [--seconds 10] [--levels 1,4,16] [--soak-seconds 180]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cluster_setup import queries  # noqa: E402
from cluster_setup.client import make_client  # noqa: E402
from ingest.loader import SidecarEmbedder, load_products  # noqa: E402
from local_node.node import LocalNode, run_root  # noqa: E402
from sidecar.launcher import SidecarProcess  # noqa: E402
from stack.run import SAMPLE, read_catalog  # noqa: E402
from stack.run import setup as stack_setup  # noqa: E402

WORDS = [
    "wireless",
    "mouse",
    "keyboard",
    "headphones",
    "kettle",
    "grinder",
    "coffee",
    "running",
    "shoes",
    "phone",
    "case",
    "charger",
    "bluetooth",
    "speaker",
    "laptop",
    "stand",
    "usb",
    "cable",
    "red",
    "black",
    "blue",
    "steel",
]


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p
    f = int(k)
    c = min(f + 1, len(xs) - 1)
    return xs[f] + (xs[c] - xs[f]) * (k - f)


def rss_mb(master_pid: int) -> float:
    """Resident memory of the gunicorn master and its workers, in MiB."""
    pids = [str(master_pid)] + subprocess.run(
        ["pgrep", "-P", str(master_pid)], capture_output=True, text=True
    ).stdout.split()
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def run_level(
    name: str, concurrency: int, seconds: float, call: Callable[[int], None]
) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(10**9))
    deadline = time.monotonic() + seconds

    def worker() -> None:
        while time.monotonic() < deadline:
            with lock:
                i = next(counter)
            started = time.perf_counter()
            try:
                call(i)
                with lock:
                    latencies.append(time.perf_counter() - started)
            except Exception as exc:  # noqa: BLE001 - every failure is counted and shown
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    return {
        "workload": name,
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": len(errors),
        "first_error": errors[0] if errors else "",
        "rps": len(latencies) / elapsed,
        "p50_ms": 1000 * pct(latencies, 0.5),
        "p99_ms": 1000 * pct(latencies, 0.99),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="per load level")
    ap.add_argument("--levels", default="1,4,16")
    ap.add_argument("--soak-seconds", type=float, default=180.0)
    ap.add_argument("--soak-concurrency", type=int, default=8)
    ap.add_argument("--cache-size", type=int, default=5000)
    ap.add_argument("--documents", type=int, default=20, help="documents per direct rerank")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args(argv)
    levels = [int(x) for x in args.levels.split(",")]
    rng = random.Random(7)
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"load-soak-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)

    node = LocalNode(run_dir=run_root() / f"load-soak-{os.getpid()}")
    sidecar = SidecarProcess(
        log_path=work / "sidecar.log",
        env={"SIDECAR_CACHE_SIZE": str(args.cache_size), "SIDECAR_THREADS": "32"},
    )
    rows: list[dict[str, Any]] = []
    memory: dict[str, float] = {}
    try:
        os_url = node.start()
        sidecar.start()
        embed_model = stack_setup(os_url, sidecar.url)["embed_model_id"]
        client = make_client(os_url, timeout=120)
        products, _ = read_catalog(SAMPLE, 0)
        load_products(client, products, "products", SidecarEmbedder(sidecar.url))
        titles = [p.doc["rerank_text"] for p in products]
        session = threading.local()

        def http() -> requests.Session:
            if not hasattr(session, "s"):
                session.s = requests.Session()
            return session.s

        def direct(i: int, unique: bool = False) -> None:
            docs = rng.sample(titles, args.documents)
            if unique:
                docs = [f"{d} #{i}" for d in docs]
            r = http().post(
                sidecar.url + "/v1/rerank",
                timeout=60,
                json={"query": " ".join(rng.sample(WORDS, 2)), "documents": docs},
            )
            r.raise_for_status()
            if r.headers.get("X-Sidecar-Fallback"):
                raise RuntimeError(f"fallback: {r.headers['X-Sidecar-Fallback']}")
            assert len(r.json()["results"]) == args.documents

        def search(i: int, unique: bool = False) -> None:
            text = " ".join(rng.sample(WORDS, 2)) + (f" {i}" if unique else "")
            body = queries.hybrid_body(text, embed_model, size=10)
            res = client.search(
                index="products", body=body, params={"search_pipeline": "hybrid-rerank"}
            )
            assert res["hits"]["hits"]

        for level in levels:
            rows.append(run_level("direct /v1/rerank (20 docs)", level, args.seconds, direct))
            print(json.dumps(rows[-1]), flush=True)
        for level in levels:
            rows.append(
                run_level("search via hybrid-rerank (size 10)", level, args.seconds, search)
            )
            print(json.dumps(rows[-1]), flush=True)
        assert sidecar.pid is not None
        memory["before_soak_mb"] = rss_mb(sidecar.pid)
        soak = run_level(
            "soak: unique direct + search traffic",
            args.soak_concurrency,
            args.soak_seconds,
            lambda i: (direct if i % 2 else search)(i, True),
        )  # type: ignore[operator]
        rows.append(soak)
        memory["after_soak_mb"] = rss_mb(sidecar.pid)
        metrics = requests.get(sidecar.url + "/metrics", timeout=10).text
        memory["queue_depth_after"] = sum(
            float(line.split()[-1])
            for line in metrics.splitlines()
            if line.startswith("sidecar_queue_depth{")
        )
    finally:
        sidecar.stop()
        node.stop()
        if node.run_dir is not None:
            shutil.rmtree(node.run_dir, ignore_errors=True)

    print(
        f"\n{'workload':<40} {'conc':>4} {'req':>6} {'err':>4} {'req/s':>7} "
        f"{'p50 ms':>8} {'p99 ms':>8}"
    )
    for r in rows:
        print(
            f"{r['workload']:<40} {r['concurrency']:>4} {r['requests']:>6} {r['errors']:>4} "
            f"{r['rps']:>7.1f} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f}"
        )
    growth = memory["after_soak_mb"] - memory["before_soak_mb"]
    print(
        f"\nsidecar memory: {memory['before_soak_mb']:.0f} MiB before the soak, "
        f"{memory['after_soak_mb']:.0f} MiB after ({growth:+.0f} MiB); cache bounded at "
        f"{args.cache_size} entries; queue depth after: {memory['queue_depth_after']:.0f}"
    )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    args.out.mkdir(parents=True, exist_ok=True)
    result = {
        "date": stamp,
        "rows": rows,
        "memory": memory,
        "args": vars(args) | {"out": str(args.out)},
        "machine": {"cpus": os.cpu_count()},
    }
    (args.out / f"load_soak-{stamp}.json").write_text(json.dumps(result, indent=2))
    lines = [
        "# Load and soak",
        "",
        f"Date (UTC): {stamp}. Local OpenSearch 2.19.1 node, the "
        "sidecar (bundled model, 1 worker x 32 threads), the load client: all on the same "
        "2-core machine, loopback only. Catalog: the bundled sample (100 products).",
        "",
        "| workload | concurrency | requests | errors | req/s | p50 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['workload']} | {r['concurrency']} | {r['requests']} | {r['errors']} | "
        f"{r['rps']:.1f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} |"
        for r in rows
    ]
    lines += [
        "",
        f"Sidecar memory (RSS, master + worker): {memory['before_soak_mb']:.0f} MiB "
        f"before a {args.soak_seconds:.0f} s soak of unique requests, "
        f"{memory['after_soak_mb']:.0f} MiB after ({growth:+.0f} MiB), score cache "
        f"bounded at {args.cache_size} entries, queue depth after the soak "
        f"{memory['queue_depth_after']:.0f}.",
    ]
    (args.out / "load_soak-latest.md").write_text("\n".join(lines) + "\n")
    errors = sum(r["errors"] for r in rows)
    print(f"errors: {errors}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
