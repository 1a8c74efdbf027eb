"""``index_templates/dashboards.ndjson`` (OpenSearch Dashboards saved objects) checked
against the telemetry index template they read: what Dashboards' import would otherwise
only reveal on screen (a field that does not exist, an aggregation on a field type it
cannot use, a broken reference)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

TEMPLATES = Path(__file__).resolve().parents[2] / "index_templates"
NUMBER = {"integer", "long", "short", "byte", "float", "double", "half_float"}
# aggregation type -> the mapping types Dashboards offers it on (its filterFieldTypes)
AGG_FIELD_TYPES: dict[str, set[str] | None] = {
    "count": None,  # no field
    "terms": {"keyword", "boolean", "date", "ip"} | NUMBER,
    "avg": NUMBER,
    "sum": NUMBER,
    "min": NUMBER | {"date"},
    "max": NUMBER | {"date"},
    "median": NUMBER | {"date"},
    "percentiles": NUMBER | {"date"},
    "cardinality": {"keyword", "boolean", "date", "ip"} | NUMBER,
    "histogram": NUMBER,
    "date_histogram": {"date"},
}
# mapping type -> the index pattern's field type
OSD_TYPE = {"date": "date", "keyword": "string", "boolean": "boolean"} | dict.fromkeys(
    NUMBER, "number"
)
VIS_TYPES = {"line", "area", "histogram", "horizontal_bar", "pie", "metric", "table"}


def load_objects() -> list[dict[str, Any]]:
    lines = (TEMPLATES / "dashboards.ndjson").read_text(encoding="utf-8").splitlines()
    objects = []
    for n, line in enumerate(lines, 1):
        try:
            objects.append(json.loads(line))
        except ValueError as exc:
            pytest.fail(f"dashboards.ndjson line {n} is not JSON: {exc}")
    return objects


OBJECTS = load_objects()
TEMPLATE = json.loads((TEMPLATES / "telemetry.index_template.json").read_text(encoding="utf-8"))
MAPPING: dict[str, str] = {
    name: spec["type"] for name, spec in TEMPLATE["template"]["mappings"]["properties"].items()
}
BY_KEY = {(o["type"], o["id"]): o for o in OBJECTS}


def of_type(kind: str) -> list[dict[str, Any]]:
    return [o for o in OBJECTS if o["type"] == kind]


def test_every_line_is_a_saved_object_with_a_unique_id() -> None:
    assert OBJECTS
    for obj in OBJECTS:
        assert {"type", "id", "attributes", "references"} <= set(obj), obj.get("id")
        assert obj["attributes"].get("title"), obj["id"]
        assert obj.get("migrationVersion", {}).get(obj["type"]), obj["id"]
    ids = [o["id"] for o in OBJECTS]
    assert len(ids) == len(set(ids))
    assert {o["type"] for o in OBJECTS} == {"index-pattern", "visualization", "dashboard"}


def test_the_index_pattern_is_the_templates() -> None:
    [pattern] = of_type("index-pattern")
    attrs = pattern["attributes"]
    assert attrs["title"] in TEMPLATE["index_patterns"]
    assert attrs["title"] == "ranking-sidecar-telemetry-*"
    assert MAPPING[attrs["timeFieldName"]] == "date"
    assert attrs["timeFieldName"] == "@timestamp"
    fields = {f["name"]: f for f in json.loads(attrs["fields"]) if not f["name"].startswith("_")}
    assert set(fields) == set(MAPPING)
    for name, field in fields.items():
        assert field["esTypes"] == [MAPPING[name]], name
        assert field["type"] == OSD_TYPE[MAPPING[name]], name
        assert field["aggregatable"] and field["searchable"], name


def field_type(name: str, where: str) -> str:
    assert name in MAPPING, f"{where}: field {name!r} is not in the telemetry template"
    return MAPPING[name]


@pytest.mark.parametrize("vis", of_type("visualization"), ids=lambda v: v["id"])
def test_visualization_fields_exist_with_a_type_their_aggregation_supports(
    vis: dict[str, Any],
) -> None:
    attrs = vis["attributes"]
    state = json.loads(attrs["visState"])
    assert state["title"] == attrs["title"]
    assert state["type"] in VIS_TYPES
    assert state["aggs"], vis["id"]
    agg_ids = [a["id"] for a in state["aggs"]]
    assert len(agg_ids) == len(set(agg_ids))
    for agg in state["aggs"]:
        where = f"{vis['id']} agg {agg['id']} ({agg['type']})"
        assert agg["type"] in AGG_FIELD_TYPES, f"{where}: unknown aggregation"
        allowed = AGG_FIELD_TYPES[agg["type"]]
        field = agg["params"].get("field")
        if allowed is None:
            assert field is None, where
            continue
        assert field, f"{where}: no field"
        assert field_type(field, where) in allowed, f"{where}: {MAPPING[field]} not supported"
        if agg["type"] == "terms" and agg["params"].get("orderBy") not in (None, "_key"):
            assert agg["params"]["orderBy"] in agg_ids, where
    metrics = {a["id"] for a in state["aggs"] if a["schema"] == "metric"}
    assert metrics, vis["id"]
    for series in state["params"].get("seriesParams", []):
        assert series["data"]["id"] in metrics, vis["id"]
    source = json.loads(attrs["kibanaSavedObjectMeta"]["searchSourceJSON"])
    assert "index" not in source, "use indexRefName + references, not an inline id"
    for flt in source.get("filter", []):
        field_type(flt["meta"]["key"], f"{vis['id']} filter")


@pytest.mark.parametrize("obj", OBJECTS, ids=lambda o: o["id"])
def test_every_reference_points_to_an_object_in_the_file(obj: dict[str, Any]) -> None:
    names = [r["name"] for r in obj["references"]]
    assert len(names) == len(set(names)), obj["id"]
    for ref in obj["references"]:
        assert (ref["type"], ref["id"]) in BY_KEY, f"{obj['id']}: dangling reference {ref}"
    meta = obj["attributes"].get("kibanaSavedObjectMeta")
    if meta:
        source = json.loads(meta["searchSourceJSON"])
        ref_name = source.get("indexRefName")
        if obj["type"] == "visualization":
            assert ref_name, obj["id"]
        if ref_name:
            [ref] = [r for r in obj["references"] if r["name"] == ref_name]
            assert ref["type"] == "index-pattern"


def test_the_dashboard_panels_match_its_references() -> None:
    [dashboard] = of_type("dashboard")
    attrs = dashboard["attributes"]
    panels = json.loads(attrs["panelsJSON"])
    json.loads(attrs["optionsJSON"])
    json.loads(attrs["kibanaSavedObjectMeta"]["searchSourceJSON"])
    refs = {r["name"]: r for r in dashboard["references"]}
    assert [p["panelRefName"] for p in panels] == list(refs)
    assert {r["type"] for r in refs.values()} == {"visualization"}
    assert {r["id"] for r in refs.values()} == {v["id"] for v in of_type("visualization")}
    assert len({p["panelIndex"] for p in panels}) == len(panels)
    for p in panels:
        grid = p["gridData"]
        assert grid["i"] == p["panelIndex"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 48  # the dashboard's 48 columns
    assert attrs["timeRestore"] is True and attrs["timeFrom"].startswith("now-")
