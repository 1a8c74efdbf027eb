"""``eval-search`` (``python -m evaluation``): relevance and speed of search configurations.

    eval-search run --queries Q.jsonl [--queries Q_xl.tsv] --judgments J.jsonl [...] \\
                    [--config evaluation/configs/default.json] --out report-folder
    eval-search pool-export --queries ... --judgments ... --configurations hybrid,knn \\
                    --depth 10 --out to-rate.csv [--from-results report-folder/results.json]
    eval-search pool-import to-rate.csv --out judgments_pooled.jsonl
    eval-search srw-export --queries ... --judgments ... --out srw/ [--url https://os3:9200]
    eval-search srw-import workbench-judgments.json --queries ... --out judgments_srw.jsonl

Without ``--opensearch`` (or ``OPENSEARCH_URL``) and ``--sidecar`` it uses the node and
sidecar that ``make run`` started, when they are running.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cluster_setup.client import add_connection_args, make_client
from cluster_setup.failures import one_line
from evaluation import pooling, report, search, srw
from evaluation.config import ConfigError, EvalConfig, load_config
from evaluation.data import DataError, Judgments, Query, read_judgments, read_queries
from evaluation.evaluate import percentiles, score_runs

COMMANDS = ("run", "pool-export", "pool-import", "srw-export", "srw-import")


def attribution(configured: str, args: argparse.Namespace) -> str:
    """The data credit line of reports and rating sheets: ``--attribution`` when given, else
    the config's (the Icecat licence line) when the queries or judgments come from an Icecat
    data set (a path naming it), else none: the project's own sample needs no credit."""
    given = getattr(args, "attribution", None)
    if given is not None:
        return str(given)
    paths = [*(getattr(args, "queries", None) or []), *(getattr(args, "judgments", None) or [])]
    return configured if any("icecat" in str(p).lower() for p in paths) else ""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def stack_urls() -> tuple[str | None, str | None]:
    """The OpenSearch and sidecar URLs of ``make run``'s stack, if it left them."""
    from local_node.node import run_root

    base = run_root() / "stack"
    urls: list[str | None] = []
    for path in (base / "node" / "node.json", base / "sidecar.json"):
        try:
            urls.append(str(json.loads(path.read_text())["url"]))
        except (OSError, ValueError, KeyError):
            urls.append(None)
    return urls[0], urls[1]


def resolve_urls(args: argparse.Namespace) -> None:
    node, side = stack_urls()
    if args.opensearch is None:
        args.opensearch = node or "http://127.0.0.1:9200"
        if node:
            log(f"cluster: make run's node at {node}")
    if getattr(args, "sidecar", None) is None and side and args.opensearch == node:
        args.sidecar = side
        log(f"sidecar: make run's sidecar at {side}")


def _connect(args: argparse.Namespace) -> Any:
    # one open connection per concurrent search, so the latency passes time searches only
    return make_client(
        args.opensearch,
        args.user,
        args.password,
        args.insecure,
        args.ca_certs,
        timeout=args.timeout,
        pool_maxsize=32,
    )


