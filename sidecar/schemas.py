"""Request and response shapes, in one place (pydantic v2).

Wire formats follow the APIs that clients already speak:

* ``POST /v1/rerank`` — Cohere v1 rerank (also what OpenSearch ML Commons' built-in
  ``connector.pre_process.cohere.rerank`` / ``post_process.cohere.rerank`` functions send
  and expect: every ``index`` back, ``relevance_score`` a float).
* ``POST /v2/rerank`` — Cohere v2 rerank, answered with exactly what Elasticsearch's
  ``cohere`` inference service parses (``CohereRankedResponseEntity``): ``results`` first,
  each result only ``index``, ``relevance_score`` and ``document.text``.
* ``POST /rerank`` — text-embeddings-inference (TEI) rerank (also what Elasticsearch's
  ``hugging_face`` rerank service sends and parses).
* ``POST /v1/embeddings`` — OpenAI embeddings, plus ``input_type`` (query or document).
* ``POST /v1/understand`` — the project's own: a query translated into the catalog's
  language, and what each search leg should search (an ML Commons ``ml_inference``
  request processor maps the answer into the query).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError


def _integral(value: Any) -> Any:
    # JSON Schema's "integer" includes 5.0; strict validation would refuse it.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


#: A positive integer, written as 5 or 5.0 (never "5").
Positive = Annotated[int, Field(ge=1), BeforeValidator(_integral)]

#: Unicode White_Space, spelled out: Python's ``str.isspace``/``\s`` and pydantic's (Rust)
#: ``\s`` disagree on a few control characters, and the server, the JSON Schema and
#: clients generating from it must agree on what "blank" is.
WHITESPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NON_BLANK_PATTERN = f"[^{WHITESPACE}]"
_NON_BLANK = re.compile(NON_BLANK_PATTERN)


def is_blank(text: str) -> bool:
    return _NON_BLANK.search(text) is None


#: A string with at least one non-blank character (blank input answers 400 empty_input).
NonBlank = Annotated[str, Field(min_length=1, pattern=NON_BLANK_PATTERN)]


class _Request(BaseModel):
    # Unknown fields are ignored (as Cohere, TEI and vLLM do) so that clients sending
    # extra options keep working; type errors are never coerced away.
    model_config = ConfigDict(extra="ignore", strict=True)


class RerankDocument(BaseModel):
    """A document given as an object; ``text`` is what gets scored."""

    model_config = ConfigDict(extra="allow", strict=True)
    text: str


#: the sidecar's own rerank options, shared by the Cohere v1 and v2 shapes
INSTRUCTION_DOC = (
    "Task instruction for instruction-following rerankers (Qwen3-Reranker). "
    "Defaults to SIDECAR_DEFAULT_INSTRUCTION."
)
TRUNCATE_DOC = (
    "Truncate pairs longer than SIDECAR_MAX_LENGTH tokens (the document is "
    "cut, never the query); false answers 413 instead."
)
LANGUAGE_DOC = (
    "The query's language (ISO 639-1), for documents that pack several "
    "languages ('[[en]] ... [[zh]] ...'); detected when absent."
)
IN_RECALL_ORDER_DOC = (
    "The documents come in the first stage's ranking (OpenSearch's rerank "
    "processor sends them so; the project's connector says so): their scores are blended "
    "with that order by SIDECAR_RERANK_RECALL_WEIGHT."
)
RECALL_WEIGHT_DOC = (
    "Blend with the documents' order at this weight, whatever "
    "in_recall_order says: (1 - w) x min-max(model) + w x (n - i) / n; 0: the model alone."
)


class CohereRerankRequest(_Request):
    model: str | None = None
    query: NonBlank
    documents: list[str | RerankDocument] = Field(min_length=1)
    top_n: Positive | None = None
    return_documents: bool = False
    instruction: str | None = Field(default=None, description=INSTRUCTION_DOC)
    truncate: bool = Field(default=True, description=TRUNCATE_DOC)
    language: str | None = Field(default=None, description=LANGUAGE_DOC)
    in_recall_order: bool = Field(default=False, description=IN_RECALL_ORDER_DOC)
    recall_weight: float | None = Field(default=None, ge=0.0, le=1.0, description=RECALL_WEIGHT_DOC)

    @field_validator("documents", mode="before")
    @classmethod
    def _documents_are_text(cls, value: Any) -> Any:
        if isinstance(value, list):
            for i, doc in enumerate(value):
                ok = isinstance(doc, str) or (
                    isinstance(doc, dict) and isinstance(doc.get("text"), str)
                )
                if not ok:
                    raise PydanticCustomError(
                        "document_type",
                        "documents[{index}] must be a string or an object with a string 'text'",
                        {"index": i},
                    )
        return value

    def document_texts(self) -> list[str]:
        return [d if isinstance(d, str) else d.text for d in self.documents]


class CohereDocument(BaseModel):
    text: str


class CohereRerankResult(BaseModel):
    index: int
    relevance_score: float
    document: dict[str, Any] | None = None


class ApiVersion(BaseModel):
    version: str = "1"


class BilledUnits(BaseModel):
    search_units: int = 1


class RerankMeta(BaseModel):
    api_version: ApiVersion = ApiVersion()
    billed_units: BilledUnits = BilledUnits()
    model: str
    cached: int = Field(description="How many of the pairs were answered from the cache.")
    query_language: str | None = Field(
        default=None,
        description="The query's language (the request's `language`, else detected; absent "
        "when unsure): it picks multilingual document sections and the instruction.",
    )
    tokens: int = Field(description="Tokens of the pairs that were scored by the model.")
    recall_weight: float | None = Field(
        default=None, description="The recall-order weight blended into the scores, if any."
    )


class CohereRerankResponse(BaseModel):
    id: str
    results: list[CohereRerankResult]
    meta: RerankMeta


class CohereV2RerankRequest(_Request):
    """Cohere v2 rerank: what Elasticsearch's ``cohere`` service sends to ``{url}/v2/rerank``
    (``CohereV2RerankRequest``: ``model``, ``query``, ``documents``, and ``return_documents``,
    ``top_n``, ``max_chunks_per_doc`` when configured), plus the sidecar's own options."""

    model: str | None = None
    query: NonBlank
    documents: list[str] = Field(min_length=1)
    top_n: Positive | None = None
    return_documents: bool = False
    max_chunks_per_doc: Positive | None = Field(
        default=None, description="Accepted for Cohere compatibility; documents are never split."
    )
    instruction: str | None = Field(default=None, description=INSTRUCTION_DOC)
    truncate: bool = Field(default=True, description=TRUNCATE_DOC)
    language: str | None = Field(default=None, description=LANGUAGE_DOC)
    in_recall_order: bool = Field(default=False, description=IN_RECALL_ORDER_DOC)
    recall_weight: float | None = Field(default=None, ge=0.0, le=1.0, description=RECALL_WEIGHT_DOC)


