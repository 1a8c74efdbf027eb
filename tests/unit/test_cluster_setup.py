"""The pieces of ``cluster_setup`` every client of the cluster shares: the setup state in
the index template, the pipelines' weights and failures, and that the modules the search
page imports stay light."""

from __future__ import annotations

import subprocess
import sys

from cluster_setup.bodies import load_body
from cluster_setup.pipelines import PIPELINES, TRANSLATING, failed_processors, set_weights
from cluster_setup.state import model_id, read_state, template_path, with_state

STATE = {
    "rerank": {"connector_id": "c1", "model_id": "m1"},
    "embed": {"connector_id": "c2", "model_id": "m2"},
}


def test_the_state_written_into_a_template_is_read_back() -> None:
    template = load_body("products.index_template.json")
    written = with_state(template, STATE)
    assert "setup_state" not in template.get("_meta", {})  # the body itself is untouched
    assert written["_meta"]["setup_state"] == STATE
    assert set(template.get("_meta", {})) <= set(written["_meta"])
    assert read_state(written) == STATE
    # the cluster's answer to GET /_index_template/products holds the same body
    answer = {"index_templates": [{"name": "products", "index_template": written}]}
    assert read_state(answer) == STATE
    assert model_id(read_state(answer)) == "m2"
    assert model_id(read_state(answer), "rerank") == "m1"
    assert template_path() == "/_index_template/products"


def test_no_setup_yet_reads_as_an_empty_state() -> None:
    for found in (None, {}, {"index_templates": []}, {"_meta": {}}, {"_meta": None}):
        assert read_state(found) == {}
    assert model_id({}) is None
    assert model_id({"embed": {"connector_id": "c"}}) is None


def test_set_weights_touches_only_the_normalization_processor() -> None:
    body = load_body("pipeline.hybrid.json")
    weighted = set_weights(body, [0.3, 0.7])
    norm = [p for p in weighted["phase_results_processors"] if "normalization-processor" in p]
    assert norm and norm[0]["normalization-processor"]["combination"]["parameters"] == {
        "weights": [0.3, 0.7]
    }
    assert body == load_body("pipeline.hybrid.json")  # a copy, not the original
    assert PIPELINES == (
        "hybrid",
        "hybrid-rerank",
        "hybrid-untranslated",
        "hybrid-untranslated-rerank",
        "translate",
        "rerank",
    )


def test_the_translating_pipelines_rewrite_the_bm25_text_and_ext_fail_open() -> None:
    for name in PIPELINES:
        body = load_body(f"pipeline.{name}.json")
        procs = [p["ml_inference"] for p in body.get("request_processors", [])]
        # the fail-open query embedding, last in every hybrid pipeline (tests/unit/
        # test_fail_open_bodies.py covers it)
        embedding = [p for p in procs if p["model_id"] == "${EMBED_LEG_MODEL_ID}"]
        assert embedding == ([procs[-1]] if name.startswith("hybrid") else []), name
        procs = [p for p in procs if p not in embedding]
        if name not in TRANSLATING:
            assert procs == [], name
            continue
        (proc,) = procs
        path = (
            "query.multi_match.query"
            if name == "translate"
            else ("query.hybrid.queries[0].multi_match.query")
        )
        assert proc["model_id"] == "${TRANSLATE_MODEL_ID}"
        assert proc["input_map"] == [{"query": path}]
        # ext is written whole: neural-search 2.19 drops a rewrite that re-parses ext.rerank
        assert proc["output_map"] == [{path: "bm25_query", "ext": "ext"}]
        assert proc["ignore_failure"] is True and proc["ignore_missing"] is False
    # the untranslated ones are the translated ones without the translating processor
    for a, b in (
        ("hybrid", "hybrid-untranslated"),
        ("hybrid-rerank", "hybrid-untranslated-rerank"),
    ):
        ta, tb = load_body(f"pipeline.{a}.json"), load_body(f"pipeline.{b}.json")
        del ta["request_processors"][0], ta["description"], tb["description"]
        assert ta == tb


def test_no_ml_inference_processor_ignores_a_missing_input() -> None:
    """ML Commons 3.6's request processor answers twice when ``ignore_missing`` is true and
    the input path is missing (it calls the listener and goes on to the model): the node
    logs "Channel is already closed" and writes an error after the response, so the next
    search on that connection reads garbage. ``ignore_missing: false`` with ``ignore_failure:
    true`` lets such a body run as sent on both lines (2.19 never read the flag there)."""
    for name in PIPELINES:
        for proc in load_body(f"pipeline.{name}.json").get("request_processors", []):
            ml = proc["ml_inference"]
            assert ml["ignore_missing"] is False and ml["ignore_failure"] is True, name


