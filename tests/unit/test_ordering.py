from hypothesis import given
from hypothesis import strategies as st

from sidecar.scoring.fallback import order_keeping_scores
from sidecar.services.rerank import ranked as _ranked


@given(st.integers(1, 2000))
def test_fallback_scores_keep_the_incoming_order(n: int) -> None:
    scores = order_keeping_scores(n)
    assert len(scores) == n and scores[0] == 1.0
    assert all(0.0 < s <= 1.0 for s in scores)
    assert all(a > b for a, b in zip(scores, scores[1:], strict=False))
    assert _ranked(scores) == list(range(n))


@given(st.lists(st.floats(0, 1, allow_nan=False), max_size=200))
def test_ranking_is_a_stable_descending_permutation(scores) -> None:
    order = _ranked(scores)
    assert sorted(order) == list(range(len(scores)))
    for a, b in zip(order, order[1:], strict=False):
        assert scores[a] > scores[b] or (scores[a] == scores[b] and a < b)
