"""``sidecar-setup``: wire a cluster to the ranking sidecar, idempotently.

It applies, in order, the JSON bodies in ``index_templates/``:

1. the ML Commons cluster settings a connector to the sidecar needs (private/loopback
   addresses allowed when the sidecar is on one; the sidecar's origin added to the trusted
   connector endpoints; ``only_run_on_ml_node: false``);
2. the ``products`` index template (``products-*``; the k-NN dimension is read from the
   sidecar) and, when the ``products`` alias does not exist yet, the index ``products-v1``
   behind it;
3. four connectors and remote models, with the timeouts of one time budget (``--budget``,
   ``cluster_setup.budget``): the sidecar's ``/v1/rerank`` (painless pre-process, Cohere
   post-process), its ``/v1/embeddings`` formatted for queries (so ``neural`` queries work by
   ``model_id``), ``embed-leg``, the same embeddings answering the whole k-NN leg of a
   hybrid query for an ``ml_inference`` request processor (fail-open query embedding), and
   its ``/v1/understand`` (query translation, read by an ``ml_inference`` request processor);
4. the search pipelines ``hybrid`` and ``hybrid-rerank`` (query translated, then embedded
   fail-open), ``hybrid-untranslated`` and ``hybrid-untranslated-rerank`` (without the
   translation), ``translate`` (a plain BM25 body translated) and ``rerank``;
5. the ``ranking-sidecar-telemetry`` index template (``ranking-sidecar-telemetry-*``: the
   records the sidecar writes with ``SIDECAR_OPENSEARCH_URL`` set);
6. with ``--dashboards URL``, the OpenSearch Dashboards saved objects of
   ``dashboards.ndjson`` (index pattern, visualizations, dashboard) through Dashboards'
   import API, overwriting earlier copies.

Every object carries a digest of the body it was made from (in its description or
``_meta``), so a re-run compares digests and changes nothing when nothing changed. A changed
connector gets a new connector and model; the pipelines move to it and the old ones are
removed. ``--dry-run`` prints the bodies and changes nothing.
"""

from __future__ import annotations

import argparse
import functools
import ipaddress
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cluster_setup import budget as budgets
from cluster_setup import failures
from cluster_setup.bodies import TEMPLATES, digest, load_body, stamp, stamped_digest, substitute
from cluster_setup.client import add_connection_args, client_from_args, verify_setting
from cluster_setup.dashboards import DASHBOARDS_FILE, import_dashboards
from cluster_setup.failures import one_line
from cluster_setup.pipelines import PIPELINES, set_weights
from cluster_setup.state import TEMPLATE_NAME, SetupState, read_state, template_path, with_state

TELEMETRY_TEMPLATE = "ranking-sidecar-telemetry"
#: the connector + model pairs, from ``index_templates/connector.ROLE.json`` and
#: ``model.ROLE.json``; their ids are kept per role (``cluster_setup.state``)
ROLES = ("rerank", "embed", "embed-leg", "translate")
ALIAS = TEMPLATE_NAME
#: ML Commons runs connectors' painless pre/post-process functions in the template context
SCRIPT_RATE = "script.context.template.max_compilations_rate"
#: what ML Commons answers while a fresh node is still making its master key / config index
TRANSIENT_ML_ERRORS = ("Fetching master key timed out", "no_shard_available_action_exception")


def trusted_regex(sidecar_url: str) -> str:
    u = urllib.parse.urlsplit(sidecar_url)
    return "^" + re.escape(f"{u.scheme}://{u.netloc}") + "/.*$"


def is_private_host(sidecar_url: str) -> bool:
    host = urllib.parse.urlsplit(sidecar_url).hostname or ""
    if host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False  # a DNS name: ML Commons resolves it; say so if it is private
    return ip.is_private or ip.is_loopback or ip.is_link_local


