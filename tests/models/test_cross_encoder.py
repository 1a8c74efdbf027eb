"""A BERT cross-encoder (the bundled MiniLM weights with a one-logit head)."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from sidecar.backends.base import InputTooLong, Pair, sigmoid
from sidecar.backends.transformers_backend import CrossEncoderReranker

PAIRS = [
    Pair("wireless mouse", "Logitech M185 wireless optical mouse", ""),
    Pair("wireless mouse", "HP LaserJet toner cartridge with a much longer title " * 3, ""),
    Pair("toner", "Dell USB keyboard", ""),
]


def test_scores_equal_plain_transformers(minilm_ce) -> None:
    r = CrossEncoderReranker(str(minilm_ce), threads=1)
    got = r.score(r.prepare(PAIRS))
    tok = AutoTokenizer.from_pretrained(minilm_ce, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(minilm_ce, local_files_only=True)
    enc = tok(
        [p.query for p in PAIRS], [p.document for p in PAIRS], padding=True, return_tensors="pt"
    )
    with torch.no_grad():
        want = model(**enc).logits[:, 0].tolist()
    assert got == pytest.approx(want, abs=1e-5)
    assert r.activate(got[0]) == pytest.approx(sigmoid(want[0]))


def test_truncation_cuts_the_document_only(minilm_ce) -> None:
    r = CrossEncoderReranker(str(minilm_ce), max_length=24, threads=1)
    (item,) = r.prepare([Pair("wireless mouse", "optical mouse " * 40, "")])
    ids, _ = item.payload
    assert len(ids) == 24
    text = r.tokenizer.decode(ids)
    assert text.startswith("[CLS] wireless mouse [SEP] optical mouse")
    with pytest.raises(InputTooLong):
        r.prepare([Pair("q", "optical mouse " * 40, "")], truncate=False)
    with pytest.raises(InputTooLong):
        r.prepare([Pair("wireless mouse " * 20, "doc", "")])
