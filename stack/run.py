"""``make run``: the whole stack on one machine, ending in searches a person can read.

1. an OpenSearch node (``local_node``, from Maven Central; reused when already running),
2. the sidecar under gunicorn (bundled model; reused when already answering),
3. the setup CLI (templates, connectors, models, pipelines),
4. a catalog load: the project's multilingual sample by default, ``--catalog PATH`` for any
   JSONL feed, ``--chorus`` for the Chorus/Icecat catalog in ../shared (``--limit`` products,
   0 for all), then the query translator's catalog vocabulary from the index (the sidecar
   was started with ``SIDECAR_QU_VOCABULARY`` pointing at it and picks it up),
5. for one English and one Chinese query, the top 5 of BM25, hybrid and hybrid+rerank side
   by side, and the address of the search page that shows the same for any query.

Everything keeps running afterwards; ``make stop`` (``python -m stack stop``) stops it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import unicodedata
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from tqdm import tqdm

from cluster_setup import budget, queries
from cluster_setup.client import make_client
from ingest import catalog
from ingest.catalog import ProductError, normalize, read_jsonl
from ingest.loader import SidecarEmbedder, load_products
from local_node.node import LocalNode, default_version, http_json, run_root
from local_node.node import main as node_main
from sidecar.launcher import SidecarProcess, free_port, is_ready

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "ingest" / "sample_data" / "products.jsonl"
CHORUS = ROOT.parent / "shared" / "data" / "chorus_icecat" / "products.jsonl"
ICECAT = "Product data: Specs Icecat (https://icecat.biz/), Icecat Open Content License."


def state_dir() -> Path:
    path = run_root() / "stack"
    path.mkdir(parents=True, exist_ok=True)
    return path


def say(msg: str) -> None:
    print(msg, flush=True)


# -- services --------------------------------------------------------------------------------


def ensure_node() -> str:
    """The stack's node, of the line ``OPENSEARCH_VERSION`` picks: a running one of another
    line is stopped and its data dropped (3.x indices do not open on 2.x), so the catalog and
    setup are loaded again."""
    version = default_version()
    info = state_dir() / "node" / "node.json"
    if info.exists():
        saved = json.loads(info.read_text())
        url = saved["url"]
        try:
            http_json(f"{url}/_cluster/health", timeout=3)
        except (urllib.error.URLError, OSError):
            info.unlink()
        else:
            if saved.get("version", version) == version:
                say(f"OpenSearch: reusing the {version} node at {url}")
                return str(url)
            say(f"OpenSearch: stopping the {saved['version']} node (OPENSEARCH_VERSION={version})")
            node_main(["stop", "--name", "stack/node"])
            shutil.rmtree(state_dir() / "node" / "data", ignore_errors=True)
    say(f"OpenSearch: starting a local {version} node (first time: downloads from Maven Central)")
    node = LocalNode(version=version, run_dir=state_dir() / "node")
    return node.start()


def stop_group(pid: int, wait_s: float = 30.0) -> None:
    """SIGTERM a process group and wait until it is gone (its port free again)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)


def ensure_sidecar(port: int, os_url: str, attribution: str = "") -> str:
    """The sidecar, serving the search page for ``os_url`` (a running one is reused when it
    was started for the same cluster and attribution)."""
    info = state_dir() / "sidecar.json"
    env = {
        "SIDECAR_OPENSEARCH_URL": os_url,
        "SIDECAR_SEARCH_ATTRIBUTION": attribution,
        # written after the catalog load (``vocabulary``); the sidecar reloads it when it changes
        "SIDECAR_QU_VOCABULARY": str(vocabulary_path()),
        # the deadline of the default time budget: it answers before the connectors give up
        "SIDECAR_REQUEST_TIMEOUT_S": f"{budget.DEFAULT.sidecar_deadline_s:g}",
    }
    if info.exists():
        saved = json.loads(info.read_text())
        if is_ready(saved["url"], timeout=3):
            if saved.get("env") == env:
                say(f"sidecar: reusing {saved['url']}")
                return str(saved["url"])
            say("sidecar: restarting it for this cluster")
            stop_group(saved["pid"])
    server = SidecarProcess(free_port(port), state_dir() / "sidecar.log", env=env)
    say(f"sidecar: starting on {server.url} (log {server.log_path}) ...")
    try:
        server.start()
    except RuntimeError as exc:
        raise SystemExit(str(exc)) from None
    info.write_text(json.dumps({"url": server.url, "pid": server.pid, "env": env}))
    return server.url


