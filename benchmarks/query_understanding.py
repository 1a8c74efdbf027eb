"""Query understanding: how fast the sidecar's ``/v1/understand`` answers, and what the
translating request processor adds to a search.

1. The endpoint, over HTTP to a running sidecar, warm (one pass first, not counted): p50/p99
   per language over the Chorus/Icecat dev queries (English, and their zh/es/ja/fr/de
   translations from ../shared/data/chorus_icecat). Target: p50 <= 5 ms.
2. The same queries as hybrid searches through OpenSearch, with the translating pipeline
   (``hybrid``) and without (``hybrid-untranslated``), alternated query by query: p50/p99 of
   OpenSearch's ``took`` and of the wall time the client saw. Target: <= 15 ms added (p50).

One query at a time (latency, not throughput). Prints a table and writes
benchmarks/results/query_understanding-latest.md and a timestamped JSON.

    python benchmarks/query_understanding.py --sidecar http://127.0.0.1:8080 \\
        --opensearch http://127.0.0.1:9200 [--rounds 3] [--translated hybrid] \\
        [--untranslated hybrid-untranslated] [--api-key KEY] [--vocabulary vocab.npz]

Product data: Specs Icecat (https://icecat.biz/), Icecat Open Content License.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cluster_setup import queries  # noqa: E402
from cluster_setup.state import model_id, read_state  # noqa: E402

CHORUS = ROOT.parent / "shared" / "data" / "chorus_icecat"
RESULTS = ROOT / "benchmarks" / "results"
ICECAT = "Product data: Specs Icecat (https://icecat.biz/), Icecat Open Content License."
LANGS = ("en", "zh", "es", "ja", "fr", "de")


def dev_queries(folder: Path) -> list[tuple[str, str]]:
    """``(language, text)`` of the dev queries: English, then their translations."""
    english: dict[str, str] = {}
    for line in (folder / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        q = json.loads(line)
        if q.get("split") == "dev":
            english[q["query_id"]] = q["query"]
    rows = [("en", t) for t in english.values()]
    with (folder / "queries_xl_dev.tsv").open(encoding="utf-8") as fh:
        for r in csv.DictReader(fh, delimiter="\t"):
            if r["query_id"] in english:
                rows.append((r["lang"], r["query"]))
    return rows


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of ``values``."""
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": round(pct(values, 50), 2),
        "p99": round(pct(values, 99), 2),
        "mean": round(statistics.fmean(values), 2) if values else float("nan"),
    }


def endpoint(
    session: requests.Session, url: str, rows: list[tuple[str, str]], rounds: int
) -> dict[str, Any]:
    def call(text: str) -> tuple[float, dict[str, Any]]:
        t0 = time.perf_counter()
        r = session.post(url + "/v1/understand", json={"query": text}, timeout=30)
        ms = (time.perf_counter() - t0) * 1000
        r.raise_for_status()
        return ms, r.json()

    for _, text in rows:  # warm: every language's dictionary and the caches
        call(text)
    times: dict[str, list[float]] = defaultdict(list)
    changed: dict[str, int] = defaultdict(int)
    examples: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for i in range(rounds):
        for lang, text in rows:
            ms, body = call(text)
            times[lang].append(ms)
            if i == 0:
                changed[lang] += body["bm25_query"] != text
                if len(examples[lang]) < 3:
                    examples[lang].append((text, body["translation"]))
    return {
        lang: {
            **summary(times[lang]),
            "translated": changed[lang],
            "queries": len(times[lang]) // rounds,
            "examples": examples[lang],
        }
        for lang in LANGS
        if times[lang]
    }


def in_process(rows: list[tuple[str, str]], rounds: int, vocabulary: str) -> dict[str, Any]:
    """The understand service called directly (no HTTP, no Flask): the translation's own
    cost, warm."""
    from sidecar.services.understand import UnderstandService
    from sidecar.settings import Settings

    svc = UnderstandService(Settings(qu_backend="dictionary", qu_vocabulary=vocabulary))
    try:
        if not svc.wait_ready(600):
            raise SystemExit("the translator did not load")
        for _, text in rows:
            svc.understand(text)
        times: dict[str, list[float]] = defaultdict(list)
        for _ in range(rounds):
            for lang, text in rows:
                t0 = time.perf_counter()
                svc.understand(text)
                times[lang].append((time.perf_counter() - t0) * 1000)
    finally:
        svc.close()
    return {lang: summary(times[lang]) for lang in LANGS if times[lang]}


def searches(
    os_url: str,
    embed_model_id: str,
    rows: list[tuple[str, str]],
    pipelines: tuple[str, str],
    rounds: int,
) -> dict[str, Any]:
    session = requests.Session()

    def one(text: str, pipeline: str) -> tuple[float, float]:
        body = queries.hybrid_body(text, embed_model_id, size=20)
        body["_source"] = False
        t0 = time.perf_counter()
        r = session.post(
            f"{os_url}/products/_search",
            params={"search_pipeline": pipeline},
            json=body,
            timeout=60,
        )
        wall = (time.perf_counter() - t0) * 1000
        r.raise_for_status()
        return float(r.json()["took"]), wall

    for _, text in rows:  # warm both
        for p in pipelines:
            one(text, p)
    took: dict[str, list[float]] = defaultdict(list)
    wall: dict[str, list[float]] = defaultdict(list)
    for i in range(rounds):
        for j, (_, text) in enumerate(rows):
            order = pipelines if (i + j) % 2 == 0 else pipelines[::-1]
            for p in order:
                t, w = one(text, p)
                took[p].append(t)
                wall[p].append(w)
    out: dict[str, Any] = {
        p: {"took": summary(took[p]), "wall": summary(wall[p])} for p in pipelines
    }
    a, b = pipelines
    out["added_ms"] = {
        "took_p50": round(out[a]["took"]["p50"] - out[b]["took"]["p50"], 2),
        "wall_p50": round(out[a]["wall"]["p50"] - out[b]["wall"]["p50"], 2),
        "wall_p99": round(out[a]["wall"]["p99"] - out[b]["wall"]["p99"], 2),
    }
    return out


