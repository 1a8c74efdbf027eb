"""The catalog vocabulary from an index (``ingest.vocabulary``), on a fake scrolling client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ingest.vocabulary import build_from_index, index_products
from sidecar.translation.vocabulary import Vocabulary


class FakeClient:
    def __init__(self, docs: list[dict[str, Any]], page: int = 2) -> None:
        self.pages = [docs[i : i + page] for i in range(0, len(docs), page)] + [[]]
        self.cleared = False

    def _page(self) -> dict[str, Any]:
        hits = [{"_source": d} for d in self.pages.pop(0)]
        return {"_scroll_id": "s1", "hits": {"hits": hits}}

    def search(self, index: str, body: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        assert body["_source"] == ["title.en", "brand", "description.en"]
        return self._page()

    def scroll(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._page()

    def clear_scroll(self, body: dict[str, Any]) -> None:
        self.cleared = True


DOCS = [
    {"title": {"en": "Logitech wireless mouse"}, "brand": "Logitech",
     "description": {"en": "A mouse."}},
    {"title": {"en": "Anker power bank"}, "brand": "Anker"},
    {"title": {"zh": "无线鼠标"}},
]  # fmt: skip


def test_index_products_scrolls_every_page() -> None:
    client = FakeClient(DOCS)
    out = list(index_products(client, "products"))
    assert out == [
        ("Logitech wireless mouse Logitech A mouse.", "Logitech"),
        ("Anker power bank Anker", "Anker"),
        ("", ""),
    ]
    assert client.cleared


def test_build_from_index_writes_a_loadable_file(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "vocab.npz"
    summary = build_from_index(FakeClient(DOCS), "products", out, embeddings=False)
    assert summary["products"] == 3
    vocab = Vocabulary.load(out)
    assert vocab.count("mouse") == 1 and vocab.is_brand("anker")
