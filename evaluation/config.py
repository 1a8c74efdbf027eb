"""Named search configurations: a query template plus a search pipeline, from a JSON file.

```json
{"index": "products",
 "size": 100,
 "concurrency": 2,
 "configurations": [
   {"name": "bm25", "template": "bm25"},
   {"name": "hybrid", "template": "hybrid", "pipeline": "hybrid", "k": 100},
   {"name": "hybrid-rerank", "template": "hybrid", "pipeline": "hybrid-rerank",
    "rerank_depth": 20, "fill_from": "hybrid"},
   {"name": "mine", "pipeline": null,
    "body": {"query": {"match": {"title.en": "{{query}}"}}, "size": "{{size}}"}}],
 "latency": {"configurations": ["hybrid", "hybrid-rerank"], "size": 20, "concurrency": 4},
 "compare": [["hybrid", "bm25"], ["hybrid-rerank", "hybrid"]]}
```

Templates are the project's own query bodies (``cluster_setup.queries``): ``bm25`` (multi_match
over the per-language fields), ``knn`` (a ``neural`` query: the sidecar embeds the query
through ML Commons), ``hybrid`` (both, fused by the pipeline). ``body`` is any search
body instead, with ``{{query}}``, ``{{size}}``, ``{{k}}`` and ``{{embed_model_id}}`` filled in.

The rerank processor reranks the page it is given. ``rerank_depth: d`` sends the search
with ``size: d`` (what a shop showing reranked results would request) and continues the
list past ``d`` with the results of ``fill_from`` (not already in it), up to ``size``: the
usual rerank window, and recall@100 stays measurable.

``concurrency`` is how many searches the relevance passes run at once (a rerank that misses
the sidecar's deadline is answered with fallback scores, so keep it low on a small CPU);
``latency.concurrency`` is the fixed concurrency of the latency passes.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cluster_setup import queries

DEFAULT_CONFIG = Path(__file__).resolve().parent / "configs" / "default.json"
TEMPLATES = ("bm25", "knn", "hybrid")


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Configuration:
    name: str
    label: str
    template: str | None = None
    body: dict[str, Any] | None = None
    pipeline: str | None = None
    size: int = 100
    k: int = queries.K
    rerank_depth: int | None = None
    fill_from: str | None = None
    description: str = ""

    def search_body(
        self, text: str, embed_model_id: str, size: int | None = None
    ) -> dict[str, Any]:
        """The body of one search for ``text`` (``size`` overrides the page size)."""
        n = size if size is not None else (self.rerank_depth or self.size)
        if self.body is not None:
            values: dict[str, Any] = {
                "{{query}}": text,
                "{{size}}": n,
                "{{k}}": self.k,
                "{{embed_model_id}}": embed_model_id,
            }
            body = _fill(copy.deepcopy(self.body), values)
            body.setdefault("size", n)
            return dict(body)
        if self.template == "bm25":
            return queries.bm25_body(text, size=n)
        if self.template == "knn":
            return queries.search_body(queries.neural(text, embed_model_id, self.k), text, n)
        return queries.hybrid_body(text, embed_model_id, size=n, k=self.k)

    @property
    def needs_embed_model(self) -> bool:
        return self.template in ("knn", "hybrid") or (
            self.body is not None and "{{embed_model_id}}" in json.dumps(self.body)
        )


def _fill(obj: Any, values: dict[str, Any]) -> Any:
    if isinstance(obj, str):
        if obj in values:
            return values[obj]
        for key, value in values.items():
            obj = obj.replace(key, str(value))
        return obj
    if isinstance(obj, list):
        return [_fill(x, values) for x in obj]
    if isinstance(obj, dict):
        return {k: _fill(v, values) for k, v in obj.items()}
    return obj


@dataclass
class EvalConfig:
    configurations: list[Configuration]
    index: str = "products"
    latency_configurations: list[str] = field(default_factory=list)
    latency_size: int = 20
    concurrency: int = 2
    latency_concurrency: int = 4
    compare: list[tuple[str, str]] = field(default_factory=list)
    judged_warning: float = 0.8
    attribution: str = ""
    path: str = ""

    def by_name(self, name: str) -> Configuration:
        for c in self.configurations:
            if c.name == name:
                return c
        raise ConfigError(f"no configuration named {name!r}")

    def execution_order(self) -> list[Configuration]:
        """Configurations whose lists others continue (``fill_from``) come first."""
        done: list[Configuration] = []
        pending = list(self.configurations)
        while pending:
            ready = [c for c in pending if not c.fill_from or c.fill_from in {d.name for d in done}]
            if not ready:
                raise ConfigError("fill_from forms a cycle: " + ", ".join(c.name for c in pending))
            done += ready
            pending = [c for c in pending if c not in ready]
        return done

    def comparisons(self) -> list[tuple[str, str]]:
        if self.compare:
            return list(self.compare)
        names = [c.name for c in self.configurations]
        return [(names[j], names[i]) for i in range(len(names)) for j in range(i + 1, len(names))]


def _int(obj: dict[str, Any], key: str, default: int, where: str) -> int:
    value = obj.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{where}: {key} must be a positive integer")
    return value


def load_config(path: Path | str | None = None) -> EvalConfig:
    path = Path(path) if path else DEFAULT_CONFIG
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read the configuration file {path}: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("configurations"), list):
        raise ConfigError(f"{path}: expected an object with a 'configurations' list")
    size = _int(raw, "size", 100, str(path))
    configs: list[Configuration] = []
    for i, c in enumerate(raw["configurations"]):
        where = f"{path}: configurations[{i}]"
        if not isinstance(c, dict) or not isinstance(c.get("name"), str) or not c["name"]:
            raise ConfigError(f"{where}: needs a 'name'")
        template, body = c.get("template"), c.get("body")
        if (template is None) == (body is None):
            raise ConfigError(f"{where}: give either 'template' ({', '.join(TEMPLATES)}) or 'body'")
        if template is not None and template not in TEMPLATES:
            raise ConfigError(f"{where}: unknown template {template!r}; use {', '.join(TEMPLATES)}")
        if body is not None and not isinstance(body, dict):
            raise ConfigError(f"{where}: 'body' must be a JSON object")
        depth = c.get("rerank_depth")
        if depth is not None:
            depth = _int(c, "rerank_depth", 1, where)
        configs.append(
            Configuration(
                name=c["name"],
                label=str(c.get("label") or c["name"]),
                template=template,
                body=body,
                pipeline=c.get("pipeline") or None,
                size=_int(c, "size", size, where),
                k=_int(c, "k", queries.K, where),
                rerank_depth=depth,
                fill_from=c.get("fill_from") or None,
                description=str(c.get("description", "")),
            )
        )
    names = [c.name for c in configs]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: configuration names must be unique")
    for c in configs:
        if c.fill_from and c.fill_from not in names:
            raise ConfigError(f"{path}: {c.name}: fill_from {c.fill_from!r} is not a configuration")
    lat = raw.get("latency") or {}
    latency = [str(n) for n in lat.get("configurations", [])]
    compare = [tuple(p) for p in raw.get("compare", [])]
    for name in latency + [n for pair in compare for n in pair]:
        if name not in names:
            raise ConfigError(f"{path}: {name!r} (latency/compare) is not a configuration")
    if any(len(p) != 2 for p in compare):
        raise ConfigError(f"{path}: each 'compare' entry is a pair of configuration names")
    cfg = EvalConfig(
        configurations=configs,
        index=str(raw.get("index", "products")),
        latency_configurations=latency,
        latency_size=_int(lat, "size", 20, f"{path}: latency"),
        concurrency=_int(raw, "concurrency", 2, str(path)),
        latency_concurrency=_int(lat, "concurrency", 4, f"{path}: latency"),
        compare=[(str(a), str(b)) for a, b in compare],
        judged_warning=float(raw.get("judged_warning", 0.8)),
        attribution=str(raw.get("attribution", "")),
        path=str(path),
    )
    cfg.execution_order()
    return cfg