def _common(ap: argparse.ArgumentParser) -> None:
    add_connection_args(ap)
    # not given and no OPENSEARCH_URL: make run's node when it is running, else :9200
    ap.set_defaults(opensearch=os.environ.get("OPENSEARCH_URL"))
    ap.add_argument(
        "--queries",
        action="append",
        type=Path,
        required=True,
        help="query set: JSONL or TSV/CSV (id, query, optional language); repeatable",
    )
    ap.add_argument(
        "--judgments",
        action="append",
        type=Path,
        required=True,
        help="judgments (query id, product id, gain): JSONL, TSV/CSV or TREC "
        "qrels; repeatable, later files win on a pair rated twice",
    )
    ap.add_argument(
        "--default-language",
        default="en",
        help="language of queries that name none (default %(default)s)",
    )
    ap.add_argument("--languages", help="only these languages, comma-separated")
    ap.add_argument("--limit", type=int, default=0, help="only the first N query ids")
    ap.add_argument(
        "--config",
        type=Path,
        default=None,
        help="configurations file (default evaluation/configs/default.json)",
    )
    ap.add_argument("--index", default=None, help="index or alias (default: the config's)")
    ap.add_argument(
        "--embed-model-id",
        default=None,
        help="ML Commons model for neural queries (default: the one sidecar-setup "
        "registered, read from the index template)",
    )
    ap.add_argument("--timeout", type=float, default=120, help="per-search timeout in seconds")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="eval-search",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n", 1)[1],
    )
    sub = ap.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="evaluate the configurations and write the report")
    _common(run)
    run.add_argument("--out", type=Path, required=True, help="report folder (created)")
    run.add_argument(
        "--sidecar",
        default=None,
        help="the sidecar's URL, for its /metrics (default: make run's sidecar)",
    )
    run.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="concurrent searches of the relevance passes (default: the config's)",
    )
    run.add_argument(
        "--latency-concurrency",
        type=int,
        default=None,
        help="concurrent searches of the latency passes (default: the config's)",
    )
    run.add_argument("--no-latency", action="store_true", help="skip the latency passes")
    run.add_argument(
        "--resamples",
        type=int,
        default=10_000,
        help="bootstrap and randomization resamples (default %(default)s)",
    )
    run.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    run.add_argument("--title", default="Search evaluation", help="the report's title")
    run.add_argument(
        "--attribution",
        default=None,
        help="data attribution line for the report (default: the config's Icecat line when "
        "the queries or judgments come from an Icecat data set, else none)",
    )

    exp = sub.add_parser("pool-export", help="unjudged top-k results as a CSV for raters")
    _common(exp)
    exp.add_argument(
        "--configurations", default="", help="comma-separated configuration names (default: all)"
    )
    exp.add_argument("--depth", type=int, default=10, help="top k to pool (default %(default)s)")
    exp.add_argument(
        "--from-results",
        type=Path,
        default=None,
        help="take the result lists from a report's results.json instead of searching again",
    )
    exp.add_argument("--out", type=Path, required=True, help="the CSV to write")
    exp.add_argument("--concurrency", type=int, default=4)

    imp = sub.add_parser("pool-import", help="a filled rating sheet -> a JSONL judgment file")
    imp.add_argument("sheet", type=Path, help="the CSV from pool-export, ratings filled in")
    imp.add_argument("--out", type=Path, required=True, help="the JSONL judgments to write")
    imp.add_argument("--source", default=None, help="value of the 'source' field")

    sx = sub.add_parser(
        "srw-export",
        help="query set, search configurations, judgments and an experiment as Search "
        "Relevance Workbench bodies (OpenSearch 3.1+)",
    )
    _selection(sx)
    sx.add_argument(
        "--configurations", default="", help="comma-separated configuration names (default: all)"
    )
    sx.add_argument(
        "--size", type=int, default=10, help="the experiment's page size (default %(default)s)"
    )
    sx.add_argument("--name", default="eval-search", help="name of the query set and judgment list")
    sx.add_argument("--out", type=Path, required=True, help="folder for the JSON bodies (created)")
    g = sx.add_argument_group("creating them on a cluster with the Workbench plugin")
    g.add_argument("--url", default=None, help="the cluster's URL: PUT every body there")
    g.add_argument("--user", default=os.environ.get("OPENSEARCH_USER"), help="basic-auth user")
    g.add_argument(
        "--password", default=os.environ.get("OPENSEARCH_PASSWORD"), help="basic-auth password"
    )
    g.add_argument(
        "--insecure", action="store_true", help="do not verify the cluster's TLS certificate"
    )
    g.add_argument("--ca-certs", default=os.environ.get("OPENSEARCH_CA_CERTS"), help="CA bundle")

    si = sub.add_parser(
        "srw-import", help="a Workbench judgment list (export or GET answer) -> JSONL judgments"
    )
    si.add_argument("export", type=Path, help="the Workbench judgments JSON")
    si.add_argument(
        "--queries",
        action="append",
        type=Path,
        default=[],
        help="our query files, to map each query text back to its id (repeatable)",
    )
    si.add_argument("--default-language", default="en", help=argparse.SUPPRESS)
    si.add_argument("--out", type=Path, required=True, help="the JSONL judgments to write")
    si.add_argument(
        "--round",
        action="store_true",
        help="round fractional ratings (implicit or LLM judgments) to whole gains",
    )
    return ap


