"""Connecting to a cluster: one place for the connection flags every CLI shares, and the
retry policy of the clients that must wait out a cluster (or a sidecar) that is away."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Collection
from typing import Any

import requests
from urllib3.util.retry import RequestHistory, Retry

#: the longest a Retry-After header makes a client wait between two tries
RETRY_AFTER_CAP_S = 30.0


class BackoffRetry(Retry):
    """urllib3's ``Retry`` (mounted on a requests session), with two additions: a
    Retry-After header is obeyed up to ``RETRY_AFTER_CAP_S``, and ``on_retry`` hears of
    each retry before its wait (to count and report it)."""

    def __init__(self, *args: Any, on_retry: Callable[[Retry], None] | None = None, **kw: Any):
        super().__init__(*args, **kw)
        self.on_retry = on_retry

    def new(self, **kw: Any) -> BackoffRetry:
        out: BackoffRetry = super().new(**kw)
        out.on_retry = self.on_retry
        return out

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> BackoffRetry:
        """As urllib3's, except that a failure no wait can mend stops at once: a certificate
        that does not verify, TLS against a plain port, or http:// against a TLS port."""
        if error is not None and _permanent(error, _pool):
            from urllib3.exceptions import MaxRetryError

            raise MaxRetryError(_pool, url, error) from error
        out: BackoffRetry = super().increment(method, url, response, error, _pool, _stacktrace)
        return out

    def get_retry_after(self, response: Any) -> float | None:
        value = super().get_retry_after(response)
        return None if value is None else min(value, RETRY_AFTER_CAP_S)

    def sleep(self, response: Any = None) -> None:
        if self.on_retry is not None:
            self.on_retry(self)
        super().sleep(response)


def _permanent(error: Exception, pool: Any) -> bool:
    from urllib3.exceptions import ProtocolError, SSLError

    if isinstance(error, SSLError):
        said = str(error)
        return any(m in said for m in ("CERTIFICATE_VERIFY_FAILED", "WRONG_VERSION_NUMBER"))
    if isinstance(error, ProtocolError) and getattr(pool, "scheme", "") == "http":
        from cluster_setup.failures import speaks_tls

        return speaks_tls(f"http://{pool.host}:{pool.port}")
    return False


def backoff_retry(
    retries: int,
    statuses: Collection[int] = (502, 503, 504),
    backoff_max: float = 15.0,
    on_retry: Callable[[Retry], None] | None = None,
    backoff_factor: float = 0.5,
) -> BackoffRetry:
    """Up to ``retries`` retries of any request (connection refused or reset, a timeout,
    one of ``statuses``), waiting 0, then ``2 * backoff_factor`` seconds doubling up to
    ``backoff_max`` between them. Any method: the callers' writes are idempotent (by
    ``_id``), the rest are reads. When the statuses persist, the last answer is returned
    for the caller to report."""
    return BackoffRetry(
        total=retries,
        backoff_factor=backoff_factor,
        backoff_max=backoff_max,
        status_forcelist=tuple(statuses),
        allowed_methods=None,
        raise_on_status=False,
        on_retry=on_retry,
    )


def retries_within(seconds: float, backoff_max: float = 15.0) -> int:
    """How many retries of ``backoff_retry`` fit in ``seconds`` of waiting."""
    if seconds <= 0:
        return 0
    retry, waited, count = backoff_retry(0, backoff_max=backoff_max), 0.0, 0
    failed = RequestHistory(None, None, None, None, None)
    while True:
        retry = retry.new(history=(*retry.history, failed))
        waited += retry.get_backoff_time()
        if waited > seconds:
            return count
        count += 1


def verify_setting(ca_certs: str | None, insecure: bool) -> bool | str:
    """What verifies the cluster's certificate: nothing with ``insecure`` (it wins), else the
    CA bundle ``ca_certs``, else the default trust store (certifi's)."""
    if insecure:
        return False
    if ca_certs:
        return ca_certs
    import certifi

    return str(certifi.where())


