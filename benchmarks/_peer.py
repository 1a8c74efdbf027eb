"""Infinity (``infinity-emb``), the peer rerank server, in a virtualenv of its own.

It pins ``numpy<2`` (and old click/typer/rich), so it can never share the project's venv.
The venv lives outside the work tree, is installed once per machine and reused while its
marker file matches the pinned versions. See /work/shared/notes/peer-servers.md.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

INFINITY_VERSION = "0.0.78"
TORCH_VERSION = "2.13.0"
REQUIREMENTS = (f"infinity-emb[server,torch]=={INFINITY_VERSION}", f"torch=={TORCH_VERSION}")
DEFAULT_PEER_DIR = (
    Path.home() / ".cache" / "ranking-sidecar" / "peers" / f"infinity-{INFINITY_VERSION}"
)
MARKER = ".bench-installed.json"
INSTALL_TIMEOUT_S = 1800


class PeerUnavailable(RuntimeError):
    """The peer venv could not be installed or does not work; the message says why."""


def venv_python(peer_dir: Path) -> Path:
    return peer_dir / "bin" / "python"


@contextlib.contextmanager
def _install_lock(peer_dir: Path) -> Iterator[None]:
    """Two benchmarks on one machine must not build the same venv at once."""
    peer_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(peer_dir.parent / f".{peer_dir.name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _marker_ok(peer_dir: Path) -> bool:
    try:
        data = json.loads((peer_dir / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return (
        data.get("requirements") == list(REQUIREMENTS)
        and (peer_dir / "bin" / "infinity_emb").is_file()
    )


def _run_logged(cmd: list[str], log: Path, timeout: float) -> None:
    with log.open("a") as fh:
        fh.write(f"\n$ {' '.join(cmd)}\n")
        fh.flush()
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, timeout=timeout)
    if proc.returncode != 0:
        tail = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
        reason = tail[-1] if tail else f"exit {proc.returncode}"
        raise PeerUnavailable(f"`{' '.join(cmd[2:5])} ...` failed: {reason[:300]} (log: {log})")


def ensure_infinity_venv(peer_dir: Path = DEFAULT_PEER_DIR, verbose: bool = True) -> Path:
    """Return the peer venv's python, installing the venv first if needed.

    Raises ``PeerUnavailable`` with a one-line reason when the install fails.
    """
    with _install_lock(peer_dir):
        if _marker_ok(peer_dir):
            return venv_python(peer_dir)
        if peer_dir.exists():  # a half-built or outdated venv: start over
            shutil.rmtree(peer_dir)
        peer_dir.parent.mkdir(parents=True, exist_ok=True)
        log = peer_dir.parent / f"{peer_dir.name}-install.log"
        log.write_text(f"install started {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n")
        if verbose:
            print(
                f"# installing Infinity into {peer_dir} (once per machine; log: {log})", flush=True
            )
        started = time.monotonic()
        try:
            _run_logged([sys.executable, "-m", "venv", str(peer_dir)], log, 300)
            pip = [
                str(venv_python(peer_dir)),
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
            ]
            # torch first and alone, so the resolver keeps exactly this version.
            _run_logged([*pip, REQUIREMENTS[1]], log, INSTALL_TIMEOUT_S)
            _run_logged([*pip, *REQUIREMENTS], log, INSTALL_TIMEOUT_S)
            probe = (
                "import json, infinity_emb, numpy, torch, transformers; "
                "print(json.dumps({'infinity_emb': infinity_emb.__version__, "
                "'torch': torch.__version__, 'transformers': transformers.__version__, "
                "'numpy': numpy.__version__}))"
            )
            out = subprocess.run(
                [str(venv_python(peer_dir)), "-c", probe],
                capture_output=True,
                text=True,
                timeout=300,
                env=peer_env(home=peer_dir),
                cwd=str(peer_dir),
            )
            if out.returncode != 0:
                raise PeerUnavailable(f"import check failed: {out.stderr.strip()[-300:]}")
            versions = json.loads(out.stdout.strip().splitlines()[-1])
        except subprocess.TimeoutExpired as exc:
            shutil.rmtree(peer_dir, ignore_errors=True)
            raise PeerUnavailable(
                f"install timed out after {exc.timeout:.0f}s (log: {log})"
            ) from None
        except PeerUnavailable:
            shutil.rmtree(peer_dir, ignore_errors=True)
            raise
        (peer_dir / MARKER).write_text(
            json.dumps(
                {
                    "requirements": list(REQUIREMENTS),
                    "versions": versions,
                    "installed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "install_seconds": round(time.monotonic() - started, 1),
                },
                indent=2,
            )
        )
        if verbose:
            print(
                f"# Infinity installed in {time.monotonic() - started:.0f}s: {versions}", flush=True
            )
        return venv_python(peer_dir)


def installed_versions(peer_dir: Path = DEFAULT_PEER_DIR) -> dict[str, str]:
    try:
        versions: dict[str, str] = json.loads((peer_dir / MARKER).read_text())["versions"]
    except (OSError, ValueError, KeyError):
        return {}
    return versions


def peer_env(threads: int = 2, home: Path = DEFAULT_PEER_DIR) -> dict[str, str]:
    """Offline, no telemetry, the same torch thread count as the sidecar; Infinity's own
    cache folder goes under ``home`` (by default it is made in the working directory)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INFINITY_", "SIDECAR_"))}
    env.pop("VIRTUAL_ENV", None)
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        DO_NOT_TRACK="1",
        INFINITY_ANONYMOUS_USAGE_STATS="0",
        OMP_NUM_THREADS=str(threads),
        MKL_NUM_THREADS=str(threads),
        INFINITY_HOME=str(home),
    )
    return env


def infinity_command(peer_dir: Path, model_dir: Path, served_name: str, port: int) -> list[str]:
    return [
        str(peer_dir / "bin" / "infinity_emb"), "v2",
        "--model-id", str(model_dir),
        "--served-model-name", served_name,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--engine", "torch",
        "--device", "cpu",
    ]  # fmt: skip


def check_model_loads(peer_dir: Path, model_dir: Path) -> None:
    """The folder was written by transformers 5; make sure the peer's 4.x reads it."""
    code = (
        "import sys\n"
        "from transformers import AutoConfig, AutoTokenizer\n"
        "c = AutoConfig.from_pretrained(sys.argv[1], local_files_only=True)\n"
        "t = AutoTokenizer.from_pretrained(sys.argv[1], local_files_only=True)\n"
        "assert c.architectures == ['BertForSequenceClassification'], c.architectures\n"
        "assert c.num_labels == 1, c.num_labels\n"
        "assert t.model_max_length == 512, t.model_max_length\n"
        "print(len(t('a query', 'a document')['input_ids']))\n"
    )
    out = subprocess.run(
        [str(venv_python(peer_dir)), "-c", code, str(model_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        env=peer_env(home=peer_dir),
        cwd=str(peer_dir),
    )
    if out.returncode != 0:
        raise PeerUnavailable(
            f"the model folder does not load in the peer's transformers: "
            f"{out.stderr.strip().splitlines()[-1][:300] if out.stderr.strip() else out.returncode}"
        )
