"""``POST /v1/understand`` through the Flask test client, on a small translator (toy
dictionaries, a hand-written catalog vocabulary), so nothing depends on installed packages."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from sidecar.settings import Settings
from sidecar.translation.dictionary import DictionaryTranslator
from sidecar.translation.glossary import Glossary
from sidecar.translation.lexicons import TableLexicon
from sidecar.translation.vocabulary import build_vocabulary
from tests.conftest import make_client

CATALOG = [
    "Logitech M185 wireless mouse, grey",
    "Logitech MX Keys wireless keyboard",
    "Belkin USB-C wall charger 20 W",
    "Anker PowerCore power bank 10000 mAh",
]


def toy_translator(settings: Settings) -> DictionaryTranslator:
    return DictionaryTranslator(
        build_vocabulary(CATALOG, brands=["Logitech", "Belkin", "Anker"]),
        glossary=Glossary([("zh", "移动电源", "power bank")]),
        neighbours=False,
        lexicons={
            "zh": TableLexicon("toy-zh", {"无线": ["wireless"], "鼠标": ["mouse (computing)"]}),
            "es": TableLexicon("toy-es", {"ratón": ["rat", "mouse"], "inalámbrico": ["wireless"]}),
            "ja": None,
            "fr": None,
            "de": None,
        },
        max_chars=settings.max_query_chars,
    )


def build(**settings: Any) -> Flask:
    app, _ = make_client(Settings(max_query_chars=200, **settings), translator=toy_translator)
    assert app.extensions["sidecar.understand"].wait_ready(60)
    return app


@pytest.fixture(scope="module")
def app() -> Iterator[Flask]:
    app = build()
    yield app
    app.extensions["sidecar.understand"].close()
    app.extensions["sidecar.engine"].close()


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def test_a_chinese_query_is_translated_for_both_legs(client: FlaskClient) -> None:
    r = client.post("/v1/understand", json={"query": "无线鼠标"})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["query"] == "无线鼠标"
    assert body["language"] == "zh"
    assert body["translation"] == "wireless mouse"
    assert body["bm25_query"] == "wireless mouse"  # a known language: the translation alone
    assert body["embed_query"] == "wireless mouse"  # SIDECAR_QU_EMBED_TEXT=translation
    assert body["confidence"] > 0.5
    assert {t["source"]: t["target"] for t in body["terms"]} == {
        "无线": "wireless",
        "鼠标": "mouse",
    }
    assert {t["origin"] for t in body["terms"]} == {"dictionary"}
    assert body["ext"] == {
        "rerank": {"query_context": {"query_text": "无线鼠标"}},
        "ml_inference": {"query_texts": ["wireless mouse"]},
    }


def test_a_given_language_is_used(client: FlaskClient) -> None:
    body = client.post("/v1/understand", json={"query": "ratón", "language": "es-ES"}).get_json()
    assert body["language"] == "es"
    assert body["translation"] == "mouse"


def test_an_english_query_passes_through(client: FlaskClient) -> None:
    body = client.post("/v1/understand", json={"query": "wireless mouse"}).get_json()
    assert body["translation"] == body["bm25_query"] == body["embed_query"] == "wireless mouse"
    assert body["terms"] == []


def test_embed_text_original_and_bm25_text_both() -> None:
    app = build(qu_embed_text="original", qu_bm25_text="both")
    try:
        body = app.test_client().post("/v1/understand", json={"query": "无线鼠标"}).get_json()
        assert body["embed_query"] == "无线鼠标"
        assert body["bm25_query"] == "无线鼠标 wireless mouse"
        assert body["ext"]["ml_inference"]["query_texts"] == ["无线鼠标"]
        assert body["ext"]["rerank"]["query_context"]["query_text"] == "无线鼠标"
    finally:
        app.extensions["sidecar.understand"].close()
        app.extensions["sidecar.engine"].close()


def test_backend_none_passes_everything_through() -> None:
    app = build(qu_backend="none")
    try:
        body = app.test_client().post("/v1/understand", json={"query": "无线鼠标"}).get_json()
        assert body["translation"] == body["bm25_query"] == "无线鼠标"
        assert body["backend"] == "none"
    finally:
        app.extensions["sidecar.engine"].close()


@pytest.mark.parametrize(
    "text",
    [
        "${parameters.top_n}",
        '{"a": 1}',
        "[1, 2]",
        'say "hi" \\ back\\slash',
        "tab\there\nnewline\r",
        "nul\x00 and \x07 bell \x7f del",
        "😀🖱️ 𠮷野家 \u2028\u2029",
        "</script>&'=",
        "鼠" * 200,
    ],
)
def test_awkward_text_answers_200_and_the_original_reaches_the_reranker(
    client: FlaskClient, text: str
) -> None:
    r = client.post("/v1/understand", json={"query": text})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["query"] == text
    # the query as typed (plus any translation), or, for a known language, its translation
    assert body["bm25_query"].startswith(text) or body["bm25_query"] == body["translation"]
    assert body["ext"]["rerank"]["query_context"]["query_text"] == text


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"query": ""}, 400, "empty_input"),
        ({"query": " \t\n"}, 400, "empty_input"),
        ({}, 422, "validation_error"),
        ({"query": 5}, 422, "validation_error"),
        ({"query": "x" * 201}, 413, "payload_too_large"),
        ({"query": "mouse", "language": "not a language"}, 422, "validation_error"),
        ({"query": "mouse", "language": 3}, 422, "validation_error"),
    ],
)
def test_bad_input_is_a_clear_4xx(
    client: FlaskClient, payload: dict[str, Any], status: int, code: str
) -> None:
    r = client.post("/v1/understand", json=payload)
    assert r.status_code == status, r.get_json()
    assert r.get_json()["error"]["code"] == code


def test_not_json_is_a_4xx(client: FlaskClient) -> None:
    r = client.post("/v1/understand", data="query=x", content_type="text/plain")
    assert r.status_code == 415
    r = client.post("/v1/understand", data="{", content_type="application/json")
    assert r.status_code == 400


def test_readyz_reports_the_translator(client: FlaskClient) -> None:
    body = client.get("/readyz").get_json()
    assert body["models"]["understand"]["ready"] is True


def test_the_openapi_document_has_the_route(client: FlaskClient) -> None:
    doc = client.get("/openapi.json").get_json()
    assert "/v1/understand" in doc["paths"]
    assert (
        doc["components"]["schemas"]["UnderstandRequest"]["properties"]["query"]["maxLength"] == 200
    )
