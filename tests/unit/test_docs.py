"""The README's settings table and the Settings object describe the same knobs."""

import dataclasses
import re
from pathlib import Path

from sidecar.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_is_documented_with_its_default() -> None:
    text = README.read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `SIDECAR_([A-Z_0-9]+)` \| ([^|]*) \|", text, re.M))
    fields = {f.name.upper(): f for f in dataclasses.fields(Settings)}
    assert set(rows) == set(fields)
    for name, field in fields.items():
        shown = rows[name].strip().strip("`")
        default = field.default
        if isinstance(default, str) and default and default != "auto":
            assert shown == default, name
        elif isinstance(default, (int, float)) and not isinstance(default, bool):
            assert float(shown) == float(default), name
