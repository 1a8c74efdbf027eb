"""Start a server as a subprocess in its own process group, wait until it is ready, and
always take the whole group down again (gunicorn forks workers; Infinity runs uvicorn)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from _load import get_status


class ServerFailed(RuntimeError):
    pass


class ManagedServer:
    """``with ManagedServer(...) as srv:`` starts the server and waits for ``ready_path``."""

    def __init__(
        self,
        name: str,
        cmd: Sequence[str],
        env: Mapping[str, str],
        port: int,
        ready_path: str,
        log_path: Path,
        start_timeout_s: float = 300.0,
        cwd: str | None = None,
    ) -> None:
        self.name = name
        self.cmd = list(cmd)
        self.env = dict(env)
        self.port = port
        self.ready_path = ready_path
        self.log_path = log_path
        self.start_timeout_s = start_timeout_s
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.start_seconds = 0.0

    def __enter__(self) -> ManagedServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            self.cmd,
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() kills every child
        )
        log.close()
        deadline = t0 + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerFailed(
                    f"{self.name} exited with {self.proc.returncode} while starting; "
                    f"last log lines:\n{self.log_tail()}"
                )
            with contextlib.suppress(OSError):
                status, _ = get_status(self.port, self.ready_path, timeout=2.0)
                if status == 200:
                    self.start_seconds = time.monotonic() - t0
                    return
            time.sleep(0.25)
        self.stop()
        raise ServerFailed(
            f"{self.name} was not ready within {self.start_timeout_s:.0f}s; "
            f"last log lines:\n{self.log_tail()}"
        )

    @property
    def pgid(self) -> int:
        """The server's process group (its leader's pid: it runs in a session of its own)."""
        return self.proc.pid if self.proc is not None else -1

    def stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        self.proc = None
        for sig, wait_s in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(wait_s)
            except subprocess.TimeoutExpired:
                continue
            # the leader is gone; give its children (gunicorn workers) a moment too
            if not _group_alive(proc.pid, wait_s):
                break
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(1)

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text[-lines:])


def _group_alive(pgid: int, wait_s: float) -> bool:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        time.sleep(0.1)
    return True
