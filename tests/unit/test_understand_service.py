"""The understand service without Flask: pass-through while loading and on failure, the
BM25 text, and the reload when the vocabulary file changes."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from sidecar.errors import ApiError
from sidecar.services.understand import UnderstandService, bm25_text
from sidecar.settings import Settings
from sidecar.translation.base import Term, Translation


class Fixed:
    """A translator that answers one translation, tagged with its build number."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.closed = False

    def translate(self, query: str, language: str | None = None) -> Translation:
        term = Term(query, f"mouse{self.n}", "dictionary", 0.8)
        return Translation(query, language or "zh", f"mouse{self.n}", (term,), 0.8, "dictionary")

    def close(self) -> None:
        self.closed = True


def test_bm25_text() -> None:
    assert bm25_text("无线鼠标", "wireless mouse") == "无线鼠标 wireless mouse"
    assert bm25_text("Mouse", "mouse") == "Mouse"
    assert bm25_text("x", "  ") == "x"


def test_passes_through_while_loading_then_translates() -> None:
    gate = threading.Event()

    def slow(settings: Settings) -> Fixed:
        gate.wait(10)
        return Fixed(1)

    svc = UnderstandService(Settings(qu_backend="dictionary"), slow)
    try:
        u = svc.understand("鼠标")
        assert (u.translation, u.bm25_query, u.backend) == ("鼠标", "鼠标", "loading")
        gate.set()
        assert svc.wait_ready(5)
        u = svc.understand("鼠标")
        assert (u.translation, u.bm25_query) == ("mouse1", "mouse1")
        assert u.terms == [{"source": "鼠标", "target": "mouse1", "origin": "dictionary"}]
    finally:
        svc.close()


def test_auto_without_vocabulary_loads_on_the_first_query() -> None:
    built: list[int] = []

    def factory(settings: Settings) -> Fixed:
        built.append(1)
        return Fixed(1)

    svc = UnderstandService(Settings(), factory)
    try:
        assert not svc.eager
        time.sleep(0.1)
        assert built == []
        svc.understand("鼠标")
        assert svc.wait_ready(5) and built == [1]
    finally:
        svc.close()


def test_a_failing_load_passes_through() -> None:
    def broken(settings: Settings) -> Fixed:
        raise RuntimeError("bad file")

    svc = UnderstandService(Settings(qu_backend="dictionary"), broken)
    try:
        assert not svc.wait_ready(5)
        u = svc.understand("鼠标")
        assert (u.translation, u.backend) == ("鼠标", "failed")
        assert "bad file" in svc.status()["error"]
    finally:
        svc.close()


def test_a_raising_translator_passes_through() -> None:
    class Raising(Fixed):
        def translate(self, query: str, language: str | None = None) -> Translation:
            raise RuntimeError("boom")

    svc = UnderstandService(Settings(qu_backend="dictionary"), lambda s: Raising(0))
    try:
        assert svc.wait_ready(5)
        assert svc.understand("鼠标").bm25_query == "鼠标"
    finally:
        svc.close()


def test_checks() -> None:
    svc = UnderstandService(Settings(qu_backend="none", max_query_chars=5))
    with pytest.raises(ApiError) as err:
        svc.understand(" ")
    assert err.value.code == "empty_input"
    with pytest.raises(ApiError) as err:
        svc.understand("x" * 6)
    assert err.value.code == "payload_too_large"


def test_reloads_when_the_vocabulary_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sidecar.services.understand.RETIRE_AFTER_S", 0.1)
    vocab = tmp_path / "vocab.npz"
    vocab.write_bytes(b"one")
    builds: list[Fixed] = []
    seen: list[str] = []

    def factory(settings: Settings) -> Fixed:
        seen.append(settings.qu_vocabulary)
        builds.append(Fixed(len(builds) + 1))
        return builds[-1]

    svc = UnderstandService(Settings(qu_vocabulary=str(vocab), qu_reload_s=0.05), factory)
    try:
        assert svc.eager and svc.wait_ready(5)
        assert svc.understand("鼠标").translation == "mouse1"
        vocab.write_bytes(b"second version")
        os.utime(vocab, (time.time() + 5, time.time() + 5))
        time.sleep(0.1)
        svc.understand("鼠标")  # notices the change, rebuilds on a thread
        deadline = time.monotonic() + 5
        while svc.loads < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert svc.understand("鼠标").translation == "mouse2"
        deadline = time.monotonic() + 10  # the old one is closed a little later
        while not builds[0].closed and time.monotonic() < deadline:
            time.sleep(0.05)
        assert builds[0].closed and not builds[1].closed
        assert seen == [str(vocab), str(vocab)]
    finally:
        svc.close()
    assert builds[1].closed


