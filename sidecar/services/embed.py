"""The embeddings pipeline behind ``/v1/embeddings``: check the request, embed as a query or
a document, keep the leading dimensions the caller asked for (Matryoshka) and encode each
vector as floats or base64."""

from __future__ import annotations

import base64
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from sidecar.backends.base import EmbedKind
from sidecar.engine import Engine
from sidecar.errors import ApiError
from sidecar.schemas import is_blank
from sidecar.services.checks import check_count, check_model, check_text_limit
from sidecar.settings import Settings

Encoding = Literal["float", "base64"]


@dataclass(frozen=True)
class EmbedCall:
    texts: Sequence[str]
    model: str | None = None
    #: formatted as a search query (else as a document)
    is_query: bool = False
    instruction: str | None = None
    #: keep this many leading dimensions, re-normalised (None: all)
    dimensions: int | None = None
    encoding: Encoding = "float"
    #: the input was one string, not a list: errors name ``input``, not ``input[0]``
    single: bool = False


@dataclass(frozen=True)
class EmbedResult:
    #: per text: its vector as floats, or base64 of little-endian float32
    embeddings: list[list[float] | str]
    model: str
    tokens: int


def truncate_dimensions(vectors: np.ndarray, dimensions: int) -> np.ndarray:
    """Matryoshka: keep the leading ``dimensions``, then re-normalise each vector."""
    kept = vectors[:, :dimensions]
    norms = np.linalg.norm(kept, axis=1, keepdims=True)
    out: np.ndarray = kept / np.maximum(norms, 1e-12)
    return out


def encode(vector: np.ndarray, encoding: Encoding) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return [float(x) for x in vector]


class EmbedService:
    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine

    def embed(self, call: EmbedCall, started: float | None = None) -> EmbedResult:
        """Answer ``call`` by ``started + SIDECAR_REQUEST_TIMEOUT_S`` (``started``: when the
        request arrived, monotonic; default now)."""
        started = time.monotonic() if started is None else started
        deadline = started + self.settings.request_timeout_s
        self.check(call)
        eng = self.engine
        eng.wait_ready(deadline - time.monotonic())
        check_model(
            call.model,
            (self.settings.embed_model_name, *([eng.embedder.name] if eng.embedder else [])),
        )
        kind: EmbedKind = "query" if call.is_query else "document"
        out = eng.embed(call.texts, kind, call.instruction, deadline)
        vectors = out.vectors
        if call.dimensions is not None:
            if call.dimensions > vectors.shape[1]:
                raise ApiError(
                    "validation_error",
                    f"dimensions: {call.dimensions} is more than the model's {vectors.shape[1]}",
                    "dimensions",
                )
            vectors = truncate_dimensions(vectors, call.dimensions)
        return EmbedResult(
            embeddings=[encode(vec, call.encoding) for vec in vectors],
            model=out.model,
            tokens=out.tokens,
        )

    def check(self, call: EmbedCall) -> None:
        s = self.settings
        if not call.texts:
            raise ApiError(
                "empty_input", "input is empty; send a string or a list of strings", "input"
            )
        check_count(len(call.texts), s.max_embed_inputs, "input", "SIDECAR_MAX_EMBED_INPUTS")
        for i, text in enumerate(call.texts):
            param = "input" if call.single else f"input[{i}]"
            if is_blank(text):
                raise ApiError("empty_input", f"{param} is empty", param)
            check_text_limit(text, s.max_document_chars, param)
