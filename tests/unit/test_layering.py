"""The sidecar's layers, read from its imports (``ast``): the scoring core never imports the
cluster-facing package or a cluster client, and no module re-exports another's names."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

SIDECAR = Path(__file__).resolve().parents[2] / "sidecar"
#: the one package that calls OpenSearch; app.py mounts it (lazily, when a URL is set)
CLUSTER = SIDECAR / "cluster"
#: what the scoring core must never import: the cluster side, a cluster client, the
#: catalog loader and cluster set-up packages
FORBIDDEN = ("sidecar.cluster", "opensearchpy", "ingest", "cluster_setup", "requests")
#: HTTP clients of the model servers the core calls (not a cluster)
ALLOWED = {("backends/vllm_backend.py", "requests")}


def modules() -> list[Path]:
    return sorted(SIDECAR.rglob("*.py"))


def core_modules() -> list[Path]:
    return [p for p in modules() if CLUSTER not in p.parents]


def imported(node: ast.AST) -> Iterator[tuple[str, int]]:
    """``(module, line)`` of each import under ``node``; ``from x import y`` counts as
    ``x.y`` too, so ``from sidecar import cluster`` is caught."""
    for child in ast.walk(node):
        if isinstance(child, ast.Import):
            for alias in child.names:
                yield alias.name, child.lineno
        elif isinstance(child, ast.ImportFrom) and child.module and not child.level:
            yield child.module, child.lineno
            for alias in child.names:
                yield f"{child.module}.{alias.name}", child.lineno


def is_forbidden(module: str) -> str | None:
    return next((f for f in FORBIDDEN if module == f or module.startswith(f + ".")), None)


def rel(path: Path) -> str:
    return path.relative_to(SIDECAR).as_posix()


@pytest.mark.parametrize("path", core_modules(), ids=rel)
def test_the_core_imports_no_cluster_code_or_client(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    # app.py wires the cluster package in, inside create_app and only when a URL is set
    scope: list[ast.AST] = list(tree.body) if rel(path) == "app.py" else [tree]
    found = [
        f"line {line}: {module}"
        for node in scope
        if not isinstance(node, ast.FunctionDef)
        for module, line in imported(node)
        if (bad := is_forbidden(module)) and (rel(path), bad) not in ALLOWED
    ]
    assert not found, f"sidecar/{rel(path)} imports {found}"


def reexports(path: Path) -> bool:
    """A module whose content is imports (and ``__all__``), or that silences the unused
    import lint: it only gives another module's names a second home."""
    text = path.read_text(encoding="utf-8")
    if "noqa: F401" in text:
        return True
    body = ast.parse(text).body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    imports = [n for n in body if isinstance(n, ast.Import | ast.ImportFrom)]
    rest = [
        n
        for n in body
        if n not in imports
        and not (
            isinstance(n, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "__all__" for t in n.targets)
        )
    ]
    real = [n for n in imports if not (isinstance(n, ast.ImportFrom) and n.module == "__future__")]
    return bool(real) and not rest


def test_no_module_re_exports_another() -> None:
    found = [rel(p) for p in modules() if reexports(p)]
    assert not found, f"re-exporting modules: {found}"


def test_the_check_itself_sees_a_re_export_and_a_cluster_import(tmp_path: Path) -> None:
    shim = tmp_path / "shim.py"
    shim.write_text('"""x"""\nfrom a import b, c\n\n__all__ = ["b", "c"]\n', encoding="utf-8")
    assert reexports(shim)
    shim.write_text('"""x"""\nfrom a import b\n\nd = b\n', encoding="utf-8")
    assert not reexports(shim)
    tree = ast.parse("from sidecar import cluster\nimport requests.adapters\n")
    assert [is_forbidden(m) for m, _ in imported(tree)] == [None, "sidecar.cluster", "requests"]


def test_an_app_without_a_cluster_url_never_loads_the_cluster_package() -> None:
    code = (
        "import sys\n"
        "from sidecar.app import create_app\n"
        "from sidecar.settings import Settings\n"
        "app = create_app(Settings())\n"
        "print(sorted(m for m in list(sys.modules) if m.startswith('sidecar.cluster')))\n"
        "app.extensions['sidecar.engine'].close()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.splitlines()[-1] == "[]"