def sidecar_dimensions(sidecar_url: str, timeout: float = 60) -> int:
    """The embedder's width, from the sidecar's /readyz (waits while it loads)."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(sidecar_url.rstrip("/") + "/readyz", timeout=5) as r:
                body = json.load(r)
            return int(body["models"]["embed"]["dimensions"])
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError, KeyError, ValueError) as exc:
            last = str(exc)
        time.sleep(1)
    raise SystemExit(
        f"cannot read the embedding width from {sidecar_url}/readyz ({last}); "
        "start the sidecar or pass --dimension"
    )


@dataclass
class Report:
    actions: list[dict[str, str]] = field(default_factory=list)

    def add(self, kind: str, name: str, status: str, detail: str = "") -> None:
        self.actions.append({"kind": kind, "name": name, "status": status, "detail": detail})

    @property
    def changed(self) -> bool:
        return any(a["status"] not in ("unchanged", "would-apply") for a in self.actions)

    def print(self) -> None:
        width = max((len(a["kind"] + a["name"]) for a in self.actions), default=20) + 3
        for a in self.actions:
            label = f"{a['kind']} {a['name']}"
            print(f"  {label:<{width}} {a['status']:<10} {a['detail']}")


class Setup:
    def __init__(self, client: Any, args: argparse.Namespace) -> None:
        self.client = client
        self.args = args
        self.report = Report()
        self.dry = args.dry_run
        self._reads: dict[str, Any] = {}
        self._undo: list[tuple[str, Callable[[], Any]]] = []

    # -- http helpers ------------------------------------------------------------------------
    def req(
        self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        return self.client.transport.perform_request(method, path, body=body, params=params)

    def read(self, path: str) -> Any:
        """``GET path``, read once per run (the preflight reads everything first); ``None``
        only for a 404. Any other failure (401, 403, 5xx, TLS) stops the run: taking it for
        "missing" would create objects next to ones the user cannot see."""
        from opensearchpy.exceptions import NotFoundError

        if path not in self._reads:
            try:
                self._reads[path] = self.req("GET", path)
            except NotFoundError:
                self._reads[path] = None
        return self._reads[path]

    def undo_on_failure(self, what: str, action: Callable[[], Any]) -> None:
        """Journal the inverse of a write: a run that fails undoes them, newest first."""
        self._undo.append((what, action))

    def rollback(self) -> int:
        """Undo this run's writes (connectors and models it created are undeployed and
        deleted, templates and pipelines put back as they were); how many were undone."""
        done = 0
        for what, action in reversed(self._undo):
            try:
                action()
                done += 1
            except Exception as exc:  # noqa: BLE001 - undo the rest; say what stayed
                print(f"sidecar-setup: could not undo {what}: {exc}", file=sys.stderr)
        self._undo.clear()
        return done

    def _delete_model(self, model_id: str, wait_s: float = 30.0) -> None:
        """Undeploy, then delete. A model undone right after its register may still be
        deploying: the undeploy is then a no-op and the delete answers 400 "deploying or
        deployed state" (seen on a secured 2.19.1 node), so both are tried again a while."""
        from opensearchpy.exceptions import (
            AuthenticationException,
            AuthorizationException,
            RequestError,
        )

        deadline = time.monotonic() + wait_s
        while True:
            try:
                self.req("POST", f"/_plugins/_ml/models/{model_id}/_undeploy")
            except (AuthenticationException, AuthorizationException):
                raise
            except Exception:  # noqa: BLE001 - not deployed (yet); the delete says the rest
                pass
            try:
                self.req("DELETE", f"/_plugins/_ml/models/{model_id}")
                return
            except RequestError as exc:
                if "deploying or deployed" not in str(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(1.0)

    def _restore(self, path: str, previous: Any) -> Callable[[], Any]:
        """The undo of ``PUT path``: the previous body back, or the object deleted."""
        if previous is None:
            return lambda: self.req("DELETE", path)
        return lambda: self.req("PUT", path, previous)

    def create_connector(self, connector: dict[str, Any], wait_s: float = 120.0) -> str:
        """ML Commons encrypts credentials with a master key that the first connector of a
        fresh cluster creates in its config index; on a busy node that answers HTTP 500
        "Fetching master key timed out" (or 503 ``no_shard_available_action_exception``) for a
        while. Only those answers are retried."""
        from opensearchpy.exceptions import TransportError

        deadline = time.monotonic() + wait_s
        while True:
            try:
                res = self.req("POST", "/_plugins/_ml/connectors/_create", connector)
                connector_id = str(res["connector_id"])
                path = f"/_plugins/_ml/connectors/{connector_id}"
                self.undo_on_failure(
                    f"connector {connector_id}", functools.partial(self.req, "DELETE", path)
                )
                return connector_id
            except TransportError as exc:
                said = f"{exc} {exc.info}"
                if not any(m in said for m in TRANSIENT_ML_ERRORS) or time.monotonic() > deadline:
                    raise
                print("ML Commons: the master key is not ready yet, retrying ...", file=sys.stderr)
                time.sleep(3)

    def show(self, title: str, body: Any) -> None:
        if self.dry:
            print(f"--- {title}")
            print(json.dumps(body, indent=2, ensure_ascii=False))

    # -- steps -----------------------------------------------------------------------------
    def cluster_settings(self) -> None:
        current = self.read("/_cluster/settings?flat_settings=true&include_defaults=true")
        flat: dict[str, Any] = {}
        for scope in ("defaults", "persistent", "transient"):
            flat.update(current.get(scope, {}))
        key_regex = "plugins.ml_commons.trusted_connector_endpoints_regex"
        existing = flat.get(key_regex) or []
        if isinstance(existing, str):
            existing = [existing]
        wanted_regex = trusted_regex(self.args.sidecar)
        desired: dict[str, Any] = {
            "plugins.ml_commons.only_run_on_ml_node": "false",
            # the fail-open query embedding's post-process (connector.embed-leg.json) carries
            # the query text in its painless source, so each new query compiles a script: at
            # the default 75 compilations per 5 minutes, later searches lose their k-NN leg
            # (found by the dev-set evaluation; tests/opensearch/test_faults.py covers it)
            SCRIPT_RATE: "unlimited",
        }
        if wanted_regex not in existing:
            desired[key_regex] = [*existing, wanted_regex]
        if is_private_host(self.args.sidecar):
            desired["plugins.ml_commons.connector.private_ip_enabled"] = "true"
        todo = {k: v for k, v in desired.items() if flat.get(k) != v}
        body = {"persistent": todo}
        self.show("PUT /_cluster/settings", body)
        if not todo:
            self.report.add("cluster-settings", "ml_commons", "unchanged")
            return
        if not self.dry:
            self.req("PUT", "/_cluster/settings", body)
        self.report.add(
            "cluster-settings",
            "ml_commons",
            "would-apply" if self.dry else "updated",
            ", ".join(sorted(todo)),
        )

    def _template(self, name: str = TEMPLATE_NAME) -> dict[str, Any] | None:
        got = self.read(template_path(name))
        if not got or not got.get("index_templates"):
            return None
        body: dict[str, Any] = got["index_templates"][0]["index_template"]
        return body

    def saved_state(self) -> SetupState:
        """Ids from the last run, kept in the template's ``_meta`` (``cluster_setup.state``)."""
        return read_state(self._template())

    def index_template(self, dimension: int, state: SetupState) -> None:
        body = load_body("products.index_template.json")
        body["template"]["mappings"]["properties"]["embedding"]["dimension"] = dimension
        want = digest(body)
        body["_meta"]["setup_digest"] = want
        body["_meta"]["search_budget"] = self.budget.as_dict()
        body = with_state(body, state)
        self.show(f"PUT {template_path()}", body)
        current = self._template()
        meta = (current or {}).get("_meta", {})
        if (
            meta.get("setup_digest") == want
            and read_state(current) == state
            and meta.get("search_budget") == self.budget.as_dict()
        ):
            self.report.add("index-template", TEMPLATE_NAME, "unchanged", f"dimension {dimension}")
        else:
            if not self.dry:
                self.req("PUT", template_path(), body)
                self.undo_on_failure(
                    f"index template {TEMPLATE_NAME}", self._restore(template_path(), current)
                )
            status = "would-apply" if self.dry else ("created" if not meta else "updated")
            self.report.add("index-template", TEMPLATE_NAME, status, f"dimension {dimension}")
        # the first versioned index behind the alias (rebuilds are the ingest CLI's job)
        targets = self.alias_targets()
        if targets:
            self.report.add("alias", ALIAS, "unchanged", "-> " + ", ".join(targets))
            return
        index = f"{ALIAS}-v1"
        if not self.dry:
            if not self.client.indices.exists(index=index):
                self.client.indices.create(index=index)
                self.undo_on_failure(f"index {index}", lambda: self.req("DELETE", f"/{index}"))
            self.client.indices.put_alias(index=index, name=ALIAS)
            self.undo_on_failure(
                f"alias {ALIAS}", lambda: self.req("DELETE", f"/{index}/_alias/{ALIAS}")
            )
        self.report.add("alias", ALIAS, "would-apply" if self.dry else "created", f"-> {index}")

    def alias_targets(self) -> list[str]:
        """The indices behind the alias, empty when it does not exist. Asked of the alias's
        own name (``GET /products/_alias``), not of every index (``GET /_alias/products``
        needs ``indices:admin/aliases/get`` on ``*``)."""
        got = self.read(f"/{ALIAS}/_alias") or {}
        if ALIAS in got:
            raise SystemExit(
                f"an index named {ALIAS!r} exists; the catalog must live behind an "
                f"alias of that name (e.g. {ALIAS}-v1)"
            )
        return sorted(i for i, v in got.items() if ALIAS in (v.get("aliases") or {}))

    def telemetry_template(self) -> None:
        """The mapping of the records the sidecar writes (and the Dashboards read)."""
        body = load_body("telemetry.index_template.json")
        want = digest(body)
        body["_meta"]["setup_digest"] = want
        self.show(f"PUT {template_path(TELEMETRY_TEMPLATE)}", body)
        meta = (self._template(TELEMETRY_TEMPLATE) or {}).get("_meta", {})
        detail = ", ".join(body["index_patterns"])
        if meta.get("setup_digest") == want:
            self.report.add("index-template", TELEMETRY_TEMPLATE, "unchanged", detail)
            return
        if not self.dry:
            previous = self._template(TELEMETRY_TEMPLATE)
            self.req("PUT", template_path(TELEMETRY_TEMPLATE), body)
            self.undo_on_failure(
                f"index template {TELEMETRY_TEMPLATE}",
                self._restore(template_path(TELEMETRY_TEMPLATE), previous),
            )
        status = "would-apply" if self.dry else ("created" if not meta else "updated")
        self.report.add("index-template", TELEMETRY_TEMPLATE, status, detail)

    def dashboards(self) -> None:
        """The saved objects of dashboards.ndjson, imported into OpenSearch Dashboards."""
        url = self.args.dashboards
        path = TEMPLATES / DASHBOARDS_FILE
        objects = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x]
        if self.dry:
            print(
                f"--- POST {url.rstrip('/')}/api/saved_objects/_import?overwrite=true "
                f"(osd-xsrf: true; multipart file={path.name})"
            )
            for obj in objects:
                print(f"  {obj['type']} {obj['id']}: {obj['attributes'].get('title', '')}")
            self.report.add("dashboards", DASHBOARDS_FILE, "would-apply", url)
            return
        a = self.args
        verify = verify_setting(a.ca_certs, a.insecure)
        answer = import_dashboards(url, a.user, a.password, verify, path)
        count = answer.get("successCount", 0)
        self.report.add("dashboards", DASHBOARDS_FILE, "imported", f"{count} objects -> {url}")

    def _get(self, kind: str, object_id: str | None) -> dict[str, Any] | None:
        """The saved connector or model; ``None`` when it was deleted meanwhile (404)."""
        if not object_id:
            return None
        found: dict[str, Any] | None = self.read(f"/_plugins/_ml/{kind}/{object_id}")
        return found

    def _find(self, kind: str, name: str) -> list[dict[str, Any]]:
        """Objects of this name (for clean-up; the search lags a refresh behind)."""
        from opensearchpy.exceptions import NotFoundError

        query = {"size": 100, "query": {"match_phrase": {"name": name}}}
        try:
            res = self.req("POST", f"/_plugins/_ml/{kind}/_search", query)
        except NotFoundError:  # the ML index does not exist yet
            return []
        out = []
        for hit in res.get("hits", {}).get("hits", []):
            src = hit.get("_source", {})
            if src.get("name") == name and "chunk_number" not in src:
                out.append({"id": hit["_id"], **src})
        return out

    def connector_body(self, role: str, values: dict[str, str]) -> dict[str, Any]:
        """The stamped connector of ``role`` (``index_templates/connector.ROLE.json``)."""
        connector = budgets.apply(load_body(f"connector.{role}.json"), self.budget)
        return stamp(substitute(connector, values))

    def model_body(self, role: str, connector_id: str) -> dict[str, Any]:
        """The stamped remote model of ``role`` on ``connector_id``."""
        body = load_body(f"model.{role}.json")
        return stamp(substitute(body, {"CONNECTOR_ID": connector_id}))

    def connector_and_model(
        self, role: str, values: dict[str, str], saved: dict[str, str]
    ) -> dict[str, str]:
        """Ensure this role's connector and deployed model; returns their ids."""
        connector = self.connector_body(role, values)
        name = connector["name"]
        self.show(f"POST /_plugins/_ml/connectors/_create ({role})", connector)
        want = stamped_digest(connector["description"])
        existing = self._get("connectors", saved.get("connector_id"))
        if existing and stamped_digest(existing.get("description")) == want:
            connector_id = saved["connector_id"]
            self.report.add("connector", name, "unchanged", connector_id)
        elif self.dry:
            self.report.add("connector", name, "would-apply")
            return {"connector_id": "<connector-id>", "model_id": "<model-id>"}
        else:
            connector_id = self.create_connector(connector)
            self.report.add("connector", name, "created", connector_id)
        model_body = self.model_body(role, connector_id)
        self.show(f"POST /_plugins/_ml/models/_register ({role})", model_body)
        model = self._get("models", saved.get("model_id"))
        if (
            model
            and model.get("connector_id") == connector_id
            and stamped_digest(model.get("description"))
            == stamped_digest(model_body["description"])
        ):
            model_id = saved["model_id"]
            if model.get("model_state") != "DEPLOYED":
                if not self.dry:
                    self._wait_task(self.req("POST", f"/_plugins/_ml/models/{model_id}/_deploy"))
                self.report.add("model", model_body["name"], "deployed", model_id)
            else:
                self.report.add("model", model_body["name"], "unchanged", model_id)
        elif self.dry:
            self.report.add("model", model_body["name"], "would-apply")
            return {"connector_id": connector_id, "model_id": "<model-id>"}
        else:
            res = self.req(
                "POST", "/_plugins/_ml/models/_register", model_body, params={"deploy": "true"}
            )
            if res.get("model_id"):
                registered = str(res["model_id"])
                self.undo_on_failure(f"model {registered}", lambda: self._delete_model(registered))
            task = self._wait_task(res)
            model_id = res.get("model_id") or task["model_id"]
            if not res.get("model_id"):
                self.undo_on_failure(f"model {model_id}", lambda: self._delete_model(model_id))
            self.report.add("model", model_body["name"], "created", model_id)
        self._stale += [
            ("models", m["id"])
            for m in self._find("models", model_body["name"])
            if m["id"] != model_id
        ]
        self._stale += [
            ("connectors", c["id"])
            for c in self._find("connectors", name)
            if c["id"] != connector_id
        ]
        return {"connector_id": connector_id, "model_id": model_id}

    def _wait_task(self, res: dict[str, Any], timeout: float = 120) -> dict[str, Any]:
        task_id = res.get("task_id")
        if not task_id:
            return res
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            task = self.req("GET", f"/_plugins/_ml/tasks/{task_id}")
            state = task.get("state")
            if state == "COMPLETED":
                return dict(task)
            if state in ("FAILED", "CANCELLED", "COMPLETED_WITH_ERROR"):
                raise SystemExit(f"ML Commons task {task_id} {state}: {task.get('error')}")
            time.sleep(0.5)
        raise SystemExit(f"ML Commons task {task_id} did not finish in {timeout:.0f}s")

    def pipelines(
        self, rerank_model_id: str, translate_model_id: str, embed_leg_model_id: str
    ) -> None:
        weights = [float(w) for w in self.args.weights.split(",")]
        if len(weights) != 2 or abs(sum(weights) - 1.0) > 1e-6 or min(weights) < 0:
            raise SystemExit(
                f"--weights {self.args.weights}: two non-negative numbers summing to 1"
            )
        for name in PIPELINES:
            body = load_body(f"pipeline.{name}.json")
            ids = {
                "RERANK_MODEL_ID": rerank_model_id,
                "TRANSLATE_MODEL_ID": translate_model_id,
                "EMBED_LEG_MODEL_ID": embed_leg_model_id,
            }
            body = set_weights(substitute(body, ids), weights)
            body = stamp(body)
            self.show(f"PUT /_search/pipeline/{name}", body)
            path = f"/_search/pipeline/{name}"
            got = (self.read(path) or {}).get(name)
            current = stamped_digest(got.get("description")) if got else None
            if got and current == stamped_digest(body["description"]):
                self.report.add("search-pipeline", name, "unchanged")
                continue
            if not self.dry:
                self.req("PUT", path, body)
                self.undo_on_failure(f"search pipeline {name}", self._restore(path, got))
            status = "would-apply" if self.dry else ("created" if current is None else "updated")
            self.report.add("search-pipeline", name, status)

    def self_check(self) -> dict[str, Any]:
        """One rerank through ML Commons (``_predict`` on the rerank model, what the ``rerank``
        processor calls) as the user searches run as (``--check-user``; default the setup's
        own). The pipelines hide a failed rerank (``ignore_failure``): a search user without
        ``cluster:admin/opensearch/ml/predict`` gets the hybrid order, silently. A 401 or 403
        ("denied") makes the run end with its line and exit 1; any other failure is reported
        and the run still succeeds."""
        from cluster_setup.client import make_client

        a = self.args
        user = a.check_user or a.user
        client = self.client
        if a.check_user:
            client = make_client(
                a.opensearch, a.check_user, a.check_password, a.insecure, a.ca_certs
            )
        model_id = self.rerank_model_id_for_check
        body = {"query_text": "wireless mouse", "text_docs": ["wireless mouse", "usb cable"]}
        try:
            # the rerank processor's own input (query_text, text_docs): text_similarity
            res = client.transport.perform_request(
                "POST", f"/_plugins/_ml/_predict/text_similarity/{model_id}", body=body
            )
            scores = res["inference_results"][0]["output"]
        except Exception as exc:  # noqa: BLE001 - reported below
            line = failures.describe(exc, a.opensearch, user)
            if line and line.startswith(("401", "403")):  # main() ends with it, exit 1
                said = f"self-check: the setup is in place, but a rerank as {user!r} fails: {line}"
                return {"rerank": "denied", "user": user, "detail": said}
            detail = line or " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
            print(f"sidecar-setup: self-check: the rerank failed: {detail}", file=sys.stderr)
            return {"rerank": "failed", "user": user, "detail": detail}
        return {"rerank": "ok", "user": user, "scores": len(scores)}

    def apply(self, dimension: int, saved: SetupState) -> SetupState:
        """The writes, each journalled for ``rollback``."""
        self.cluster_settings()
        values = {
            "SIDECAR_URL": self.args.sidecar.rstrip("/"),
            "SIDECAR_API_KEY": self.args.sidecar_api_key,
        }
        state = {
            role: self.connector_and_model(role, values, saved.get(role, {})) for role in ROLES
        }
        self.index_template(dimension, state)
        self.pipelines(
            state["rerank"]["model_id"],
            state["translate"]["model_id"],
            state["embed-leg"]["model_id"],
        )
        self.telemetry_template()
        if self.args.dashboards:
            self.dashboards()
        self._undo.clear()  # done: nothing to undo any more
        return state

    def cleanup(self) -> None:
        """Remove models and connectors this run replaced (after the pipelines moved)."""
        from opensearchpy.exceptions import NotFoundError

        for kind, object_id in dict.fromkeys(self._stale):
            try:
                if kind == "models":
                    self._delete_model(object_id)
                else:
                    self.req("DELETE", f"/_plugins/_ml/{kind}/{object_id}")
                self.report.add(kind[:-1], object_id, "deleted", "replaced")
            except NotFoundError:  # already gone
                continue
            except Exception as exc:  # noqa: BLE001 - the setup stands; say what was kept
                why = failures.describe(exc, self.args.opensearch, self.args.user)
                self.report.add(kind[:-1], object_id, "kept", why or f"{type(exc).__name__}")

    def preflight(self) -> SetupState:
        """Every read the run needs, before it writes anything: a read that fails for any
        reason but a 404 (no permission, a wrong password, a cluster error) stops the run
        here, with nothing created. Returns the state the last run saved."""
        self.read("/_cluster/settings?flat_settings=true&include_defaults=true")
        saved = self.saved_state()
        self._template(TELEMETRY_TEMPLATE)
        self.alias_targets()
        for name in PIPELINES:
            self.read(f"/_search/pipeline/{name}")
        for role in ROLES:
            ids = saved.get(role, {})
            self._get("connectors", ids.get("connector_id"))
            self._get("models", ids.get("model_id"))
            self._find("connectors", load_body(f"connector.{role}.json")["name"])
            self._find("models", load_body(f"model.{role}.json")["name"])
        return saved

    def run(self) -> Report:
        try:
            self.budget = budgets.derive(self.args.budget)
        except ValueError as exc:
            raise SystemExit(f"--budget: {exc}") from None
        dimension = self.args.dimension or sidecar_dimensions(self.args.sidecar)
        self._stale: list[tuple[str, str]] = []
        saved = self.preflight()
        state = self.apply_or_undo(lambda: self.apply(dimension, saved))
        if not self.dry:
            self.cleanup()
        self.rerank_model_id_for_check = state["rerank"]["model_id"]
        self.check = None if self.dry or self.args.no_check else self.self_check()
        self.rerank_model_id = state["rerank"]["model_id"]
        self.embed_model_id = state["embed"]["model_id"]
        self.translate_model_id = state["translate"]["model_id"]
        self.embed_leg_model_id = state["embed-leg"]["model_id"]
        return self.report

    def apply_or_undo(self, apply: Callable[[], SetupState]) -> SetupState:
        """``apply()``; when it fails, this run's writes are undone and the failure ends in
        one line that says how many were."""
        try:
            return apply()
        except BaseException as exc:
            undone = self.rollback()
            plural = "s" if undone != 1 else ""
            note = f"; undid this run's {undone} change{plural}" if undone else ""
            if isinstance(exc, SystemExit) and isinstance(exc.code, str):
                raise SystemExit(exc.code + note) from None
            a = self.args
            line = (
                failures.describe(exc, a.opensearch, a.user)
                or failures.describe_answer(exc, a.opensearch)
                if isinstance(exc, Exception)
                else None
            )
            if line:
                raise SystemExit(line + note) from None
            if undone:
                print(f"sidecar-setup: undid this run's {undone} change{plural}", file=sys.stderr)
            raise


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="sidecar-setup",
        description="Wire an OpenSearch cluster to the ranking sidecar (idempotent); optionally "
        "import the telemetry dashboards into OpenSearch Dashboards.",
        epilog="Example: sidecar-setup --opensearch http://127.0.0.1:9200 "
        "--sidecar http://127.0.0.1:8080. `sidecar-setup roles` prints the least-privilege "
        "roles of a cluster with the security plugin; `sidecar-setup attach --index NAME "
        "--text-field F` wires reranking to an index of your own (docs/attach.md).",
    )
    add_setup_args(ap)
    ap.add_argument(
        "--dashboards",
        metavar="URL",
        default=os.environ.get("OPENSEARCH_DASHBOARDS_URL"),
        help="also import the telemetry dashboards (index_templates/dashboards.ndjson) into "
        "the OpenSearch Dashboards at this URL, e.g. http://dashboards:5601 (env "
        "OPENSEARCH_DASHBOARDS_URL; same --user/--password/--insecure as the cluster)",
    )
    return ap


