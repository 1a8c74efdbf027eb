"""The report: ``report.md`` (tables), PNG plots (matplotlib, Agg) and ``results.json``."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evaluation.evaluate import ALL
from sidecar.languages import english_name

TABLE_METRICS = ("nDCG@10", "R@100", "MRR@10", "P@10", "judged@10", "nDCG@10'", "P@10'")


def _f(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.{digits}f}"


def _ci(s: dict[str, Any]) -> str:
    return f"{_f(s['mean'])} [{_f(s['ci_low'])}, {_f(s['ci_high'])}]"


def _p(p: float) -> str:
    if p != p:
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def markdown(res: dict[str, Any]) -> str:
    meta, configs = res["meta"], res["configurations"]
    labels = {c["name"]: c["label"] for c in configs}
    langs = res["languages"]
    lines = [f"# {meta.get('title', 'Search evaluation')}", ""]
    lines += [
        f"Run {meta['started']} in {meta['seconds']:.0f} s: `{meta['command']}`",
        "",
        f"- cluster: {meta['cluster']['url']} (OpenSearch {meta['cluster'].get('version', '?')}),"
        f" index `{meta['index']}` with {meta['cluster'].get('documents', '?')} documents",
        f"- sidecar: {meta.get('sidecar_url') or 'not given'}"
        + (
            f" (rerank {meta['sidecar_models'].get('rerank', {}).get('name', '?')}, "
            f"embed {meta['sidecar_models'].get('embed', {}).get('name', '?')})"
            if meta.get("sidecar_models")
            else ""
        ),
        f"- queries: {len(res['queries'])} lists from {', '.join(meta['query_files'])}; "
        f"scored: {res['groups'][ALL]} (with at least one relevant judgment)",
        f"- judgments: {meta['judgments']['pairs']} pairs from "
        + ", ".join(
            f"{Path(f['path']).name} ({f['judgments']})" for f in meta["judgments"]["files"]
        )
        + f"; grades {meta['judgments']['histogram']}",
        f"- intervals: 95% percentile bootstrap over queries ({meta['resamples']} resamples, "
        f"seed {meta['seed']}); p: paired randomization test, Holm-adjusted per table",
        "",
    ]
    if res["unscored"]["no_judgments"] or res["unscored"]["no_relevant"]:
        lines += [
            "Not scored (no relevant judgment): "
            + ", ".join(res["unscored"]["no_relevant"] + res["unscored"]["no_judgments"]),
            "",
        ]
    lines += ["## Configurations", ""]
    rows = []
    passes = res.get("passes", {})
    for c in configs:
        pipe = c["pipeline_info"]
        run = passes.get(c["name"], {})
        failed = (
            str(len(run.get("processor_failures", {})))
            if run.get("processors_checked") and c["pipeline"]
            else "–"
        )
        what = c["template"] or "custom body"
        depth = (
            f"rerank top {c['rerank_depth']}, then {c['fill_from']}" if c["rerank_depth"] else ""
        )
        rows.append(
            [
                f"**{c['label']}** (`{c['name']}`)",
                what,
                f"`{c['pipeline']}`" if c["pipeline"] else "–",
                str(pipe.get("weights") or "–"),
                "yes" if pipe.get("rerank") else "no",
                str(c["size"]),
                str(c["k"]) if c["template"] in ("knn", "hybrid") else "–",
                depth,
                failed,
            ]
        )
    lines += _table(
        [
            "configuration",
            "query",
            "pipeline",
            "weights BM25,k-NN",
            "rerank",
            "size",
            "k",
            "window",
            "failed processors",
        ],
        rows,
    )
    lines += [
        "",
        "Weights and rerank as read from the cluster's pipelines. Failed processors: searches "
        "in which a pipeline processor failed and OpenSearch ignored it (`ignore_failure`), "
        "seen through `verbose_pipeline` (– where the cluster lacks it or no pipeline runs).",
    ]
    lines += ["", "## Relevance, all languages", ""]
    summary = res["summary"]
    rows = [
        [labels[n]]
        + [
            _ci(summary[n][ALL][mt]) if mt == "nDCG@10" else _f(summary[n][ALL][mt]["mean"])
            for mt in TABLE_METRICS
        ]
        for n in summary
    ]
    lines += _table(["configuration", *TABLE_METRICS], rows)
    lines += [
        "",
        "`'`: condensed lists (unjudged results removed before scoring). judged@10: the judged "
        "share of the top 10 returned.",
        "",
    ]
    if res["warnings"]:
        lines += ["**Warnings**", ""] + [f"- {w}" for w in res["warnings"]] + [""]
    lines += ["## nDCG@10 per language (ratio to English)", ""]
    rows = []
    for lang in langs:
        row = [f"{english_name(lang, lang)} (`{lang}`, {res['groups'][lang]})"]
        for n in summary:
            s = summary[n][lang]["nDCG@10"]
            ratio = res["ratios_to_en"].get(n, {}).get(lang)
            row.append(f"{_ci(s)} ({_f(ratio, 2)})")
        rows.append(row)
    lines += _table(["language (queries)", *(labels[n] for n in summary)], rows)
    lines += ["", "## Per language: judged@10 and condensed nDCG@10'", ""]
    rows = [
        [lang]
        + [
            _f(summary[n][lang]["judged@10"]["mean"], 2)
            + " / "
            + _f(summary[n][lang]["nDCG@10'"]["mean"])
            for n in summary
        ]
        for lang in langs
    ]
    lines += _table(["language", *(f"{labels[n]}: judged@10 / nDCG@10'" for n in summary)], rows)
    lines += ["", "## Paired comparisons (all languages)", ""]
    rows = [
        [
            f"{labels[c['a']]} − {labels[c['b']]}",
            c["metric"],
            f"{c['delta']:+.3f}",
            f"[{c['ci_low']:+.3f}, {c['ci_high']:+.3f}]",
            _p(c["p"]),
            _p(c["p_holm"]),
            str(c["n"]),
        ]
        for c in res["comparisons"]
        if c["group"] == ALL
    ]
    lines += _table(["difference", "metric", "Δ mean", "95% CI", "p", "p (Holm)", "queries"], rows)
    prim = [c for c in res["comparisons"] if c["group"] != ALL and c["metric"] == "nDCG@10"]
    if prim:
        lines += ["", "nDCG@10 differences per language (Δ, Holm-adjusted p):", ""]
        pairs = list(dict.fromkeys((c["a"], c["b"]) for c in prim))
        rows = []
        for lang in langs:
            row = [lang]
            for a, b in pairs:
                c = next(x for x in prim if x["group"] == lang and x["a"] == a and x["b"] == b)
                row.append(f"{c['delta']:+.3f} ({_p(c['p_holm'])})")
            rows.append(row)
        lines += _table(["language", *(f"{labels[a]} − {labels[b]}" for a, b in pairs)], rows)
    lat = res.get("latency") or {}
    if lat:
        lines += ["", f"## Latency through OpenSearch (concurrency {lat['concurrency']})", ""]
        rows = []
        for name, x in lat["passes"].items():
            side = x.get("sidecar") or {}
            share = side.get("seconds_per_search")
            mean = x["client"].get("mean")
            rows.append(
                [
                    labels.get(name, name),
                    str(x["size"]),
                    str(x["client"].get("n", 0)),
                    _f(x["client"].get("p50", float("nan")) * 1000, 0),
                    _f(x["client"].get("p95", float("nan")) * 1000, 0),
                    _f(x["client"].get("p99", float("nan")) * 1000, 0),
                    _f(x["took"].get("p50"), 0),
                    _f(share * 1000, 0) if share is not None else "–",
                    f"{100 * share / mean:.0f}%" if share is not None and mean else "–",
                    _f(side.get("cache_hit_ratio"), 2) if side else "–",
                    str(side.get("fallbacks", "–")),
                    str(len(x["errors"])),
                    _f(x["searches_per_second"], 1),
                ]
            )
        lines += _table(
            [
                "configuration",
                "size",
                "searches",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "took p50 ms",
                "sidecar ms/search",
                "sidecar share",
                "cache hits",
                "fallbacks",
                "errors",
                "searches/s",
            ],
            rows,
        )
        lines += [
            "",
            "Client wall time of each search (opensearch-py), `took` as OpenSearch reports it, "
            "and the sidecar's time per search from its /metrics (query embedding for k-NN + "
            "rerank). Cache hits: share of rerank pairs answered from the sidecar's score cache "
            "(near 1 means the reranks were not recomputed: restart the sidecar for cold "
            "numbers); fallbacks: reranks answered with order-keeping scores (the sidecar "
            "missed its deadline).",
        ]
        for w in lat.get("warnings", []):
            lines += ["", f"**Warning**: {w}"]
    lines += ["", "## Plots", ""]
    for plot in res.get("plots", []):
        lines += [f"![{plot}]({plot})", ""]
    lines += ["Raw numbers, per-query values and result lists: `results.json`.", ""]
    if meta.get("attribution"):
        lines += [meta["attribution"], ""]
    return "\n".join(lines)


def plots(res: dict[str, Any], out: Path) -> list[str]:
    """PNG plots; returns their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {c["name"]: c["label"] for c in res["configurations"]}
    names = list(res["summary"])
    groups = [ALL, *res["languages"]]
    made = []
    width = 0.8 / max(1, len(names))

    def bars(ax: Any, xs: Sequence[str], metric_of: Any, title: str) -> None:
        for i, n in enumerate(names):
            vals = [metric_of(n, x) for x in xs]
            means = [v["mean"] for v in vals]
            err = [
                [max(0.0, v["mean"] - v["ci_low"]) for v in vals],
                [max(0.0, v["ci_high"] - v["mean"]) for v in vals],
            ]
            pos = [j + (i - (len(names) - 1) / 2) * width for j in range(len(xs))]
            ax.bar(pos, means, width, yerr=err, capsize=2, label=labels[n])
        ax.set_xticks(range(len(xs)), xs)
        ax.set_ylim(0, 1)
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)

    fig, ax = plt.subplots(figsize=(10, 4.5))
    bars(
        ax,
        groups,
        lambda n, g: res["summary"][n][g]["nDCG@10"],
        "nDCG@10 per language (95% bootstrap CI)",
    )
    fig.tight_layout()
    fig.savefig(out / "ndcg_by_language.png", dpi=110)
    plt.close(fig)
    made.append("ndcg_by_language.png")

    fig, ax = plt.subplots(figsize=(10, 4.5))
    bars(
        ax,
        list(TABLE_METRICS),
        lambda n, mt: res["summary"][n][ALL][mt],
        "All languages: metric per configuration (95% bootstrap CI)",
    )
    fig.tight_layout()
    fig.savefig(out / "metrics_overall.png", dpi=110)
    plt.close(fig)
    made.append("metrics_overall.png")

    fig, ax = plt.subplots(figsize=(10, 4.5))
    bars(
        ax,
        groups,
        lambda n, g: res["summary"][n][g]["judged@10"],
        "judged@10 per language: share of the top 10 with a judgment",
    )
    threshold = res["meta"].get("judged_warning")
    if threshold:
        ax.axhline(threshold, color="grey", linestyle="--", linewidth=1)
    fig.tight_layout()
    fig.savefig(out / "judged_by_language.png", dpi=110)
    plt.close(fig)
    made.append("judged_by_language.png")

    lat = res.get("latency") or {}
    passes = {n: x for n, x in lat.get("passes", {}).items() if x.get("seconds")}
    if passes:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        data = [[s * 1000 for s in x["seconds"]] for x in passes.values()]
        ax.boxplot(data, whis=(1, 99), showfliers=True)
        ax.set_xticks(range(1, len(passes) + 1), [labels.get(n, n) for n in passes])
        ax.set_yscale("log")
        ax.set_ylabel("ms per search (log)")
        ax.set_title(
            f"Search latency through OpenSearch, concurrency {lat['concurrency']} "
            "(whiskers: p1-p99)"
        )
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / "latency.png", dpi=110)
        plt.close(fig)
        made.append("latency.png")
    return made


def _finite(obj: Any) -> Any:
    """NaN (an undefined value) as JSON null: strict JSON readers reject NaN."""
    if isinstance(obj, float) and obj != obj:
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def write(res: dict[str, Any], out: Path) -> dict[str, Path]:
    """Write ``report.md``, the plots and ``results.json`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    res["plots"] = plots(res, out)
    paths = {"markdown": out / "report.md", "json": out / "results.json"}
    paths["markdown"].write_text(markdown(res), encoding="utf-8")
    paths["json"].write_text(
        json.dumps(_finite(res), ensure_ascii=False, separators=(",", ":"), allow_nan=False),
        encoding="utf-8",
    )
    return paths
