"""docker-compose.yml's vLLM commands parse with vLLM's own ``vllm serve`` parser."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]

PARSE = """
import json, sys
from vllm.entrypoints.launchers.cli_args import make_arg_parser, validate_parsed_serve_args
from vllm.utils.argparse_utils import FlexibleArgumentParser
parser = make_arg_parser(FlexibleArgumentParser(prog="vllm serve"))
out = {}
for name, argv in json.loads(sys.argv[1]).items():
    args = parser.parse_args(argv)
    validate_parsed_serve_args(args)
    out[name] = {"model": args.model_tag, "runner": args.runner, "convert": args.convert,
                 "hf_overrides": args.hf_overrides, "dtype": args.dtype,
                 "gpu_memory_utilization": args.gpu_memory_utilization}
print("PARSED " + json.dumps(out))
"""


def test_vllm_serve_accepts_the_compose_commands(vllm_python: Path) -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    commands = {}
    for name in ("vllm-reranker", "vllm-embedder"):
        assert services[name]["entrypoint"] == ["vllm", "serve"]
        commands[name] = [
            re.sub(r"\$\{[A-Z_0-9]+:-([^}]*)\}", r"\1", str(a)) for a in services[name]["command"]
        ]
    out = subprocess.run(
        [str(vllm_python), "-c", PARSE, json.dumps(commands)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    (line,) = [x for x in out.stdout.splitlines() if x.startswith("PARSED ")]
    parsed = json.loads(line[len("PARSED ") :])
    rerank, embed = parsed["vllm-reranker"], parsed["vllm-embedder"]
    assert rerank["model"] == "/models/Qwen3-Reranker-0.6B" and rerank["runner"] == "pooling"
    assert rerank["hf_overrides"]["is_original_qwen3_reranker"] is True
    assert embed["convert"] == "embed" and embed["hf_overrides"] == {"is_matryoshka": True}
    assert rerank["gpu_memory_utilization"] + embed["gpu_memory_utilization"] <= 0.9
