"""Keeping an index equal to a feed: incremental by content hash, dead letters, deletes,
and full rebuilds behind an alias.

* Each product's ``content_hash`` covers its indexed content and the embedding model; a
  product whose hash is already in the index is neither re-embedded nor re-written, so a
  re-run of the same feed writes nothing and a run killed midway is finished by running
  it again (writes are by ``_id``: nothing is duplicated).
* A line that cannot be read, a product that fails validation and a document OpenSearch
  rejects go to the dead-letter file with their source line and reason; the run goes on
  (``strict`` stops at the first one instead).
* ``delete_missing`` removes indexed products absent from a full snapshot (ids of
  products that failed validation are kept: bad data never deletes good data).
* ``rebuild`` loads a new versioned index, checks its count, swaps the alias atomically and
  keeps or drops the old index; unchanged products reuse the old index's embeddings.
* While the cluster is unreachable or restarting, the client's requests wait with backoff
  (``cluster_retry``) and are sent again: writes are by ``_id``, so a bulk that was half
  written when the cluster went away is simply written again; nothing is lost or duplicated.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from urllib3.util.retry import Retry

from cluster_setup.client import backoff_retry, retries_within
from ingest.catalog import Product, ProductError, content_hash, normalize
from ingest.feeds import Record
from ingest.loader import batched

BATCH = 128


class StrictStop(RuntimeError):
    """``strict`` was set and a product could not be loaded."""


@dataclass
class Summary:
    read: int = 0
    written: int = 0
    unchanged: int = 0
    deleted: int = 0
    dead_lettered: int = 0
    embedded: int = 0
    retries: int = 0
    index: str = ""
    alias: str = ""
    seconds: float = 0.0
    dead_letter_file: str | None = None
    swapped_from: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class DeadLetters:
    """Append-only JSONL of what could not be loaded; the file is created on first use."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._fh: TextIO | None = None
        self.count = 0

    def add(
        self, source: str, line: int | None, reason: str, pid: str | None = None, record: Any = None
    ) -> None:
        self.count += 1
        if self.path is None:
            return
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("w", encoding="utf-8")
        entry = {"source": source, "line": line, "id": pid, "reason": reason, "record": record}
        self._fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


