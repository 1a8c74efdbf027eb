"""The query-translation protocol: every backend (dictionaries + catalog, word neighbours, a
future LLM server) returns the same :class:`Translation`, so they chain and swap freely."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from threading import Lock
from typing import Any, Generic, Literal, Protocol, TypeVar, runtime_checkable

from sidecar.languages import DEFAULT
from sidecar.translation.text import clean, normalise_language

log = logging.getLogger("sidecar.translation")

Origin = Literal["glossary", "dictionary", "neighbour", "kept", "llm"]
#: how much a term of each origin is trusted, for :attr:`Translation.confidence`
ORIGIN_WEIGHT: dict[str, float] = {
    "glossary": 1.0,
    "dictionary": 0.8,
    "neighbour": 0.5,
    "kept": 0.0,  # a kept token counts as resolved only when the catalog knows it (see below)
    "llm": 0.9,  # the whole query, translated by a chat model (sidecar.translation.llm)
}
CATALOG_LANGUAGE = DEFAULT


@dataclass(frozen=True)
class Term:
    source: str
    target: str
    origin: Origin
    #: in [0, 1]: how much this one term is trusted
    weight: float = 1.0


@dataclass(frozen=True)
class Translation:
    original: str
    #: given, or detected; None when neither
    language: str | None
    #: the query in the catalog's language, ready for BM25
    text: str
    terms: tuple[Term, ...] = ()
    confidence: float = 0.0
    backend: str = ""
    notes: tuple[str, ...] = field(default=())

    @property
    def changed(self) -> bool:
        return self.text != self.original


@runtime_checkable
class Translator(Protocol):
    def translate(self, query: str, language: str | None = None) -> Translation: ...


def confidence_of(terms: Sequence[Term]) -> float:
    """Mean weight of the terms (stopwords are not terms); 0 for none."""
    if not terms:
        return 0.0
    return round(min(1.0, max(0.0, sum(t.weight for t in terms) / len(terms))), 4)


class ChainTranslator:
    """Tries its backends in order; the first answer whose confidence reaches
    ``min_confidence`` wins, else the most confident one. A backend that raises (an LLM
    server that is down) is logged and skipped, so the chain never raises for text input."""

    def __init__(self, backends: Sequence[Translator], min_confidence: float = 0.6):
        if not backends:
            raise ValueError("ChainTranslator needs at least one backend")
        self.backends = list(backends)
        self.min_confidence = min_confidence

    def close(self) -> None:
        """Closes every backend that can be closed (the dictionary's Apertium processes)."""
        for backend in self.backends:
            closer = getattr(backend, "close", None)
            if closer is not None:
                closer()

    def translate(self, query: str, language: str | None = None) -> Translation:
        best: Translation | None = None
        for backend in self.backends:
            try:
                result = backend.translate(query, language)
            except Exception:  # a backend failure must not fail the search
                log.exception("translation backend %s failed", type(backend).__name__)
                continue
            if result.confidence >= self.min_confidence:
                return result
            if best is None or result.confidence > best.confidence:
                best = result
        if best is None:
            return Translation(query, language, query, (), 0.0, "none", ("all backends failed",))
        return best


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(Generic[K, V]):
    """A small thread-safe bounded cache."""

    def __init__(self, size: int = 10_000):
        self.size = size
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = Lock()

    def get_or(self, key: K, make: Callable[[], V]) -> V:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        value = make()
        self.put(key, value)
        return value

    def get(self, key: K) -> tuple[bool, V | None]:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return True, self._data[key]
        return False, None

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


class LazyDetector:
    """The translators' language detection: the detector given, or ``LanguageDetector``
    loaded on first use (once, whichever thread comes first)."""

    def __init__(self, detector: Any | None = None) -> None:
        self._detector = detector
        self._lock = Lock()

    def detect(self, text: str) -> str | None:
        if self._detector is None:
            from sidecar.scoring.language import LanguageDetector

            with self._lock:
                if self._detector is None:
                    self._detector = LanguageDetector()
        lang, _p = self._detector.detect(text)
        return lang if isinstance(lang, str) else None


def guarded(
    translate: Callable[[str, str | None], Translation],
    query: str,
    language: str | None,
    max_chars: int,
    backend: str,
) -> Translation:
    """``translate(query, language)``, or, should it raise (a bug), the query kept: the last
    line of defence, since a search must never fail in a translator."""
    try:
        return translate(query, language)
    except Exception:
        log.exception("%s translation failed; the query is kept", backend)
        text = clean(query if isinstance(query, str) else "", max_chars)
        return Translation(query, normalise_language(language), text, (), 0.0, backend)
