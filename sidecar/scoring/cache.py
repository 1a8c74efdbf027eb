"""A bounded, thread-safe LRU of raw pair scores.

Keys are a 16-byte BLAKE2b digest of (model, instruction, query, document), so the
cache's memory is bounded by its entry count, not by the length of the texts.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

_SEP = b"\x1f"


def pair_key(model: str, instruction: str, query: str, document: str) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for part in (model, instruction, query, document):
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(_SEP)
    return h.digest()


class ScoreCache:
    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._data: OrderedDict[bytes, float] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._data)

    def get_many(self, keys: list[bytes]) -> list[float | None]:
        if self.max_entries == 0:
            return [None] * len(keys)
        out: list[float | None] = []
        with self._lock:
            for key in keys:
                value = self._data.get(key)
                if value is not None:
                    self._data.move_to_end(key)
                out.append(value)
        return out

    def put_many(self, items: list[tuple[bytes, float]]) -> None:
        if self.max_entries == 0:
            return
        with self._lock:
            for key, value in items:
                self._data[key] = value
                self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)
