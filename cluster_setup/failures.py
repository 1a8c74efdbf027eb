"""What went wrong talking to a cluster, in one line that names the fix.

TLS, authentication and permission failures surface from deep inside opensearch-py,
urllib3 or requests as long chains of exceptions; every client of a cluster in the project
(``sidecar-setup``, ``ingest``, ``eval-search``, the sidecar's search page and telemetry)
turns them into one line here, naming the cause and the flag, variable or permission that
fixes it. ``Hints`` carries the names of those flags for each kind of client.
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Hints:
    """How a user of one kind of client sets the CA bundle, the insecure switch and the
    credentials."""

    ca: str = "--ca-certs PATH (or OPENSEARCH_CA_CERTS)"
    insecure: str = "--insecure (or OPENSEARCH_INSECURE=true)"
    credentials: str = "--user / --password or OPENSEARCH_USER / OPENSEARCH_PASSWORD"


#: the command-line tools (cluster_setup.client.add_connection_args)
CLI = Hints()
#: the sidecar's own client (sidecar/cluster/client.py)
SIDECAR = Hints(
    ca="SIDECAR_OPENSEARCH_CA_CERTS=PATH",
    insecure="SIDECAR_OPENSEARCH_INSECURE=true",
    credentials="SIDECAR_OPENSEARCH_USER / SIDECAR_OPENSEARCH_PASSWORD",
)

_NO_PERMISSION = re.compile(r"no permissions for \[([^\]]+)\](?: and User \[name=([^,\]]+))?")
ROLES_HINT = "sidecar-setup roles prints the roles"


def _chain(exc: BaseException) -> Iterator[Any]:
    """``exc`` and what it wraps: causes, contexts, opensearch-py's ``info`` and urllib3's
    ``reason``, and exceptions held in ``args``."""
    seen: set[int] = set()
    todo: list[Any] = [exc]
    while todo:
        cur = todo.pop()
        if cur is None or id(cur) in seen:
            continue
        seen.add(id(cur))
        yield cur
        if isinstance(cur, BaseException):
            todo += [cur.__cause__, cur.__context__, getattr(cur, "reason", None)]
            todo += [a for a in cur.args if isinstance(a, BaseException)]
            info = getattr(cur, "info", None)
            if isinstance(info, BaseException):
                todo.append(info)


def speaks_tls(url: str, timeout: float = 3.0) -> bool:
    """Whether ``url``'s host and port complete a TLS handshake (certificate not checked):
    tells an http:// URL aimed at a TLS port from a cluster that is down."""
    u = urllib.parse.urlsplit(url)
    context = ssl._create_unverified_context()
    try:
        with (
            socket.create_connection((u.hostname or "127.0.0.1", u.port or 80), timeout) as raw,
            context.wrap_socket(raw, server_hostname=u.hostname),
        ):
            return True
    except (OSError, ssl.SSLError):
        return False


def describe_status(
    status: int, reason: str, url: str, user: str | None, hints: Hints = CLI
) -> str | None:
    """The line for an HTTP answer ``status`` (with the cluster's error ``reason``), when it is
    an authentication or permission failure; else ``None``."""
    if status == 401:
        if user:
            return f"401 from {url}: wrong user or password for {user!r}: check {hints.credentials}"
        return f"401 from {url}: the cluster wants a user and password: pass {hints.credentials}"
    if status == 403:
        found = _NO_PERMISSION.search(reason or "")
        if found:
            perm, name = found.group(1), found.group(2) or user or "this user"
            return (
                f"403 from {url}: user {name!r} lacks {perm}: grant {perm} to a role mapped "
                f"to {name!r} ({ROLES_HINT})"
            )
        reason = " ".join((reason or "forbidden").split())[:300]
        return f"403 from {url}: {reason} ({ROLES_HINT})"
    return None


def _status_reason(exc: BaseException) -> tuple[int, str] | None:
    status = getattr(exc, "status_code", None)
    if not isinstance(status, int):
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
        if not isinstance(status, int):
            return None
        return status, str(getattr(response, "text", ""))
    return status, f"{getattr(exc, 'error', '')} {getattr(exc, 'info', '')}"


def describe(
    exc: BaseException, url: str, user: str | None = None, hints: Hints = CLI
) -> str | None:
    """One line for ``exc`` when it is a TLS, authentication, permission or connection
    failure (from opensearch-py, urllib3 or requests) talking to the cluster at ``url``;
    ``None`` for anything else (the caller reports it as it did)."""
    found = _status_reason(exc)
    if found is not None and found[0] in (401, 403):
        return describe_status(found[0], found[1], url, user, hints)
    if found is not None:
        return None  # another HTTP answer: the caller's business
    texts = []
    for cur in _chain(exc):
        if isinstance(cur, ssl.SSLCertVerificationError):
            why = cur.verify_message or "certificate verify failed"
            return (
                f"TLS: certificate verify failed for {url} ({why}): "
                f"pass {hints.ca} or {hints.insecure}"
            )
        texts.append(str(cur))
    said = " ".join(texts)
    if "CERTIFICATE_VERIFY_FAILED" in said or "certificate verify failed" in said:
        got = re.search(r"certificate verify failed: ([^(')\]]+)", said)
        detail = f" ({got.group(1).strip()})" if got else ""
        return (
            f"TLS: certificate verify failed for {url}{detail}: pass {hints.ca} or {hints.insecure}"
        )
    if "WRONG_VERSION_NUMBER" in said or "wrong version number" in said or "record layer" in said:
        return f"TLS: {url} answers plain HTTP, not TLS: use http:// instead of https://"
    if "Could not find the TLS certificate file" in said or "invalid path" in said:
        return f"TLS: the CA bundle given for {url} cannot be read: check {hints.ca}"
    if url.startswith("http://") and ("refused" not in said.lower()) and speaks_tls(url):
        return f"http:// against a TLS port: use https://{url[len('http://') :]}"
    if "refused" in said.lower():
        return f"cannot connect to {url}: connection refused (is the cluster running there?)"
    return None


def describe_answer(exc: BaseException, url: str) -> str | None:
    """One line for any other HTTP answer the cluster refused a request with (a 400 naming
    what it would not take, say); ``None`` when ``exc`` carries no HTTP status."""
    found = _status_reason(exc)
    if found is None:
        return None
    status, reason = found
    reason = " ".join(reason.split())[:400] or "no reason given"
    return f"{status} from {url}: {reason}"


@contextlib.contextmanager
def one_line(url: str, user: str | None = None, hints: Hints = CLI) -> Iterator[None]:
    """Turn a TLS, auth, permission or connection failure inside the block into
    ``SystemExit(line)``: the command-line tools' way of stopping with one line."""
    try:
        yield
    except Exception as exc:
        line = describe(exc, url, user, hints)
        if line is None:
            raise
        raise SystemExit(line) from None