def _selection(ap: argparse.ArgumentParser) -> None:
    """The query, judgment and configuration selection of ``srw-export`` (as ``run``'s)."""
    ap.add_argument("--queries", action="append", type=Path, required=True, help="query set")
    ap.add_argument(
        "--judgments", action="append", type=Path, required=True, help="judgments (repeatable)"
    )
    ap.add_argument("--default-language", default="en", help="language of queries naming none")
    ap.add_argument("--languages", help="only these languages, comma-separated")
    ap.add_argument("--limit", type=int, default=0, help="only the first N query ids")
    ap.add_argument("--config", type=Path, default=None, help="configurations file")
    ap.add_argument("--index", default=None, help="index or alias (default: the config's)")
    ap.add_argument(
        "--embed-model-id",
        default=None,
        help="ML Commons model for neural queries (default: read from the cluster with --url; "
        "without either, configurations that need it are left out)",
    )


def select_queries(args: argparse.Namespace) -> list[Query]:
    queries = read_queries(args.queries, args.default_language)
    if args.languages:
        wanted = {x.strip() for x in args.languages.split(",") if x.strip()}
        queries = [q for q in queries if q.language in wanted]
    if args.limit:
        ids = list(dict.fromkeys(q.id for q in queries))[: args.limit]
        queries = [q for q in queries if q.id in set(ids)]
    if not queries:
        raise DataError("no queries left after --languages / --limit")
    return queries


def _embed_model(args: argparse.Namespace, client: Any, cfg: EvalConfig) -> str:
    if args.embed_model_id:
        return str(args.embed_model_id)
    found = search.embed_model_id(client)
    if found is None and any(c.needs_embed_model for c in cfg.configurations):
        raise SystemExit(
            "no query-embedding model found in the index template's _meta (run sidecar-setup "
            "first, or pass --embed-model-id)"
        )
    return found or ""


def _progress(name: str, total: int) -> Callable[[int], None]:
    """A progress bar on stderr for one pass (where stderr is no terminal, a line every 15
    seconds), closed when the pass is done."""
    from tqdm import tqdm

    bar = tqdm(
        total=total,
        desc=f"  {name}",
        unit="search",
        file=sys.stderr,
        mininterval=0.1 if sys.stderr.isatty() else 15.0,
    )

    def update(done: int) -> None:
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update


def run_searches(
    client: Any,
    cfg: EvalConfig,
    queries: list[Query],
    embed: str,
    concurrency: int,
    names: list[str] | None = None,
    sidecar_url: str | None = None,
) -> tuple[dict[str, dict[str, list[str]]], dict[str, Any], dict[str, dict[str, Any]]]:
    """Every configuration (in dependency order) over the queries: result lists, pass
    details, pipeline details."""
    runs: dict[str, dict[str, list[str]]] = {}
    passes: dict[str, Any] = {}
    pipes: dict[str, dict[str, Any]] = {}
    wanted = set(names or [c.name for c in cfg.configurations])
    piped = [c.pipeline for c in cfg.configurations if c.pipeline]
    verbose = bool(piped) and search.supports_verbose(client, cfg.index, piped[0])
    for c in cfg.execution_order():
        if c.name not in wanted and not any(
            d.fill_from == c.name and d.name in wanted for d in cfg.configurations
        ):
            continue
        pipes[c.name] = search.pipeline_info(client, c.pipeline)
        before = search.scrape(sidecar_url)
        p = search.run_pass(
            client,
            cfg.index,
            c,
            queries,
            embed,
            concurrency,
            rerank=bool(pipes[c.name].get("rerank")),
            progress=_progress(c.name, len(queries)),
            verbose=verbose,
        )
        p.sidecar = search.sidecar_share(before, search.scrape(sidecar_url), len(p.results))
        results = p.results
        if c.rerank_depth and c.fill_from:
            results = search.fill(results, runs[c.fill_from], c.size)
        runs[c.name] = results
        passes[c.name] = {
            "size": p.size,
            "seconds_total": p.wall_seconds,
            "errors": p.errors,
            "processor_failures": p.processor_failures,
            "processors_checked": verbose,
            "sidecar": p.sidecar,
        }
        log(
            f"{c.name}: {len(p.results)} searches in {p.wall_seconds:.0f} s"
            + (f", {len(p.errors)} failed" if p.errors else "")
        )
    return runs, passes, pipes


