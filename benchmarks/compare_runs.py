"""Did a change help? Two ``eval-search run`` reports of the same queries, compared paired.

``eval-search run`` compares configurations within one run; a change to the sidecar (a model,
a rule) needs the same configuration compared across two runs, before and after, on the same
queries and judgments. Per query: the difference of nDCG@10 (and of its condensed form, which
skips unjudged hits); overall and per language: its mean, a bootstrap 95% interval, the
two-sided randomization test's p (``evaluation.metrics``), how many queries went up and down;
and the queries that moved most.

Prints a table and writes benchmarks/results/compare-LABEL-latest.md and a timestamped JSON.
Usage::

    python benchmarks/compare_runs.py BEFORE/results.json AFTER/results.json \\
        [--configuration hybrid-rerank] [--label NAME]
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evaluation.metrics import compare as compare_paired  # noqa: E402

METRICS = ("nDCG@10", "nDCG@10'")
#: eval-search's defaults (``--resamples``, ``--seed``)
RESAMPLES, SEED = 10_000, 0


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if "per_query" not in data or "queries" not in data:
        raise SystemExit(f"{path}: not an eval-search results.json (no per_query/queries)")
    return data


def paired(
    before: dict[str, Any], after: dict[str, Any], configuration: str
) -> tuple[list[str], dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """The query keys both runs scored for ``configuration``, and each run's per-query values."""
    for name, data in (("before", before), ("after", after)):
        if configuration not in data["per_query"]:
            known = ", ".join(sorted(data["per_query"]))
            raise SystemExit(f"{name}: no configuration {configuration!r} (it has {known})")
    a, b = before["per_query"][configuration], after["per_query"][configuration]
    keys = [k for k in a if k in b]
    if not keys:
        raise SystemExit("the two runs share no scored query: compare runs of the same queries")
    return keys, a, b


def summary(
    a: dict[str, dict[str, float]], b: dict[str, dict[str, float]], keys: list[str], metric: str
) -> dict[str, Any]:
    """After − before over ``keys``: eval-search's own paired comparison (``metrics.compare``:
    the mean, a bootstrap interval, the randomization test's p), and who went up or down."""
    before = {k: a[k][metric] for k in keys}
    after = {k: b[k][metric] for k in keys}
    c = compare_paired("after", after, "before", before, keys, metric, RESAMPLES, SEED)
    diffs = [after[k] - before[k] for k in keys]
    return {
        "queries": c.n,
        "before": sum(before.values()) / len(keys),
        "after": sum(after.values()) / len(keys),
        "difference": c.delta,
        "ci95": [c.lo, c.hi],
        "p": c.p,
        "up": sum(d > 1e-9 for d in diffs),
        "down": sum(d < -1e-9 for d in diffs),
    }


def compare(
    before: dict[str, Any], after: dict[str, Any], configuration: str, moves: int = 8
) -> dict[str, Any]:
    keys, a, b = paired(before, after, configuration)
    language = {q["key"]: q["language"] for q in after["queries"]}
    text = {q["key"]: q["text"] for q in after["queries"]}
    out: dict[str, Any] = {"configuration": configuration, "metrics": {}}
    for metric in METRICS:
        usable = [k for k in keys if metric in a[k] and metric in b[k]]
        groups: dict[str, list[str]] = {"all": usable}
        for k in usable:
            groups.setdefault(language.get(k, "?"), []).append(k)
        out["metrics"][metric] = {group: summary(a, b, ks, metric) for group, ks in groups.items()}
    first = METRICS[0]
    moved = sorted(keys, key=lambda k: -abs(b[k][first] - a[k][first]))[:moves]
    out["moved"] = [
        {"query": k, "text": text.get(k, ""), "before": a[k][first], "after": b[k][first]}
        for k in moved
        if abs(b[k][first] - a[k][first]) > 1e-9
    ]
    out["missing"] = sorted(set(a) ^ set(b))
    return out


def render(result: dict[str, Any], before: Path, after: Path, stamp: str) -> str:
    lines = [
        f"# {result['configuration']}: before and after, paired by query",
        "",
        f"Run {stamp} (`python benchmarks/compare_runs.py`). Before: `{before}`; after: "
        f"`{after}`. Difference = after − before; 95% bootstrap interval over queries; p: "
        "two-sided randomization test. nDCG@10' is the condensed form (unjudged hits skipped).",
        "",
    ]
    for metric, groups in result["metrics"].items():
        lines += [
            f"## {metric}",
            "",
            "| queries | n | before | after | difference [95% CI] | p | up | down |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for group, s in groups.items():
            lo, hi = s["ci95"]
            lines.append(
                f"| {group} | {s['queries']} | {s['before']:.3f} | {s['after']:.3f} | "
                f"{s['difference']:+.3f} [{lo:+.3f}, {hi:+.3f}] | {s['p']:.3g} | {s['up']} | "
                f"{s['down']} |"
            )
        lines.append("")
    if result["moved"]:
        lines += ["## The queries that moved most (nDCG@10)", ""]
        lines += [
            f"- {m['query']} {m['text']!r}: {m['before']:.3f} → {m['after']:.3f}"
            for m in result["moved"]
        ]
        lines.append("")
    if result["missing"]:
        lines += [f"Scored in one run only (left out): {', '.join(result['missing'])}", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("before", type=Path, help="results.json of the run before the change")
    ap.add_argument("after", type=Path, help="results.json of the run after it")
    ap.add_argument("--configuration", default="hybrid-rerank")
    ap.add_argument("--label", default="runs", help="the results files' name (compare-LABEL-…)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args(argv)
    result = compare(load(args.before), load(args.after), args.configuration)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    text = render(result, args.before, args.after, stamp)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"compare-{args.label}-latest.md").write_text(text, encoding="utf-8")
    (args.out / f"compare-{args.label}-{stamp}.json").write_text(
        json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