class CohereV2Document(BaseModel):
    text: str


class CohereV2RerankResult(BaseModel):
    """Only the three fields Elasticsearch's parser accepts: any other key in a result makes
    it throw (``throwUnknownField``)."""

    index: int
    relevance_score: float
    document: CohereV2Document | None = None


class CohereV2Meta(BaseModel):
    api_version: ApiVersion = ApiVersion(version="2")
    billed_units: BilledUnits = BilledUnits()


class CohereV2RerankResponse(BaseModel):
    """``results`` comes first: older Elasticsearch parsers look for it only before the first
    nested object ends, so ``meta`` must follow it. The sidecar's own details (model, cache,
    tokens, language) are left out (``/v1/rerank`` has them); fallback scores are flagged
    by ``X-Sidecar-Fallback``, as on every rerank route."""

    results: list[CohereV2RerankResult]
    id: str
    meta: CohereV2Meta = CohereV2Meta()


class TeiRerankRequest(_Request):
    query: NonBlank
    texts: list[str] = Field(min_length=1)
    raw_scores: bool = False
    return_text: bool = False
    truncate: bool = True
    instruction: str | None = None
    language: str | None = None


class TeiRank(BaseModel):
    index: int
    score: float
    text: str | None = None


InputType = Literal["query", "document", "search_query", "search_document"]


