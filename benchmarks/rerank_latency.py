"""Hybrid vs hybrid + the learned CPU rerank, both through OpenSearch's search pipelines.

The benchmark starts its own sidecar of this checkout and wires it into the loaded cluster as
``sidecar-setup`` wires the main one: a translate, an embed-leg and a rerank model (connectors
from ``index_templates/``, the default time budget), and two pipelines built from the shipped
bodies, ``bench-hybrid`` (``pipeline.hybrid.json``: query translated, embedded into the k-NN
leg, normalization) and ``bench-hybrid-rerank`` (``pipeline.hybrid-rerank.json``: the same,
then the rerank processor over the page). So both configurations call the same sidecar, as
in production, and hybrid + rerank - hybrid is the rerank's whole cost, the processor and its
connector included. The sidecar's share is its ``/v1/rerank`` route time (the mean, from its
Prometheus histogram). All of it is removed at the end.

Each dev query's search (``hybrid_body``, fail-open form, ``size`` hits) runs once through
each pipeline, at each concurrency, cold (a fresh sidecar: empty vector cache, queries never
sent before; each level on its own queries) and warm (the vector cache filled from the
``--warm`` files, after one priming pass over the same queries). The vector cache's hits and
misses are recorded per run, so "cold" and "warm" are what the cache saw.

    python benchmarks/rerank_latency.py --cluster http://127.0.0.1:9200 \\
        --queries queries.jsonl --queries queries_xl_dev.tsv \\
        --vocabulary /work/run-eval/stack/vocabulary.npz \\
        --warm /tmp/ltr-vectors.multilingual-e5-small.npz,/tmp/ltr-vectors.use-multilingual-v3.npz

Results: ``benchmarks/results/rerank_latency-<stamp>.json|md`` and ``-latest.md``.
Figures derive from the Chorus/Icecat catalog: product data Specs Icecat.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _servers import ManagedServer  # noqa: E402
from _workload import machine_info, percentile  # noqa: E402

from cluster_setup import budget  # noqa: E402
from cluster_setup.bodies import load_body, substitute  # noqa: E402
from cluster_setup.queries import hybrid_body  # noqa: E402
from evaluation.data import read_queries  # noqa: E402
from sidecar.launcher import free_port  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "results"
PIPELINES = {"hybrid": "bench-hybrid", "rerank": "bench-hybrid-rerank"}
TRUSTED = "plugins.ml_commons.trusted_connector_endpoints_regex"


class Cluster:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.s = requests.Session()

    def req(self, method: str, path: str, body: Any = None, **params: str) -> Any:
        r = self.s.request(method, self.url + path, json=body, params=params, timeout=120)
        if r.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:500]}")
        return r.json() if r.content else {}

    def trust(self, sidecar: str) -> None:
        settings = self.req(
            "GET", "/_cluster/settings", include_defaults="true", flat_settings="true"
        )
        current = {**settings["defaults"], **settings["persistent"]}.get(TRUSTED) or []
        origin = "^" + re.escape(sidecar) + "/.*$"
        if origin not in current:
            self.req("PUT", "/_cluster/settings", {"persistent": {TRUSTED: [*current, origin]}})

    @contextlib.contextmanager
    def model(self, sidecar: str, role: str) -> Iterator[str]:
        """A connector (``connector.ROLE.json``, the default budget) and a deployed model."""
        connector = budget.apply(
            substitute(
                load_body(f"connector.{role}.json"),
                {"SIDECAR_URL": sidecar, "SIDECAR_API_KEY": "unused"},
            ),
            budget.DEFAULT,
        )
        connector["name"] = f"rerank-latency-{role}"
        cid = self.req("POST", "/_plugins/_ml/connectors/_create", connector)["connector_id"]
        res = self.req(
            "POST",
            "/_plugins/_ml/models/_register",
            {"name": connector["name"], "function_name": "remote", "connector_id": cid},
            deploy="true",
        )
        model_id = res.get("model_id")
        for _ in range(240):
            task = self.req("GET", f"/_plugins/_ml/tasks/{res['task_id']}")
            if task["state"] == "COMPLETED":
                model_id = model_id or task["model_id"]
                break
            if task["state"] == "FAILED":
                raise RuntimeError(f"deploying {role}: {task}")
            time.sleep(0.5)
        try:
            yield str(model_id)
        finally:
            with contextlib.suppress(RuntimeError):
                self.req("POST", f"/_plugins/_ml/models/{model_id}/_undeploy")
                self.req("DELETE", f"/_plugins/_ml/models/{model_id}")
                self.req("DELETE", f"/_plugins/_ml/connectors/{cid}")

    @contextlib.contextmanager
    def pipelines(self, sidecar: str) -> Iterator[None]:
        """``bench-hybrid`` and ``bench-hybrid-rerank`` calling ``sidecar``; removed after."""
        self.trust(sidecar)
        with (
            self.model(sidecar, "translate") as translate,
            self.model(sidecar, "embed-leg") as leg,
            self.model(sidecar, "rerank") as rerank,
        ):
            ids = {
                "TRANSLATE_MODEL_ID": translate,
                "EMBED_LEG_MODEL_ID": leg,
                "RERANK_MODEL_ID": rerank,
            }
            for kind, name in PIPELINES.items():
                shipped = (
                    "pipeline.hybrid.json" if kind == "hybrid" else "pipeline.hybrid-rerank.json"
                )
                self.req("PUT", f"/_search/pipeline/{name}", substitute(load_body(shipped), ids))
            try:
                yield
            finally:
                for name in PIPELINES.values():
                    with contextlib.suppress(RuntimeError):
                        self.req("DELETE", f"/_search/pipeline/{name}")


class Client:
    def __init__(self, cluster: str, index: str, size: int) -> None:
        self.cluster, self.index, self.size = cluster, index, size
        self._local = threading.local()

    def session(self) -> requests.Session:
        s = getattr(self._local, "s", None)
        if s is None:
            s = self._local.s = requests.Session()
        return s

    def search(self, text: str, kind: str) -> float:
        body = hybrid_body(text, size=self.size)
        body["_source"] = False
        t0 = time.perf_counter()
        r = self.session().post(
            f"{self.cluster}/{self.index}/_search",
            params={"search_pipeline": PIPELINES[kind]},
            json=body,
            timeout=60,
        )
        r.raise_for_status()
        return time.perf_counter() - t0

    def one(self, text: str) -> dict[str, float]:
        return {kind: self.search(text, kind) for kind in PIPELINES}


def scrape(sidecar: str) -> dict[str, float]:
    """The sidecar's rerank route time (sum, count) and vector cache hits/misses."""
    text = requests.get(f"{sidecar}/metrics", timeout=10).text
    out = {"rerank_s": 0.0, "rerank_n": 0.0, "hits": 0.0, "misses": 0.0}
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        name, value = line.rsplit(" ", 1)
        if name.startswith("sidecar_request_latency_seconds_sum") and "/v1/rerank" in name:
            out["rerank_s"] += float(value)
        elif name.startswith("sidecar_request_latency_seconds_count") and "/v1/rerank" in name:
            out["rerank_n"] += float(value)
        elif name.startswith("sidecar_vector_cache_hits_total"):
            out["hits"] += float(value)
        elif name.startswith("sidecar_vector_cache_misses_total"):
            out["misses"] += float(value)
    return out


