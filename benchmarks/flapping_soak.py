"""Bounded flapping soak: ``hybrid-rerank`` searches under load while the sidecar is killed
and restarted on a schedule.

Starts its own OpenSearch node and sidecar (loopback only), wires them with ``sidecar-setup
--budget B`` (the sidecar runs with the budget's ``SIDECAR_REQUEST_TIMEOUT_S``), loads the
bundled sample catalog, then runs ``--concurrency`` client threads of fail-open
``hybrid-rerank`` searches (``cluster_setup.queries.hybrid_body``) with the budget as their
client timeout for ``--seconds``. Every ``--period`` seconds the sidecar's whole process group
is SIGKILLed, stays down ``--down`` seconds, and is started again on the same port.

Reports: searches, failed searches (HTTP error or client timeout: 0 expected), searches
served without the sidecar (the k-NN leg or the rerank failed open, seen through
``verbose_pipeline``), latency percentiles up and down, and per restart the time from the
restart to the sidecar's readiness and to the first search served with the sidecar again.
Writes ``benchmarks/results/flapping_soak-*.{json,md}`` and ``flapping_soak-latest.md``.

    .venv/bin/python benchmarks/flapping_soak.py [--seconds 150] [--period 30] [--down 6]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cluster_setup import budget as budgets  # noqa: E402
from cluster_setup import queries  # noqa: E402
from cluster_setup.client import make_client  # noqa: E402
from cluster_setup.pipelines import failed_processors  # noqa: E402
from ingest.loader import SidecarEmbedder, load_products  # noqa: E402
from local_node.node import LocalNode, run_root  # noqa: E402
from sidecar.launcher import SidecarProcess, is_ready  # noqa: E402
from stack.run import SAMPLE, read_catalog  # noqa: E402

WORDS = [
    "wireless",
    "mouse",
    "keyboard",
    "headphones",
    "kettle",
    "coffee",
    "running",
    "shoes",
    "phone",
    "case",
    "charger",
    "laptop",
    "speaker",
    "bluetooth",
    "usb",
]


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=150.0, help="load duration")
    ap.add_argument("--period", type=float, default=30.0, help="seconds between kills")
    ap.add_argument("--down", type=float, default=6.0, help="seconds the sidecar stays down")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--budget", type=float, default=budgets.DEFAULT_SEARCH_BUDGET_S)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args(argv)
    b = budgets.derive(args.budget)
    rng = random.Random(11)
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"flapping-soak-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    node = LocalNode(run_dir=run_root() / f"flapping-soak-{os.getpid()}")
    sidecar = SidecarProcess(
        log_path=work / "sidecar.log",
        env={
            # a long deadline while the catalog is embedded (2 shared cores); the budget's
            # once the soak starts
            "SIDECAR_REQUEST_TIMEOUT_S": "60",
            "SIDECAR_THREADS": str(b.max_connection),
        },
    )
    records: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    lock = threading.Lock()
    try:
        os_url = node.start()
        sidecar.start()
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "cluster_setup",
                "--opensearch",
                os_url,
                "--sidecar",
                sidecar.url,
                "--budget",
                str(args.budget),
                "--json",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        wired = json.loads(out.stdout)
        client = make_client(os_url, timeout=120)
        products, _ = read_catalog(SAMPLE, 0)
        load_products(client, products, "products", SidecarEmbedder(sidecar.url))
        client.indices.refresh(index="products")
        sidecar.stop()
        sidecar.env["SIDECAR_REQUEST_TIMEOUT_S"] = f"{b.sidecar_deadline_s:g}"
        sidecar.start()
        stop = threading.Event()
        t0 = time.monotonic()

        def worker() -> None:
            s = requests.Session()
            while not stop.is_set():
                text = " ".join(rng.sample(WORDS, 2))
                started = time.monotonic()
                rec: dict[str, Any] = {"t": round(started - t0, 3)}
                try:
                    r = s.post(
                        f"{os_url}/products/_search",
                        params={"search_pipeline": "hybrid-rerank", "verbose_pipeline": "true"},
                        json=queries.hybrid_body(text),
                        timeout=b.search_budget_s,
                    )
                    rec["status"] = r.status_code
                    if r.status_code == 200:
                        res = r.json()
                        rec["hits"] = len(res["hits"]["hits"])
                        rec["failed"] = [f.split(":")[0] for f in failed_processors(res)]
                    else:
                        rec["error"] = r.text[:300]
                except requests.RequestException as exc:
                    rec["status"] = -1
                    rec["error"] = f"{type(exc).__name__}: {exc}"[:300]
                rec["s"] = round(time.monotonic() - started, 3)
                with lock:
                    records.append(rec)

        threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
        for t in threads:
            t.start()
        next_kill = t0 + args.period / 2
        while time.monotonic() - t0 < args.seconds:
            if (
                time.monotonic() >= next_kill
                and time.monotonic() - t0 + args.down + 5 < args.seconds
            ):
                assert sidecar.proc is not None
                killed = time.monotonic()
                os.killpg(sidecar.proc.pid, signal.SIGKILL)
                sidecar.proc.wait()
                time.sleep(args.down)
                restarted = time.monotonic()
                sidecar.start()
                ready = time.monotonic()
                events.append(
                    {
                        "killed_t": round(killed - t0, 2),
                        "restarted_t": round(restarted - t0, 2),
                        "ready_t": round(ready - t0, 2),
                        "restart_to_ready_s": round(ready - restarted, 2),
                    }
                )
                print(json.dumps(events[-1]), flush=True)
                next_kill = killed + args.period
            time.sleep(0.2)
        stop.set()
        for t in threads:
            t.join(b.search_budget_s + 10)
        assert is_ready(sidecar.url)
    finally:
        sidecar.stop()
        node.stop()
        if node.run_dir is not None:
            shutil.rmtree(node.run_dir, ignore_errors=True)

    ok = [r for r in records if r["status"] == 200]
    failed = [r for r in records if r["status"] != 200]
    degraded = [r for r in ok if r.get("failed")]
    full = [r for r in ok if not r.get("failed")]
    for e in events:
        after = [r for r in full if r["t"] >= e["ready_t"]]
        e["first_full_search_after_ready_s"] = (
            round(min(r["t"] for r in after) - e["ready_t"], 2) if after else None
        )
        e["first_full_search_after_kill_s"] = (
            round(min(r["t"] for r in after) - e["killed_t"], 2) if after else None
        )
        during = [r for r in records if e["killed_t"] <= r["t"] <= e["ready_t"]]
        e["searches_while_down"] = len(during)
        e["failed_while_down"] = sum(1 for r in during if r["status"] != 200)
        e["p95_s_while_down"] = round(pct([r["s"] for r in during], 95), 2) if during else None
    summary = {
        "searches": len(records),
        "failed": len(failed),
        "served_without_sidecar": len(degraded),
        "served_with_sidecar": len(full),
        "p50_s": round(pct([r["s"] for r in ok], 50), 3),
        "p95_s": round(pct([r["s"] for r in ok], 95), 3),
        "max_s": round(max((r["s"] for r in records), default=0.0), 3),
        "failed_processors": sorted({p for r in degraded for p in r["failed"]}),
    }
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    result = {
        "date": stamp,
        "summary": summary,
        "restarts": events,
        "budget": b.as_dict(),
        "args": vars(args) | {"out": str(args.out)},
        "machine": {"cpus": os.cpu_count(), "loadavg": os.getloadavg()},
        "failures": failed[:20],
        "setup_budget": wired.get("budget"),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"flapping_soak-{stamp}.json").write_text(json.dumps(result, indent=2))
    lines = [
        "# Flapping soak",
        "",
        f"Date (UTC): {stamp}. Local OpenSearch 2.19.1 node, the sidecar (bundled model, "
        f"1 worker x {b.max_connection} threads) and {args.concurrency} client threads on the "
        f"same {os.cpu_count()}-core machine (load average at the end "
        f"{os.getloadavg()[0]:.1f}), loopback only; bundled sample catalog (100 products). "
        f"`hybrid-rerank` searches with the fail-open body for {args.seconds:g} s; the "
        f"sidecar SIGKILLed every {args.period:g} s, down {args.down:g} s, then restarted. "
        f"Budget {b.search_budget_s:g} s: connectors read {b.read_timeout_s} s, connect "
        f"{b.connect_timeout_s} s, sidecar deadline {b.sidecar_deadline_s:g} s; client timeout "
        f"{b.search_budget_s:g} s.",
        "",
        "| searches | failed | served without the sidecar | p50 s | p95 s | max s |",
        "|---|---|---|---|---|---|",
        f"| {summary['searches']} | {summary['failed']} | {summary['served_without_sidecar']} "
        f"| {summary['p50_s']} | {summary['p95_s']} | {summary['max_s']} |",
        "",
        "| kill at s | restart to ready s | searches while down | failed while down | "
        "p95 s while down | first full search after ready s | after kill s |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in events:
        lines.append(
            f"| {e['killed_t']} | {e['restart_to_ready_s']} | {e['searches_while_down']} | "
            f"{e['failed_while_down']} | {e['p95_s_while_down']} | "
            f"{e['first_full_search_after_ready_s']} | {e['first_full_search_after_kill_s']} |"
        )
    lines += [
        "",
        "Served without the sidecar: a `verbose_pipeline` search in which the `ml_inference` "
        "(query embedding) or `rerank` processor failed open; the search answered from BM25 "
        "or in the recall order. Failed processors seen: "
        + (", ".join(summary["failed_processors"]) or "none")
        + ".",
        "",
    ]
    md = "\n".join(lines)
    (args.out / f"flapping_soak-{stamp}.md").write_text(md)
    (args.out / "flapping_soak-latest.md").write_text(md)
    print(md)
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
