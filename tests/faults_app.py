"""A gunicorn app factory for fault tests: the real app and the real bundled model, with
the reranker wrapped so a test can make it slow, hang, raise or return NaN at run time.

    python -m sidecar.serve --app 'tests.faults_app:create()'   (FAULT_CONTROL=path.json)

The control file holds ``{"mode": "none" | "slow" | "hang" | "raise" | "nan",
"delay": seconds}`` and is read at every model call, so the fault changes while the
server runs. Nothing here is used outside the tests.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flask import Flask

from sidecar.app import create_app
from sidecar.backends import LoadedBackends, load_backends
from sidecar.backends.base import Pair, Prepared
from sidecar.settings import Settings


class FaultyReranker:
    def __init__(self, inner: Any, control: Path) -> None:
        self.inner = inner
        self.control = control
        self.name = inner.name
        self.kind = inner.kind
        self.max_length = inner.max_length
        self._never = threading.Event()

    def fault(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.control.read_text(encoding="utf-8"))
            return data
        except (OSError, ValueError):
            return {"mode": "none"}

    def prepare(self, pairs: Sequence[Pair], truncate: bool = True) -> list[Prepared]:
        return list(self.inner.prepare(pairs, truncate))

    def score(self, batch: Sequence[Prepared]) -> list[float]:
        fault = self.fault()
        mode = fault.get("mode", "none")
        if mode == "slow":
            time.sleep(float(fault.get("delay", 2.0)))
        elif mode == "hang":
            self._never.wait(float(fault.get("delay", 3600.0)))
        elif mode == "raise":
            raise RuntimeError("injected model failure")
        out = list(self.inner.score(batch))
        if mode == "nan":
            out[0] = float("nan")
        return out

    def activate(self, raw: float) -> float:
        return float(self.inner.activate(raw))


def create() -> Flask:
    control = Path(os.environ["FAULT_CONTROL"])

    def loader(settings: Settings) -> LoadedBackends:
        loaded = load_backends(settings)
        loaded.reranker = FaultyReranker(loaded.reranker, control)
        return loaded

    return create_app(Settings.from_env(), loader=loader)
