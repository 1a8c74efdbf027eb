from hypothesis import given
from hypothesis import strategies as st

from sidecar.scoring.prompts import (
    QWEN3_RERANK_PREFIX,
    QWEN3_RERANK_SUFFIX,
    e5_text,
    fit_document,
    qwen3_embed_query,
    qwen3_rerank_text,
)


def test_qwen3_rerank_prompt_is_the_official_one() -> None:
    text = qwen3_rerank_text("wireless mouse", "Logitech M185", "Given a web search query")
    assert text == (
        "<|im_start|>system\nJudge whether the Document meets the requirements based on the "
        'Query and the Instruct provided. Note that the answer can only be "yes" or "no".'
        "<|im_end|>\n<|im_start|>user\n"
        "<Instruct>: Given a web search query\n<Query>: wireless mouse\n<Document>: Logitech M185"
        "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    )
    assert QWEN3_RERANK_PREFIX.endswith("<|im_start|>user\n")
    assert QWEN3_RERANK_SUFFIX.endswith("</think>\n\n")  # both newlines: scores depend on it


def test_qwen3_embedding_query_has_no_space_after_query_colon() -> None:
    assert (
        qwen3_embed_query("red shoes", "Find products")
        == "Instruct: Find products\nQuery:red shoes"
    )


def test_e5_prefixes() -> None:
    assert e5_text("x", True) == "query: x"
    assert e5_text("x", False) == "passage: x"


ids = st.lists(st.integers(0, 1000), max_size=40)


@given(ids, ids, ids, st.integers(0, 120))
def test_fit_document_only_cuts_the_document(fixed, doc, suffix, max_length) -> None:
    out = fit_document(fixed, doc, suffix, max_length)
    if len(fixed) + len(suffix) > max_length:
        assert out is None
        return
    assert out is not None
    assert len(out) <= max_length
    assert out[: len(fixed)] == fixed
    assert out[len(out) - len(suffix) :] == suffix if suffix else True
    kept = out[len(fixed) : len(out) - len(suffix)]
    assert kept == doc[: len(kept)]
    # nothing is cut when it fits
    if len(fixed) + len(doc) + len(suffix) <= max_length:
        assert kept == doc