def run_level(
    client: Client, sidecar: str, queries: Sequence[Any], concurrency: int
) -> dict[str, Any]:
    before = scrape(sidecar)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        rows = list(pool.map(lambda q: client.one(q.text), queries))
    wall = time.perf_counter() - t0
    after = scrape(sidecar)
    out: dict[str, Any] = {"concurrency": concurrency, "requests": len(rows), "seconds": wall}
    for kind in PIPELINES:
        ms = [r[kind] * 1000 for r in rows]
        out[kind] = {f"p{p}": round(percentile(ms, p), 1) for p in (50, 90, 99)}
    n = after["rerank_n"] - before["rerank_n"]
    out["sidecar_rerank_mean_ms"] = (
        round((after["rerank_s"] - before["rerank_s"]) / n * 1000, 1) if n else None
    )
    looked = (after["hits"] - before["hits"]) + (after["misses"] - before["misses"])
    out["vector_cache_hit_share"] = (
        round((after["hits"] - before["hits"]) / looked, 3) if looked else None
    )
    out["rerank_over_hybrid_p50"] = round(out["rerank"]["p50"] / out["hybrid"]["p50"], 2)
    return out


def start_sidecar(warm: str, vocabulary: str, log: Path) -> ManagedServer:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDECAR_")}
    env.update(
        SIDECAR_HOST="127.0.0.1",
        SIDECAR_PORT=str(port),
        SIDECAR_RERANK_BACKEND="learned",
        SIDECAR_VECTOR_CACHE_WARM=warm,
        SIDECAR_REQUEST_TIMEOUT_S=f"{budget.DEFAULT.sidecar_deadline_s:g}",
        PYTHONPATH=str(REPO),
    )
    if vocabulary:
        env["SIDECAR_QU_VOCABULARY"] = vocabulary
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


