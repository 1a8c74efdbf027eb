"""The sidecar's OpenSearch client: plain HTTP (``requests``), for the search page's few
calls and the telemetry writer's ``_bulk``.

The sidecar's scoring API never calls a cluster; only this package does, and only when
``SIDECAR_OPENSEARCH_URL`` is set. No opensearch-py here: the sidecar stays a model
service that any cluster calls.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import requests

from cluster_setup import failures
from cluster_setup.client import PinnedVerifySession, verify_setting
from cluster_setup.state import model_id as setup_model_id
from cluster_setup.state import read_state, template_path
from sidecar.settings import Settings


def session(settings: Settings) -> requests.Session:
    """A session with the cluster's credentials and TLS verification: the CA bundle
    ``SIDECAR_OPENSEARCH_CA_CERTS``, off with ``SIDECAR_OPENSEARCH_INSECURE``, whatever
    REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE say (``PinnedVerifySession``)."""
    out = PinnedVerifySession()
    if settings.opensearch_user:
        out.auth = (settings.opensearch_user, settings.opensearch_password)
    out.verify = verify_setting(settings.opensearch_ca_certs, settings.opensearch_insecure)
    if out.verify is False:
        import urllib3

        # the operator said so; a warning per telemetry batch would drown the log
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    return out


def explain(exc: BaseException, settings: Settings) -> str | None:
    """The one-line TLS / auth / permission cause of ``exc`` with the setting that fixes it."""
    return failures.describe(
        exc, settings.opensearch_url.rstrip("/"), settings.opensearch_user, failures.SIDECAR
    )


class ClusterError(RuntimeError):
    """The cluster could not answer a search; the message says why, for the page."""


class Cluster:
    def __init__(self, settings: Settings, timeout_s: float = 30.0) -> None:
        self.url = settings.opensearch_url.rstrip("/")
        self.index = settings.search_index
        self.embed_model_id_setting = settings.search_embed_model_id
        self.timeout_s = timeout_s
        self.session = session(settings)
        self.user = settings.opensearch_user
        self._settings = settings
        self._model: tuple[float, str] | None = None
        self._lock = threading.Lock()

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            resp = self.session.request(method, self.url + path, timeout=self.timeout_s, **kwargs)
        except requests.RequestException as exc:
            line = explain(exc, self._settings)
            raise ClusterError(
                line or f"OpenSearch at {self.url} did not answer ({type(exc).__name__})"
            ) from None
        if resp.status_code >= 400:
            try:
                err = resp.json().get("error", resp.text)
                reason = err.get("reason", err) if isinstance(err, dict) else err
                root = err.get("root_cause") if isinstance(err, dict) else None
                if root and isinstance(root, list) and root[0].get("reason"):
                    reason = root[0]["reason"]
            except ValueError:
                reason = resp.text[:300]
            line = failures.describe_status(
                resp.status_code, str(reason), self.url, self.user, failures.SIDECAR
            )
            raise ClusterError(line or f"OpenSearch answered {resp.status_code}: {reason}")
        out: dict[str, Any] = resp.json()
        return out

    def search(
        self, body: dict[str, Any], pipeline: str | None = None, verbose: bool = False
    ) -> dict[str, Any]:
        params: dict[str, str] = {}
        if pipeline:
            params["search_pipeline"] = pipeline
        if verbose:
            params["verbose_pipeline"] = "true"
        return self._call("POST", f"/{self.index}/_search", params=params, json=body)

    def embed_model_id(self) -> str:
        """The query embedder's ML Commons model id: the setting, else the one ``sidecar-setup``
        recorded in the index template's ``_meta`` (re-read every minute: a new setup run may
        replace the model)."""
        if self.embed_model_id_setting:
            return self.embed_model_id_setting
        with self._lock:
            if self._model and time.monotonic() - self._model[0] < 60:
                return self._model[1]
        res = self._call("GET", template_path(self.index))
        model_id = setup_model_id(read_state(res)) or ""
        if not model_id:
            raise ClusterError(
                f"no query embedding model recorded in the index template {self.index!r}: run "
                "sidecar-setup against this cluster, or set SIDECAR_SEARCH_EMBED_MODEL_ID"
            )
        with self._lock:
            self._model = (time.monotonic(), model_id)
        return model_id
