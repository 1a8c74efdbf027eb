"""``sidecar-setup attach``: reranking and query understanding for an index of the user's own.

The main setup installs this project's index template, alias and field layout. A team whose
catalog already lives in an index of its own (its field names, its languages, with or
without vectors) attaches instead: only connectors, remote models and search pipelines named
after that index are created, and nothing in the index (mapping, settings, documents)
changes.

For an index ``NAME`` it creates:

- ``NAME-rerank``: the ``rerank`` response processor over the user's ``--text-field``s;
- ``NAME-translate-rerank``: the query translated at ``--query-path`` (the ``ml_inference``
  request processor of ``pipeline.translate.json``), then the rerank;
- ``NAME-hybrid-rerank``, with ``--vector-field`` only: the fail-open k-NN leg on that field
  (the ``embed-leg`` connector with the field name substituted), normalisation, the rerank.

Where the state is kept: in the pipelines themselves. Each pipeline names the models it calls
(``model_id``), each model names its connector, and each description carries the attach mark
and the digest of the body it was made from. A re-run reads the three pipelines (cluster
state, read in real time), finds its models and connectors through them, and changes
nothing when nothing changed; removing the pipelines (``--detach``) leaves nothing that
points at the objects. Nothing is written into the user's index or its ``_meta``, and no
index template is needed; the one exception is opt-in: ``--join-into FIELD`` adds the ingest
pipeline ``NAME-join-text`` as the index's default pipeline and rewrites the documents
already indexed through it, so that the rerank reads the text fields joined with a
separator (the rerank processor glues several ``document_fields`` with none).
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import re
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cluster_setup import budget as budgets
from cluster_setup.bodies import load_body, stamp, stamped_digest, substitute
from cluster_setup.cli import Setup, add_setup_args, print_check_and_budget, sidecar_dimensions
from cluster_setup.client import client_from_args
from cluster_setup.failures import one_line
from cluster_setup.pipelines import set_weights
from cluster_setup.state import SetupState

#: where the user's BM25 text is, in a plain (non-hybrid) search body
DEFAULT_QUERY_PATH = "query.multi_match.query"
#: the start of every attached pipeline's description: how a re-run tells its own pipelines
MARK = "sidecar-setup attach"
#: index names the objects are named after (ML Commons 3.x allows letters, digits, spaces
#: and ``.,!?():@-_'/"`` in names and descriptions)
INDEX_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")
#: field names that go into JSON strings unescaped (the sidecar checks the vector field too)
FIELD_NAME = re.compile(r"[A-Za-z0-9_@][A-Za-z0-9_.@-]*")
#: mapping types whose values the rerank processor cannot read as text
NOT_TEXT = {"object", "nested", "knn_vector", "dense_vector", "sparse_vector", "rank_features"}
#: what neural-search's rerank processor does with several document fields
GLUE_WARNING = (
    "the rerank processor concatenates document_fields {fields} with no separator "
    '("Garmin" + "Forerunner 55" -> "GarminForerunner 55"); docs/attach.md, Several text fields'
)


#: neural-search 2.19's rerank processor reads ``_source`` by top-level key only
OBJECT_WARNING = (
    "--text-field {field} is inside an object: the rerank processor of neural-search 2.19 "
    'reads only top-level _source keys, so list it in the search\'s "fields" '
    '("fields": ["{field}"]) or it reaches the reranker empty; docs/attach.md, Search bodies'
)


class AttachError(SystemExit):
    """A bad option or an index that does not fit: one line, nothing created."""


@dataclass(frozen=True)
class Plan:
    """What ``attach`` wires, from its options."""

    index: str
    text_fields: tuple[str, ...] = ()
    vector_field: str | None = None
    query_path: str = DEFAULT_QUERY_PATH
    translate: bool = True
    weights: tuple[float, float] = (0.5, 0.5)
    detach: bool = False
    #: ``--join-into``: the field an ingest pipeline fills with the text fields joined
    join_into: str | None = None

    def __post_init__(self) -> None:
        if not INDEX_NAME.fullmatch(self.index):
            raise AttachError(
                f"--index {self.index}: attach names its pipelines, connectors and models after "
                "the index, so it takes lowercase letters, digits, '.', '_' and '-' only"
            )
        if self.detach:
            return
        if not self.text_fields:
            raise AttachError("--text-field: name at least one text field of the index")
        for name in (*self.text_fields, self.vector_field or "x"):
            if not FIELD_NAME.fullmatch(name):
                raise AttachError(f"field {name!r}: letters, digits, '_', '@', '-' and '.' only")
        if self.join_into is not None:
            if not FIELD_NAME.fullmatch(self.join_into) or "." in self.join_into:
                raise AttachError(
                    f"--join-into {self.join_into}: a top-level field name (letters, digits, "
                    "'_', '@', '-')"
                )
            if len(self.text_fields) < 2:
                raise AttachError("--join-into: joins two or more --text-field")
            if self.join_into in self.text_fields:
                raise AttachError(
                    f"--join-into {self.join_into}: a field of its own, not one of the "
                    "--text-field it joins"
                )
        if not self.query_path.startswith("query."):
            raise AttachError(
                f"--query-path {self.query_path}: a path in the search body, starting with "
                f"'query.' (default {DEFAULT_QUERY_PATH})"
            )

    @property
    def names(self) -> dict[str, str]:
        """pipeline kind -> its name (all three, wanted or not)."""
        return {k: f"{self.index}-{k}" for k in ("rerank", "translate-rerank", "hybrid-rerank")}

    @property
    def join_pipeline(self) -> str:
        """The ingest pipeline ``--join-into`` makes (looked for on every run and detach)."""
        return f"{self.index}-join-text"

    @property
    def rerank_fields(self) -> list[str]:
        """The rerank processor's ``document_fields``."""
        return [self.join_into] if self.join_into else list(self.text_fields)

    @property
    def roles(self) -> tuple[str, ...]:
        """The connector + model pairs this plan needs."""
        if self.detach:
            return ()
        return (
            "rerank",
            *(("translate",) if self.translate else ()),
            *(("embed-leg",) if self.vector_field else ()),
        )

    @property
    def hybrid_query_path(self) -> str:
        """``--query-path`` inside the hybrid query's first (BM25) leg."""
        return "query.hybrid.queries[0]." + self.query_path.removeprefix("query.")


