from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from sidecar.app import create_app
from sidecar.backends import LoadedBackends, load_backends
from sidecar.backends.base import Prepared
from sidecar.settings import Settings
from tests import models_factory

MOUSE_DOCS = [
    "Logitech M185 wireless optical mouse",
    "HP LaserJet toner cartridge",
    "Dell USB keyboard",
]


@pytest.fixture(scope="session")
def tiny_qwen3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return models_factory.build_tiny_qwen3(tmp_path_factory.mktemp("tiny-qwen3"))


@pytest.fixture(scope="session")
def tiny_qwen3_seqcls(tiny_qwen3: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return models_factory.convert_to_seqcls(tiny_qwen3, tmp_path_factory.mktemp("seqcls"))


@pytest.fixture(scope="session")
def minilm_ce(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return models_factory.build_minilm_cross_encoder(tmp_path_factory.mktemp("ce-minilm"))


class WrappedReranker:
    """The real reranker, wrapped: counts calls and can be slow, fail or return NaN."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.kind = inner.kind
        self.max_length = inner.max_length
        self.calls = 0
        self.pairs = 0
        self.delay = 0.0
        self.fail: Exception | None = None
        self.nan = False
        self.gate: threading.Event | None = None
        self.instructions: list[str] = []

    def prepare(self, pairs: Sequence[Any], truncate: bool = True) -> list[Prepared]:
        self.instructions.extend(p.instruction for p in pairs)
        return list(self.inner.prepare(pairs, truncate))

    def score(self, batch: Sequence[Prepared]) -> list[float]:
        self.calls += 1
        self.pairs += len(batch)
        if self.gate is not None:
            self.gate.wait(10)
        if self.delay:
            time.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        out = list(self.inner.score(batch))
        if self.nan:
            out[0] = float("nan")
        return out

    def activate(self, raw: float) -> float:
        return float(self.inner.activate(raw))


def wrapping_loader(holder: dict[str, WrappedReranker]) -> Callable[[Settings], LoadedBackends]:
    def load(settings: Settings) -> LoadedBackends:
        loaded = load_backends(settings)
        wrapped = WrappedReranker(loaded.reranker)
        holder["reranker"] = wrapped
        loaded.reranker = wrapped
        return loaded

    return load


def make_client(settings: Settings, **kw: Any) -> tuple[Flask, FlaskClient]:
    app = create_app(settings, **kw)
    engine = app.extensions["sidecar.engine"]
    engine.wait_ready(120)
    return app, app.test_client()


@pytest.fixture(scope="session")
def default_app() -> Iterator[Flask]:
    app, _ = make_client(Settings())
    yield app
    app.extensions["sidecar.engine"].close()


@pytest.fixture()
def client(default_app: Flask) -> FlaskClient:
    return default_app.test_client()


@pytest.fixture()
def wrapped_app(request: pytest.FixtureRequest) -> Iterator[tuple[FlaskClient, WrappedReranker]]:
    """A fresh app on the bundled e5 model whose reranker is wrapped; settings via marker."""
    marker = request.node.get_closest_marker("settings")
    overrides = dict(marker.kwargs) if marker else {}
    # the engine's pair path (batcher, score cache, deadlines) under the bundled cosine
    # reranker; the learned one scores whole windows (tests/api/test_learned_*.py)
    overrides.setdefault("rerank_backend", "embedding")
    holder: dict[str, WrappedReranker] = {}
    app, client = make_client(Settings(**overrides), loader=wrapping_loader(holder))
    wrapped = holder["reranker"]
    wrapped.calls = wrapped.pairs = 0  # forget the readiness probe
    yield client, wrapped
    if wrapped.gate is not None:
        wrapped.gate.set()
    app.extensions["sidecar.engine"].close()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "settings(**kw): Settings overrides for wrapped_app")
