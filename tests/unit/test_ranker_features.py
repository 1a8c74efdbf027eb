"""The learned reranker's pure parts: a product read back from its rerank text (the
catalog's layout), and the window's features."""

from __future__ import annotations

import math

import numpy as np

from ingest.catalog import normalize
from sidecar.ranker.document import parse
from sidecar.ranker.features import (
    FEATURES,
    POSITION,
    RECALL_ORDER,
    query_view,
    window_features,
)
from sidecar.scoring.multilingual import choose

MOUSE = {
    "id": "1",
    "locale": "en",
    "title": "Logitech M185 wireless optical mouse",
    "brand": "Logitech",
    "description": "Compact wireless mouse with a USB nano receiver",
    "bullets": ["Connectivity: RF Wireless", "Colour: Grey"],
}
TONER = {
    "id": "2",
    "locale": "en",
    "title": "HP 80A LaserJet toner cartridge",
    "brand": "HP",
    "description": "Black toner for LaserJet Pro printers",
    "bullets": ["Colour: Black"],
}


def section(raw: dict[str, object]) -> str:
    return choose(normalize(raw).doc["rerank_text"], "en")[0]


def test_parse_reads_the_catalogs_layout() -> None:
    p = parse(section(MOUSE))
    assert p.title == MOUSE["title"]
    assert p.brand == "Logitech"
    assert p.description == MOUSE["description"]
    assert p.bullets == ("Connectivity: RF Wireless", "Colour: Grey")
    assert p.title_description.startswith("Logitech M185 wireless optical mouse. Compact")


def test_parse_without_a_brand_keeps_the_description() -> None:
    raw = {**MOUSE, "brand": None}
    p = parse(section(raw))
    assert p.brand == "" and p.description == MOUSE["description"]


def test_parse_plain_text_is_all_title() -> None:
    p = parse("wireless mouse")
    assert (p.title, p.brand, p.description, p.bullets) == ("wireless mouse", "", "", ())


def features(query: str, translation: str, positions: list[int] | None) -> np.ndarray:
    docs = [parse(section(MOUSE)), parse(section(TONER))]
    return window_features(
        query_view(query, translation, 1.0),
        docs,
        np.array([0.8, 0.7], np.float32),
        np.array([0.5, 0.2], np.float32),
        lambda word: 2.0,
        frozenset({"logitech", "hp"}),
        positions,
    )


def col(name: str) -> int:
    return FEATURES.index(name)


def test_relative_cosines_and_lexical_match_favour_the_asked_product() -> None:
    x = features("ratón inalámbrico logitech", "wireless mouse logitech", [1, 0])
    assert x.shape == (2, len(FEATURES))
    assert math.isclose(x[0, col("e5_cos_minus_best")], 0.0)
    assert x[1, col("use_cos_minus_best")] < 0
    assert x[0, col("bm25")] > x[1, col("bm25")] == 0.0
    assert x[0, col("idf_overlap_title")] == 1.0
    assert x[0, col("brand_match")] == 1.0 and x[1, col("brand_match")] == -1.0
    assert list(x[:, POSITION]) == [1.0, 0.0]


def test_model_numbers_and_missing_positions() -> None:
    x = features("m185", "m185", None)
    assert x[0, col("model_number_match")] == 1.0 and x[1, col("model_number_match")] == 0.0
    assert np.isnan(x[:, POSITION]).all()
    y = features("mouse", "mouse", None)
    assert np.isnan(y[:, col("model_number_match")]).all()
    assert (y[:, col("brand_match")] == 0.0).all()


def test_a_cjk_original_adds_no_terms_but_its_model_numbers_do() -> None:
    q = query_view("罗技 M185 鼠标", "logitech mouse", 1.0)
    assert q.terms == ("logitech", "mouse", "m185")


def unit(rows: list[list[float]]) -> np.ndarray:
    v = np.asarray(rows, dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_the_translation_has_its_own_cosines() -> None:
    docs = [parse(section(MOUSE)), parse(section(TONER))]
    x = window_features(
        query_view("ratón inalámbrico", "wireless mouse", 1.0),
        docs,
        np.array([0.3, 0.4], np.float32),
        np.array([0.2, 0.3], np.float32),
        lambda word: 2.0,
        frozenset(),
        None,
        e5_cos_translation=np.array([0.9, 0.5], np.float32),
        use_cos_translation=np.array([0.8, 0.1], np.float32),
    )
    assert x[1, col("e5_cos_minus_best")] == 0.0  # the typed query's cosine prefers the toner
    assert x[0, col("e5_cos_translation_minus_best")] == 0.0
    assert math.isclose(x[1, col("e5_cos_translation_minus_best")], -0.4, abs_tol=1e-6)
    assert math.isclose(x[1, col("use_cos_translation")], 0.1, abs_tol=1e-6)
    # without a translation's cosines they repeat the query's
    y = features("mouse", "mouse", None)
    assert np.array_equal(y[:, col("e5_cos_translation")], y[:, col("e5_cos")])


def test_the_recall_votes_single_out_the_odd_product() -> None:
    # four mice, then a keyboard combo, in recall order 0..4 (the keyboard at rank 1)
    mice = [[1, 0.1, 0], [1, 0, 0.1], [1, 0.05, 0.05], [0.9, 0.1, 0]]
    keyboard = [[0.2, 1, 0]]
    vectors = unit([mice[0], *keyboard, *mice[1:]])
    texts = [section(MOUSE)] * 5
    docs = [parse(t) for t in texts]
    cos = np.full(5, 0.5, np.float32)
    args = (query_view("mouse", "mouse", 1.0), docs, cos, cos, lambda word: 1.0, frozenset())
    x = window_features(*args, [0, 1, 2, 3, 4], doc_vectors=(vectors, vectors))
    for name in ("e5_top_sim", "e5_centroid_cos", "use_top_sim", "use_centroid_cos"):
        assert int(np.argmin(x[:, col(name)])) == 1, name
        assert x[:, col(name + "_minus_best")].max() == 0.0
    # each mouse's mean cosine to the other four of the first five
    sim = vectors @ vectors.T
    assert math.isclose(x[0, col("e5_top_sim")], (sim[0].sum() - sim[0, 0]) / 4, rel_tol=1e-5)
    # positions given out of order: the same votes, by each document's place
    order = [4, 1, 0, 2, 3]
    shuffled = window_features(*args, order, doc_vectors=(vectors, vectors))
    ranks = np.argsort(order)
    again = window_features(*args, [0, 1, 2, 3, 4], doc_vectors=(vectors[ranks], vectors[ranks]))
    assert np.allclose(
        shuffled[ranks][:, list(RECALL_ORDER)], again[:, list(RECALL_ORDER)], atol=1e-5
    )
    # no recall order: no votes and no position
    plain = window_features(*args, None, doc_vectors=(vectors, vectors))
    assert np.isnan(plain[:, list(RECALL_ORDER)]).all()
    assert not np.isnan(plain[:, col("e5_cos_translation")]).any()


def test_small_pages_get_votes_without_nan() -> None:
    for n in (1, 2, 3):
        docs = [parse(section(MOUSE))] * n
        vectors = unit([[1.0, 0.1 * i, 0.0] for i in range(n)])
        cos = np.full(n, 0.5, np.float32)
        x = window_features(
            query_view("mouse", "mouse", 1.0),
            docs,
            cos,
            cos,
            lambda word: 1.0,
            frozenset(),
            list(range(n)),
            doc_vectors=(vectors, vectors),
        )
        assert not np.isnan(x[:, list(RECALL_ORDER)]).any(), n
