"""``sidecar-demo``: the sidecar alone under gunicorn, a real rerank shown, kept serving.

Starts ``sidecar-serve`` on ``SIDECAR_PORT`` (or a free loopback port when that one is
taken), waits for ``/readyz``, prints a curl command that works as shown and the
rankings it returns for an English and a Chinese query, then serves until Ctrl-C.
``--once`` stops after the demonstration.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

from sidecar.launcher import SidecarProcess, free_port

DOCS = [
    "Logitech M185 wireless optical mouse",
    "HP LaserJet toner cartridge",
    "Dell USB keyboard",
]
QUERIES = ["wireless mouse", "无线鼠标"]


def post(url: str, body: dict[str, Any], timeout: float = 60) -> Any:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.load(resp)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--once", action="store_true", help="exit after the demonstration")
    args = ap.parse_args(argv)
    port = free_port(int(os.environ.get("SIDECAR_PORT", "8080")))
    log_path = Path(tempfile.gettempdir()) / f"sidecar-demo-{port}.log"
    server = SidecarProcess(port, log_path)
    base = server.url
    print(f"starting the sidecar on {base} (gunicorn, bundled model) ...", flush=True)
    print(f"server log: {log_path}", flush=True)
    try:
        server.start()
        body = {"query": QUERIES[0], "documents": DOCS}
        print("\nready. Try it yourself:\n")
        print(
            f"  curl -s {base}/v1/rerank -H 'Content-Type: application/json' \\\n"
            f"    -d '{json.dumps(body, ensure_ascii=False)}'\n"
        )
        for query in QUERIES:
            out = post(base + "/v1/rerank", {"query": query, "documents": DOCS})
            print(f"query: {query}")
            for rank, r in enumerate(out["results"], 1):
                print(f"  {rank}. {r['relevance_score']:.4f}  {DOCS[r['index']]}")
        print(
            f"\nalso: POST {base}/rerank (TEI), POST {base}/v1/embeddings (OpenAI), "
            f"GET {base}/metrics, GET {base}/openapi.json"
        )
        if args.once:
            return 0
        print("\nserving; press Ctrl-C to stop.", flush=True)
        assert server.proc is not None
        return server.proc.wait() or 0
    except KeyboardInterrupt:
        return 0
    except (RuntimeError, OSError) as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 1
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
