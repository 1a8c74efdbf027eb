"""Reading product feeds (``ingest.feeds``): every record keeps its line number, a broken
line comes back as an error value and never takes the good lines down with it."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pytest

from ingest.feeds import apply_mapping, count_lines, feed_format, load_mapping, read_feed, read_ids


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


GOOD = [{"id": "a", "title_en": "Mouse"}, {"id": "b", "title_en": "Keyboard"}]


def test_jsonl_bad_lines_are_reported_with_their_numbers_and_the_good_kept(
    tmp_path: Path,
) -> None:
    feed = write(
        tmp_path / "feed.jsonl",
        json.dumps(GOOD[0]).encode()
        + b"\n"
        + b'{"id": "broken", "title_en": \n'  # 2: malformed
        + b"\n"  # 3: blank, skipped without a record
        + b"[1, 2]\n"  # 4: not an object
        + b'{"id": "\xff\xfe"}\n'  # 5: not UTF-8
        + json.dumps(GOOD[1]).encode()
        + b"\n",
    )
    records = list(read_feed(feed))
    assert [r.line for r in records] == [1, 2, 4, 5, 6]
    assert all(r.source == str(feed) for r in records)
    good = [r for r in records if r.data is not None]
    assert [r.data for r in good] == GOOD and [r.line for r in good] == [1, 6]
    errors = {r.line: r.error for r in records if r.data is None}
    assert errors[2] is not None and errors[2].startswith("malformed JSON")
    assert errors[4] == "a product must be a JSON object"
    assert errors[5] is not None and "UTF-8" in errors[5]
    # the raw line travels with the error, for the dead-letter file
    bad = {r.line: r.raw for r in records if r.data is None}
    assert bad[2] is not None and bad[2].startswith('{"id": "broken"')


def test_csv_with_a_column_mapping_gzip_and_a_row_with_too_many_cells(tmp_path: Path) -> None:
    path = tmp_path / "feed.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["SKU", "Name", "Preis"])
        writer.writerow(["1", "Mouse", "9.99"])
        writer.writerow(["2", "Pad", "", "extra"])
        writer.writerow(["3", "Cable", ""])
    mapping = {"SKU": "id", "Name": "title_en", "Preis": "price"}
    records = list(read_feed(path, mapping=mapping))
    assert [r.line for r in records] == [2, 3, 4]
    assert records[0].data == {"id": "1", "title_en": "Mouse", "price": "9.99"}
    assert records[1].data is None and records[1].error == "more cells than header columns"
    assert records[2].data == {"id": "3", "title_en": "Cable", "price": None}  # "" -> None


def test_format_from_the_name_or_the_flag(tmp_path: Path) -> None:
    assert feed_format(Path("x.jsonl.gz")) == "jsonl"
    assert feed_format(Path("x.ndjson")) == "jsonl"
    assert feed_format(Path("x.csv")) == "csv"
    assert feed_format(Path("x.txt"), "csv") == "csv"
    with pytest.raises(ValueError, match="--format"):
        feed_format(Path("x.txt"))
    with pytest.raises(ValueError, match="missing.jsonl"):
        list(read_feed(tmp_path / "missing.jsonl"))


def test_mapping_file_and_line_count(tmp_path: Path) -> None:
    good = write(tmp_path / "map.json", b'{"SKU": "id"}')
    assert load_mapping(good) == {"SKU": "id"}
    assert load_mapping(None) == {}
    with pytest.raises(ValueError, match="column -> field"):
        load_mapping(write(tmp_path / "bad.json", b'{"SKU": 1}'))
    assert apply_mapping({"SKU": "1", "x": 2}, {"SKU": "id"}) == {"id": "1", "x": 2}
    feed = write(tmp_path / "f.jsonl", b'{"id": 1}\n\n{"id": 2}\n  \n')
    assert count_lines(feed) == 2


def test_deletes_feed_of_ids_or_objects(tmp_path: Path) -> None:
    path = write(tmp_path / "del.txt", b'a\n\n{"id": "b"}\n{"id": 7}\n')
    assert list(read_ids(path)) == [(1, "a"), (3, "b"), (4, "7")]
    broken = write(tmp_path / "del2.txt", b'a\n{"sku": "b"}\n')
    with pytest.raises(ValueError, match=r"del2.txt:2: no id"):
        list(read_ids(broken))
