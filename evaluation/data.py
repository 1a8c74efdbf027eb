"""Query sets and judgments, from the files search teams already keep.

Query sets: JSONL (``query_id`` or ``id``, ``query`` or ``text``, optional ``language`` /
``lang`` / ``locale``) or TSV / CSV (a header naming those columns, or no header and the
columns ``id, query[, language]``). The same query id in several languages is one
information need asked in several languages: the judgments of the id apply to each.

Judgments: JSONL (``query_id``, ``product_id`` or ``doc_id``, ``rating`` or ``gain``),
TSV / CSV with such a header, or TREC qrels (``qid 0 docid gain``). Several files form one
set; a pair rated in two files keeps the later file's rating (counted as a conflict).
Gains are non-negative integers (graded, e.g. Quepid's 0..3); relevant means gain >= 1.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ID_KEYS = ("query_id", "qid", "id")
JUDGED_QUERY_KEYS = ("query_id", "qid")
TEXT_KEYS = ("query", "text", "query_text")
LANG_KEYS = ("language", "lang", "locale")
DOC_KEYS = ("product_id", "doc_id", "docid", "document_id")
GAIN_KEYS = ("rating", "gain", "relevance", "grade", "judgment")

#: query id -> product id -> gain
Qrels = dict[str, dict[str, int]]


class DataError(ValueError):
    """A query or judgment file that cannot be read; the message names file and line."""


@dataclass(frozen=True)
class Query:
    id: str
    text: str
    language: str

    @property
    def key(self) -> str:
        """Unique per (id, language): the key of a result list and of a per-query score."""
        return f"{self.id}@{self.language}"


def _pick(row: dict[str, Any], keys: Sequence[str]) -> Any:
    for key in keys:
        if key in row and row[key] not in (None, ""):
            return row[key]
    return None


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | list[str]]]:
    """``(line number, object or list of cells)`` of a JSONL, TSV, CSV or whitespace file.
    Blank lines and lines starting with ``#`` are skipped."""
    text = path.read_text(encoding="utf-8-sig")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number}: malformed JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise DataError(f"{path}:{number}: expected a JSON object")
            yield number, obj
        return
    if suffix in (".tsv", ".csv"):
        delimiter = "\t" if suffix == ".tsv" else ","
        reader = csv.reader(io.StringIO(text), delimiter=delimiter)
        for cells in reader:
            number = reader.line_num
            if not cells or not any(c.strip() for c in cells) or cells[0].startswith("#"):
                continue
            yield number, [c.strip() for c in cells]
        return
    for number, line in enumerate(text.splitlines(), 1):  # TREC qrels and other plain text
        if line.strip() and not line.lstrip().startswith("#"):
            yield number, line.split()


def _with_header(
    path: Path,
    rows: Iterable[tuple[int, dict[str, Any] | list[str]]],
    needed: Sequence[Sequence[str]],
) -> Iterator[tuple[int, dict[str, Any] | list[str]]]:
    """Turn the cell lists of a delimited file with a header into objects."""
    header: list[str] | None = None
    first = True
    for number, row in rows:
        if isinstance(row, dict):
            yield number, row
            continue
        if first:
            first = False
            names = [c.lower() for c in row]
            if all(any(k in names for k in keys) for keys in needed):
                header = names
                continue
        if header is None:
            yield number, row
        else:
            yield number, dict(zip(header, row, strict=False))


def read_queries(paths: Sequence[Path | str], default_language: str = "en") -> list[Query]:
    """Every query of the files, in file order; an (id, language) seen twice is an error."""
    out: list[Query] = []
    seen: dict[str, str] = {}
    for raw in paths:
        path = Path(raw)
        for number, row in _with_header(path, _rows(path), (ID_KEYS, TEXT_KEYS)):
            where = f"{path}:{number}"
            if isinstance(row, dict):
                qid, text, lang = _pick(row, ID_KEYS), _pick(row, TEXT_KEYS), _pick(row, LANG_KEYS)
            elif len(row) in (2, 3):
                qid, text = row[0], row[1]
                lang = row[2] if len(row) == 3 else None
            else:
                raise DataError(f"{where}: expected the columns id, query[, language]")
            if qid is None or text is None or not str(text).strip():
                raise DataError(f"{where}: a query needs an id and a non-empty text")
            query = Query(
                str(qid).strip(), " ".join(str(text).split()), str(lang or default_language)
            )
            if query.key in seen:
                raise DataError(
                    f"{where}: query {query.id!r} in {query.language!r} again "
                    f"(first at {seen[query.key]})"
                )
            seen[query.key] = where
            out.append(query)
    if not out:
        raise DataError("no queries in " + ", ".join(str(p) for p in paths))
    return out


def _gain(value: Any, where: str) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DataError(f"{where}: gain {value!r} is not a number") from None
    if number != int(number) or number < 0:
        raise DataError(f"{where}: gain {value!r} must be a non-negative integer")
    return int(number)


@dataclass
class Judgments:
    qrels: Qrels = field(default_factory=dict)
    files: list[dict[str, Any]] = field(default_factory=list)
    conflicts: int = 0

    @property
    def pairs(self) -> int:
        return sum(len(docs) for docs in self.qrels.values())

    def relevant(self, query_id: str) -> int:
        return sum(1 for g in self.qrels.get(query_id, {}).values() if g >= 1)

    def histogram(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for docs in self.qrels.values():
            for gain in docs.values():
                out[gain] = out.get(gain, 0) + 1
        return dict(sorted(out.items()))


def read_judgments(paths: Sequence[Path | str]) -> Judgments:
    """One judgment set from several files (later files win on a pair rated twice)."""
    result = Judgments()
    for raw in paths:
        path = Path(raw)
        count = 0
        needed = (JUDGED_QUERY_KEYS, DOC_KEYS, GAIN_KEYS)
        for number, row in _with_header(path, _rows(path), needed):
            where = f"{path}:{number}"
            if isinstance(row, dict):
                qid = _pick(row, JUDGED_QUERY_KEYS)
                pid, gain = _pick(row, DOC_KEYS), _pick(row, GAIN_KEYS)
                if gain is None and any(k in row for k in GAIN_KEYS):
                    continue  # a row left unrated (an imported rating sheet)
            elif len(row) == 4:  # TREC qrels: qid iteration docid gain
                qid, pid, gain = row[0], row[2], row[3]
            elif len(row) == 3:
                qid, pid, gain = row
            else:
                raise DataError(f"{where}: expected query id, product id and gain")
            if qid is None or pid is None or gain is None:
                raise DataError(f"{where}: a judgment needs a query id, a product id and a gain")
            value = _gain(gain, where)
            docs = result.qrels.setdefault(str(qid).strip(), {})
            pid = str(pid).strip()
            if pid in docs and docs[pid] != value:
                result.conflicts += 1
            docs[pid] = value
            count += 1
        result.files.append({"path": str(path), "judgments": count})
    return result
