import logging
from pathlib import Path

import pytest

from sidecar.translation.base import ChainTranslator, Translation
from sidecar.translation.dictionary import DictionaryTranslator
from sidecar.translation.glossary import Glossary
from sidecar.translation.lexicons import TableLexicon
from sidecar.translation.vocabulary import Vocabulary


def targets(r: Translation) -> list[tuple[str, str, str]]:
    return [(t.source, t.target, t.origin) for t in r.terms]


def test_longest_match_segmentation(toy_translator: DictionaryTranslator) -> None:
    r = toy_translator.translate("无线鼠标", "zh")
    assert r.text == "wireless mouse"
    assert targets(r) == [("无线", "wireless", "dictionary"), ("鼠标", "mouse", "dictionary")]
    assert r.language == "zh" and 0.7 < r.confidence <= 1


def test_glossary_beats_the_dictionary_on_its_span(toy_translator: DictionaryTranslator) -> None:
    r = toy_translator.translate("移动电源", "zh")  # dictionary: 移动 + 电源
    assert targets(r) == [("移动电源", "power bank", "glossary")]
    assert r.confidence == 1.0
    assert toy_translator.translate("funda", "es").text == "phone case"


def test_sense_choice_uses_the_catalog(toy_translator: DictionaryTranslator) -> None:
    assert toy_translator.translate("cargador", "es").text == "charger"
    assert toy_translator.translate("ratón inalámbrico", "es").text == "mouse wireless"


def test_brands_and_model_numbers_pass_through(toy_translator: DictionaryTranslator) -> None:
    r = toy_translator.translate("iPhone 11 的壳", "zh")
    assert r.text.startswith("iPhone 11")
    assert ("iPhone", "iPhone", "kept") in targets(r)
    r = toy_translator.translate("cargador Belkin M185 tn-2110 HP 301", "es")
    assert r.text == "charger Belkin M185 tn-2110 HP 301"
    assert all(t.origin == "kept" for t in r.terms[1:])


def test_english_passes_through_unchanged(toy_translator: DictionaryTranslator) -> None:
    r = toy_translator.translate("wireless mouse", "en")
    assert (r.text, r.confidence, r.terms) == ("wireless mouse", 1.0, ())
    assert toy_translator.translate("Wireless Mouse", "EN").text == "Wireless Mouse"


def test_language_tags_are_normalised(toy_translator: DictionaryTranslator) -> None:
    assert toy_translator.translate("鼠标", "zh-Hans-CN").text == "mouse"
    assert toy_translator.translate("鼠标", "ZH_cn").language == "zh"


def test_detection_when_no_language_is_given(toy_translator: DictionaryTranslator) -> None:
    r = toy_translator.translate("无线鼠标")
    assert r.language == "zh" and r.text == "wireless mouse"


def test_unsupported_language_keeps_the_tokens(toy_translator: DictionaryTranslator) -> None:
    r = toy_translator.translate("무선 마우스 M185", "ko")
    assert r.text == "무선 마우스 M185"
    assert {t.origin for t in r.terms} == {"kept"}


def test_empty_query(toy_translator: DictionaryTranslator) -> None:
    for q in ("", "   ", "\x00\x01"):
        r = toy_translator.translate(q, "zh")
        assert (r.text, r.terms, r.confidence) == ("", (), 0.0)


