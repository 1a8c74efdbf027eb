import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidecar.backends.base import BackendError, Prepared
from sidecar.scoring.batcher import DeadlineExceeded, MicroBatcher, Overloaded, plan_batches


@given(
    st.lists(st.integers(1, 600), max_size=200),
    st.integers(1, 4096),
    st.integers(1, 64),
)
def test_plan_covers_every_item_once_within_budget(lengths, budget, size) -> None:
    plan = plan_batches(lengths, budget, size)
    flat = [i for batch in plan for i in batch]
    assert sorted(flat) == list(range(len(lengths)))
    for batch in plan:
        assert 1 <= len(batch) <= size
        longest = max(lengths[i] for i in batch)
        # only a lone item may exceed the budget
        assert len(batch) * longest <= budget or len(batch) == 1


def test_plan_sorts_by_length_to_cut_padding() -> None:
    plan = plan_batches([100, 5, 100, 5], max_batch_tokens=20, max_batch_size=8)
    assert plan == [[1, 3], [0], [2]]


def _batcher(run, **kw):
    opts = dict(max_batch_tokens=1000, max_batch_size=8, max_queue=100, wait_s=0.005)
    opts.update(kw)
    return MicroBatcher("test", run, **opts)


def items(*lengths):
    return [Prepared(n, n) for n in lengths]


def test_concurrent_requests_are_merged_and_answered_in_order() -> None:
    seen: list[int] = []

    def run(batch):
        seen.append(len(batch))
        return [p.payload * 10 for p in batch]

    b = _batcher(run)
    try:
        with b._cond:  # hold the worker (re-entrant lock) so both requests queue first
            t1 = b.submit(items(3, 1, 2), time.monotonic() + 5)
            t2 = b.submit(items(5), time.monotonic() + 5)
        assert t1.wait() == [30, 10, 20]
        assert t2.wait() == [50]
        assert sum(seen) == 4 and len(seen) == 1  # one merged batch
    finally:
        b.close()


def test_full_queue_is_refused_with_retry_after() -> None:
    release = threading.Event()
    b = _batcher(lambda batch: (release.wait(5), [0.0] * len(batch))[1], max_queue=4)
    try:
        first = b.submit(items(1), time.monotonic() + 5)
        time.sleep(0.05)  # the worker is now blocked in run()
        b.submit(items(1, 1, 1, 1), time.monotonic() + 5)
        with pytest.raises(Overloaded) as exc:
            b.submit(items(1), time.monotonic() + 5)
        assert exc.value.retry_after >= 1
        release.set()
        assert first.wait() == [0.0]
    finally:
        release.set()
        b.close()


def test_deadline_gives_an_error_instead_of_hanging() -> None:
    release = threading.Event()
    b = _batcher(lambda batch: (release.wait(5), [1.0] * len(batch))[1])
    try:
        ticket = b.submit(items(1), time.monotonic() + 0.1)
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            ticket.wait()
        assert time.monotonic() - started < 1
    finally:
        release.set()
        b.close()


def test_a_failing_batch_fails_only_its_requests() -> None:
    def run(batch):
        if any(p.payload == 13 for p in batch):
            raise RuntimeError("boom")
        return [1.0] * len(batch)

    b = _batcher(run, max_batch_size=1)
    try:
        bad = b.submit([Prepared(1, 13)], time.monotonic() + 5)
        good = b.submit([Prepared(1, 1)], time.monotonic() + 5)
        with pytest.raises(BackendError):
            bad.wait()
        assert good.wait() == [1.0]
    finally:
        b.close()
