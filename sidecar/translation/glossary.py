"""The user-extensible glossary: ``language<TAB>term<TAB>catalog term`` rows, matched before
any dictionary (longest match wins; a tie goes to the glossary). One file ships with the
package (consumer electronics, written from domain knowledge); more can be layered on."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

from sidecar.translation.stopwords import is_stopword
from sidecar.translation.text import Unit, clean, units

log = logging.getLogger("sidecar.translation")

DEFAULT_GLOSSARY = Path(__file__).resolve().parent / "glossary" / "electronics.tsv"


class Glossary:
    def __init__(self, rows: Iterable[tuple[str, str, str]] = ()):
        self._entries: dict[str, dict[tuple[str, ...], str]] = {}
        self._max: dict[str, int] = {}
        for lang, term, target in rows:
            self.add(lang, term, target)

    def add(self, language: str, term: str, target: str) -> None:
        seq = units(clean(term, 200), language)
        key = tuple(u.key for u in seq)
        target = " ".join(clean(target, 200).split())
        if not key or not target:
            raise ValueError(f"empty glossary term or target: {term!r} -> {target!r}")
        table = self._entries.setdefault(language, {})
        table[key] = target
        # "funda para móvil" also matches "funda móvil" and "funda de móvil"
        compact = tuple(u.key for u in seq if not is_stopword(u.text, language))
        if len(compact) >= 2 and compact != key:
            table.setdefault(compact, target)
        self._max[language] = max(self._max.get(language, 0), len(key))

    def __len__(self) -> int:
        return sum(len(v) for v in self._entries.values())

    def languages(self) -> dict[str, int]:
        return {lang: len(v) for lang, v in sorted(self._entries.items())}

    def match(self, language: str, seq: Sequence[Unit], start: int) -> tuple[int, str] | None:
        """``(number of units, catalog term)`` of the longest entry at ``start``. A Latin word
        matches only whole (an entry never ends inside a word of the query)."""
        table = self._entries.get(language)
        if not table:
            return None
        longest = min(self._max[language], len(seq) - start)
        best: tuple[int, str] | None = None
        for n in range(longest, 0, -1):
            hit = table.get(tuple(u.key for u in seq[start : start + n]))
            if hit is not None:
                best = (n, hit)
                break
        if is_stopword(seq[start].text, language):
            return best
        # the same with the query's function words skipped
        content = [j for j in range(start, len(seq)) if not is_stopword(seq[j].text, language)]
        for n in range(min(self._max[language], len(content)), 1, -1):
            hit = table.get(tuple(seq[j].key for j in content[:n]))
            if hit is not None:
                used = content[n - 1] - start + 1
                if best is None or used > best[0]:
                    best = (used, hit)
                break
        return best

    @classmethod
    def load(cls, paths: Iterable[str | Path] = (DEFAULT_GLOSSARY,)) -> Glossary:
        """Later files override earlier ones; a bad row is logged with its line and skipped."""
        g = cls()
        for path in paths:
            with Path(path).open(encoding="utf-8") as fh:
                for n, line in enumerate(fh, 1):
                    line = line.rstrip("\n")
                    if not line.strip() or line.lstrip().startswith("#"):
                        continue
                    parts = line.split("\t")
                    if len(parts) != 3:
                        log.warning("%s:%d: expected 3 tab-separated fields; skipped", path, n)
                        continue
                    try:
                        g.add(parts[0].strip(), parts[1], parts[2])
                    except ValueError as exc:
                        log.warning("%s:%d: %s; skipped", path, n, exc)
        return g
