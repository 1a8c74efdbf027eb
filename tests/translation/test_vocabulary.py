from pathlib import Path

import numpy as np
import pytest

from sidecar.translation.vocabulary import (
    Vocabulary,
    build_vocabulary,
    build_vocabulary_from_catalog,
    neighbour_targets,
)


def letters_embedder(words: list[str]) -> np.ndarray:
    """Deterministic stand-in: a bag of letters (the real USE is tested in test_neighbours)."""
    out = np.zeros((len(words), 26), np.float32)
    for i, w in enumerate(words):
        for ch in w:
            if "a" <= ch <= "z":
                out[i, ord(ch) - 97] += 1
    return out


def test_document_frequency_counts_each_product_once() -> None:
    v = build_vocabulary(["mouse mouse wireless", "Wireless keyboard", ""], brands=["Logitech"])
    assert v.n_docs == 3
    assert v.df["wireless"] == 2 and v.df["mouse"] == 1
    assert v.is_brand("LOGITECH") and not v.is_brand("mouse")
    assert v.count("mice") == 0 and v.count("keyboards") == 1  # plural falls back
    assert v.idf("mouse") > v.idf("wireless")


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    v = build_vocabulary(
        ["cable cable", "cable charger", "charger mouse", "mouse m185"],
        brands=["Anker"],
        embedder=letters_embedder,
        embed_min_df=2,
    )
    assert set(v.embedded_words) == {"cable", "charger", "mouse"}
    assert v.embeddings is not None and v.embeddings.shape == (3, 26)
    path = tmp_path / "vocab.npz"
    v.save(path)
    w = Vocabulary.load(path)
    assert w.df == v.df and w.n_docs == 4 and w.brands == v.brands
    assert w.embedded_words == v.embedded_words
    assert w.embeddings is not None
    np.testing.assert_allclose(w.embeddings, v.embeddings, atol=1e-3)
    assert not list(tmp_path.glob("*.tmp*"))


def test_neighbour_targets_skip_numbers_and_rare_words() -> None:
    df = {"cable": 9, "m185": 9, "usb": 2, "zz": 5, "charger": 3, "rare": 1}
    assert neighbour_targets(df, min_df=2) == ["cable", "charger", "usb"]


def test_catalog_reader_skips_bad_lines(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(
        '{"title": "Logitech M185 mouse", "brand": "Logitech", "description": "wireless"}\n'
        "not json\n[1, 2]\n\n"
        '{"title": "USB cable", "brand": null}\n',
        encoding="utf-8",
    )
    v = build_vocabulary_from_catalog(path)
    assert v.n_docs == 2 and v.df["wireless"] == 1 and v.is_brand("logitech")
    assert "p.jsonl:2" in caplog.text and "p.jsonl:3" in caplog.text


def test_build_vocabulary_cli(tmp_path: Path) -> None:
    from sidecar.translation.__main__ import main

    catalog = tmp_path / "p.jsonl"
    catalog.write_text('{"title": "HP 301 ink cartridge", "brand": "HP"}\n', encoding="utf-8")
    out = tmp_path / "v.npz"
    assert (
        main(["build-vocabulary", "--catalog", str(catalog), "--out", str(out), "--no-embeddings"])
        == 0
    )
    v = Vocabulary.load(out)
    assert v.n_docs == 1 and v.df["301"] == 1 and v.is_brand("hp") and v.embeddings is None