def latency_passes(
    client: Any,
    cfg: EvalConfig,
    queries: list[Query],
    embed: str,
    concurrency: int,
    sidecar_url: str | None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "concurrency": concurrency,
        "size": cfg.latency_size,
        "passes": {},
        "warnings": [],
    }
    for name in cfg.latency_configurations:
        c = cfg.by_name(name)
        rerank = bool(search.pipeline_info(client, c.pipeline).get("rerank"))
        warm = [Query(f"warm-up-{i}", t, "en") for i, t in enumerate(("warm up", "cable"))]
        search.run_pass(client, cfg.index, c, warm, embed, 1, size=cfg.latency_size, rerank=rerank)
        before = search.scrape(sidecar_url)
        p = search.run_pass(
            client,
            cfg.index,
            c,
            queries,
            embed,
            concurrency,
            size=cfg.latency_size,
            rerank=rerank,
            progress=_progress(f"latency {name}", len(queries)),
        )
        side = search.sidecar_share(before, search.scrape(sidecar_url), len(p.results))
        secs = [p.seconds[q.key] for q in queries if q.key in p.seconds]
        out["passes"][name] = {
            "size": cfg.latency_size,
            "client": percentiles(secs),
            "took": percentiles(list(p.took_ms.values())),
            "seconds": secs,
            "searches_per_second": len(secs) / p.wall_seconds if p.wall_seconds else 0.0,
            "sidecar": side,
            "errors": p.errors,
        }
        if side.get("fallbacks"):
            out["warnings"].append(
                f"{name}: {side['fallbacks']} reranks were answered with order-keeping fallback "
                "scores (the sidecar missed SIDECAR_REQUEST_TIMEOUT_S): those searches kept the "
                "hybrid order"
            )
        log(f"latency {name}: p50 {out['passes'][name]['client'].get('p50', 0) * 1000:.0f} ms")
    return out


