"""The LLM translator against a real vLLM server (``--runner generate``) serving a tiny
random Qwen3 causal LM with Qwen3's chat template. The model's answers are nonsense:
what is tested is the plumbing (request accepted, chat template with thinking off,
answer parsed, cache, fall-through of a ``ChainTranslator`` to the dictionary)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from sidecar.translation.base import ChainTranslator
from sidecar.translation.dictionary import DictionaryTranslator
from sidecar.translation.lexicons import TableLexicon
from sidecar.translation.llm import CHAT_PATH, LlmTranslator
from sidecar.translation.vocabulary import build_vocabulary
from tests import models_factory
from tests.translation.conftest import BRANDS, CATALOG
from tests.vllm import env
from tests.vllm.proxy import FaultProxy
from tests.vllm.test_compose_flags import PARSE

#: the GPU serve command of docs/gpu-vllm.md ("The LLM query translator"), checked below
#: with vLLM's own parser
DOCUMENTED_SERVE = (
    "vllm serve Qwen/Qwen3-0.6B --served-model-name qwen3-translate --port 8003 "
    "--max-model-len 2048 --gpu-memory-utilization 0.15"
)
CHAT_SEED = 5
MAX_MODEL_LEN = 1024
#: Qwen3's chat template (Qwen/Qwen3-0.6B tokenizer_config.json), the parts a translation
#: request uses: ChatML turns, and ``enable_thinking=false`` pre-fills an empty think block.
QWEN3_CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}"
    "{{- '<think>\\n\\n</think>\\n\\n' }}"
    "{%- endif %}"
    "{%- endif %}"
)


@dataclass(frozen=True)
class Chat:
    url: str
    model: str
    folder: Path


@pytest.fixture(scope="module")
def chat(vllm_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chat]:
    folder = models_factory.build_tiny_qwen3(
        tmp_path_factory.mktemp("vllm-chat"), seed=CHAT_SEED, **models_factory.VLLM_SHAPE
    )
    (folder / "chat_template.jinja").write_text(QWEN3_CHAT_TEMPLATE)
    server = env.VllmServer(
        vllm_python,
        env.server_args("generate", folder, MAX_MODEL_LEN),
        tmp_path_factory.mktemp("vllm-chat-logs") / "chat.log",
        env={"VLLM_CPU_OMP_THREADS_BIND": str(min(1, (os.cpu_count() or 1) - 1))},
    )
    try:
        try:
            url = server.start(timeout=300)
        except env.VllmEnvError as exc:
            pytest.fail(f"vLLM did not start: {exc}", pytrace=False)
        print(f"\n[vllm] chat server ready: {url} in {server.start_seconds:.1f}s")
        yield Chat(url, str(folder), folder)
        assert server.alive, f"the chat server died during the tests:\n{server.tail()}"
    finally:
        server.stop()


@pytest.fixture
def dictionary() -> Iterator[DictionaryTranslator]:
    tr = DictionaryTranslator(
        build_vocabulary(CATALOG, brands=BRANDS),
        neighbours=False,
        lexicons={
            "zh": TableLexicon("toy-zh", {"无线": ["wireless"], "鼠标": ["mouse (computing)"]}),
            "ja": None,
            "es": None,
            "fr": None,
            "de": None,
        },
    )
    yield tr
    tr.close()


def chat_posts(proxy: FaultProxy) -> list[tuple[str, str, int]]:
    return [r for r in proxy.requests if r[1] == CHAT_PATH]


def test_the_server_renders_the_prompt_without_thinking(chat: Chat) -> None:
    """vLLM 0.32 takes ``chat_template_kwargs`` and the template sees ``enable_thinking``."""
    tr = LlmTranslator(chat.url, chat.model)
    try:
        body = tr.request_body("无线鼠标")
        ids = {}
        for thinking in (False, True):
            r = requests.post(
                chat.url + "/tokenize",
                json={
                    "model": chat.model,
                    "messages": body["messages"],
                    "add_generation_prompt": True,
                    "chat_template_kwargs": {"enable_thinking": thinking},
                },
                timeout=30,
            )
            assert r.status_code == 200, r.text
            ids[thinking] = r.json()["tokens"]
        rendered = requests.post(
            chat.url + "/detokenize", json={"model": chat.model, "tokens": ids[False]}, timeout=30
        ).json()["prompt"]
        assert rendered.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
        assert "无线鼠标" in rendered and "brand names" in rendered
        assert len(ids[True]) < len(ids[False])
    finally:
        tr.close()


def test_translate_reaches_the_server_parses_and_caches(chat: Chat) -> None:
    with FaultProxy(chat.url) as proxy:
        tr = LlmTranslator(proxy.url, chat.model, timeout_s=60)
        try:
            first = tr.translate("无线鼠标", "zh")
            assert chat_posts(proxy) == [("POST", CHAT_PATH, 200)]  # accepted by vLLM
            assert first.original == "无线鼠标" and first.language == "zh"
            assert first.backend == "llm"
            if first.confidence > 0:  # the random model happened to say something usable
                assert first.text and first.terms[0].origin == "llm"
            else:  # nonsense: kept, with the reason parse_answer gave
                assert (first.text, first.terms) == ("无线鼠标", ()) and first.notes
            print(f"\n[vllm] tiny model's translation: {first}")
            again = tr.translate("无线鼠标", "zh")
            assert len(chat_posts(proxy)) == 1 and tr.calls == 1  # cached
            assert "cached" in again.notes
            assert (again.text, again.confidence) == (first.text, first.confidence)
            # greedy decoding: asking again without the cache gives the same answer
            fresh = LlmTranslator(proxy.url, chat.model, timeout_s=60)
            try:
                assert fresh.translate("无线鼠标", "zh").text == first.text
            finally:
                fresh.close()
            assert tr.translate("wireless mouse", "en").backend == "passthrough"
            assert len(chat_posts(proxy)) == 2
        finally:
            tr.close()


def test_the_raw_answer_is_the_chat_completions_shape(chat: Chat) -> None:
    """What the unit tests' loopback server imitates (tests/translation/test_llm.py)."""
    tr = LlmTranslator(chat.url, chat.model)
    try:
        data = tr.client.post(CHAT_PATH, tr.request_body("无线鼠标"))
    finally:
        tr.close()
    print("\n[vllm] chat completion:", json.dumps(data, ensure_ascii=False)[:1500])
    assert data["object"] == "chat.completion"
    (choice,) = data["choices"]
    assert choice["message"]["role"] == "assistant"
    assert isinstance(choice["message"]["content"], str)
    assert choice["finish_reason"] in ("stop", "length")
    assert data["usage"]["completion_tokens"] <= tr.request_body("无线鼠标")["max_tokens"]


