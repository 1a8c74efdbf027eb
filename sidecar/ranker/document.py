"""A product's fields read back from its rerank text (pure).

The catalog writes each language's section as ``title | brand | description | bullet ...``
(``ingest/catalog.py``: parts joined with `` | ``, empty ones dropped, 1500 characters at
most). The brand is optional, so the second part is taken as the brand only when it looks
like one: short, and the title mentions it, or it has at most three words and no spec label.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

SEPARATOR = " | "


@dataclass(frozen=True, slots=True)
class ProductText:
    title: str
    brand: str
    description: str
    bullets: tuple[str, ...]

    @property
    def title_description(self) -> str:
        """The passage both bi-encoders read: ``title. description``, as ``ingest`` embeds a
        product for the k-NN leg (so the index's vectors are these)."""
        return ". ".join(p for p in (self.title, self.description) if p)

    @property
    def lexical(self) -> str:
        return " ".join(p for p in (self.title, self.brand, self.description) if p)


def _looks_like_brand(part: str, title: str) -> bool:
    if not part or len(part) > 40 or ":" in part:
        return False
    if part.lower() in title.lower():
        return True
    return len(part.split()) <= 3 and not any(ch in part for ch in ".,;")


@lru_cache(maxsize=8192)
def parse(section: str) -> ProductText:
    """``section``: one language's rerank text (already localized), or any plain text (then
    all title). Cached: the same documents come back search after search."""
    parts = [p.strip() for p in section.split(SEPARATOR)]
    parts = [p for p in parts if p]
    if not parts:
        return ProductText("", "", "", ())
    title, rest = parts[0], parts[1:]
    brand = ""
    if rest and _looks_like_brand(rest[0], title):
        brand, rest = rest[0], rest[1:]
    description = ""
    if rest and ":" not in rest[0][:40]:
        description, rest = rest[0], rest[1:]
    return ProductText(title, brand, description, tuple(rest))
