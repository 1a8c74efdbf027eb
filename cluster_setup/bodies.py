"""The JSON bodies of ``index_templates/`` and the digests that make ``sidecar-setup``
idempotent: each object it creates carries the digest of the body it was made from."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path
from typing import Any

TEMPLATES = Path(__file__).resolve().parent.parent / "index_templates"
#: `` (setup:<digest>)`` at the end of a description. ML Commons 3.x accepts only letters,
#: digits, spaces and ``.,!?():@-_'/"`` in connector and model names and descriptions, so the
#: stamp uses parentheses; the brackets older runs wrote are still read.
DIGEST_RE = re.compile(r" [\[(]setup:([0-9a-f]{12})[\])]$")


def load_body(name: str) -> dict[str, Any]:
    with (TEMPLATES / name).open(encoding="utf-8") as fh:
        body: dict[str, Any] = json.load(fh)
    return body


def substitute(obj: Any, values: dict[str, str]) -> Any:
    """Replace ``${KEY}`` for the given keys only; ML Commons' own ``${parameters.x}`` and
    ``${credential.x}`` placeholders pass through untouched."""
    if isinstance(obj, str):
        for key, value in values.items():
            if obj == "${" + key + "}":
                return value
            obj = obj.replace("${" + key + "}", value)
        return obj
    if isinstance(obj, list):
        return [substitute(x, values) for x in obj]
    if isinstance(obj, dict):
        return {k: substitute(v, values) for k, v in obj.items()}
    return obj


def digest(body: Any) -> str:
    raw = json.dumps(body, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(raw).hexdigest()[:12]


def stamp(body: dict[str, Any]) -> dict[str, Any]:
    """Append the body's digest to its description (computed without the stamp)."""
    out = copy.deepcopy(body)
    out["description"] = f"{out.get('description', '')} (setup:{digest(body)})"
    return out


def stamped_digest(description: str | None) -> str | None:
    m = DIGEST_RE.search(description or "")
    return m.group(1) if m else None
