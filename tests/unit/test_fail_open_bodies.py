"""The fail-open hybrid body and the pipelines that turn its placeholder into the k-NN leg."""

from __future__ import annotations

import json

import pytest

from cluster_setup import queries
from cluster_setup.bodies import load_body
from cluster_setup.cli import ROLES


def test_hybrid_body_is_bm25_plus_a_placeholder_and_the_text_for_the_processor() -> None:
    text = 'a "mouse" ${parameters.top_n} {"a": 1}'
    body = queries.hybrid_body(text, size=7)
    legs = body["query"]["hybrid"]["queries"]
    assert legs == [queries.bm25(text), {"match_none": {}}]
    assert body["ext"]["ml_inference"] == {"query_texts": [text]}
    assert body["ext"]["rerank"] == {"query_context": {"query_text": text}}
    assert body["size"] == 7


def test_the_neural_form_stays_available() -> None:
    body = queries.neural_hybrid_body("mouse", "m1", size=5, k=50)
    assert body["query"]["hybrid"]["queries"][1] == queries.neural("mouse", "m1", 50)
    assert "ml_inference" not in body["ext"]
    # another k than the embed-leg connector's needs the neural form
    assert queries.hybrid_body("mouse", "m1", k=50) == queries.neural_hybrid_body(
        "mouse", "m1", k=50
    )
    with pytest.raises(ValueError):
        queries.hybrid_body("mouse", k=50)


def test_the_embed_leg_writes_the_leg_the_placeholder_stands_for() -> None:
    """The connector's post-process answers {"knn": {"embedding": {"vector", "k": K}}} for
    ``query.hybrid.queries[1]``: the same field and k as queries.knn."""
    leg = load_body("connector.embed-leg.json")
    script = leg["actions"][0]["post_process_function"]
    assert '{\\"knn\\":{\\"embedding\\":{\\"vector\\":' in json.dumps(script)
    assert f'\\"k\\":{queries.K}' in json.dumps(script)
    assert set(queries.knn([0.1])["knn"]) == {"embedding"}


@pytest.mark.parametrize("name", ["hybrid", "hybrid-rerank"])
def test_the_hybrid_pipelines_embed_the_placeholder_leg_fail_open(name: str) -> None:
    pipeline = load_body(f"pipeline.{name}.json")
    procs = pipeline["request_processors"]
    ml = procs[-1]["ml_inference"]  # after any request processor already there
    assert ml["model_id"] == "${EMBED_LEG_MODEL_ID}"
    assert ml["input_map"] == [{"input": "ext.ml_inference.query_texts"}]
    assert ml["output_map"] == [{"query.hybrid.queries[1]": "leg", "ext": "ext"}]
    assert ml["ignore_failure"] is True
    assert "embed-leg" in ROLES
