"""Any query text reaches the sidecar exactly, through ML Commons, on every path: the rerank
step (the connector's painless pre-process sends a ``body`` object), a ``neural`` leg's query
embedding (the pre-process sends an ``input`` array), and the fail-open k-NN leg's
``/v1/knn-leg`` (the ``ml_inference`` processor's JSON inputs, with the request's ``ext``
answered back to the rerank). ML Commons would otherwise read
``${parameters.top_n}`` as a placeholder and ``{"a": 1}`` as JSON (docs/operations.md).

The connectors are sidecar-setup's own (``index_templates/connector.*.json``), pointed at a
loopback echo that records what it receives."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cluster_setup import budget, queries
from cluster_setup.bodies import load_body, substitute
from cluster_setup.pipelines import failed_processors
from tests.opensearch.conftest import remote_model
from tests.upstreams import echo_server, received_json

PIPELINE = "echo-hybrid-rerank"

EXPLICIT = [
    "${parameters.top_n}",
    '{"a": 1}',
    "${parameters.nope} $${parameters.top_n} and ${parameters.query}",
    "[1, 2]",
    'say "hi" C:\\temp\\new \\u0041 \\"',
    "line1\nline2\tcol\r\n",
    "a\x00b\x01c\x1fd\x7f",
    "😀 mouse 𝄞 𠜎 \u2028 \u2029",
    "</script><b>&amp;'=",
    "${env.HOME} ${x} $ { } }{",
    ('无线鼠标 wireless "mouse" \\ ' * 80)[:1200],
]


@pytest.fixture(scope="module")
def echo(client: Any, wired: dict[str, Any], catalog: dict[str, Any]) -> Iterator[Any]:
    server = echo_server()
    short = budget.derive(10)
    with (
        remote_model(client, server.url, "echo-rerank", "rerank", short) as rerank_id,
        remote_model(client, server.url, "echo-embed", "embed", short) as embed_id,
    ):
        pipeline = substitute(load_body("pipeline.rerank.json"), {"RERANK_MODEL_ID": rerank_id})
        pipeline["response_processors"][0]["rerank"]["ignore_failure"] = False  # strict
        pipeline["phase_results_processors"] = load_body("pipeline.hybrid.json")[
            "phase_results_processors"
        ]
        client.transport.perform_request("PUT", f"/_search/pipeline/{PIPELINE}", body=pipeline)
        server.embed_id = embed_id  # type: ignore[attr-defined]
        yield server
        client.transport.perform_request("DELETE", f"/_search/pipeline/{PIPELINE}")
    server.close()


def search_through_echo(client: Any, echo: Any, text: str) -> None:
    """One hybrid search whose neural leg embeds ``text`` and whose rerank sends ``text``,
    both to the echo; asserts the search answered, nothing failed and the echo got ``text``."""
    echo.received.clear()
    body = {
        "size": 5,
        "query": {
            "hybrid": {
                "queries": [
                    queries.bm25("wireless mouse"),
                    queries.neural(text, echo.embed_id, k=20),
                ]
            }
        },
        "ext": queries.rerank_ext(text),
    }
    res = client.search(
        index="products",
        body=body,
        params={"search_pipeline": PIPELINE, "verbose_pipeline": "true"},
    )
    assert res["hits"]["hits"], "no hits: nothing to rerank"
    assert failed_processors(res) == []
    reranks = received_json(echo, "/v1/rerank")
    embeds = received_json(echo, "/v1/embeddings")
    assert [r["query"] for r in reranks] == [text]
    assert len(reranks[0]["documents"]) == len(res["hits"]["hits"])
    assert reranks[0]["top_n"] == len(res["hits"]["hits"])
    assert [e["input"] for e in embeds] == [[text]]
    assert embeds[0]["input_type"] == "query"


@pytest.mark.parametrize("text", EXPLICIT, ids=range(len(EXPLICIT)))
def test_explicit_texts_reach_the_sidecar_exactly(client, echo, text) -> None:
    search_through_echo(client, echo, text)


TEXTS = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=300
).filter(lambda s: s.strip() != "")


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,
)
@given(text=TEXTS)
def test_any_text_reaches_the_sidecar_exactly(client, echo, text) -> None:
    search_through_echo(client, echo, text)


def test_the_real_sidecar_reranks_a_template_and_json_looking_text(client, wired, catalog) -> None:
    """The real connectors to the real sidecar: no failed processor for either text."""
    for text in ("${parameters.top_n} mouse", '{"a": 1} mouse'):
        body = queries.hybrid_body(text, wired["embed_model_id"])
        res = client.search(
            index="products",
            body=body,
            params={"search_pipeline": "hybrid-rerank", "verbose_pipeline": "true"},
        )
        assert failed_processors(res) == [], text


@pytest.fixture(scope="module")
def echo_leg(client: Any, wired: dict[str, Any], catalog: dict[str, Any]) -> Iterator[Any]:
    """The hybrid-rerank pipeline's fail-open k-NN leg and rerank, both to an echo."""
    server = echo_server()
    short = budget.derive(10)
    with (
        remote_model(client, server.url, "echo-leg-rerank", "rerank", short) as rerank_id,
        remote_model(client, server.url, "echo-leg-embed", "embed-leg", short) as leg_id,
    ):
        pipeline = substitute(
            load_body("pipeline.hybrid-untranslated-rerank.json"),
            {"RERANK_MODEL_ID": rerank_id, "EMBED_LEG_MODEL_ID": leg_id},
        )
        pipeline["response_processors"][0]["rerank"]["ignore_failure"] = False  # strict
        client.transport.perform_request("PUT", f"/_search/pipeline/{LEG_PIPELINE}", body=pipeline)
        yield server
        client.transport.perform_request("DELETE", f"/_search/pipeline/{LEG_PIPELINE}")
    server.close()


LEG_PIPELINE = "echo-leg-hybrid-rerank"


@pytest.mark.parametrize("text", EXPLICIT, ids=range(len(EXPLICIT)))
def test_texts_reach_the_knn_leg_and_the_rerank_after_it_exactly(client, echo_leg, text) -> None:
    """The k-NN leg's call gets the text as sent (but for two substitutions of ML Commons),
    and the rerank after it too: the ext the leg answered back (repaired) is what 3.x
    reranks with."""
    echo_leg.received.clear()
    res = client.search(
        index="products",
        body=queries.hybrid_body(text, size=5),  # the echo's 1/7 reaches ML Commons as BigDecimal
        params={"search_pipeline": LEG_PIPELINE, "verbose_pipeline": "true"},
    )
    assert res["hits"]["hits"] and failed_processors(res) == []
    (leg,) = received_json(echo_leg, "/v1/knn-leg")
    assert leg["input"] == [as_the_knn_leg_gets_it(text)]
    assert leg["field"] == "embedding" and leg["k"] == queries.K
    # 2.x reranks the ext as sent; 3.x the ext the leg answered back, which came through the
    # same substitution
    line = int(client.info()["version"]["number"].split(".")[0])
    reranked = text if line < 3 else as_the_knn_leg_gets_it(text)
    assert [r["query"] for r in received_json(echo_leg, "/v1/rerank")] == [reranked]


def as_the_knn_leg_gets_it(text: str) -> str:
    """What the k-NN leg's call receives: the text, except that ML Commons' substitution of
    the connector's request body (no pre-process on this path) turns ``$${`` into ``${`` and
    drops DEL (U+007F)."""
    return text.replace("$${", "${").replace("\x7f", "")