def test_an_unusable_answer_falls_through_to_the_dictionary(
    chat: Chat, dictionary: DictionaryTranslator
) -> None:
    # one token at most: either cut off at max_tokens or empty, unusable either way
    with FaultProxy(chat.url) as proxy:
        llm = LlmTranslator(proxy.url, chat.model, timeout_s=60, max_tokens=1)
        try:
            r = llm.translate("无线鼠标", "zh")
            assert (r.text, r.confidence, r.backend) == ("无线鼠标", 0.0, "llm")
            chain = ChainTranslator([llm, dictionary])
            got = chain.translate("无线鼠标", "zh")
            assert (got.text, got.backend) == ("wireless mouse", "dictionary")
            assert len(chat_posts(proxy)) == 1  # the chain's LLM step came from the cache
        finally:
            llm.close()


def test_a_wrong_model_name_or_a_stopped_server_keeps_the_query(chat: Chat) -> None:
    wrong = LlmTranslator(chat.url, "no-such-model", timeout_s=30)
    down = LlmTranslator("http://127.0.0.1:1", chat.model, timeout_s=1)
    try:
        for tr in (wrong, down):
            r = tr.translate("无线鼠标", "zh")
            assert (r.text, r.confidence, r.terms) == ("无线鼠标", 0.0, ())
        assert "404" in wrong.translate("无线鼠标", "zh").notes[0]
        with pytest.raises(Exception, match="no-such-model"):
            wrong.server_info()
        right = LlmTranslator(chat.url, chat.model)
        assert right.server_info()["version"].startswith(env.VLLM_VERSION)
        right.close()
    finally:
        wrong.close()
        down.close()


def test_generate_server_flags() -> None:
    args = env.server_args("generate", "/m", 1024)
    assert args[:4] == ["--model", "/m", "--runner", "generate"]
    assert "--hf-overrides" not in args and "--chat-template" not in args  # the model's own


def test_the_documented_serve_command_parses(vllm_python: Path) -> None:
    argv = shlex.split(DOCUMENTED_SERVE)[2:]
    out = subprocess.run(
        [str(vllm_python), "-c", PARSE, json.dumps({"translate": argv})],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    (line,) = [x for x in out.stdout.splitlines() if x.startswith("PARSED ")]
    parsed = json.loads(line[len("PARSED ") :])["translate"]
    assert parsed["model"] == "Qwen/Qwen3-0.6B" and parsed["runner"] == "auto"
    assert parsed["hf_overrides"] in ({}, None) and parsed["convert"] == "auto"
