"""Qwen3-Reranker scoring on a tiny random Qwen3 built offline, loaded like the real one."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from sidecar.backends.base import Pair, sigmoid
from sidecar.backends.transformers_backend import Qwen3Reranker, detect_family, read_config
from sidecar.scoring.prompts import (
    QWEN3_RERANK_PREFIX,
    QWEN3_RERANK_SUFFIX,
    qwen3_rerank_head,
    qwen3_rerank_text,
)
from sidecar.settings import DEFAULT_RERANK_INSTRUCTION as INSTR
from tests.conftest import make_client

PAIRS = [
    Pair("red running shoes", "Nike Air Zoom Pegasus running shoe, red", INSTR),
    Pair("red running shoes", "Stainless steel kitchen knife set", INSTR),
    Pair("zapatillas de running rojas", "Zapatillas Adidas rojas para correr, talla 42", INSTR),
    Pair("无线鼠标", "Logitech M185 wireless optical mouse " * 4, "Find products"),
]


@pytest.fixture(scope="module")
def reranker(tiny_qwen3) -> Qwen3Reranker:
    return Qwen3Reranker(str(tiny_qwen3), max_length=4096, threads=1)


def hand_scores(folder, pairs) -> list[float]:
    """P(yes) the way the Qwen3-Reranker model card computes it, pair by pair."""
    tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    lm = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True).eval()
    yes, no = tok.convert_tokens_to_ids("yes"), tok.convert_tokens_to_ids("no")
    out = []
    for p in pairs:
        ids = tok(qwen3_rerank_text(p.query, p.document, p.instruction), add_special_tokens=False)
        with torch.no_grad():
            logits = lm(input_ids=torch.tensor([ids["input_ids"]])).logits[0, -1]
        two = torch.stack([logits[no], logits[yes]])
        out.append(torch.softmax(two, dim=0)[1].item())
    return out


def test_family_detection(tiny_qwen3, tiny_qwen3_seqcls, minilm_ce) -> None:
    assert detect_family(read_config(tiny_qwen3)) == "qwen3-lm"
    assert detect_family(read_config(tiny_qwen3_seqcls)) == "qwen3-seqcls"
    assert detect_family(read_config(minilm_ce)) == "cross-encoder"


def test_scores_equal_hand_computation_from_the_logits(reranker, tiny_qwen3) -> None:
    raw = reranker.score(reranker.prepare(PAIRS))
    got = [reranker.activate(x) for x in raw]
    assert got == pytest.approx(hand_scores(tiny_qwen3, PAIRS), abs=1e-5)
    # a random model is near 0.5 but not exactly: the yes/no logits are really read
    assert all(0.0 < s < 1.0 for s in got) and len({round(s, 6) for s in got}) == len(got)


def test_prompt_tokens_are_the_official_template(reranker) -> None:
    tok = reranker.tokenizer
    (item,) = reranker.prepare(PAIRS[:1])
    text = tok.decode(item.payload)
    assert text == qwen3_rerank_text(PAIRS[0].query, PAIRS[0].document, INSTR)
    assert text.endswith("</think>\n\n")


def test_score_does_not_depend_on_batch_neighbours(reranker) -> None:
    alone = [reranker.score(reranker.prepare([p]))[0] for p in PAIRS]
    together = reranker.score(reranker.prepare(PAIRS))  # left-padded to the longest
    reversed_ = reranker.score(reranker.prepare(PAIRS[::-1]))[::-1]
    assert together == pytest.approx(alone, abs=1e-5)
    assert reversed_ == pytest.approx(alone, abs=1e-5)


def test_truncation_cuts_only_the_document(tiny_qwen3) -> None:
    r = Qwen3Reranker(str(tiny_qwen3), max_length=160, threads=1)
    pair = Pair("wireless mouse", "Logitech wireless keyboard and mouse combo " * 30, INSTR)
    (item,) = r.prepare([pair])
    assert item.length == 160
    text = r.tokenizer.decode(item.payload)
    head = QWEN3_RERANK_PREFIX + qwen3_rerank_head(pair.query, INSTR)
    assert text.startswith(head)  # system turn, instruction and query intact
    assert text.endswith(QWEN3_RERANK_SUFFIX)  # template end intact
    kept = text[len(head) : -len(QWEN3_RERANK_SUFFIX)]
    assert 0 < len(kept) < len(pair.document) and pair.document.startswith(kept.strip())


def test_too_long_without_truncation_or_query_too_long(tiny_qwen3) -> None:
    from sidecar.backends.base import InputTooLong

    r = Qwen3Reranker(str(tiny_qwen3), max_length=160, threads=1)
    with pytest.raises(InputTooLong) as exc:
        r.prepare([Pair("q", "short", INSTR), Pair("q", "long " * 200, INSTR)], truncate=False)
    assert exc.value.index == 1
    with pytest.raises(InputTooLong):  # the query is never cut: it is an input error
        r.prepare([Pair("mouse " * 200, "doc", INSTR)])


def test_seqcls_conversion_gives_the_same_probability(reranker, tiny_qwen3_seqcls) -> None:
    """What vLLM serves (classifier_from_token ["no", "yes"]): sigmoid(logit) == P(yes)."""
    cls = Qwen3Reranker(str(tiny_qwen3_seqcls), max_length=4096, threads=1)
    assert cls.family == "qwen3-seqcls"
    lm_scores = [reranker.activate(x) for x in reranker.score(reranker.prepare(PAIRS))]
    cls_scores = [sigmoid(x) for x in cls.score(cls.prepare(PAIRS))]
    assert cls_scores == pytest.approx(lm_scores, abs=1e-5)


def test_served_through_the_api(tiny_qwen3) -> None:
    from sidecar.settings import Settings

    app, client = make_client(
        Settings(rerank_model=str(tiny_qwen3), embed_backend="none", max_length=1024)
    )
    try:
        docs = [p.document for p in PAIRS[:3]]
        r = client.post("/v1/rerank", json={"query": PAIRS[0].query, "documents": docs})
        assert r.status_code == 200
        got = {x["index"]: x["relevance_score"] for x in r.get_json()["results"]}
        want = hand_scores(tiny_qwen3, [Pair(PAIRS[0].query, d, INSTR) for d in docs])
        assert [got[i] for i in range(3)] == pytest.approx(want, abs=1e-5)
        r = client.post("/v1/embeddings", json={"input": "x"})
        assert r.status_code == 502  # no embedder configured: a clear error, not a crash
    finally:
        app.extensions["sidecar.engine"].close()
