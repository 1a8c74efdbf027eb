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

The file is validated by the pydantic models below (``ConfigFile``); a problem is reported
with the file and the field it is in (``configurations[2].k: ...``).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

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


# -- the file's schema ---------------------------------------------------------------------

#: a positive integer, as JSON writes it (no "5", no 5.0, no true)
Positive = Annotated[int, Field(strict=True, gt=0)]


class _Schema(BaseModel):
    # unknown keys are ignored (a "description" of the file, say); numbers stand for text
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)


class ConfigurationSpec(_Schema):
    """One entry of ``configurations``."""

    name: str = Field(min_length=1)
    label: str | None = None
    template: str | None = None
    body: dict[str, Any] | None = None
    pipeline: str | None = None
    size: Positive | None = None  # default: the file's size
    k: Positive = queries.K
    rerank_depth: Positive | None = None
    fill_from: str | None = None
    description: str = ""

    @field_validator("template")
    @classmethod
    def _known_template(cls, template: str | None) -> str | None:
        if template is not None and template not in TEMPLATES:
            raise ValueError(f"unknown template {template!r}; use {', '.join(TEMPLATES)}")
        return template

    @model_validator(mode="after")
    def _template_or_body(self) -> ConfigurationSpec:
        if (self.template is None) == (self.body is None):
            raise ValueError(f"give either 'template' ({', '.join(TEMPLATES)}) or 'body'")
        return self


class LatencySpec(_Schema):
    configurations: list[str] = []
    size: Positive = 20
    concurrency: Positive = 4


class ConfigFile(_Schema):
    """The whole file; names that ``fill_from``, ``latency`` and ``compare`` use must be
    configurations of it."""

    configurations: list[ConfigurationSpec]
    index: str = "products"
    size: Positive = 100
    concurrency: Positive = 2
    latency: LatencySpec | None = None
    compare: list[tuple[str, str]] = []
    judged_warning: float = 0.8
    attribution: str = ""

    @model_validator(mode="after")
    def _names_exist(self) -> ConfigFile:
        names = [c.name for c in self.configurations]
        if len(set(names)) != len(names):
            raise ValueError("configuration names must be unique")
        for c in self.configurations:
            if c.fill_from and c.fill_from not in names:
                raise ValueError(f"{c.name}: fill_from {c.fill_from!r} is not a configuration")
        latency = self.latency.configurations if self.latency else []
        for name in latency + [n for pair in self.compare for n in pair]:
            if name not in names:
                raise ValueError(f"{name!r} (latency/compare) is not a configuration")
        return self


def _where(loc: tuple[int | str, ...]) -> str:
    """``configurations[0].size`` for pydantic's ``("configurations", 0, "size")``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _described(exc: ValidationError, path: Path) -> str:
    """The file, then every problem in it with the field it is in."""
    problems = []
    for err in exc.errors():
        ctx = err.get("ctx") or {}
        msg = str(ctx["error"]) if err["type"] == "value_error" and "error" in ctx else err["msg"]
        where = _where(err["loc"])
        problems.append(f"{where}: {msg}" if where else msg)
    return f"{path}: " + "; ".join(problems)


def load_config(path: Path | str | None = None) -> EvalConfig:
    path = Path(path) if path else DEFAULT_CONFIG
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read the configuration file {path}: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected an object with a 'configurations' list")
    try:
        spec = ConfigFile.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_described(exc, path)) from None
    latency = spec.latency or LatencySpec()
    cfg = EvalConfig(
        configurations=[
            Configuration(
                name=c.name,
                label=c.label or c.name,
                template=c.template,
                body=c.body,
                pipeline=c.pipeline or None,
                size=c.size or spec.size,
                k=c.k,
                rerank_depth=c.rerank_depth,
                fill_from=c.fill_from or None,
                description=c.description,
            )
            for c in spec.configurations
        ],
        index=spec.index,
        latency_configurations=list(latency.configurations),
        latency_size=latency.size,
        concurrency=spec.concurrency,
        latency_concurrency=latency.concurrency,
        compare=list(spec.compare),
        judged_warning=spec.judged_warning,
        attribution=spec.attribution,
        path=str(path),
    )
    try:
        cfg.execution_order()
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return cfg
