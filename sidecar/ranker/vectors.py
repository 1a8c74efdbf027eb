"""Document vectors paid once: a thread-safe LRU of bi-encoder vectors keyed by
(model, text), bounded by bytes, not entries (a 384-float vector is 1.5 KB; the whole
Chorus/Icecat catalog ~30 MB).

Keys are a 16-byte BLAKE2b digest of the model name and the text, so a model change never
reads another model's vector; ``clear`` drops everything (the engine calls it when it loads
models). Query vectors are cached too, under :func:`query_model`: a search's query is embedded
once for the k-NN leg (``/v1/embeddings``) and read again by the rerank of the same search.
``Meter`` hears every lookup, for Prometheus (sidecar/metrics.py).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

#: bytes a cached entry costs besides its vector (key, OrderedDict node, array header)
OVERHEAD_BYTES = 200


def query_model(model: str) -> str:
    """The cache's model name for a bi-encoder's QUERY vectors (a query and a document of the
    same text embed differently: e5 prefixes ``query: `` or ``passage: ``)."""
    return f"{model}#query"


def vector_key(model: str, text: str) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    h.update(model.encode("utf-8", "surrogatepass"))
    h.update(b"\x1f")
    h.update(text.encode("utf-8", "surrogatepass"))
    return h.digest()


class Meter(Protocol):
    def lookups(self, model: str, hits: int, misses: int) -> None: ...

    def size(self, entries: int, nbytes: int) -> None: ...


class VectorCache:
    def __init__(self, max_bytes: int, meter: Meter | None = None) -> None:
        self.max_bytes = max_bytes
        self.meter = meter
        self._data: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._data)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def get_many(self, model: str, texts: Sequence[str]) -> list[np.ndarray | None]:
        keys = [vector_key(model, t) for t in texts]
        out: list[np.ndarray | None] = []
        with self._lock:
            for key in keys:
                value = self._data.get(key)
                if value is not None:
                    self._data.move_to_end(key)
                out.append(value)
        if self.meter is not None:
            hits = sum(v is not None for v in out)
            self.meter.lookups(model, hits, len(out) - hits)
        return out

    def put_many(self, model: str, texts: Sequence[str], vectors: np.ndarray) -> None:
        self.put_keys([vector_key(model, t) for t in texts], vectors)

    def put_keys(self, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        if self.max_bytes <= 0:
            return
        with self._lock:
            for key, vec in zip(keys, vectors, strict=True):
                value = np.array(vec, dtype=np.float32)  # a copy: no view into a batch
                value.setflags(write=False)
                old = self._data.pop(key, None)
                if old is not None:
                    self._bytes -= old.nbytes + OVERHEAD_BYTES
                self._data[key] = value
                self._bytes += value.nbytes + OVERHEAD_BYTES
            while self._bytes > self.max_bytes and self._data:
                _, dropped = self._data.popitem(last=False)
                self._bytes -= dropped.nbytes + OVERHEAD_BYTES
            self._report()

    def vectors(
        self, model: str, texts: Sequence[str], encode: Callable[[list[str]], np.ndarray]
    ) -> tuple[np.ndarray, int]:
        """The vectors of ``texts`` (rows in order), encoding the missing distinct texts in
        one call; and how many were cache hits."""
        found = self.get_many(model, texts)
        missing = list(dict.fromkeys(t for t, v in zip(texts, found, strict=True) if v is None))
        fresh: dict[str, np.ndarray] = {}
        if missing:
            encoded = np.asarray(encode(missing), dtype=np.float32)
            fresh = dict(zip(missing, encoded, strict=True))
            self.put_many(model, missing, encoded)
        rows = [v if v is not None else fresh[t] for t, v in zip(texts, found, strict=True)]
        hits = sum(v is not None for v in found)
        if not rows:
            return np.zeros((0, 0), dtype=np.float32), 0
        return np.stack(rows), hits

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._bytes = 0
            self._report()

    def _report(self) -> None:
        if self.meter is not None:
            self.meter.size(len(self._data), self._bytes)

    # -- warm start ------------------------------------------------------------------
    @staticmethod
    def save(path: str | Path, model: str, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Write the vectors of ``texts`` as a warm-start file (``.npz``): the model's name,
        each text's 16-byte key and its vector (no texts, no pickled objects)."""
        keys = np.frombuffer(b"".join(vector_key(model, t) for t in texts), dtype=np.uint8)
        np.savez_compressed(
            path,
            model=np.array(model),
            keys=keys.reshape(len(texts), 16),
            vectors=np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1),
        )

    def load(self, path: str | Path, model: str) -> int:
        """Put the vectors of a warm-start file written for ``model``; a file of another
        model is ignored (0). Returns the number of vectors put."""
        with np.load(path, allow_pickle=False) as data:
            if str(data["model"]) != model:
                return 0
            keys = [bytes(row) for row in data["keys"]]
            self.put_keys(keys, data["vectors"])
        return len(keys)
