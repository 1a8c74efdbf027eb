"""Contract: Elasticsearch's inference services against the real sidecar (Flask app, bundled
model). No Elasticsearch inference node runs here (docs/elasticsearch.md), so each test
replays the request Elasticsearch's source builds and reads the answer with a port of the
parser Elasticsearch uses, failure cases included.

Read from elastic/elasticsearch, ``x-pack/plugin/inference/src/{main,test}/java/org/
elasticsearch/xpack/inference/`` (8.19 / 9.1 line; the commit each file was read at):

- ``services/cohere/request/v2/CohereV2RerankRequest.java`` (096a7c64) and its test
  ``CohereV2RerankRequestTests.java`` (719080f5): the body and headers;
  ``services/cohere/request/CohereUtils.java`` (2be548cc): ``Request-Source``.
- ``services/cohere/response/CohereRankedResponseEntity.java`` (21c8dd29) and
  ``external/response/XContentUtils.java`` (33a8f713): the answer's parser.
- ``services/huggingface/request/rerank/HuggingFaceRerankRequestEntity.java`` and its test
  (37327a8d): ``{"texts", "query", "return_text"?, "top_n"?}``;
  ``services/huggingface/response/HuggingFaceRerankResponseEntity.java`` (4d9ec59a).
- ``services/custom/request/CustomRequest.java`` (015db297), ``RerankParameters.java``,
  ``RequestParameters.java`` (233bf93e), test ``CustomRequestTests.java`` (02ffef66,
  ``testCreateRequest_HandlesQuery``): the template; ``services/custom/response/
  RerankResponseParser.java`` and ``BaseCustomResponseParser.java`` (3df0f709): the paths.
- ``services/openai/request/OpenAiEmbeddingsRequestEntity.java`` (4979002),
  ``services/openai/response/OpenAiEmbeddingsResponseEntity.java`` (2874d3f5).
- ``rank/textsimilarity/TextSimilarityRankFeaturePhaseRankCoordinatorContext.java``
  (0196a7c3): one score per input document, placed by ``index``.

The endpoint definitions (URL paths, the custom template and JSON paths) are read from
docs/elasticsearch.md, so the page and the test cannot drift apart.
"""

from __future__ import annotations

import base64
import json
import math
import re
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient

from tests.conftest import MOUSE_DOCS

DOC = Path(__file__).resolve().parents[2] / "docs" / "elasticsearch.md"


class EsParseError(Exception):
    """What Elasticsearch's parser would throw (the rerank, and the search, would fail)."""


# -- the endpoint definitions of docs/elasticsearch.md -------------------------------------


