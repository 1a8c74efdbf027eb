"""Relevance and speed on the Chorus/Icecat dev set, as ``make bench`` runs it.

1. ``python -m stack --chorus --limit 0``: the stack of ``make run`` with all 19,406
   products (reused when already loaded; the first load embeds the catalog, minutes);
2. ``eval-search run`` with the dev queries in six languages, the three shared judgment files
   and this project's rounds 3 to 6 (``evaluation/judgments``),
   the default configurations (``evaluation/configs/default.json``), into
   ``benchmarks/results/relevance-latest/`` (report.md, PNG plots, results.json).

Product data: Specs Icecat (https://icecat.biz/).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evaluation.cli import main as eval_main  # noqa: E402

CHORUS = ROOT.parent / "shared" / "data" / "chorus_icecat"
OUT = ROOT / "benchmarks" / "results" / "relevance-latest"
DEV_SET = [
    "--queries", str(CHORUS / "queries.jsonl"),
    "--queries", str(CHORUS / "queries_xl_dev.tsv"),
    "--judgments", str(CHORUS / "judgments.jsonl"),
    "--judgments", str(CHORUS / "judgments_extra.jsonl"),
    "--judgments", str(CHORUS / "judgments_extra2.jsonl"),
    # this project's rounds: 3, the unjudged top 10 of the translated searches; 4, every slot
    # of the hybrid's 20-hit rerank windows; 5, the lgbm-v3 rerank's top 10 on a subset; 6, the
    # unjudged top 10 of every configuration of this report (OpenSearch 3.6.0, lgbm-v3)
    "--judgments", str(ROOT / "evaluation" / "judgments" / "chorus_dev_round3.jsonl"),
    "--judgments", str(ROOT / "evaluation" / "judgments" / "chorus_dev_round4.jsonl"),
    "--judgments", str(ROOT / "evaluation" / "judgments" / "chorus_dev_round5.jsonl"),
    "--judgments", str(ROOT / "evaluation" / "judgments" / "chorus_dev_round6.jsonl"),
]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    extra = list(sys.argv[1:] if argv is None else argv)
    stack = subprocess.run([sys.executable, "-m", "stack", "--chorus", "--limit", "0"], cwd=ROOT)
    if stack.returncode != 0:
        return stack.returncode
    return eval_main(
        ["run", *DEV_SET, "--title", "Chorus/Icecat dev set", "--out", str(OUT), *extra]
    )


if __name__ == "__main__":
    sys.exit(main())