def cmd_run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    started_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    cfg = load_config(args.config)
    if args.index:
        cfg.index = args.index
    queries = select_queries(args)
    judgments = read_judgments(args.judgments)
    resolve_urls(args)
    client = _connect(args)
    info = client.info()
    documents = client.count(index=cfg.index)["count"]
    embed = _embed_model(args, client, cfg)
    concurrency = args.concurrency or cfg.concurrency
    status = search.sidecar_status(args.sidecar)
    log(
        f"{len(queries)} queries x {len(cfg.configurations)} configurations against "
        f"{args.opensearch} ({documents} documents in {cfg.index})"
    )

    latency: dict[str, Any] = {}
    if not args.no_latency and cfg.latency_configurations:
        # first, so that the reranks are computed, not answered from the sidecar's cache
        latency = latency_passes(
            client,
            cfg,
            queries,
            embed,
            args.latency_concurrency or cfg.latency_concurrency,
            args.sidecar,
        )
    runs, passes, pipes = run_searches(
        client, cfg, queries, embed, concurrency, sidecar_url=args.sidecar
    )
    scores = score_runs(
        runs,
        queries,
        judgments.qrels,
        cfg.comparisons(),
        args.resamples,
        args.seed,
        cfg.judged_warning,
    )
    for name, p in passes.items():
        side = p.get("sidecar") or {}
        if side.get("fallbacks"):
            scores["warnings"].append(
                f"{name}: {side['fallbacks']} reranks were answered with fallback scores (the "
                "sidecar missed its deadline): their lists are in the hybrid order"
            )
        if p["processor_failures"]:
            first = next(iter(p["processor_failures"].values()))
            scores["warnings"].append(
                f"{name}: in {len(p['processor_failures'])} searches a pipeline processor failed "
                f"and OpenSearch ignored it (ignore_failure), keeping the order before it; "
                f"first: {first}"
            )
        if p["errors"]:
            scores["warnings"].append(
                f"{name}: {len(p['errors'])} searches failed (see results.json: passes)"
            )
    argv = getattr(args, "argv", None) or sys.argv[1:]
    res: dict[str, Any] = {
        "meta": {
            "title": args.title,
            "started": started_at,
            "command": "eval-search " + " ".join(shlex.quote(a) for a in argv),
            "cluster": {
                "url": args.opensearch,
                "version": info.get("version", {}).get("number"),
                "documents": documents,
            },
            "index": cfg.index,
            "config": cfg.path,
            "sidecar_url": args.sidecar,
            "sidecar_models": (status or {}).get("models"),
            "query_files": [str(p) for p in args.queries],
            "judgments": {
                "files": judgments.files,
                "pairs": judgments.pairs,
                "conflicts": judgments.conflicts,
                "histogram": judgments.histogram(),
            },
            "resamples": args.resamples,
            "seed": args.seed,
            "concurrency": concurrency,
            "judged_warning": cfg.judged_warning,
            "attribution": attribution(cfg.attribution, args),
        },
        "configurations": [
            {
                "name": c.name,
                "label": c.label,
                "template": c.template,
                "body": c.body,
                "pipeline": c.pipeline,
                "pipeline_info": pipes.get(c.name, {}),
                "size": c.size,
                "k": c.k,
                "rerank_depth": c.rerank_depth,
                "fill_from": c.fill_from,
            }
            for c in cfg.configurations
        ],
        **scores,
        "latency": latency,
        "passes": passes,
        "runs": runs,
    }
    res["meta"]["seconds"] = time.monotonic() - started
    paths = report.write(res, args.out)
    print_summary(res)
    print(f"report: {paths['markdown']}\nresults: {paths['json']}")
    if res["meta"].get("attribution"):
        print(res["meta"]["attribution"])
    return 1 if any(p["errors"] for p in passes.values()) else 0


def print_summary(res: dict[str, Any]) -> None:
    labels = {c["name"]: c["label"] for c in res["configurations"]}
    langs = res["languages"]
    head = f"{'':24}" + "".join(f"{g:>8}" for g in ["all", *langs]) + f"{'judged':>8}{'cond':>8}"
    print("nDCG@10")
    print(head)
    for name, s in res["summary"].items():
        cells = "".join(f"{s[g]['nDCG@10']['mean']:8.3f}" for g in ["all", *langs])
        judged = s["all"]["judged@10"]["mean"]
        condensed = s["all"]["nDCG@10'"]["mean"]
        print(f"{labels[name][:24]:24}{cells}{judged:8.2f}{condensed:8.3f}")
    for w in res["warnings"]:
        print("warning:", w)


def selection(args: argparse.Namespace) -> tuple[EvalConfig, list[Query], Judgments, list[str]]:
    """The config (``--index`` applied), the selected queries, the judgments and the named
    configurations (``--configurations``, default all; each checked to exist)."""
    cfg = load_config(args.config)
    if args.index:
        cfg.index = args.index
    queries = select_queries(args)
    judgments = read_judgments(args.judgments)
    names = [n.strip() for n in args.configurations.split(",") if n.strip()] or [
        c.name for c in cfg.configurations
    ]
    for n in names:
        cfg.by_name(n)
    return cfg, queries, judgments, names


