"""Search Relevance Workbench (OpenSearch 3.1+): our query sets, configurations and judgments
in its shapes, and its judgment lists back into ours.

The shapes are the documented request bodies of ``/_plugins/_search_relevance/*`` (the
documentation-website pages ``_search-plugins/search-relevance/query-sets.md``,
``search-configurations.md``, ``judgments.md``, ``experiments.md``):

- query set: ``{"name", "description", "sampling": "manual", "querySetQueries":
  [{"queryText"}]}`` (name at most 50 characters, description at most 250);
- search configuration: ``{"name", "index", "query": "<search body as a JSON string, the
  query text as %SearchText%>", "searchPipeline"?}``;
- judgments: ``{"name", "description", "type": "IMPORT_JUDGMENT", "judgmentRatings":
  [{"query", "ratings": [{"docId", "rating": "3.000"}]}]}``;
- experiment: ``{"querySetId", "searchConfigurationList", "judgmentList", "size", "type":
  "POINTWISE_EVALUATION"}``.

The Workbench keys judgments by query *text*; ours by query id, one id asked in several
languages. Exporting writes one Workbench query per (id, language) text, each with its id's
ratings; importing maps each text back to its id through our query files.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evaluation.config import Configuration, EvalConfig
from evaluation.data import DataError, Qrels, Query

API = "/_plugins/_search_relevance"
PLACEHOLDER = "%SearchText%"
#: stands for an unknown embedding model id while a body is built
_NO_MODEL = "<embed-model-id>"
NAME_MAX = 50
DESCRIPTION_MAX = 250
#: where each body goes (PUT, as the documentation's examples do)
ENDPOINTS = {
    "query_set": f"{API}/query_sets",
    "search_configuration": f"{API}/search_configurations",
    "judgments": f"{API}/judgments",
    "experiment": f"{API}/experiments",
}
#: the id field of each create answer (the plugin's REST actions)
ID_FIELDS = {
    "query_set": "query_set_id",
    "search_configuration": "search_configuration_id",
    "judgments": "judgment_id",
    "experiment": "experiment_id",
}


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def query_texts(queries: Sequence[Query]) -> list[Query]:
    """The queries with distinct texts, first seen wins (two languages can share a text,
    a brand name or a model number)."""
    seen: set[str] = set()
    out = []
    for q in queries:
        if q.text not in seen:
            seen.add(q.text)
            out.append(q)
    return out


def query_set_body(queries: Sequence[Query], name: str, description: str) -> dict[str, Any]:
    return {
        "name": _clip(name, NAME_MAX),
        "description": _clip(description, DESCRIPTION_MAX),
        "sampling": "manual",
        "querySetQueries": [{"queryText": q.text} for q in query_texts(queries)],
    }


def search_configuration_body(c: Configuration, index: str, embed_model_id: str) -> dict[str, Any]:
    """Our configuration with ``%SearchText%`` for the query. ``size`` is left to the
    experiment (the Workbench asks for its own page size)."""
    body = c.search_body(PLACEHOLDER, embed_model_id)
    body.pop("size", None)
    out: dict[str, Any] = {
        "name": c.name,
        "index": index,
        "query": json.dumps(body, ensure_ascii=False, separators=(",", ":")),
    }
    if c.pipeline:
        out["searchPipeline"] = c.pipeline
    return out


def rating_text(gain: int | float) -> str:
    """A rating as the documentation writes it: ``"3.000"``."""
    return f"{float(gain):.3f}"


def judgments_body(
    queries: Sequence[Query], qrels: Qrels, name: str, description: str
) -> dict[str, Any]:
    """Every query text that has ratings, with its id's ratings (products in id order)."""
    ratings = []
    for q in query_texts(queries):
        docs = qrels.get(q.id)
        if not docs:
            continue
        ratings.append(
            {
                "query": q.text,
                "ratings": [
                    {"docId": pid, "rating": rating_text(gain)}
                    for pid, gain in sorted(docs.items())
                ],
            }
        )
    return {
        "name": _clip(name, NAME_MAX),
        "description": _clip(description, DESCRIPTION_MAX),
        "type": "IMPORT_JUDGMENT",
        "judgmentRatings": ratings,
    }


def experiment_body(
    query_set_id: str, configuration_ids: Sequence[str], judgment_id: str, size: int
) -> dict[str, Any]:
    return {
        "querySetId": query_set_id,
        "searchConfigurationList": list(configuration_ids),
        "judgmentList": [judgment_id],
        "size": size,
        "type": "POINTWISE_EVALUATION",
    }


@dataclass
class Export:
    """The bodies to PUT, by file name, and what was left out."""

    bodies: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def write(self, folder: Path) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, body in self.bodies.items():
            path = folder / name
            path.write_text(json.dumps(body, ensure_ascii=False, indent=2) + "\n", "utf-8")
            paths.append(path)
        return paths