def doc_endpoints() -> dict[str, dict[str, Any]]:
    """``PUT _inference/<task>/<id>`` blocks of the page: id -> body."""
    out: dict[str, dict[str, Any]] = {}
    for block in re.findall(r"```http\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S):
        first, _, rest = block.partition("\n")
        m = re.fullmatch(r"PUT _inference/(\w+)/([\w-]+)", first.strip())
        if m:
            out[m.group(2)] = {"task": m.group(1), **json.loads(rest)}
    return out


def path_of(url: str) -> str:
    return urlsplit(url).path


# -- a token stream like Jackson's, over the JSON text ---------------------------------------


def tokens(raw: bytes) -> Iterator[tuple[str, Any]]:
    """(kind, value) in document order: START_OBJECT, END_OBJECT, START_ARRAY, END_ARRAY,
    FIELD_NAME, VALUE (numbers keep whether they were written as integers)."""
    tree = json.loads(raw, object_pairs_hook=lambda pairs: ("object", pairs))

    def walk(node: Any) -> Iterator[tuple[str, Any]]:
        if isinstance(node, tuple) and node and node[0] == "object":
            yield "START_OBJECT", None
            for key, value in node[1]:
                yield "FIELD_NAME", key
                yield from walk(value)
            yield "END_OBJECT", None
        elif isinstance(node, list):
            yield "START_ARRAY", None
            for item in node:
                yield from walk(item)
            yield "END_ARRAY", None
        else:
            yield "VALUE", node

    yield from walk(tree)


class Parser:
    """The subset of XContentParser the ported parsers use."""

    def __init__(self, raw: bytes) -> None:
        self._tokens = list(tokens(raw))
        self._i = -1

    def next(self) -> str | None:
        self._i += 1
        return self.current

    @property
    def current(self) -> str | None:
        return self._tokens[self._i][0] if 0 <= self._i < len(self._tokens) else None

    @property
    def value(self) -> Any:
        return self._tokens[self._i][1]

    def expect(self, kind: str) -> None:
        if self.current != kind:
            raise EsParseError(f"expected {kind} but found {self.current}")


def _number(p: Parser, what: str) -> float:
    if p.current != "VALUE" or isinstance(p.value, bool) or not isinstance(p.value, int | float):
        raise EsParseError(f"[{what}] is not a number: {p.value!r}")
    return float(p.value)


def _int_value(p: Parser, what: str) -> int:
    # stricter than Jackson's intValue() (which would truncate 1.0): an index must be written
    # as an integer
    if p.current != "VALUE" or not isinstance(p.value, int) or isinstance(p.value, bool):
        raise EsParseError(f"[{what}] is not an integer: {p.value!r}")
    return int(p.value)


def _ranked_doc(p: Parser, score_names: tuple[str, ...], text_field: bool) -> dict[str, Any]:
    """``parseRankedDocObject`` of CohereRankedResponseEntity / HuggingFaceRerankResponseEntity:
    known fields only; any other throws (``throwUnknownField``)."""
    p.expect("START_OBJECT")
    index, score, text = -1, -1.0, None
    p.next()
    while p.current != "END_OBJECT":
        if p.current == "FIELD_NAME":
            name = p.value
            if name == "index":
                p.next()
                index = _int_value(p, name)
                p.next()
            elif name in score_names:
                p.next()
                score = _number(p, name)
                p.next()
            elif name == "text" and text_field:
                p.next()
                text = p.value
                p.next()
            elif name == "document":
                p.next()
                p.expect("START_OBJECT")
                while True:  # do { if FIELD_NAME "text": read } while (next != END_OBJECT)
                    if p.current == "FIELD_NAME" and p.value == "text":
                        p.next()
                        text = p.value
                    if p.next() == "END_OBJECT":
                        break
                p.next()
            else:
                raise EsParseError(f"unknown field [{name}]")
        else:
            p.next()
    return {"index": index, "relevance_score": score, "text": text}


def es_parse_cohere(raw: bytes) -> list[dict[str, Any]]:
    """CohereRankedResponseEntity.fromResponse: a root object; the first ``results`` field
    found before any END_OBJECT (XContentUtils.positionParserAtTokenAfterField); a list of
    ranked docs."""
    p = Parser(raw)
    p.next()
    p.expect("START_OBJECT")
    while True:
        kind = p.next()
        if kind is None or kind == "END_OBJECT":
            raise EsParseError("Failed to find required field [results] in Cohere rerank response")
        if kind == "FIELD_NAME" and p.value == "results":
            p.next()
            break
    p.expect("START_ARRAY")
    out = []
    while p.next() != "END_ARRAY":
        out.append(_ranked_doc(p, ("relevance_score",), text_field=False))
    return out


def es_parse_hugging_face(raw: bytes, top_n: int | None = None) -> list[dict[str, Any]]:
    """HuggingFaceRerankResponseEntity.fromResponse: a root array of ranked docs (``score``
    or ``relevance_score``, ``text`` or ``document.text``), sorted by score, cut to top_n."""
    p = Parser(raw)
    p.next()
    p.expect("START_ARRAY")
    docs = []
    while p.next() != "END_ARRAY":
        docs.append(_ranked_doc(p, ("score", "relevance_score"), text_field=True))
    docs.sort(key=lambda d: -d["relevance_score"])
    return docs if top_n is None else docs[:top_n]


def json_path(root: Any, path: str) -> Any:
    """MapPathExtractor for the paths the docs use: ``$.a.b[*].c``."""
    if not path.startswith("$."):
        raise EsParseError(f"path must start with $.: {path}")
    nodes: Any = root
    spread = False
    for part in path[2:].split("."):
        star = part.endswith("[*]")
        key = part[:-3] if star else part

        def step(node: Any, key: str = key) -> Any:
            if not isinstance(node, dict) or key not in node:
                raise EsParseError(f"Unable to find field [{key}] in map")
            return node[key]

        nodes = [step(n) for n in nodes] if spread else step(nodes)
        if star:
            if spread or not isinstance(nodes, list):
                raise EsParseError(f"[{key}] is not a list")
            spread = True
    return nodes


def es_parse_custom(raw: bytes, parser: dict[str, str]) -> list[dict[str, Any]]:
    """RerankResponseParser.transform over ``jsonParser.map()`` (the root must be an object):
    scores (numbers) required; indices (integers) and texts optional, each list as long as
    the scores."""
    root = json.loads(raw)
    if not isinstance(root, dict):
        raise EsParseError("the response root must be an object (jsonParser.map())")
    scores = json_path(root, parser["relevance_score"])
    if not isinstance(scores, list) or not all(
        isinstance(s, int | float) and not isinstance(s, bool) for s in scores
    ):
        raise EsParseError("Failed to parse rerank scores")
    indices = None
    if "reranked_index" in parser:
        indices = json_path(root, parser["reranked_index"])
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in indices):
            raise EsParseError("Failed to parse rerank indices")
        if len(indices) != len(scores):
            raise EsParseError("The number of index fields was not the same as the scores")
    return [
        {"index": indices[i] if indices is not None else i, "relevance_score": float(s)}
        for i, s in enumerate(scores)
    ]


