"""What decides a re-write (``hash_for``) and how bad records are handled before anything
reaches a cluster (``Sync.products``: dead letters with line numbers, ``strict``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.catalog import normalize
from ingest.feeds import Record, read_feed
from ingest.sync import DeadLetters, StrictStop, Sync, hash_for

RAW = {"id": "p1", "title_en": "Mouse", "description_en": "Small", "brand": "Logi"}


def test_hash_for_is_stable_and_independent_of_key_order() -> None:
    a = normalize(RAW)
    b = normalize(dict(reversed(list(RAW.items()))))
    assert hash_for(a, "e5:384") == hash_for(b, "e5:384") == hash_for(normalize(RAW), "e5:384")
    assert len(hash_for(a, None)) == 64


@pytest.mark.parametrize(
    "change",
    [
        {"title_en": "Mouse 2"},
        {"description_en": "Smaller"},
        {"brand": "Logitech"},
        {"price": 9.99},
        {"title_zh": "鼠标"},
    ],
)
def test_hash_for_changes_with_the_content(change: dict[str, object]) -> None:
    assert hash_for(normalize({**RAW, **change}), "m") != hash_for(normalize(RAW), "m")


def test_hash_for_changes_with_the_embedding_model() -> None:
    p = normalize(RAW)
    assert hash_for(p, "e5:384") != hash_for(p, "qwen3:1024") != hash_for(p, None)


def test_hash_for_changes_with_what_is_embedded() -> None:
    p = normalize(RAW)
    other_recipe = type(p)(p.id, p.doc, {"en": "Mouse. Small. Logi"})
    assert hash_for(other_recipe, "m") != hash_for(p, "m")


def feed(tmp_path: Path) -> list[Record]:
    lines = [
        json.dumps({"id": "a", "title_en": "A"}),
        "{broken",
        json.dumps({"id": "b", "description_en": "no title"}),
        json.dumps({"id": "a", "title_en": "A again"}),
        json.dumps({"id": "c", "title_en": "C"}),
    ]
    path = tmp_path / "feed.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return list(read_feed(path))


def test_bad_records_are_dead_lettered_with_line_and_reason_and_the_good_go_on(
    tmp_path: Path,
) -> None:
    dead = DeadLetters(tmp_path / "out" / "dead.jsonl")
    sync = Sync(client=None, alias="products", embedder=None, dead=dead)
    good = [(rec.line, p.id) for rec, p in sync.products(feed(tmp_path))]
    dead.close()
    assert good == [(1, "a"), (5, "c")]
    letters = [json.loads(x) for x in (tmp_path / "out" / "dead.jsonl").read_text().splitlines()]
    assert [(x["line"], x["id"]) for x in letters] == [(2, None), (3, "b"), (4, "a")]
    assert (
        letters[0]["reason"].startswith("malformed JSON")
        and letters[0]["record"].strip() == "{broken"
    )
    assert letters[1]["reason"] == "no title in any language"
    assert letters[2]["reason"] == "duplicate id 'a' (first on feed.jsonl:1)"
    assert sync.summary.read == 5 and sync.summary.dead_lettered == dead.count == 3
    # a product that failed validation keeps its indexed version (never deleted as missing)
    assert sync.seen_ids == {"a", "b", "c"}


def test_strict_stops_at_the_first_bad_record(tmp_path: Path) -> None:
    sync = Sync(None, "products", None, DeadLetters(None), strict=True)
    loaded = []
    with pytest.raises(StrictStop, match=r"feed.jsonl:2: malformed JSON"):
        for _, product in sync.products(feed(tmp_path)):
            loaded.append(product.id)
    assert loaded == ["a"]


def test_no_dead_letter_file_until_something_fails(tmp_path: Path) -> None:
    path = tmp_path / "dead.jsonl"
    dead = DeadLetters(path)
    dead.close()
    assert not path.exists() and dead.count == 0
