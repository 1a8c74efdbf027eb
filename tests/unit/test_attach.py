"""The bodies ``sidecar-setup attach`` builds for an index of the user's own, and its errors."""

from __future__ import annotations

import argparse
import json
import types
from typing import Any

import pytest

from cluster_setup import attach as at
from cluster_setup import budget as budgets
from cluster_setup.bodies import load_body, stamped_digest

IDS = {"rerank": "m-rerank", "translate": "m-translate", "embed-leg": "m-leg"}
VALUES = {"SIDECAR_URL": "http://sidecar:8080", "SIDECAR_API_KEY": "k"}


def plan(**kw: Any) -> at.Plan:
    return at.Plan(**{"index": "shop", "text_fields": ("name",), **kw})


def test_one_text_field_gives_rerank_and_translate_rerank() -> None:
    bodies = at.pipeline_bodies(plan(), IDS)
    assert list(bodies) == ["shop-rerank", "shop-translate-rerank"]
    assert list(bodies) == at.pipeline_bodies_names(plan())
    rerank = bodies["shop-rerank"]["response_processors"][0]["rerank"]
    assert rerank["ml_opensearch"] == {"model_id": "m-rerank"}
    assert rerank["context"]["document_fields"] == ["name"]
    assert rerank["ignore_failure"] is True
    assert "request_processors" not in bodies["shop-rerank"]
    ml = bodies["shop-translate-rerank"]["request_processors"][0]["ml_inference"]
    assert ml["model_id"] == "m-translate" and ml["ignore_failure"] is True
    assert ml["input_map"] == [{"query": "query.multi_match.query"}]
    assert ml["output_map"] == [{"query.multi_match.query": "bm25_query", "ext": "ext"}]
    for body in bodies.values():
        assert body["description"].startswith(f"{at.MARK} shop: ")
        assert stamped_digest(body["description"])
    assert plan().roles == ("rerank", "translate")


def test_the_query_path_moves_the_translation_in_both_forms() -> None:
    p = plan(query_path="query.bool.must[0].match.title.query", vector_field="vec")
    bodies = at.pipeline_bodies(p, IDS)
    ml = bodies["shop-translate-rerank"]["request_processors"][0]["ml_inference"]
    assert ml["input_map"] == [{"query": "query.bool.must[0].match.title.query"}]
    assert "query.bool.must[0].match.title.query" in ml["output_map"][0]
    hybrid = bodies["shop-hybrid-rerank"]["request_processors"]
    translate, leg = (p["ml_inference"] for p in hybrid)
    assert translate["input_map"] == [
        {"query": "query.hybrid.queries[0].bool.must[0].match.title.query"}
    ]
    assert leg["tag"] == "embed-leg" and leg["model_id"] == "m-leg"
    assert leg["output_map"] == [{"query.hybrid.queries[1]": "leg", "ext": "ext"}]


def test_a_vector_field_adds_the_hybrid_with_weights_and_the_same_rerank() -> None:
    p = plan(text_fields=("name", "details.summary"), vector_field="vec", weights=(0.3, 0.7))
    bodies = at.pipeline_bodies(p, IDS)
    assert list(bodies) == ["shop-rerank", "shop-translate-rerank", "shop-hybrid-rerank"]
    hybrid = bodies["shop-hybrid-rerank"]
    norm = hybrid["phase_results_processors"][0]["normalization-processor"]
    assert norm["combination"]["parameters"]["weights"] == [0.3, 0.7]
    rerank = hybrid["response_processors"][0]["rerank"]
    assert rerank["context"]["document_fields"] == ["name", "details.summary"]
    assert [x["ml_inference"]["model_id"] for x in hybrid["request_processors"]] == [
        "m-translate",
        "m-leg",
    ]
    assert p.roles == ("rerank", "translate", "embed-leg")
    assert "${" not in json.dumps(bodies)


def test_no_translate_keeps_only_the_embedding_and_the_rerank() -> None:
    p = plan(vector_field="vec", translate=False)
    ids = {k: v for k, v in IDS.items() if k != "translate"}
    bodies = at.pipeline_bodies(p, ids)
    assert list(bodies) == ["shop-rerank", "shop-hybrid-rerank"]
    procs = bodies["shop-hybrid-rerank"]["request_processors"]
    assert [x["ml_inference"]["tag"] for x in procs] == ["embed-leg"]
    assert p.roles == ("rerank", "embed-leg")