def cmd_pool_export(args: argparse.Namespace) -> int:
    cfg, queries, judgments, names = selection(args)
    resolve_urls(args)
    client = _connect(args)
    if args.from_results:
        saved = json.loads(args.from_results.read_text(encoding="utf-8"))["runs"]
        missing = [n for n in names if n not in saved]
        if missing:
            raise SystemExit(f"{args.from_results} has no results for {', '.join(missing)}")
        runs = {n: saved[n] for n in names}
    else:
        embed = _embed_model(args, client, cfg)
        found, _, _ = run_searches(client, cfg, queries, embed, args.concurrency, names)
        runs = {n: found[n] for n in names}
    rows = pooling.unjudged_pool(runs, queries, judgments.qrels, args.depth)
    ids = sorted({r.product_id for r in rows})
    sources: dict[str, Any] = {}
    for start in range(0, len(ids), 500):
        got = client.mget(
            index=cfg.index,
            body={"ids": ids[start : start + 500]},
            params={"_source_includes": "title,brand,description"},
        )
        sources |= {d["_id"]: d.get("_source", {}) for d in got["docs"] if d.get("found")}
    rows = pooling.with_products(rows, sources)
    credit = attribution(cfg.attribution, args)
    pooling.export_pool(rows, args.out, credit)
    per_query = len({r.query_id for r in rows})
    print(
        f"{len(rows)} unjudged pairs over {per_query} queries (top {args.depth} of "
        f"{', '.join(names)}) -> {args.out}; fill the 'rating' column (0-3) and run "
        f"eval-search pool-import {args.out} --out judgments_pooled.jsonl"
    )
    if credit:
        print(credit)
    return 0


def cmd_pool_import(args: argparse.Namespace) -> int:
    n = pooling.import_ratings(args.sheet, args.out, args.source)
    print(f"{n} ratings -> {args.out}; pass it with --judgments beside the other files")
    return 0


def cmd_srw_export(args: argparse.Namespace) -> int:
    cfg, queries, judgments, names = selection(args)
    client = None
    embed = args.embed_model_id or ""
    if args.url:
        client = make_client(args.url, args.user, args.password, args.insecure, args.ca_certs)
        embed = embed or search.embed_model_id(client) or ""
    export = srw.build_export(cfg, queries, judgments.qrels, names, embed, args.size, args.name)
    for path in export.write(args.out):
        print(path)
    for why in export.skipped:
        log(f"left out: {why}")
    if client is None:
        print(
            f"PUT each body to its endpoint ({srw.API}/query_sets, search_configurations, "
            "judgments), then experiment.json to experiments with the ids they answered"
        )
        return 0
    created = srw.create_all(client, export)
    (args.out / "created.json").write_text(json.dumps(created, indent=2) + "\n", "utf-8")
    print(
        f"created on {args.url}: query set {created['query_set']}, "
        f"{len(created['search_configurations'])} search configurations, judgments "
        f"{created['judgments']}, experiment {created['experiment']} (ids in created.json)"
    )
    return 0


def cmd_srw_import(args: argparse.Namespace) -> int:
    try:
        doc = json.loads(args.export.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{args.export}: cannot read it as JSON ({exc})") from None
    queries = read_queries(args.queries, args.default_language) if args.queries else []
    got = srw.import_judgments(doc, queries, round_ratings=args.round)
    srw.write_jsonl(got.rows, args.out)
    print(f"{len(got.rows)} ratings from {got.lists} judgment list(s) -> {args.out}")
    if got.unknown_queries:
        log(
            f"{len(got.unknown_queries)} query texts are in no --queries file; their id is "
            f"'srw:<text>' (first: {got.unknown_queries[0]!r})"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in COMMANDS and argv[0] not in ("-h", "--help"):
        argv = ["run", *argv]
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        if args.command in ("run", "pool-export"):
            resolve_urls(args)  # first: the failure line names the cluster
            with one_line(args.opensearch, args.user):
                return cmd_run(args) if args.command == "run" else cmd_pool_export(args)
        if args.command == "srw-export":
            with one_line(args.url or "the cluster", args.user):
                return cmd_srw_export(args)
        if args.command == "srw-import":
            return cmd_srw_import(args)
        return cmd_pool_import(args)
    except (ConfigError, DataError) as exc:
        print(f"eval-search: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # a TLS, auth or permission failure: one line
        if isinstance(exc.code, str):
            print(f"eval-search: {exc.code}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
