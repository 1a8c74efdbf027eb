"""The document vector cache: bounded by bytes, LRU, keyed by model and text, metered,
written to and read from warm-start files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sidecar.metrics import Metrics
from sidecar.ranker.vectors import OVERHEAD_BYTES, VectorCache

DIM = 4
ENTRY = DIM * 4 + OVERHEAD_BYTES


def vecs(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)


def test_hits_misses_and_the_model_is_part_of_the_key() -> None:
    cache = VectorCache(10 * ENTRY)
    cache.put_many("e5", ["a", "b"], vecs(2))
    got = cache.get_many("e5", ["a", "c", "b"])
    assert got[0] is not None and got[1] is None and got[2] is not None
    assert cache.get_many("use", ["a"]) == [None]


def test_bounded_by_bytes_least_recently_used_first() -> None:
    cache = VectorCache(3 * ENTRY)
    cache.put_many("m", ["a", "b", "c"], vecs(3))
    cache.get_many("m", ["a"])  # a is now the most recent
    cache.put_many("m", ["d"], vecs(1))
    assert len(cache) == 3 and cache.nbytes == 3 * ENTRY
    assert [v is not None for v in cache.get_many("m", ["a", "b", "c", "d"])] == [
        True,
        False,
        True,
        True,
    ]


def test_zero_bytes_is_off() -> None:
    cache = VectorCache(0)
    cache.put_many("m", ["a"], vecs(1))
    assert len(cache) == 0


def test_vectors_encodes_each_missing_distinct_text_once() -> None:
    cache = VectorCache(100 * ENTRY)
    calls: list[list[str]] = []

    def encode(texts: list[str]) -> np.ndarray:
        calls.append(texts)
        return np.stack([np.full(DIM, float(len(t)), np.float32) for t in texts])

    rows, hits = cache.vectors("m", ["aa", "b", "aa"], encode)
    assert calls == [["aa", "b"]] and hits == 0
    assert rows.shape == (3, DIM) and rows[0][0] == 2.0 and rows[2][0] == 2.0
    rows, hits = cache.vectors("m", ["b", "aa"], encode)
    assert len(calls) == 1 and hits == 2 and rows[0][0] == 1.0


def test_cached_vectors_are_copies_and_read_only() -> None:
    cache = VectorCache(10 * ENTRY)
    batch = vecs(1)
    cache.put_many("m", ["a"], batch)
    batch[0, 0] = 99.0
    (got,) = cache.get_many("m", ["a"])
    assert got is not None and got[0] != 99.0 and not got.flags.writeable


def test_clear_drops_everything() -> None:
    cache = VectorCache(10 * ENTRY)
    cache.put_many("m", ["a"], vecs(1))
    cache.clear()
    assert len(cache) == 0 and cache.nbytes == 0


def test_metered_in_prometheus() -> None:
    metrics = Metrics()
    cache = VectorCache(10 * ENTRY, metrics.vector_meter())
    cache.put_many("e5", ["a"], vecs(1))
    cache.get_many("e5", ["a", "b"])
    text = metrics.render().decode()
    assert 'sidecar_vector_cache_hits_total{model="e5"} 1.0' in text
    assert 'sidecar_vector_cache_misses_total{model="e5"} 1.0' in text
    assert "sidecar_vector_cache_entries 1.0" in text
    assert f"sidecar_vector_cache_bytes {float(ENTRY)}" in text


def test_warm_start_file_round_trip_for_its_model_only(tmp_path: Path) -> None:
    path = tmp_path / "v.npz"
    data = vecs(2)
    VectorCache.save(path, "e5", ["a", "b"], data)
    cache = VectorCache(10 * ENTRY)
    assert cache.load(path, "use") == 0 and len(cache) == 0
    assert cache.load(path, "e5") == 2
    got = cache.get_many("e5", ["b"])[0]
    assert got is not None and np.array_equal(got, data[1])
