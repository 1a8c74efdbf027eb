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


def test_the_embed_leg_asks_the_sidecar_for_the_leg_the_placeholder_stands_for() -> None:
    """The connector sends the query text, the search ext and the k-NN clause's field and k
    to ``/v1/knn-leg`` (no painless: the processor reads ``leg`` and ``ext`` from the answer
    as it is); its defaults are the field and k of queries.knn."""
    leg = load_body("connector.embed-leg.json")
    (action,) = leg["actions"]
    assert action["url"] == "${SIDECAR_URL}/v1/knn-leg"
    assert "pre_process_function" not in action and "post_process_function" not in action
    assert leg["parameters"]["field"] == "embedding" and set(queries.knn([0.1])["knn"]) == {
        "embedding"
    }
    assert leg["parameters"]["k"] == str(queries.K)
    # the request body is JSON once the processor's parameters (JSON texts) are filled in
    params = {
        **leg["parameters"],
        "input": json.dumps(['a "mouse"']),
        "ext": json.dumps({"query_context": {"query_text": "x"}}),
    }
    body = action["request_body"]
    for key, value in params.items():
        body = body.replace("${parameters." + key + "}", value)
    assert json.loads(body) == {
        "model": "default",
        "input": ['a "mouse"'],
        "search_ext": {"query_context": {"query_text": "x"}},
        "field": "embedding",
        "k": queries.K,
    }


@pytest.mark.parametrize("name", ["hybrid", "hybrid-rerank"])
def test_the_hybrid_pipelines_embed_the_placeholder_leg_fail_open(name: str) -> None:
    pipeline = load_body(f"pipeline.{name}.json")
    procs = pipeline["request_processors"]
    ml = procs[-1]["ml_inference"]  # after any request processor already there
    assert ml["model_id"] == "${EMBED_LEG_MODEL_ID}"
    assert ml["input_map"] == [{"input": "ext.ml_inference.query_texts", "ext": "ext"}]
    assert ml["output_map"] == [{"query.hybrid.queries[1]": "leg", "ext": "ext"}]
    assert ml["ignore_failure"] is True
    assert "embed-leg" in ROLES
