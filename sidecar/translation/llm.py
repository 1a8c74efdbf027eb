"""An LLM translator: a chat model (Qwen3 served by vLLM) turns the query into English.

One ``POST /v1/chat/completions`` per new (language, query), on vLLM's OpenAI-compatible
server, with a fixed prompt (:data:`SYSTEM_PROMPT`), greedy decoding (temperature 0), a
small ``max_tokens``, a stop sequence and Qwen3's thinking switched off
(``chat_template_kwargs: {"enable_thinking": false}``, which Qwen3's own chat template
reads; a template without the variable ignores it). The answer is checked before it is
trusted: its first line, without quotes, labels or ``<think>`` residue, and it must look
like an English query (no CJK left, not cut off at ``max_tokens``, not an apology, not
too long). An unusable answer, a timeout or a server that is down give confidence 0 and
the query as typed, so that :class:`~sidecar.translation.base.ChainTranslator` falls
through to the dictionary translator behind it; :meth:`LlmTranslator.translate` never
raises for text input.

Answers are cached (a bounded LRU of (language, query)); failures to reach the server
are not, so a server that comes back is asked again.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sidecar.backends.base import BackendError
from sidecar.backends.vllm_backend import VllmClient
from sidecar.translation.base import (
    CATALOG_LANGUAGE,
    LRU,
    ORIGIN_WEIGHT,
    LazyDetector,
    Term,
    Translation,
    guarded,
)
from sidecar.translation.text import MAX_CHARS_DEFAULT, clean, normalise_language

log = logging.getLogger("sidecar.translation")

SYSTEM_PROMPT = (
    "You translate a shopper's product-search query into English, for searching an "
    "English electronics catalog. Keep brand names, model numbers and units unchanged. "
    "Answer with the translation only: one line, no quotes, no explanation."
)
CHAT_PATH = "/v1/chat/completions"
#: the answer ends at the first blank line; the first line is the translation
STOP = ("\n\n",)
#: how much an accepted answer is trusted (ChainTranslator's default threshold is 0.6)
CONFIDENCE = ORIGIN_WEIGHT["llm"]
MAX_TOKENS = 96

_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.S)
_QUOTES = "\"'`“”‘’„«»「」『』《》〈〉"
_LABEL = re.compile(
    r"^(?:english(?:\s+translation)?|translation|translated(?:\s+query)?|query|answer)"
    r"\s*[:：]\s*",
    re.I,
)
_CJK_OR_HANGUL = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
_REFUSAL = re.compile(
    r"^(?:i'?m sorry|sorry,|i cannot|i can'?t|as an ai|i am unable|i'm unable)", re.I
)


class Unusable(ValueError):
    """The model answered, but not with something to search for."""


@dataclass(frozen=True)
class Answer:
    """What the server made of one query: the translation, or why there is none."""

    text: str | None
    reason: str = ""


def parse_answer(content: Any, finish_reason: Any, query: str, max_chars: int) -> str:
    """The translation in a chat answer, or :class:`Unusable` saying why not."""
    if not isinstance(content, str):
        raise Unusable("no text in the answer")
    text = _THINK_BLOCK.sub(" ", content)
    if "</think>" in text:  # the opening tag was in the prompt (a template that adds it)
        text = text.rsplit("</think>", 1)[1]
    if "<think>" in text:  # thinking that never ended: there is no answer after it
        text = text.split("<think>", 1)[0]
    lines = [line.strip() for line in text.splitlines()]
    first = next((i for i, line in enumerate(lines) if line), None)
    if first is None:
        raise Unusable("empty answer")
    line = lines[first]
    complete = finish_reason == "stop" or first < len(lines) - 1
    if not complete:
        raise Unusable(f"cut off at max_tokens (finish_reason {finish_reason!r})")
    for _ in range(2):  # «"Translation: "wireless mouse""» -> wireless mouse
        line = _LABEL.sub("", line.strip().strip(_QUOTES).strip())
    line = clean(line.rstrip("."), max_chars)
    if not line or not any(ch.isalnum() for ch in line):
        raise Unusable("nothing to search for in the answer")
    if "\ufffd" in line:
        raise Unusable("broken characters in the answer")
    if _CJK_OR_HANGUL.search(line):
        raise Unusable("the answer is not English")
    if _REFUSAL.match(line):
        raise Unusable("the model declined")
    if len(line) > 4 * len(query) + 40:
        raise Unusable(f"the answer is much longer than the query ({len(line)} characters)")
    return line


class LlmTranslator:
    """See the module docstring. Thread-safe; never raises for text input.

    ``url`` is the vLLM server's base URL (without ``/v1``), ``model`` the served model
    name (``--served-model-name``, else what it was started with). ``timeout_s`` bounds
    connecting and each wait for the answer; there are no retries (a search is waiting,
    and the chain has the dictionary to fall back on).
    """

    backend = "llm"

    def __init__(
        self,
        url: str,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 2.0,
        cache_size: int = 10_000,
        max_chars: int = MAX_CHARS_DEFAULT,
        *,
        max_tokens: int = MAX_TOKENS,
        confidence: float = CONFIDENCE,
        catalog_language: str = CATALOG_LANGUAGE,
        detector: Any = None,
        retries: int = 0,
    ) -> None:
        if not model:
            raise ValueError("LlmTranslator needs the served model's name")
        self.url = url.rstrip("/")
        self.model = model
        self.timeout_s = timeout_s
        self.max_chars = max_chars
        self.max_tokens = max_tokens
        self.confidence = confidence
        self.catalog_language = catalog_language
        self.client = VllmClient(self.url, api_key or "", timeout_s, retries)
        self._cache: LRU[tuple[str | None, str], Answer] = LRU(cache_size)
        self._detector = LazyDetector(detector)
        self._lock = threading.Lock()
        #: requests sent to the server (cache misses), for tests and metrics
        self.calls = 0

    # ---- the request ------------------------------------------------------------------
    def request_body(self, text: str) -> dict[str, Any]:
        """The chat-completions request for a (cleaned) query: only the query varies."""
        return {
            "model": self.model,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": text},
            ],
            "temperature": 0,
            "max_tokens": min(self.max_tokens, 24 + 2 * len(text)),
            "stop": list(STOP),
            "n": 1,
            "stream": False,
            "chat_template_kwargs": {"enable_thinking": False},
        }

    def _ask(self, text: str) -> Answer:
        """One round trip. :class:`BackendError` when the server could not be asked."""
        with self._lock:
            self.calls += 1
        data = self.client.post(CHAT_PATH, self.request_body(text))
        try:
            choice = data["choices"][0]
            content = choice["message"]["content"]
            finish = choice.get("finish_reason")
        except (KeyError, IndexError, TypeError) as exc:
            raise BackendError(f"{CHAT_PATH} answered without choices[0].message") from exc
        try:
            return Answer(parse_answer(content, finish, text, self.max_chars))
        except Unusable as exc:
            log.info("translation: the LLM's answer %r is unusable: %s", content, exc)
            return Answer(None, str(exc))

    # ---- the protocol -----------------------------------------------------------------
    def detect(self, text: str) -> str | None:
        return self._detector.detect(text)

    def translate(self, query: str, language: str | None = None) -> Translation:
        return guarded(self._translate, query, language, self.max_chars, "llm")

    def _translate(self, query: str, language: str | None) -> Translation:
        text = clean(query, self.max_chars)
        lang = normalise_language(language)
        if not text:
            return Translation(query, lang, "", (), 0.0, self.backend)
        if lang is None:
            lang = self.detect(text)
        if lang == self.catalog_language:
            return Translation(query, lang, text, (), 1.0, "passthrough")
        key = (lang, text)
        hit, answer = self._cache.get(key)
        notes: tuple[str, ...] = ("cached",) if hit else ()
        if answer is None:
            try:
                answer = self._ask(text)
            except BackendError as exc:  # not cached: a server that comes back is asked
                log.warning("translation: the LLM server failed (%s); the query is kept", exc)
                return Translation(query, lang, text, (), 0.0, self.backend, (str(exc),))
            self._cache.put(key, answer)
        if answer.text is None:
            return Translation(query, lang, text, (), 0.0, self.backend, (*notes, answer.reason))
        term = Term(text, answer.text, "llm", self.confidence)
        return Translation(query, lang, answer.text, (term,), self.confidence, self.backend, notes)

    # ---- operations -------------------------------------------------------------------
    def server_info(self) -> dict[str, Any]:
        """vLLM's version and served models (for a start-up check); :class:`BackendError`
        when the server does not answer or does not serve ``model``."""
        version = str(self.client.get("/version").get("version", ""))
        served: Sequence[Any] = self.client.get("/v1/models").get("data") or []
        names = [str(m.get("id")) for m in served if isinstance(m, dict)]
        if self.model not in names:
            raise BackendError(f"the vLLM server at {self.url} serves {names}, not {self.model!r}")
        return {"version": version, "model": self.model, "url": self.url}

    def cache_size(self) -> int:
        return len(self._cache)

    def close(self) -> None:
        self.client.close()