def retriever_scores(ranked: list[dict[str, Any]], inputs: int) -> list[float]:
    """TextSimilarityRankFeaturePhaseRankCoordinatorContext: a score per input, by index;
    a count mismatch fails the search."""
    scores = [0.0] * len(ranked)
    for doc in ranked:
        if not 0 <= doc["index"] < len(scores):
            raise EsParseError(f"index {doc['index']} out of bounds for length {len(scores)}")
        scores[doc["index"]] = doc["relevance_score"]
    if len(scores) != inputs:
        raise EsParseError(
            "Reranker input document count and returned score count mismatch: "
            f"[{inputs}] vs [{len(scores)}]"
        )
    return scores


def custom_body(template: str, query: str, inputs: list[str], **params: Any) -> str:
    """CustomRequest: ``${name}`` -> the JSON of the value (ValidatingSubstitutor); a
    placeholder left unfilled throws."""
    values = {"query": json.dumps(query, ensure_ascii=False), "input": json.dumps(inputs)}
    values |= {k: json.dumps(v) for k, v in params.items()}
    out = re.sub(r"\$\{([^}]+)\}", lambda m: values.get(m.group(1), m.group(0)), template)
    left = re.search(r"\$\{[^}]+\}", out)
    if left:
        raise EsParseError(f"Found placeholder [{left.group(0)}] in field [request]")
    return out


