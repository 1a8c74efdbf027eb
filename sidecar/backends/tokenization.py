"""Token ids for the Qwen3 models, shared by the in-process and the vLLM backends.

The prompt is applied in exactly one place: here, with the prompt strings of
``sidecar.scoring.prompts``. The transformers backend runs the ids in process; the
vLLM backend sends the same ids to a vLLM server (``/classify`` and
``/v1/embeddings`` take token ids), so both score the same token sequence, truncation
and non-Latin text included, and vLLM never applies a template of its own.

This module needs a model folder's tokenizer (``transformers`` + ``tokenizers``) and
never torch: it also runs in a sidecar that only talks to vLLM.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sidecar.backends.base import EmbedKind, InputTooLong, Pair, Prepared
from sidecar.scoring.prompts import (
    QWEN3_RERANK_PREFIX,
    QWEN3_RERANK_SUFFIX,
    fit_document,
    qwen3_embed_query,
    qwen3_rerank_head,
)


def read_config(folder: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: no config.json; is this a model folder?")
    with path.open(encoding="utf-8") as fh:
        config: dict[str, Any] = json.load(fh)
    return config


def detect_family(config: dict[str, Any]) -> str:
    """``qwen3-lm``, ``qwen3-seqcls`` or ``cross-encoder``, from config.json alone."""
    archs = " ".join(config.get("architectures") or [])
    model_type = str(config.get("model_type", ""))
    is_qwen = model_type.startswith("qwen")
    if "ForSequenceClassification" in archs:
        return "qwen3-seqcls" if is_qwen else "cross-encoder"
    if "ForCausalLM" in archs and is_qwen:
        return "qwen3-lm"
    raise ValueError(
        f"unsupported reranker architecture {archs or '?'} (model_type {model_type or '?'}): "
        "expected a *ForSequenceClassification cross-encoder or a Qwen3 causal LM"
    )


def load_tokenizer(folder: str, **kwargs: Any) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder, local_files_only=True, **kwargs)


class Qwen3RerankTokens:
    """The official Qwen3-Reranker prompt as token ids; only the document is ever cut.

    ``prepare`` yields ``Prepared(length, ids)`` with ids = prefix + instruction/query +
    document + suffix, exactly what the model card's recipe tokenizes.
    """

    def __init__(self, folder: str, max_length: int) -> None:
        self.tokenizer = load_tokenizer(folder, padding_side="left")
        tok = self.tokenizer
        self.yes_id = tok.convert_tokens_to_ids("yes")
        self.no_id = tok.convert_tokens_to_ids("no")
        for word, tid in (("yes", self.yes_id), ("no", self.no_id)):
            if tid is None or tid == tok.unk_token_id:
                raise ValueError(f"{folder}: the tokenizer has no single token {word!r}")
        self.prefix_ids = list(tok(QWEN3_RERANK_PREFIX, add_special_tokens=False)["input_ids"])
        self.suffix_ids = list(tok(QWEN3_RERANK_SUFFIX, add_special_tokens=False)["input_ids"])
        self.pad_id = int(
            tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id or 0
        )
        self.max_length = max_length

    def prepare(self, pairs: Sequence[Pair], truncate: bool = True) -> list[Prepared]:
        tok = self.tokenizer
        heads = [qwen3_rerank_head(p.query, p.instruction) for p in pairs]
        bodies = [h + p.document for h, p in zip(heads, pairs, strict=True)]
        enc = tok(bodies, add_special_tokens=False, return_offsets_mapping=True)
        out = []
        for i, (ids, offsets, head) in enumerate(
            zip(enc["input_ids"], enc["offset_mapping"], heads, strict=True)
        ):
            # Tokens that end within the head (instruction + query) are protected; the
            # head's trailing space may merge into the document's first token.
            protected = sum(1 for _, end in offsets if end <= len(head.rstrip(" ")))
            total = len(self.prefix_ids) + len(ids) + len(self.suffix_ids)
            if total > self.max_length and not truncate:
                raise InputTooLong(i, total, self.max_length)
            row = fit_document(
                self.prefix_ids + ids[:protected],
                ids[protected:],
                self.suffix_ids,
                self.max_length,
            )
            if row is None:
                raise InputTooLong(
                    i, len(self.prefix_ids) + protected + len(self.suffix_ids), self.max_length
                )
            out.append(Prepared(len(row), row))
        return out


class EmbedTokens:
    """Token ids for an embedding model: Qwen3-Embedding style for Qwen models (query
    instruction, EOS appended, last-token pooling downstream), plain for encoders."""

    def __init__(self, folder: str, max_length: int) -> None:
        config = read_config(folder)
        self.config = config
        self.decoder = str(config.get("model_type", "")).startswith("qwen")
        self.tokenizer = load_tokenizer(folder, padding_side="left" if self.decoder else "right")
        self.max_length = max_length
        tok = self.tokenizer
        self.pad_id = int(tok.pad_token_id if tok.pad_token_id is not None else 0)
        eos = tok.eos_token_id if tok.eos_token_id is not None else tok.pad_token_id
        self.eos_id = None if eos is None else int(eos)

    def format(self, text: str, kind: EmbedKind, instruction: str) -> str:
        if self.decoder:
            return qwen3_embed_query(text, instruction) if kind == "query" else text
        return text

    def prepare(
        self, texts: Sequence[str], kind: EmbedKind, instruction: str, truncate: bool = True
    ) -> list[Prepared]:
        tok = self.tokenizer
        formatted = [self.format(t, kind, instruction) for t in texts]
        out = []
        rows = tok(formatted, add_special_tokens=not self.decoder)["input_ids"]
        for i, ids in enumerate(rows):
            if self.decoder and self.eos_id is not None and (not ids or ids[-1] != self.eos_id):
                ids = [*ids, self.eos_id]
            if len(ids) > self.max_length:
                if not truncate:
                    raise InputTooLong(i, len(ids), self.max_length)
                ids = [*ids[: self.max_length - 1], ids[-1]]
            out.append(Prepared(len(ids), ids))
        return out
