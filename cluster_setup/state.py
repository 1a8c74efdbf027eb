"""What ``sidecar-setup`` records in the ``products`` index template's ``_meta.setup_state``:
the ids of the connectors and models it made, per role (``rerank``, ``embed``, ``embed-leg``,
``translate``).

The template is cluster state, read in real time (unlike the ML indices' search, which lags
a refresh behind), so a re-run of the setup finds its own objects there, and every client
of the cluster (the evaluation, the search page) finds the query-embedding model there. This
module is the format's one writer and one reader; nothing here talks to a cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: the index template (and the alias of the catalog it covers) the state is kept in
TEMPLATE_NAME = "products"

#: role ("rerank", "embed", "embed-leg", "translate") -> {"connector_id": ..., "model_id": ...}
SetupState = dict[str, dict[str, str]]


def template_path(name: str = TEMPLATE_NAME) -> str:
    """Where the template (and so the state) is read and written."""
    return f"/_index_template/{name}"


def with_state(template: Mapping[str, Any], state: SetupState) -> dict[str, Any]:
    """The index template body ``template`` with ``state`` recorded in its ``_meta``."""
    out = dict(template)
    out["_meta"] = {**(template.get("_meta") or {}), "setup_state": state}
    return out


def read_state(found: Mapping[str, Any] | None) -> SetupState:
    """The state recorded in ``found``: an index template body, or the cluster's answer to
    ``GET /_index_template/NAME``. Empty when the setup has not run (no template, or one
    without the state)."""
    if found is not None and "index_templates" in found:
        templates = found.get("index_templates") or []
        found = templates[0].get("index_template") if templates else None
    meta = (found or {}).get("_meta") or {}
    state = meta.get("setup_state") or {}
    if not isinstance(state, Mapping):
        return {}
    return {str(role): dict(ids) for role, ids in state.items() if isinstance(ids, Mapping)}


def model_id(state: SetupState, role: str = "embed") -> str | None:
    """The ML Commons model id of ``role`` (the query embedder by default), if recorded."""
    value = state.get(role, {}).get("model_id")
    return str(value) if value else None