def es_compact(obj: Any) -> bytes:
    """A body as XContentBuilder writes it: compact, UTF-8, keys in insertion order."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# -- the parsers themselves, on Elasticsearch's own fixtures -----------------------------------


def test_ported_cohere_parser_reads_the_fixture_and_refuses_extra_fields() -> None:
    fixture = b"""{"id": "1983d114", "results": [
        {"document": {"text": "Washington"}, "index": 2, "relevance_score": 0.98005307},
        {"index": 0, "relevance_score": 0.10194652}],
      "meta": {"api_version": {"version": "1"}, "billed_units": {"search_units": 1}}}"""
    docs = es_parse_cohere(fixture)
    assert [(d["index"], d["text"]) for d in docs] == [(2, "Washington"), (0, None)]
    with pytest.raises(EsParseError, match="unknown field"):
        es_parse_cohere(b'{"results": [{"index": 0, "relevance_score": 0.5, "rank": 1}]}')
    with pytest.raises(EsParseError, match="results"):  # meta ends before results is found
        es_parse_cohere(b'{"meta": {"x": 1}, "results": []}')


def test_ported_hugging_face_parser_reads_the_fixture() -> None:
    fixture = b"""[{"index": 4, "score": -0.22222222222222222, "text": "ranked second"},
                   {"index": 1, "score": 1.11111111111111111, "text": "ranked first"}]"""
    assert [d["index"] for d in es_parse_hugging_face(fixture)] == [1, 4]
    assert [d["index"] for d in es_parse_hugging_face(fixture, top_n=1)] == [1]
    with pytest.raises(EsParseError):
        es_parse_hugging_face(b'{"results": []}')


def test_ported_custom_template_matches_elasticsearch_test() -> None:
    # CustomRequestTests.testCreateRequest_HandlesQuery
    body = custom_body('{"input": ${input}, "query": ${query}}', "query string", ["abc", "123"])
    assert json.loads(body) == {"input": ["abc", "123"], "query": "query string"}
    with pytest.raises(EsParseError, match="top_n"):
        custom_body('{"input": ${input}, "top_n": ${top_n}}', "q", ["a"])


# -- cohere ----------------------------------------------------------------------------------


def cohere_headers(api_key: str = "any") -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {api_key}",
        "Request-Source": "unspecified:elasticsearch",
    }


def test_doc_cohere_endpoint_calls_v2_rerank() -> None:
    ep = doc_endpoints()["sidecar-cohere"]
    assert ep["task"] == "rerank" and ep["service"] == "cohere"
    settings = ep["service_settings"]
    assert path_of(settings["url"]) in ("", "/")  # the service appends /v2/rerank
    assert settings["model_id"] == "default"  # required for v2; a name the sidecar accepts


@pytest.mark.parametrize("query", ["wireless mouse", "无线鼠标"])
def test_cohere_retriever_request(client: FlaskClient, query: str) -> None:
    """What the retriever sends (top_n and return_documents null): the minimal v2 body."""
    model_id = doc_endpoints()["sidecar-cohere"]["service_settings"]["model_id"]
    body = es_compact({"model": model_id, "query": query, "documents": MOUSE_DOCS})
    r = client.post("/v2/rerank", data=body, headers=cohere_headers())
    assert r.status_code == 200, r.get_data(as_text=True)
    docs = es_parse_cohere(r.get_data())
    scores = retriever_scores(docs, len(MOUSE_DOCS))
    assert max(range(3), key=lambda i: scores[i]) == 0
    assert all(d["text"] is None for d in docs)
    assert r.get_json()["meta"]["api_version"] == {"version": "2"}


def test_cohere_task_settings_top_n_and_documents(client: FlaskClient) -> None:
    """CohereV2RerankRequestTests.testXContent_WritesAllFields: return_documents, top_n and
    max_chunks_per_doc from the task settings."""
    body = es_compact(
        {
            "model": "default",
            "query": "wireless mouse",
            "documents": MOUSE_DOCS,
            "return_documents": True,
            "top_n": 2,
            "max_chunks_per_doc": 3,
        }
    )
    r = client.post("/v2/rerank", data=body, headers=cohere_headers())
    docs = es_parse_cohere(r.get_data())
    assert len(docs) == 2
    assert (docs[0]["index"], docs[0]["text"]) == (0, MOUSE_DOCS[0])
    for item in r.get_json()["results"]:
        assert set(item) == {"index", "relevance_score", "document"}
        assert set(item["document"]) == {"text"}


def test_endpoints_older_than_8_19_call_v1_rerank(client: FlaskClient) -> None:
    """Endpoints created before 8.19 call {url}/v1/rerank with string documents: the v1
    answer's results are parseable too (``meta`` follows ``results``)."""
    body = es_compact({"model": "default", "query": "mouse", "documents": MOUSE_DOCS})
    r = client.post("/v1/rerank", data=body, headers=cohere_headers())
    assert retriever_scores(es_parse_cohere(r.get_data()), 3)


def test_cohere_unknown_model_is_an_error_not_a_wrong_answer(client: FlaskClient) -> None:
    body = es_compact({"model": "rerank-v3.5", "query": "q", "documents": ["a"]})
    r = client.post("/v2/rerank", data=body, headers=cohere_headers())
    assert r.status_code == 404
    assert r.get_json()["error"]["param"] == "model"


# -- hugging_face ----------------------------------------------------------------------------


def test_hugging_face_endpoint_and_request(client: FlaskClient) -> None:
    settings = doc_endpoints()["sidecar-hf"]["service_settings"]
    path = path_of(settings["url"])
    assert path == "/rerank"
    for body in (
        {"texts": MOUSE_DOCS, "query": "wireless mouse"},  # HuggingFaceRerankRequestEntityTests
        {"texts": MOUSE_DOCS, "query": "wireless mouse", "return_text": True, "top_n": 8},
    ):
        r = client.post(
            path,
            data=es_compact(body),
            headers={"Content-Type": "application/json", "Authorization": "Bearer any"},
        )
        assert r.status_code == 200, r.get_data(as_text=True)
        docs = es_parse_hugging_face(r.get_data(), body.get("top_n"))  # type: ignore[arg-type]
        scores = retriever_scores(docs, len(MOUSE_DOCS))
        assert max(range(3), key=lambda i: scores[i]) == 0
        if body.get("return_text"):
            assert {d["index"]: d["text"] for d in docs} == dict(enumerate(MOUSE_DOCS))


