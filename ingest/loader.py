"""Load normalized products into an index: document embeddings from the sidecar, then
opensearch-py's ``streaming_bulk`` (retries with backoff on 429)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import requests
from requests.adapters import HTTPAdapter

from cluster_setup.client import backoff_retry
from ingest.catalog import Product

T = TypeVar("T")


@dataclass
class LoadResult:
    written: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)


class DeadlineMissed(RuntimeError):
    """The sidecar answered 504: the batch did not fit in its request deadline."""


class SidecarEmbedder:
    """Document-side embeddings through the sidecar's ``/v1/embeddings``.

    A busy or restarting sidecar (429, 502-504, connection refused or reset) is retried
    ``retries`` times with exponential backoff, honouring Retry-After: urllib3's ``Retry``
    on the session."""

    def __init__(
        self, url: str, api_key: str | None = None, timeout: float = 120, retries: int = 6
    ) -> None:
        api_key = api_key or os.environ.get("SIDECAR_API_KEY")
        self.base = url.rstrip("/")
        self.url = self.base + "/v1/embeddings"
        self.timeout = timeout
        self.session = requests.Session()
        if api_key:
            self.session.headers["Authorization"] = f"Bearer {api_key}"
        # 504 is the sidecar's own deadline (SIDECAR_REQUEST_TIMEOUT_S): the same batch would
        # miss it again on a busy CPU, so ``embed`` splits that batch instead of resending it
        retry = backoff_retry(
            retries, statuses=(429, 502, 503), backoff_max=30.0, backoff_factor=1.0
        )
        self.session.mount("http://", HTTPAdapter(max_retries=retry))
        self.session.mount("https://", HTTPAdapter(max_retries=retry))
        self._model: str | None = None

    @property
    def model(self) -> str:
        """The embedder's name and width, part of each product's content hash: a new
        embedding model re-embeds everything. Asked once, without retries: a sidecar that
        does not answer raises ``OSError`` (``requests.RequestException``)."""
        if self._model is None:
            resp = requests.get(self.base + "/readyz", timeout=self.timeout)
            resp.raise_for_status()
            info = resp.json()["models"]["embed"]
            self._model = f"{info['name']}:{info['dimensions']}"
        return self._model

    def embed(
        self, texts: Sequence[str], input_type: str = "document", chunk: int = 32
    ) -> np.ndarray:
        """Vectors for ``texts``, ``chunk`` texts per request (the sidecar caps a request)."""
        out: list[list[float]] = []
        for start in range(0, len(texts), chunk):
            out += self._embed_part(list(texts[start : start + chunk]), input_type)
        return np.array(out, dtype=np.float32)

    def _embed_part(self, part: list[str], input_type: str, halvings: int = 4) -> list[Any]:
        """One request; a batch that misses the sidecar's deadline (504) is split in two."""
        try:
            data = self._post({"input": part, "input_type": input_type})
        except DeadlineMissed:
            if len(part) == 1 or halvings == 0:
                raise
            mid = len(part) // 2
            return self._embed_part(part[:mid], input_type, halvings - 1) + self._embed_part(
                part[mid:], input_type, halvings - 1
            )
        return [d["embedding"] for d in sorted(data, key=lambda d: d["index"])]

    def _post(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """One embeddings call (the session's retries included)."""
        try:
            resp = self.session.post(self.url, json=body, timeout=self.timeout)
        except requests.RequestException as exc:
            raise RuntimeError(f"the sidecar is unreachable: {exc}") from None
        if resp.status_code >= 400:
            detail = resp.content[:500].decode("utf-8", "replace")
            error = DeadlineMissed if resp.status_code == 504 else RuntimeError
            raise error(f"the sidecar answered {resp.status_code}: {detail}")
        data: list[dict[str, Any]] = resp.json()["data"]
        return data

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
