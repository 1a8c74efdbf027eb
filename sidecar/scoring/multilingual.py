"""One rerank text per product, in several languages, and how the sidecar picks one.

OpenSearch's rerank processor sends, per hit, the concatenated values of
``context.document_fields`` as one string (no separator, lists joined with spaces,
objects as Java ``toString``). So the index keeps one string field, ``rerank_text``,
that packs each language's text behind a marker::

    [[en]] Logitech M185 wireless optical mouse. Grey. ...
    [[zh]] 罗技 M185 无线光电鼠标 灰色 ...

The sidecar unpacks it and scores the section in the query's language, else English,
else the first one: one pair per product, whatever number of languages it carries. A
reranker that reads one language (the learned ranker reads English: its features match the
query's English translation) gets that section first.
A document without markers is scored as it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from sidecar.languages import DEFAULT

_MARKER = re.compile(r"\[\[([a-z]{2,3}(?:-[A-Za-z]{2,4})?)\]\] ?")


def pack(sections: Mapping[str, str]) -> str:
    """Join ``{lang: text}`` into one rerank text (empty sections dropped)."""
    parts = []
    for lang, text in sections.items():
        clean = _MARKER.sub(" ", text).strip()
        if clean:
            parts.append(f"[[{lang}]] {clean}")
    return "\n".join(parts)


def unpack(text: str) -> dict[str, str] | None:
    """``{lang: text}`` when ``text`` starts with a marker, else ``None``."""
    if not text.lstrip().startswith("[["):
        return None
    pieces = _MARKER.split(text.lstrip())
    # ['', 'en', 'text', 'zh', 'text', ...]
    if len(pieces) < 3 or pieces[0].strip():
        return None
    out: dict[str, str] = {}
    for lang, body in zip(pieces[1::2], pieces[2::2], strict=True):
        body = body.strip()
        if body and lang not in out:
            out[lang] = body
    return out or None


def choose(
    text: str, query_language: str | None, reader_language: str | None = None
) -> tuple[str, str | None]:
    """The text to score for ``query_language`` and the language it is in: the section in
    ``reader_language`` first when the reranker reads one language (the learned ranker:
    English), then the query's, then English, then the first."""
    sections = unpack(text)
    if not sections:
        return text, None
    for lang in (reader_language, query_language, DEFAULT):
        if lang and lang in sections:
            return sections[lang], lang
    lang, body = next(iter(sections.items()))
    return body, lang