def test_missing_dictionary_degrades(
    vocab: Vocabulary, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    glossary = Glossary([("de", "Tastatur", "keyboard")])
    tr = DictionaryTranslator(vocab, glossary=glossary, neighbours=False, dictd_dir=tmp_path)
    with caplog.at_level(logging.WARNING, logger="sidecar.translation"):
        r = tr.translate("Tastatur Logitech Maus", "de")
    assert r.text == "keyboard Logitech Maus"
    assert [t.origin for t in r.terms] == ["glossary", "kept", "kept"]
    assert "no dictionary for de" in caplog.text
    report = tr.sources()["languages"]["de"]
    assert report["loaded"] is False and "freedict-deu-eng" in report["detail"]
    assert tr.sources()["languages"]["zh"] == "not loaded yet"


def test_missing_cedict_degrades(vocab: Vocabulary, tmp_path: Path) -> None:
    tr = DictionaryTranslator(
        vocab, glossary=Glossary(), neighbours=False, cedict_path=tmp_path / "none.txt.gz"
    )
    assert tr.translate("鼠标 M185", "zh").text == "鼠标 M185"
    assert tr.sources()["languages"]["zh"]["loaded"] is False


def test_confidence_reflects_what_was_resolved(toy_translator: DictionaryTranslator) -> None:
    high = toy_translator.translate("无线鼠标 logitech", "zh").confidence
    low = toy_translator.translate("qwzx 鼠标", "zh").confidence
    assert 0 <= low < high <= 1


def test_a_gloss_absent_from_the_catalog_falls_back_to_the_dictionary() -> None:
    vocab = Vocabulary(df={"mouse": 3}, n_docs=3)
    lex = TableLexicon("toy", {"硒鼓": ["selenium drum"]})
    tr = DictionaryTranslator(vocab, glossary=Glossary(), neighbours=False, lexicons={"zh": lex})
    r = tr.translate("硒鼓", "zh")
    assert targets(r) == [("硒鼓", "selenium drum", "dictionary")]
    assert r.confidence < 0.5


class Broken:
    def translate(self, query: str, language: str | None = None) -> Translation:
        raise ConnectionError("LLM server down")


class Fixed:
    def __init__(self, text: str, confidence: float):
        self.text, self.confidence = text, confidence

    def translate(self, query: str, language: str | None = None) -> Translation:
        return Translation(query, language, self.text, (), self.confidence, "fixed")


def test_chain_skips_a_failing_backend(
    toy_translator: DictionaryTranslator, caplog: pytest.LogCaptureFixture
) -> None:
    chain = ChainTranslator([Broken(), toy_translator])
    with caplog.at_level(logging.ERROR, logger="sidecar.translation"):
        assert chain.translate("无线鼠标", "zh").text == "wireless mouse"
    assert "Broken failed" in caplog.text


def test_chain_takes_the_first_confident_answer_else_the_best() -> None:
    assert ChainTranslator([Fixed("a", 0.9), Fixed("b", 1.0)]).translate("q").text == "a"
    assert ChainTranslator([Fixed("a", 0.1), Fixed("b", 0.3)]).translate("q").text == "b"
    assert ChainTranslator([Broken()]).translate("q").text == "q"
    with pytest.raises(ValueError):
        ChainTranslator([])


def test_frequent_catalog_words_pass_through_before_the_dictionary() -> None:
    vocab = Vocabulary(df={"hub": 80, "lift": 3, "usb": 900, "mouse": 50}, n_docs=1000)
    lex = TableLexicon("toy-de", {"hub": ["lift"], "maus": ["mouse"]})
    tr = DictionaryTranslator(vocab, glossary=Glossary(), neighbours=False, lexicons={"de": lex})
    assert tr.translate("usb hub maus", "de").text == "usb hub mouse"
    rare = DictionaryTranslator(
        vocab, glossary=Glossary(), neighbours=False, lexicons={"de": lex}, keep_min_df=100
    )
    assert rare.translate("hub", "de").text == "lift"


def test_german_compounds_split_into_known_parts() -> None:
    vocab = Vocabulary(df={"gaming": 9, "mouse": 9, "speaker": 9}, n_docs=20)
    lex = TableLexicon(
        "toy-de",
        {"maus": ["mouse"], "lautsprecher": ["speaker"], "gar": ["done"], "min": ["minute"]},
    )
    tr = DictionaryTranslator(vocab, glossary=Glossary(), neighbours=False, lexicons={"de": lex})
    assert tr.translate("Gamingmaus", "de").text == "gaming mouse"
    assert tr.translate("Gaminglautsprecher", "de").text == "gaming speaker"
    assert tr.translate("garmin", "de").text == "garmin"  # too short to be a compound
