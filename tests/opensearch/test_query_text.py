"""Any query text reaches the sidecar exactly, through ML Commons, on both paths: the rerank
step (the connector's painless pre-process sends a ``body`` object) and a ``neural`` leg's query
embedding (the pre-process sends an ``input`` array). ML Commons would otherwise read
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
