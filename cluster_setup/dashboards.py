"""Importing the telemetry dashboards (``index_templates/dashboards.ndjson``) into OpenSearch
Dashboards through its saved-objects import API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests

from cluster_setup.bodies import TEMPLATES

DASHBOARDS_FILE = "dashboards.ndjson"


def import_dashboards(
    url: str,
    user: str | None = None,
    password: str | None = None,
    verify: bool | str = True,
    path: Path = TEMPLATES / DASHBOARDS_FILE,
    timeout: float = 60,
) -> dict[str, Any]:
    """Import saved objects through OpenSearch Dashboards' import API (multipart ``file``
    named ``*.ndjson``, ``osd-xsrf`` header, ``overwrite=true``); its answer, or a clear
    exit when Dashboards does not answer or reports errors (it answers 200 with
    ``success: false`` and an ``errors`` list when objects fail)."""
    endpoint = url.rstrip("/") + "/api/saved_objects/_import"
    try:
        resp = requests.post(
            endpoint,
            params={"overwrite": "true"},
            headers={"osd-xsrf": "true"},
            files={"file": (path.name, path.read_bytes(), "application/ndjson")},
            auth=(user, password or "") if user else None,
            verify=verify,
            timeout=timeout,
        )
    except requests.RequestException as exc:
        raise SystemExit(f"OpenSearch Dashboards at {url} did not answer: {exc}") from None
    try:
        answer = resp.json()
    except ValueError:
        answer = None
    if resp.status_code != 200 or not isinstance(answer, dict):
        raise SystemExit(
            f"importing {path.name} into OpenSearch Dashboards failed: POST {endpoint} "
            f"answered HTTP {resp.status_code}: {resp.text[:500]}"
        )
    errors = answer.get("errors") or []
    if not answer.get("success") or errors:
        described = "; ".join(
            f"{e.get('type')} {e.get('id')}: {json.dumps(e.get('error'), ensure_ascii=False)}"
            for e in errors
        )
        raise SystemExit(
            f"importing {path.name} into OpenSearch Dashboards at {url} reported errors "
            f"({answer.get('successCount', 0)} objects imported): {described or answer}"
        )
    return answer
