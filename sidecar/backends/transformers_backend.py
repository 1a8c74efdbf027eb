"""In-process transformers backends (CPU, or CUDA when present).

Three model families, told apart by the folder's ``config.json``:

* a sequence-classification cross-encoder (BERT/XLM-R style, one logit): the pair is
  encoded as ``[CLS] query [SEP] document [SEP]``, score = sigmoid(logit);
* a Qwen3-Reranker causal LM: the official prompt, score = P("yes") =
  softmax([logit("no"), logit("yes")])[1] at the last position (left padding);
* a Qwen3 sequence-classification conversion of that reranker (``classifier_from_token``,
  weight = lm_head[yes] - lm_head[no], what vLLM serves): the same prompt, score =
  sigmoid(logit), equal to P("yes").

Only this module (and the other backends) import torch and transformers.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sidecar.backends.base import (
    BackendError,
    EmbedKind,
    InputTooLong,
    Pair,
    Prepared,
    sigmoid,
)
from sidecar.backends.tokenization import (
    EmbedTokens,
    Qwen3RerankTokens,
    detect_family,
    load_tokenizer,
    read_config,
)

log = logging.getLogger(__name__)


class _Torch:
    """Device, dtype and thread choices shared by the torch models."""

    def __init__(self, device: str = "auto", threads: int = 0) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch

        self.torch = torch
        if threads:
            torch.set_num_threads(threads)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32

    def tensor(self, rows: list[list[int]], pad: int, left: bool) -> Any:
        """Pad token rows to one rectangle; returns (ids, attention mask)."""
        torch = self.torch
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            if left:
                ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
                mask[i, width - len(row) :] = 1
            else:
                ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
                mask[i, : len(row)] = 1
        return ids.to(self.device), mask.to(self.device)


class CrossEncoderReranker:
    """A sequence-classification cross-encoder; only the document is ever truncated."""

    kind = "cross-encoder"

    def __init__(
        self,
        folder: str,
        name: str = "",
        max_length: int = 512,
        device: str = "auto",
        threads: int = 0,
    ) -> None:
        self.rt = _Torch(device, threads)
        from transformers import AutoModelForSequenceClassification

        self.tokenizer = load_tokenizer(folder)
        self.model = (
            AutoModelForSequenceClassification.from_pretrained(
                folder, local_files_only=True, dtype=self.rt.dtype
            )
            .to(self.rt.device)
            .eval()
        )
        num_labels = int(self.model.config.num_labels)
        if num_labels not in (1, 2):
            raise ValueError(f"{folder}: a cross-encoder needs 1 or 2 labels, not {num_labels}")
        self.num_labels = num_labels
        self.name = name or Path(folder).name
        model_max = int(getattr(self.tokenizer, "model_max_length", max_length) or max_length)
        self.max_length = min(max_length, model_max)
        self.pad_id = int(self.tokenizer.pad_token_id or 0)
        self.uses_token_types = "token_type_ids" in self.tokenizer.model_input_names

    def prepare(self, pairs: Sequence[Pair], truncate: bool = True) -> list[Prepared]:
        tok = self.tokenizer
        queries = [p.query for p in pairs]
        docs = [p.document for p in pairs]
        enc = tok(queries, docs, truncation=False)
        rows = list(enc["input_ids"])
        types = list(enc.get("token_type_ids") or [[0] * len(r) for r in rows])
        for i, row in enumerate(rows):
            if len(row) <= self.max_length:
                continue
            if not truncate:
                raise InputTooLong(i, len(row), self.max_length)
            try:  # cut the document only; a query too long to fit is an input error
                cut = tok(queries[i], docs[i], truncation="only_second", max_length=self.max_length)
            except Exception as exc:  # tokenizers: "second sequence not long enough"
                raise InputTooLong(i, len(row), self.max_length) from exc
            if len(cut["input_ids"]) > self.max_length:
                raise InputTooLong(i, len(row), self.max_length)
            rows[i] = cut["input_ids"]
            types[i] = cut.get("token_type_ids") or [0] * len(rows[i])
        return [Prepared(len(r), (r, t)) for r, t in zip(rows, types, strict=True)]

    def score(self, batch: Sequence[Prepared]) -> list[float]:
        torch = self.rt.torch
        ids, mask = self.rt.tensor([p.payload[0] for p in batch], self.pad_id, left=False)
        inputs = {"input_ids": ids, "attention_mask": mask}
        if self.uses_token_types:
            types, _ = self.rt.tensor([p.payload[1] for p in batch], 0, left=False)
            inputs["token_type_ids"] = types
        with torch.inference_mode():
            logits = self.model(**inputs).logits.float()
        # two labels: sigmoid(l1 - l0) == softmax(l)[1]
        raw = logits[:, 1] - logits[:, 0] if self.num_labels == 2 else logits[:, 0]
        return [float(x) for x in raw.cpu()]

    def activate(self, raw: float) -> float:
        return sigmoid(raw)


class Qwen3Reranker:
    """Qwen3-Reranker scored as P("yes") on the official prompt, never by generation."""

    kind = "qwen3"

    def __init__(
        self,
        folder: str,
        name: str = "",
        max_length: int = 8192,
        device: str = "auto",
        threads: int = 0,
    ) -> None:
        self.rt = _Torch(device, threads)
        config = read_config(folder)
        self.family = detect_family(config)
        if self.family == "cross-encoder":
            raise ValueError(f"{folder} is not a Qwen3 reranker")
        self.tokens = Qwen3RerankTokens(folder, max_length)
        self.tokenizer = self.tokens.tokenizer
        self.yes_id, self.no_id = self.tokens.yes_id, self.tokens.no_id
        self.pad_id = self.tokens.pad_id
        from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

        loader: Any = (
            AutoModelForCausalLM
            if self.family == "qwen3-lm"
            else AutoModelForSequenceClassification
        )
        model: Any = loader.from_pretrained(folder, local_files_only=True, dtype=self.rt.dtype)
        self.model = model.to(self.rt.device).eval()
        if self.family == "qwen3-lm":
            # Only two rows of the LM head matter: computing them alone skips the
            # vocabulary-sized matmul (151k rows for the real model).
            head = self.model.get_output_embeddings().weight
            self._head = head[[self.no_id, self.yes_id]].detach()
        self.name = name or Path(folder).name
        self.max_length = max_length

    def prepare(self, pairs: Sequence[Pair], truncate: bool = True) -> list[Prepared]:
        return self.tokens.prepare(pairs, truncate)

    def score(self, batch: Sequence[Prepared]) -> list[float]:
        torch = self.rt.torch
        ids, mask = self.rt.tensor([p.payload for p in batch], self.pad_id, left=True)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            if self.family == "qwen3-lm":
                hidden = self.model.model(
                    input_ids=ids, attention_mask=mask, position_ids=positions
                ).last_hidden_state[:, -1, :]
                two = (hidden @ self._head.T).float()  # [logit(no), logit(yes)]
                raw = two[:, 1] - two[:, 0]
            else:
                raw = (
                    self.model(input_ids=ids, attention_mask=mask, position_ids=positions)
                    .logits[:, 0]
                    .float()
                )
        return [float(x) for x in raw.cpu()]

    def activate(self, raw: float) -> float:
        # softmax([l_no, l_yes])[1] == sigmoid(l_yes - l_no)
        return sigmoid(raw)


def load_reranker(
    folder: str, name: str = "", max_length: int = 512, device: str = "auto", threads: int = 0
) -> CrossEncoderReranker | Qwen3Reranker:
    family = detect_family(read_config(folder))
    if family == "cross-encoder":
        return CrossEncoderReranker(folder, name, max_length, device, threads)
    return Qwen3Reranker(folder, name, max_length, device, threads)


class TransformersEmbedder:
    """Embeddings from a local folder: last-token pooling for decoder models
    (Qwen3-Embedding, left padding, EOS appended), mean pooling for encoders."""

    kind = "transformers"

    def __init__(
        self,
        folder: str,
        name: str = "",
        max_length: int = 8192,
        device: str = "auto",
        threads: int = 0,
    ) -> None:
        self.rt = _Torch(device, threads)
        from transformers import AutoModel

        self.tokens = EmbedTokens(folder, max_length)
        self.decoder = self.tokens.decoder
        self.tokenizer = self.tokens.tokenizer
        self.model = (
            AutoModel.from_pretrained(folder, local_files_only=True, dtype=self.rt.dtype)
            .to(self.rt.device)
            .eval()
        )
        self.dimensions = int(self.tokens.config["hidden_size"])
        self.name = name or Path(folder).name
        self.max_length = max_length
        self.pad_id, self.eos_id = self.tokens.pad_id, self.tokens.eos_id

    def prepare(
        self, texts: Sequence[str], kind: EmbedKind, instruction: str, truncate: bool = True
    ) -> list[Prepared]:
        return self.tokens.prepare(texts, kind, instruction, truncate)

    def embed(self, batch: Sequence[Prepared]) -> np.ndarray:
        torch = self.rt.torch
        ids, mask = self.rt.tensor([p.payload for p in batch], self.pad_id, left=self.decoder)
        with torch.inference_mode():
            if self.decoder:
                positions = (mask.cumsum(-1) - 1).clamp(min=0)
                hidden = self.model(
                    input_ids=ids, attention_mask=mask, position_ids=positions
                ).last_hidden_state
                pooled = hidden[:, -1, :]
            else:
                hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
                m = mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1)
            pooled = torch.nn.functional.normalize(pooled.float(), p=2, dim=-1)
        vecs = pooled.cpu().numpy()
        if not np.isfinite(vecs).all():
            raise BackendError("embedding model returned non-finite values")
        return vecs
