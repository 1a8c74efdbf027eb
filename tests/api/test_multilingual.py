import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidecar.scoring.language import LanguageDetector, script_language
from sidecar.scoring.multilingual import choose, pack, unpack

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


def test_api_scores_the_section_in_the_query_language(client) -> None:
    packed = [
        pack({"en": "HP LaserJet toner cartridge", "zh": "惠普激光打印机硒鼓"}),
        pack({"fr": "Souris optique sans fil Logitech", "zh": "罗技无线光电鼠标"}),
    ]
    r = client.post("/v1/rerank", json={"query": "无线鼠标", "documents": packed})
    body = r.get_json()
    assert body["meta"]["query_language"] == "zh"
    assert body["results"][0]["index"] == 1
    direct = client.post(
        "/v1/rerank", json={"query": "无线鼠标", "documents": ["罗技无线光电鼠标"]}
    )
    by_index = {x["index"]: x["relevance_score"] for x in body["results"]}
    assert by_index[1] == direct.get_json()["results"][0]["relevance_score"]
    hinted = client.post(
        "/v1/rerank", json={"query": "无线鼠标", "documents": packed, "language": "fr"}
    )
    assert hinted.get_json()["meta"]["query_language"] == "fr"