def test_the_state_is_read_back_from_the_pipelines() -> None:
    bodies = at.pipeline_bodies(plan(vector_field="vec"), IDS)
    assert at.models_in(bodies) == IDS
    # a pipeline of the same name not made by attach is not read
    foreign = {"shop-rerank": {"description": "mine", **bodies["shop-rerank"]}}
    foreign["shop-rerank"]["description"] = "mine"
    assert at.models_in(foreign) == {}
    assert at.models_in({"shop-rerank": None}) == {}


def test_detach_wants_nothing() -> None:
    p = at.Plan(index="shop", detach=True)
    assert p.roles == () and at.pipeline_bodies(p, {}) == {}


def test_the_vector_field_is_the_embed_leg_connectors_field_parameter() -> None:
    body = at.connector_body("embed-leg", plan(vector_field="my_vec"), budgets.DEFAULT, VALUES)
    original = load_body("connector.embed-leg.json")
    assert original["parameters"]["field"] == "embedding"
    assert body["parameters"] == {**original["parameters"], "field": "my_vec"}
    assert body["actions"][0]["request_body"] == original["actions"][0]["request_body"]
    assert '"field": "${parameters.field}"' in body["actions"][0]["request_body"]
    assert body["name"] == "ranking-sidecar-embed-query-leg for shop"
    assert body["actions"][0]["url"] == "http://sidecar:8080/v1/knn-leg"
    assert body["client_config"]["read_timeout"] == budgets.DEFAULT.read_timeout_s
    assert stamped_digest(body["description"])
    # another field, another digest: a re-run with a new field makes a new connector
    other = at.connector_body("embed-leg", plan(vector_field="v2"), budgets.DEFAULT, VALUES)
    assert stamped_digest(other["description"]) != stamped_digest(body["description"])
    connector = load_body("connector.embed-leg.json")
    del connector["parameters"]["field"]
    with pytest.raises(ValueError, match="'field' parameter"):
        at.with_vector_field(connector, "vec")


def test_objects_are_named_after_the_index() -> None:
    for role in ("rerank", "translate"):
        body = at.connector_body(role, plan(), budgets.DEFAULT, VALUES)
        assert body["name"].endswith(" for shop")
        model = at.model_body(role, plan(), "c-1")
        assert model["connector_id"] == "c-1" and model["name"].endswith(" for shop")
        assert stamped_digest(model["description"])


@pytest.mark.parametrize(
    ("kw", "said"),
    [
        ({"index": "Shop"}, "lowercase letters"),
        ({"index": "shop+1"}, "lowercase letters"),
        ({"text_fields": ()}, "at least one text field"),
        ({"text_fields": ("a'b",)}, 'field "a\'b"'),
        ({"vector_field": 'v"'}, "field 'v\"'"),
        ({"query_path": "multi_match.query"}, "starting with 'query.'"),
    ],
)
def test_bad_options_are_one_line(kw: dict[str, Any], said: str) -> None:
    with pytest.raises(at.AttachError) as exc:
        plan(**kw)
    assert said in str(exc.value.code) and "\n" not in str(exc.value.code)


MAPPING = {
    "shop-v1": {
        "mappings": {
            "properties": {
                "name": {"type": "text", "fields": {"raw": {"type": "keyword"}}},
                "details": {"properties": {"summary": {"type": "text"}}},
                "a.b": {"type": "text"},
                "maker": {"type": "keyword"},
                "vec": {"type": "knn_vector", "dimension": 384},
            }
        }
    }
}


def test_fields_that_fit_pass() -> None:
    p = plan(text_fields=("name", "details.summary", "a.b", "maker"), vector_field="vec")
    warnings = at.check_index(MAPPING, p, 384)
    # only the field inside an object needs "fields" in the search (a dotted name does not)
    assert len(warnings) == 1 and "details.summary is inside an object" in warnings[0]


