"""One time budget for a search through the sidecar, and every timeout derived from it.

A ``hybrid-rerank`` search makes two ML Commons calls to the sidecar in sequence (the query
embedding, then the rerank). Nothing in OpenSearch 2.19 stops a search stuck in one of them:
the search ``timeout`` and ``cancel_after_time_interval`` are not checked while a processor
waits, and ML Commons' predict has no timeout of its own. Only the connector's
``client_config.read_timeout`` ends such a call (and frees its pooled connection). So:

* ``search_budget_s`` (B): what a client gives a ``hybrid-rerank`` search (its HTTP timeout);
* ``read_timeout_s`` (R) = floor((B - SEARCH_MARGIN_S) / 2 - CONNECT_TIMEOUT_S): the
  connectors' read timeout, whole seconds (ML Commons reads ``connection_timeout`` and
  ``read_timeout`` as SECONDS, in 2.19 as in 3.x: ``Duration.ofSeconds``), so two calls that
  each use their whole connect and read timeouts still fit in B;
* ``sidecar_deadline_s`` (D) = R - QUEUE_MARGIN_S: ``SIDECAR_REQUEST_TIMEOUT_S``. The sidecar
  answers its own fallback (order-keeping scores) at D, before the connector gives up at R;
  R - D covers queueing in gunicorn, which the sidecar's deadline does not see;
* ``connection_timeout`` 1 s (a refused port fails at once anyway), ``max_retry_times`` 0 (ML
  Commons retries only an AWS throttling answer, never a timeout or a refused connection).

So sidecar deadline < connector read timeout < a client's search timeout. A pipeline with one
ML call (``hybrid``, ``rerank``) needs R + SEARCH_MARGIN_S at most.

The pool rule: each connector keeps ``max_connection`` (32) connections per node, and a call
waits at most 10 s for one (the AWS SDK's acquire timeout, not configurable in 2.19), after
which it fails (the rerank fails open, a ``neural`` leg fails the search). With C concurrent
searches per node and a dead sidecar, the last wave waits about ceil(C/32) x R, so keep
ceil(C/32) x R < 10 s: :attr:`Budget.max_concurrency` is the largest C that keeps it.

A refused port usually fails a call at once, but the SDK's Netty pool now and then holds the
acquire of a connection whose connect was refused until that same 10 s timeout (seen in CI: one
of 8 concurrent searches to a refused port took 10.08 s, the other seven 0.09 s). So one ML
call ends within :attr:`Budget.worst_call_s` = max(connect + R, 10 s), and a search within
:attr:`Budget.worst_search_s`. With the default budget (R = 9 s) both bounds are the same 10 s
per call, and a budget of at least ``2 x 10 + SEARCH_MARGIN_S`` = 21.5 s (the default, 22 s,
is one) holds even when both calls of a search wait that long; a smaller budget is exceeded
only by that acquire wait, up to :attr:`Budget.worst_search_s`.

Pure: nothing here talks to a cluster.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

#: what a client gives a hybrid-rerank search by default: connectors read 9 s, the sidecar's
#: deadline is 7.5 s (keeping a slow CPU rerank inside it), and it is at least 21.5 s, so two
#: calls that wait out the pool's 10 s acquire still fit; with a fast (GPU) reranker,
#: ``--budget 10`` bounds a frozen or black-holed sidecar much tighter (3 s a call).
DEFAULT_SEARCH_BUDGET_S = 22.0
#: the smallest budget that leaves the sidecar a deadline (R >= 2 s)
MIN_SEARCH_BUDGET_S = 7.5
#: the search itself (shards, normalization, transport) on top of the ML calls
SEARCH_MARGIN_S = 1.5
#: queueing in gunicorn before the sidecar's deadline starts counting
QUEUE_MARGIN_S = 1.5
CONNECT_TIMEOUT_S = 1
MAX_CONNECTION = 32
#: the AWS SDK Netty connection-acquire timeout (ML Commons 2.19 cannot change it)
POOL_ACQUIRE_TIMEOUT_S = 10.0
#: ML calls in sequence in the heaviest pipeline (hybrid-rerank: query embedding + rerank)
ML_CALLS = 2


@dataclass(frozen=True)
class Budget:
    search_budget_s: float
    read_timeout_s: int
    connect_timeout_s: int
    sidecar_deadline_s: float
    max_connection: int

    @property
    def one_call_search_timeout_s(self) -> float:
        """A client's timeout for a pipeline with one ML call (``hybrid``, ``rerank``)."""
        return self.read_timeout_s + SEARCH_MARGIN_S

    @property
    def worst_call_s(self) -> float:
        """The longest one ML call can take: its connect and read timeouts, or the pool's
        acquire timeout (a refused connect can hold the acquire that long)."""
        return max(self.connect_timeout_s + self.read_timeout_s, POOL_ACQUIRE_TIMEOUT_S)

    @property
    def worst_search_s(self) -> float:
        """The longest a ``hybrid-rerank`` search can take when every ML call times out."""
        return ML_CALLS * self.worst_call_s + SEARCH_MARGIN_S

    @property
    def max_concurrency(self) -> int:
        """Concurrent searches per node that keep ceil(C/32) x R under the acquire timeout."""
        waves = math.ceil(POOL_ACQUIRE_TIMEOUT_S / self.read_timeout_s) - 1
        return max(waves, 0) * self.max_connection

    def client_config(self) -> dict[str, Any]:
        """A connector's ``client_config`` (seconds)."""
        return {
            "max_connection": self.max_connection,
            "connection_timeout": self.connect_timeout_s,
            "read_timeout": self.read_timeout_s,
            "max_retry_times": 0,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "one_call_search_timeout_s": self.one_call_search_timeout_s,
            "max_concurrency": self.max_concurrency,
            "worst_call_s": self.worst_call_s,
            "worst_search_s": self.worst_search_s,
        }


def derive(search_budget_s: float = DEFAULT_SEARCH_BUDGET_S) -> Budget:
    """Every timeout from the search budget B (seconds); raises ValueError when B is too small."""
    if not search_budget_s >= MIN_SEARCH_BUDGET_S:
        raise ValueError(
            f"a search budget of {search_budget_s} s is too small: at least "
            f"{MIN_SEARCH_BUDGET_S} s (two ML calls of {CONNECT_TIMEOUT_S} s connect + >= 2 s "
            f"read, {SEARCH_MARGIN_S} s for the search)"
        )
    read = int(math.floor((search_budget_s - SEARCH_MARGIN_S) / ML_CALLS - CONNECT_TIMEOUT_S))
    return Budget(
        search_budget_s=float(search_budget_s),
        read_timeout_s=read,
        connect_timeout_s=CONNECT_TIMEOUT_S,
        sidecar_deadline_s=read - QUEUE_MARGIN_S,
        max_connection=MAX_CONNECTION,
    )


def apply(connector: dict[str, Any], budget: Budget) -> dict[str, Any]:
    """``connector`` with its ``client_config`` set from the budget (a copy)."""
    out = dict(connector)
    out["client_config"] = {**(connector.get("client_config") or {}), **budget.client_config()}
    return out


DEFAULT = derive()