def test_the_translate_connector_answers_fast_or_not_at_all() -> None:
    connector = load_body("connector.translate.json")
    # whole seconds in OpenSearch 2.19 (findings issue 15)
    assert connector["client_config"] == {
        "max_connection": 32,
        "connection_timeout": 1,
        "read_timeout": 2,
        "max_retry_times": 0,
    }
    (action,) = connector["actions"]
    assert action["url"] == "${SIDECAR_URL}/v1/understand"
    assert load_body("model.translate.json")["connector_id"] == "${CONNECTOR_ID}"


def test_failed_processors_of_a_verbose_search() -> None:
    response = {
        "processor_results": [
            {"processor_name": "normalization-processor", "status": "success"},
            {"processor_name": "rerank", "status": "fail", "error": "timed out"},
        ]
    }
    assert failed_processors(response) == ["rerank: timed out"]
    assert failed_processors({"hits": {"hits": []}}) == []


def test_what_the_search_page_imports_loads_no_cluster_client() -> None:
    code = (
        "import sys, cluster_setup.queries, cluster_setup.state, cluster_setup.pipelines;"
        "print(sorted(m for m in ('opensearchpy', 'requests', 'urllib3', 'ingest') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


class _Transport:
    """Answers connector creation as a busy fresh node does: the master key first times out."""

    def __init__(self, failures: int, message: str = "Fetching master key timed out.") -> None:
        self.failures = failures
        self.message = message
        self.calls = 0

    def perform_request(self, method: str, path: str, body: object = None, params: object = None):
        from opensearchpy.exceptions import TransportError

        self.calls += 1
        if self.calls <= self.failures:
            raise TransportError(500, "m_l_exception", self.message)
        return {"connector_id": "c-1"}


def _setup(transport: _Transport):
    import argparse
    import types

    from cluster_setup.cli import Setup

    return Setup(types.SimpleNamespace(transport=transport), argparse.Namespace(dry_run=False))


def test_connector_creation_waits_for_ml_commons_master_key(monkeypatch) -> None:
    monkeypatch.setattr("cluster_setup.cli.time.sleep", lambda s: None)
    transport = _Transport(failures=2)
    assert _setup(transport).create_connector({"name": "x"}) == "c-1"
    assert transport.calls == 3


def test_connector_creation_does_not_retry_other_errors(monkeypatch) -> None:
    import pytest
    from opensearchpy.exceptions import TransportError

    monkeypatch.setattr("cluster_setup.cli.time.sleep", lambda s: None)
    transport = _Transport(failures=1, message="some other failure")
    with pytest.raises(TransportError):
        _setup(transport).create_connector({"name": "x"})
    assert transport.calls == 1


#: what ML Commons 3.x accepts in a connector's or model's name and description (2.19 takes any)
ML_COMMONS_3_PUNCTUATION = set(".,!?():@-_'/\" ")


def test_setup_stamps_pass_ml_commons_3_name_and_description_rules() -> None:
    """ML Commons 3.6 answers 400 "Model connector description can only contain letters,
    numbers, spaces, and basic punctuation" to anything else; setup's stamp must pass too."""
    from cluster_setup.bodies import TEMPLATES, stamp, stamped_digest

    names = sorted(
        p.name for p in TEMPLATES.glob("*.json") if p.name.startswith(("connector.", "model."))
    )
    assert names
    for name in names:
        body = stamp(load_body(name))
        for key in ("name", "description"):
            bad = {c for c in body[key] if not c.isalnum() and c not in ML_COMMONS_3_PUNCTUATION}
            assert not bad, f"{name} {key}: {sorted(bad)}"
        assert stamped_digest(body["description"])
    # an older run's bracketed stamp is still read, so a re-run changes nothing
    assert stamped_digest("the reranker [setup:0123456789ab]") == "0123456789ab"
    assert stamped_digest("the reranker (setup:0123456789ab)") == "0123456789ab"


def test_the_other_line_is_the_other_major_version() -> None:
    from local_node.node import DEFAULT_VERSION, LINES, other_version

    assert LINES[0] == DEFAULT_VERSION and len(LINES) == 2
    assert other_version("2.19.1") == "3.6.0" and other_version("3.6.0") == "2.19.1"
    assert other_version("3.5.0") == "2.19.1"
