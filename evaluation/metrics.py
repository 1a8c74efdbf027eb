"""Per-query scores with ir-measures (trec_eval underneath), and the statistics around them.

* Gains are the judgments' grades (linear gain, log2 discount, ideal DCG from all judged
  grades of the query, as trec_eval's ``ndcg_cut``); relevant means gain >= 1.
* A result list is scored in the order it came back: it is handed to trec_eval with
  strictly decreasing scores, so trec_eval's tie-breaking never reorders it.
* Unjudged results count as irrelevant in the standard metrics. The condensed variants
  (Sakai 2007) remove them before scoring, and ``judged@10`` (the judged share of the top
  10 returned) says how much either reading can be trusted.
* Means are over the *scored* queries: those with at least one relevant judgment (a query
  with none has nDCG 0 whatever the system does). A query that returned nothing scores 0
  (its judged@10 is undefined: NaN, left out of that mean).
* Confidence intervals: percentile bootstrap over queries. Paired tests: two-sided
  randomization (sign-flip) test on per-query differences (Smucker et al., CIKM 2007),
  Holm-adjusted across the comparisons of one table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import ir_measures
import numpy as np

from evaluation.data import Qrels

#: Display name -> ir-measures measure. ``rel=1``: grade >= 1 is relevant.
MEASURES = {
    "nDCG@10": ir_measures.nDCG @ 10,
    "R@100": ir_measures.R(rel=1) @ 100,
    "MRR@10": ir_measures.RR(rel=1) @ 10,
    "P@10": ir_measures.P(rel=1) @ 10,
    "judged@10": ir_measures.Judged @ 10,
}
CONDENSED = ("nDCG@10", "R@100", "MRR@10", "P@10")
PRIMARY = "nDCG@10"

#: result-list key -> product ids in rank order
Run = Mapping[str, Sequence[str]]


def _as_scored(run: Run) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for key, docs in run.items():
        ranked: dict[str, float] = {}
        for doc in docs:
            ranked.setdefault(doc, 0.0)  # a duplicate keeps its first (best) rank
        n = len(ranked)
        out[key] = {doc: float(n - i) for i, doc in enumerate(ranked)}
    return out


def condense(run: Run, qrels: Qrels) -> dict[str, list[str]]:
    """The run with every unjudged result removed (the ranks of the rest move up)."""
    return {key: [d for d in docs if d in qrels.get(key, {})] for key, docs in run.items()}


def per_query(run: Run, qrels: Qrels, keys: Sequence[str]) -> dict[str, dict[str, float]]:
    """``{measure name: {key: value}}`` for every key of ``keys`` (0 where nothing came back).

    ``qrels`` and ``run`` are keyed alike (one entry per result list)."""
    values: dict[str, dict[str, float]] = {name: dict.fromkeys(keys, 0.0) for name in MEASURES}
    names = {m: name for name, m in MEASURES.items()}
    wanted = set(keys)
    scored = {k: v for k, v in _as_scored(run).items() if k in wanted and v}
    judged = {k: qrels[k] for k in wanted if k in qrels and qrels[k]}
    if scored and judged:
        for metric in ir_measures.iter_calc(list(MEASURES.values()), judged, scored):
            values[names[metric.measure]][metric.query_id] = float(metric.value)
    for key in keys:
        if key not in scored:  # nothing came back: no share of it can be judged
            values["judged@10"][key] = float("nan")
    return values


def condensed_per_query(run: Run, qrels: Qrels, keys: Sequence[str]) -> dict[str, dict[str, float]]:
    """The condensed-list variants (``nDCG@10'`` ...) of :func:`per_query`."""
    full = per_query(condense(run, qrels), qrels, keys)
    return {name + "'": full[name] for name in CONDENSED}


def scored_keys(qrels: Qrels, keys: Sequence[str]) -> list[str]:
    """The keys whose query has at least one relevant judgment."""
    return [k for k in keys if any(g >= 1 for g in qrels.get(k, {}).values())]


def bootstrap_ci(
    values: Sequence[float], resamples: int = 10_000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (resampling queries)."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    for start in range(0, resamples, 1000):  # bounded memory for large query sets
        idx = rng.integers(0, x.size, size=(min(1000, resamples - start), x.size))
        means[start : start + idx.shape[0]] = x[idx].mean(axis=1)
    alpha = (1.0 - level) / 2
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def randomization_test(
    a: Sequence[float], b: Sequence[float], resamples: int = 10_000, seed: int = 0
) -> float:
    """Two-sided p-value that the paired per-query values ``a`` and ``b`` have the same
    mean: each query's difference flips sign at random. Symmetric in ``a`` and ``b``."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if d.size == 0:
        return float("nan")
    observed = abs(d.mean())
    if not np.any(d):
        return 1.0
    rng = np.random.default_rng(seed)
    extreme = 0
    for start in range(0, resamples, 1000):
        n = min(1000, resamples - start)
        signs = rng.choice(np.array([-1.0, 1.0]), size=(n, d.size))
        extreme += int(np.sum(np.abs((signs * d).mean(axis=1)) >= observed - 1e-12))
    return (extreme + 1) / (resamples + 1)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (same order as given)."""
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    out = [0.0] * len(pvalues)
    running = 0.0
    m = len(pvalues)
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


@dataclass
class Summary:
    mean: float
    lo: float
    hi: float
    n: int

    def as_dict(self) -> dict[str, float | int]:
        return {"mean": self.mean, "ci_low": self.lo, "ci_high": self.hi, "n": self.n}


def summarize(
    values: Mapping[str, float], keys: Sequence[str], resamples: int, seed: int
) -> Summary:
    x = [values[k] for k in keys if values[k] == values[k]]  # NaN: undefined for that query
    if not x:
        return Summary(float("nan"), float("nan"), float("nan"), 0)
    lo, hi = bootstrap_ci(x, resamples, seed)
    return Summary(float(np.mean(x)), lo, hi, len(x))


@dataclass
class Comparison:
    a: str
    b: str
    metric: str
    delta: float
    lo: float
    hi: float
    p: float
    n: int
    p_holm: float = float("nan")

    def as_dict(self) -> dict[str, float | int | str]:
        return {
            "a": self.a,
            "b": self.b,
            "metric": self.metric,
            "delta": self.delta,
            "ci_low": self.lo,
            "ci_high": self.hi,
            "p": self.p,
            "p_holm": self.p_holm,
            "n": self.n,
        }


def compare(
    a_name: str,
    a: Mapping[str, float],
    b_name: str,
    b: Mapping[str, float],
    keys: Sequence[str],
    metric: str,
    resamples: int,
    seed: int,
) -> Comparison:
    """Mean paired difference ``a - b`` over ``keys``, its bootstrap interval and p-value."""
    d = [a[k] - b[k] for k in keys]
    lo, hi = bootstrap_ci(d, resamples, seed)
    p = randomization_test([a[k] for k in keys], [b[k] for k in keys], resamples, seed)
    mean = float(np.mean(d)) if d else float("nan")
    return Comparison(a_name, b_name, metric, mean, lo, hi, p, len(d))
