"""The Compose Specification's JSON schema, from a registry package, checked by hash.

The schema (compose-spec/compose-spec, ``schema/compose-spec.json``, Apache-2.0) is
bundled in the npm package ``dclint`` (a Compose linter, MIT) as
``schemas/compose.schema.json``. It is fetched with ``npm pack`` once per machine into
the project's cache (``RANKING_SIDECAR_CACHE``) and pinned here by version and SHA-256,
so every run validates against the same bytes.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from local_node.node import cache_root

PACKAGE = "dclint"
VERSION = "3.1.0"
MEMBER = "package/schemas/compose.schema.json"
SHA256 = "46b7d35f19dd93a05f8fea530291bf84d881c1791ec167ecf0e6fb94e639d496"


class SchemaUnavailable(RuntimeError):
    pass


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def compose_schema_path() -> Path:
    target = cache_root() / "compose-spec" / f"compose-spec.{PACKAGE}-{VERSION}.json"
    if target.is_file() and _sha256(target) == SHA256:
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise SchemaUnavailable("npm is needed once to fetch the Compose schema (dclint)")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [npm, "pack", f"{PACKAGE}@{VERSION}", "--pack-destination", tmp, "--silent"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if out.returncode != 0:
            raise SchemaUnavailable(f"npm pack {PACKAGE}@{VERSION} failed: {out.stderr[-1000:]}")
        (tgz,) = Path(tmp).glob("*.tgz")
        with tarfile.open(tgz) as tar:
            member = tar.extractfile(MEMBER)
            if member is None:
                raise SchemaUnavailable(f"{PACKAGE}@{VERSION} has no {MEMBER}")
            data = member.read()
    if hashlib.sha256(data).hexdigest() != SHA256:
        raise SchemaUnavailable(f"{PACKAGE}@{VERSION}:{MEMBER} does not have the pinned SHA-256")
    partial = target.with_suffix(".partial")
    partial.write_bytes(data)
    partial.replace(target)
    return target
