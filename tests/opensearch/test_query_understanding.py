"""Query understanding on a real node: the ``ml_inference`` request processor of the
``translate``, ``hybrid`` and ``hybrid-rerank`` pipelines calls the sidecar's
``/v1/understand`` and searches the query plus its translation; a translation that fails
leaves the query as typed. Never judged under ``verbose_pipeline`` (it hides failures).

Product data: Specs Icecat (https://icecat.biz/), Icecat Open Content License."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from cluster_setup import queries
from cluster_setup.bodies import load_body, substitute
from sidecar.launcher import SidecarProcess
from tests.opensearch.conftest import AUTH, remote_model
from tests.upstreams import refused_url

AWKWARD = [
    "${parameters.top_n}",
    '{"a": 1}',
    "[1, 2]",
    'say "hi" \\ back\\slash',
    "tab\there\nnewline",
    "😀 𠮷野家 \u2028",
    "$${parameters.query} and ${parameters.nope}",
]


def understand(url: str, text: str) -> dict[str, Any]:
    req = urllib.request.Request(
        url + "/v1/understand",
        data=json.dumps({"query": text}).encode(),
        headers={"Content-Type": "application/json", **AUTH},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        body: dict[str, Any] = json.load(resp)
    return body


@pytest.fixture(scope="module")
def translating(sidecar: SidecarProcess, wired: dict[str, Any], catalog: dict[str, Any]) -> None:
    """The sidecar's translator loaded (it loads on the first query when no vocabulary is
    configured; meanwhile a query passes through untranslated)."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if understand(sidecar.url, "无线鼠标")["backend"] == "dictionary":
            return
        time.sleep(1)
    pytest.fail("the sidecar's translator did not load in 180 s")


def search(client: Any, body: dict[str, Any], pipeline: str | None = None) -> dict[str, Any]:
    params = {"search_pipeline": pipeline} if pipeline else {}
    res: dict[str, Any] = client.search(index="products", body=body, params=params)
    return res


def titles(res: dict[str, Any]) -> list[str]:
    return [(h["_source"].get("title") or {}).get("en", "") for h in res["hits"]["hits"]]


def bm25_only_hybrid(text: str) -> dict[str, Any]:
    """A hybrid body whose second leg matches nothing, so the hits are BM25's alone; it
    carries ``ext.rerank`` like every body the project sends."""
    return queries.search_body(
        {"hybrid": {"queries": [queries.bm25(text), {"match_none": {}}]}}, text
    )


def test_setup_registers_the_translate_role(wired: dict[str, Any], client: Any) -> None:
    assert wired["translate_model_id"]
    req = client.transport.perform_request

    def models(name: str) -> list[str]:
        procs = req("GET", f"/_search/pipeline/{name}")[name].get("request_processors", [])
        return [p["ml_inference"]["model_id"] for p in procs]

    # the translation first; in the hybrid pipelines the fail-open query embedding after it
    leg = wired["embed_leg_model_id"]
    assert models("translate") == [wired["translate_model_id"]]
    for name in ("hybrid", "hybrid-rerank"):
        assert models(name) == [wired["translate_model_id"], leg]
    for name in ("hybrid-untranslated", "hybrid-untranslated-rerank"):
        assert models(name) == [leg]


def test_a_chinese_query_finds_bm25_hits_only_when_translated(
    client: Any, translating: None
) -> None:
    body = queries.bm25_body("无线鼠标")
    assert search(client, body)["hits"]["total"]["value"] == 0
    translated = search(client, body, "translate")
    assert translated["hits"]["total"]["value"] > 0
    assert any("mouse" in t.lower() for t in titles(translated)[:5]), titles(translated)


def test_the_hybrid_pipelines_translate_despite_ext_rerank(client: Any, translating: None) -> None:
    """neural-search 2.19 drops a rewritten request that carries ext.rerank, unless the
    processor writes ext itself: the BM25 leg finds mice only if the rewrite survived."""
    body = bm25_only_hybrid("无线鼠标")
    assert "rerank" in body["ext"]
    assert search(client, body, "hybrid-untranslated")["hits"]["hits"] == []
    for pipeline in ("hybrid", "hybrid-rerank"):
        res = search(client, body, pipeline)
        assert res["hits"]["hits"], pipeline
        assert any("mouse" in t.lower() for t in titles(res)[:5]), (pipeline, titles(res))


def test_the_full_hybrid_body_answers_through_every_pipeline(
    client: Any, wired: dict[str, Any], translating: None
) -> None:
    body = queries.hybrid_body("无线鼠标", wired["embed_model_id"])
    for pipeline in ("hybrid", "hybrid-rerank", "hybrid-untranslated"):
        assert search(client, body, pipeline)["hits"]["hits"], pipeline


@pytest.mark.parametrize("text", AWKWARD)
def test_awkward_query_text_still_answers(client: Any, translating: None, text: str) -> None:
    for body, pipeline in (
        (queries.bm25_body(text), "translate"),
        (bm25_only_hybrid(text), "hybrid"),
        (bm25_only_hybrid(text), "hybrid-rerank"),
    ):
        res = search(client, body, pipeline)
        assert "hits" in res, (pipeline, res)


@pytest.fixture(scope="module")
def refused_pipelines(client: Any) -> Iterator[dict[str, str]]:
    """``translate`` and ``hybrid`` pipelines whose translate model's connector points at
    a loopback port nobody listens on."""
    req = client.transport.perform_request
    with remote_model(client, refused_url(), "refused-translate", "translate") as model_id:
        names = {}
        for name in ("translate", "hybrid"):
            body = substitute(
                load_body(f"pipeline.{name}.json"),
                {"TRANSLATE_MODEL_ID": model_id, "RERANK_MODEL_ID": "unused"},
            )
            names[name] = f"refused-{name}"
            req("PUT", f"/_search/pipeline/{names[name]}", body=body)
        yield names
        for name in names.values():
            req("DELETE", f"/_search/pipeline/{name}")


def test_a_failed_translation_keeps_the_query_as_typed(
    client: Any, catalog: dict[str, Any], refused_pipelines: dict[str, str]
) -> None:
    english = queries.bm25_body("wireless mouse")
    plain = [h["_id"] for h in search(client, english)["hits"]["hits"]]
    assert plain
    got = search(client, english, refused_pipelines["translate"])
    assert [h["_id"] for h in got["hits"]["hits"]] == plain
    # nothing translated it: the Chinese query finds what it finds untranslated (nothing)
    assert (
        search(client, queries.bm25_body("无线鼠标"), refused_pipelines["translate"])["hits"][
            "hits"
        ]
        == []
    )
    hybrid = bm25_only_hybrid("wireless mouse")
    got = search(client, hybrid, refused_pipelines["hybrid"])
    assert [h["_id"] for h in got["hits"]["hits"]] == [
        h["_id"] for h in search(client, hybrid, "hybrid-untranslated")["hits"]["hits"]
    ]
