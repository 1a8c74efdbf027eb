"""Normalising products (``ingest.catalog``): the accepted shapes, the per-language fields,
the packed rerank text and the content hash."""

from __future__ import annotations

import pytest

from ingest.catalog import (
    MAX_SECTION_CHARS,
    ProductError,
    content_hash,
    localized,
    normalize,
    read_jsonl,
)
from sidecar.languages import CATALOG_CODES
from sidecar.scoring.multilingual import unpack


def test_flat_dotted_and_nested_fields_give_the_same_document() -> None:
    flat = normalize({"id": "p1", "title_en": "Mouse", "title_zh": "鼠标", "description_en": "A"})
    dotted = normalize({"id": "p1", "title.en": "Mouse", "title.zh": "鼠标", "description.en": "A"})
    nested = normalize(
        {"id": "p1", "title": {"en": "Mouse", "zh": "鼠标"}, "description": {"en": "A"}}
    )
    assert flat.doc == dotted.doc == nested.doc
    assert flat.doc["title"] == {"en": "Mouse", "zh": "鼠标"}
    assert flat.doc["description"] == {"en": "A"}
    assert flat.languages == ["en", "zh"]


def test_one_language_per_row_with_a_locale() -> None:
    p = normalize({"id": 7, "locale": "fr", "title": "Souris", "bullets": "sans fil|USB"})
    assert p.id == "7" and p.doc["id"] == "7"
    assert p.doc["title"] == {"fr": "Souris"}
    assert p.doc["bullets"] == {"fr": "sans fil | USB"}
    with pytest.raises(ProductError, match="title has no language"):
        normalize({"id": "x", "title": "Mouse"})


def test_languages_follow_the_one_table() -> None:
    raw = {"id": "p", **{f"title_{code}": f"t-{code}" for code in reversed(CATALOG_CODES)}}
    p = normalize(raw)
    assert p.languages == list(CATALOG_CODES)
    assert list(p.embed_texts) == list(CATALOG_CODES)
    sections = unpack(p.doc["rerank_text"])
    assert sections is not None and list(sections) == list(CATALOG_CODES)


def test_an_unknown_language_is_refused_with_the_choices() -> None:
    with pytest.raises(ProductError, match=r"unsupported language 'ko'") as err:
        normalize({"id": "p", "title_en": "Mouse", "title_ko": "마우스"})
    assert ", ".join(CATALOG_CODES) in str(err.value)
    with pytest.raises(ProductError, match="'xx'"):
        localized({"description": {"xx": "?"}})


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"title_en": "Mouse"}, "id is missing"),
        ({"id": "  ", "title_en": "Mouse"}, "id is missing"),
        ({"id": True, "title_en": "Mouse"}, "id must be a string or an integer"),
        ({"id": "p", "description_en": "no title"}, "no title in any language"),
        ({"id": "p", "title_en": "   "}, "no title in any language"),
        ({"id": "p", "title_en": ["a"]}, "title_en must be a string"),
        ({"id": "p", "title_en": "M", "price": "cheap"}, "price 'cheap' is not a number"),
        ({"id": "p", "title_en": "M", "price": -1}, "non-negative"),
        ({"id": "p", "title_en": "M", "bullets_en": {"a": 1}}, "bullets must be a list"),
    ],
)
def test_products_that_cannot_be_indexed_say_why(raw: dict, message: str) -> None:
    with pytest.raises(ProductError, match=message):
        normalize(raw)


def test_a_product_is_an_object() -> None:
    with pytest.raises(ProductError, match="JSON object"):
        normalize(["not", "a", "dict"])  # type: ignore[arg-type]


def test_the_packed_rerank_text_and_the_embedded_passages() -> None:
    bullets = [f"b{i}" for i in range(12)]
    p = normalize(
        {
            "id": "p",
            "brand": "Logi",
            "title_en": "Mouse  M185",  # whitespace folded
            "description_en": "Small",
            "bullets_en": bullets,
            "title_zh": "鼠标",
        }
    )
    sections = unpack(p.doc["rerank_text"])
    assert sections == {
        "en": "Mouse M185 | Logi | Small | " + " | ".join(bullets[:8]),
        "zh": "鼠标 | Logi",
    }
    # the embedded passage is title and description, without bullets or brand
    assert p.embed_texts == {"en": "Mouse M185. Small", "zh": "鼠标"}
    # every bullet stays indexed for BM25
    assert p.doc["bullets"]["en"] == " | ".join(bullets)
    long = normalize({"id": "q", "title_en": "x" * (MAX_SECTION_CHARS + 500)})
    assert len(long.embed_texts["en"]) == MAX_SECTION_CHARS


def test_price_currency_and_image() -> None:
    p = normalize({"id": "p", "title_en": "M", "price_cents": "1999", "image_url": "http://i"})
    assert (p.doc["price"], p.doc["currency"], p.doc["image"]) == (19.99, "USD", "http://i")
    q = normalize({"id": "p", "title_en": "M", "price": "5.555", "currency": "EUR"})
    assert (q.doc["price"], q.doc["currency"]) == (round(5.555, 2), "EUR")
    r = normalize({"id": "p", "title_en": "M"})
    assert (r.doc["price"], r.doc["currency"], r.doc["brand"]) == (None, None, None)


def test_content_hash_covers_the_content_only() -> None:
    p = normalize({"id": "p", "title_en": "Mouse", "brand": "Logi"})
    assert p.doc["content_hash"] == content_hash(p.doc)
    # neither the hash itself nor the embedding is part of it
    with_vector = {**p.doc, "embedding": [0.1, 0.2], "content_hash": "x"}
    assert content_hash(with_vector) == p.doc["content_hash"]
    # key order does not matter; any content change does
    assert content_hash(dict(reversed(list(p.doc.items())))) == p.doc["content_hash"]
    changed = normalize({"id": "p", "title_en": "Mouse", "brand": "Logitech"})
    assert changed.doc["content_hash"] != p.doc["content_hash"]


def test_read_jsonl_numbers_lines_and_keeps_going_past_a_bad_one() -> None:
    rows = list(read_jsonl(['{"id": 1}', "", "{oops", '{"id": 2}']))
    assert [n for n, _ in rows] == [1, 3, 4]
    assert rows[0][1] == {"id": 1} and rows[2][1] == {"id": 2}
    assert isinstance(rows[1][1], ProductError) and "malformed JSON" in str(rows[1][1])
