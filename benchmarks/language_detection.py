"""Query language detection on real queries: how often the sidecar names the right language.

Query sets: the Chorus/Icecat dev queries (English, with their zh/es/ja/fr/de translations
from ../shared/data/chorus_icecat) and the project's sample queries (six languages). A query
that reads the same as its English original ("iphone 11", "lenovo") carries no language of its
own; those are counted apart ("neutral"), since answering "not sure" there is right.

Prints a table and writes benchmarks/results/language_detection-latest.md and a timestamped
JSON. Usage: python benchmarks/language_detection.py [--chorus DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sidecar.languages import CATALOG_CODES  # noqa: E402
from sidecar.scoring.language import LanguageDetector  # noqa: E402

CHORUS = ROOT.parent / "shared" / "data" / "chorus_icecat"
SAMPLE = ROOT / "ingest" / "sample_data" / "queries.jsonl"


def chorus_queries(folder: Path) -> list[dict[str, str]]:
    english: dict[str, str] = {}
    for line in (folder / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        q = json.loads(line)
        if q.get("split") == "dev":
            english[q["query_id"]] = q["query"]
    rows = [{"set": "chorus-dev", "lang": "en", "query": t, "en": t} for t in english.values()]
    with (folder / "queries_xl_dev.tsv").open(encoding="utf-8") as fh:
        for r in csv.DictReader(fh, delimiter="\t"):
            if r["query_id"] in english:
                rows.append(
                    {
                        "set": "chorus-dev",
                        "lang": r["lang"],
                        "query": r["query"],
                        "en": english[r["query_id"]],
                    }
                )
    return rows


def sample_queries() -> list[dict[str, str]]:
    rows = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    english = {r["need"]: r["query"] for r in rows if r["language"] == "en"}
    return [
        {
            "set": "sample",
            "lang": r["language"],
            "query": r["query"],
            "en": english.get(r["need"], ""),
        }
        for r in rows
    ]


def mark_neutral(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """A translation that reads as its English original is neutral, and so is that English
    query (the translators kept it: "iphone 11", "lenovo")."""
    kept = {r["en"].strip().lower() for r in rows if r["lang"] != "en" and same(r)}
    for r in rows:
        r["neutral"] = "1" if same(r) and (r["lang"] != "en" or r["en"].lower() in kept) else ""
    return rows


def same(r: dict[str, str]) -> bool:
    return r["query"].strip().lower() == r["en"].strip().lower()


def evaluate(rows: list[dict[str, str]], detector: LanguageDetector) -> dict[str, Any]:
    stats: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    confusions: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    timings = []
    for r in rows:
        started = time.perf_counter()
        got, _ = detector.detect(r["query"])
        timings.append(time.perf_counter() - started)
        neutral = bool(r["neutral"])
        s = stats[r["lang"]]
        s["queries"] += 1
        if neutral:
            s["neutral"] += 1
            s["neutral_unsure"] += got is None
            continue
        s["right"] += got == r["lang"]
        s["unsure"] += got is None
        if got is not None and got != r["lang"]:
            s["wrong"] += 1
            confusions[r["lang"]][got] += 1
    timings.sort()
    return {
        "per_language": {k: dict(v) for k, v in stats.items()},
        "confusions": {k: dict(v) for k, v in confusions.items()},
        "detect_us_p50": timings[len(timings) // 2] * 1e6,
        "detect_us_p99": timings[int(len(timings) * 0.99)] * 1e6,
    }


def table(name: str, result: dict[str, Any]) -> list[str]:
    lines = [
        f"### {name}",
        "",
        "| language | queries | own-language queries | right | unsure | wrong (as) | "
        "neutral (same as English) |",
        "|---|---|---|---|---|---|---|",
    ]
    for lang in CATALOG_CODES:
        s = result["per_language"].get(lang)
        if not s:
            continue
        own = s["queries"] - s.get("neutral", 0)
        conf = ", ".join(f"{k} {v}" for k, v in sorted(result["confusions"].get(lang, {}).items()))
        right = s.get("right", 0)
        lines.append(
            f"| {lang} | {s['queries']} | {own} | {right} ({right / own:.0%}) | "
            f"{s.get('unsure', 0)} | {s.get('wrong', 0)}{f' ({conf})' if conf else ''} | "
            f"{s.get('neutral', 0)} |"
        )
    lines += [
        "",
        f"detect() per query: p50 {result['detect_us_p50']:.0f} µs, "
        f"p99 {result['detect_us_p99']:.0f} µs",
        "",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chorus", type=Path, default=CHORUS)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args(argv)
    detector = LanguageDetector()
    detector.load()
    results: dict[str, Any] = {"sample": evaluate(mark_neutral(sample_queries()), detector)}
    if (args.chorus / "queries_xl_dev.tsv").exists():
        results["chorus-dev"] = evaluate(mark_neutral(chorus_queries(args.chorus)), detector)
    else:
        print(f"(no Chorus queries at {args.chorus}: the sample set only)")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    lines = [
        "# Query language detection",
        "",
        f"Run {stamp} (`python benchmarks/language_detection.py`): py3langid 0.4.0 restricted to "
        "the six catalog languages, after Unicode script rules (sidecar/scoring/language.py), "
        "confidence below 0.5 = unsure. 'own-language queries' leaves out the queries whose "
        "translation reads the same as the English original (brands, model numbers: 'iphone "
        "11', 'lenovo'), in every language including English, where unsure is the right answer "
        "and any language is harmless.",
        "",
    ]
    names = {"chorus-dev": "Chorus/Icecat dev queries and their translations", "sample": "sample"}
    for key, result in results.items():
        lines += table(names[key], result)
    if "chorus-dev" in results:
        rows = mark_neutral(chorus_queries(args.chorus))
        lines += [
            "### The confidence threshold (Chorus dev, own-language queries, all languages)",
            "",
            "| min confidence | right | wrong | unsure |",
            "|---|---|---|---|",
        ]
        sweep = {}
        for threshold in (0.3, 0.4, 0.5, 0.6):
            per = evaluate(rows, LanguageDetector(min_confidence=threshold))["per_language"]
            own = sum(v["queries"] - v.get("neutral", 0) for v in per.values())
            right = sum(v.get("right", 0) for v in per.values())
            wrong = sum(v.get("wrong", 0) for v in per.values())
            sweep[threshold] = {"own": own, "right": right, "wrong": wrong}
            lines.append(
                f"| {threshold}{' (used)' if threshold == 0.5 else ''} | {right} | {wrong} | "
                f"{own - right - wrong} |"
            )
        results["threshold_sweep"] = sweep
        lines.append("")
    text = "\n".join(lines)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "language_detection-latest.md").write_text(text, encoding="utf-8")
    (args.out / f"language_detection-{stamp}.json").write_text(
        json.dumps(results, indent=2), encoding="utf-8"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