def setup(os_url: str, sidecar_url: str) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "cluster_setup",
            "--opensearch",
            os_url,
            "--sidecar",
            sidecar_url,
            "--json",
        ],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise SystemExit("setup failed:\n" + out.stderr[-3000:])
    report: dict[str, Any] = json.loads(out.stdout)
    changed = [a for a in report["actions"] if a["status"] != "unchanged"]
    say(f"setup: {len(report['actions'])} objects checked, {len(changed)} changed")
    return report


# -- catalog ---------------------------------------------------------------------------------


def read_catalog(path: Path, limit: int) -> tuple[list[Any], list[str]]:
    """Products of a JSONL feed; with ``limit``, an evenly spread sample of it (judged
    products first, when the feed flags them, so the demo queries have answers)."""
    with path.open(encoding="utf-8") as fh:
        rows = list(read_jsonl(fh))
    if limit and len(rows) > limit:
        judged = [r for r in rows if isinstance(r[1], dict) and r[1].get("judged")][:limit]
        rest = [r for r in rows if not (isinstance(r[1], dict) and r[1].get("judged"))]
        room = limit - len(judged)
        step = max(1, len(rest) // room) if room else 0
        rows = sorted(judged + (rest[::step][:room] if room else []), key=lambda r: r[0])
    products, errors = [], []
    for number, obj in rows:
        try:
            if isinstance(obj, ProductError):
                raise obj
            products.append(normalize(obj))
        except ProductError as exc:
            errors.append(f"{path.name}:{number}: {exc}")
    return products, errors


def load(client: Any, sidecar_url: str, path: Path, limit: int) -> int:
    marker = state_dir() / "catalog.json"
    key = {
        "path": str(path.resolve()),
        "limit": limit,
        "mtime": path.stat().st_mtime,
        # the texts the catalog embeds and reranks: a new recipe loads the catalog again
        "texts": [catalog.EMBED_BULLETS, catalog.RERANK_BULLETS, catalog.MAX_SECTION_CHARS],
    }
    count = client.count(index="products")["count"]
    if marker.exists() and json.loads(marker.read_text()) == key and count:
        say(f"catalog: {count} products already loaded from {path}")
        return int(count)
    products, errors = read_catalog(path, limit)
    for err in errors[:5]:
        say(f"  skipped {err}")
    if count:  # another catalog was loaded before: start from an empty index
        # (no _delete_by_query here: it lives in the reindex module, which the node lacks)
        for index in client.indices.get_alias(name="products"):
            client.indices.delete(index=index)
            client.indices.create(index=index, body={"aliases": {"products": {}}})
    say(f"catalog: embedding and indexing {len(products)} products from {path} ...")
    started = time.monotonic()
    # on stderr; where that is no terminal (a log), a line every 15 seconds
    with tqdm(
        total=len(products),
        unit="product",
        file=sys.stderr,
        mininterval=0.1 if sys.stderr.isatty() else 15.0,
    ) as bar:
        result = load_products(
            client,
            products,
            "products",
            SidecarEmbedder(sidecar_url),
            progress=lambda done: bar.update(done - bar.n),
        )
    failed = f", {len(result.failed)} failed" if result.failed else ""
    say(f"catalog: {result.written} indexed in {time.monotonic() - started:.0f}s{failed}")
    for pid, why in result.failed[:5]:
        say(f"  {pid}: {why}")
    marker.write_text(json.dumps(key))
    return result.written


def vocabulary_path() -> Path:
    return state_dir() / "vocabulary.npz"


def vocabulary(client: Any) -> None:
    """The query translator's catalog vocabulary, from the index, when the catalog changed
    since it was written (the catalog marker is newer) or it is missing."""
    out, marker = vocabulary_path(), state_dir() / "catalog.json"
    if out.exists() and marker.exists() and out.stat().st_mtime >= marker.stat().st_mtime:
        say(f"vocabulary: {out} is up to date")
        return
    from ingest.vocabulary import build_from_index

    say("vocabulary: counting (and embedding) the catalog's English words ...")
    s = build_from_index(client, "products", out)
    say(
        f"vocabulary: {s['words']} words over {s['products']} products, {s['embedded']} "
        f"embedded, {s['seconds']} s -> {out} (the sidecar reloads it)"
    )


# -- the side-by-side table ------------------------------------------------------------------


def display_title(source: dict[str, Any], lang: str) -> str:
    titles = source.get("title") or {}
    for key in (lang, "en", *titles):
        if titles.get(key):
            return str(titles[key])
    return source.get("id", "?")


def width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def fit(text: str, cols: int) -> str:
    out = ""
    for ch in text:
        if width(out + ch) > cols - 1:
            return out + "…" + " " * (cols - width(out + "…"))
        out += ch
    return out + " " * (cols - width(out))


def side_by_side(client: Any, text: str, lang: str, embed_model_id: str, k: int = 5) -> str:
    columns = {
        "BM25": (queries.bm25_body(text, size=k), "translate"),
        "hybrid": (queries.hybrid_body(text, embed_model_id, size=k), "hybrid"),
        "hybrid + rerank": (queries.hybrid_body(text, embed_model_id, size=k), "hybrid-rerank"),
    }
    results = {}
    for name, (body, pipeline) in columns.items():
        params = {"search_pipeline": pipeline} if pipeline else {}
        hits = client.search(index="products", body=body, params=params)["hits"]["hits"]
        results[name] = [(display_title(h["_source"], lang), h["_score"]) for h in hits]
    col = 42
    lines = [f"query: {text}", "    " + " | ".join(fit(n, col) for n in columns)]
    for i in range(k):
        cells = []
        for name in columns:
            hit = results[name][i] if i < len(results[name]) else None
            cells.append(fit(f"{hit[1]:6.3f}  {hit[0]}" if hit else "", col))
        lines.append(f"{i + 1:>2}. " + " | ".join(cells))
    return "\n".join(lines)


# -- entry points ----------------------------------------------------------------------------


def stop() -> int:
    info = state_dir() / "sidecar.json"
    if info.exists():
        stop_group(json.loads(info.read_text())["pid"])
        say("sidecar: stopped")
        info.unlink()
    node_main(["stop", "--name", "stack/node"])
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m stack", description=__doc__.split("\n")[0])
    ap.add_argument("action", nargs="?", default="run", choices=["run", "stop"])
    ap.add_argument(
        "--catalog",
        type=Path,
        default=None,
        help="a JSONL product feed (default: the bundled multilingual sample)",
    )
    ap.add_argument(
        "--chorus",
        action="store_true",
        help="load the Chorus/Icecat catalog from ../shared instead",
    )
    ap.add_argument(
        "--limit",
        type=int,
        default=None,
        help="products to load (default: all of a feed, 3000 of Chorus; 0 = all)",
    )
    ap.add_argument("--port", type=int, default=8080, help="sidecar port (default %(default)s)")
    args = ap.parse_args(argv)
    if args.action == "stop":
        return stop()
    if args.chorus:
        path, limit = CHORUS, 3000 if args.limit is None else args.limit
        queries_ = [("phone case", "en"), ("手机壳", "zh")]
    else:
        path, limit = (args.catalog or SAMPLE), (args.limit or 0)
        queries_ = [("wireless mouse", "en"), ("无线鼠标", "zh")]
    if not path.exists():
        raise SystemExit(f"catalog not found: {path}")
    os_url = ensure_node()
    sidecar_url = ensure_sidecar(args.port, os_url, ICECAT if path == CHORUS else "")
    report = setup(os_url, sidecar_url)
    client = make_client(os_url)
    load(client, sidecar_url, path, limit)
    vocabulary(client)
    say("")
    for text, lang in queries_:
        say(side_by_side(client, text, lang, report["embed_model_id"]))
        say("")
    if path == CHORUS:
        say(ICECAT)
    body = json.dumps(
        queries.hybrid_body(queries_[0][0], report["embed_model_id"], size=3), ensure_ascii=False
    )
    say(
        textwrap.dedent(f"""
        OpenSearch: {os_url}    sidecar: {sidecar_url}
        Search page (BM25 | hybrid | hybrid + rerank side by side, any language):
          {sidecar_url}/search?q={urllib.parse.quote(queries_[1][0])}
        Search it yourself:
          curl -s '{os_url}/products/_search?search_pipeline=hybrid-rerank' \\
            -H 'Content-Type: application/json' -d '{body}'
        Stop everything: make stop""")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