def measure(
    args: argparse.Namespace,
    cluster: Cluster,
    warm: str,
    log: Path,
    queries: Sequence[Any],
    levels: Sequence[int],
    label: str,
    report: dict[str, Any],
) -> None:
    n = args.requests
    with start_sidecar(warm, args.vocabulary, log) as srv:
        sidecar = f"http://127.0.0.1:{srv.port}"
        with cluster.pipelines(sidecar):
            client = Client(args.cluster, args.index, args.size)
            if label == "cold":
                client.one(queries[-1].text)  # connections and dictionaries, nothing else
                slices = [queries[i * n : (i + 1) * n] for i in range(len(levels))]
            else:
                run_level(client, sidecar, queries[:n], 4)  # priming: every page cached
                slices = [queries[:n]] * len(levels)
            for c, part in zip(levels, slices, strict=True):
                res = run_level(client, sidecar, part, c)
                report["runs"].append({"cache": label, **res})
                print(label, json.dumps(res), flush=True)
            if label == "warm":
                metrics = requests.get(f"{sidecar}/metrics", timeout=10).text
                report["vector_cache"] = [
                    ln
                    for ln in metrics.splitlines()
                    if ln.startswith("sidecar_vector_cache") and "_created" not in ln
                ]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--cluster", required=True)
    ap.add_argument("--index", default="products")
    ap.add_argument("--queries", type=Path, action="append", required=True)
    ap.add_argument("--warm", default="", help="vector files, comma-separated")
    ap.add_argument(
        "--vocabulary", default="", help="the catalog vocabulary for query translation (.npz)"
    )
    ap.add_argument("--size", type=int, default=20)
    ap.add_argument("--concurrency", default="1,4,16")
    ap.add_argument("--requests", type=int, default=48, help="requests per level")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",")]
    queries = read_queries(args.queries)
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
    cluster = Cluster(args.cluster)
    measure(args, cluster, "", logs / "cold.log", queries, levels, "cold", report)
    measure(args, cluster, args.warm, logs / "warm.log", queries, levels, "warm", report)
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
        "# Hybrid vs hybrid + learned CPU rerank, both through OpenSearch pipelines",
        "",
        f"{r['started']}; page {r['size']} hits; {r['requests_per_level']} dev queries per "
        f"level; cluster {r['cluster']}; {m.get('cpu_model')}, {m.get('affinity_cpus')} CPUs; "
        f"load average at start {r['load_average_start'][0]:.1f}, at end "
        f"{r['load_average_end'][0]:.1f}. Product data: Specs Icecat.",
        "",
        "hybrid = `pipeline.hybrid.json` (query translated and embedded by the sidecar, BM25 + "
        "k-NN); hybrid + rerank = `pipeline.hybrid-rerank.json` (the same, then the rerank "
        "processor over the page), both calling one sidecar. sidecar rerank = its `/v1/rerank` "
        "route time (mean). Milliseconds.",
        "",
        "| cache | c | hybrid p50 | hybrid p90 | +rerank p50 | +rerank p90 | +rerank p99 | "
        "sidecar rerank mean | vector cache hits | +rerank/hybrid p50 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in r["runs"]:
        lines.append(
            f"| {run['cache']} | {run['concurrency']} | {run['hybrid']['p50']} | "
            f"{run['hybrid']['p90']} | {run['rerank']['p50']} | {run['rerank']['p90']} | "
            f"{run['rerank']['p99']} | {run['sidecar_rerank_mean_ms']} | "
            f"{run['vector_cache_hit_share']} | {run['rerank_over_hybrid_p50']} |"
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