class EmbeddingsRequest(_Request):
    # Validated as "a string or a list of strings" (blank ones answer 400 empty_input
    # naming the item); the schema documents that they must not be blank.
    input: Annotated[
        str | list[str],
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "string", "minLength": 1, "pattern": NON_BLANK_PATTERN},
                    {
                        "type": "array",
                        "minItems": 1,
                        "items": {"type": "string", "minLength": 1, "pattern": NON_BLANK_PATTERN},
                    },
                ]
            }
        ),
    ]
    model: str | None = None
    dimensions: Positive | None = None
    encoding_format: Literal["float", "base64"] = "float"
    input_type: InputType = Field(
        default="document",
        description="query: formatted as a search query (e5 'query: ', Qwen3-Embedding "
        "'Instruct: ...\\nQuery:'); document: as a passage (e5 'passage: ', Qwen3 none).",
    )
    instruction: str | None = Field(
        default=None,
        description="Query instruction for instruction-aware embedders (Qwen3-Embedding).",
    )
    user: str | None = None

    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)

    @property
    def is_query(self) -> bool:
        return self.input_type in ("query", "search_query")


class EmbeddingData(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingsResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingData]
    model: str
    usage: EmbeddingUsage


#: a field name of the index (``embedding``, ``vectors.title``)
FIELD_PATTERN = r"^[A-Za-z0-9_@][A-Za-z0-9_@.\-]{0,254}$"


class KnnLegRequest(_Request):
    """What the ``embed-leg`` connector sends from the ``ml_inference`` request processor of
    the hybrid pipelines: the query text, the search body's ``ext`` as OpenSearch serialised
    it, and the k-NN clause's field and ``k``."""

    input: list[NonBlank] = Field(
        min_length=1, max_length=1, description="the query text to embed (one, in a list)"
    )
    search_ext: dict[str, Any] = Field(
        default_factory=dict, description="the search body's ext, answered back repaired"
    )
    field: Annotated[str, Field(pattern=FIELD_PATTERN)] = Field(
        default="embedding", description="the index's knn_vector field"
    )
    k: Annotated[int, Field(ge=1, le=10_000), BeforeValidator(_integral)] = 100
    model: str | None = None
    instruction: str | None = None


class KnnLegResponse(BaseModel):
    leg: dict[str, Any] = Field(
        description='the hybrid query\'s k-NN leg: {"knn": {FIELD: {"vector": [...], "k": K}}}'
    )
    ext: dict[str, Any] = Field(
        description="the search ext to write back whole (ext.rerank restored: OpenSearch "
        "serialises it without its name)"
    )
    model: str
    usage: EmbeddingUsage


#: a language code: ``zh``, ``pt-BR``, ``zh_Hant`` (only the part before ``-``/``_`` is used)
LANGUAGE_PATTERN = "^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$"


class UnderstandRequest(_Request):
    query: NonBlank = Field(description="the query as the user typed it")
    language: Annotated[str, Field(max_length=35, pattern=LANGUAGE_PATTERN)] | None = Field(
        default=None, description="its language (ISO 639-1, e.g. zh); detected when absent"
    )


class UnderstandTerm(BaseModel):
    source: str
    target: str
    origin: str = Field(description="glossary, dictionary, neighbour or kept")


class UnderstandResponse(BaseModel):
    query: str = Field(description="the query as given")
    language: str | None = Field(description="given or detected; null when neither")
    confidence: float = Field(description="how much the translation is trusted, 0 to 1")
    translation: str = Field(description="the query in the catalog's language")
    bm25_query: str = Field(
        description="what BM25 should search: the query, plus its translation when they differ"
    )
    embed_query: str = Field(description="what the k-NN leg should embed (SIDECAR_QU_EMBED_TEXT)")
    terms: list[UnderstandTerm]
    backend: str = Field(
        description="what answered: dictionary, passthrough, none, loading (not ready yet: "
        "the query passes through)"
    )
    ext: dict[str, Any] = Field(
        description="the search body's ext (rerank query_context, ml_inference query_texts), "
        "for the ml_inference processor to write back whole"
    )


class ErrorBody(BaseModel):
    code: str
    message: str
    param: str | None = None


class ErrorEnvelope(BaseModel):
    error: ErrorBody


class Health(BaseModel):
    status: str
    models: dict[str, Any] = {}
    error: str | None = None
