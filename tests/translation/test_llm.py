"""The LLM translator against a loopback server that answers like vLLM's chat completions."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sidecar.translation.base import ChainTranslator, Translator
from sidecar.translation.dictionary import DictionaryTranslator
from sidecar.translation.llm import SYSTEM_PROMPT, LlmTranslator, Unusable, parse_answer
from tests.loopback import LoopbackServer, Received

MODEL = "Qwen/Qwen3-0.6B"


def completion(content: Any, finish_reason: str | None = "stop") -> dict[str, Any]:
    """vLLM 0.32's ``/v1/chat/completions`` answer (non-streaming), as recorded from the
    real server (tests/vllm/test_vllm_translator.py prints one); only the content, the
    finish reason and the model name are set here."""
    return {
        "id": "chatcmpl-878c22dbc18f954e",
        "object": "chat.completion",
        "created": 1796054218,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": content,
                    "refusal": None,
                    "annotations": None,
                    "audio": None,
                    "function_call": None,
                    "reasoning": None,
                },
                "logprobs": None,
                "finish_reason": finish_reason,
                "stop_reason": None,
                "token_ids": None,
                "routed_experts": None,
            }
        ],
        "service_tier": None,
        "system_fingerprint": "vllm-0.32.0-221a7e6f",
        "usage": {
            "prompt_tokens": 192,
            "total_tokens": 224,
            "completion_tokens": 32,
            "prompt_tokens_details": None,
            "completion_tokens_details": None,
        },
        "prompt_logprobs": None,
        "prompt_token_ids": None,
        "prompt_text": None,
        "kv_transfer_params": None,
        "ec_transfer_params": None,
        "metrics": None,
    }


def answering(content: Any, finish_reason: str | None = "stop") -> Callable[[Received], Any]:
    def answer(req: Received) -> tuple[int, Any]:
        return 200, completion(content, finish_reason)

    return answer


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    srv = LoopbackServer(answering("wireless mouse"))
    yield srv
    srv.close()


@pytest.fixture
def llm(server: LoopbackServer) -> Iterator[LlmTranslator]:
    tr = LlmTranslator(server.url, MODEL, api_key="secret", timeout_s=2.0, cache_size=4)
    yield tr
    tr.close()


def bodies(server: LoopbackServer) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in server.received if r.path == "/v1/chat/completions"]


def test_the_request_is_the_fixed_prompt_greedy_without_thinking(
    llm: LlmTranslator, server: LoopbackServer
) -> None:
    assert isinstance(llm, Translator)
    r = llm.translate("无线鼠标", "zh")
    assert (r.text, r.language, r.backend, r.confidence) == ("wireless mouse", "zh", "llm", 0.9)
    assert [(t.source, t.target, t.origin) for t in r.terms] == [
        ("无线鼠标", "wireless mouse", "llm")
    ]
    (req,) = server.received
    assert (req.method, req.path) == ("POST", "/v1/chat/completions")
    assert req.headers["authorization"] == "Bearer secret"
    body = json.loads(req.body)
    assert body["model"] == MODEL
    assert body["messages"] == [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": "无线鼠标"},
    ]
    assert body["temperature"] == 0
    assert body["chat_template_kwargs"] == {"enable_thinking": False}
    assert body["stop"] and body["stream"] is False and body["n"] == 1
    assert 0 < body["max_tokens"] <= 96
    # only the query varies: the system prompt is the same for every language
    llm.translate("ratón inalámbrico", "es")
    assert bodies(server)[1]["messages"][0] == body["messages"][0]
    for words in ("translate", "English", "brand names", "model numbers", "units"):
        assert words in SYSTEM_PROMPT


def test_answers_are_cached_per_language_and_query(
    llm: LlmTranslator, server: LoopbackServer
) -> None:
    first = llm.translate("无线鼠标", "zh")
    again = llm.translate("  无线鼠标 ", "zh-CN")  # the same cleaned query and language
    assert again.text == first.text and "cached" in again.notes
    assert len(server.received) == 1 and llm.calls == 1
    llm.translate("无线鼠标", "ja")  # another language is another question
    assert len(server.received) == 2
    for q in ("a", "b", "c", "d", "e"):  # cache_size 4: the oldest entries go
        llm.translate(q, "es")
    assert llm.cache_size() == 4
    llm.translate("无线鼠标", "zh")
    assert len(server.received) == 8


def test_the_cache_is_thread_safe(llm: LlmTranslator, server: LoopbackServer) -> None:
    results: list[str] = []

    def work() -> None:
        for i in range(20):
            results.append(llm.translate(f"q{i % 6}", "es").text)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["wireless mouse"] * 80
    assert llm.cache_size() == 4 and llm.calls == len(server.received) >= 6


def test_a_server_that_never_answers_times_out_and_keeps_the_query(
    caplog: pytest.LogCaptureFixture,
) -> None:
    srv = LoopbackServer(answering("wireless mouse"), gate=threading.Event())
    tr = LlmTranslator(srv.url, MODEL, timeout_s=0.5)
    try:
        t0 = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="sidecar.translation"):
            r = tr.translate("无线鼠标", "zh")
        assert time.monotonic() - t0 < 2.0
        assert (r.text, r.confidence, r.terms, r.backend) == ("无线鼠标", 0.0, (), "llm")
        assert "TimeoutError" in r.notes[0] and "the LLM server failed" in caplog.text
        assert tr.cache_size() == 0  # not cached: the next query asks again
        assert srv.gate is not None
        srv.gate.set()
        tr.translate("无线鼠标", "zh")
        assert tr.calls == 2
    finally:
        tr.close()
        srv.close()


def test_a_server_that_is_down_keeps_the_query() -> None:
    srv = LoopbackServer()
    url = srv.url
    srv.close()
    tr = LlmTranslator(url, MODEL, timeout_s=0.5)
    try:
        r = tr.translate("ratón inalámbrico", "es")
        assert (r.text, r.confidence) == ("ratón inalámbrico", 0.0)
        assert "ConnectionError" in r.notes[0]
    finally:
        tr.close()


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, {"error": {"message": "boom"}}),
        (400, {"error": {"message": "model not found"}}),
        (200, b"not json"),
        (200, {"choices": []}),
        (200, {"object": "error"}),
    ],
)
def test_errors_and_malformed_answers_keep_the_query(status: int, body: Any) -> None:
    srv = LoopbackServer(lambda req: (status, body))
    tr = LlmTranslator(srv.url, MODEL)
    try:
        r = tr.translate("无线鼠标", "zh")
        assert (r.text, r.confidence, r.terms) == ("无线鼠标", 0.0, ())
        assert tr.cache_size() == 0
    finally:
        tr.close()
        srv.close()


@pytest.mark.parametrize(
    ("content", "finish", "expected"),
    [
        ("wireless mouse", "stop", "wireless mouse"),
        ('"Wireless mouse."', "stop", "Wireless mouse"),
        ("Translation: 「wireless mouse」", "stop", "wireless mouse"),
        ("English: Logitech M185 wireless mouse", "stop", "Logitech M185 wireless mouse"),
        ("<think>\n\n</think>\n\nwireless mouse", "stop", "wireless mouse"),
        ("<think>the user wants English</think>wireless  mouse", "stop", "wireless mouse"),
        ("okay</think>\nwireless mouse", "stop", "wireless mouse"),
        ("\n  wireless mouse\nNote: a computer mouse", "length", "wireless mouse"),
        ("USB-C charger 20 W", "stop", "USB-C charger 20 W"),
    ],
)
def test_parse_answer_keeps_the_first_clean_line(content: str, finish: str, expected: str) -> None:
    assert parse_answer(content, finish, "无线鼠标", 256) == expected


@pytest.mark.parametrize(
    ("content", "finish", "why"),
    [
        (None, "stop", "no text"),
        ("", "stop", "empty"),
        ("  \n \n", "stop", "empty"),
        ("<think>the user wants", "length", "empty"),
        ("wireless mouse with a very long", "length", "cut off"),
        ('""', "stop", "nothing to search"),
        ("...!?", "stop", "nothing to search"),
        ("无线鼠标", "stop", "not English"),
        ("wireless 鼠标", "stop", "not English"),
        ("Ġmouse\ufffd", "stop", "broken"),
        ("I'm sorry, I cannot translate that.", "stop", "declined"),
        ("mouse " * 20, "stop", "much longer"),
    ],
)
def test_garbage_answers_are_unusable(content: Any, finish: str, why: str) -> None:
    with pytest.raises(Unusable, match=why):
        parse_answer(content, finish, "无线鼠标", 256)


def test_a_garbage_answer_keeps_the_query_and_the_chain_falls_through(
    toy_translator: DictionaryTranslator,
) -> None:
    srv = LoopbackServer(answering("鼠标鼠标鼠标"))
    tr = LlmTranslator(srv.url, MODEL)
    try:
        r = tr.translate("无线鼠标", "zh")
        assert (r.text, r.confidence, r.terms) == ("无线鼠标", 0.0, ())
        assert r.notes == ("the answer is not English",)
        chain = ChainTranslator([tr, toy_translator])
        got = chain.translate("无线鼠标", "zh")
        assert (got.text, got.backend) == ("wireless mouse", "dictionary")
        assert tr.calls == 1  # the unusable answer was cached too (greedy: it won't change)
    finally:
        tr.close()
        srv.close()


def test_a_good_answer_wins_the_chain(
    llm: LlmTranslator, toy_translator: DictionaryTranslator
) -> None:
    got = ChainTranslator([llm, toy_translator]).translate("无线鼠标", "zh")
    assert (got.text, got.backend) == ("wireless mouse", "llm")


class Detector:
    def __init__(self, lang: str | None) -> None:
        self.lang = lang
        self.seen: list[str] = []

    def detect(self, text: str) -> tuple[str | None, float]:
        self.seen.append(text)
        return self.lang, 0.99


def test_english_passes_through_without_a_call(server: LoopbackServer) -> None:
    detector = Detector("en")
    tr = LlmTranslator(server.url, MODEL, detector=detector)
    try:
        r = tr.translate("wireless mouse", "en")
        assert (r.text, r.confidence, r.backend) == ("wireless mouse", 1.0, "passthrough")
        assert tr.translate("Logitech M185", "EN-us").backend == "passthrough"
        assert detector.seen == []  # a given language is not detected again
        assert tr.translate("wireless mouse").backend == "passthrough"  # detected
        assert detector.seen == ["wireless mouse"]
        assert server.received == []
        detector.lang = "es"
        assert tr.translate("ratón inalámbrico").text == "wireless mouse"
        assert len(server.received) == 1
    finally:
        tr.close()


def test_the_default_detector_recognises_the_script(server: LoopbackServer) -> None:
    tr = LlmTranslator(server.url, MODEL)
    try:
        assert tr.translate("无线鼠标").language == "zh"
        assert len(server.received) == 1
    finally:
        tr.close()


def test_empty_and_odd_input_never_raises(llm: LlmTranslator, server: LoopbackServer) -> None:
    assert llm.translate("   ", "zh").text == ""
    assert llm.translate("\x00\u200b", "zh").confidence == 0.0
    assert server.received == []
    r = llm.translate(None, "zh")  # type: ignore[arg-type]
    assert r.confidence in (0.0, 0.9)
    long = "无线鼠标" * 200
    llm.translate(long, "zh")
    sent = bodies(server)[-1]
    assert len(sent["messages"][1]["content"]) <= llm.max_chars
    assert sent["max_tokens"] == llm.max_tokens


def test_server_info_checks_the_model(server: LoopbackServer) -> None:
    def answer(req: Received) -> tuple[int, Any]:
        if req.path == "/version":
            return 200, {"version": "0.32.0"}
        return 200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]}

    server.answer = answer
    tr = LlmTranslator(server.url, MODEL)
    other = LlmTranslator(server.url, "Qwen/Qwen3-8B")
    try:
        assert tr.server_info() == {"version": "0.32.0", "model": MODEL, "url": server.url}
        with pytest.raises(Exception, match="not 'Qwen/Qwen3-8B'"):
            other.server_info()
    finally:
        tr.close()
        other.close()


def test_a_model_name_is_required() -> None:
    with pytest.raises(ValueError, match="model"):
        LlmTranslator("http://127.0.0.1:1", "")