@pytest.mark.parametrize(
    ("kw", "said"),
    [
        ({"text_fields": ("title",)}, "--text-field title: no such field in the mapping of shop"),
        ({"text_fields": ("name.raw",)}, "a multi-field of name in shop (shop-v1)"),
        ({"text_fields": ("details",)}, "--text-field details: mapped as object"),
        ({"text_fields": ("vec",)}, "mapped as knn_vector"),
        ({"vector_field": "maker"}, "--vector-field maker: mapped as keyword"),
        ({"vector_field": "nope"}, "--vector-field nope: no such field"),
        ({"vector_field": "vec", "dim": 768}, "dimension 384 in shop (shop-v1)"),
    ],
)
def test_fields_that_do_not_fit_are_one_line(kw: dict[str, Any], said: str) -> None:
    dim = kw.pop("dim", 384)
    with pytest.raises(at.AttachError) as exc:
        at.check_index(MAPPING, plan(**kw), dim)
    assert said in str(exc.value.code), exc.value.code


def test_every_index_behind_an_alias_is_checked() -> None:
    two = {**MAPPING, "shop-v2": {"mappings": {"properties": {"title": {"type": "text"}}}}}
    with pytest.raises(at.AttachError, match=r"shop \(shop-v2\)"):
        at.check_index(two, plan(), None)


class Transport:
    """Answers the reads of a run; records every request."""

    def __init__(self, mapping: dict[str, Any] | None) -> None:
        self.mapping = mapping
        self.calls: list[tuple[str, str]] = []

    def perform_request(self, method: str, path: str, body: Any = None, params: Any = None):
        from opensearchpy.exceptions import NotFoundError

        self.calls.append((method, path))
        if path.startswith("/_cluster/settings"):
            return {"defaults": {}, "persistent": {}, "transient": {}}
        if path.endswith("/_mapping") and self.mapping is not None:
            return self.mapping
        if path.endswith("/_search"):
            return {"hits": {"hits": []}}
        raise NotFoundError(404, "not found", {})


def run(transport: Transport, *argv: str) -> at.Attach:
    args = at.build_parser().parse_args(["--index", "shop", *argv, "--no-check"])
    attach = at.Attach(types.SimpleNamespace(transport=transport), args, at.plan_from_args(args))
    attach.run()
    return attach


@pytest.mark.parametrize(
    ("mapping", "argv", "said"),
    [
        (None, ["--text-field", "name"], "index 'shop' does not exist"),
        (MAPPING, ["--text-field", "title"], "no such field"),
        (MAPPING, ["--text-field", "name", "--vector-field", "vec", "--dimension", "8"], "8"),
    ],
)
def test_a_run_that_does_not_fit_reads_only(mapping: Any, argv: list[str], said: str) -> None:
    transport = Transport(mapping)
    with pytest.raises(at.AttachError, match=said):
        run(transport, *argv)
    assert all(m == "GET" for m, _ in transport.calls), transport.calls


def test_a_dry_run_writes_nothing_and_warns_about_glued_fields(capsys) -> None:
    transport = Transport(MAPPING)
    attach = run(transport, "--text-field", "name", "--text-field", "details.summary", "--dry-run")
    assert all(m == "GET" or p.endswith("/_search") for m, p in transport.calls)
    statuses = {(a["kind"], a["name"]): a["status"] for a in attach.report.actions}
    assert statuses[("search-pipeline", "shop-rerank")] == "would-apply"
    assert "no separator" in attach.warnings[0]
    assert "--- PUT /_search/pipeline/shop-rerank" in capsys.readouterr().out


def test_the_attach_flags_are_in_its_help() -> None:
    text = at.build_parser().format_help()
    for flag in ("--index", "--text-field", "--vector-field", "--query-path", "--budget"):
        assert flag in text
    assert isinstance(at.build_parser().parse_args(["--index", "x"]), argparse.Namespace)


def test_the_attach_roles_name_the_index_and_write_nothing_to_it() -> None:
    from cluster_setup.roles import SETUP_CLUSTER, roles

    got = roles("shop", attached=True)
    assert set(got) == {
        "ranking_sidecar_attach_shop",
        "ranking_sidecar_search_shop",
        "ranking_sidecar_telemetry",
    }
    setup = got["ranking_sidecar_attach_shop"]
    assert setup["index_permissions"] == [
        {"index_patterns": ["shop"], "allowed_actions": ["indices:admin/mappings/get"]}
    ]
    assert not any("index_template" in a for a in setup["cluster_permissions"])
    # the main setup's cluster permissions less the template ones, plus reading the ingest
    # pipeline an earlier --join-into may have left (every run looks for it)
    assert set(setup["cluster_permissions"]) - set(SETUP_CLUSTER) == {
        "cluster:admin/ingest/pipeline/get"
    }
    # the main setup's roles are unchanged
    assert "ranking_sidecar_setup" in roles("products")