class PinnedVerifySession(requests.Session):
    """A session whose ``verify`` is the one it was given, whatever the environment holds:
    plain ``requests`` lets REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE replace it, which turns an
    insecure switch back on and a CA bundle setting into a different bundle. Proxies and the
    rest of the environment still apply."""

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> Any:
        out = super().merge_environment_settings(url, proxies, stream, verify, cert)
        out["verify"] = self.verify if verify is None else verify
        return out


def add_connection_args(ap: argparse.ArgumentParser) -> None:
    g = ap.add_argument_group("cluster connection")
    g.add_argument(
        "--opensearch",
        default=os.environ.get("OPENSEARCH_URL", "http://127.0.0.1:9200"),
        help="cluster URL (env OPENSEARCH_URL; default %(default)s)",
    )
    g.add_argument("--user", default=os.environ.get("OPENSEARCH_USER"), help="basic-auth user")
    g.add_argument(
        "--password", default=os.environ.get("OPENSEARCH_PASSWORD"), help="basic-auth password"
    )
    g.add_argument(
        "--insecure",
        action="store_true",
        default=os.environ.get("OPENSEARCH_INSECURE", "").lower() in ("1", "true", "yes"),
        help="do not verify the cluster's TLS certificate (env OPENSEARCH_INSECURE=true); "
        "wins over --ca-certs",
    )
    g.add_argument(
        "--ca-certs",
        metavar="PATH",
        default=os.environ.get("OPENSEARCH_CA_CERTS") or None,
        help="CA bundle (PEM) that verifies the cluster's certificate (env "
        "OPENSEARCH_CA_CERTS; default: certifi's; REQUESTS_CA_BUNDLE is not read)",
    )


def client_from_args(args: argparse.Namespace, retry: Retry | None = None) -> Any:
    return make_client(
        args.opensearch, args.user, args.password, args.insecure, args.ca_certs, retry=retry
    )


def make_client(
    url: str,
    user: str | None = None,
    password: str | None = None,
    insecure: bool = False,
    ca_certs: str | None = None,
    timeout: float = 60,
    pool_maxsize: int = 0,
    retry: Retry | None = None,
) -> Any:
    """An opensearch-py client; ``pool_maxsize`` keeps that many connections open for
    concurrent searches (the library's default is fewer). ``insecure`` wins over ``ca_certs``
    (``verify_setting``); the environment's CA variables are not read.

    With ``retry``, every request is retried by that policy, with its backoff: the client
    talks through opensearch-py's requests connection, whose session gets the policy, and
    the transport's own retries (immediate, without backoff: they cannot wait out a node
    that restarts) are turned off."""
    from opensearchpy import OpenSearch

    kwargs: dict[str, Any] = {"hosts": [url], "timeout": timeout}
    if pool_maxsize:
        kwargs["pool_maxsize"] = pool_maxsize
    if user:
        kwargs["http_auth"] = (user, password or "")
    if url.startswith("https"):
        kwargs["use_ssl"] = True
        kwargs["verify_certs"] = not insecure
        kwargs["ssl_show_warn"] = not insecure
        if ca_certs and not insecure:
            kwargs["ca_certs"] = ca_certs
    if retry is None:
        return OpenSearch(**kwargs)
    from opensearchpy import RequestsHttpConnection
    from requests.adapters import DEFAULT_POOLSIZE, HTTPAdapter

    client = OpenSearch(connection_class=RequestsHttpConnection, max_retries=0, **kwargs)
    adapter = HTTPAdapter(pool_maxsize=pool_maxsize or DEFAULT_POOLSIZE, max_retries=retry)
    for connection in client.transport.connection_pool.connections:
        # a plain Session until now, with no state of its own: now it keeps its verify
        connection.session.__class__ = PinnedVerifySession
        connection.session.mount("http://", adapter)
        connection.session.mount("https://", adapter)
    return client
