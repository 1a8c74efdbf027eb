"""Load normalized products into an index: document embeddings from the sidecar, then
opensearch-py's ``streaming_bulk`` (retries with backoff on 429)."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from ingest.catalog import Product

T = TypeVar("T")


@dataclass
class LoadResult:
    written: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)


class SidecarEmbedder:
    """Document-side embeddings through the sidecar's ``/v1/embeddings``."""

    def __init__(
        self, url: str, api_key: str | None = None, timeout: float = 120, retries: int = 6
    ) -> None:
        api_key = api_key or os.environ.get("SIDECAR_API_KEY")
        self.url = url.rstrip("/") + "/v1/embeddings"
        self.headers = {"Content-Type": "application/json"}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
        self.timeout = timeout
        self.retries = retries
        self._model: str | None = None

    @property
    def model(self) -> str:
        """The embedder's name and width, part of each product's content hash: a new
        embedding model re-embeds everything."""
        if self._model is None:
            base = self.url.rsplit("/v1/embeddings", 1)[0]
            with urllib.request.urlopen(base + "/readyz", timeout=self.timeout) as resp:
                info = json.load(resp)["models"]["embed"]
            self._model = f"{info['name']}:{info['dimensions']}"
        return self._model

    def embed(
        self, texts: Sequence[str], input_type: str = "document", chunk: int = 32
    ) -> np.ndarray:
        """Vectors for ``texts``, ``chunk`` texts per request (the sidecar caps a request)."""
        out: list[list[float]] = []
        for start in range(0, len(texts), chunk):
            part = list(texts[start : start + chunk])
            body = json.dumps({"input": part, "input_type": input_type}).encode("utf-8")
            data = self._post(body)
            out += [d["embedding"] for d in sorted(data, key=lambda d: d["index"])]
        return np.array(out, dtype=np.float32)

    def _post(self, body: bytes) -> list[dict[str, Any]]:
        """One embeddings call; a busy or restarting sidecar (429, 502-504, connection
        refused) is retried with exponential backoff, honouring Retry-After."""
        delay = 1.0
        for attempt in range(self.retries + 1):
            req = urllib.request.Request(self.url, data=body, headers=self.headers)
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    data: list[dict[str, Any]] = json.load(resp)["data"]
                    return data
            except urllib.error.HTTPError as exc:
                detail = exc.read()[:500].decode("utf-8", "replace")
                if exc.code not in (429, 502, 503, 504) or attempt == self.retries:
                    raise RuntimeError(f"the sidecar answered {exc.code}: {detail}") from None
                wait = float(exc.headers.get("Retry-After") or delay)
            except (urllib.error.URLError, ConnectionError) as exc:
                if attempt == self.retries:
                    raise RuntimeError(f"the sidecar is unreachable: {exc}") from None
                wait = delay
            time.sleep(min(wait, 30.0))
            delay *= 2
        raise AssertionError("unreachable")

    def product_vectors(self, products: Sequence[Product]) -> list[list[float]]:
        """One vector per product: the normalised mean of its languages' passages, so a
        product carried in several languages is found from any of them."""
        texts: list[str] = []
        owners: list[int] = []
        for i, p in enumerate(products):
            for text in p.embed_texts.values():
                texts.append(text)
                owners.append(i)
        vecs = self.embed(texts) if texts else np.zeros((0, 1), dtype=np.float32)
        out = []
        for i in range(len(products)):
            mine = vecs[[j for j, o in enumerate(owners) if o == i]]
            mean = mine.mean(axis=0)
            out.append((mean / max(float(np.linalg.norm(mean)), 1e-12)).tolist())
        return out


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def load_products(
    client: Any,
    products: Iterable[Product],
    index: str,
    embedder: SidecarEmbedder | None,
    batch_size: int = 64,
    refresh: bool = True,
    progress: Callable[[int], None] | None = None,
) -> LoadResult:
    """Embed and index ``products``; ``progress(done)`` is called after each product."""
    from opensearchpy import helpers

    result = LoadResult()

    def actions() -> Iterator[dict[str, Any]]:
        for batch in batched(products, batch_size):
            vectors = embedder.product_vectors(batch) if embedder else [None] * len(batch)
            for product, vector in zip(batch, vectors, strict=True):
                source = dict(product.doc)
                if vector is not None:
                    source["embedding"] = vector
                yield {"_op_type": "index", "_index": index, "_id": product.id, "_source": source}

    for ok, info in helpers.streaming_bulk(
        client,
        actions(),
        chunk_size=batch_size,
        max_retries=5,
        initial_backoff=1,
        raise_on_error=False,
        raise_on_exception=False,
    ):
        item = next(iter(info.values()))
        if ok:
            result.written += 1
        else:
            result.failed.append((str(item.get("_id")), json.dumps(item.get("error"))[:500]))
        if progress is not None:
            progress(result.written + len(result.failed))
    if refresh:
        client.indices.refresh(index=index)
    return result