# -- --join-into ----------------------------------------------------------------------------
JOINED = {"text_fields": ("name", "details.summary"), "join_into": "rerank_text"}


def test_join_into_reranks_the_joined_field_and_builds_the_ingest_pipeline() -> None:
    p = plan(**JOINED)
    rerank = at.pipeline_bodies(p, IDS)["shop-rerank"]["response_processors"][0]["rerank"]
    assert rerank["context"]["document_fields"] == ["rerank_text"]
    assert p.join_pipeline == "shop-join-text"
    body = at.join_pipeline_body(p)
    assert body["description"].startswith(f"{at.MARK} shop: ") and stamped_digest(
        body["description"]
    )
    (proc,) = body["processors"]
    assert proc["script"]["params"] == {
        "fields": ["name", "details.summary"],
        "target": "rerank_text",
        "separator": "\n",
    }
    assert proc["script"]["lang"] == "painless"
    # another order is another join: another digest
    other = at.join_pipeline_body(plan(**{**JOINED, "text_fields": ("details.summary", "name")}))
    assert stamped_digest(other["description"]) != stamped_digest(body["description"])


@pytest.mark.parametrize(
    ("kw", "said"),
    [
        ({"join_into": "rerank_text"}, "joins two or more"),
        ({**JOINED, "join_into": "name"}, "not one of the --text-field"),
        ({**JOINED, "join_into": "a.b"}, "a top-level field name"),
    ],
)
def test_bad_join_options_are_one_line(kw: dict[str, Any], said: str) -> None:
    with pytest.raises(at.AttachError, match=said):
        plan(**kw)


class SettingsTransport(Transport):
    def __init__(self, mapping: dict[str, Any], settings: dict[str, Any]) -> None:
        super().__init__(mapping)
        self.settings = settings

    def perform_request(self, method: str, path: str, body: Any = None, params: Any = None):
        if method == "GET" and path.endswith("/_settings"):
            self.calls.append((method, path))
            return self.settings
        return super().perform_request(method, path, body, params)


JOIN_ARGV = ["--text-field", "name", "--text-field", "details.summary", "--join-into", "rt"]


def test_an_index_with_a_default_pipeline_of_its_own_is_one_line_with_the_processor() -> None:
    settings = {"shop-v1": {"settings": {"index": {"default_pipeline": "theirs"}}}}
    transport = SettingsTransport(MAPPING, settings)
    with pytest.raises(at.AttachError) as err:
        run(transport, *JOIN_ARGV)
    line = str(err.value)
    assert "\n" not in line and "already has index.default_pipeline theirs" in line
    processor = json.loads(line[line.index('{"script"') :])
    assert processor["script"]["params"]["target"] == "rt"
    assert all(m == "GET" for m, _ in transport.calls), transport.calls


def test_a_join_field_mapped_as_another_type_is_refused() -> None:
    mapping = json.loads(json.dumps(MAPPING))
    mapping["shop-v1"]["mappings"]["properties"]["rt"] = {"type": "keyword"}
    transport = SettingsTransport(mapping, {"shop-v1": {"settings": {"index": {}}}})
    with pytest.raises(at.AttachError, match="rt: mapped as keyword"):
        run(transport, *JOIN_ARGV)


def test_a_dry_run_with_join_into_shows_the_pipeline_mapping_and_setting(capsys) -> None:
    transport = SettingsTransport(MAPPING, {"shop-v1": {"settings": {"index": {}}}})
    attach = run(transport, *JOIN_ARGV, "--dry-run")
    assert all(m == "GET" or p.endswith("/_search") for m, p in transport.calls)
    statuses = {(a["kind"], a["name"]): a["status"] for a in attach.report.actions}
    assert statuses[("ingest-pipeline", "shop-join-text")] == "would-apply"
    assert statuses[("mapping", "shop.rt")] == "would-apply"
    assert statuses[("index-setting", "shop-v1 index.default_pipeline")] == "would-apply"
    out = capsys.readouterr().out
    assert "--- PUT /_ingest/pipeline/shop-join-text" in out
    assert not attach.warnings  # no glue warning: the rerank reads one field
