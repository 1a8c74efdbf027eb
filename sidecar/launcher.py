"""Start the sidecar (``sidecar-serve``) as a child process and wait until it answers.

Used by ``make run``, the demo and the tests, so they all start it the same way: its own
process group (stopped as a whole), its log in a file, ready when ``/readyz`` says 200.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path


def free_port(preferred: int = 0) -> int:
    """``preferred`` when it is free on loopback, else any free port."""
    for port in (preferred, 0) if preferred else (0,):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise RuntimeError("no free port")


def is_ready(url: str, timeout: float = 2.0) -> bool:
    # a readiness probe of our own child on loopback: its certificate need not be trusted
    context = ssl._create_unverified_context() if url.startswith("https") else None
    try:
        with urllib.request.urlopen(
            url.rstrip("/") + "/readyz", timeout=timeout, context=context
        ) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class SidecarProcess:
    def __init__(
        self,
        port: int = 0,
        log_path: Path | None = None,
        env: Mapping[str, str] | None = None,
        app: str = "sidecar.app:create_app()",
    ) -> None:
        self.app = app
        self.port = port or free_port()
        self.env = dict(env or {})
        scheme = "https" if self.env.get("SIDECAR_TLS_CERTFILE") else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.log_path = log_path or Path(os.environ.get("TMPDIR", "/tmp")) / (
            f"sidecar-{self.port}.log"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self, timeout: float = 300.0) -> str:
        env = {
            **os.environ,
            **self.env,
            "SIDECAR_PORT": str(self.port),
            "SIDECAR_HOST": "127.0.0.1",
        }
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "sidecar.serve", "--app", self.app],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the sidecar exited with code {self.proc.returncode}:\n{self.tail()}"
                )
            if is_ready(self.url):
                return self.url
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the sidecar was not ready within {timeout:.0f}s:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
