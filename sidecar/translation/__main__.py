"""``python -m sidecar.translation``: build a catalog vocabulary, or translate queries.

python -m sidecar.translation build-vocabulary --catalog products.jsonl --out vocab.npz
python -m sidecar.translation translate --vocabulary vocab.npz "无线鼠标" "cargador usb"
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m sidecar.translation", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build-vocabulary", help="count the catalog's English words (+ embed)")
    b.add_argument(
        "--catalog", required=True, type=Path, help="products JSONL (title, brand, description)"
    )
    b.add_argument("--out", required=True, type=Path, help="the vocabulary file (.npz)")
    b.add_argument(
        "--no-embeddings",
        action="store_true",
        help="skip the USE word embeddings (no neighbour step)",
    )
    b.add_argument(
        "--embed-min-df", type=int, default=2, help="embed words in at least this many products"
    )
    b.add_argument(
        "--embed-max-words", type=int, default=20_000, help="embed at most this many words"
    )
    t = sub.add_parser("translate", help="translate queries given on the command line")
    t.add_argument("--vocabulary", type=Path, help="a vocabulary file from build-vocabulary")
    t.add_argument("--language", help="the queries' language (detected when absent)")
    t.add_argument(
        "--glossary", type=Path, action="append", default=[], help="an extra glossary TSV"
    )
    t.add_argument("queries", nargs="+")
    return ap


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = build_parser().parse_args(argv)
    if args.command == "build-vocabulary":
        from sidecar.translation.neighbours import UseEmbedder
        from sidecar.translation.vocabulary import build_vocabulary_from_catalog

        t0 = time.perf_counter()
        vocab = build_vocabulary_from_catalog(
            args.catalog,
            embedder=None if args.no_embeddings else UseEmbedder(threads=2),
            embed_min_df=args.embed_min_df,
            embed_max_words=args.embed_max_words,
        )
        vocab.save(args.out)
        print(
            f"{args.out}: {len(vocab.df)} words over {vocab.n_docs} products, "
            f"{len(vocab.embedded_words)} embedded, {args.out.stat().st_size / 1e6:.1f} MB, "
            f"{time.perf_counter() - t0:.1f} s"
        )
        return 0
    from sidecar.translation.dictionary import DictionaryTranslator
    from sidecar.translation.glossary import DEFAULT_GLOSSARY

    tr = DictionaryTranslator(args.vocabulary, glossary_paths=[DEFAULT_GLOSSARY, *args.glossary])
    try:
        for q in args.queries:
            r = tr.translate(q, args.language)
            print(
                json.dumps(
                    {
                        "original": r.original,
                        "language": r.language,
                        "text": r.text,
                        "confidence": r.confidence,
                        "terms": [[t.source, t.target, t.origin] for t in r.terms],
                    },
                    ensure_ascii=False,
                )
            )
    finally:
        tr.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
