"""The retry policies of the ingest's two HTTP clients (urllib3's ``Retry``), against real
HTTP servers on loopback: the sidecar embedder, and the cluster client that waits out an
unreachable or restarting OpenSearch."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from opensearchpy.exceptions import ConnectionError as OSConnectionError

from cluster_setup.client import make_client, retries_within
from ingest.loader import SidecarEmbedder
from ingest.sync import Retries, cluster_retry
from sidecar.launcher import free_port
from tests.loopback import LoopbackServer, Received

INFO = {"version": {"number": "2.19.1", "distribution": "opensearch"}, "tagline": "t"}


class Flaky:
    """Answers ``status`` to the first ``failures`` requests, then as the real thing."""

    def __init__(self, failures: int, status: int = 503) -> None:
        self.failures = failures
        self.status = status

    def __call__(self, req: Received) -> tuple[int, Any]:
        if self.failures > 0:
            self.failures -= 1
            return self.status, {"error": "busy"}
        if req.path == "/v1/embeddings":
            n = len(json.loads(req.body)["input"])
            return 200, {"data": [{"index": i, "embedding": [1.0, float(i)]} for i in range(n)]}
        return 200, INFO


@pytest.fixture()
def server() -> Iterator[LoopbackServer]:
    srv = LoopbackServer()
    yield srv
    srv.close()


def closed_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


@pytest.mark.parametrize("status", [429, 502, 503])
def test_the_embedder_retries_a_busy_sidecar(server: LoopbackServer, status: int) -> None:
    server.answer = Flaky(1, status)
    vectors = SidecarEmbedder(server.url, api_key="k", retries=3).embed(["a", "b", "c"])
    assert vectors.tolist() == [[1.0, 0.0], [1.0, 1.0], [1.0, 2.0]]
    assert len(server.received) == 2
    assert all(r.headers["authorization"] == "Bearer k" for r in server.received)


def test_a_batch_that_misses_the_sidecars_deadline_is_split(server: LoopbackServer) -> None:
    server.answer = Flaky(1, 504)
    vectors = SidecarEmbedder(server.url, retries=3).embed(["a", "b", "c"])
    assert vectors.shape == (3, 2)
    sizes = [len(json.loads(r.body)["input"]) for r in server.received]
    assert sizes == [3, 1, 2]  # the late batch, then its halves


def test_a_single_text_that_misses_the_deadline_is_reported(server: LoopbackServer) -> None:
    server.answer = Flaky(10, 504)
    with pytest.raises(RuntimeError, match="the sidecar answered 504"):
        SidecarEmbedder(server.url, retries=3).embed(["a"])
    assert len(server.received) == 1


def test_the_embedder_reports_what_the_sidecar_said_once_retries_are_spent(
    server: LoopbackServer,
) -> None:
    server.answer = Flaky(10, 503)
    with pytest.raises(RuntimeError, match="the sidecar answered 503"):
        SidecarEmbedder(server.url, retries=1).embed(["a"])
    assert len(server.received) == 2  # one try and one retry


def test_the_embedder_does_not_retry_a_refused_input(server: LoopbackServer) -> None:
    server.answer = Flaky(1, 422)
    with pytest.raises(RuntimeError, match="the sidecar answered 422"):
        SidecarEmbedder(server.url, retries=3).embed(["a"])
    assert len(server.received) == 1


def test_an_unreachable_sidecar() -> None:
    url = closed_url()
    with pytest.raises(RuntimeError, match="the sidecar is unreachable"):
        SidecarEmbedder(url, retries=1).embed(["a"])
    with pytest.raises(OSError):  # what the ingest CLI turns into "start it or --no-embed"
        _ = SidecarEmbedder(url).model


def test_the_cluster_client_waits_out_a_restarting_cluster(
    server: LoopbackServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.answer = Flaky(2, 503)
    retries = Retries()
    client = make_client(server.url, retry=cluster_retry(30, retries))
    assert client.info()["version"]["number"] == "2.19.1"
    assert retries.count == 2 and len(server.received) == 3
    err = capsys.readouterr().err
    assert err.count("ingest: OpenSearch unavailable (HTTP 503); retrying in") == 2


def test_the_cluster_client_gives_up_after_its_window() -> None:
    retries = Retries()
    client = make_client(closed_url(), retry=cluster_retry(1, retries))
    with pytest.raises(OSConnectionError):
        client.info()
    assert retries.count == retries_within(1) == 2  # waits 0 s, then 1 s


def test_the_retry_window_in_retries() -> None:
    assert retries_within(0) == 0
    assert [retries_within(s) for s in (1, 3, 7, 15, 30, 120)] == [2, 3, 4, 5, 6, 12]
