"""Query understanding behind ``/v1/understand``: translate a query into the catalog's
language (``sidecar.translation``) and say what each search leg should search.

One translator per worker, built on a background thread (like the models) and rebuilt when
the vocabulary file changes (checked at most every ``SIDECAR_QU_RELOAD_S``). Until it is
ready, and whenever it fails, a query passes through untranslated: query understanding may
make a search better, never fail it."""

from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sidecar.errors import ApiError
from sidecar.schemas import is_blank
from sidecar.services.checks import check_text_limit
from sidecar.settings import Settings
from sidecar.translation.base import Translation, Translator
from sidecar.translation.text import catalog_tokens

log = logging.getLogger(__name__)

#: builds a translator for these settings (tests inject a small one)
TranslatorFactory = Callable[[Settings], Translator]


#: a probe query per language, translated once at load
WARM_UP = (
    ("无线鼠标", "zh"),
    ("ワイヤレスマウス", "ja"),
    ("ratón inalámbrico", "es"),
    ("souris sans fil", "fr"),
    ("kabellose Maus", "de"),
    ("wireless mouse", None),
)


def dictionary_translator(settings: Settings) -> Translator:
    """The CPU default: glossary (bundled + ``SIDECAR_QU_GLOSSARY``), installed dictionaries,
    the catalog vocabulary of ``SIDECAR_QU_VOCABULARY``, word neighbours."""
    from sidecar.translation.dictionary import DictionaryTranslator
    from sidecar.translation.glossary import DEFAULT_GLOSSARY

    vocabulary = settings.qu_vocabulary or None
    tr = DictionaryTranslator(
        vocabulary,
        glossary_paths=[DEFAULT_GLOSSARY, *settings.glossary_paths],
        neighbours=settings.qu_neighbours,
        max_chars=settings.max_query_chars,
    )
    tr.warm_up()
    # one query per language, so the first real one (which ML Commons gives 2 s) is warm
    for text, lang in WARM_UP:
        tr.translate(text, lang)
    if settings.qu_backend != "vllm":
        return tr
    return llm_chain(settings, tr)


def llm_chain(settings: Settings, dictionary: Translator) -> Translator:
    """``SIDECAR_QU_BACKEND=vllm``: a Qwen3 chat model served by vLLM first, the dictionary
    translator when the model's answer is unusable, late or missing."""
    from sidecar.translation.base import ChainTranslator
    from sidecar.translation.llm import LlmTranslator

    if not settings.vllm_translate_url or not settings.vllm_translate_model:
        _close(dictionary)
        raise ValueError(
            "SIDECAR_QU_BACKEND=vllm needs SIDECAR_VLLM_TRANSLATE_URL and "
            "SIDECAR_VLLM_TRANSLATE_MODEL"
        )
    llm = LlmTranslator(
        str(settings.vllm_translate_url),
        settings.vllm_translate_model,
        api_key=settings.vllm_api_key or None,
        timeout_s=settings.vllm_translate_timeout_s,
        cache_size=settings.vllm_translate_cache_size,
        max_chars=settings.max_query_chars,
        max_tokens=settings.vllm_translate_max_tokens,
    )
    try:
        log.info("query understanding: LLM translator %s", llm.server_info())
    except Exception as exc:  # not fatal: the dictionaries answer while it is away
        log.warning("query understanding: the LLM translator does not answer yet: %s", exc)
    return ChainTranslator([llm, dictionary])


@dataclass(frozen=True)
class Understanding:
    query: str
    language: str | None
    confidence: float
    translation: str
    bm25_query: str
    embed_query: str
    terms: list[dict[str, str]]
    backend: str
    ext: dict[str, Any] = field(default_factory=dict)


#: a replaced translator is closed this long after the swap (requests finish with it)
RETIRE_AFTER_S = 5.0

#: the languages tried, by script, when a query's language is not detected
GUESS_CJK = ("zh", "ja")
GUESS_LATIN = ("es", "fr", "de")
#: a Latin-script query made only of words in at least this many products is not guessed
CATALOG_WORD_DF = 2
_CJK_CHAR = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def is_cjk_text(text: str) -> bool:
    return _CJK_CHAR.search(text) is not None


