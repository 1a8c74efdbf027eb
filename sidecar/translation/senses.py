"""Choosing among a dictionary entry's senses the words the catalog actually uses.

A gloss is cleaned (no part-of-speech or domain tags, no "to " of verbs, no cross references),
then scored: every content word present in the catalog first, then glosses of one or two
words, then the dictionary's own order, with a small bonus for words the catalog uses often.
So 充电宝's "portable charger" beats "mobile power pack", Apertium's "headphones" for
auriculares beats the untranslated "auricular", and a gloss the catalog never uses is dropped."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sidecar.translation.text import catalog_tokens
from sidecar.translation.vocabulary import Vocabulary

#: English function words: never a translation of their own, never scored
ENGLISH_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "to",
        "for",
        "and",
        "or",
        "with",
        "without",
        "in",
        "on",
        "at",
        "by",
        "from",
        "as",
        "is",
        "are",
        "be",
        "been",
        "being",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "one",
        "one's",
        "oneself",
        "sb",
        "sth",
        "someone",
        "something",
        "etc",
        "e.g",
        "i.e",
        "esp",
        "lit",
        "fig",
        "also",
        "not",
        "no",
        "very",
        "into",
        "onto",
        "up",
        "out",
        "off",
        "over",
    ]
)
_SKIP_PREFIXES = (
    "cl:",
    "variant of",
    "old variant",
    "see ",
    "see also",
    "surname",
    "abbr.",
    "abbr ",
    "also pr.",
    "also written",
    "used in",
    "erhua variant",
    "japanese variant",
    "taiwan pr.",
    "(archaic)",
    "(old)",
    "(obsolete)",
    "(dialect)",
    "(literary)",
)
_PARENS = re.compile(r"\([^)]*\)|\[[^\]]*\]|\{[^}]*\}|<[^>]*>")
_LEADING = re.compile(r"^(?:a pair of|a set of|to|an|a|the|be)\s+")


def clean_gloss(gloss: str) -> str | None:
    """The searchable words of one gloss, or None for a cross reference / classifier."""
    g = gloss.strip().lower()
    if not g or g.startswith(_SKIP_PREFIXES):
        return None
    g = _PARENS.sub(" ", g)
    g = g.replace("…", " ").replace('"', " ")
    g = " ".join(g.split())
    for _ in range(2):
        g = _LEADING.sub("", g)
    if not g or len(g.split()) > 5:
        return None
    return g


@dataclass(frozen=True)
class Sense:
    #: the catalog words of the chosen gloss, space separated
    text: str
    #: share of the gloss's content words the catalog has
    coverage: float
    score: float
    gloss: str


def score_glosses(glosses: Sequence[str], vocab: Vocabulary) -> list[Sense]:
    """Every usable gloss as a :class:`Sense`, best first."""
    out: list[Sense] = []
    seen: set[str] = set()
    rank = 0
    for gloss in glosses:
        for piece in gloss.split("/") if "/" in gloss else [gloss]:
            c = clean_gloss(piece)
            if c is None or c in seen:
                continue
            seen.add(c)
            words = [w for w in catalog_tokens(c) if w not in ENGLISH_STOPWORDS]
            if not words:
                continue
            counts = [vocab.count(w) for w in words]
            present = [w for w, n in zip(words, counts, strict=True) if n > 0]
            coverage = len(present) / len(words)
            freq = sum(min(1.0, math.log1p(n) / math.log1p(1000)) for n in counts) / len(words)
            # two-word compounds are ordinary product nouns ("mobile phone", "power bank");
            # longer glosses are mostly descriptions ("move electric power source")
            extra = len(words) - 1
            length = 0.02 * extra + 0.15 * max(0, extra - 1)
            score = coverage + 0.1 * freq - 0.03 * min(rank, 10) - length
            out.append(Sense(" ".join(present), coverage, round(score, 4), c))
            rank += 1
    out.sort(key=lambda s: -s.score)
    return out


def choose_sense(glosses: Sequence[str], vocab: Vocabulary) -> Sense | None:
    """The best gloss the catalog knows (coverage > 0), or None."""
    for sense in score_glosses(glosses, vocab):
        if sense.coverage > 0 and sense.text:
            return sense
    return None
