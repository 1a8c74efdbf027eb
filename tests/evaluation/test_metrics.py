"""The metric plumbing on a tiny hand-made judged set whose answers are worked out by hand."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evaluation import metrics as m
from evaluation.data import Query
from evaluation.evaluate import score_runs

# q1: three relevant products (a=3, b=2, d=1) and one judged irrelevant (c=0)
# q2: one relevant (x=1), one irrelevant (y=0)
# q3: judged, but nothing relevant: never scored
QRELS = {
    "q1": {"a": 3, "b": 2, "c": 0, "d": 1},
    "q2": {"x": 1, "y": 0},
    "q3": {"z": 0},
}
RUN = {
    "q1": ["c", "a", "e", "b"],  # e is unjudged
    "q2": ["y", "w", "x"],  # w is unjudged
    "q3": ["z"],
}
KEYS = ["q1", "q2", "q3"]


def dcg(gains: list[int]) -> float:
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains))


def test_standard_metrics_match_the_hand_computation() -> None:
    v = m.per_query(RUN, QRELS, KEYS)
    ideal_q1 = dcg([3, 2, 1, 0])
    assert v["nDCG@10"]["q1"] == pytest.approx(dcg([0, 3, 0, 2]) / ideal_q1)
    assert v["nDCG@10"]["q2"] == pytest.approx(dcg([0, 0, 1]) / dcg([1]))
    assert v["nDCG@10"]["q2"] == pytest.approx(0.5)
    assert v["P@10"]["q1"] == pytest.approx(2 / 10)  # P@10 divides by 10, whatever came back
    assert v["P@10"]["q2"] == pytest.approx(1 / 10)
    assert v["R@100"]["q1"] == pytest.approx(2 / 3)  # d was never retrieved
    assert v["R@100"]["q2"] == pytest.approx(1.0)
    assert v["MRR@10"]["q1"] == pytest.approx(1 / 2)
    assert v["MRR@10"]["q2"] == pytest.approx(1 / 3)
    # judged@10: the judged share of what came back (3 of 4, 2 of 3)
    assert v["judged@10"]["q1"] == pytest.approx(3 / 4)
    assert v["judged@10"]["q2"] == pytest.approx(2 / 3)


def test_condensed_lists_drop_unjudged_results_before_scoring() -> None:
    assert m.condense(RUN, QRELS) == {"q1": ["c", "a", "b"], "q2": ["y", "x"], "q3": ["z"]}
    v = m.condensed_per_query(RUN, QRELS, KEYS)
    assert v["nDCG@10'"]["q1"] == pytest.approx(dcg([0, 3, 2]) / dcg([3, 2, 1]))
    assert v["nDCG@10'"]["q2"] == pytest.approx(dcg([0, 1]) / dcg([1]))
    assert v["MRR@10'"]["q2"] == pytest.approx(1 / 2)
    assert v["P@10'"]["q1"] == pytest.approx(2 / 10)


def test_the_order_given_is_the_order_scored_and_empty_lists_score_zero() -> None:
    # trec_eval sorts by score and breaks ties by id: the plumbing must not let it reorder
    v = m.per_query({"q2": ["x", "y"]}, QRELS, ["q2"])
    assert v["MRR@10"]["q2"] == 1.0
    v = m.per_query({"q2": ["y", "x"]}, QRELS, ["q2"])
    assert v["MRR@10"]["q2"] == 0.5
    v = m.per_query({"q1": []}, QRELS, ["q1", "q2"])
    for name in ("nDCG@10", "R@100", "MRR@10", "P@10"):
        assert v[name]["q1"] == 0.0 and v[name]["q2"] == 0.0
    # nothing came back: the judged share is undefined, and left out of its mean
    assert math.isnan(v["judged@10"]["q1"])
    assert m.summarize(v["judged@10"], ["q1"], 100, 0).n == 0


def test_only_queries_with_a_relevant_judgment_are_scored() -> None:
    assert m.scored_keys(QRELS, KEYS + ["q4"]) == ["q1", "q2"]


def test_bootstrap_interval_contains_the_mean_and_is_deterministic_with_a_seed() -> None:
    values = [0.1, 0.9, 0.4, 0.55, 0.3, 0.8, 0.0, 1.0]
    lo, hi = m.bootstrap_ci(values, resamples=2000, seed=7)
    assert lo < sum(values) / len(values) < hi
    assert (lo, hi) == m.bootstrap_ci(values, resamples=2000, seed=7)
    assert (lo, hi) != m.bootstrap_ci(values, resamples=2000, seed=8)
    assert m.bootstrap_ci([0.5] * 5, resamples=100) == (0.5, 0.5)
    narrow = m.bootstrap_ci(values * 10, resamples=2000, seed=7)
    assert narrow[1] - narrow[0] < hi - lo  # more queries, tighter interval


@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=30))
def test_paired_test_is_symmetric_and_a_valid_p_value(pairs) -> None:
    a = [x for x, _ in pairs]
    b = [y for _, y in pairs]
    p = m.randomization_test(a, b, resamples=300, seed=1)
    assert p == m.randomization_test(b, a, resamples=300, seed=1)
    assert 0.0 < p <= 1.0


def test_paired_test_separates_a_consistent_difference_from_none() -> None:
    a = [0.6 + 0.01 * i for i in range(30)]
    assert m.randomization_test(a, a) == 1.0
    assert m.randomization_test(a, [x - 0.2 for x in a], resamples=2000) < 0.001


def test_holm_adjustment() -> None:
    assert m.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert m.holm([0.5]) == [0.5]


def _queries() -> list[Query]:
    return [
        Query("q1", "laptop", "en"),
        Query("q2", "mouse", "en"),
        Query("q3", "desk", "en"),
        Query("q1", "笔记本电脑", "zh"),
        Query("q2", "鼠标", "zh"),
    ]


def test_score_runs_per_language_ratio_comparisons_and_warnings() -> None:
    queries = _queries()
    good = {
        "q1@en": ["a", "b", "d"],
        "q2@en": ["x"],
        "q3@en": ["z"],
        "q1@zh": ["a", "e", "f"],
        "q2@zh": ["w", "x"],
    }
    poor = {k: list(reversed(v)) for k, v in good.items()}
    res = score_runs(
        {"good": good, "poor": poor},
        queries,
        QRELS,
        [("good", "poor")],
        resamples=500,
        seed=3,
        judged_warning=0.9,
    )
    assert res["languages"] == ["en", "zh"]
    assert res["groups"] == {"all": 4, "en": 2, "zh": 2}  # q3 has nothing relevant
    s = res["summary"]["good"]
    assert s["en"]["nDCG@10"]["mean"] == pytest.approx(1.0)
    zh_q1 = dcg([3]) / dcg([3, 2, 1])
    zh_q2 = dcg([0, 1])
    assert s["zh"]["nDCG@10"]["mean"] == pytest.approx((zh_q1 + zh_q2) / 2)
    assert s["all"]["nDCG@10"]["mean"] == pytest.approx((2 + zh_q1 + zh_q2) / 4)
    assert res["ratios_to_en"]["good"]["zh"] == pytest.approx((zh_q1 + zh_q2) / 2)
    assert res["ratios_to_en"]["good"]["en"] == 1.0
    lo, hi = s["all"]["nDCG@10"]["ci_low"], s["all"]["nDCG@10"]["ci_high"]
    assert lo <= s["all"]["nDCG@10"]["mean"] <= hi
    # judged@10 of zh: (1/3 + 1/2) / 2 -> below 0.9: a warning names it
    assert s["zh"]["judged@10"]["mean"] == pytest.approx((1 / 3 + 1 / 2) / 2)
    assert any(
        w.startswith("good: judged@10 below 0.90 (all 0.71, zh 0.42)") for w in res["warnings"]
    )
    first = next(c for c in res["comparisons"] if c["group"] == "all" and c["metric"] == "nDCG@10")
    poor_all = res["summary"]["poor"]["all"]["nDCG@10"]["mean"]
    assert first["delta"] == pytest.approx(s["all"]["nDCG@10"]["mean"] - poor_all)
    assert res["unscored"] == {"no_judgments": [], "no_relevant": ["q3"]}
    assert res["per_query"]["good"]["q3@en"]["nDCG@10"] == 0.0