def render(result: dict[str, Any]) -> str:
    lines = [
        "# Query understanding: speed",
        "",
        f"{result['when']} · {result['host']} · sidecar {result['sidecar']} · OpenSearch "
        f"{result['opensearch']} · {result['rounds']} rounds (endpoint) and "
        f"{result['search_rounds']} (searches) over {result['queries']} dev "
        "queries, one at a time, warm. Load average at the start "
        f"{result['loadavg']} (shared machine: absolute numbers are pessimistic).",
        "",
        "## `/v1/understand` over HTTP (target p50 <= 5 ms)",
        "",
        "| language | queries | translated | p50 ms | p99 ms | mean ms | examples |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for lang, s in result["endpoint"].items():
        ex = "; ".join(f"{a} → {b}" for a, b in s["examples"])
        lines.append(
            f"| {lang} | {s['queries']} | {s['translated']} | {s['p50']} | {s['p99']} | "
            f"{s['mean']} | {ex} |"
        )
    if result.get("in_process"):
        lines += [
            "",
            "In process (the understand service called directly, no HTTP): the translation's "
            "own cost.",
            "",
            "| language | p50 ms | p99 ms | mean ms |",
            "|---|---:|---:|---:|",
        ]
        for lang, s in result["in_process"].items():
            lines.append(f"| {lang} | {s['p50']} | {s['p99']} | {s['mean']} |")
    s = result["search"]
    a, b = result["pipelines"]
    lines += [
        "",
        f"## Hybrid search through `{a}` (translating) vs `{b}` (target <= 15 ms added)",
        "",
        "| pipeline | took p50 | took p99 | wall p50 | wall p99 |",
        "|---|---:|---:|---:|---:|",
    ]
    for p in (a, b):
        lines.append(
            f"| {p} | {s[p]['took']['p50']} | {s[p]['took']['p99']} | {s[p]['wall']['p50']} | "
            f"{s[p]['wall']['p99']} |"
        )
    d = s["added_ms"]
    lines += [
        "",
        f"Added by the request processor: took p50 {d['took_p50']} ms, wall p50 "
        f"{d['wall_p50']} ms, wall p99 {d['wall_p99']} ms.",
        "",
        ICECAT,
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sidecar", default="http://127.0.0.1:8080")
    ap.add_argument("--opensearch", default=os.environ.get("OPENSEARCH_URL", ""))
    ap.add_argument("--api-key", default=os.environ.get("SIDECAR_API_KEY", ""))
    ap.add_argument("--rounds", type=int, default=3, help="measured passes of the endpoint")
    ap.add_argument("--search-rounds", type=int, default=1, help="measured passes of the searches")
    ap.add_argument("--translated", default="hybrid", help="the translating pipeline")
    ap.add_argument("--untranslated", default="hybrid-untranslated")
    ap.add_argument("--chorus", type=Path, default=CHORUS)
    ap.add_argument(
        "--vocabulary",
        default="",
        help="also time the understand service in this process, with this vocabulary (.npz)",
    )
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args(argv)
    rows = dev_queries(args.chorus)
    session = requests.Session()
    if args.api_key:
        session.headers["Authorization"] = f"Bearer {args.api_key}"
    result: dict[str, Any] = {
        "when": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "host": f"{platform.node()} ({os.cpu_count()} CPUs)",
        "loadavg": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        "sidecar": args.sidecar,
        "opensearch": args.opensearch or "(none)",
        "rounds": args.rounds,
        "search_rounds": args.search_rounds,
        "queries": len(rows),
        "pipelines": [args.translated, args.untranslated],
        "attribution": ICECAT,
    }
    result["endpoint"] = endpoint(session, args.sidecar.rstrip("/"), rows, args.rounds)
    if args.vocabulary:
        result["in_process"] = in_process(rows, args.rounds, args.vocabulary)
    if args.opensearch:
        state = read_state(
            requests.get(f"{args.opensearch}/_index_template/products", timeout=30).json()
        )
        embed = model_id(state)
        if not embed:
            raise SystemExit("no query-embedding model recorded: run sidecar-setup first")
        result["search"] = searches(
            args.opensearch, embed, rows, (args.translated, args.untranslated), args.search_rounds
        )
    text = render(result) if "search" in result else json.dumps(result["endpoint"], indent=2)
    print(text)
    if not args.no_write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        stamp = result["when"].replace("-", "").replace(":", "")
        (RESULTS / f"query_understanding-{stamp}.json").write_text(
            json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        (RESULTS / "query_understanding-latest.md").write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
