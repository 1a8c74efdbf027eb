"""API keys: every scoring and embedding route needs one; rotation without a restart."""

from __future__ import annotations

import os
import time

import pytest

from sidecar.auth import ApiKeys
from sidecar.settings import Settings
from tests.conftest import make_client

BODY = {"query": "wireless mouse", "documents": ["Logitech M185 wireless mouse"]}


@pytest.fixture()
def keyed(tmp_path):
    keys = tmp_path / "keys.txt"
    keys.write_text("# rotated monthly\nfile-key-1\n")
    app, client = make_client(Settings(api_keys="inline-key", api_keys_file=str(keys)))
    yield client, keys
    app.extensions["sidecar.engine"].close()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize(
    "path,body",
    [
        ("/v1/rerank", BODY),
        ("/v2/rerank", BODY),
        ("/rerank", {"query": "q", "texts": ["a"]}),
        ("/v1/embeddings", {"input": "q"}),
    ],
)
def test_scoring_routes_need_a_valid_key(keyed, path, body) -> None:
    client, _ = keyed
    for headers in (
        {},
        bearer("wrong"),
        {"Authorization": "Basic aW5saW5lLWtleQ=="},
        {"Authorization": "Bearer "},
    ):
        r = client.post(path, json=body, headers=headers)
        assert r.status_code == 401
        assert r.get_json()["error"]["code"] == "unauthorized"
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.post(path, json=body, headers=bearer("inline-key")).status_code == 200
    assert client.post(path, json=body, headers=bearer("file-key-1")).status_code == 200


def test_health_and_metrics_stay_open_by_default(keyed) -> None:
    client, _ = keyed
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert client.get(path).status_code == 200
    client.post("/v1/rerank", json=BODY)  # refused
    assert 'status="401"' in client.get("/metrics").get_data(as_text=True)


def test_health_can_be_protected(tmp_path) -> None:
    app, client = make_client(Settings(api_keys="k1", auth_health=True))
    try:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers=bearer("k1")).status_code == 200
    finally:
        app.extensions["sidecar.engine"].close()


def test_keys_file_rotates_without_restart(keyed) -> None:
    client, keys = keyed
    assert client.post("/v1/rerank", json=BODY, headers=bearer("file-key-2")).status_code == 401
    keys.write_text("file-key-2\n")  # the new key in, the old one out
    stamp = time.time() + 2
    os.utime(keys, (stamp, stamp))  # a distinct mtime even on coarse clocks
    assert client.post("/v1/rerank", json=BODY, headers=bearer("file-key-2")).status_code == 200
    assert client.post("/v1/rerank", json=BODY, headers=bearer("file-key-1")).status_code == 401
    assert client.post("/v1/rerank", json=BODY, headers=bearer("inline-key")).status_code == 200


def test_key_parsing_and_missing_file(tmp_path) -> None:
    keys = ApiKeys("a, b ,,", "")
    assert keys.keys() == {"a", "b"} and keys.enabled
    assert not ApiKeys().enabled
    with pytest.raises(FileNotFoundError):
        ApiKeys("", str(tmp_path / "nope.txt"))
