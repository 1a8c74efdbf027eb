"""The one table of languages every package uses: the sidecar, ingest, evaluation, benchmarks.

A catalog carries text in the *catalog* languages (per-language fields, packed rerank
sections); the query detector may also name a language that no catalog field holds (Korean
is recognised by its script so that it is reported, not mistaken for Chinese).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Language:
    code: str
    #: for ``{language}`` in an instruction, reports, settings docs
    english: str
    #: for people who read it: the search page's language picker
    native: str
    #: a language a catalog may hold per-language fields in (ingest, search fields)
    catalog: bool = True
    #: py3langid may answer it (script rules answer the CJK ones first)
    detectable: bool = True


LANGUAGES: tuple[Language, ...] = (
    Language("en", "English", "English"),
    Language("zh", "Chinese", "中文"),
    Language("es", "Spanish", "Español"),
    Language("ja", "Japanese", "日本語"),
    Language("fr", "French", "Français"),
    Language("de", "German", "Deutsch"),
    # recognised by its script so that a Korean query is reported as such; no catalog fields
    Language("ko", "Korean", "한국어", catalog=False, detectable=False),
)

BY_CODE: dict[str, Language] = {lang.code: lang for lang in LANGUAGES}
#: codes of the languages a catalog can hold, in the table's order
CATALOG_CODES: tuple[str, ...] = tuple(lang.code for lang in LANGUAGES if lang.catalog)
#: codes py3langid is restricted to
DETECTABLE_CODES: tuple[str, ...] = tuple(lang.code for lang in LANGUAGES if lang.detectable)
#: the language a catalog falls back to when a text has no section in the query's language
DEFAULT = "en"


def english_name(code: str | None, unknown: str = "an unknown language") -> str:
    lang = BY_CODE.get(code or "")
    return lang.english if lang else unknown


def native_name(code: str) -> str:
    lang = BY_CODE.get(code)
    return lang.native if lang else code


#: code -> English name, for tables (``{lang: name}``) such as the evaluation report's
ENGLISH_NAMES: dict[str, str] = {lang.code: lang.english for lang in LANGUAGES}
#: code -> native name of the catalog languages: the search page's language picker
CATALOG_NATIVE_NAMES: dict[str, str] = {
    lang.code: lang.native for lang in LANGUAGES if lang.catalog
}
#: codes recognised by their script alone (never passed to py3langid)
SCRIPT_ONLY_CODES: tuple[str, ...] = tuple(lang.code for lang in LANGUAGES if not lang.detectable)
