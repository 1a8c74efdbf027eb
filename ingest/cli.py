"""``ingest``: keep a catalog index equal to product feeds.

    ingest FEED [FEED ...] [--delete-missing] [--deletes IDS] [--rebuild [--keep-old]]
           [--format jsonl|csv] [--mapping MAP.json] [--index products]
           [--sidecar URL | --no-embed] [--dead-letter PATH] [--strict] [--quiet] [--json]
           [--vocabulary PATH [--vocabulary-no-embeddings]]

Feeds are JSONL or CSV, optionally gzip-compressed (``.gz``). The accepted product shapes
are those of ``ingest/catalog.py`` (per-language ``title_zh`` / ``title.es`` / nested
``{"title": {"en": ...}}`` fields, or a ``locale`` per row); ``--mapping`` renames a
feed's columns first (``{"SKU": "id", "Name": "title_en"}``).

Exit status: 0 all loaded; 1 done, but something was dead-lettered; 2 stopped
(``--strict``, a bad argument, the cluster or the sidecar unreachable).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cluster_setup.client import add_connection_args, client_from_args
from cluster_setup.failures import one_line
from ingest.feeds import Record, count_lines, load_mapping, read_feed, read_ids
from ingest.loader import SidecarEmbedder
from ingest.sync import (
    DeadLetters,
    Retries,
    StrictStop,
    Sync,
    alias_targets,
    check_mapping,
    cluster_retry,
    ensure_alias,
    next_index,
    swap_alias,
    unfinished_rebuild,
)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="ingest",
        description="Load product feeds into the catalog index: incremental by content "
        "hash, with embeddings from the sidecar, dead letters, deletes and zero-downtime "
        "rebuilds.",
        epilog=__doc__.split("\n\n", 2)[2] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("feeds", nargs="*", type=Path, help="JSONL or CSV feeds (.gz allowed)")
    add_connection_args(ap)
    ap.add_argument(
        "--index",
        default="products",
        help="the alias the catalog lives behind (default %(default)s)",
    )
    ap.add_argument(
        "--sidecar",
        default=os.environ.get("SIDECAR_URL", "http://127.0.0.1:8080"),
        help="sidecar URL for document embeddings (env SIDECAR_URL)",
    )
    ap.add_argument("--sidecar-api-key", default=os.environ.get("SIDECAR_API_KEY"))
    ap.add_argument("--no-embed", action="store_true", help="index without embeddings")
    ap.add_argument("--format", choices=["jsonl", "csv"], help="default: from the file name")
    ap.add_argument("--mapping", type=Path, help="JSON object: feed column -> field name")
    ap.add_argument(
        "--delete-missing",
        action="store_true",
        help="the feeds are a full snapshot: delete indexed products not in them",
    )
    ap.add_argument(
        "--deletes",
        type=Path,
        action="append",
        default=[],
        help="a file of ids to delete (one per line, or JSONL with 'id')",
    )
    ap.add_argument(
        "--rebuild",
        action="store_true",
        help="load a new versioned index, check it, swap the alias atomically",
    )
    ap.add_argument(
        "--keep-old",
        action="store_true",
        help="with --rebuild: keep the previous index (default: delete it)",
    )
    ap.add_argument(
        "--dead-letter",
        type=Path,
        default=Path("ingest-dead-letters.jsonl"),
        help="where unloadable lines go, with line numbers and reasons (default %(default)s)",
    )
    ap.add_argument("--strict", action="store_true", help="stop at the first bad product")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument(
        "--retry-for",
        type=float,
        default=120.0,
        help="how long to wait out an unreachable or restarting cluster, in "
        "seconds, before giving up (default %(default)s)",
    )
    ap.add_argument(
        "--vocabulary",
        type=Path,
        metavar="PATH",
        help="after the load, write the query translator's catalog vocabulary (.npz, for "
        "SIDECAR_QU_VOCABULARY) from the index",
    )
    ap.add_argument(
        "--vocabulary-no-embeddings",
        action="store_true",
        help="write it without word embeddings (no neighbour step; much faster)",
    )
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    ap.add_argument("--json", action="store_true", help="print the summary as JSON")
    return ap


class Progress:
    """tqdm on an interactive terminal; silent in CI, with --quiet or --json."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.bar: Any = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="product", dynamic_ncols=True, file=sys.stderr)

    def __call__(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def records(feeds: list[Path], fmt: str | None, mapping: dict[str, str]) -> Iterator[Record]:
    for feed in feeds:
        yield from read_feed(feed, fmt, mapping)


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.rebuild and not args.feeds:
        raise SystemExit("--rebuild needs the full feed")
    if args.delete_missing and not args.feeds:
        raise SystemExit("--delete-missing needs the full feed")
    if not args.feeds and not args.deletes:
        raise SystemExit("nothing to do: give feeds and/or --deletes")
    for path in [*args.feeds, *args.deletes]:
        if not path.exists():
            raise SystemExit(f"{path}: no such file")
    mapping = load_mapping(args.mapping)
    retries = Retries()
    client = client_from_args(args, retry=cluster_retry(args.retry_for, retries))
    embedder = None
    if not args.no_embed:
        embedder = SidecarEmbedder(args.sidecar, args.sidecar_api_key)
        try:
            _ = embedder.model
        except OSError as exc:
            raise SystemExit(
                f"the sidecar at {args.sidecar} does not answer ({exc}); start it "
                "or pass --no-embed"
            ) from None
    interactive = sys.stderr.isatty() and not (args.quiet or args.json or os.environ.get("CI"))
    total = sum(count_lines(f) for f in args.feeds) if interactive else 0
    progress = Progress(total, interactive)
    dead = DeadLetters(args.dead_letter)
    sync = Sync(
        client,
        args.index,
        embedder,
        dead,
        strict=args.strict,
        progress=progress,
        batch_size=args.batch_size,
    )
    started = time.monotonic()
    try:
        if args.rebuild:
            old = alias_targets(client, args.index)
            target = unfinished_rebuild(client, args.index) or next_index(client, args.index)
            if not client.indices.exists(index=target):
                client.indices.create(index=target)
            check_mapping(client, target)
            sync.load(
                records(args.feeds, args.format, mapping),
                target,
                reuse_from=old[0] if old else None,
            )
            sync.delete_missing(target)  # a resumed rebuild may hold products since removed
            client.indices.refresh(index=target)
            count = client.count(index=target)["count"]
            valid = sync.summary.written + sync.summary.unchanged
            if count != valid:
                raise SystemExit(
                    f"rebuild check failed: {target} holds {count} products, "
                    f"the feed has {valid} valid ones; the alias was not moved"
                )
            swap_alias(client, args.index, target, old)
            sync.summary.swapped_from = old
            if not args.keep_old:
                for index in old:
                    client.indices.delete(index=index)
        else:
            target = ensure_alias(client, args.index)
            if args.feeds:
                sync.load(records(args.feeds, args.format, mapping), target)
            if args.delete_missing:
                sync.delete_missing(target)
        for path in args.deletes:
            sync.delete(target, [i for _, i in read_ids(path)])
        client.indices.refresh(index=target)
    except StrictStop as exc:
        raise SystemExit(f"stopped (--strict): {exc}") from None
    finally:
        progress.close()
        dead.close()
    sync.summary.index = target
    sync.summary.retries = retries.count
    sync.summary.seconds = round(time.monotonic() - started, 2)
    sync.summary.dead_letter_file = str(args.dead_letter) if dead.count else None
    summary = sync.summary.as_dict()
    if args.vocabulary:
        from ingest.vocabulary import build_from_index

        summary["vocabulary"] = build_from_index(
            client, args.index, args.vocabulary, not args.vocabulary_no_embeddings
        )
    return summary


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with one_line(args.opensearch, args.user):
            summary = run(args)
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(f"ingest: {exc.code}", file=sys.stderr)
            return 2
        raise
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"{summary['index']} (alias {summary['alias']}): read {summary['read']}, "
            f"written {summary['written']}, unchanged {summary['unchanged']}, "
            f"deleted {summary['deleted']}, dead-lettered {summary['dead_lettered']}, "
            f"embedded {summary['embedded']} in {summary['seconds']}s"
        )
        if summary.get("vocabulary"):
            v = summary["vocabulary"]
            print(f"vocabulary {v['vocabulary']}: {v['words']} words over {v['products']} products")
        if summary["swapped_from"]:
            print(f"alias {summary['alias']} moved from {', '.join(summary['swapped_from'])}")
        if summary["dead_letter_file"]:
            print(f"dead letters: {summary['dead_letter_file']}")
    return 1 if summary["dead_lettered"] else 0


if __name__ == "__main__":
    sys.exit(main())
