"""Product feeds -> the index's documents (pure functions).

Accepted shapes of one product (JSON object; a CSV row becomes one with its headers):

* flat per-language fields: ``title_en``, ``title_zh``, ``description_es``, ``bullets_fr``;
* dotted or nested fields: ``"title.es": "..."`` or ``"title": {"en": "...", "ja": "..."}``;
* one language per row: ``"locale": "fr"`` with plain ``title`` / ``description`` /
  ``bullets`` (the Chorus/Icecat feed is this shape, with ``locale: "en"``).

Besides text: ``id`` (required), ``brand``, ``color``, ``category``, ``price`` (or
``price_cents``), ``currency``, ``image`` (or ``image_url``). ``bullets`` may be a list or
a string.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sidecar.languages import CATALOG_CODES
from sidecar.scoring.multilingual import pack

TEXT_FIELDS = ("title", "description", "bullets")
# Spec bullets ("Label: value") in the texts the bundled e5 model embeds: none; in the rerank
# text: 8. On the Chorus/Icecat dev queries, embedding "title. description" instead of adding 4
# bullets lifts k-NN nDCG@10 from 0.42 to 0.47, and a rerank text with the bullets (another
# view of the product than the k-NN vector's) is what lets the reranker add to the hybrid
# (benchmarks/tune_embed_text.py, benchmarks/tune_rerank.py; README "Evaluation"). Every bullet
# stays indexed for BM25.
EMBED_BULLETS = 0
RERANK_BULLETS = 8
MAX_SECTION_CHARS = 1500


class ProductError(ValueError):
    """A product that cannot be indexed; the message says why."""


@dataclass(frozen=True)
class Product:
    id: str
    doc: dict[str, Any]  # the index document, without the embedding
    embed_texts: dict[str, str]  # language -> passage to embed

    @property
    def languages(self) -> list[str]:
        return list(self.doc["languages"])


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return (
            [v.strip() for v in value.split("|") if v.strip()]
            if "|" in value
            else ([value.strip()] if value.strip() else [])
        )
    if isinstance(value, list):
        return [str(v).strip() for v in value if v is not None and str(v).strip()]
    raise ProductError(f"bullets must be a list or a string, not {type(value).__name__}")


def _text(value: Any, name: str) -> str:
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise ProductError(f"{name} must be a string, not {type(value).__name__}")
    return " ".join(value.split())


def localized(raw: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{field: {lang: value}}`` from any of the accepted shapes."""
    out: dict[str, dict[str, Any]] = {f: {} for f in TEXT_FIELDS}
    locale = raw.get("locale")
    for field in TEXT_FIELDS:
        value = raw.get(field)
        if isinstance(value, Mapping):
            for lang, v in value.items():
                out[field][str(lang)] = v
        elif value is not None:
            if not locale:
                raise ProductError(
                    f"{field} has no language: use {field}_en / {field}.en / a 'locale' field"
                )
            out[field][str(locale)] = value
        for key, v in raw.items():
            for sep in ("_", "."):
                prefix = field + sep
                if key.startswith(prefix) and len(key) > len(prefix):
                    out[field][key[len(prefix) :]] = v
    for field in TEXT_FIELDS:
        unknown = set(out[field]) - set(CATALOG_CODES)
        if unknown:
            raise ProductError(
                f"{field}: unsupported language {sorted(unknown)[0]!r} (use one of "
                f"{', '.join(CATALOG_CODES)})"
            )
    return out


def _price(raw: Mapping[str, Any]) -> float | None:
    if raw.get("price") not in (None, ""):
        value = raw["price"]
        try:
            price = float(value)
        except (TypeError, ValueError):
            raise ProductError(f"price {value!r} is not a number") from None
    elif raw.get("price_cents") not in (None, ""):
        try:
            price = int(raw["price_cents"]) / 100.0
        except (TypeError, ValueError):
            raise ProductError(f"price_cents {raw['price_cents']!r} is not an integer") from None
    else:
        return None
    if price < 0 or price != price:
        raise ProductError(f"price {price} must be a non-negative number")
    return round(price, 2)


def normalize(raw: Mapping[str, Any]) -> Product:
    if not isinstance(raw, Mapping):
        raise ProductError("a product must be a JSON object")
    pid = raw.get("id")
    if pid is None or (isinstance(pid, str) and not pid.strip()):
        raise ProductError("id is missing")
    if not isinstance(pid, (str, int)) or isinstance(pid, bool):
        raise ProductError("id must be a string or an integer")
    pid = str(pid).strip()
    texts = localized(raw)
    titles = {lang: _text(v, f"title_{lang}") for lang, v in texts["title"].items()}
    titles = {lang: v for lang, v in titles.items() if v}
    if not titles:
        raise ProductError("no title in any language")
    descriptions = {
        lang: _text(v, f"description_{lang}") for lang, v in texts["description"].items()
    }
    bullets = {lang: _as_list(v) for lang, v in texts["bullets"].items()}
    brand = _text(raw.get("brand"), "brand") or None
    languages = [lang for lang in CATALOG_CODES if lang in titles or descriptions.get(lang)]
    rerank_sections: dict[str, str] = {}
    embed_texts: dict[str, str] = {}
    for lang in languages:
        title = titles.get(lang, "")
        desc = descriptions.get(lang, "")
        parts = [title, brand or "", desc, *bullets.get(lang, [])[:RERANK_BULLETS]]
        rerank_sections[lang] = " | ".join(p for p in parts if p)[:MAX_SECTION_CHARS]
        passage = [title, desc, *bullets.get(lang, [])[:EMBED_BULLETS]]
        embed_texts[lang] = ". ".join(p for p in passage if p)[:MAX_SECTION_CHARS]
    doc: dict[str, Any] = {
        "id": pid,
        "brand": brand,
        "color": _text(raw.get("color"), "color") or None,
        "category": _text(raw.get("category"), "category") or None,
        "price": _price(raw),
        "currency": _text(raw.get("currency"), "currency")
        or ("USD" if "price_cents" in raw else None),
        "image": _text(raw.get("image") or raw.get("image_url"), "image") or None,
        "languages": languages,
        "title": titles,
        "description": {k: v for k, v in descriptions.items() if v},
        "bullets": {k: " | ".join(v) for k, v in bullets.items() if v},
        "rerank_text": pack(rerank_sections),
    }
    doc["content_hash"] = content_hash(doc)
    return Product(pid, doc, embed_texts)


def content_hash(doc: Mapping[str, Any]) -> str:
    """What decides whether a product must be re-embedded and re-written."""
    body = {k: v for k, v in doc.items() if k not in ("content_hash", "embedding")}
    raw = json.dumps(body, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(raw).hexdigest()


def read_jsonl(lines: Iterable[str]) -> Iterable[tuple[int, Any]]:
    """``(line number, object or ProductError)``: a bad line never stops the others."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, ProductError(f"malformed JSON ({exc.msg})")
