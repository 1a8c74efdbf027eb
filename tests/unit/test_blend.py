"""The recall blend: model scores mixed with the incoming (recall) order."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidecar.scoring.blend import blend_with_recall

scores = st.lists(st.floats(0.0, 1.0), max_size=60)
weights = st.floats(0.0, 1.0)


@given(scores, weights)
def test_scores_stay_in_unit_interval_one_per_document(s, w) -> None:
    out = blend_with_recall(s, w)
    assert len(out) == len(s)
    assert all(0.0 <= x <= 1.0 and isinstance(x, float) for x in out)


@given(scores)
def test_weight_zero_is_the_model_and_weight_one_the_recall_order(s) -> None:
    assert blend_with_recall(s, 0.0) == s
    kept = blend_with_recall(s, 1.0)
    assert kept == sorted(kept, reverse=True) and len(set(kept)) == len(kept)


@given(st.lists(st.floats(0.0, 1.0), min_size=2, max_size=60, unique=True), weights)
def test_order_preserving_within_the_model_when_it_agrees_with_recall(s, w) -> None:
    ordered = sorted(s, reverse=True)  # the model agrees with the recall order
    out = blend_with_recall(ordered, w)
    assert out == sorted(out, reverse=True)


def test_known_values() -> None:
    # model: the last document is best; recall: the first; n = 4, prior = 1, .75, .5, .25
    out = blend_with_recall([0.2, 0.4, 0.6, 1.0], 0.5)
    assert out == pytest.approx(
        [0.5 * 0.0 + 0.5, 0.5 * 0.25 + 0.375, 0.5 * 0.5 + 0.25, 0.5 * 1.0 + 0.125]
    )
    # equal model scores: only the recall order is left to decide
    assert blend_with_recall([0.7, 0.7, 0.7], 0.3) == pytest.approx(
        [1.0, 0.7 + 0.3 * 2 / 3, 0.7 + 0.1]
    )


def test_weight_outside_unit_interval_is_refused() -> None:
    with pytest.raises(ValueError):
        blend_with_recall([0.1], 1.5)
