"""One line per TLS, auth and permission failure (``cluster_setup.failures``), and the one CA
bundle / insecure switch that the environment cannot override; against a real HTTPS server on
loopback (a self-signed certificate made with openssl)."""

from __future__ import annotations

import http.server
import json
import shutil
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from cluster_setup import failures
from cluster_setup.client import PinnedVerifySession, backoff_retry, make_client, verify_setting
from sidecar.cluster.client import Cluster, ClusterError
from sidecar.settings import Settings
from tests.loopback import self_signed_cert

DENIED = (
    "no permissions for [cluster:admin/opensearch/ml/predict] and User [name=search, "
    "backend_roles=[], requestedTenant=null]"
)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        status = 401 if "Authorization" not in self.headers else 403
        body = {
            "error": {
                "root_cause": [{"type": "security_exception", "reason": DENIED}],
                "type": "security_exception",
                "reason": DENIED,
            },
            "status": status,
        }
        if status == 401:
            body = {"error": "Unauthorized"}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_POST = do_GET  # noqa: N815

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make a certificate")
    d = tmp_path_factory.mktemp("tls")
    cert, key = self_signed_cert(d)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}", str(cert)
    server.shutdown()
    server.server_close()


def test_describe_status_names_the_fix() -> None:
    url = "https://c:9200"
    assert failures.describe_status(401, "", url, "admin") == (
        "401 from https://c:9200: wrong user or password for 'admin': check --user / "
        "--password or OPENSEARCH_USER / OPENSEARCH_PASSWORD"
    )
    assert failures.describe_status(403, DENIED, url, "x", failures.SIDECAR) == (
        "403 from https://c:9200: user 'search' lacks cluster:admin/opensearch/ml/predict: "
        "grant cluster:admin/opensearch/ml/predict to a role mapped to 'search' "
        "(sidecar-setup roles prints the roles)"
    )
    assert failures.describe_status(500, "boom", url, "admin") is None


def test_any_other_refusal_of_the_cluster_is_one_line_too() -> None:
    """What sidecar-setup says when the cluster refuses a body (ML Commons 3.x on a
    description with "=", say), after undoing its run: status, error and reason."""
    from opensearchpy.exceptions import RequestError

    reason = (
        "Validation Failed: 1: Model connector description can only contain letters, "
        "numbers, spaces, and basic punctuation"
    )
    exc = RequestError(400, "action_request_validation_exception", {"error": {"reason": reason}})
    line = failures.describe_answer(exc, "http://c:9200")
    assert line is not None and "\n" not in line
    assert line.startswith("400 from http://c:9200: action_request_validation_exception")
    assert "basic punctuation" in line
    assert failures.describe_answer(ValueError("no status"), "http://c:9200") is None


def test_the_insecure_switch_and_the_ca_bundle_win_over_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "env-bundle.pem"))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(tmp_path / "env-bundle.pem"))
    for verify in (False, str(tmp_path / "mine.pem")):
        s = PinnedVerifySession()
        s.verify = verify
        assert s.merge_environment_settings("https://c", {}, None, None, None)["verify"] == verify
    # plain requests lets the environment win: the reason for the pinned session
    plain = requests.Session()
    plain.verify = False
    assert plain.merge_environment_settings("https://c", {}, None, None, None)["verify"] != False  # noqa: E712
    assert verify_setting("ca.pem", True) is False
    assert verify_setting("ca.pem", False) == "ca.pem"


def test_real_tls_failures_are_one_line(
    tls_server: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, cert = tls_server
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", cert)  # would verify the server: not read
    for retry in (None, backoff_retry(3)):  # both opensearch-py connection classes
        with pytest.raises(Exception) as err:
            make_client(url, "admin", "pw", retry=retry).info()
        assert failures.describe(err.value, url, "admin") == (
            f"TLS: certificate verify failed for {url} (self-signed certificate): pass "
            "--ca-certs PATH (or OPENSEARCH_CA_CERTS) or --insecure (or OPENSEARCH_INSECURE=true)"
        )
        with pytest.raises(Exception) as err:
            make_client(url, ca_certs=cert, retry=retry).info()
        assert failures.describe(err.value, url, None).startswith(
            f"401 from {url}: the cluster wants a user and password"
        )
        with pytest.raises(Exception) as err:
            make_client(url, "search", "pw", insecure=True, retry=retry).info()
        assert "lacks cluster:admin/opensearch/ml/predict" in str(failures.describe(err.value, url))
        plain = "http://" + url.removeprefix("https://")
        with pytest.raises(Exception) as err:
            make_client(plain, retry=retry).info()
        assert failures.describe(err.value, plain) == f"http:// against a TLS port: use {url}"


def test_the_sidecar_client_names_its_own_settings(
    tls_server: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, cert = tls_server
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", cert)
    with pytest.raises(ClusterError) as err:
        Cluster(Settings(opensearch_url=url, opensearch_user="u")).search({})
    assert str(err.value) == (
        f"TLS: certificate verify failed for {url} (self-signed certificate): pass "
        "SIDECAR_OPENSEARCH_CA_CERTS=PATH or SIDECAR_OPENSEARCH_INSECURE=true"
    )
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent")  # would fail every request
    for extra in ({"opensearch_insecure": True}, {"opensearch_ca_certs": cert}):
        with pytest.raises(ClusterError) as err:
            Cluster(Settings(opensearch_url=url, opensearch_user="u", **extra)).search({})
        assert str(err.value).startswith(f"403 from {url}: user 'search' lacks "), str(err.value)
