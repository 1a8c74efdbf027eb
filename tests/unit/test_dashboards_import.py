"""The request ``sidecar-setup --dashboards`` sends to OpenSearch Dashboards' import API
(``POST /api/saved_objects/_import?overwrite=true``, header ``osd-xsrf: true``, multipart
field ``file`` named ``*.ndjson``), against a real HTTP server on loopback that answers
as Dashboards does."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from cluster_setup.bodies import TEMPLATES
from cluster_setup.dashboards import DASHBOARDS_FILE, import_dashboards
from tests.loopback import LoopbackServer, Received, form_files

NDJSON = (TEMPLATES / DASHBOARDS_FILE).read_bytes()
COUNT = len(NDJSON.splitlines())


def dashboards_ok(req: Received) -> tuple[int, Any]:
    return 200, {"success": True, "successCount": COUNT, "successResults": []}


@pytest.fixture()
def dashboards() -> Iterator[LoopbackServer]:
    server = LoopbackServer(answer=dashboards_ok)
    yield server
    server.close()


def test_the_documented_import_request(dashboards: LoopbackServer) -> None:
    answer = import_dashboards(dashboards.url + "/", "admin", "pw")
    assert answer["successCount"] == COUNT
    [req] = dashboards.received
    assert (req.method, req.path) == ("POST", "/api/saved_objects/_import")
    assert req.query == {"overwrite": ["true"]}
    assert req.headers["osd-xsrf"] == "true"
    assert req.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert req.headers["authorization"] == "Basic " + base64.b64encode(b"admin:pw").decode()
    files = form_files(req)
    assert list(files) == ["file"]
    filename, content = files["file"]
    assert filename == "dashboards.ndjson"  # Dashboards refuses other extensions
    assert content == NDJSON


def test_without_a_user_no_credentials_are_sent(dashboards: LoopbackServer) -> None:
    import_dashboards(dashboards.url)
    assert "authorization" not in dashboards.received[0].headers


@pytest.mark.parametrize(
    "status,body,expected",
    [
        (
            200,
            {
                "success": False,
                "successCount": COUNT - 1,
                "errors": [
                    {
                        "id": "ranking-sidecar-rerank-latency",
                        "type": "visualization",
                        "title": "Rerank latency p50 / p95 (ms)",
                        "error": {
                            "type": "missing_references",
                            "references": [{"type": "index-pattern", "id": "gone"}],
                        },
                    }
                ],
            },
            'visualization ranking-sidecar-rerank-latency: {"type": "missing_references"',
        ),
        (
            400,
            {"statusCode": 400, "error": "Bad Request", "message": "Invalid file extension .txt"},
            "HTTP 400",
        ),
        (401, b"Unauthorized", "HTTP 401"),
    ],
)
def test_errors_stop_with_what_dashboards_said(status: int, body: Any, expected: str) -> None:
    server = LoopbackServer(answer=lambda req: (status, body))
    try:
        with pytest.raises(SystemExit) as exc:
            import_dashboards(server.url)
    finally:
        server.close()
    assert expected in str(exc.value)
    assert "dashboards.ndjson" in str(exc.value)


def test_dashboards_down_is_a_clear_exit() -> None:
    server = LoopbackServer()
    server.close()
    with pytest.raises(SystemExit, match="did not answer"):
        import_dashboards(server.url, timeout=5)
