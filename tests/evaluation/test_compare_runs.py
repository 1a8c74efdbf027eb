"""benchmarks/compare_runs.py: one configuration of two eval-search reports, paired by query
(the script run as users run it, on two small results files written here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "compare_runs.py"


def results(ndcg: dict[str, float], config: str = "hybrid-rerank") -> dict[str, Any]:
    """An eval-search results.json's per_query and queries for ``{key: nDCG@10}``."""
    return {
        "per_query": {
            config: {k: {"nDCG@10": v, "nDCG@10'": min(1.0, v + 0.1)} for k, v in ndcg.items()}
        },
        "queries": [
            {"key": k, "id": k.split("@")[0], "language": k.split("@")[1], "text": f"text {k}"}
            for k in ndcg
        ],
    }


def run(tmp_path: Path, before: dict[str, Any], after: dict[str, Any], *extra: str) -> Any:
    paths = []
    for name, data in (("before", before), ("after", after)):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(data))
        paths.append(str(path))
    return subprocess.run(
        [sys.executable, str(SCRIPT), *paths, "--label", "t", "--out", str(tmp_path), *extra],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_change_is_compared_paired_overall_and_per_language(tmp_path: Path) -> None:
    before = {"q1@en": 0.5, "q2@en": 0.6, "q3@zh": 0.4, "q4@zh": 0.7, "q5@zh": 0.2}
    after = {"q1@en": 0.5, "q2@en": 0.5, "q3@zh": 0.6, "q4@zh": 0.9, "q5@zh": 0.5}
    out = run(tmp_path, results(before), results(after | {"q9@ja": 1.0}))
    assert out.returncode == 0, out.stderr
    assert "| all | 5 | 0.480 | 0.600 | +0.120 [" in out.stdout
    assert "| zh | 3 | 0.433 | 0.667 | +0.233 [" in out.stdout
    assert "q5@zh 'text q5@zh': 0.200 → 0.500" in out.stdout
    assert (tmp_path / "compare-t-latest.md").read_text().strip() == out.stdout.strip()
    (saved,) = tmp_path.glob("compare-t-2*.json")
    data = json.loads(saved.read_text())
    overall = data["metrics"]["nDCG@10"]["all"]
    assert (overall["up"], overall["down"], overall["queries"]) == (3, 1, 5)
    lo, hi = overall["ci95"]
    assert abs(overall["difference"] - 0.12) < 1e-9
    assert lo <= overall["difference"] <= hi
    assert 0 < overall["p"] <= 1
    assert data["missing"] == ["q9@ja"]
    en = data["metrics"]["nDCG@10"]["en"]
    assert (en["up"], en["down"]) == (0, 1)


def test_unknown_configuration_and_foreign_files_are_refused(tmp_path: Path) -> None:
    same = results({"q1@en": 0.5})
    out = run(tmp_path, same, same, "--configuration", "knn")
    assert out.returncode != 0
    assert "no configuration 'knn' (it has hybrid-rerank)" in out.stderr
    out = run(tmp_path, {"summary": {}}, same)
    assert out.returncode != 0 and "not an eval-search results.json" in out.stderr
    out = run(tmp_path, results({"q1@en": 0.5}), results({"q2@en": 0.5}))
    assert out.returncode != 0 and "share no scored query" in out.stderr
