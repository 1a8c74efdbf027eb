"""A cluster with the security plugin (TLS + basic auth, ``local_node --secured``): the
one-line failures of the command-line tools, least-privilege roles (``sidecar-setup
roles``), a failed setup that leaves nothing behind, the self-check that finds a search user
who may not rerank, the sidecar's own client through TLS, and ``sidecar-setup attach`` on an
index of the test's own with the printed attach and search roles.

One secured node for the whole module (about a minute to start); the tests run in file
order: the setup users who lack a permission go first, on a cluster with no connector yet.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cluster_setup.client import backoff_retry, make_client
from cluster_setup.pipelines import failed_processors
from cluster_setup.queries import hybrid_body
from cluster_setup.roles import roles
from local_node.node import ADMIN_PASSWORD, ADMIN_USER, LocalNode, NodeError, run_root
from sidecar.launcher import SidecarProcess
from tests.opensearch.conftest import run_setup
from tests.opensearch.test_attach import dimension, embed, hybrid, processors, sidecar_order

USER_PASSWORD = "Sidecar-Test-Pw-9!"
SAMPLE = Path(__file__).resolve().parents[2] / "ingest" / "sample_data" / "products.jsonl"
SETUP_ROLE, INGEST_ROLE, SEARCH_ROLE, TELEMETRY_ROLE = roles()


@pytest.fixture(scope="module")
def node(request: pytest.FixtureRequest) -> Iterator[LocalNode]:
    run = run_root() / f"pytest-secured-{os.getpid()}"
    node = LocalNode(run_dir=run, secured=True)
    try:
        node.start()
    except NodeError as exc:
        pytest.fail(f"could not start the secured local node: {exc}")
    failed_before = request.session.testsfailed
    try:
        yield node
    finally:
        node.stop()
        if request.session.testsfailed == failed_before:
            shutil.rmtree(run, ignore_errors=True)


@pytest.fixture(scope="module")
def admin(node: LocalNode) -> Any:
    return make_client(node.url, ADMIN_USER, ADMIN_PASSWORD, ca_certs=node.ca_certs)


def make_user(admin: Any, name: str, role: dict[str, Any]) -> str:
    """A user of its own with exactly ``role``, through the security REST API."""
    req = admin.transport.perform_request
    req("PUT", f"/_plugins/_security/api/roles/{name}", body=role)
    req("PUT", f"/_plugins/_security/api/internalusers/{name}", body={"password": USER_PASSWORD})
    req("PUT", f"/_plugins/_security/api/rolesmapping/{name}", body={"users": [name]})
    return name


def without(role_name: str, permission: str) -> dict[str, Any]:
    role = json.loads(json.dumps(roles()[role_name]))
    role["cluster_permissions"] = [p for p in role["cluster_permissions"] if p != permission]
    for group in role["index_permissions"]:
        group["allowed_actions"] = [p for p in group["allowed_actions"] if p != permission]
    return role


def setup_as(node: LocalNode, sidecar: SidecarProcess, user: str, password: str, *extra: str):
    return run_setup(
        node.url,
        sidecar.url,
        "--user",
        user,
        "--password",
        password,
        "--ca-certs",
        str(node.ca_certs),
        *extra,
    )


def last_line(out: subprocess.CompletedProcess[str]) -> str:
    lines = out.stderr.strip().splitlines()
    return lines[-1] if lines else ""


def ml_objects(admin: Any) -> list[str]:
    """Every connector and model the cluster holds (seen as admin)."""
    from opensearchpy.exceptions import NotFoundError

    found = []
    for kind in ("connectors", "models"):
        try:
            res = admin.transport.perform_request(
                "POST", f"/_plugins/_ml/{kind}/_search", body={"size": 100}
            )
        except NotFoundError:
            continue
        found += [f"{kind}:{h['_source'].get('name')}" for h in res["hits"]["hits"]]
    return found


def get_or_empty(admin: Any, path: str) -> dict[str, Any]:
    from opensearchpy.exceptions import NotFoundError

    try:
        return dict(admin.transport.perform_request("GET", path))
    except NotFoundError:  # none at all
        return {}


def test_cli_failures_are_one_line_naming_the_fix(node: LocalNode, sidecar: SidecarProcess):
    url = node.url
    plain = "http://" + url.removeprefix("https://")
    cases = [
        # no CA bundle: the demo certificate is self-signed
        (
            ["--opensearch", url, "--user", ADMIN_USER, "--password", ADMIN_PASSWORD],
            f"TLS: certificate verify failed for {url} (unable to get local issuer certificate): "
            "pass --ca-certs PATH (or OPENSEARCH_CA_CERTS) or --insecure",
        ),
        (
            [
                "--opensearch",
                url,
                "--user",
                ADMIN_USER,
                "--password",
                "wrong",
                "--ca-certs",
                str(node.ca_certs),
            ],
            f"401 from {url}: wrong user or password for 'admin': check --user / --password",
        ),
        (
            ["--opensearch", plain, "--user", ADMIN_USER, "--password", ADMIN_PASSWORD],
            f"http:// against a TLS port: use {url}",
        ),
    ]
    for argv, expected in cases:
        for tool in ("cluster_setup", "ingest", "evaluation"):
            args = {
                "cluster_setup": ["--sidecar", sidecar.url, "--dimension", "384"],
                "ingest": [str(SAMPLE), "--no-embed"],
                "evaluation": [
                    "run",
                    "--queries",
                    str(SAMPLE.with_name("queries.jsonl")),
                    "--judgments",
                    str(SAMPLE.with_name("judgments.jsonl")),
                    "--out",
                    "/nonexistent-not-written",
                ],
            }[tool]
            out = subprocess.run(
                [sys.executable, "-m", tool, *args, *argv],
                capture_output=True,
                text=True,
                timeout=120,
                env={**os.environ, "REQUESTS_CA_BUNDLE": str(node.ca_certs)},
            )
            assert out.returncode != 0, (tool, out.stdout[-500:])
            assert len(out.stderr.strip().splitlines()) == 1, (tool, out.stderr[-2000:])
            assert expected in last_line(out), (tool, out.stderr)


@pytest.mark.parametrize(
    "permission",
    [
        "indices:admin/index_template/get",  # a read: stops before anything is created
        "cluster:admin/opensearch/ml/register_model",  # after the first connector
        "cluster:admin/search/pipeline/put",  # after every connector and model
    ],
)
def test_a_setup_user_missing_a_permission_gets_one_line_and_leaves_nothing(
    node: LocalNode, sidecar: SidecarProcess, admin: Any, permission: str
):
    assert all("ranking-sidecar" not in o for o in ml_objects(admin))
    user = make_user(
        admin,
        "setup_without_" + permission.rsplit("/", 1)[-1],
        without(SETUP_ROLE, permission),
    )
    out = setup_as(node, sidecar, user, USER_PASSWORD, "--no-check")
    assert out.returncode != 0, out.stdout[-2000:]
    line = last_line(out)
    assert line.startswith(f"403 from {node.url}: user {user!r} lacks {permission}: grant "), line
    # what the run had written, undone: 4 connectors, 4 models, the template, products-v1
    # and its alias before the first pipeline; 1 connector before the first model
    undone = {
        "cluster:admin/search/pipeline/put": 11,
        "cluster:admin/opensearch/ml/register_model": 1,
    }
    if permission in undone:
        n = undone[permission]
        assert line.endswith(f"; undid this run's {n} change{'s' if n > 1 else ''}"), line
    else:
        assert "undid" not in line, line
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert all("ranking-sidecar" not in o for o in ml_objects(admin)), ml_objects(admin)
    templates = get_or_empty(admin, "/_index_template").get("index_templates", [])
    assert "products" not in [t["name"] for t in templates]
    pipelines = get_or_empty(admin, "/_search/pipeline")
    assert not [p for p in pipelines if p.startswith(("hybrid", "rerank", "translate"))]


def test_the_least_privilege_setup_user_sets_up_and_the_search_user_reranks(
    node: LocalNode, sidecar: SidecarProcess, admin: Any
):
    setup = make_user(admin, "sidecar_setup", roles()[SETUP_ROLE])
    search = make_user(admin, "sidecar_search", roles()[SEARCH_ROLE])
    out = setup_as(
        node,
        sidecar,
        setup,
        USER_PASSWORD,
        "--json",
        "--check-user",
        search,
        "--check-password",
        USER_PASSWORD,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout)
    assert report["check"] == {"rerank": "ok", "user": search, "scores": 2}


def test_the_self_check_names_a_search_user_who_may_not_rerank(
    node: LocalNode, sidecar: SidecarProcess, admin: Any
):
    predict = "cluster:admin/opensearch/ml/predict"
    user = make_user(admin, "search_without_predict", without(SEARCH_ROLE, predict))
    out = setup_as(
        node,
        sidecar,
        ADMIN_USER,
        ADMIN_PASSWORD,
        "--check-user",
        user,
        "--check-password",
        USER_PASSWORD,
    )
    assert out.returncode != 0
    assert last_line(out) == (
        f"self-check: the setup is in place, but a rerank as {user!r} fails: 403 from "
        f"{node.url}: user {user!r} lacks {predict}: grant {predict} to a role mapped to "
        f"{user!r} (sidecar-setup roles prints the roles)"
    )


def ingest_as(
    node: LocalNode, sidecar: SidecarProcess, user: str, feed: Path, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    argv = ["--opensearch", node.url, "--user", user, "--password", USER_PASSWORD]
    argv += ["--ca-certs", str(node.ca_certs), "--dead-letter", str(tmp_path / "dead.jsonl")]
    return subprocess.run(
        [sys.executable, "-m", "ingest", str(feed), "--sidecar", sidecar.url, "--json", *argv],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_ingest_and_a_hybrid_rerank_search_through_tls(
    node: LocalNode, sidecar: SidecarProcess, admin: Any, tmp_path: Path
):
    """Products in through the ingest CLI as the least-privilege ingest user (CA bundle), then
    the sidecar's own client (the search page's) searches as the least-privilege search user:
    the rerank ran."""
    from sidecar.cluster.client import Cluster
    from sidecar.settings import Settings

    feed = tmp_path / "few.jsonl"
    feed.write_text("".join(SAMPLE.read_text(encoding="utf-8").splitlines(True)[:12]))
    # a user who may not write: one line, not twelve dead letters
    write = "indices:data/write/index"
    user = make_user(admin, "ingest_without_write", without(INGEST_ROLE, write))
    out = ingest_as(node, sidecar, user, feed, tmp_path)
    assert out.returncode == 2, out.stdout[-2000:]
    assert out.stderr.strip() == (
        f"ingest: 403 from {node.url}: user {user!r} lacks {write}: grant {write} to a role "
        f"mapped to {user!r} (sidecar-setup roles prints the roles)"
    )
    user = make_user(admin, "sidecar_ingest", roles()[INGEST_ROLE])
    out = ingest_as(node, sidecar, user, feed, tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout)["written"] == 12
    search = make_user(admin, "sidecar_search", roles()[SEARCH_ROLE])
    settings = Settings(
        opensearch_url=node.url,
        opensearch_user=search,
        opensearch_password=USER_PASSWORD,
        opensearch_ca_certs=str(node.ca_certs),
    )
    cluster = Cluster(settings)
    res = cluster.search(hybrid_body("wireless mouse", size=5), "hybrid-rerank", verbose=True)
    assert res["hits"]["hits"], res
    steps = {p["processor_name"]: p for p in res.get("processor_results", [])}
    assert steps["rerank"]["status"] == "success", steps
    assert cluster.embed_model_id()  # the page reads the template as this user too


def test_the_sidecar_client_one_ca_setting_and_one_insecure_switch(
    node: LocalNode, monkeypatch: pytest.MonkeyPatch
):
    from sidecar.cluster.client import Cluster, ClusterError
    from sidecar.settings import Settings

    # an environment bundle that cannot verify the node must not matter either way
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.setenv("CURL_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    base = {
        "opensearch_url": node.url,
        "opensearch_user": ADMIN_USER,
        "opensearch_password": ADMIN_PASSWORD,
    }
    body = {"size": 0, "query": {"match_all": {}}}
    Cluster(Settings(**base, opensearch_insecure=True)).search(body)
    # the command-line tools' clients too (ingest's: opensearch-py over requests, retrying)
    for retry in (None, backoff_retry(0)):
        auth = (node.url, ADMIN_USER, ADMIN_PASSWORD)
        make_client(*auth, insecure=True, retry=retry).info()
        make_client(*auth, ca_certs=node.ca_certs, retry=retry).info()
    Cluster(Settings(**base, opensearch_ca_certs=str(node.ca_certs))).search(body)
    with pytest.raises(ClusterError) as err:
        Cluster(Settings(**base)).search(body)
    assert str(err.value).startswith(
        f"TLS: certificate verify failed for {node.url} (unable to get local issuer "
        "certificate): pass SIDECAR_OPENSEARCH_CA_CERTS=PATH or SIDECAR_OPENSEARCH_INSECURE=true"
    )
    with pytest.raises(ClusterError) as err:
        Cluster(
            Settings(**{**base, "opensearch_password": "wrong"}, opensearch_insecure=True)
        ).search(body)
    assert str(err.value) == (
        f"401 from {node.url}: wrong user or password for 'admin': check "
        "SIDECAR_OPENSEARCH_USER / SIDECAR_OPENSEARCH_PASSWORD"
    )


def test_the_telemetry_writer_role_writes_records(node: LocalNode, admin: Any):
    from sidecar.cluster.telemetry import Telemetry, utc_now
    from sidecar.metrics import Metrics
    from sidecar.settings import Settings

    user = make_user(admin, "sidecar_telemetry", roles()[TELEMETRY_ROLE])
    settings = Settings(
        opensearch_url=node.url,
        opensearch_user=user,
        opensearch_password=USER_PASSWORD,
        opensearch_ca_certs=str(node.ca_certs),
        search_page=False,
    )
    telemetry = Telemetry(settings, Metrics())
    record = {
        "@timestamp": utc_now(),
        "route": "/v1/rerank",
        "query_language": "en",
        "documents": 3,
        "latency_ms": 12.5,
    }
    assert telemetry._post([record]) == (0, "")


SHOP = "secured-shop"
ATTACH_ROLE, SHOP_SEARCH_ROLE = list(roles(SHOP, attached=True))[:2]


def attach_as(node: LocalNode, sidecar: SidecarProcess, user: str, *extra: str):
    """``sidecar-setup attach`` for real, as ``user`` (the CA bundle, no --insecure)."""
    return subprocess.run(
        [sys.executable, "-m", "cluster_setup", "attach", "--opensearch", node.url]
        + ["--sidecar", sidecar.url, "--user", user, "--password", USER_PASSWORD]
        + ["--ca-certs", str(node.ca_certs), "--index", SHOP, *extra],
        capture_output=True,
        text=True,
        timeout=300,
    )


def attach_without(permission: str) -> dict[str, Any]:
    role = json.loads(json.dumps(roles(SHOP, attached=True)[ATTACH_ROLE]))
    role["cluster_permissions"] = [p for p in role["cluster_permissions"] if p != permission]
    for group in role["index_permissions"]:
        group["allowed_actions"] = [p for p in group["allowed_actions"] if p != permission]
    return role


@pytest.fixture(scope="module")
def secured_shop(node: LocalNode, sidecar: SidecarProcess, admin: Any) -> Iterator[dict[str, str]]:
    """A user's own index (its own mapping: ``name``, ``maker``, a knn_vector ``vec``), made
    and filled as admin, with document vectors from the sidecar."""
    from opensearchpy import helpers

    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    raw = [p for p in map(json.loads, lines) if p.get("title_en")][:40]  # English titles
    names = {p["id"]: p["title_en"] for p in raw}
    vectors = embed(sidecar.url, [f"{p['title_en']} {p.get('description_en', '')}" for p in raw])
    admin.indices.create(
        index=SHOP,
        body={
            "settings": {"index": {"knn": True, "number_of_replicas": 0}},
            "mappings": {
                "properties": {
                    "name": {"type": "text"},
                    "maker": {"type": "keyword"},
                    "vec": {
                        "type": "knn_vector",
                        "dimension": dimension(sidecar.url),
                        "method": {"name": "hnsw", "engine": "lucene", "space_type": "cosinesimil"},
                    },
                }
            },
        },
    )
    actions = [
        {
            "_index": SHOP,
            "_id": p["id"],
            "_source": {"name": p["title_en"], "maker": p.get("brand") or "", "vec": vec},
        }
        for p, vec in zip(raw, vectors, strict=True)
    ]
    try:
        helpers.bulk(admin, actions, refresh=True)
        yield names
    finally:
        admin.indices.delete(index=SHOP, ignore_unavailable=True)


@pytest.mark.parametrize(
    "permission",
    [
        "indices:admin/mappings/get",  # the index's fields: stops before anything is created
        "cluster:admin/search/pipeline/put",  # after every connector and model
    ],
)
def test_an_attach_user_missing_a_permission_gets_one_line_and_leaves_nothing(
    node: LocalNode, sidecar: SidecarProcess, admin: Any, secured_shop: Any, permission: str
):
    before = sorted(ml_objects(admin))
    pipelines = set(get_or_empty(admin, "/_search/pipeline"))
    user = make_user(
        admin, "attach_without_" + permission.rsplit("/", 1)[-1], attach_without(permission)
    )
    out = attach_as(node, sidecar, user, "--text-field", "name", "--vector-field", "vec")
    assert out.returncode != 0, out.stdout[-2000:]
    line = last_line(out)
    assert line.startswith(f"403 from {node.url}: user {user!r} lacks {permission}: grant "), line
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert sorted(ml_objects(admin)) == before
    assert set(get_or_empty(admin, "/_search/pipeline")) == pipelines


def test_the_printed_attach_and_search_roles_attach_and_rerank(
    node: LocalNode, sidecar: SidecarProcess, admin: Any, secured_shop: dict[str, str]
):
    """``sidecar-setup roles --index secured-shop --attach``, as printed: the attach user
    attaches (the self-check as the search user), the search user searches through the
    pipelines and the sidecar reranks; the attach user detaches."""
    printed = roles(SHOP, attached=True)
    attach_user = make_user(admin, "shop_attach", printed[ATTACH_ROLE])
    search_user = make_user(admin, "shop_search", printed[SHOP_SEARCH_ROLE])
    before = sorted(ml_objects(admin))
    out = attach_as(
        node,
        sidecar,
        attach_user,
        "--text-field",
        "name",
        "--vector-field",
        "vec",
        "--json",
        "--check-user",
        search_user,
        "--check-password",
        USER_PASSWORD,
    )
    try:
        assert out.returncode == 0, out.stderr[-3000:]
        report = json.loads(out.stdout)
        assert report["check"] == {"rerank": "ok", "user": search_user, "scores": 2}
        search = make_client(node.url, search_user, USER_PASSWORD, ca_certs=node.ca_certs)
        query = "wireless mouse"
        body = {
            "size": 8,
            "query": {"match": {"name": query}},
            "ext": {"rerank": {"query_context": {"query_text": query}}},
        }
        params = {"verbose_pipeline": "true"}
        recall = search.search(index=SHOP, body=body)["hits"]["hits"]
        assert len(recall) > 2, recall
        res = search.search(
            index=SHOP, body=body, params={**params, "search_pipeline": f"{SHOP}-rerank"}
        )
        assert not failed_processors(res), failed_processors(res)
        assert processors(res).get("rerank:") == "success", processors(res)
        ids, scores = sidecar_order(sidecar.url, query, recall, secured_shop)
        hits = res["hits"]["hits"]
        assert [h["_id"] for h in hits] == ids
        assert [h["_score"] for h in hits] == pytest.approx(scores, abs=1e-5)
        assert [h["_id"] for h in hits] != [h["_id"] for h in recall]  # it reordered
        leg = hybrid(query, ["name"], size=8)
        del leg["fields"]  # no field inside an object here
        res = search.search(
            index=SHOP,
            body=leg,
            params={**params, "search_pipeline": f"{SHOP}-hybrid-rerank"},
        )
        assert not failed_processors(res), failed_processors(res)
        statuses = processors(res)
        assert statuses.get("ml_inference:embed-leg") == "success", statuses
        assert statuses.get("rerank:") == "success", statuses
        assert res["hits"]["hits"], res
    finally:
        gone = attach_as(node, sidecar, attach_user, "--detach", "--json")
        assert gone.returncode == 0, gone.stderr[-3000:]
    pipelines = get_or_empty(admin, "/_search/pipeline")
    assert not [p for p in pipelines if p.startswith(SHOP)], list(pipelines)
    assert sorted(ml_objects(admin)) == before
