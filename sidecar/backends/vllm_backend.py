"""The production path: Qwen3-Reranker and Qwen3-Embedding served by a vLLM server.

The sidecar keeps what it does for every backend (validation, cache, micro-batching,
deadlines, metrics) and prepares the **token ids** with the model folder's tokenizer
(``tokenization.py``: the official prompt, only the document truncated); vLLM runs the
model on exactly those ids:

* rerank: ``POST /classify {"input": [[ids], ...], "use_activation": false}`` answers the
  raw logit, which for Qwen3-Reranker served with the ``Qwen3ForSequenceClassification``
  / ``classifier_from_token ["no", "yes"]`` / ``is_original_qwen3_reranker`` overrides is
  logit(yes) - logit(no); ``activate`` (sigmoid) gives P("yes"), as the transformers
  backend does. A seq-cls conversion of the reranker is served the same way.
* embed: ``POST /v1/embeddings {"input": [[ids], ...]}`` answers last-token pooled,
  L2-normalised vectors (Matryoshka ``dimensions`` is applied by the sidecar's API, which
  truncates and re-normalises exactly as vLLM does).

So the prompt is applied in one place and vLLM needs no ``--chat-template``: a server
started with one is not used for its template at all. vLLM's text endpoints (``/score``,
``/rerank``) are not used: they take text and tokenize it again, which after a
truncation does not give back the same ids (BPE merges across the cut; a CJK character
split between byte-level tokens decodes to U+FFFD), and they answer sigmoid
probabilities, from which a logit near 0 or 1 comes back only to a few digits.

Only ``requests`` and the tokenizer are imported; never torch, never vllm.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sidecar.backends.base import (
    BackendError,
    EmbedKind,
    Pair,
    Prepared,
    check_scores,
    sigmoid,
)
from sidecar.backends.tokenization import (
    EmbedTokens,
    Qwen3RerankTokens,
    detect_family,
    read_config,
)
from sidecar.scoring.prompts import QWEN3_RERANK_PREFIX

log = logging.getLogger(__name__)

#: vLLM versions this backend is tested against: [minimum, first unsupported).
SUPPORTED_VLLM = ((0, 32, 0), (0, 33, 0))
SUPPORTED_VLLM_TEXT = ">=0.32.0,<0.33"

RERANK_SERVER_FLAGS = (
    "--runner pooling --hf-overrides "
    '\'{"architectures":["Qwen3ForSequenceClassification"],'
    '"classifier_from_token":["no","yes"],"is_original_qwen3_reranker":true}\''
)
EMBED_SERVER_FLAGS = "--runner pooling --convert embed --hf-overrides '{\"is_matryoshka\":true}'"

# Text whose ids must be equal on both sides: the template's special tokens, Latin and
# CJK text. A different tokenizer (a wrong SIDECAR_*_MODEL folder) fails this at start-up
# instead of silently scoring other tokens.
_TOKENIZER_PROBE = QWEN3_RERANK_PREFIX + "red running shoes 无线鼠标 zapatillas rojas ¿sí?"


class VllmClient:
    """One vLLM server: a pooled ``requests`` session with timeouts and retries.

    Retries (urllib3's exponential backoff, factor 0.25 s, at most 4 s) cover connection
    errors and 502/503/504, which a restarting or overloaded server answers; every call
    is a pure function of its input, so repeating a POST is safe. Other errors (a 400
    for an input the server refuses, a 500) are not retried.
    """

    def __init__(
        self, base_url: str, api_key: str = "", timeout_s: float = 5.0, retries: int = 2
    ) -> None:
        import requests
        from requests.adapters import HTTPAdapter
        from urllib3.util.retry import Retry

        self._requests = requests
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        retry = Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            other=0,
            backoff_factor=0.25,
            backoff_max=4.0,
            status_forcelist=(502, 503, 504),
            allowed_methods=frozenset({"GET", "POST"}),
            raise_on_status=False,
            respect_retry_after_header=False,  # the backoff stays bounded by our numbers
        )
        self.session = requests.Session()
        # The batcher calls from one thread per model; a few spare connections serve
        # the load-time checks and a second worker thread without opening new ones.
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=4, max_retries=retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        if api_key:
            self.session.headers["Authorization"] = f"Bearer {api_key}"

    def get(self, path: str) -> Any:
        return self._call("GET", path, None)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self._call("POST", path, body)

    def _call(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        url = self.base_url + path
        try:
            resp = self.session.request(
                method, url, json=body, timeout=(self.timeout_s, self.timeout_s)
            )
        except self._requests.RequestException as exc:
            raise BackendError(f"vLLM at {url}: {_reason(exc)}") from exc
        if resp.status_code != 200:
            raise BackendError(
                f"vLLM {method} {path} answered {resp.status_code}: {_error_text(resp)}"
            )
        try:
            return resp.json()
        except ValueError as exc:
            raise BackendError(f"vLLM {method} {path} answered something that is not JSON") from exc

    def close(self) -> None:
        self.session.close()


def _reason(exc: Exception) -> str:
    """The innermost cause, e.g. 'ConnectionRefusedError' rather than a MaxRetryError."""
    seen = exc
    while seen.__context__ is not None and seen.__context__ is not seen:
        seen = seen.__context__  # type: ignore[assignment]
    name = type(exc).__name__
    return name if seen is exc else f"{name} ({type(seen).__name__})"


def _error_text(resp: Any) -> str:
    try:
        err = resp.json()
        if isinstance(err, dict):
            inner = err.get("error", err)
            message = inner.get("message") if isinstance(inner, dict) else inner
            return str(message or err)[:300]
    except ValueError:
        pass
    return str(resp.text)[:300]


def parse_version(text: str) -> tuple[int, int, int]:
    m = re.match(r"v?(\d+)\.(\d+)(?:\.(\d+))?", text.strip())
    if not m:
        raise ValueError(f"cannot read a version from {text!r}")
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def version_supported(text: str) -> bool:
    low, high = SUPPORTED_VLLM
    return low <= parse_version(text) < high


@dataclass(frozen=True)
class ServerInfo:
    version: str
    model: str
    max_model_len: int | None


def inspect_server(
    client: VllmClient, tokenizer: Any, max_length: int, check_version: bool, role: str
) -> ServerInfo:
    """What the server serves, checked against the sidecar's settings before any request."""
    where = f"SIDECAR_VLLM_{role.upper()}_URL={client.base_url}"
    try:
        version = str(client.get("/version").get("version", ""))
        models = client.get("/v1/models").get("data") or []
    except BackendError as exc:
        raise BackendError(f"{where}: the vLLM server does not answer: {exc}") from exc
    if check_version and not version_supported(version):
        raise BackendError(
            f"{where} runs vLLM {version or '?'}; this sidecar is tested with vLLM "
            f"{SUPPORTED_VLLM_TEXT} (SIDECAR_VLLM_CHECK_VERSION=0 accepts it untested)"
        )
    if len(models) != 1:
        raise BackendError(f"{where} serves {len(models)} models; expected exactly one")
    model = str(models[0]["id"])
    max_model_len = models[0].get("max_model_len")
    limit = "SIDECAR_MAX_LENGTH" if role == "rerank" else "SIDECAR_EMBED_MAX_LENGTH"
    if isinstance(max_model_len, int) and max_model_len < max_length:
        raise BackendError(
            f"{where} serves {model} with --max-model-len {max_model_len}, below "
            f"{limit}={max_length}: lower {limit} or raise --max-model-len"
        )
    mine = list(tokenizer(_TOKENIZER_PROBE, add_special_tokens=False)["input_ids"])
    theirs = client.post(
        "/tokenize", {"model": model, "prompt": _TOKENIZER_PROBE, "add_special_tokens": False}
    ).get("tokens")
    if theirs != mine:
        raise BackendError(
            f"{where} tokenizes differently from SIDECAR_{role.upper()}_MODEL: the folder "
            f"must hold the tokenizer of the model the server serves ({model})"
        )
    return ServerInfo(version, model, max_model_len if isinstance(max_model_len, int) else None)


class VllmReranker:
    """Qwen3-Reranker on a vLLM server; the same token ids as the in-process backend."""

    kind = "vllm"

    def __init__(
        self,
        folder: str,
        url: str,
        name: str = "",
        max_length: int = 512,
        api_key: str = "",
        timeout_s: float = 5.0,
        retries: int = 2,
        check_version: bool = True,
    ) -> None:
        if detect_family(read_config(folder)) == "cross-encoder":
            raise ValueError(
                f"{folder}: the vllm backend serves Qwen3-Reranker (or its seq-cls "
                "conversion); use the transformers backend for this cross-encoder"
            )
        self.tokens = Qwen3RerankTokens(folder, max_length)
        self.name = name or Path(folder).name
        self.max_length = max_length
        self.client = VllmClient(url, api_key, timeout_s, retries)
        self.server = inspect_server(
            self.client, self.tokens.tokenizer, max_length, check_version, "rerank"
        )
        probe = self.tokens.prepare([Pair("probe", "probe", "probe")])
        try:
            self._classify(probe)
        except BackendError as exc:
            raise BackendError(
                f"{url} does not score like a Qwen3 reranker ({exc}); start vLLM with "
                f"{RERANK_SERVER_FLAGS}"
            ) from exc
        log.info(
            "vLLM %s at %s serves %s (max_model_len %s)",
            self.server.version,
            url,
            self.server.model,
            self.server.max_model_len,
        )

    def prepare(self, pairs: Sequence[Pair], truncate: bool = True) -> list[Prepared]:
        return self.tokens.prepare(pairs, truncate)

    def _classify(self, batch: Sequence[Prepared]) -> list[float]:
        body = {
            "model": self.server.model,
            "input": [p.payload for p in batch],
            "use_activation": False,
        }
        data = self.client.post("/classify", body).get("data") or []
        rows = sorted(data, key=lambda d: d["index"])
        if any(len(d.get("probs") or ()) != 1 for d in rows):
            raise BackendError("vLLM /classify did not answer one logit per input")
        return check_scores([d["probs"][0] for d in rows], len(batch))

    def score(self, batch: Sequence[Prepared]) -> list[float]:
        return self._classify(batch)

    def activate(self, raw: float) -> float:
        # logit(yes) - logit(no) -> softmax([no, yes])[yes] == P("yes")
        return sigmoid(raw)


class VllmEmbedder:
    """Qwen3-Embedding on a vLLM server: the sidecar formats and tokenizes, vLLM pools."""

    kind = "vllm"

    def __init__(
        self,
        folder: str,
        url: str,
        name: str = "",
        max_length: int = 512,
        api_key: str = "",
        timeout_s: float = 5.0,
        retries: int = 2,
        check_version: bool = True,
    ) -> None:
        self.tokens = EmbedTokens(folder, max_length)
        self.name = name or Path(folder).name
        self.max_length = max_length
        self.dimensions = int(self.tokens.config["hidden_size"])
        self.client = VllmClient(url, api_key, timeout_s, retries)
        self.server = inspect_server(
            self.client, self.tokens.tokenizer, max_length, check_version, "embed"
        )
        try:
            (vec,) = self._embed(self.tokens.prepare(["probe"], "document", ""))
        except BackendError as exc:
            raise BackendError(
                f"{url} does not answer embeddings ({exc}); start vLLM with {EMBED_SERVER_FLAGS}"
            ) from exc
        if vec.shape != (self.dimensions,):
            raise BackendError(
                f"{url} answers {vec.shape[0]}-dimensional vectors; {folder} says "
                f"hidden_size {self.dimensions}: is it the same model?"
            )

    def prepare(
        self, texts: Sequence[str], kind: EmbedKind, instruction: str, truncate: bool = True
    ) -> list[Prepared]:
        return self.tokens.prepare(texts, kind, instruction, truncate)

    def _embed(self, batch: Sequence[Prepared]) -> np.ndarray:
        body = {
            "model": self.server.model,
            "input": [p.payload for p in batch],
            "encoding_format": "float",
        }
        data = self.client.post("/v1/embeddings", body).get("data") or []
        rows = sorted(data, key=lambda d: d["index"])
        if len(rows) != len(batch):
            raise BackendError(f"vLLM returned {len(rows)} embeddings for {len(batch)} inputs")
        vecs = np.asarray([d["embedding"] for d in rows], dtype=np.float32)
        if vecs.ndim != 2 or not np.isfinite(vecs).all():
            raise BackendError("vLLM returned malformed or non-finite embeddings")
        return vecs

    def embed(self, batch: Sequence[Prepared]) -> np.ndarray:
        vecs = self._embed(batch)
        if vecs.shape[1] != self.dimensions:
            raise BackendError(f"vLLM returned {vecs.shape[1]} dimensions, not {self.dimensions}")
        return vecs