def test_a_missing_vocabulary_file_loads_without(tmp_path: Path) -> None:
    seen: list[str] = []

    def factory(settings: Settings) -> Fixed:
        seen.append(settings.qu_vocabulary)
        return Fixed(1)

    svc = UnderstandService(Settings(qu_vocabulary=str(tmp_path / "nope.npz")), factory)
    try:
        assert svc.wait_ready(5) and seen == [""]
    finally:
        svc.close()


class ByLanguage:
    """Translates only from the language it is told (nothing is detected)."""

    def __init__(self, table: dict[str, dict[str, str]]) -> None:
        self.table = table

    def translate(self, query: str, language: str | None = None) -> Translation:
        target = self.table.get(language or "", {}).get(query)
        if target is None:
            kept = tuple(Term(w, w, "kept", 0.0) for w in query.split())
            return Translation(query, language, query, kept, 0.0, "passthrough")
        term = Term(query, target, "dictionary", 0.8)
        return Translation(query, language, target, (term,), 0.8, "dictionary")


def test_an_undetected_language_is_guessed_from_the_script() -> None:
    table = {"es": {"altavoz": "speaker"}, "fr": {"altavoz": "alto"}, "ja": {"マウス": "mouse"}}
    svc = UnderstandService(Settings(qu_backend="dictionary"), lambda s: ByLanguage(table))
    try:
        assert svc.wait_ready(5)
        u = svc.understand("altavoz")
        assert (u.language, u.translation, u.bm25_query) == ("es", "speaker", "altavoz speaker")
        assert svc.understand("マウス").language == "ja"
        # nothing translates: the query passes through as typed
        u = svc.understand("iphone 11")
        assert (u.language, u.translation, u.bm25_query) == (None, "iphone 11", "iphone 11")
        # a given language is never second-guessed
        assert svc.understand("altavoz", "de").translation == "altavoz"
    finally:
        svc.close()


def test_a_query_of_catalog_words_is_not_guessed() -> None:
    from sidecar.translation.vocabulary import build_vocabulary

    class WithVocabulary(ByLanguage):
        vocabulary = build_vocabulary(["Garmin watch", "Garmin GPS", "HP toner"])

    table = {"es": {"garmin": "min", "altavoz": "speaker"}}
    svc = UnderstandService(Settings(qu_backend="dictionary"), lambda s: WithVocabulary(table))
    try:
        assert svc.wait_ready(5)
        assert svc.understand("garmin").bm25_query == "garmin"
        assert svc.understand("altavoz").bm25_query == "altavoz speaker"
    finally:
        svc.close()


class _Dictionary:
    """A translator that answers every query the same way, and records being closed."""

    closed = False

    def translate(self, query: str, language: str | None = None) -> Translation:
        terms = (Term(query, "wireless mouse", "dictionary"),)
        return Translation(query, language, "wireless mouse", terms, 0.9, "dictionary")

    def close(self) -> None:
        self.closed = True


def test_the_vllm_backend_asks_the_llm_first_then_the_dictionary() -> None:
    from sidecar.services.understand import llm_chain
    from tests.loopback import LoopbackServer
    from tests.translation.test_llm import MODEL, completion

    server = LoopbackServer()
    server.answer = lambda req: (200, completion("cordless mouse"))
    settings = Settings(
        qu_backend="vllm", vllm_translate_url=server.url, vllm_translate_model=MODEL
    )
    dictionary = _Dictionary()
    chain = llm_chain(settings, dictionary)
    try:
        got = chain.translate("无线鼠标", "zh")
        assert (got.text, got.backend) == ("cordless mouse", "llm")
        server.close()  # the LLM goes away: the dictionary answers
        got = chain.translate("鼠标", "zh")
        assert (got.text, got.backend) == ("wireless mouse", "dictionary")
    finally:
        chain.close()  # type: ignore[attr-defined]
    assert dictionary.closed


def test_the_vllm_backend_needs_its_server() -> None:
    from sidecar.services.understand import llm_chain

    dictionary = _Dictionary()
    with pytest.raises(ValueError, match="SIDECAR_VLLM_TRANSLATE_URL"):
        llm_chain(Settings(qu_backend="vllm"), dictionary)
    assert dictionary.closed
