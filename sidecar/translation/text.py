"""Text handling shared by every backend: cleaning of untrusted input, the catalog tokeniser
(the one the vocabulary and the sense choice use) and the query tokeniser (script runs)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

#: Latin-script catalog tokens: model numbers and brands survive whole ("tn-2110", "m185",
#: "startech.com", "usb-c", "802.11ac"); a trailing joiner is not part of the token.
_CATALOG_TOKEN = re.compile(r"[^\W_]+(?:[-.+/][^\W_]+)*")
#: a longer query is cut here (characters, after cleaning)
MAX_CHARS_DEFAULT = 256
_HAS_DIGIT = re.compile(r"\d")
_CJK = (
    "\u3040-\u30ff"  # hiragana, katakana (with the prolonged sound mark ー)
    "\u31f0-\u31ff"  # katakana phonetic extensions
    "\u3400-\u4dbf"  # CJK extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\uf900-\ufaff"  # compatibility ideographs
    "\u3005"  # 々 iteration mark
)
_CJK_CHAR = re.compile(f"[{_CJK}]")
#: a query token: a CJK run, or a Latin/other-script word run with the catalog's joiners
_WORD_CHAR = f"(?:(?![{_CJK}])[^\\W_])"
_QUERY_TOKEN = re.compile(f"[{_CJK}]+|{_WORD_CHAR}+(?:[-.+/]{_WORD_CHAR}+)*")


def clean(text: str, max_chars: int) -> str:
    """NFKC (full-width Latin becomes ASCII), no control, format-less surrogate or private-use
    characters, whitespace collapsed, at most ``max_chars`` characters. Never raises."""
    if not isinstance(text, str):
        text = str(text)
    # a lone surrogate cannot be encoded; drop those before normalising
    text = "".join(ch for ch in text[: max_chars * 4] if not 0xD800 <= ord(ch) <= 0xDFFF)
    text = unicodedata.normalize("NFKC", text)
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cs", "Co", "Cn", "Zl", "Zp"):
            out.append(" ")
        elif cat == "Cf" and ch not in "\u200d":  # keep ZWJ inside emoji sequences
            continue
        else:
            out.append(ch)
    text = " ".join("".join(out).split())
    if len(text) > max_chars:
        cut = text[:max_chars]
        # never end on half a word (a cut model number would still match something)
        text = cut.rsplit(" ", 1)[0] if text[max_chars] != " " and " " in cut else cut
    return text.rstrip()


def catalog_tokens(text: str) -> list[str]:
    """Lower-cased tokens of catalog (English) text, as the vocabulary counts them."""
    return _CATALOG_TOKEN.findall(text.lower())


def has_digit(token: str) -> bool:
    return _HAS_DIGIT.search(token) is not None


def is_cjk(token: str) -> bool:
    return _CJK_CHAR.match(token) is not None


def singular(word: str) -> str:
    """A crude English singular, enough to match "headphones" with "headphone" in the
    catalog's counts (the catalog's BM25 stems; the vocabulary does not)."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


@dataclass(frozen=True)
class QueryToken:
    text: str
    #: "cjk" (Han/kana run), "latin" (letters of any alphabetic script, maybe with digits)
    kind: str
    start: int


def query_tokens(text: str) -> list[QueryToken]:
    """Script runs of a cleaned query; punctuation, symbols and emoji separate tokens."""
    out = []
    for m in _QUERY_TOKEN.finditer(text):
        tok = m.group(0)
        out.append(QueryToken(tok, "cjk" if is_cjk(tok) else "latin", m.start()))
    return out


def fold(word: str) -> str:
    """Lower case without accents: "Ratón" and "raton" are one glossary key."""
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def match_key(word: str, language: str | None) -> str:
    """The form a glossary compares: folded, with a plural or agreement ending off, the same
    way on both sides ("cargadores" finds "cargador", "câbles" "câble", "noire" "noir",
    "Tastaturen" "Tastatur", "kabellose" "kabellos")."""
    w = fold(word)
    if language in ("es", "fr"):
        if len(w) > 3 and w[-1] in ("sx" if language == "fr" else "s"):
            w = w[:-1]
        if len(w) > 3 and w.endswith("e"):
            w = w[:-1]
    elif language == "de":
        for ending in ("en", "em", "er", "es", "e", "n"):
            if len(w) > len(ending) + 3 and w.endswith(ending):
                return w[: -len(ending)]
    return w


@dataclass(frozen=True)
class Unit:
    """One step of matching: a Latin-script word, or one CJK character."""

    text: str
    key: str
    kind: str
    #: index of the query token it belongs to (CJK characters of one run share it)
    token: int


def units(text: str, language: str | None) -> list[Unit]:
    out: list[Unit] = []
    for i, tok in enumerate(query_tokens(text)):
        if tok.kind == "cjk":
            out.extend(Unit(ch, ch, "cjk", i) for ch in tok.text)
        else:
            out.append(Unit(tok.text, match_key(tok.text, language), "latin", i))
    return out


def normalise_language(language: str | None) -> str | None:
    """``"zh-CN"``, ``"ZH_cn"`` -> ``"zh"``; ``None`` or blank -> ``None``."""
    if language is None:
        return None
    code = language.strip().lower().replace("_", "-").split("-")[0]
    return code or None
