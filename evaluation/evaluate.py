"""From result lists and judgments to the numbers of a report (no cluster needed).

``score_runs`` computes, for every configuration, the per-query metrics (standard and
condensed), their means with bootstrap intervals overall and per language, each
language's nDCG@10 as a ratio of English's, paired comparisons between configurations, and
warnings where judged@10 is low. The result is a plain dict: what the report renders and
what ``results.json`` keeps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from evaluation import metrics as m
from evaluation.data import Qrels, Query

ALL = "all"
#: metrics compared pairwise in every group (overall and per language); the others overall
PAIRED_EVERYWHERE = ("nDCG@10", "nDCG@10'")
PAIRED_OVERALL = ("R@100", "MRR@10", "P@10")


def languages_of(queries: Sequence[Query]) -> list[str]:
    """Languages in order of first appearance, English first when present."""
    langs = list(dict.fromkeys(q.language for q in queries))
    return (["en"] if "en" in langs else []) + [lang for lang in langs if lang != "en"]


def score_runs(
    runs: Mapping[str, Mapping[str, Sequence[str]]],
    queries: Sequence[Query],
    qrels: Qrels,
    comparisons: Sequence[tuple[str, str]] = (),
    resamples: int = 10_000,
    seed: int = 0,
    judged_warning: float = 0.8,
) -> dict[str, Any]:
    """Everything the report shows, from ``{configuration: {query key: ids}}``."""
    keys = [q.key for q in queries]
    by_key = {q.key: q for q in queries}
    key_qrels = {q.key: qrels.get(q.id, {}) for q in queries}
    scored = m.scored_keys(key_qrels, keys)
    langs = languages_of(queries)
    groups = {ALL: scored} | {
        lang: [k for k in scored if by_key[k].language == lang] for lang in langs
    }

    per_query: dict[str, dict[str, dict[str, float]]] = {}
    summary: dict[str, dict[str, dict[str, dict[str, float | int]]]] = {}
    for name, run in runs.items():
        values = m.per_query(run, key_qrels, keys) | m.condensed_per_query(run, key_qrels, keys)
        per_query[name] = values
        summary[name] = {
            group: {
                metric: m.summarize(vals, gkeys, resamples, seed).as_dict()
                for metric, vals in values.items()
            }
            for group, gkeys in groups.items()
        }

    ratios: dict[str, dict[str, float | None]] = {}
    if "en" in langs:
        for name in runs:
            en = float(summary[name]["en"][m.PRIMARY]["mean"])
            ratios[name] = {
                lang: (float(summary[name][lang][m.PRIMARY]["mean"]) / en if en > 0 else None)
                for lang in langs
            }

    compared: list[dict[str, Any]] = []
    for group, gkeys in groups.items():
        for metric in PAIRED_EVERYWHERE + (PAIRED_OVERALL if group == ALL else ()):
            family = [
                m.compare(
                    a, per_query[a][metric], b, per_query[b][metric], gkeys, metric, resamples, seed
                )
                for a, b in comparisons
                if a in per_query and b in per_query
            ]
            for c, adjusted in zip(family, m.holm([c.p for c in family]), strict=True):
                c.p_holm = adjusted
                compared.append({"group": group, **c.as_dict()})

    warnings = []
    for name in runs:
        low = []
        for group in groups:
            judged = summary[name][group]["judged@10"]["mean"]
            if isinstance(judged, float) and judged == judged and judged < judged_warning:
                low.append(f"{group} {judged:.2f}")
        if low:
            warnings.append(
                f"{name}: judged@10 below {judged_warning:.2f} ({', '.join(low)}): unjudged "
                "results count as irrelevant, so its metrics are pessimistic; compare the "
                "condensed (') columns, or pool and rate its unjudged results"
            )
    unjudged_queries = sorted({q.id for q in queries if not qrels.get(q.id)})
    no_relevant = sorted(
        {q.id for q in queries if qrels.get(q.id)} - {by_key[k].id for k in scored}
    )
    return {
        "languages": langs,
        "groups": {g: len(k) for g, k in groups.items()},
        "summary": summary,
        "ratios_to_en": ratios,
        "comparisons": compared,
        "warnings": warnings,
        "per_query": {
            name: {k: {metric: vals[k] for metric, vals in values.items()} for k in keys}
            for name, values in per_query.items()
        },
        "queries": [
            {
                "key": q.key,
                "id": q.id,
                "language": q.language,
                "text": q.text,
                "scored": q.key in set(scored),
            }
            for q in queries
        ],
        "unscored": {"no_judgments": unjudged_queries, "no_relevant": no_relevant},
    }


def percentiles(values: Sequence[float]) -> dict[str, float]:
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return {}
    p50, p95, p99 = np.percentile(x, [50, 95, 99])
    return {
        "p50": float(p50),
        "p95": float(p95),
        "p99": float(p99),
        "mean": float(x.mean()),
        "n": int(x.size),
    }
