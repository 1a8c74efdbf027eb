"""The real gunicorn server on a free loopback port, as OpenSearch would call it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from sidecar.launcher import SidecarProcess, free_port
from tests.conftest import MOUSE_DOCS
from tests.loopback import self_signed_cert

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    proc = SidecarProcess(
        log_path=tmp_path_factory.mktemp("gunicorn") / "server.log",
        # the batcher across requests is the e5 cosine reranker's (the learned one scores
        # each request's window on its own)
        env={"SIDECAR_THREADS": "8", "SIDECAR_RERANK_BACKEND": "embedding"},
    )
    try:
        yield proc.start(timeout=120)
    finally:
        proc.stop()


def test_acceptance_queries_over_http(server: str) -> None:
    for query in ("wireless mouse", "无线鼠标"):
        r = requests.post(
            server + "/v1/rerank", json={"query": query, "documents": MOUSE_DOCS}, timeout=30
        )
        assert r.status_code == 200
        assert r.json()["results"][0]["index"] == 0


def test_malformed_json_gets_the_envelope(server: str) -> None:
    r = requests.post(
        server + "/v1/rerank",
        data=b'{"query": ',
        timeout=10,
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_json"


def test_body_over_limit_is_413(server: str) -> None:
    big = json.dumps({"query": "q", "documents": ["x" * 1_000_000] * 20})
    r = requests.post(
        server + "/v1/rerank", data=big, timeout=30, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"


def test_concurrent_requests_are_batched_and_all_answered(server: str) -> None:
    def one(i: int) -> list[int]:
        docs = [f"{d} variant {i}" for d in MOUSE_DOCS]
        r = requests.post(
            server + "/v1/rerank", json={"query": "wireless mouse", "documents": docs}, timeout=60
        )
        r.raise_for_status()
        return sorted(x["index"] for x in r.json()["results"])

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(one, range(16))) == [[0, 1, 2]] * 16
    metrics = requests.get(server + "/metrics", timeout=10).text
    sizes = [line for line in metrics.splitlines() if line.startswith("sidecar_batch_size_count")]
    assert sizes  # batches were recorded
    batches = float(sizes[0].split()[-1])
    assert batches < 16 + 1  # 16 requests (plus the probe) never took more calls than requests


def test_repeated_request_from_cache_is_fast(server: str) -> None:
    body = {"query": "cache me", "documents": MOUSE_DOCS}
    with requests.Session() as s:
        s.post(server + "/v1/rerank", json=body, timeout=30).raise_for_status()
        r = s.post(server + "/v1/rerank", json=body, timeout=30)
    assert r.json()["meta"]["cached"] == 3


def test_make_run_demo_prints_a_working_curl_and_rankings() -> None:
    env = {**os.environ, "SIDECAR_PORT": str(free_port())}
    out = subprocess.run(
        [sys.executable, "-m", "sidecar.demo", "--once"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "curl -s http://127.0.0.1:" in out.stdout
    lines = out.stdout.splitlines()
    for query in ("wireless mouse", "无线鼠标"):
        first = lines[lines.index(f"query: {query}") + 1]
        assert first.endswith("Logitech M185 wireless optical mouse")


def test_tls_with_gunicorn_certfile_and_keyfile(tmp_path) -> None:
    """The documented TLS set-up: gunicorn serves HTTPS with SIDECAR_TLS_CERTFILE/KEYFILE."""
    cert, key = self_signed_cert(tmp_path)
    proc = SidecarProcess(
        log_path=tmp_path / "tls.log",
        env={
            "SIDECAR_TLS_CERTFILE": str(cert),
            "SIDECAR_TLS_KEYFILE": str(key),
            "SIDECAR_API_KEYS": "tls-key",
        },
    )
    url = proc.start(timeout=120)
    try:
        assert url.startswith("https://")
        r = requests.post(
            url + "/v1/rerank",
            json={"query": "mouse", "documents": MOUSE_DOCS},
            headers={"Authorization": "Bearer tls-key"},
            verify=str(cert),
            timeout=30,
        )
        assert r.status_code == 200 and r.json()["results"][0]["index"] == 0
        with pytest.raises(requests.exceptions.SSLError):  # an untrusted certificate
            requests.get(url + "/healthz", timeout=10)
        with pytest.raises(requests.exceptions.ConnectionError):  # no plain HTTP
            requests.get(url.replace("https", "http") + "/healthz", timeout=10)
    finally:
        proc.stop()


def test_two_instances_keep_their_own_control_sockets(tmp_path) -> None:
    """gunicorn's control socket is per instance: stopping one sidecar leaves the other's."""
    env = {"XDG_RUNTIME_DIR": str(tmp_path), "SIDECAR_RERANK_BACKEND": "embedding"}
    first = SidecarProcess(log_path=tmp_path / "first.log", env=env)
    second = SidecarProcess(log_path=tmp_path / "second.log", env=env)
    first.start(timeout=180)
    try:
        second.start(timeout=180)
        try:
            sockets = {p.name for p in tmp_path.glob("*.ctl")}
            assert sockets == {
                f"ranking-sidecar-127.0.0.1-{first.port}.ctl",
                f"ranking-sidecar-127.0.0.1-{second.port}.ctl",
            }, sockets
            first.stop()
            assert {p.name for p in tmp_path.glob("*.ctl")} == {
                f"ranking-sidecar-127.0.0.1-{second.port}.ctl"
            }
            assert requests.get(second.url + "/healthz", timeout=10).status_code == 200
        finally:
            second.stop()
    finally:
        first.stop()
    assert not list(tmp_path.glob("*.ctl"))
