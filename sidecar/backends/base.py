"""The small protocol every model backend implements.

A request thread *prepares* its inputs (formatting and tokenization: parallel across
request threads, checked against the length limit before anything is queued); the one
batching thread per model then runs ``score``/``embed`` on merged, length-sorted
batches of prepared items. Nothing here imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True, slots=True)
class Pair:
    query: str
    document: str
    instruction: str


@dataclass(frozen=True, slots=True)
class Prepared:
    """One unit of model work: ``length`` in tokens drives the batch plan."""

    length: int
    payload: Any


class InputTooLong(ValueError):
    """An input exceeds the model's token limit and truncation was not allowed."""

    def __init__(self, index: int, length: int, limit: int) -> None:
        super().__init__(f"input {index} has {length} tokens; the limit is {limit}")
        self.index = index
        self.length = length
        self.limit = limit


class BackendError(RuntimeError):
    """The model failed or returned something unusable (NaN, wrong count)."""


@runtime_checkable
class Reranker(Protocol):
    name: str
    kind: str
    max_length: int

    def prepare(self, pairs: Sequence[Pair], truncate: bool = True) -> list[Prepared]: ...

    def score(self, batch: Sequence[Prepared]) -> list[float]:
        """Raw scores (logits, or cosines), one per item, in order."""
        ...

    def activate(self, raw: float) -> float:
        """Map a raw score to a relevance in [0, 1] (sigmoid for logits)."""
        ...


@runtime_checkable
class WindowReranker(Reranker, Protocol):
    """A reranker whose scores depend on the whole window (relative features, recall
    positions): the engine hands it each request's documents at once, with the engine's
    document vector cache, instead of scoring pairs through the batcher."""

    def score_window(
        self,
        query: str,
        texts: Sequence[str],
        language: str | None,
        positions: Sequence[int] | None,
        vectors: Any,
    ) -> tuple[list[float], int]:
        """Raw scores, and how many documents were answered from ``vectors``."""
        ...


EmbedKind = Literal["query", "document"]


@runtime_checkable
class Embedder(Protocol):
    name: str
    kind: str
    dimensions: int
    max_length: int

    def prepare(
        self, texts: Sequence[str], kind: EmbedKind, instruction: str, truncate: bool = True
    ) -> list[Prepared]: ...

    def embed(self, batch: Sequence[Prepared]) -> np.ndarray:
        """L2-normalised vectors, shape (len(batch), dimensions)."""
        ...


def sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def check_scores(scores: Sequence[float], expected: int) -> list[float]:
    """Refuse what a broken model returns instead of passing it on as a ranking."""
    out = [float(s) for s in scores]
    if len(out) != expected:
        raise BackendError(f"backend returned {len(out)} scores for {expected} inputs")
    if not all(math.isfinite(s) for s in out):
        raise BackendError("backend returned a non-finite score")
    return out