#: backends whose text is the query itself (not a translation)
PASSED_THROUGH = frozenset({"passthrough", "none", "loading", "failed", "error"})


#: a note on a translation whose language was guessed from the query's script
GUESSED = "language guessed from the script"


def bm25_text(original: str, translation: str) -> str:
    """What BM25 searches: the query as typed plus its translation when that differs (so
    brand names, model numbers and English words typed as such still match)."""
    t = translation.strip()
    if not t or t.casefold() == original.strip().casefold():
        return original
    return f"{original} {t}"


def _file_stamp(path: str) -> tuple[float, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime, st.st_size)


class UnderstandService:
    def __init__(self, settings: Settings, factory: TranslatorFactory | None = None) -> None:
        self.settings = settings
        self._factory = factory or dictionary_translator
        self._lock = threading.Lock()
        self._translator: Translator | None = None
        self._error: str | None = None
        self._loading = False
        self._stamp: tuple[float, int] | None = None
        self._checked = 0.0
        self._closed = False
        self.loads = 0
        self._started = False
        if self.eager:
            self._start_load()

    @property
    def eager(self) -> bool:
        """Load at start-up (``dictionary``, or ``auto`` with a vocabulary); else ``auto``
        loads on the first query (which passes through meanwhile)."""
        s = self.settings
        return s.qu_backend in ("dictionary", "vllm") or (
            s.qu_backend == "auto" and bool(s.qu_vocabulary)
        )

    # -- lifecycle ---------------------------------------------------------------------------
    def _start_load(self) -> None:
        with self._lock:
            if self._loading or self._closed or self.settings.qu_backend == "none":
                return
            self._loading = True
            if not self._started:
                self._started = True
                atexit.register(self.close)
        threading.Thread(target=self._load, name="translator-loader", daemon=True).start()

    def _load(self) -> None:
        path = self.settings.qu_vocabulary
        stamp = _file_stamp(path) if path else None
        t0 = time.perf_counter()
        try:
            if path and stamp is None:
                log.warning("query understanding: vocabulary %s not found; loading without", path)
                settings = self.settings.with_overrides(qu_vocabulary="")
            else:
                settings = self.settings
            fresh = self._factory(settings)
        except Exception as exc:  # a broken file must not take the endpoint down
            log.exception("query understanding: the translator failed to load")
            with self._lock:
                self._error = f"{type(exc).__name__}: {exc}"
                self._stamp = stamp
                self._loading = False
            return
        with self._lock:
            old, self._translator = self._translator, fresh
            self._stamp, self._error, self._loading = stamp, None, False
            self.loads += 1
            closed = self._closed
        log.info(
            "query understanding: translator ready in %.1f s (vocabulary %s)",
            time.perf_counter() - t0,
            path or "none",
        )
        if closed:
            _close(fresh)
        if old is not None:  # requests may still be inside it: close it a little later
            timer = threading.Timer(RETIRE_AFTER_S, _close, args=(old,))
            timer.daemon = True
            timer.start()

    def _maybe_reload(self) -> None:
        path = self.settings.qu_vocabulary
        now = time.monotonic()
        if not path or now - self._checked < self.settings.qu_reload_s:
            return
        self._checked = now
        stamp = _file_stamp(path)
        if stamp is not None and stamp != self._stamp and not self._loading:
            log.info("query understanding: %s changed; reloading", path)
            self._start_load()

    def wait_ready(self, timeout: float) -> bool:
        """Start loading if nothing has, and wait up to ``timeout`` s; True once ready."""
        if self.settings.qu_backend == "none":
            return True
        if not self._started:
            self._start_load()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._translator is not None or (self._error and not self._loading):
                break
            time.sleep(0.02)
        return self._translator is not None

    @property
    def ready(self) -> bool:
        return self.settings.qu_backend == "none" or self._translator is not None

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "backend": self.settings.qu_backend,
            "ready": self.ready,
            "vocabulary": self.settings.qu_vocabulary or None,
        }
        if self._error:
            out["error"] = self._error
        return out

    def close(self) -> None:
        with self._lock:
            self._closed = True
            tr, self._translator = self._translator, None
        _close(tr)
        atexit.unregister(self.close)

    # -- the work ----------------------------------------------------------------------------
    def check(self, query: str, language: str | None) -> None:
        if is_blank(query):
            raise ApiError("empty_input", "query is empty", "query")
        check_text_limit(query, self.settings.max_query_chars, "query")

    def translate(self, query: str, language: str | None) -> Translation:
        """The translation, or the query passed through when there is no translator (yet)."""
        lang = language.strip().lower() if language else None
        if self.settings.qu_backend == "none":
            return Translation(query, lang, query, (), 0.0, "none")
        if not self._started:
            self._start_load()
        self._maybe_reload()
        tr = self._translator
        if tr is None:
            backend = "loading" if self._error is None else "failed"
            return Translation(query, lang, query, (), 0.0, backend)
        try:
            out = tr.translate(query, lang)
            if lang is None and out.language is None:
                guess = self._best_guess(tr, query)
                if guess is not None:
                    out = dataclasses.replace(guess, notes=(*guess.notes, GUESSED))
            return out
        except Exception:  # the translators never raise; this is the last line of defence
            log.exception("query understanding: translation failed; the query is kept")
            return Translation(query, lang, query, (), 0.0, "error")

    @staticmethod
    def _best_guess(tr: Translator, query: str) -> Translation | None:
        """A short query whose language was not detected ("altavoz bluetooth"): translated
        from each language its script allows, the one that translated most words (then the
        most confident) wins; None when no language translated a word. The query itself
        stays in ``bm25_query``, so a wrong guess only adds words."""
        cjk = is_cjk_text(query)
        vocabulary = getattr(tr, "vocabulary", None)
        words = catalog_tokens(query)
        if (
            not cjk
            and vocabulary is not None
            and words
            and all(vocabulary.count(w) >= CATALOG_WORD_DF for w in words)
        ):
            return None  # every word is the catalog's own ("garmin", "micro sd card")
        candidates = GUESS_CJK if cjk else GUESS_LATIN
        best: tuple[int, float] | None = None
        chosen: Translation | None = None
        for lang in candidates:
            t = tr.translate(query, lang)
            translated = sum(term.origin != "kept" for term in t.terms)
            if not translated or not t.changed:
                continue
            key = (translated, t.confidence)
            if best is None or key > best:
                best, chosen = key, t
        return chosen

    def understand(self, query: str, language: str | None = None) -> Understanding:
        self.check(query, language)
        t = self.translate(query, language)
        # only a translating step's text is a translation (a passed-through query keeps its
        # own spelling: ``clean`` would drop its punctuation)
        translated = t.backend not in PASSED_THROUGH and bool(t.text.strip())
        translation = t.text if translated else query
        # a translation of a known (given or detected) language replaces the query in the
        # BM25 leg (benchmarks/results/tune_bm25-latest.md: better than both texts, 5-fold
        # CV); a guessed language's translation only adds words to it
        if self.settings.qu_bm25_text == "translation" and GUESSED not in t.notes:
            bm25 = translation
        else:
            bm25 = bm25_text(query, translation)
        embed = translation if self.settings.qu_embed_text == "translation" else query
        return Understanding(
            query=query,
            language=t.language,
            confidence=float(t.confidence),
            translation=translation,
            bm25_query=bm25,
            embed_query=embed,
            terms=[
                {"source": term.source, "target": term.target, "origin": term.origin}
                for term in t.terms
            ],
            backend=t.backend,
            ext={
                "rerank": {"query_context": {"query_text": query}},
                "ml_inference": {"query_texts": [embed]},
            },
        )


def _close(tr: Translator | None) -> None:
    closer = getattr(tr, "close", None)
    if closer is not None:
        try:
            closer()
        except Exception:  # closing at exit must not raise
            log.exception("query understanding: closing the translator failed")
