"""Pooling: the unjudged top-k of chosen configurations out as a sheet for raters, and
their ratings back in as a judgment file.

Judgments are pooled from the engine a shop used before, so a new method meets unjudged
products and is punished for them. The fix is the one TREC uses: rate the union of the
new runs' top k. ``export_pool`` writes one row per unjudged (query id, product) pair --
deduplicated over configurations and languages, with the best rank it reached, where it
was seen, and the product's title for the rater -- and an empty ``rating`` column;
``import_ratings`` reads the filled sheet back (blank ratings are skipped) and writes a
JSONL judgment file to pass to the evaluation beside the existing ones.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluation.data import DataError, Qrels, Query, read_judgments

COLUMNS = (
    "query_id",
    "query",
    "product_id",
    "best_rank",
    "seen_in",
    "title",
    "brand",
    "description",
    "rating",
)


@dataclass(frozen=True)
class PoolRow:
    query_id: str
    query: str
    product_id: str
    best_rank: int
    seen_in: str
    title: str = ""
    brand: str = ""
    description: str = ""


def unjudged_pool(
    runs: Mapping[str, Mapping[str, Sequence[str]]],
    queries: Sequence[Query],
    qrels: Qrels,
    depth: int,
) -> list[PoolRow]:
    """The unjudged (query id, product) pairs in the top ``depth`` of the given runs
    (``{configuration: {query key: ids}}``), best rank first within each query."""
    by_key = {q.key: q for q in queries}
    english = {q.id: q.text for q in queries if q.language == "en"}
    best: dict[tuple[str, str], tuple[int, set[str]]] = {}
    for name, run in runs.items():
        for key, ids in run.items():
            q = by_key.get(key)
            if q is None:
                continue
            for rank, pid in enumerate(ids[:depth], 1):
                if pid in qrels.get(q.id, {}):
                    continue
                old_rank, where = best.get((q.id, pid), (rank, set()))
                where.add(f"{name}@{q.language}")
                best[(q.id, pid)] = (min(old_rank, rank), where)
    texts = {q.id: english.get(q.id, q.text) for q in queries}
    rows = [
        PoolRow(qid, texts[qid], pid, rank, " ".join(sorted(where)))
        for (qid, pid), (rank, where) in best.items()
    ]
    order = {q.id: i for i, q in reversed(list(enumerate(queries)))}
    return sorted(rows, key=lambda r: (order[r.query_id], r.best_rank, r.product_id))


def with_products(
    rows: Sequence[PoolRow], sources: Mapping[str, Mapping[str, Any]]
) -> list[PoolRow]:
    """Rows with title, brand and the start of the description (English when present)."""

    def text(src: Mapping[str, Any], field: str) -> str:
        value = src.get(field)
        if isinstance(value, dict):
            value = value.get("en") or next(iter(value.values()), "")
        return " ".join(str(value or "").split())

    out = []
    for r in rows:
        src = sources.get(r.product_id, {})
        out.append(
            PoolRow(
                r.query_id,
                r.query,
                r.product_id,
                r.best_rank,
                r.seen_in,
                text(src, "title"),
                text(src, "brand"),
                text(src, "description")[:300],
            )
        )
    return out


def export_pool(rows: Sequence[PoolRow], path: Path, note: str = "") -> None:
    """The rating sheet (CSV, UTF-8): a ``#`` note line first when given."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        if note:
            fh.write(f"# {note}\n")
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        for r in rows:
            w.writerow(
                [
                    r.query_id,
                    r.query,
                    r.product_id,
                    r.best_rank,
                    r.seen_in,
                    r.title,
                    r.brand,
                    r.description,
                    "",
                ]
            )


def import_ratings(sheet: Path, out: Path, source: str | None = None) -> int:
    """Read a rating sheet (blank ratings skipped) and write its ratings as JSONL
    judgments; returns how many. Ratings must be non-negative integers."""
    got = read_judgments([sheet])
    queries: dict[str, str] = {}
    with sheet.open(encoding="utf-8-sig", newline="") as fh:
        lines = [line for line in fh if not line.startswith("#")]
    for row in csv.DictReader(lines):
        if row.get("query_id") and row.get("query"):
            queries.setdefault(row["query_id"], row["query"])
    if got.conflicts:
        raise DataError(f"{sheet}: {got.conflicts} pairs are rated twice with different ratings")
    out.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with out.open("w", encoding="utf-8") as fh:
        for qid, docs in got.qrels.items():
            for pid, gain in docs.items():
                record = {
                    "query_id": qid,
                    "query": queries.get(qid, ""),
                    "product_id": pid,
                    "rating": gain,
                    "source": source or f"pool:{sheet.name}",
                }
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
                n += 1
    return n
