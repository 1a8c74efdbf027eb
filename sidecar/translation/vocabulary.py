"""The catalog's own English words: document frequencies (what the catalog says, so what BM25
can find), the brand tokens, and optionally a USE embedding of the frequent words (the targets
of the word-neighbour step). Built by a pure function; saved as one ``.npz``."""

from __future__ import annotations

import json
import logging
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sidecar.translation.text import catalog_tokens, singular

log = logging.getLogger("sidecar.translation")

#: words -> (n, dim) L2-normalised float32 rows
Embedder = Callable[[Sequence[str]], np.ndarray]
_WORD = re.compile(r"[a-z][a-z-]*[a-z]")
FORMAT_VERSION = 1


@dataclass
class Vocabulary:
    df: dict[str, int]
    n_docs: int
    brands: frozenset[str] = frozenset()
    #: the words that :attr:`embeddings` rows stand for (neighbour targets)
    embedded_words: tuple[str, ...] = ()
    embeddings: np.ndarray | None = field(default=None, repr=False)

    def __contains__(self, word: str) -> bool:
        return self.count(word) > 0

    def count(self, word: str) -> int:
        """Document frequency of ``word``, or of its singular/plural form when it is absent."""
        word = word.lower()
        n = self.df.get(word, 0)
        if n:
            return n
        s = singular(word)
        if s != word:
            return self.df.get(s, 0)
        return max(self.df.get(word + "s", 0), self.df.get(word + "es", 0))

    def idf(self, word: str) -> float:
        n = self.count(word)
        return math.log(1 + (self.n_docs - n + 0.5) / (n + 0.5))

    def is_brand(self, word: str) -> bool:
        return word.lower() in self.brands

    # ---- file format -------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        words = sorted(self.df)
        arrays: dict[str, Any] = {
            "version": np.array(FORMAT_VERSION),
            "words": np.array(words, dtype=str),
            "df": np.array([self.df[w] for w in words], dtype=np.int32),
            "n_docs": np.array(self.n_docs),
            "brands": np.array(sorted(self.brands), dtype=str),
            "embedded_words": np.array(self.embedded_words, dtype=str),
        }
        if self.embeddings is not None:
            arrays["embeddings"] = self.embeddings.astype(np.float16)
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(tmp, **arrays)
        tmp.replace(path)  # never half-written

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        with np.load(Path(path), allow_pickle=False) as z:
            version = int(z["version"])
            if version != FORMAT_VERSION:
                raise ValueError(f"{path}: vocabulary format {version}, expected {FORMAT_VERSION}")
            words = [str(w) for w in z["words"]]
            emb = z["embeddings"].astype(np.float32) if "embeddings" in z.files else None
            return cls(
                df=dict(zip(words, (int(x) for x in z["df"]), strict=True)),
                n_docs=int(z["n_docs"]),
                brands=frozenset(str(b) for b in z["brands"]),
                embedded_words=tuple(str(w) for w in z["embedded_words"]),
                embeddings=emb,
            )


def neighbour_targets(df: dict[str, int], min_df: int = 2, max_words: int = 20_000) -> list[str]:
    """The words worth embedding: alphabetic, 3+ letters, seen in ``min_df`` documents, the
    most frequent first (model numbers and one-off tokens make poor translations)."""
    words = [w for w, n in df.items() if n >= min_df and len(w) >= 3 and _WORD.fullmatch(w)]
    words.sort(key=lambda w: (-df[w], w))
    return words[:max_words]


def build_vocabulary(
    texts: Iterable[str],
    brands: Iterable[str] = (),
    embedder: Embedder | None = None,
    embed_min_df: int = 2,
    embed_max_words: int = 20_000,
    batch_size: int = 256,
) -> Vocabulary:
    """One text per product (title, brand, description in the catalog's language).
    ``brands``: the catalog's brand names, whose tokens always pass through untranslated.
    ``embedder``: when given, the frequent words are embedded for the neighbour step."""
    df: Counter[str] = Counter()
    n = 0
    for text in texts:
        n += 1
        df.update(set(catalog_tokens(text or "")))
    brand_tokens = frozenset(t for b in brands if b for t in catalog_tokens(b))
    vocab = Vocabulary(df=dict(df), n_docs=n, brands=brand_tokens)
    if embedder is not None:
        embed_vocabulary(vocab, embedder, embed_min_df, embed_max_words, batch_size)
    return vocab


def embed_vocabulary(
    vocab: Vocabulary,
    embedder: Embedder,
    min_df: int = 2,
    max_words: int = 20_000,
    batch_size: int = 256,
) -> None:
    words = neighbour_targets(vocab.df, min_df, max_words)
    rows = [
        np.asarray(embedder(words[i : i + batch_size])) for i in range(0, len(words), batch_size)
    ]
    emb = np.vstack(rows).astype(np.float32) if rows else np.zeros((0, 512), np.float32)
    emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    vocab.embedded_words = tuple(words)
    vocab.embeddings = emb


def product_text(product: dict[str, Any]) -> str:
    """The text a product contributes: title, brand and description (what BM25 searches)."""
    parts = (product.get("title"), product.get("brand"), product.get("description"))
    return " ".join(p for p in parts if isinstance(p, str) and p)


def read_catalog(path: str | Path) -> Iterator[dict[str, Any]]:
    """Products of a JSONL feed; a bad line is logged with its number and skipped."""
    with Path(path).open(encoding="utf-8") as fh:
        for i, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                log.warning("%s:%d: not JSON (%s); skipped", path, i, exc.msg)
                continue
            if isinstance(obj, dict):
                yield obj
            else:
                log.warning("%s:%d: not a JSON object; skipped", path, i)


def build_vocabulary_from_catalog(
    path: str | Path, embedder: Embedder | None = None, **kwargs: Any
) -> Vocabulary:
    products = list(read_catalog(path))
    return build_vocabulary(
        (product_text(p) for p in products),
        brands=(p.get("brand") or "" for p in products),
        embedder=embedder,
        **kwargs,
    )
