"""Prompt templates and truncation, as pure functions.

Qwen3-Reranker is scored as P("yes") at the last position of its official prompt
(QwenLM/Qwen3-Embedding README, transformers example; tech report section 2):

    <|im_start|>system\\nJudge whether ...<|im_end|>\\n<|im_start|>user\\n
    <Instruct>: {instruction}\\n<Query>: {query}\\n<Document>: {doc}
    <|im_end|>\\n<|im_start|>assistant\\n<think>\\n\\n</think>\\n\\n

The score is never parsed from generated text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sidecar.languages import english_name

QWEN3_RERANK_SYSTEM = (
    "Judge whether the Document meets the requirements based on the Query and the Instruct "
    'provided. Note that the answer can only be "yes" or "no".'
)
QWEN3_RERANK_PREFIX = f"<|im_start|>system\n{QWEN3_RERANK_SYSTEM}<|im_end|>\n<|im_start|>user\n"
QWEN3_RERANK_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"


def qwen3_rerank_head(query: str, instruction: str) -> str:
    """The part of the user turn before the document; it is never truncated."""
    return f"<Instruct>: {instruction}\n<Query>: {query}\n<Document>: "


def qwen3_rerank_text(query: str, document: str, instruction: str) -> str:
    """The whole prompt for one pair, exactly as the model was trained on it."""
    return (
        QWEN3_RERANK_PREFIX + qwen3_rerank_head(query, instruction) + document + QWEN3_RERANK_SUFFIX
    )


def instruction_for(language: str | None, table: Mapping[str, str], default: str) -> str:
    """The rerank instruction for a query in ``language`` (None: not known): its entry in
    ``table`` (``SIDECAR_RERANK_INSTRUCTIONS``), else the table's ``*``, else ``default``;
    a ``{language}`` in it becomes the language's English name."""
    text = table.get(language or "", "") or table.get("*", "") or default
    return text.replace("{language}", english_name(language))


def qwen3_embed_query(query: str, instruction: str) -> str:
    """Qwen3-Embedding formats queries only; note: no space after ``Query:``."""
    return f"Instruct: {instruction}\nQuery:{query}"


def e5_text(text: str, is_query: bool) -> str:
    """multilingual-e5 is trained with these prefixes; without them quality drops."""
    return ("query: " if is_query else "passage: ") + text


def fit_document(
    fixed: Sequence[int], document: Sequence[int], suffix: Sequence[int], max_length: int
) -> list[int] | None:
    """Join ``fixed + document + suffix`` in at most ``max_length`` tokens.

    Only the document is cut (from its end). Returns ``None`` when even an empty
    document does not fit, i.e. the query and template alone are too long.
    """
    room = max_length - len(fixed) - len(suffix)
    if room < 0:
        return None
    return [*fixed, *document[:room], *suffix]