# -- custom ----------------------------------------------------------------------------------


def test_custom_endpoint_template_and_paths(client: FlaskClient) -> None:
    settings = doc_endpoints()["sidecar-custom"]["service_settings"]
    parser = settings["response"]["json_parser"]
    body = custom_body(settings["request"], "无线鼠标", MOUSE_DOCS)
    headers = {k: v.replace("${api_key}", "any") for k, v in settings["headers"].items()}
    r = client.post(path_of(settings["url"]), data=body.encode("utf-8"), headers=headers)
    assert r.status_code == 200, r.get_data(as_text=True)
    scores = retriever_scores(es_parse_custom(r.get_data(), parser), len(MOUSE_DOCS))
    assert max(range(3), key=lambda i: scores[i]) == 0


def test_custom_template_with_recall_order_is_valid(client: FlaskClient) -> None:
    text = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"```json\n(.*?)```", text, re.S)
    template = next(json.loads("{" + b + "}")["request"] for b in blocks if "in_recall_order" in b)
    body = custom_body(template, "wireless mouse", MOUSE_DOCS)
    assert json.loads(body)["in_recall_order"] is True
    r = client.post("/v1/rerank", data=body.encode(), content_type="application/json")
    assert r.status_code == 200, r.get_data(as_text=True)
    parser = doc_endpoints()["sidecar-custom"]["service_settings"]["response"]["json_parser"]
    assert len(retriever_scores(es_parse_custom(r.get_data(), parser), 3)) == 3


def test_custom_parser_refuses_a_root_array(client: FlaskClient) -> None:
    """Why the custom endpoint points at /v1/rerank and not at the TEI route."""
    r = client.post("/rerank", json={"query": "mouse", "texts": MOUSE_DOCS})
    with pytest.raises(EsParseError, match="root"):
        es_parse_custom(r.get_data(), {"relevance_score": "$[*].score"})


# -- the retriever's window ------------------------------------------------------------------


def test_a_full_rank_window_gets_one_score_per_document(client: FlaskClient) -> None:
    window = [f"product {i}: wireless mouse model {i}" for i in range(20)]
    body = es_compact({"model": "default", "query": "wireless mouse", "documents": window})
    r = client.post("/v2/rerank", data=body, headers=cohere_headers())
    scores = retriever_scores(es_parse_cohere(r.get_data()), 20)
    assert all(math.isfinite(s) for s in scores)


# -- openai embeddings -----------------------------------------------------------------------


def openai_vectors(raw: bytes) -> list[list[float]]:
    """OpenAiEmbeddingsResponseEntity: ``data[].embedding`` as a float array or as base64 of
    little-endian float32 (a length not a multiple of 4 throws)."""
    out = []
    for entry in json.loads(raw)["data"]:
        emb = entry["embedding"]
        if isinstance(emb, str):
            packed = base64.b64decode(emb, validate=True)
            if len(packed) % 4:
                raise EsParseError("base64-decoded length is not a multiple of 4")
            out.append(list(struct.unpack(f"<{len(packed) // 4}f", packed)))
        else:
            out.append([float(x) for x in emb])
    return out


def test_openai_embeddings_as_elasticsearch_asks(client: FlaskClient) -> None:
    settings = doc_endpoints()["sidecar-embed"]["service_settings"]
    assert path_of(settings["url"]) == "/v1/embeddings"
    texts = ["wireless mouse", "无线鼠标"]
    plain = {"input": texts, "model": settings["model_id"]}  # OpenAiEmbeddingsRequestEntity
    floats = openai_vectors(
        client.post(
            "/v1/embeddings", data=es_compact(plain), headers={"Content-Type": "application/json"}
        ).get_data()
    )
    packed = openai_vectors(
        client.post(
            "/v1/embeddings",
            data=es_compact({**plain, "encoding_format": "base64"}),
            headers={"Content-Type": "application/json"},
        ).get_data()
    )
    assert len(floats) == len(packed) == 2
    for a, b in zip(floats, packed, strict=True):
        assert len(a) == len(b) == 384
        assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < 1e-6
