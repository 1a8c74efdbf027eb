"""The benchmark's fixed inputs: a seeded pool of synthetic documents, a few queries, and
the bookkeeping shared by every measured system (percentiles, machine facts)."""

from __future__ import annotations

import json
import os
import platform
import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

_VOCABULARY = (
    "the of and to in a is that for it as was with be by on not he this are or his from at "
    "which but have an they you were her she there been one all we their has would when if so "
    "no what up can about out its into them more only other some could time these two may then "
    "first any my now such like our over man me even most made after also did many before must "
    "through back years where much your way well down should because each just those people "
    "search ranking index query document retrieval score model latency throughput server "
    "cluster shard vector token panda bear china forest mountain river city capital france "
    "paris engine battery solar wind energy market price"
)
WORDS = tuple(_VOCABULARY.split())

QUERIES = (
    "what is the capital city of france",
    "how do search engines rank documents",
    "giant panda habitat in china mountain forest",
    "solar and wind energy market price",
    "low latency vector search on a server cluster",
)

# Consecutive requests start this many documents apart in the pool. It is coprime with the
# pool size, so every window of the pool is used before any request repeats.
_STRIDE = 37


def make_documents(
    count: int, target_tokens: int, count_tokens: Callable[[str], int], seed: int = 0
) -> list[str]:
    """``count`` documents of about ``target_tokens`` word-piece tokens each."""
    rng = random.Random(seed)
    docs = []
    for _ in range(count):
        words: list[str] = []
        while True:
            words.append(rng.choice(WORDS))
            if len(words) % 5 == 0 and count_tokens(" ".join(words)) >= target_tokens:
                break
        docs.append(" ".join(words).capitalize() + ".")
    return docs


@dataclass(frozen=True)
class Workload:
    """Request ``i`` = query ``i % len(queries)`` + a window of ``per_request`` documents."""

    documents: tuple[str, ...]
    queries: tuple[str, ...]
    per_request: int
    doc_tokens: tuple[int, ...] = field(default=(), compare=False)
    query_tokens: tuple[int, ...] = field(default=(), compare=False)

    def request(self, i: int) -> tuple[str, list[str]]:
        n = len(self.documents)
        start = (i * _STRIDE) % n
        docs = [self.documents[(start + k) % n] for k in range(self.per_request)]
        return self.queries[i % len(self.queries)], docs

    def bodies(self, count: int, extra: dict[str, Any] | None = None) -> list[bytes]:
        """Pre-encoded JSON bodies (so the load client spends little CPU per request)."""
        out = []
        for i in range(count):
            q, docs = self.request(i)
            out.append(json.dumps({"query": q, "documents": docs, **(extra or {})}).encode())
        return out

    def describe(self) -> dict[str, Any]:
        d = self.doc_tokens or (0,)
        return {
            "pool_documents": len(self.documents),
            "documents_per_request": self.per_request,
            "queries": len(self.queries),
            "doc_tokens_mean": round(statistics.mean(d), 1),
            "doc_tokens_min": min(d),
            "doc_tokens_max": max(d),
            "query_tokens": list(self.query_tokens),
        }


def percentile(values: Sequence[float], p: float) -> float:
    """Linear interpolation between the closest ranks (``p`` in [0, 100])."""
    if not values:
        return float("nan")
    xs = sorted(values)
    k = (len(xs) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and cpu == "unknown":
                    cpu = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu_model": cpu,
        "cpu_flags": sorted(f for f in flags if f.startswith(("avx512", "avx2", "amx"))),
        "nproc": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            kb = int(fh.readline().split()[1])
        info["memory_gib"] = round(kb / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    return info
