"""Reading product feeds: JSONL or CSV, plain or gzip, with an optional column mapping.

Every record comes with its source and line number, and a broken line comes as an error
value instead of an exception, so one bad line never stops the others.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TextIO


@dataclass(frozen=True)
class Record:
    source: str
    line: int
    data: dict[str, Any] | None  # None when the line could not be read
    error: str | None = None
    raw: str | None = None


def open_binary(path: Path) -> BinaryIO:
    if path.suffix == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def open_text(path: Path) -> TextIO:
    return io.TextIOWrapper(open_binary(path), encoding="utf-8", errors="replace", newline="")


def feed_format(path: Path, explicit: str | None = None) -> str:
    if explicit:
        return explicit
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    raise ValueError(f"{path}: cannot tell the format from the name; use --format jsonl|csv")


def load_mapping(path: Path | None) -> dict[str, str]:
    """``{"feed column": "index field"}``, e.g. ``{"SKU": "id", "Name": "title_en"}``."""
    if path is None:
        return {}
    mapping = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(mapping, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
    ):
        raise ValueError(f"{path}: a mapping file is a JSON object of column -> field names")
    return mapping


def apply_mapping(data: Mapping[str, Any], mapping: Mapping[str, str]) -> dict[str, Any]:
    if not mapping:
        return dict(data)
    return {mapping.get(k, k): v for k, v in data.items()}


def count_lines(path: Path) -> int:
    with open_binary(path) as fh:
        return sum(1 for line in fh if line.strip())


def read_feed(
    path: Path, fmt: str | None = None, mapping: Mapping[str, str] | None = None
) -> Iterator[Record]:
    kind = feed_format(path, fmt)
    mapping = mapping or {}
    src = str(path)
    try:
        binary = open_binary(path)
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror}") from None
    if kind == "jsonl":
        with binary:
            for number, raw_line in enumerate(binary, 1):
                if not raw_line.strip():
                    continue
                try:
                    line = raw_line.decode("utf-8")
                except UnicodeDecodeError as exc:
                    yield Record(
                        src,
                        number,
                        None,
                        f"invalid UTF-8 at byte {exc.start}",
                        raw_line[:2000].decode("utf-8", "replace"),
                    )
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield Record(src, number, None, f"malformed JSON: {exc.msg}", line[:2000])
                    continue
                if not isinstance(obj, dict):
                    yield Record(src, number, None, "a product must be a JSON object", line[:2000])
                    continue
                yield Record(src, number, apply_mapping(obj, mapping), raw=line[:2000])
        return
    with io.TextIOWrapper(binary, encoding="utf-8", errors="replace", newline="") as fh:
        reader = csv.DictReader(fh)
        try:
            for row in reader:
                number = reader.line_num
                if None in row:
                    yield Record(
                        src,
                        number,
                        None,
                        "more cells than header columns",
                        json.dumps(row.get(None))[:2000],
                    )
                    continue
                if any("\ufffd" in (v or "") for v in row.values()):
                    yield Record(src, number, None, "invalid UTF-8", json.dumps(row)[:2000])
                    continue
                clean = {k: (v if v != "" else None) for k, v in row.items() if k}
                yield Record(src, number, apply_mapping(clean, mapping))
        except csv.Error as exc:
            yield Record(src, reader.line_num, None, f"unreadable CSV: {exc}")


def read_ids(path: Path) -> Iterator[tuple[int, str]]:
    """A deletes feed: one id per line, or JSONL objects with an ``id``."""
    with open_text(path) as fh:
        for number, line in enumerate(fh, 1):
            text = line.strip()
            if not text:
                continue
            if text.startswith("{"):
                try:
                    value = json.loads(text).get("id")
                except (json.JSONDecodeError, AttributeError):
                    value = None
                if value is None:
                    raise ValueError(f"{path}:{number}: no id in {text[:80]!r}")
                text = str(value)
            yield number, text
