"""Any text in, a clean string out, never an exception."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidecar.translation.dictionary import DictionaryTranslator

NASTY = [
    "",
    "\x00",
    "${parameters.query}",
    '{"query": "x\\"}", "a": [1, 2]}',
    "\\\\ \\n \\u0000",
    "'; DROP TABLE products; --",
    "🎧🎧 耳机 🎮 ゲーム 👍🏽 👨‍👩‍👧",
    "a" * 10_000,
    "鼠" * 5_000,
    "\u202eRTL override\u202c",
    "^ratón/mouse$ <n> [x] {y} @z *w #",
    "\ud800 lone surrogate",
    "ｉＰｈｏｎｅ　１１",
    "ｍｉｘｅｄ 混合 mélange ミックス",
]


def check(tr: DictionaryTranslator, text: str, lang: str | None) -> None:
    r = tr.translate(text, lang)
    assert isinstance(r.text, str)
    assert not any(unicodedata.category(ch) in ("Cc", "Cs") for ch in r.text)
    assert len(r.text) <= 4 * tr.max_chars
    assert 0.0 <= r.confidence <= 1.0
    assert r.original == text


@pytest.mark.parametrize("text", NASTY)
@pytest.mark.parametrize("lang", [None, "zh", "ja", "es", "fr", "de", "en", "ko", "xx", ""])
def test_nasty_inputs(toy_translator: DictionaryTranslator, text: str, lang: str | None) -> None:
    check(toy_translator, text, lang)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(max_size=300), lang=st.sampled_from([None, "zh", "ja", "es", "fr", "de", "en"]))
def test_arbitrary_text_never_raises(
    toy_translator: DictionaryTranslator, text: str, lang: str | None
) -> None:
    check(toy_translator, text, lang)


def test_long_queries_are_truncated(toy_translator: DictionaryTranslator) -> None:
    r = toy_translator.translate("鼠标 " * 1000, "zh")
    assert r.text == "mouse"
    assert sum(1 for t in r.terms) <= toy_translator.max_chars