def build_export(
    cfg: EvalConfig,
    queries: Sequence[Query],
    qrels: Qrels,
    names: Sequence[str],
    embed_model_id: str,
    size: int,
    title: str,
) -> Export:
    """query_set.json, search_configuration.<name>.json for each configuration,
    judgments.json, and experiment.json whose ids are placeholders (``<query_set_id>`` …)
    until the bodies are created (``--url`` fills them in)."""
    out = Export()
    languages = sorted({q.language for q in queries})
    what = f"{len(query_texts(queries))} queries ({', '.join(languages)})"
    out.bodies["query_set.json"] = query_set_body(queries, title, f"eval-search export: {what}")
    for name in names:
        c = cfg.by_name(name)
        body = search_configuration_body(c, cfg.index, embed_model_id or _NO_MODEL)
        if _NO_MODEL in body["query"]:  # a neural leg (knn): it names the model in the query
            out.skipped.append(f"{name}: needs the query-embedding model id (--embed-model-id)")
            continue
        out.bodies[f"search_configuration.{name}.json"] = body
    out.bodies["judgments.json"] = judgments_body(
        queries, qrels, title, f"eval-search export: judgments of {what}"
    )
    configs = [n for n in names if f"search_configuration.{n}.json" in out.bodies]
    out.bodies["experiment.json"] = experiment_body(
        "<query_set_id>", [f"<search_configuration_id:{n}>" for n in configs], "<judgment_id>", size
    )
    return out


def _put(client: Any, kind: str, body: dict[str, Any]) -> str:
    try:
        got = client.transport.perform_request("PUT", ENDPOINTS[kind], body=body)
    except Exception as exc:  # noqa: BLE001 - reported with what was being created
        raise SystemExit(
            f"PUT {ENDPOINTS[kind]} failed: {exc} (is the Search Relevance Workbench plugin "
            "installed, and plugins.search_relevance.workbench_enabled true?)"
        ) from None
    ident = got.get(ID_FIELDS[kind]) if isinstance(got, dict) else None
    if not ident:
        raise SystemExit(f"PUT {ENDPOINTS[kind]} answered no {ID_FIELDS[kind]}: {got!r}")
    return str(ident)


def create_all(client: Any, export: Export) -> dict[str, Any]:
    """PUT the query set, the search configurations and the judgments, then the experiment
    with the ids they answered. Returns the ids (``created.json``)."""
    created: dict[str, Any] = {
        "query_set": _put(client, "query_set", export.bodies["query_set.json"]),
        "search_configurations": {},
    }
    for name, body in export.bodies.items():
        if name.startswith("search_configuration."):
            created["search_configurations"][body["name"]] = _put(
                client, "search_configuration", body
            )
    created["judgments"] = _put(client, "judgments", export.bodies["judgments.json"])
    experiment = experiment_body(
        created["query_set"],
        list(created["search_configurations"].values()),
        created["judgments"],
        export.bodies["experiment.json"]["size"],
    )
    created["experiment"] = _put(client, "experiment", experiment)
    return created


# -- importing -------------------------------------------------------------------------------


def judgment_lists(doc: Any) -> list[dict[str, Any]]:
    """The judgment lists in a Workbench document: a create body, one judgment's
    ``_source``, or a ``GET .../judgments[/<id>]`` answer (``hits.hits[]._source``)."""
    if isinstance(doc, dict) and "hits" in doc:
        hits = doc["hits"].get("hits", []) if isinstance(doc["hits"], dict) else []
        return [h["_source"] for h in hits if isinstance(h, dict) and "_source" in h]
    if isinstance(doc, dict) and "judgmentRatings" in doc:
        return [doc]
    if isinstance(doc, dict) and "_source" in doc:
        return judgment_lists(doc["_source"])
    raise DataError("no judgmentRatings in the document (a Workbench judgments export?)")


def _gain(value: Any, where: str, round_ratings: bool) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DataError(f"{where}: rating {value!r} is not a number") from None
    if not math.isfinite(number) or number < 0:
        raise DataError(f"{where}: rating {value!r} must be a non-negative number")
    if number != int(number):
        if not round_ratings:
            raise DataError(
                f"{where}: rating {value!r} is not a whole number (implicit or LLM judgments?); "
                "pass --round to round ratings to the nearest integer"
            )
        return int(math.floor(number + 0.5))
    return int(number)


@dataclass
class Imported:
    rows: list[dict[str, Any]]
    unknown_queries: list[str]
    lists: int


def import_judgments(doc: Any, queries: Sequence[Query], round_ratings: bool = False) -> Imported:
    """Workbench judgment lists -> our judgment rows (``query_id``, ``query``,
    ``product_id``, ``rating``). A query text found in ``queries`` takes that query's id;
    another gets the id ``srw:<text>`` (and is reported)."""
    by_text: dict[str, str] = {}
    for q in queries:
        by_text.setdefault(" ".join(q.text.split()), q.id)
    rows: list[dict[str, Any]] = []
    unknown: list[str] = []
    lists = judgment_lists(doc)
    for n, jl in enumerate(lists):
        name = jl.get("name") or f"judgment list {n + 1}"
        for entry in jl.get("judgmentRatings") or []:
            text = " ".join(str(entry.get("query", "")).split())
            if not text:
                raise DataError(f"{name}: a judgmentRatings entry has no query")
            qid = by_text.get(text)
            if qid is None:
                qid = f"srw:{text}"
                if text not in unknown:
                    unknown.append(text)
            for r in entry.get("ratings") or []:
                where = f"{name}: query {text!r}, doc {r.get('docId')!r}"
                if r.get("docId") in (None, ""):
                    raise DataError(f"{name}: query {text!r} has a rating without a docId")
                rows.append(
                    {
                        "query_id": qid,
                        "query": text,
                        "product_id": str(r["docId"]),
                        "rating": _gain(r.get("rating"), where, round_ratings),
                    }
                )
    return Imported(rows, unknown, len(lists))


def write_jsonl(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """All or nothing: written beside, then renamed."""
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)
