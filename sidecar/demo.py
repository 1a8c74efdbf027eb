"""``make run``: start the sidecar under gunicorn, show a real rerank, keep serving.

Starts ``sidecar-serve`` on ``SIDECAR_PORT`` (or a free loopback port when that one is
taken), waits for ``/readyz``, prints a curl command that works as shown and the
rankings it returns for an English and a Chinese query, then serves until Ctrl-C.
``--once`` stops after the demonstration.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from typing import Any

DOCS = [
    "Logitech M185 wireless optical mouse",
    "HP LaserJet toner cartridge",
    "Dell USB keyboard",
]
QUERIES = ["wireless mouse", "无线鼠标"]


def free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise RuntimeError("no free port")


def post(url: str, body: dict[str, Any], timeout: float = 60) -> Any:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.load(resp)


def wait_ready(base: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"the sidecar exited with code {proc.returncode}; see its log")
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the sidecar was not ready within {timeout:.0f}s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--once", action="store_true", help="exit after the demonstration")
    args = ap.parse_args(argv)
    port = free_port(int(os.environ.get("SIDECAR_PORT", "8080")))
    env = {**os.environ, "SIDECAR_PORT": str(port), "SIDECAR_HOST": "127.0.0.1"}
    base = f"http://127.0.0.1:{port}"
    log_path = os.path.join(tempfile.gettempdir(), f"sidecar-demo-{port}.log")
    print(f"starting the sidecar on {base} (gunicorn, bundled model) ...", flush=True)
    print(f"server log: {log_path}", flush=True)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sidecar.serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_ready(base, proc, timeout=300)
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
        proc.wait()
        return proc.returncode or 0
    except KeyboardInterrupt:
        return 0
    except (RuntimeError, OSError) as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        with open(log_path, encoding="utf-8", errors="replace") as fh:
            tail = fh.readlines()[-30:]
        print("last lines of the server log:\n" + "".join(tail), file=sys.stderr)
        return 1
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(main())