def add_setup_args(ap: argparse.ArgumentParser) -> None:
    """The flags ``sidecar-setup`` and ``sidecar-setup attach`` share: the cluster, the
    sidecar, the time budget, the self-check and the output."""
    add_connection_args(ap)
    ap.add_argument(
        "--sidecar",
        default="http://127.0.0.1:8080",
        help="the sidecar's URL as the cluster reaches it (default %(default)s)",
    )
    ap.add_argument(
        "--sidecar-api-key",
        default=os.environ.get("SIDECAR_API_KEY") or "none",
        help="key stored in the connectors' credential and sent as Bearer token",
    )
    ap.add_argument(
        "--dimension",
        type=int,
        default=0,
        help="k-NN vector width (default: read from the sidecar's /readyz)",
    )
    ap.add_argument(
        "--weights",
        default="0.5,0.5",
        help="hybrid weights for BM25,k-NN; must sum to 1 (default %(default)s, tuned on the "
        "Chorus dev queries: README, Evaluation)",
    )
    ap.add_argument(
        "--budget",
        type=float,
        default=budgets.DEFAULT_SEARCH_BUDGET_S,
        metavar="SECONDS",
        help="the time a client gives a hybrid-rerank search; the connectors' read timeout "
        "and the sidecar's deadline (SIDECAR_REQUEST_TIMEOUT_S) are derived from it "
        "(default %(default)s; docs/operations.md, Time budget)",
    )
    ap.add_argument(
        "--check-user",
        default=os.environ.get("OPENSEARCH_CHECK_USER"),
        help="after the setup, rerank once through ML Commons as this user (the one searches "
        "run as; env OPENSEARCH_CHECK_USER; default --user): a user who may not call the "
        "rerank model stops with the permission to grant",
    )
    ap.add_argument(
        "--check-password",
        default=os.environ.get("OPENSEARCH_CHECK_PASSWORD"),
        help="its password (env OPENSEARCH_CHECK_PASSWORD)",
    )
    ap.add_argument("--no-check", action="store_true", help="skip that self-check")
    ap.add_argument("--dry-run", action="store_true", help="print the bodies, change nothing")
    ap.add_argument("--json", action="store_true", help="print the report as JSON")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["roles"]:  # sidecar-setup roles [--index NAME]
        from cluster_setup.roles import print_roles

        rp = argparse.ArgumentParser(
            prog="sidecar-setup roles",
            description="Print the least-privilege roles (security plugin REST API bodies) of "
            "the setup user, the search user and the sidecar's telemetry writer.",
        )
        rp.add_argument("--index", default=ALIAS, help="the catalog alias (default %(default)s)")
        rp.add_argument(
            "--attach",
            action="store_true",
            help="the roles for `sidecar-setup attach --index INDEX` (an index of your own)",
        )
        ra = rp.parse_args(argv[1:])
        print_roles(ra.index, ra.attach)
        return 0
    if argv[:1] == ["attach"]:  # sidecar-setup attach --index NAME --text-field F ...
        from cluster_setup.attach import main as attach_main

        return attach_main(argv[1:])
    args = build_parser().parse_args(argv)
    setup = Setup(client_from_args(args), args)
    with one_line(args.opensearch, args.user):
        report = setup.run()
    if args.json:
        print(
            json.dumps(
                {
                    "actions": report.actions,
                    "rerank_model_id": setup.rerank_model_id,
                    "embed_model_id": setup.embed_model_id,
                    "translate_model_id": setup.translate_model_id,
                    "embed_leg_model_id": setup.embed_leg_model_id,
                    "budget": setup.budget.as_dict(),
                    "check": setup.check,
                },
                indent=2,
            )
        )
    else:
        print(
            f"{'dry run against' if args.dry_run else 'set up'} {args.opensearch} "
            f"-> sidecar {args.sidecar}"
        )
        report.print()
        print(
            f"rerank model: {setup.rerank_model_id}\nquery embedding model: {setup.embed_model_id}"
            f"\nquery embedding (k-NN leg) model: {setup.embed_leg_model_id}"
            f"\nquery translation model: {setup.translate_model_id}"
        )
        print_check_and_budget(setup)
    if setup.check and setup.check["rerank"] == "denied":
        print(setup.check["detail"], file=sys.stderr)
        return 1
    return 0


def print_check_and_budget(setup: Setup) -> None:
    """The self-check's result and the timeouts the clients and the sidecar should use."""
    if setup.check:
        c = setup.check
        print(
            f"self-check: a rerank through ML Commons as {c['user'] or 'anonymous'}: "
            + (f"ok ({c['scores']} scores)" if c["rerank"] == "ok" else f"failed ({c['detail']})")
        )
    b = setup.budget
    print(
        f"time budget: connectors connect {b.connect_timeout_s} s, read {b.read_timeout_s} s; "
        f"run the sidecar with SIDECAR_REQUEST_TIMEOUT_S={b.sidecar_deadline_s:g}; "
        f"clients: {b.search_budget_s:g} s for hybrid-rerank, "
        f"{b.one_call_search_timeout_s:g} s for hybrid or rerank "
        f"(up to {b.max_connection} concurrent searches per node)"
    )


if __name__ == "__main__":
    sys.exit(main())
