"""The ingest CLI against the real node and the real sidecar (data: Specs Icecat)."""

from __future__ import annotations

import csv
import gzip
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.opensearch.conftest import CHORUS


def chorus_products(n: int, offset: int = 0) -> list[dict[str, Any]]:
    out = []
    with (CHORUS / "products.jsonl").open(encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i < offset:
                continue
            out.append(json.loads(line))
            if len(out) == n:
                break
    return out


def write_jsonl(path: Path, products: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(p) + "\n" for p in products), encoding="utf-8")
    return path


def ingest(
    opensearch_url: str, sidecar_url: str, *args: str, cwd: Path | None = None
) -> tuple[int, dict[str, Any], str]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "ingest",
            "--opensearch",
            opensearch_url,
            "--sidecar",
            sidecar_url,
            "--json",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
    )
    summary = json.loads(out.stdout) if out.stdout.strip().startswith("{") else {}
    return out.returncode, summary, out.stderr


def ids_in(client: Any, alias: str) -> list[str]:
    from opensearchpy import helpers

    client.indices.refresh(index=alias)
    return [
        h["_id"]
        for h in helpers.scan(
            client, index=alias, query={"_source": False, "query": {"match_all": {}}}
        )
    ]


@pytest.fixture()
def alias(request: pytest.FixtureRequest, client: Any, wired: dict[str, Any]) -> Any:
    name = "products-ingest-" + request.node.name.split("[")[0].replace("_", "-")[-30:]
    yield name
    for index in client.indices.get(index=f"{name}-v*", params={"expand_wildcards": "all"}):
        client.indices.delete(index=index)


def test_ingest_incremental_writes_exactly_the_changes(
    opensearch_url, sidecar, client, alias, tmp_path
) -> None:
    products = chorus_products(40, offset=500)
    feed = write_jsonl(tmp_path / "feed.jsonl", products)
    rc, s, err = ingest(opensearch_url, sidecar.url, str(feed), "--index", alias)
    assert rc == 0, err
    assert (s["read"], s["written"], s["unchanged"], s["embedded"]) == (40, 40, 0, 40)

    rc, s, err = ingest(opensearch_url, sidecar.url, str(feed), "--index", alias)
    assert rc == 0, err
    assert (s["written"], s["unchanged"], s["embedded"]) == (0, 40, 0)  # a re-run writes nothing

    changed = [dict(p) for p in products]
    for p in changed[:3]:
        p["title"] = p["title"] + " (2026 edition)"
    removed = [p["id"] for p in changed[3:5]]
    changed = changed[:3] + changed[5:] + chorus_products(1, offset=900)
    feed2 = write_jsonl(tmp_path / "feed2.jsonl", changed)
    rc, s, err = ingest(
        opensearch_url, sidecar.url, str(feed2), "--index", alias, "--delete-missing"
    )
    assert rc == 0, err
    assert (s["read"], s["written"], s["unchanged"], s["deleted"]) == (39, 4, 35, 2)
    assert s["embedded"] == 4
    assert sorted(ids_in(client, alias)) == sorted(p["id"] for p in changed)
    doc = client.get(index=alias, id=changed[0]["id"])["_source"]
    assert doc["title"]["en"].endswith("(2026 edition)")
    assert not set(removed) & set(ids_in(client, alias))

    deletes = tmp_path / "deletes.txt"
    deletes.write_text(f'{changed[0]["id"]}\n{{"id": "{changed[1]["id"]}"}}\n')
    rc, s, err = ingest(opensearch_url, sidecar.url, "--deletes", str(deletes), "--index", alias)
    assert rc == 0, err
    assert s["deleted"] == 2 and len(ids_in(client, alias)) == 37


def test_ingest_dead_letters_bad_lines_and_loads_the_good(
    opensearch_url, sidecar, client, alias, tmp_path
) -> None:
    good = chorus_products(5, offset=1000)
    lines = [
        json.dumps(good[0]),
        '{"id": "broken", "title": ',
        json.dumps(good[1]),
        json.dumps({"id": "no-title", "locale": "en", "description": "x"}),
        "[1, 2, 3]",
        json.dumps(good[2]),
        json.dumps({**good[3], "image_url": "x" * 40000}),  # OpenSearch rejects it
        json.dumps(good[4]),
    ]
    feed = tmp_path / "feed.jsonl"
    feed.write_bytes(
        ("\n".join(lines[:5]) + "\n").encode()
        + b'{"id": "\xff\xfe"}\n'
        + ("\n".join(lines[5:]) + "\n").encode()
    )
    dead = tmp_path / "dead.jsonl"
    rc, s, err = ingest(
        opensearch_url, sidecar.url, str(feed), "--index", alias, "--dead-letter", str(dead)
    )
    assert rc == 1, err  # done, but something was dead-lettered
    assert s["written"] == 4 and s["dead_lettered"] == 5
    letters = [json.loads(x) for x in dead.read_text().splitlines()]
    by_line = {x["line"]: x["reason"] for x in letters}
    assert set(by_line) == {2, 4, 5, 6, 8}
    assert "malformed JSON" in by_line[2]
    assert "no title" in by_line[4]
    assert "JSON object" in by_line[5]
    assert "UTF-8" in by_line[6]
    assert "rejected by OpenSearch" in by_line[8]
    assert sorted(ids_in(client, alias)) == sorted(p["id"] for p in [*good[:3], good[4]])

    rc, s, err = ingest(
        opensearch_url,
        sidecar.url,
        str(feed),
        "--index",
        alias,
        "--strict",
        "--dead-letter",
        str(tmp_path / "dead2.jsonl"),
    )
    assert rc == 2 and "line 2" not in err and ":2:" in err, err


