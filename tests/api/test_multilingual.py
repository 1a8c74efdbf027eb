from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st

from sidecar.scoring.language import LanguageDetector, script_language
from sidecar.scoring.multilingual import choose, pack, unpack
from sidecar.services.rerank import reader_language
from sidecar.settings import Settings
from tests.conftest import make_client

DOC = pack({"en": "Logitech wireless mouse", "zh": "罗技无线鼠标", "fr": "Souris sans fil"})


def test_pack_unpack_round_trip() -> None:
    assert DOC.startswith("[[en]] Logitech")
    assert unpack(DOC) == {
        "en": "Logitech wireless mouse",
        "zh": "罗技无线鼠标",
        "fr": "Souris sans fil",
    }
    assert unpack("plain [[en]] text") is None
    assert unpack("no markers") is None


def test_choose_prefers_query_language_then_english_then_first() -> None:
    assert choose(DOC, "zh") == ("罗技无线鼠标", "zh")
    assert choose(DOC, "ja") == ("Logitech wireless mouse", "en")
    assert choose(DOC, None) == ("Logitech wireless mouse", "en")
    de_only = pack({"de": "Kabellose Maus", "fr": "Souris"})
    assert choose(de_only, "ja") == ("Kabellose Maus", "de")
    assert choose("just text", "zh") == ("just text", None)


langs = st.sampled_from(["en", "zh", "es", "fr", "de", "ja"])
texts = st.text(min_size=1, max_size=40).filter(lambda t: t.strip() and "[[" not in t)


@given(st.dictionaries(langs, texts, min_size=1, max_size=6))
def test_every_packed_section_survives(sections) -> None:
    out = unpack(pack(sections))
    assert out == {k: v.strip() for k, v in sections.items()}


@pytest.mark.parametrize(
    "query,lang",
    [
        ("wireless mouse", "en"),
        ("无线鼠标", "zh"),
        ("ratón inalámbrico", "es"),
        ("souris sans fil", "fr"),
        ("rote Laufschuhe", "de"),
        ("ワイヤレスマウス", "ja"),
        ("蓝牙耳机 降噪", "zh"),
        ("コーヒーミル", "ja"),
    ],
)
def test_detects_the_six_catalog_languages(query, lang) -> None:
    assert LanguageDetector().detect(query)[0] == lang


def test_script_rules_and_unsure_inputs() -> None:
    assert script_language("東京タワー") == "ja"  # kana beats Han
    assert script_language("mouse") is None
    assert LanguageDetector().detect("12345")[0] is None


@pytest.fixture(scope="module")
def cosine_client() -> Iterator[FlaskClient]:
    """The bundled e5 cosine reranker: it reads documents in the query's language."""
    app, test_client = make_client(Settings(rerank_backend="embedding"))
    yield test_client
    app.extensions["sidecar.engine"].close()


def score_of(client: FlaskClient, query: str, documents: list[str], index: int) -> float:
    r = client.post("/v1/rerank", json={"query": query, "documents": documents})
    assert r.status_code == 200, r.get_json()
    return next(x["relevance_score"] for x in r.get_json()["results"] if x["index"] == index)


def test_api_scores_the_section_in_the_query_language(cosine_client) -> None:
    client = cosine_client
    packed = [
        pack({"en": "HP LaserJet toner cartridge", "zh": "惠普激光打印机硒鼓"}),
        pack({"fr": "Souris optique sans fil Logitech", "zh": "罗技无线光电鼠标"}),
    ]
    r = client.post("/v1/rerank", json={"query": "无线鼠标", "documents": packed})
    body = r.get_json()
    assert body["meta"]["query_language"] == "zh"
    assert body["results"][0]["index"] == 1
    by_index = {x["index"]: x["relevance_score"] for x in body["results"]}
    assert by_index[1] == score_of(client, "无线鼠标", ["罗技无线光电鼠标"], 0)
    assert by_index[0] == score_of(client, "无线鼠标", ["惠普激光打印机硒鼓"], 0)
    hinted = client.post(
        "/v1/rerank", json={"query": "无线鼠标", "documents": packed, "language": "fr"}
    )
    assert hinted.get_json()["meta"]["query_language"] == "fr"


def test_the_learned_reranker_reads_the_english_section(client) -> None:
    """The learned ranker matches the query's English translation against English product
    texts (what it was trained on): of a packed document it scores the English section, else
    the query's language, else the first, whatever the query's language."""
    mouse = {"en": "Logitech M185 wireless optical mouse", "zh": "罗技 M185 无线光电鼠标"}
    french = {"fr": "Souris optique sans fil Logitech", "zh": "罗技无线光电鼠标"}
    keyboard = "Dell USB keyboard"
    packed = [pack(mouse), pack(french), keyboard]
    same = [mouse["en"], french["zh"], keyboard]
    r = client.post("/v1/rerank", json={"query": "无线鼠标", "documents": packed})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["meta"]["query_language"] == "zh"
    assert body["meta"]["model"].startswith("lgbm")
    by_index = {x["index"]: x["relevance_score"] for x in body["results"]}
    assert by_index == {i: score_of(client, "无线鼠标", same, i) for i in range(3)}
    zh_read = [mouse["zh"], french["zh"], keyboard]
    assert by_index != {i: score_of(client, "无线鼠标", zh_read, i) for i in range(3)}


def test_each_reranker_reads_its_documents_language() -> None:
    class Learned:
        document_language = "en"

    assert reader_language(Learned()) == "en"
    assert reader_language(object()) is None
    assert reader_language(None) is None  # while the model loads
    assert choose(DOC, "zh", "en") == ("Logitech wireless mouse", "en")
    assert choose(DOC, "zh", "ja") == ("罗技无线鼠标", "zh")  # no such section: the query's
    assert choose(pack({"fr": "Souris", "de": "Maus"}), "de", "en") == ("Maus", "de")
    assert choose("just text", "zh", "en") == ("just text", None)
