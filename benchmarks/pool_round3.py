"""Pool the unjudged top-10 (query, product) pairs of the translated BM25 / hybrid runs (round 3).

Reads the result lists that ``benchmarks/tune_bm25.py`` cached (``runs.json``: run name ->
query key ``<query_id>@<lang>`` -> ``[[product_id, score], ...]``) and the three shared
judgment files, and writes the (query_id, product_id) pairs that are in the top ``--depth`` of
any pooled run and have no rating in any judgment file.

Pooled runs (the configuration recommended by tune_bm25.py on 2026-11-30, all 68 dev queries x
en/zh/es/ja/fr/de):

* ``bm25|today cross_fields|tr`` -- the BM25 leg alone: ``multi_match`` ``cross_fields`` over
  today's fields on the English translation (English queries as typed);
* ``hybrid|today cross_fields|tr|tr,tr,tr,tr,tr|min_max|arithmetic_mean|0.5`` -- that leg +
  k-NN on the translation, fused with today's pipeline (min_max, arithmetic_mean, 0.5/0.5);
* ``hybrid|today cross_fields|tr|tr,tr,tr,tr,tr|l2|arithmetic_mean|0.5`` -- the same legs,
  l2 normalization, arithmetic_mean, 0.5/0.5.

Runs missing from the cache are skipped (and reported). Output: JSONL ``{"query_id",
"product_id", "best_rank", "runs"}`` (no query or product text), sorted by query id and best
rank; a summary on stderr.

    python benchmarks/pool_round3.py --cache /tmp/tune_bm25-cache \\
        --chorus ../shared/data/chorus_icecat --out /tmp/pool_round3.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

_LEGS = "today cross_fields|tr|tr,tr,tr,tr,tr"
RUNS = {
    "bm25_xf_tr": "bm25|today cross_fields|tr",
    "hybrid_xf_tr_minmax": f"hybrid|{_LEGS}|min_max|arithmetic_mean|0.5",
    "hybrid_xf_tr_l2": f"hybrid|{_LEGS}|l2|arithmetic_mean|0.5",
}
LANGS = ["en", "zh", "es", "ja", "fr", "de"]
JUDGMENTS = ["judgments.jsonl", "judgments_extra.jsonl", "judgments_extra2.jsonl"]


def judged_pairs(paths: list[Path]) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for p in paths:
        with p.open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    row = json.loads(line)
                    out.add((str(row["query_id"]), str(row["product_id"])))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", type=Path, default=Path("/tmp/tune_bm25-cache"))
    ap.add_argument("--chorus", type=Path, required=True, help="shared/data/chorus_icecat")
    ap.add_argument(
        "--judgments", type=Path, action="append", help="override the three shared files"
    )
    ap.add_argument("--depth", type=int, default=10)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)

    runs_all = json.loads((args.cache / "runs.json").read_text())
    dev = [
        json.loads(x)["query_id"]
        for x in (args.chorus / "queries.jsonl").read_text().splitlines()
        if x.strip()
    ]
    judged = judged_pairs(args.judgments or [args.chorus / f for f in JUDGMENTS])

    pool: dict[tuple[str, str], dict] = {}
    per_run_lang: dict[str, Counter] = defaultdict(Counter)
    missing: list[str] = []
    for short, name in RUNS.items():
        if name not in runs_all:
            missing.append(name)
            continue
        run = runs_all[name]
        for qid in dev:
            for lg in LANGS:
                key = f"{qid}@{lg}"
                if key not in run:
                    missing.append(f"{name} / {key}")
                    continue
                for rank, (pid, _score) in enumerate(run[key][: args.depth], 1):
                    pair = (qid, str(pid))
                    if pair in judged:
                        continue
                    per_run_lang[short][lg] += 1
                    e = pool.setdefault(pair, {"best_rank": rank, "runs": set()})
                    e["best_rank"] = min(e["best_rank"], rank)
                    e["runs"].add(f"{short}@{lg}")

    rows = sorted(pool.items(), key=lambda kv: (kv[0][0], kv[1]["best_rank"], kv[0][1]))
    with args.out.open("w", encoding="utf-8") as f:
        for (qid, pid), e in rows:
            f.write(
                json.dumps(
                    {
                        "query_id": qid,
                        "product_id": pid,
                        "best_rank": e["best_rank"],
                        "runs": sorted(e["runs"]),
                    }
                )
                + "\n"
            )

    print(
        f"pooled {len(rows)} unjudged pairs over {len({q for q, _ in pool})} queries",
        file=sys.stderr,
    )
    print(f"unjudged top-{args.depth} slots per run and language:", file=sys.stderr)
    for short in RUNS:
        c = per_run_lang.get(short, Counter())
        print(
            f"  {short}: "
            + ", ".join(f"{lg} {c[lg]}" for lg in LANGS)
            + f"; total {sum(c.values())}",
            file=sys.stderr,
        )
    by_lang = Counter()
    for e in pool.values():
        for lg in {r.split("@")[1] for r in e["runs"]}:
            by_lang[lg] += 1
    print(
        "distinct pairs found by language: " + ", ".join(f"{lg} {by_lang[lg]}" for lg in LANGS),
        file=sys.stderr,
    )
    if missing:
        print(f"missing ({len(missing)}): " + "; ".join(missing[:10]), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
