"""benchmarks/gpu_rerank.py runs on a CPU with the tiny model and prints its table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.vllm.conftest import Served

ROOT = Path(__file__).resolve().parents[2]


def test_quick_run_prints_the_table(vllm: Served, tmp_path: Path) -> None:
    # the package's vLLM server, so CI starts no third one; a standalone
    # `benchmarks/gpu_rerank.py --quick` starts its own (README: Benchmarks)
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "gpu_rerank.py"),
            "--quick",
            "--model",
            str(vllm.rerank_model),
            "--vllm-url",
            vllm.rerank_url,
            "--seconds",
            "1",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "| candidates | system | concurrency | pairs/s |" in out.stdout
    (result,) = tmp_path.glob("gpu_rerank-cpu-quick-2*.json")
    runs = json.loads(result.read_text())["report"]["runs"]
    assert {(r["system"], r["candidates"]) for r in runs} == {
        (s, n) for s in ("sidecar", "vllm-direct") for n in (20, 100)
    }
    assert all(r["errors"] == 0 and r["pairs_per_s"] > 0 and r["tflops"] > 0 for r in runs)
    assert (tmp_path / "gpu_rerank-cpu-quick-latest.md").is_file()