# -- bodies ----------------------------------------------------------------------------------
def object_name(base: str, index: str) -> str:
    """The connector or model name of ``base`` (``ranking-sidecar-rerank``) for ``index``."""
    return f"{base} for {index}"


def with_vector_field(connector: dict[str, Any], field: str) -> dict[str, Any]:
    """The embed-leg connector answering its k-NN leg on ``field`` instead of ``embedding``:
    the sidecar's ``/v1/knn-leg`` builds the clause on the connector's ``field`` parameter,
    so that parameter is the one thing that changes."""
    out = copy.deepcopy(connector)
    params = out.get("parameters") or {}
    if "field" not in params:
        raise ValueError("connector.embed-leg.json: expected a 'field' parameter")
    params["field"] = field
    return out


def connector_body(
    role: str, plan: Plan, budget: budgets.Budget, values: dict[str, str]
) -> dict[str, Any]:
    """The stamped connector of ``role`` for the attached index."""
    body = substitute(budgets.apply(load_body(f"connector.{role}.json"), budget), values)
    if role == "embed-leg":
        body = with_vector_field(body, plan.vector_field or "")
    body["name"] = object_name(body["name"], plan.index)
    body["description"] = f"{body['description']}, for index {plan.index}"
    return stamp(body)


def model_body(role: str, plan: Plan, connector_id: str) -> dict[str, Any]:
    body = substitute(load_body(f"model.{role}.json"), {"CONNECTOR_ID": connector_id})
    body["name"] = object_name(body["name"], plan.index)
    body["description"] = f"{body['description']}, for index {plan.index}"
    return stamp(body)


def _move_path(processor: dict[str, Any], old: str, new: str) -> None:
    """An ``ml_inference`` processor reading and writing ``new`` where it read ``old``."""
    processor["input_map"] = [
        {k: (new if v == old else v) for k, v in m.items()} for m in processor["input_map"]
    ]
    processor["output_map"] = [
        {(new if k == old else k): v for k, v in m.items()} for m in processor["output_map"]
    ]


