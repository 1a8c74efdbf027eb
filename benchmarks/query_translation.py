"""Query translation on the Chorus/Icecat dev queries: latency, where the terms come from, and
what the translation is worth to an English BM25.

1. Builds the catalog vocabulary (title, brand, description; USE embeddings of its frequent
   words) from ``--catalog`` with :func:`sidecar.translation.build_vocabulary`, timed.
2. Translates every dev query in zh/es/ja/fr/de (``queries_xl_dev.tsv``) with the default
   :class:`DictionaryTranslator`, a first (cold-cache) pass and a timed warm pass.
3. Scores a plain in-memory Okapi BM25 (k1 1.2, b 0.75; title x2 + brand + description; lower
   case, crude English plural stemming) with the raw query, the translation and the English
   query: nDCG@10 over the judgments of judgments.jsonl + judgments_extra.jsonl +
   judgments_extra2.jsonl (gain = rating, unjudged = 0; means over the queries with a relevant
   judgment), and token recall of the English query in the translation. Ablations: dictionary
   without neighbours, neighbours only.

Prints a table; writes benchmarks/results/query_translation-latest.md and a timestamped JSON
(aggregates only: the query texts stay in shared/). Product data: Specs Icecat
(https://icecat.biz/). Usage: python benchmarks/query_translation.py [--catalog PATH]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import resource
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evaluation.metrics import per_query, scored_keys  # noqa: E402
from sidecar.translation.base import Translator  # noqa: E402
from sidecar.translation.dictionary import DictionaryTranslator  # noqa: E402
from sidecar.translation.neighbours import NeighbourTranslator, UseEmbedder, WordNeighbours  # noqa: E402
from sidecar.translation.text import singular  # noqa: E402
from sidecar.translation.vocabulary import Vocabulary, build_vocabulary, product_text, read_catalog  # noqa: E402  # noqa: E402

CHORUS = ROOT.parent / "shared" / "data" / "chorus_icecat"
RESULTS = ROOT / "benchmarks" / "results"
LANGS = ["zh", "es", "ja", "fr", "de"]
JUDGMENTS = ["judgments.jsonl", "judgments_extra.jsonl", "judgments_extra2.jsonl"]
_TOKEN = re.compile(r"\w+")


def analyse(text: str) -> list[str]:
    return [singular(t) for t in _TOKEN.findall(text.lower())]


class BM25:
    """Okapi BM25 over weighted fields (a field repeated counts twice)."""

    def __init__(self, docs: Sequence[tuple[str, str]], k1: float = 1.2, b: float = 0.75):
        self.ids = [d for d, _ in docs]
        self.k1, self.b = k1, b
        self.postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        self.lengths: list[int] = []
        for i, (_, text) in enumerate(docs):
            toks = analyse(text)
            self.lengths.append(len(toks))
            for t, tf in Counter(toks).items():
                self.postings[t].append((i, tf))
        self.avg = sum(self.lengths) / max(1, len(self.lengths))
        n = len(docs)
        self.idf = {
            t: math.log(1 + (n - len(p) + 0.5) / (len(p) + 0.5)) for t, p in self.postings.items()
        }

    def search(self, query: str, k: int = 10) -> list[str]:
        scores: dict[int, float] = defaultdict(float)
        for t in set(analyse(query)):
            idf = self.idf.get(t)
            if idf is None:
                continue
            for i, tf in self.postings[t]:
                norm = self.k1 * (1 - self.b + self.b * self.lengths[i] / self.avg)
                scores[i] += idf * tf * (self.k1 + 1) / (tf + norm)
        top = sorted(scores.items(), key=lambda x: (-x[1], x[0]))[:k]
        return [self.ids[i] for i, _ in top]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def load_dev(folder: Path) -> tuple[dict[str, str], list[tuple[str, str, str]], dict[str, Any]]:
    english = {q["query_id"]: q["query"] for q in read_jsonl(folder / "queries.jsonl")}
    with (folder / "queries_xl_dev.tsv").open(encoding="utf-8") as fh:
        rows = [
            (r["query_id"], r["lang"], r["query"])
            for r in csv.DictReader(fh, delimiter="\t")
            if r["query_id"] in english
        ]
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    for name in JUDGMENTS:
        if (folder / name).exists():
            for j in read_jsonl(folder / name):
                qrels[j["query_id"]][j["product_id"]] = int(j["rating"])
    return english, rows, qrels


def ndcg(runs: dict[str, list[str]], qrels: dict[str, Any], qids: list[str]) -> float:
    keys = scored_keys(qrels, qids)
    values = per_query(runs, qrels, keys)["nDCG@10"]
    return statistics.fmean(values[k] for k in keys) if keys else float("nan")


def token_recall(translated: str, english: str) -> float:
    want = set(analyse(english))
    return len(want & set(analyse(translated))) / len(want) if want else 1.0


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))] if s else float("nan")


def evaluate(
    name: str,
    tr: Translator,
    rows: list[tuple[str, str, str]],
    english: dict[str, str],
    bm25: BM25,
    qrels: dict[str, Any],
) -> dict[str, Any]:
    cold: dict[str, list[float]] = defaultdict(list)
    for _qid, lang, q in rows:  # cold pass: the caches fill
        t0 = time.perf_counter()
        tr.translate(q, lang)
        cold[lang].append((time.perf_counter() - t0) * 1000)
    out: dict[str, Any] = {}
    for lang in LANGS:
        mine = [(qid, q) for qid, lg, q in rows if lg == lang]
        lat, origins, recall = [], Counter(), []
        runs, texts = {}, {}
        for qid, q in mine:
            t0 = time.perf_counter()
            r = tr.translate(q, lang)
            lat.append((time.perf_counter() - t0) * 1000)
            texts[qid] = r.text
            origins.update(t.origin for t in r.terms)
            recall.append(token_recall(r.text, english[qid]))
            runs[qid] = bm25.search(r.text)
        qids = [qid for qid, _ in mine]
        total = sum(origins.values()) or 1
        out[lang] = {
            "queries": len(mine),
            "ndcg10": ndcg(runs, qrels, qids),
            "token_recall": statistics.fmean(recall),
            "p50_ms": pct(lat, 0.5),
            "p99_ms": pct(lat, 0.99),
            "cold_p50_ms": pct(cold[lang], 0.5),
            "cold_p99_ms": pct(cold[lang], 0.99),
            "origins": {k: round(v / total, 3) for k, v in sorted(origins.items())},
        }
    print(f"  {name}: " + ", ".join(f"{lg} {out[lg]['ndcg10']:.3f}" for lg in LANGS))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--catalog", type=Path, default=CHORUS / "products.jsonl")
    ap.add_argument("--chorus", type=Path, default=CHORUS, help="folder of the dev queries")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    if not args.catalog.exists():
        print(f"no catalog at {args.catalog}", file=sys.stderr)
        return 2
    english, rows, qrels = load_dev(args.chorus)
    products = list(read_catalog(args.catalog))
    rss0 = rss_mb()

    t0 = time.perf_counter()
    embedder = UseEmbedder(threads=2)
    vocab = build_vocabulary(
        (product_text(p) for p in products),
        brands=(p.get("brand") or "" for p in products),
        embedder=embedder,
    )
    build_s = time.perf_counter() - t0
    vocab_path = args.out / "query_translation-vocabulary.tmp.npz"
    args.out.mkdir(parents=True, exist_ok=True)
    vocab.save(vocab_path)
    vocab_mb = vocab_path.stat().st_size / 1e6
    t0 = time.perf_counter()
    vocab = Vocabulary.load(vocab_path)
    vocab_load_s = time.perf_counter() - t0
    vocab_path.unlink()
    print(
        f"vocabulary: {len(vocab.df)} words, {len(vocab.embedded_words)} embedded, "
        f"built in {build_s:.1f} s, {vocab_mb:.1f} MB, loads in {vocab_load_s:.2f} s"
    )

    docs = [
        (
            p["id"],
            " ".join(
                [p.get("title") or ""] * 2 + [p.get("brand") or "", p.get("description") or ""]
            ),
        )
        for p in products
    ]
    bm25 = BM25(docs)
    by_lang_en = {lang: [qid for qid, lg, _ in rows if lg == lang] for lang in LANGS}
    raw = {}
    for lang in LANGS:
        mine = [(qid, q) for qid, lg, q in rows if lg == lang]
        raw[lang] = ndcg({qid: bm25.search(q) for qid, q in mine}, qrels, by_lang_en[lang])
    eng = {
        lang: ndcg(
            {qid: bm25.search(english[qid]) for qid in by_lang_en[lang]}, qrels, by_lang_en[lang]
        )
        for lang in LANGS
    }

    rss1 = rss_mb()
    neighbours = WordNeighbours(vocab, embedder=embedder)
    main_tr = DictionaryTranslator(vocab, neighbours=neighbours)
    t0 = time.perf_counter()
    main_tr.warm_up()
    warm_s = time.perf_counter() - t0
    rss2 = rss_mb()
    print(f"translator warm-up {warm_s:.1f} s, +{rss2 - rss1:.0f} MB resident")
    results = {
        "dictionary+neighbours": evaluate(
            "dictionary + neighbours", main_tr, rows, english, bm25, qrels
        )
    }
    no_nb = DictionaryTranslator(vocab, neighbours=False)
    results["dictionary only"] = evaluate("dictionary only", no_nb, rows, english, bm25, qrels)
    results["neighbours only"] = evaluate(
        "neighbours only", NeighbourTranslator(neighbours), rows, english, bm25, qrels
    )
    sources = main_tr.sources()
    main_tr.close()
    no_nb.close()

    main_res = results["dictionary+neighbours"]
    lines = [
        "# Query translation (dev queries, Chorus/Icecat)",
        "",
        f"Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `benchmarks/query_translation.py`. "
        "Product data: Specs Icecat (https://icecat.biz/).",
        "",
        "BM25 nDCG@10 (plain in-memory Okapi BM25, title x2 + brand + description, judgments "
        "judgments.jsonl + judgments_extra.jsonl + judgments_extra2.jsonl, unjudged = 0; means "
        "over queries with a relevant judgment). Latency: warm (after one pass over all "
        "queries; the word caches hit), and cold (that first pass: dictionaries loaded, "
        "caches empty), one thread, this machine (2 shared cores). Origins: share of terms.",
        "",
        "| lang | raw query | translated | English | token recall | p50 ms | p99 ms "
        "| cold p50 / p99 ms | glossary | dictionary | neighbour | kept |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for lang in LANGS:
        r = main_res[lang]
        o = r["origins"]
        lines.append(
            f"| {lang} | {raw[lang]:.3f} | **{r['ndcg10']:.3f}** | {eng[lang]:.3f} | "
            f"{r['token_recall']:.2f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
            f"{r['cold_p50_ms']:.1f} / {r['cold_p99_ms']:.1f} | "
            + " | ".join(
                f"{o.get(k, 0):.2f}" for k in ("glossary", "dictionary", "neighbour", "kept")
            )
            + " |"
        )
    lines += [
        "",
        "Ablations (BM25 nDCG@10 of the translation):",
        "",
        "| backend | " + " | ".join(LANGS) + " |",
        "|---|" + "---|" * len(LANGS),
    ]
    for name, res in results.items():
        lines.append(f"| {name} | " + " | ".join(f"{res[lg]['ndcg10']:.3f}" for lg in LANGS) + " |")
    lines += [
        "",
        f"Vocabulary: {len(vocab.df)} words over {vocab.n_docs} products, "
        f"{len(vocab.embedded_words)} embedded (USE, df >= 2); built in {build_s:.1f} s "
        f"(mostly the embeddings), {vocab_mb:.1f} MB as .npz, loads in {vocab_load_s:.2f} s.",
        f"Translator warm-up (all five dictionaries, glossary, USE): {warm_s:.1f} s; resident "
        f"memory +{rss2 - rss1:.0f} MB (process {rss2:.0f} MB, {rss0:.0f} MB before the catalog "
        "vocabulary).",
        "",
        "Caveats: these are the dev queries, expect less on unseen ones. The glossary "
        "(`sidecar/translation/glossary/electronics.tsv`) was written from domain knowledge "
        "without reading the query files, but after reading the data set's README, which names a "
        "few of its translation conventions (power bank, AA/AAA battery names, de Handy). Two "
        "generic rules (frequent catalog words pass through before the dictionary; no "
        "decompounding of words under 8 letters) were added after reading dev-query failures. "
        "The judgments were pooled from other systems' results: unjudged products count as "
        "irrelevant. The BM25 here is not the cluster's (its English analyzer stems more).",
        "",
        "Dictionaries loaded (a dictionary shared by two languages loads with the first):",
        "",
    ]
    for lang, rep in sources["languages"].items():
        if isinstance(rep, dict):
            entries = rep["entries"] or "-"
            lex = rep["lexicon"] or "none"
            lines.append(f"- {lang}: {lex} ({entries} entries, loaded in {rep['seconds']:.1f} s)")
    text = "\n".join(lines) + "\n"
    print(text)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (args.out / "query_translation-latest.md").write_text(text, encoding="utf-8")
    payload = {
        "raw_ndcg10": raw,
        "english_ndcg10": eng,
        "results": results,
        "vocabulary": {
            "words": len(vocab.df),
            "embedded": len(vocab.embedded_words),
            "build_s": round(build_s, 2),
            "file_mb": round(vocab_mb, 2),
            "load_s": round(vocab_load_s, 3),
        },
        "warm_up_s": round(warm_s, 2),
        "rss_mb": {
            "start": round(rss0),
            "before_translator": round(rss1),
            "after_warm_up": round(rss2),
        },
        "sources": sources,
        "judgments": JUDGMENTS,
    }
    (args.out / f"query_translation-{stamp}.json").write_text(
        json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
