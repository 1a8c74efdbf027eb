"""Micro-batching: concurrent requests share model calls.

Request threads put prepared items (pairs or texts, with their token length) on one
bounded queue per model and wait on a ticket. One worker thread takes everything
pending, drops the items of requests whose deadline passed, sorts by length (so a
batch pads little) and cuts batches bounded by a token budget
(``len(batch) * longest <= max_batch_tokens``) and a size cap, then runs them.

``plan_batches`` is the pure part and is tested on its own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sidecar.backends.base import BackendError, Prepared

log = logging.getLogger(__name__)
R = TypeVar("R")


class Overloaded(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__("queue is full")
        self.retry_after = retry_after


class DeadlineExceeded(Exception):
    pass


def plan_batches(
    lengths: Sequence[int], max_batch_tokens: int, max_batch_size: int
) -> list[list[int]]:
    """Group item indices into batches of similar length.

    Items are sorted by length; a batch grows while its padded size
    (items x longest item) stays within ``max_batch_tokens`` and it has at most
    ``max_batch_size`` items. An item longer than the budget gets a batch of its own.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        longest = lengths[i]  # sorted ascending: the newcomer is the longest
        if current and (
            len(current) >= max_batch_size or (len(current) + 1) * longest > max_batch_tokens
        ):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


@dataclass(eq=False)
class Ticket(Generic[R]):
    """One request's share of the queue."""

    size: int
    deadline: float
    results: list[Any] = field(default_factory=list)
    remaining: int = 0
    error: BaseException | None = None
    cancelled: bool = False
    done: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.results = [None] * self.size
        self.remaining = self.size

    def wait(self) -> list[R]:
        timeout = self.deadline - time.monotonic()
        if timeout <= 0 or not self.done.wait(timeout):
            self.cancelled = True  # the worker skips what is still queued
            raise DeadlineExceeded()
        if self.error is not None:
            raise self.error
        return self.results


@dataclass(slots=True)
class _Entry:
    ticket: Ticket[Any]
    index: int
    item: Prepared


class BatchStats:
    """Hooks for metrics; the default does nothing."""

    def batch(self, items: int, tokens: int, seconds: float) -> None:  # pragma: no cover
        pass

    def queue(self, depth: int) -> None:  # pragma: no cover
        pass


class MicroBatcher(Generic[R]):
    def __init__(
        self,
        name: str,
        run: Callable[[Sequence[Prepared]], Sequence[R]],
        *,
        max_batch_tokens: int,
        max_batch_size: int,
        max_queue: int,
        wait_s: float = 0.002,
        stats: BatchStats | None = None,
    ) -> None:
        self.name = name
        self._run = run
        self.max_batch_tokens = max_batch_tokens
        self.max_batch_size = max_batch_size
        self.max_queue = max_queue
        self.wait_s = wait_s
        self.stats = stats or BatchStats()
        self._pending: list[_Entry] = []
        self._cond = threading.Condition()
        self._closed = False
        self._items_per_s = 0.0  # recent throughput, for Retry-After
        self._busy_since: float | None = None  # when the running model call started
        self._thread = threading.Thread(target=self._loop, name=f"batcher-{name}", daemon=True)
        self._thread.start()

    @property
    def depth(self) -> int:
        return len(self._pending)

    def busy_for(self) -> float:
        """Seconds the current model call has been running (0 when idle)."""
        since = self._busy_since
        return 0.0 if since is None else time.monotonic() - since

    def submit(self, items: Sequence[Prepared], deadline: float) -> Ticket[R]:
        ticket: Ticket[R] = Ticket(size=len(items), deadline=deadline)
        if not items:
            ticket.done.set()
            return ticket
        with self._cond:
            if self._closed:
                raise BackendError(f"{self.name} batcher is closed")
            if len(self._pending) + len(items) > self.max_queue:
                rate = self._items_per_s or 1.0
                raise Overloaded(retry_after=max(1.0, len(self._pending) / rate))
            self._pending.extend(_Entry(ticket, i, it) for i, it in enumerate(items))
            self.stats.queue(len(self._pending))
            self._cond.notify()
        return ticket

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=5)

    # -- worker ----------------------------------------------------------------------
    def _take(self) -> list[_Entry] | None:
        with self._cond:
            while not self._pending and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            if self.wait_s > 0:
                # Let concurrent requests that are a few ms behind join this round.
                tokens = sum(e.item.length for e in self._pending)
                if tokens < self.max_batch_tokens:
                    self._cond.wait(self.wait_s)
            taken, self._pending = self._pending, []
            self.stats.queue(0)
            return taken

    def _loop(self) -> None:
        while True:
            taken = self._take()
            if taken is None:
                return
            self._run_round(taken)

    def _run_round(self, entries: list[_Entry]) -> None:
        now = time.monotonic()
        live = [e for e in entries if not e.ticket.cancelled and e.ticket.deadline > now]
        plan = plan_batches(
            [e.item.length for e in live], self.max_batch_tokens, self.max_batch_size
        )
        for idx in plan:
            batch = [live[i] for i in idx if not live[i].ticket.cancelled]
            if not batch:
                continue
            started = time.perf_counter()
            self._busy_since = time.monotonic()
            try:
                out = list(self._run([e.item for e in batch]))
                if len(out) != len(batch):
                    raise BackendError(f"backend returned {len(out)} results for {len(batch)}")
            except Exception as exc:  # one failed batch fails only its own requests
                log.exception("%s batch of %d failed", self.name, len(batch))
                err = exc if isinstance(exc, BackendError) else BackendError(type(exc).__name__)
                for e in batch:
                    if e.ticket.error is None:
                        e.ticket.error = err
                        e.ticket.done.set()
                continue
            finally:
                self._busy_since = None
            seconds = time.perf_counter() - started
            if seconds > 0:
                rate = len(batch) / seconds
                self._items_per_s = (
                    rate if not self._items_per_s else (0.8 * self._items_per_s + 0.2 * rate)
                )
            self.stats.batch(len(batch), max(e.item.length for e in batch) * len(batch), seconds)
            for e, value in zip(batch, out, strict=True):
                t = e.ticket
                if t.error is not None:
                    continue
                t.results[e.index] = value
                t.remaining -= 1
                if t.remaining == 0:
                    t.done.set()
