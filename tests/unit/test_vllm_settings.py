"""Settings and version checks of the vllm backends (no server needed)."""

import pytest

from sidecar.backends.vllm_backend import parse_version, version_supported
from sidecar.settings import Settings, SettingsError


def test_auto_picks_vllm_when_its_url_is_set() -> None:
    s = Settings.from_env(
        {
            "SIDECAR_RERANK_MODEL": "/models/Qwen3-Reranker-0.6B",
            "SIDECAR_VLLM_RERANK_URL": "http://vllm-reranker:8000",
            "SIDECAR_EMBED_MODEL": "/models/Qwen3-Embedding-0.6B",
            "SIDECAR_VLLM_EMBED_URL": "http://vllm-embedder:8000",
            "SIDECAR_VLLM_TIMEOUT_S": "2.5",
            "SIDECAR_VLLM_CHECK_VERSION": "0",
        }
    )
    assert (s.resolved_rerank_backend, s.resolved_embed_backend) == ("vllm", "vllm")
    assert s.vllm_timeout_s == 2.5 and s.vllm_check_version is False
    assert Settings(rerank_model="/m").resolved_rerank_backend == "transformers"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SIDECAR_RERANK_BACKEND": "vllm", "SIDECAR_RERANK_MODEL": "/m"}, "VLLM_RERANK_URL"),
        ({"SIDECAR_VLLM_RERANK_URL": "http://v:8000"}, "needs SIDECAR_RERANK_MODEL"),
        ({"SIDECAR_EMBED_BACKEND": "vllm", "SIDECAR_EMBED_MODEL": "/m"}, "VLLM_EMBED_URL"),
        ({"SIDECAR_VLLM_EMBED_URL": "http://v:8000"}, "needs SIDECAR_EMBED_MODEL"),
        ({"SIDECAR_VLLM_RERANK_URL": "vllm:8000", "SIDECAR_RERANK_MODEL": "/m"}, "http://"),
        ({"SIDECAR_VLLM_TIMEOUT_S": "0"}, "VLLM_TIMEOUT_S"),
        ({"SIDECAR_VLLM_RETRIES": "-1"}, "VLLM_RETRIES"),
    ],
)
def test_bad_vllm_settings_name_the_variable(env, message) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_supported_versions() -> None:
    assert parse_version("0.32.0") == (0, 32, 0)
    assert parse_version("v0.32.1rc2+cpu") == (0, 32, 1)
    assert version_supported("0.32.0") and version_supported("0.32.4")
    assert not version_supported("0.31.9") and not version_supported("0.33.0")


def test_the_vllm_client_imports_neither_vllm_nor_torch() -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, sidecar.backends.vllm_backend, sidecar.backends.tokenization;"
            "print(sorted(m for m in ('torch', 'vllm', 'transformers') if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "[]"  # the tokenizer loads with the model folder, later