class Retries:
    """The cluster client's retries while OpenSearch is away: counted for the summary, each
    one reported on stderr (the ``on_retry`` of ``cluster_retry``)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, retry: Retry) -> None:
        self.count += 1
        last = retry.history[-1]
        why = type(last.error).__name__ if last.error else f"HTTP {last.status}"
        print(
            f"ingest: OpenSearch unavailable ({why}); retrying in "
            f"{retry.get_backoff_time():.0f}s",
            file=sys.stderr,
            flush=True,
        )


def cluster_retry(retry_for: float, retries: Retries) -> Retry:
    """The ingest client's retry policy: wait out an unreachable or restarting cluster
    (connection errors, timeouts, 502-504) for about ``retry_for`` seconds."""
    return backoff_retry(retries_within(retry_for), on_retry=retries)


def hash_for(product: Product, embed_model: str | None) -> str:
    doc = dict(product.doc)
    doc["_embed_model"] = embed_model
    doc["_embed_texts"] = product.embed_texts  # what was embedded: a new recipe re-embeds
    return content_hash(doc)


class Sync:
    def __init__(
        self,
        client: Any,
        alias: str,
        embedder: Any | None,
        dead: DeadLetters,
        strict: bool = False,
        progress: Callable[[int], None] | None = None,
        batch_size: int = BATCH,
    ) -> None:
        self.client = client
        self.alias = alias
        self.embedder = embedder
        self.embed_model = getattr(embedder, "model", None) if embedder else None
        self.dead = dead
        self.strict = strict
        self.progress = progress or (lambda n: None)
        self.batch_size = batch_size
        self.summary = Summary(alias=alias)
        self.seen_ids: set[str] = set()

    # -- failures ------------------------------------------------------------------------
    def fail(
        self, source: str, line: int | None, reason: str, pid: str | None = None, record: Any = None
    ) -> None:
        self.dead.add(source, line, reason, pid, record)
        self.summary.dead_lettered = self.dead.count
        if self.strict:
            where = f"{source}:{line}" if line else source
            raise StrictStop(f"{where}: {reason}")

    # -- products --------------------------------------------------------------------------
    def products(self, records: Iterable[Record]) -> Iterator[tuple[Record, Product]]:
        first_line: dict[str, tuple[str, int]] = {}
        for rec in records:
            self.summary.read += 1
            self.progress(1)
            if rec.data is None:
                self.fail(rec.source, rec.line, rec.error or "unreadable", record=rec.raw)
                continue
            pid = rec.data.get("id")
            pid = str(pid).strip() if pid is not None else None
            try:
                product = normalize(rec.data)
            except ProductError as exc:
                if pid:
                    self.seen_ids.add(pid)  # keep the indexed version of a bad update
                self.fail(rec.source, rec.line, str(exc), pid, rec.data)
                continue
            if product.id in first_line:
                src, line = first_line[product.id]
                self.fail(
                    rec.source,
                    rec.line,
                    f"duplicate id {product.id!r} (first on {Path(src).name}:{line})",
                    product.id,
                    rec.data,
                )
                continue
            first_line[product.id] = (rec.source, rec.line)
            self.seen_ids.add(product.id)
            yield rec, product

    def _existing(self, index: str, ids: list[str], with_vectors: bool) -> dict[str, Any]:
        if not ids:
            return {}
        fields = ["content_hash", "embedding"] if with_vectors else ["content_hash"]
        res = self.client.mget(index=index, body={"ids": ids}, params={"_source": ",".join(fields)})
        return {d["_id"]: d["_source"] for d in res["docs"] if d.get("found")}

    def load(self, records: Iterable[Record], index: str, reuse_from: str | None = None) -> None:
        """Write new and changed products of ``records`` into ``index``."""
        self.summary.index = index
        for batch in batched(self.products(records), self.batch_size):
            unchanged, written, rejected = self._load_batch(batch, index, reuse_from)
            self.summary.unchanged += unchanged
            self.summary.written += written
            for rec, pid, reason in rejected:
                self.fail(rec.source, rec.line, f"rejected by OpenSearch: {reason}", pid, rec.data)

    def _load_batch(
        self, batch: list[tuple[Record, Product]], index: str, reuse_from: str | None
    ) -> tuple[int, int, list[tuple[Record, str, str]]]:
        """``(unchanged, written, rejected)`` for one batch; safe to run again."""
        from opensearchpy import helpers

        hashes = {p.id: hash_for(p, self.embed_model) for _, p in batch}
        current = self._existing(index, list(hashes), with_vectors=False)
        todo = [
            (r, p) for r, p in batch if current.get(p.id, {}).get("content_hash") != hashes[p.id]
        ]
        unchanged = len(batch) - len(todo)
        if not todo:
            return unchanged, 0, []
        vectors: dict[str, list[float] | None] = {p.id: None for _, p in todo}
        if self.embedder is not None:
            ids = [p.id for _, p in todo]
            old = self._existing(reuse_from, ids, with_vectors=True) if reuse_from else {}
            fresh = []
            for _, p in todo:
                prev = old.get(p.id, {})
                if prev.get("content_hash") == hashes[p.id] and "embedding" in prev:
                    vectors[p.id] = prev["embedding"]  # a rebuild reuses what it can
                else:
                    fresh.append(p)
            if fresh:
                for p, vec in zip(fresh, self.embedder.product_vectors(fresh), strict=True):
                    vectors[p.id] = vec
                self.summary.embedded += len(fresh)
        by_id = {p.id: (r, p) for r, p in todo}
        actions = []
        for _, p in todo:
            source = dict(p.doc)
            source["content_hash"] = hashes[p.id]
            if vectors[p.id] is not None:
                source["embedding"] = vectors[p.id]
            actions.append({"_op_type": "index", "_index": index, "_id": p.id, "_source": source})
        written = 0
        rejected: list[tuple[Record, str, str]] = []
        for ok, info in helpers.streaming_bulk(
            self.client,
            actions,
            chunk_size=self.batch_size,
            max_retries=8,
            initial_backoff=1,
            max_backoff=30,
            raise_on_error=False,
            raise_on_exception=True,
        ):
            item = next(iter(info.values()))
            if ok:
                written += 1
            elif item.get("status") in (401, 403):  # the user's rights, not this product
                from opensearchpy.exceptions import AuthorizationException

                raise AuthorizationException(item["status"], "security_exception", item)
            else:
                rec, p = by_id[str(item.get("_id"))]
                reason = item.get("error", {})
                if isinstance(reason, dict):
                    reason = f"{reason.get('type')}: {reason.get('reason')}"
                rejected.append((rec, p.id, str(reason)))
        return unchanged, written, rejected

    # -- deletes -----------------------------------------------------------------------------
    def indexed_ids(self, index: str) -> Iterator[str]:
        from opensearchpy import helpers

        for hit in helpers.scan(
            self.client, index=index, query={"_source": False, "query": {"match_all": {}}}
        ):
            yield str(hit["_id"])

    def delete(self, index: str, ids: Iterable[str]) -> None:
        from opensearchpy import helpers

        actions = ({"_op_type": "delete", "_index": index, "_id": i} for i in ids)
        for ok, info in helpers.streaming_bulk(
            self.client, actions, chunk_size=500, max_retries=8, raise_on_error=False
        ):
            item = next(iter(info.values()))
            if ok or item.get("status") == 404:
                self.summary.deleted += 1 if ok else 0
            else:
                self.fail(
                    "delete", None, f"delete failed: {item.get('error')}", str(item.get("_id"))
                )

    def delete_missing(self, index: str) -> None:
        self.client.indices.refresh(index=index)
        missing = [i for i in self.indexed_ids(index) if i not in self.seen_ids]
        self.delete(index, missing)


# -- indices behind an alias ---------------------------------------------------------------------

_VERSION = re.compile(r"-v(\d+)$")


def alias_targets(client: Any, alias: str) -> list[str]:
    """The indices behind ``alias`` (none when it does not exist, or names an index). Asked
    of the alias's own name, not of every index (``GET /_alias/NAME`` needs
    ``indices:admin/aliases/get`` on ``*``)."""
    from opensearchpy.exceptions import NotFoundError

    try:
        got = client.indices.get_alias(index=alias)
    except NotFoundError:
        return []
    return sorted(i for i, v in got.items() if alias in (v.get("aliases") or {}))


def check_mapping(client: Any, index: str) -> None:
    mapping = client.indices.get_mapping(index=index)[index]["mappings"]
    kind = mapping.get("properties", {}).get("embedding", {}).get("type")
    if kind != "knn_vector":
        raise SystemExit(
            f"{index} has no knn_vector 'embedding' field: the products index template was "
            "not applied. Run sidecar-setup first (its template covers products-*)."
        )


def ensure_alias(client: Any, alias: str) -> str:
    """The index behind ``alias``, creating ``{alias}-v1`` when there is none."""
    targets = alias_targets(client, alias)
    if len(targets) > 1:
        raise SystemExit(f"alias {alias} points at several indices: {targets}")
    if targets:
        return targets[0]
    if client.indices.exists(index=alias):
        raise SystemExit(
            f"{alias} is an index, not an alias; rebuild with --rebuild to move it behind an alias"
        )
    index = f"{alias}-v1"
    if not client.indices.exists(index=index):
        client.indices.create(index=index)
    client.indices.put_alias(index=index, name=alias)
    check_mapping(client, index)
    return index


def next_index(client: Any, alias: str) -> str:
    """``{alias}-v{N+1}`` where N is the highest existing version."""
    existing = client.indices.get(index=f"{alias}-v*", params={"expand_wildcards": "all"})
    versions = [int(m.group(1)) for name in existing if (m := _VERSION.search(name))]
    return f"{alias}-v{max(versions, default=0) + 1}"


def unfinished_rebuild(client: Any, alias: str) -> str | None:
    """A newer versioned index that an interrupted rebuild left behind, if any."""
    targets = alias_targets(client, alias)
    current = max((int(m.group(1)) for t in targets if (m := _VERSION.search(t))), default=0)
    existing = client.indices.get(index=f"{alias}-v*", params={"expand_wildcards": "all"})
    newer = sorted(
        (int(m.group(1)), name)
        for name in existing
        if (m := _VERSION.search(name)) and int(m.group(1)) > current
    )
    return newer[-1][1] if newer else None


def swap_alias(client: Any, alias: str, new_index: str, old: list[str]) -> None:
    actions: list[dict[str, Any]] = [{"add": {"index": new_index, "alias": alias}}]
    actions += [{"remove": {"index": i, "alias": alias}} for i in old]
    client.indices.update_aliases(body={"actions": actions})
