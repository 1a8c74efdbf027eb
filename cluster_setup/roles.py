"""The least-privilege roles of a cluster with the security plugin, as the bodies of its
REST API (``PUT /_plugins/_security/api/roles/NAME``): ``sidecar-setup roles`` prints them.

Four users: the one who runs ``sidecar-setup``, the one who runs ``ingest``, the one searches
run as (the search page, applications naming the pipelines), and the sidecar's telemetry
writer.
Each list was found on a real secured node (tests/opensearch/test_secured.py takes one
permission away at a time and expects the one-line 403 naming it).
"""

from __future__ import annotations

import json
from typing import Any

from cluster_setup.state import TEMPLATE_NAME

TELEMETRY_INDICES = "ranking-sidecar-telemetry-*"

#: what ``sidecar-setup`` calls, and why
SETUP_CLUSTER = (
    "cluster:monitor/state",  # GET /_cluster/settings (the ML Commons settings it adds to)
    "cluster:admin/settings/update",  # PUT /_cluster/settings
    "indices:admin/index_template/get",  # the templates and the state kept in one
    "indices:admin/index_template/put",
    "indices:admin/index_template/delete",  # undoing a failed run
    "cluster:admin/search/pipeline/get",
    "cluster:admin/search/pipeline/put",
    "cluster:admin/search/pipeline/delete",  # undoing a failed run
    "cluster:admin/opensearch/ml/connectors/get",
    "cluster:admin/opensearch/ml/connectors/search",
    "cluster:admin/opensearch/ml/create_connector",
    "cluster:admin/opensearch/ml/connectors/delete",
    "cluster:admin/opensearch/ml/models/get",
    "cluster:admin/opensearch/ml/models/search",
    "cluster:admin/opensearch/ml/register_model",
    "cluster:admin/opensearch/ml/deploy_model",
    "cluster:admin/opensearch/ml/undeploy_models",  # POST .../models/ID/_undeploy, which
    "cluster:admin/opensearch/ml/undeploy_model",  # undeploys on each node in turn
    "cluster:admin/opensearch/ml/models/delete",
    "cluster:admin/opensearch/ml/tasks/get",
    "cluster:admin/opensearch/ml/predict",  # the self-check
)
SETUP_INDEX = (
    "indices:admin/aliases/get",  # GET /products/_alias: the alias's own name only
    "indices:admin/aliases",
    "indices:admin/exists",
    "indices:admin/get",
    "indices:admin/create",
    "indices:admin/delete",  # undoing a failed run's products-v1
)

#: what ``sidecar-setup attach`` calls beyond ML Commons and the search pipelines: the
#: mapping of the user's index (its fields checked), nothing written to it (run as printed
#: on a secured node: tests/opensearch/test_secured.py)
ATTACH_CLUSTER = (
    *(a for a in SETUP_CLUSTER if not a.startswith("indices:admin/index_template/")),
    # every run reads NAME-join-text: a --join-into of an earlier run is undone when dropped
    "cluster:admin/ingest/pipeline/get",
)
ATTACH_INDEX = ("indices:admin/mappings/get",)

#: what a search through the pipelines needs: the search, and the ML Commons calls of its
#: processors (translation, query embedding, rerank) made as the searching user
SEARCH_CLUSTER = (
    "cluster:admin/opensearch/ml/predict",
    "indices:admin/index_template/get",  # the search page reads the embed model id there
)
SEARCH_INDEX = ("indices:data/read/search*",)

#: what ``ingest`` calls for an incremental load, deletes and a rebuild (not the vocabulary)
INGEST_CLUSTER = (
    "indices:data/write/bulk",
    "indices:data/read/mget",  # the content hashes already indexed
    "indices:data/read/scroll",  # --delete-missing lists the indexed ids
    "indices:data/read/scroll/clear",
)
INGEST_INDEX = (
    "indices:admin/aliases/get",
    "indices:admin/aliases",
    "indices:admin/exists",
    "indices:admin/get",
    "indices:admin/create",
    "indices:admin/delete",  # a rebuild drops the old index
    "indices:admin/mappings/get",
    "indices:admin/refresh*",
    "indices:data/write/bulk*",
    "indices:data/write/index",
    "indices:data/write/delete",
    "indices:data/read/mget*",
    "indices:data/read/search*",
    "indices:data/read/scroll*",
)

#: the sidecar's telemetry ``_bulk`` into daily indices it creates on first write
TELEMETRY_CLUSTER = ("indices:data/write/bulk",)
TELEMETRY_INDEX = (
    "indices:data/write/bulk*",
    "indices:data/write/index",
    "indices:admin/create",
    "indices:admin/mapping/put",
)


def _role(
    description: str, cluster: tuple[str, ...], index_patterns: list[str], index: tuple[str, ...]
) -> dict[str, Any]:
    return {
        "description": description,
        "cluster_permissions": list(cluster),
        "index_permissions": [{"index_patterns": index_patterns, "allowed_actions": list(index)}],
    }


def roles(index: str = TEMPLATE_NAME, attached: bool = False) -> dict[str, dict[str, Any]]:
    """Role name -> the body of ``PUT /_plugins/_security/api/roles/NAME``. ``attached``:
    for ``sidecar-setup attach --index INDEX`` (an index of the user's own, loaded by the
    user's own tools: no ingest role, and the setup reads the index's mapping only)."""
    if attached:
        return {
            f"ranking_sidecar_attach_{index}": _role(
                f"runs sidecar-setup attach --index {index}: ML Commons connectors and models, "
                f"the {index}-* search pipelines; reads the index's mapping",
                ATTACH_CLUSTER,
                [index],
                ATTACH_INDEX,
            ),
            f"ranking_sidecar_search_{index}": _role(
                f"searches {index} through the pipelines attach made",
                ("cluster:admin/opensearch/ml/predict",),
                [index],
                SEARCH_INDEX,
            ),
            "ranking_sidecar_telemetry": _role(
                "the sidecar's telemetry writer (SIDECAR_OPENSEARCH_USER)",
                TELEMETRY_CLUSTER,
                [TELEMETRY_INDICES],
                TELEMETRY_INDEX,
            ),
        }
    catalog = [index, f"{index}-*"]
    return {
        "ranking_sidecar_setup": _role(
            "runs sidecar-setup: templates, pipelines, ML Commons connectors and models",
            SETUP_CLUSTER,
            catalog,
            SETUP_INDEX,
        ),
        "ranking_sidecar_ingest": _role(
            "runs ingest: loads the catalog behind the alias", INGEST_CLUSTER, catalog, INGEST_INDEX
        ),
        "ranking_sidecar_search": _role(
            "searches through the ranking sidecar's pipelines (and the sidecar's search page)",
            SEARCH_CLUSTER,
            catalog,
            SEARCH_INDEX,
        ),
        "ranking_sidecar_telemetry": _role(
            "the sidecar's telemetry writer (SIDECAR_OPENSEARCH_USER)",
            TELEMETRY_CLUSTER,
            [TELEMETRY_INDICES],
            TELEMETRY_INDEX,
        ),
    }


def print_roles(index: str = TEMPLATE_NAME, attached: bool = False) -> None:
    """The roles, one ``PUT`` each, ready for curl or Dev Tools; then map users to them with
    ``PUT /_plugins/_security/api/rolesmapping/NAME {"users": [...]}``."""
    for name, body in roles(index, attached).items():
        print(f"PUT /_plugins/_security/api/roles/{name}")
        print(json.dumps(body, indent=2))
        print()
