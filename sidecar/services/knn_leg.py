"""The hybrid query's k-NN leg behind ``/v1/knn-leg``: the query embedded, as the ``knn``
clause the ``ml_inference`` request processor of the hybrid pipelines swaps in for the
placeholder, and the search body's ``ext`` answered back repaired.

Why the ``ext``: the processor re-parses the request it rewrote from the request's own
serialisation, and neural-search writes ``ext.rerank`` without its name (its
``RerankSearchExtBuilder.toXContent`` emits ``query_context`` at the top of ``ext``), so the
re-parse fails with ``unknown field [query_context]`` and the rewrite is dropped unless the
processor also writes ``ext`` whole. Seen on 2.19.1 and 3.6.0. The repair puts
``query_context`` back under ``rerank``; every other part of ``ext`` stays as it came, so
the rerank processor reads the query the client (or the query-understanding step) put there:
the query as typed, not the text embedded here."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sidecar.services.embed import EmbedCall, EmbedResult, EmbedService

#: where neural-search's serialisation leaves the rerank context, and where it belongs
RERANK = "rerank"
QUERY_CONTEXT = "query_context"


def repaired_ext(ext: Mapping[str, Any]) -> dict[str, Any]:
    """``ext`` with a top-level ``query_context`` moved back under ``rerank`` (an ``ext``
    already in shape is returned unchanged)."""
    out = copy.deepcopy(dict(ext))
    if QUERY_CONTEXT in out and not isinstance(out.get(RERANK), Mapping):
        out[RERANK] = {QUERY_CONTEXT: out.pop(QUERY_CONTEXT)}
    return out


def knn_clause(field: str, vector: list[float], k: int) -> dict[str, Any]:
    return {"knn": {field: {"vector": vector, "k": k}}}


@dataclass(frozen=True)
class KnnLeg:
    leg: dict[str, Any]
    ext: dict[str, Any]
    embedded: EmbedResult


def knn_leg(
    service: EmbedService,
    text: str,
    ext: Mapping[str, Any],
    field: str,
    k: int,
    model: str | None = None,
    instruction: str | None = None,
    started: float | None = None,
) -> KnnLeg:
    out = service.embed(
        EmbedCall(texts=[text], model=model, is_query=True, instruction=instruction),
        started=started,
    )
    vector = out.embeddings[0]
    assert isinstance(vector, list)  # float encoding
    return KnnLeg(knn_clause(field, vector, k), repaired_ext(ext), out)
