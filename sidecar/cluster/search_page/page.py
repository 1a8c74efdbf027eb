"""What the search page shows: one query, three configurations side by side.

BM25 (the ``translate`` pipeline: the query plus its translation), hybrid (the ``hybrid``
pipeline, which translates the same way) and hybrid + rerank (the ``hybrid-rerank``
pipeline, whose rerank step calls this same sidecar through ML Commons),
each asked for the same depth, so the rerank column can say how far the reranker moved
each product within the hybrid's list.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from cluster_setup import queries
from cluster_setup.pipelines import failed_processors
from sidecar.cluster.client import Cluster, ClusterError

#: shown per column; the searches fetch ``depth`` hits (at least this many)
SHOWN = 10
SOURCE_FIELDS = ["id", "title", "brand", "price", "currency", "image", "languages", "rerank_text"]


@dataclass
class Hit:
    id: str
    rank: int
    score: float
    title: str
    brand: str
    price: str
    image: str
    #: the languages the product's texts are in
    languages: list[str] = field(default_factory=list)
    #: rerank column: hybrid rank minus this rank (> 0: moved up); None: not in the hybrid list
    moved: int | None = None


@dataclass
class Column:
    key: str
    name: str
    pipeline: str | None
    hits: list[Hit] = field(default_factory=list)
    took_ms: float = 0.0
    total: int = 0
    error: str = ""
    note: str = ""


def localized(value: Any, lang: str) -> str:
    """A per-language field (``{"en": ..., "zh": ...}``) in ``lang``, else English, else any."""
    if isinstance(value, dict):
        for key in (lang, "en", *value):
            if value.get(key):
                return str(value[key])
        return ""
    return "" if value is None else str(value)


def price_text(source: dict[str, Any]) -> str:
    price = source.get("price")
    if price is None:
        return ""
    currency = source.get("currency") or ""
    return f"{float(price):,.2f} {currency}".strip()


def to_hit(raw: dict[str, Any], rank: int, lang: str) -> Hit:
    src = raw.get("_source") or {}
    return Hit(
        id=str(raw.get("_id")),
        rank=rank,
        score=float(raw.get("_score") or 0.0),
        title=localized(src.get("title"), lang) or str(raw.get("_id")),
        brand=localized(src.get("brand"), lang),
        price=price_text(src),
        image=str(src.get("image") or ""),
        languages=[str(x) for x in src.get("languages") or []],
    )


def columns_for(text: str, embed_model_id: str, depth: int) -> list[tuple[Column, dict[str, Any]]]:
    hybrid = queries.hybrid_body(text, embed_model_id, size=depth)
    out = [
        (Column("bm25", "BM25", "translate"), queries.bm25_body(text, size=depth)),
        (Column("hybrid", "hybrid", "hybrid"), hybrid),
        (Column("rerank", "hybrid + rerank", "hybrid-rerank"), dict(hybrid)),
    ]
    for _, body in out:
        body["_source"] = SOURCE_FIELDS
    return out


def run(cluster: Cluster, text: str, lang: str, depth: int) -> list[Column]:
    """The three searches, concurrently; a failed one is an error in its column, not a
    failed page."""
    try:
        model_id = cluster.embed_model_id()
    except ClusterError as exc:
        model_id, model_error = "", str(exc)
    else:
        model_error = ""
    plan = columns_for(text, model_id, max(depth, SHOWN))

    def one(item: tuple[Column, dict[str, Any]]) -> Column:
        col, body = item
        if col.key != "bm25" and model_error:  # BM25 needs no embedding model
            col.error = model_error
            return col
        started = time.perf_counter()
        try:
            res = cluster.search(body, col.pipeline, verbose=col.key == "rerank")
        except ClusterError as exc:
            col.error = str(exc)
            return col
        col.took_ms = (time.perf_counter() - started) * 1000
        col.total = int((res.get("hits", {}).get("total") or {}).get("value", 0))
        col.hits = [to_hit(h, i + 1, lang) for i, h in enumerate(res["hits"]["hits"])]
        failed = failed_processors(res)
        if failed:  # the pipeline's ignore_failure kept the hybrid order
            col.note = "rerank failed, hybrid order kept: " + "; ".join(failed)
        return col

    with ThreadPoolExecutor(max_workers=len(plan)) as pool:
        cols = list(pool.map(one, plan))
    by_key = {c.key: c for c in cols}
    hybrid_rank = {h.id: h.rank for h in by_key["hybrid"].hits}
    if not by_key["hybrid"].error:
        for hit in by_key["rerank"].hits:
            before = hybrid_rank.get(hit.id)
            hit.moved = None if before is None else before - hit.rank
    for col in cols:
        col.hits = col.hits[:SHOWN]
    return cols


def as_json(cols: list[Column]) -> list[dict[str, Any]]:
    return [
        {
            "key": c.key,
            "name": c.name,
            "pipeline": c.pipeline,
            "took_ms": round(c.took_ms, 1),
            "total": c.total,
            "error": c.error,
            "note": c.note,
            "hits": [h.__dict__ for h in c.hits],
        }
        for c in cols
    ]