def _rerank_processor(plan: Plan, ids: Mapping[str, str]) -> dict[str, Any]:
    body = substitute(load_body("pipeline.rerank.json"), {"RERANK_MODEL_ID": ids["rerank"]})
    proc: dict[str, Any] = body["response_processors"][0]
    proc["rerank"]["context"]["document_fields"] = plan.rerank_fields
    return proc


def _described(body: dict[str, Any], plan: Plan) -> dict[str, Any]:
    body["description"] = f"{MARK} {plan.index}: {body['description']}"
    return stamp(body)


def pipeline_bodies(plan: Plan, ids: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Pipeline name -> stamped body, for the model ids ``ids`` (role -> model id)."""
    if plan.detach:
        return {}
    names = plan.names
    rerank = _rerank_processor(plan, ids)
    out = {
        names["rerank"]: _described(
            {
                "description": f"any query on {plan.index}, then the sidecar reranks the page "
                f"(document_fields {', '.join(plan.rerank_fields)})",
                "response_processors": [rerank],
            },
            plan,
        )
    }
    translate: dict[str, Any] | None = None
    if plan.translate:
        translate = substitute(
            load_body("pipeline.translate.json"), {"TRANSLATE_MODEL_ID": ids["translate"]}
        )["request_processors"][0]
        _move_path(translate["ml_inference"], DEFAULT_QUERY_PATH, plan.query_path)
        out[names["translate-rerank"]] = _described(
            {
                "description": f"the query at {plan.query_path} translated (fail-open), then "
                "the sidecar reranks the page",
                "request_processors": [translate],
                "response_processors": [copy.deepcopy(rerank)],
            },
            plan,
        )
    if plan.vector_field:
        hybrid = load_body("pipeline.hybrid-rerank.json")
        procs = hybrid["request_processors"]
        main_path = "query.hybrid.queries[0].multi_match.query"
        for proc in procs:
            ml = proc["ml_inference"]
            if ml["model_id"] == "${EMBED_LEG_MODEL_ID}":
                ml["tag"] = "embed-leg"
            else:
                _move_path(ml, main_path, plan.hybrid_query_path)
        if not plan.translate:
            procs[:] = [p for p in procs if p["ml_inference"].get("tag") == "embed-leg"]
        hybrid = substitute(
            hybrid,
            {
                "TRANSLATE_MODEL_ID": ids.get("translate", ""),
                "EMBED_LEG_MODEL_ID": ids["embed-leg"],
                "RERANK_MODEL_ID": ids["rerank"],
            },
        )
        hybrid["response_processors"] = [copy.deepcopy(rerank)]
        hybrid = set_weights(hybrid, list(plan.weights))
        hybrid["description"] = (
            f"{'query translated, then ' if plan.translate else ''}embedded into the k-NN leg "
            f"on {plan.vector_field} (fail-open: BM25 alone when the sidecar fails), hybrid, "
            "then the sidecar reranks the page"
        )
        out[names["hybrid-rerank"]] = _described(hybrid, plan)
    return out


#: what the join writes between two fields' values (and between a list's items)
JOIN_SEPARATOR = "\n"
#: the ingest ``script``: each field's value (a dotted path walked through objects, a
#: dotted key taken as is; a list's items each), missing, null and blank ones skipped, in
#: the order given, joined with the separator; no value at all removes the target
JOIN_SCRIPT = (
    "List parts = new ArrayList();"
    " for (String path : params.fields) {"
    " def v = ctx.containsKey(path) ? ctx.get(path) : null;"
    " if (v == null) { v = ctx;"
    " for (String key : path.splitOnToken('.')) {"
    " if (v instanceof Map && ((Map) v).containsKey(key)) { v = ((Map) v).get(key); }"
    " else { v = null; break; } } }"
    " List values = v instanceof List ? (List) v : [v];"
    " for (def x : values) {"
    " if (x != null && !(x instanceof Map) && x.toString().trim().length() > 0) {"
    " parts.add(x.toString()); } } }"
    " if (parts.isEmpty()) { ctx.remove(params.target); }"
    " else { ctx[params.target] = String.join(params.separator, parts); }"
)


def join_pipeline_body(plan: Plan) -> dict[str, Any]:
    """The ingest pipeline ``NAME-join-text``: the ``--text-field``s joined into
    ``--join-into`` with a separator, for the rerank processor, which glues several
    ``document_fields`` with none."""
    fields = list(plan.text_fields)
    return _described(
        {
            "description": f"joins {', '.join(fields)} into {plan.join_into} with a newline, "
            "for the sidecar's rerank",
            "processors": [{"script": join_processor(plan)}],
        },
        plan,
    )


def join_processor(plan: Plan) -> dict[str, Any]:
    """The ``script`` processor itself: what a user with a default pipeline of their own
    adds to it."""
    return {
        "tag": "sidecar-join-text",
        "lang": "painless",
        "source": JOIN_SCRIPT,
        "params": {
            "fields": list(plan.text_fields),
            "target": plan.join_into,
            "separator": JOIN_SEPARATOR,
        },
    }


def models_in(pipelines: Mapping[str, Any]) -> dict[str, str]:
    """role -> model id of the attached pipelines found (``GET /_search/pipeline/NAME``
    bodies): the state a re-run starts from. Pipelines without the mark are not read."""
    found: dict[str, str] = {}
    for body in pipelines.values():
        if not body or not str(body.get("description", "")).startswith(MARK):
            continue
        for proc in body.get("request_processors", []):
            ml = proc.get("ml_inference") or {}
            role = "embed-leg" if ml.get("tag") == "embed-leg" else "translate"
            if ml.get("model_id"):
                found.setdefault(role, ml["model_id"])
        for proc in body.get("response_processors", []):
            model = (proc.get("rerank") or {}).get("ml_opensearch", {}).get("model_id")
            if model:
                found.setdefault("rerank", model)
    return found


# -- the index ---------------------------------------------------------------------------
def field_mapping(properties: Mapping[str, Any], path: str) -> dict[str, Any] | None:
    """The mapping of the dotted ``path`` (objects' ``properties`` walked; a dotted name
    mapped as such also found); ``None`` when absent."""
    if path in properties:
        return dict(properties[path])
    head, _, rest = path.partition(".")
    while rest:
        if head in properties and "properties" in properties[head]:
            found = field_mapping(properties[head]["properties"], rest)
            if found is not None:
                return found
        more, _, rest = rest.partition(".")
        head = f"{head}.{more}"
    return None


def multi_field_of(properties: Mapping[str, Any], path: str) -> str | None:
    """The parent when ``path`` is a multi-field (``name.keyword``): not in ``_source``."""
    parent, _, sub = path.rpartition(".")
    mapped = field_mapping(properties, parent) if parent else None
    return parent if mapped and sub in (mapped.get("fields") or {}) else None


def check_index(mappings: Mapping[str, Any], plan: Plan, dimension: int | None) -> list[str]:
    """The fields exist in every index behind ``plan.index`` (an index or an alias) and fit;
    raises ``AttachError`` with the first that does not. Returns the warnings: text fields
    inside objects."""
    inside = set()
    for concrete, body in sorted(mappings.items()):
        props = (body.get("mappings") or {}).get("properties") or {}
        where = plan.index if concrete == plan.index else f"{plan.index} ({concrete})"
        for name in plan.text_fields:
            mapped = field_mapping(props, name)
            if mapped is None:
                parent = multi_field_of(props, name)
                if parent:
                    raise AttachError(
                        f"--text-field {name}: a multi-field of {parent} in {where}, not in "
                        f"_source, which the rerank reads; name {parent}"
                    )
                raise AttachError(f"--text-field {name}: no such field in the mapping of {where}")
            if name not in props:
                inside.add(name)
            kind = mapped.get("type", "object")
            if kind in NOT_TEXT:
                raise AttachError(
                    f"--text-field {name}: mapped as {kind} in {where}; the rerank needs text "
                    "(name the text fields inside an object one by one)"
                )
        if plan.vector_field:
            name = plan.vector_field
            mapped = field_mapping(props, name)
            if mapped is None:
                raise AttachError(f"--vector-field {name}: no such field in the mapping of {where}")
            if mapped.get("type") != "knn_vector":
                raise AttachError(
                    f"--vector-field {name}: mapped as {mapped.get('type', 'object')} in "
                    f"{where}, not as a knn_vector"
                )
            width = mapped.get("dimension")
            if dimension is not None and width != dimension:
                raise AttachError(
                    f"--vector-field {name}: dimension {width} in {where}, but the sidecar's "
                    f"embedder answers {dimension} (its /readyz); the vectors must come from "
                    "the same embedder"
                )
    return [OBJECT_WARNING.format(field=f) for f in plan.text_fields if f in inside]


# -- the run ---------------------------------------------------------------------------------
class Attach(Setup):
    """``Setup``'s machinery (reads once, only a 404 is missing, undo on failure, digests,
    the budget, the self-check) applied to connectors, models and pipelines only."""

    def __init__(self, client: Any, args: argparse.Namespace, plan: Plan) -> None:
        super().__init__(client, args)
        self.plan = plan
        self.warnings: list[str] = []
        self.pipeline_ids: dict[str, str] = {}

    def connector_body(self, role: str, values: dict[str, str]) -> dict[str, Any]:
        return connector_body(role, self.plan, self.budget, values)

    def model_body(self, role: str, connector_id: str) -> dict[str, Any]:
        return model_body(role, self.plan, connector_id)

    def mappings(self) -> dict[str, Any]:
        found: dict[str, Any] | None = self.read(f"/{self.plan.index}/_mapping")
        if found is None:
            raise AttachError(
                f"index {self.plan.index!r} does not exist; attach wires an existing index "
                "(sidecar-setup without attach creates the project's own)"
            )
        return found

    def preflight(self) -> SetupState:
        plan = self.plan
        self.read("/_cluster/settings?flat_settings=true&include_defaults=true")
        if not plan.detach:
            dimension = None
            if plan.vector_field:
                dimension = self.args.dimension or sidecar_dimensions(self.args.sidecar)
            inside = check_index(self.mappings(), plan, dimension)
            if not plan.join_into:  # the join reads fields inside objects; the rerank not
                self.warnings += inside
        self.found_join = self.read(f"/_ingest/pipeline/{plan.join_pipeline}")
        self.found_join = (self.found_join or {}).get(plan.join_pipeline)
        self.index_settings: dict[str, Any] = {}
        if plan.join_into or self.found_join:
            self.index_settings = self.read(f"/{plan.index}/_settings") or {}
        if plan.join_into:
            self.check_join()
        found = {}
        for name in plan.names.values():
            got = self.read(f"/_search/pipeline/{name}")
            found[name] = (got or {}).get(name)
        self.found_pipelines = found
        saved: SetupState = {}
        for role, model_id in models_in(found).items():
            model = self._get("models", model_id)
            if model:
                saved[role] = {"model_id": model_id, "connector_id": model.get("connector_id", "")}
                self._get("connectors", model.get("connector_id"))
        for role in plan.roles:
            self._find(
                "connectors", object_name(load_body(f"connector.{role}.json")["name"], plan.index)
            )
            self._find("models", object_name(load_body(f"model.{role}.json")["name"], plan.index))
        return saved

    def put_default_pipeline(
        self, concrete: str, value: str | None, previous: str | None, status: str, detail: str
    ) -> None:
        """``index.default_pipeline`` of ``concrete`` set to ``value`` (None unsets it), with
        ``previous`` put back if the run fails later; reported as ``status``."""
        setting = {"index": {"default_pipeline": value}}
        self.show(f"PUT /{concrete}/_settings", setting)
        if not self.dry:
            self.req("PUT", f"/{concrete}/_settings", setting)
            self.undo_on_failure(
                f"index.default_pipeline of {concrete}",
                functools.partial(
                    self.req,
                    "PUT",
                    f"/{concrete}/_settings",
                    {"index": {"default_pipeline": previous}},
                ),
            )
        dry = {"created": "would-apply", "deleted": "would-delete"}[status]
        self.report.add(
            "index-setting",
            f"{concrete} index.default_pipeline",
            dry if self.dry else status,
            detail,
        )

    def default_pipelines(self) -> dict[str, str]:
        """concrete index -> its ``index.default_pipeline`` (where one is set)."""
        out = {}
        for concrete, body in self.index_settings.items():
            got = ((body.get("settings") or {}).get("index") or {}).get("default_pipeline")
            if got and got != "_none":
                out[concrete] = str(got)
        return out

    def check_join(self) -> None:
        """``--join-into``: the index has no default pipeline of another's, and the field is
        free or text; else one line (with the processor to add, for a pipeline of theirs)."""
        plan = self.plan
        got = self.found_join
        if got and not str(got.get("description", "")).startswith(MARK):
            raise AttachError(
                f"ingest pipeline {plan.join_pipeline} exists and was not made by {MARK}; "
                "remove or rename it"
            )
        for concrete, name in sorted(self.default_pipelines().items()):
            if name != plan.join_pipeline:
                raise AttachError(
                    f"--join-into {plan.join_into}: {concrete} already has index.default_pipeline "
                    f"{name}; attach sets it only where none is set, so add this processor to "
                    f"{name} yourself and attach without --join-into, naming "
                    f"--text-field {plan.join_into}: "
                    + json.dumps({"script": join_processor(plan)}, ensure_ascii=False)
                )
        for concrete, body in sorted(self.mappings().items()):
            props = (body.get("mappings") or {}).get("properties") or {}
            kind = (props.get(plan.join_into or "") or {}).get("type")
            if kind not in (None, "text", "match_only_text"):
                raise AttachError(
                    f"--join-into {plan.join_into}: mapped as {kind} in {concrete}; name a new "
                    "field (attach maps it as text)"
                )

    def apply_join(self) -> None:
        """The ingest pipeline, the field's mapping, the index's default pipeline, then the
        documents already indexed rewritten through it (only when something changed)."""
        plan = self.plan
        name = plan.join_pipeline
        body = join_pipeline_body(plan)
        path = f"/_ingest/pipeline/{name}"
        self.show(f"PUT {path}", body)
        got = self.found_join
        changed = not (
            got and stamped_digest(got.get("description")) == stamped_digest(body["description"])
        )
        if changed and not self.dry:
            self.req("PUT", path, body)
            self.undo_on_failure(f"ingest pipeline {name}", self._restore(path, got))
        status = "unchanged" if not changed else ("would-apply" if self.dry else "created")
        if changed and got and not self.dry:
            status = "updated"
        self.report.add("ingest-pipeline", name, status)
        mapping = {"properties": {plan.join_into: {"type": "text"}}}
        unmapped = [
            c
            for c, b in self.mappings().items()
            if plan.join_into not in ((b.get("mappings") or {}).get("properties") or {})
        ]
        if unmapped:
            self.show(f"PUT /{plan.index}/_mapping", mapping)
            if not self.dry:
                self.req("PUT", f"/{plan.index}/_mapping", mapping)
            self.report.add(
                "mapping",
                f"{plan.index}.{plan.join_into}",
                "would-apply" if self.dry else "created",
                "text",
            )
        unset = [c for c in self.index_settings if c not in self.default_pipelines()]
        for concrete in sorted(unset):
            self.put_default_pipeline(concrete, name, None, "created", name)
        if (changed or unset or unmapped) and not self.dry:
            joined = self.join_existing(name)
            self.report.add(
                "documents", plan.index, "updated", f"{joined} joined into {plan.join_into}"
            )

    def join_existing(self, name: str, poll_s: float = 2.0) -> int:
        """``_update_by_query?pipeline=NAME`` over the index, as a task (progress on stderr
        for a long one); the number of documents rewritten."""
        plan = self.plan
        print(
            f"sidecar-setup attach: --join-into {plan.join_into}: rewriting the documents of "
            f"{plan.index} through {name} (their other fields are kept)",
            file=sys.stderr,
        )
        res = self.req(
            "POST",
            f"/{plan.index}/_update_by_query",
            params={
                "pipeline": name,
                "wait_for_completion": "false",
                "conflicts": "proceed",
                "refresh": "true",
            },
        )
        task_id = res["task"]
        started = time.monotonic()
        while True:
            task = self.req("GET", f"/_tasks/{task_id}")
            status = (task.get("task") or {}).get("status") or {}
            if task.get("completed"):
                break
            if time.monotonic() - started > 5:
                done = sum(int(status.get(k, 0)) for k in ("updated", "noops", "version_conflicts"))
                print(
                    f"sidecar-setup attach: joined {done}/{status.get('total', '?')} documents",
                    file=sys.stderr,
                )
            time.sleep(poll_s)
        answer = task.get("response") or {}
        failures = answer.get("failures") or []
        if task.get("error") or failures:
            first = task.get("error") or failures[0]
            raise AttachError(
                f"--join-into {plan.join_into}: _update_by_query through {name} failed: "
                + " ".join(json.dumps(first, ensure_ascii=False).split())[:400]
            )
        return int(answer.get("updated", 0))

    def remove_join(self) -> None:
        """``--detach`` (or a run without ``--join-into``): the default pipeline it set
        unset, then its ingest pipeline deleted; the joined values stay in the documents."""
        name = self.plan.join_pipeline
        got = self.found_join
        if not got or not str(got.get("description", "")).startswith(MARK):
            return
        for concrete, current in sorted(self.default_pipelines().items()):
            if current != name:
                continue
            self.put_default_pipeline(concrete, None, name, "deleted", name)
        path = f"/_ingest/pipeline/{name}"
        self.show(f"DELETE {path}", {})
        if not self.dry:
            self.req("DELETE", path)
            self.undo_on_failure(f"ingest pipeline {name}", self._restore(path, got))
        self.report.add("ingest-pipeline", name, "would-delete" if self.dry else "deleted")

    def apply_attach(self, saved: SetupState) -> SetupState:
        plan = self.plan
        if plan.roles:
            self.cluster_settings()
        values = {
            "SIDECAR_URL": self.args.sidecar.rstrip("/"),
            "SIDECAR_API_KEY": self.args.sidecar_api_key,
        }
        state = {
            role: self.connector_and_model(role, values, saved.get(role, {})) for role in plan.roles
        }
        if plan.join_into:
            self.apply_join()
        else:
            self.remove_join()
        bodies = pipeline_bodies(plan, {r: ids["model_id"] for r, ids in state.items()})
        for name, body in bodies.items():
            self.put_pipeline(name, body)
        for name, got in self.found_pipelines.items():
            if name in bodies or not got or not str(got.get("description", "")).startswith(MARK):
                continue
            self.show(f"DELETE /_search/pipeline/{name}", {})
            if not self.dry:
                path = f"/_search/pipeline/{name}"
                self.req("DELETE", path)
                self.undo_on_failure(f"search pipeline {name}", self._restore(path, got))
            self.report.add("search-pipeline", name, "would-delete" if self.dry else "deleted")
        # objects of the last run that this one no longer uses (a changed connector's are
        # found by name in connector_and_model)
        for role, ids in saved.items():
            kept = state.get(role, {})
            if ids.get("model_id") and ids["model_id"] != kept.get("model_id"):
                self._stale.append(("models", ids["model_id"]))
            if ids.get("connector_id") and ids["connector_id"] != kept.get("connector_id"):
                self._stale.append(("connectors", ids["connector_id"]))
        self._undo.clear()
        return state

    def put_pipeline(self, name: str, body: dict[str, Any]) -> None:
        self.show(f"PUT /_search/pipeline/{name}", body)
        path = f"/_search/pipeline/{name}"
        got = self.found_pipelines.get(name)
        current = stamped_digest(got.get("description")) if got else None
        if got and current == stamped_digest(body["description"]):
            self.report.add("search-pipeline", name, "unchanged")
            return
        if got and not str(got.get("description", "")).startswith(MARK):
            raise AttachError(
                f"search pipeline {name} exists and was not made by {MARK}; remove or rename it"
            )
        if not self.dry:
            self.req("PUT", path, body)
            self.undo_on_failure(f"search pipeline {name}", self._restore(path, got))
        status = "would-apply" if self.dry else ("created" if got is None else "updated")
        self.report.add("search-pipeline", name, status)

    def run(self) -> Any:
        try:
            self.budget = budgets.derive(self.args.budget)
        except ValueError as exc:
            raise AttachError(f"--budget: {exc}") from None
        self._stale = []
        if len(self.plan.text_fields) > 1 and not self.plan.join_into:
            self.warnings.append(GLUE_WARNING.format(fields=", ".join(self.plan.text_fields)))
        saved = self.preflight()
        state = self.apply_or_undo(lambda: self.apply_attach(saved))
        if not self.dry:
            self.cleanup()
        self.state = state
        self.check = None
        if state and not (self.dry or self.args.no_check):
            self.rerank_model_id_for_check = state["rerank"]["model_id"]
            self.check = self.self_check()
        return self.report


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="sidecar-setup attach",
        description="Add the sidecar's reranking (and query translation, and with a vector "
        "field the fail-open k-NN leg) to an existing index of your own: only connectors, "
        "models and search pipelines named after the index are created; the index, its "
        "mapping and its documents are not touched. Idempotent.",
        epilog="Example: sidecar-setup attach --index shop --text-field name --text-field "
        "blurb --vector-field vec. Searches then name ?search_pipeline=shop-rerank (or "
        "shop-translate-rerank, shop-hybrid-rerank); docs/attach.md.",
    )
    ap.add_argument("--index", required=True, help="the index (or alias) searched")
    ap.add_argument(
        "--text-field",
        action="append",
        default=[],
        metavar="FIELD",
        help="a text field the reranker reads from _source (repeat for several; their values "
        "are concatenated with no separator by the rerank processor)",
    )
    ap.add_argument(
        "--vector-field",
        metavar="FIELD",
        help="a knn_vector field filled by the sidecar's embedder (same dimension): adds the "
        "INDEX-hybrid-rerank pipeline with the fail-open k-NN leg on it",
    )
    ap.add_argument(
        "--query-path",
        default=DEFAULT_QUERY_PATH,
        help="where the query text is in your search body, for the translation (default "
        "%(default)s; in the hybrid, the same path inside its first leg)",
    )
    ap.add_argument(
        "--no-translate",
        action="store_true",
        help="no query translation: no INDEX-translate-rerank, and the hybrid embeds the "
        "query as typed",
    )
    ap.add_argument(
        "--detach",
        action="store_true",
        help="remove what attach made for the index (pipelines, models, connectors)",
    )
    ap.add_argument(
        "--join-into",
        metavar="FIELD",
        help="opt-in, rewrites your documents: an ingest pipeline INDEX-join-text joins the "
        "--text-fields (newline-separated) into FIELD, set as the index's "
        "index.default_pipeline (only where none is set) and run over the documents already "
        "indexed (_update_by_query); the rerank then reads FIELD alone. --detach removes the "
        "pipeline and the setting, not the values",
    )
    add_setup_args(ap)
    return ap


def plan_from_args(args: argparse.Namespace) -> Plan:
    weights = [float(w) for w in args.weights.split(",")]
    if len(weights) != 2 or abs(sum(weights) - 1.0) > 1e-6 or min(weights) < 0:
        raise AttachError(f"--weights {args.weights}: two non-negative numbers summing to 1")
    return Plan(
        index=args.index,
        text_fields=tuple(dict.fromkeys(args.text_field)),
        vector_field=args.vector_field,
        query_path=args.query_path,
        translate=not args.no_translate,
        weights=(weights[0], weights[1]),
        detach=args.detach,
        join_into=args.join_into,
    )


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    with one_line(args.opensearch, args.user):
        plan = plan_from_args(args)
        attach = Attach(client_from_args(args), args, plan)
        report = attach.run()
    for line in attach.warnings:
        print(f"sidecar-setup attach: warning: {line}", file=sys.stderr)
    wanted = pipeline_bodies_names(plan)
    if args.json:
        print(
            json.dumps(
                {
                    "actions": report.actions,
                    "index": plan.index,
                    "pipelines": wanted,
                    "models": {r: ids["model_id"] for r, ids in attach.state.items()},
                    "warnings": attach.warnings,
                    "budget": attach.budget.as_dict(),
                    "check": attach.check,
                },
                indent=2,
            )
        )
    else:
        verb = "detach" if plan.detach else "attach"
        print(
            f"{'dry run: ' if args.dry_run else ''}{verb} {plan.index} on {args.opensearch} "
            f"-> sidecar {args.sidecar}"
        )
        report.print()
        if wanted:
            print("search with ?search_pipeline=" + " | ".join(wanted) + " (docs/attach.md)")
        print_check_and_budget(attach)
    if attach.check and attach.check["rerank"] == "denied":
        print(attach.check["detail"], file=sys.stderr)
        return 1
    return 0


def pipeline_bodies_names(plan: Plan) -> list[str]:
    """The pipelines ``plan`` wants (no bodies built)."""
    if plan.detach:
        return []
    names = plan.names
    return [
        names["rerank"],
        *([names["translate-rerank"]] if plan.translate else []),
        *([names["hybrid-rerank"]] if plan.vector_field else []),
    ]