def test_ingest_csv_gzip_with_a_column_mapping(
    opensearch_url, sidecar, client, alias, tmp_path
) -> None:
    rows = chorus_products(6, offset=2000)
    path = tmp_path / "feed.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["SKU", "Product name", "Marke", "Beschreibung", "Preis"])
        for p in rows:
            writer.writerow(
                [p["id"], p["title"], p["brand"], p["description"], (p["price_cents"] or 0) / 100]
            )
    mapping = tmp_path / "mapping.json"
    mapping.write_text(
        json.dumps(
            {
                "SKU": "id",
                "Product name": "title_en",
                "Marke": "brand",
                "Beschreibung": "description_en",
                "Preis": "price",
            }
        )
    )
    rc, s, err = ingest(
        opensearch_url, sidecar.url, str(path), "--index", alias, "--mapping", str(mapping)
    )
    assert rc == 0, err
    assert s["written"] == 6
    doc = client.get(index=alias, id=rows[0]["id"])["_source"]
    assert doc["title"]["en"] == " ".join(rows[0]["title"].split())
    assert len(doc["embedding"]) == 384


def test_ingest_killed_midway_then_rerun_loses_and_duplicates_nothing(
    opensearch_url, sidecar, client, alias, tmp_path
) -> None:
    products = chorus_products(240, offset=3000)
    feed = write_jsonl(tmp_path / "feed.jsonl", products)
    cmd = [
        sys.executable,
        "-m",
        "ingest",
        "--opensearch",
        opensearch_url,
        "--sidecar",
        sidecar.url,
        "--index",
        alias,
        "--batch-size",
        "16",
        "--quiet",
        str(feed),
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 120
    count = 0
    while time.monotonic() < deadline and proc.poll() is None:
        if client.indices.exists_alias(name=alias):
            client.indices.refresh(index=alias)
            count = client.count(index=alias)["count"]
            if count >= 32:
                break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 0 < count < len(products), "the run was not interrupted midway"
    rc, s, err = ingest(opensearch_url, sidecar.url, str(feed), "--index", alias)
    assert rc == 0, err
    assert s["unchanged"] >= count and s["written"] == len(products) - s["unchanged"]
    ids = ids_in(client, alias)
    assert len(ids) == len(set(ids)) == len(products)
    assert set(ids) == {p["id"] for p in products}


def test_ingest_rebuild_swaps_the_alias_while_searches_keep_answering(
    opensearch_url, sidecar, client, alias, tmp_path
) -> None:
    products = chorus_products(60, offset=4000)
    feed = write_jsonl(tmp_path / "feed.jsonl", products)
    assert ingest(opensearch_url, sidecar.url, str(feed), "--index", alias)[0] == 0
    first = sorted(client.indices.get_alias(name=alias))
    assert first == [f"{alias}-v1"]

    results: list[Any] = []
    stop = threading.Event()

    def searcher() -> None:
        while not stop.is_set():
            try:
                r = client.search(index=alias, body={"query": {"match_all": {}}, "size": 1})
                results.append(r["hits"]["total"]["value"])
            except Exception as exc:  # noqa: BLE001 - counted as a failed search
                results.append(exc)
            time.sleep(0.02)

    thread = threading.Thread(target=searcher)
    thread.start()
    try:
        rc, s, err = ingest(opensearch_url, sidecar.url, str(feed), "--index", alias, "--rebuild")
    finally:
        stop.set()
        thread.join(10)
    assert rc == 0, err
    assert s["index"] == f"{alias}-v2" and s["swapped_from"] == [f"{alias}-v1"]
    assert s["written"] == 60 and s["embedded"] == 0  # unchanged: old embeddings reused
    assert sorted(client.indices.get_alias(name=alias)) == [f"{alias}-v2"]
    assert not client.indices.exists(index=f"{alias}-v1")
    failures = [r for r in results if not isinstance(r, int)]
    assert results and not failures, failures[:3]
    assert all(r == 60 for r in results)  # never an empty or half-built index
