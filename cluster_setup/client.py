"""Connecting to a cluster: one place for the connection flags every CLI shares."""

from __future__ import annotations

import argparse
import os
from typing import Any


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
        default=os.environ.get("OPENSEARCH_INSECURE", "") in ("1", "true"),
        help="do not verify the cluster's TLS certificate",
    )
    g.add_argument("--ca-certs", default=os.environ.get("OPENSEARCH_CA_CERTS"), help="CA bundle")


def client_from_args(args: argparse.Namespace) -> Any:
    return make_client(args.opensearch, args.user, args.password, args.insecure, args.ca_certs)


def make_client(
    url: str,
    user: str | None = None,
    password: str | None = None,
    insecure: bool = False,
    ca_certs: str | None = None,
    timeout: float = 60,
    pool_maxsize: int = 0,
) -> Any:
    """An opensearch-py client; ``pool_maxsize`` keeps that many connections open for
    concurrent searches (the library's default is fewer)."""
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
        if ca_certs:
            kwargs["ca_certs"] = ca_certs
    return OpenSearch(**kwargs)
