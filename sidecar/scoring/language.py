"""Query language detection: py3langid (its model ships in the wheel, BSD-3-Clause),
restricted to the detectable languages of ``sidecar.languages``, with Unicode script rules
first (kana means Japanese, Hangul Korean, Han without kana Chinese)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from sidecar.languages import DETECTABLE_CODES, SCRIPT_ONLY_CODES


def script_language(text: str) -> str | None:
    kana = han = hangul = 0
    for ch in text:
        cp = ord(ch)
        if 0x3040 <= cp <= 0x30FF or 0x31F0 <= cp <= 0x31FF:
            kana += 1
        elif 0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF:
            han += 1
        elif 0xAC00 <= cp <= 0xD7AF:
            hangul += 1
    if kana:
        return "ja"
    if hangul:
        return "ko"
    if han:
        return "zh"
    return None


class LanguageDetector:
    """Thread-safe; the model loads on first use (about 0.7 s), never at import."""

    def __init__(self, languages: Sequence[str] = DETECTABLE_CODES, min_confidence: float = 0.5):
        self.languages = list(languages)
        self.min_confidence = min_confidence
        self._ident: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        with self._lock:
            if self._ident is None:
                from py3langid.langid import MODEL_FILE, LanguageIdentifier

                ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
                ident.set_languages([x for x in self.languages if x not in SCRIPT_ONLY_CODES])
                self._ident = ident

    def detect(self, text: str) -> tuple[str | None, float]:
        """``(language, confidence)``; ``(None, p)`` when unsure."""
        by_script = script_language(text)
        if by_script is not None:
            return (by_script, 1.0) if by_script in self.languages else (None, 1.0)
        if not any(ch.isalpha() for ch in text):
            return None, 0.0
        self.load()
        lang, prob = self._ident.classify(text)
        return (str(lang), float(prob)) if prob >= self.min_confidence else (None, float(prob))
