"""dbt as a Dagster resource, pointed at the warehouse the settings name."""

from __future__ import annotations

import copy
import fcntl
import io
import json
import os
import shutil
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any

import dagster_dbt.core.resource as dagster_dbt_resource
from dagster_dbt import DbtCliResource
from dagster_dbt.core.dbt_cli_invocation import DbtCliInvocation
from packaging import version

from herald.clock import dbt_env as clock_dbt_env
from herald.paths import DBT_PROJECT_DIR
from herald.settings import Settings
from herald.warehouse.build_lock import DBT_BUILD_LOCK_KEY

DBT_ENV_DEFAULTS = {
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "DBT_PARTIAL_PARSE": "true",
    # A build of part of the project runs the tests whose every parent it builds or reads: a
    # relationship test from a mart it does not build (consent_status → contacts) runs in the
    # build that builds that mart. dbt's default (eager) would run it wherever contacts is
    # built, even before the other mart exists. A whole build runs every test either way.
    "DBT_INDIRECT_SELECTION": "buildable",
}


def dbt_target() -> str:
    return Settings.from_env().warehouse.dbt_target


def manifest_path(target: str) -> Path:
    """One target path per dbt target: the manifest bakes in database and schema names."""
    return DBT_PROJECT_DIR / "target" / target / "manifest.json"


def apply_dbt_env() -> None:
    """Export what ``profiles.yml`` reads (connection details come from HERALD_WAREHOUSE_URL)."""
    os.environ.update(Settings.from_env().warehouse.dbt_env())
    os.environ.update(clock_dbt_env())  # dbt's utc_now() follows Herald's clock (a demo's simulated one)
    for key, value in DBT_ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)


def _newest_source_mtime() -> float:
    sources = [DBT_PROJECT_DIR / "dbt_project.yml", DBT_PROJECT_DIR / "profiles.yml"]
    for folder in ("models", "macros", "tests", "seeds"):
        sources += [p for p in (DBT_PROJECT_DIR / folder).rglob("*") if p.suffix in (".sql", ".yml", ".yaml", ".csv")]
    return max((p.stat().st_mtime for p in sources if p.exists()), default=0.0)


def ensure_manifest(target: str | None = None) -> Path:
    """Parse the dbt project when its manifest is missing (a fresh clone) or older than the
    project's files: Dagster builds the asset graph from it, outside ``dagster dev`` too, and a
    stale manifest makes a build fail on nodes it does not know."""
    target = target or dbt_target()
    path = manifest_path(target)
    if path.exists() and path.stat().st_mtime >= _newest_source_mtime():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    # several processes may import the definitions at once (tests in parallel, dagster dev's
    # code server and a tick): one parses, the others wait and read its manifest
    with open(path.parent.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists() or path.stat().st_mtime < _newest_source_mtime():
            from dbt.cli.main import dbtRunner

            apply_dbt_env()
            result = dbtRunner().invoke(
                [
                    "parse",
                    "--quiet",
                    "--project-dir",
                    str(DBT_PROJECT_DIR),
                    "--profiles-dir",
                    str(DBT_PROJECT_DIR),
                    "--target",
                    target,
                    "--target-path",
                    str(path.parent),
                ]
            )
            if not result.success or not path.exists():
                raise RuntimeError(f"dbt parse for target {target!r} failed: {result.exception}")
    return path


def run_target_path(target: str) -> Path:
    """Where a deployment's dbt builds write (run results, compiled SQL): under its HERALD_HOME,
    so two deployments on one checkout (or tests in parallel) never read each other's
    run_results.json. Seeded with the project's parsed state, so partial parsing still works."""
    folder = Settings.from_env().home / "dbt-target" / target
    parsed = manifest_path(target).parent
    if not (folder / "partial_parse.msgpack").exists() and (parsed / "partial_parse.msgpack").exists():
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("partial_parse.msgpack", "manifest.json"):
            if (parsed / name).exists():
                shutil.copy2(parsed / name, folder / name)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class InProcessDbt:
    """dbt's programmatic runner in this process, shaped like the ``subprocess.Popen`` that
    dagster-dbt reads: ``stdout`` yields dbt's JSON log lines, ``wait()`` its exit code.

    A ``dbt`` subprocess pays ~4 s of start-up (Python, dbt's imports, the adapter) before its
    first query; a build of a few marts then takes ~5 s where the same build in process takes
    under 1 s. dbt runs to the end inside the constructor (dagster-dbt reads the events after),
    its events collected through dbtRunner's callback at the level of dbt's own JSON log (info
    and up), secrets scrubbed as dbt's logger would. dbt's connections are closed when the
    runner returns: a DuckDB warehouse file is not held between builds."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str]) -> None:
        from dagster._core.errors import DagsterExecutionInterruptedError
        from dbt.cli.main import dbtRunner
        from dbt_common.events.base_types import EventLevel
        from dbt_common.events.functions import env_scrubber, msg_to_dict

        self.args = list(args)
        lines: list[bytes] = []
        command = next((a for a in self.args[1:] if not a.startswith("-")), "")

        def collect(event: Any) -> None:
            if event.info.level == EventLevel.DEBUG:
                return
            lines.append(env_scrubber(json.dumps(msg_to_dict(event), default=str)).encode())

        # dagster-dbt passes its settings (target path, log format, indirect selection, ...) in
        # the environment, as it would to a subprocess; dbt reads them from ours meanwhile
        changed = {k: v for k, v in env.items() if k.startswith("DBT_") and os.environ.get(k) != v}
        saved = {k: os.environ.get(k) for k in changed}
        os.environ.update(changed)
        try:
            # --log-level none: nothing on our stdout (the events go to dagster-dbt, the debug
            # log still to dbt.log in the target folder)
            with _BUILD_LOCK, warehouse_build_lock(command):
                reuse = command in MANIFEST_COMMANDS and "--inline" not in self.args
                manifest = _parsed_manifest(self.args[1:]) if reuse else None
                result = dbtRunner(manifest=manifest, callbacks=[collect]).invoke(
                    [*self.args[1:], "--log-level", "none"]
                )
        finally:
            _close_duckdb()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        if isinstance(result.exception, KeyboardInterrupt | DagsterExecutionInterruptedError):
            raise result.exception
        if result.exception is not None:
            error = {"info": {"level": "error", "name": "InProcessDbtError", "msg": f"dbt failed: {result.exception}",
                              "invocation_id": ""}, "data": {}}  # fmt: skip
            lines.append(json.dumps(error).encode())
        self.returncode = 0 if result.success else (2 if result.exception is not None else 1)
        self.stdout = io.BytesIO(b"\n".join(lines) + b"\n")

    def wait(self, timeout: float | None = None) -> int:
        return self.returncode

    def poll(self) -> int:
        return self.returncode

    def send_signal(self, signal: int) -> None:  # dbt has already finished
        pass

    def terminate(self) -> None:
        pass


# Commands that execute against a parsed project without adding to it: given the manifest, dbt
# skips parsing. (``show`` and ``--inline`` add a node of their own: they parse as before.)
MANIFEST_COMMANDS = frozenset({"build", "run", "test", "seed", "snapshot", "compile"})
# What a parse bakes into the manifest: the project's files, the target, and the profile's
# database name (PostgreSQL's dbname; DuckDB's is its file's stem), read by profiles.yml from
# these variables. Runtime values such as the simulated clock's offset are read again when each
# node is compiled, at execution.
_PROFILE_VARIABLES = ("HERALD_DBT_TARGET", "HERALD_PG_HOST", "HERALD_PG_PORT", "HERALD_PG_USER", "HERALD_PG_DATABASE")
# What a build writes on the parsed nodes it compiles (found by comparing every node before and
# after a build of the whole project). An ephemeral model's CTE is injected into its parents only
# when these are as parsed, so they are put back before each build that reuses the manifest.
_COMPILE_STATE = ("compiled", "compiled_code", "compiled_path", "build_path", "checksum", "extra_ctes",
                  "extra_ctes_injected", "_pre_injected_sql")  # fmt: skip
_MANIFESTS: dict[tuple, tuple[Any, dict[str, dict[str, Any]]]] = {}
_MANIFESTS_KEPT = 4
# one build at a time uses a cached manifest (runs execute one step at a time; this makes it so)
_BUILD_LOCK = threading.Lock()
# dbt commands that replace relations in the warehouse
WRITING_COMMANDS = frozenset({"build", "run", "seed", "snapshot"})


@contextmanager
def warehouse_build_lock(command: str) -> Iterator[None]:
    """On PostgreSQL, one writing dbt build at a time per warehouse, across every run process.

    Several runs may run at once there (the run queue allows eight), and several of them build
    dbt models: the packet path, analytics, the plan in a send run, the marts after delivery.
    Two builds replacing the same table at once collide (dbt's table swap renames and drops
    with ``cascade``), so each writing build holds a session-level advisory lock on a
    connection of its own while dbt runs; the next one waits for it. Segment evaluations hold
    the same key shared (:func:`herald.warehouse.build_lock.models_stable`), so a build also
    waits for them and they never see a half-swapped model. DuckDB needs none: its
    ``warehouse`` pool has one slot and its file one writer."""
    if command not in WRITING_COMMANDS or os.environ.get("HERALD_DBT_TARGET") != "postgres":
        yield
        return
    import psycopg2

    conn = psycopg2.connect(
        host=os.environ["HERALD_PG_HOST"],
        port=os.environ["HERALD_PG_PORT"],
        user=os.environ["HERALD_PG_USER"],
        password=os.environ.get("HERALD_PG_PASSWORD") or None,
        dbname=os.environ["HERALD_PG_DATABASE"],
        application_name="herald dbt build lock",
    )
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("select pg_advisory_lock(%s)", (DBT_BUILD_LOCK_KEY,))
        yield
    finally:
        conn.close()  # ends the session, which releases the lock


def _flag_values(args: Sequence[str], names: tuple[str, ...]) -> list[str]:
    kept = []
    for i, arg in enumerate(args):
        if arg in names and i + 1 < len(args):
            kept += [arg, args[i + 1]]
    return kept


def _parsed_manifest(args: Sequence[str]) -> Any:
    """The parsed project for these arguments, parsed once per process and reused while the
    project's files and the profile stay the same (dbt's documented manifest reuse:
    ``dbtRunner(manifest=...)``). dbt otherwise re-reads its partial-parse state and rewrites
    ``manifest.json`` on every build: about 1.8 s a build on Herald's project.

    Call it holding ``_BUILD_LOCK`` until the build is done."""
    from dbt.cli.main import dbtRunner

    profile_flags = _flag_values(args, ("--project-dir", "--profiles-dir", "--profile", "--target", "--vars"))
    key = (
        tuple(profile_flags),
        os.environ.get("DBT_PROJECT_DIR"),
        os.environ.get("DBT_PROFILES_DIR"),
        tuple(os.environ.get(name) for name in _PROFILE_VARIABLES),
        Path(os.environ.get("HERALD_DUCKDB_PATH") or "").stem,
        _newest_source_mtime(),
    )
    if key in _MANIFESTS and _MANIFESTS[key][0].nodes.keys() != _MANIFESTS[key][1].keys():
        del _MANIFESTS[key]  # something added to or took from the parsed project: parse it again
    if key not in _MANIFESTS:
        result = dbtRunner().invoke(["parse", *profile_flags, "--log-level", "none"])
        if not result.success or result.result is None:
            return None  # the build parses for itself and reports what is wrong
        while len(_MANIFESTS) >= _MANIFESTS_KEPT:
            _MANIFESTS.pop(next(iter(_MANIFESTS)))
        manifest = result.result
        parsed = {
            uid: {f: copy.copy(getattr(node, f, None)) for f in _COMPILE_STATE} for uid, node in manifest.nodes.items()
        }
        _MANIFESTS[key] = (manifest, parsed)
    manifest, parsed = _MANIFESTS[key]
    for uid, node in manifest.nodes.items():
        for name, value in parsed[uid].items():
            if hasattr(node, name):
                setattr(node, name, copy.copy(value))
    return manifest


def _close_duckdb() -> None:
    """dbt-duckdb keeps its database handle in a class-level environment after the runner
    returns; closed here, so the file is free for the next process (DuckDB's single writer) and
    for Herald's own connections in this one (DuckDB refuses a second configuration)."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # a deployment without dbt-duckdb
        return
    with DuckDBConnectionManager._LOCK:
        environment = DuckDBConnectionManager._ENV
        DuckDBConnectionManager._ENV = None
    if environment is not None:
        environment.close()


class InProcessDbtInvocation(DbtCliInvocation):
    """dagster-dbt's invocation (event parsing, asset events, errors) over :class:`InProcessDbt`."""

    @classmethod
    def run(cls, args: Sequence[str], env: dict[str, str], **kwargs: Any) -> DbtCliInvocation:  # type: ignore[override]
        kwargs["project"] = kwargs.pop("dbt_project", None)
        kwargs["target_path"].mkdir(parents=True, exist_ok=True)
        return cls(process=InProcessDbt(args, env), **kwargs)  # type: ignore[arg-type]


@contextmanager
def _in_process_invocations() -> Iterator[None]:
    # DbtCliResource.cli ends in ``DbtCliInvocation.run(...)``, named in its own module; for the
    # length of one call that name is ours (runs execute one step at a time: in_process_executor)
    original = dagster_dbt_resource.DbtCliInvocation
    dagster_dbt_resource.DbtCliInvocation = InProcessDbtInvocation  # type: ignore[misc]
    try:
        yield
    finally:
        dagster_dbt_resource.DbtCliInvocation = original  # type: ignore[misc]


class HeraldDbtResource(DbtCliResource):
    """``DbtCliResource`` for Herald's project and the configured target, running dbt in
    process (:class:`InProcessDbt`) rather than as a subprocess per build.

    dagster-dbt asks the dbt executable for its version once per resource instance, a ~6 s
    subprocess per run step; the executable is the dbt-core installed beside us, so its version
    is known without asking.
    """

    @cached_property
    def _cli_version(self) -> version.Version:
        from dbt.version import __version__

        return version.parse(__version__)

    def _initialize_dbt_core_adapter(self, args: Any) -> Any:
        # dagster-dbt opens an in-process dbt adapter for optional column metadata. With DuckDB
        # that adapter keeps the warehouse file open after the build — holding the single-writer
        # lock against every other process. Herald does not use that metadata: no adapter.
        return None

    def cli(self, args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        apply_dbt_env()
        with _in_process_invocations():
            return super().cli(args, **kwargs)


def build_dbt_resource() -> HeraldDbtResource:
    executable = shutil.which("dbt", path=str(Path(sys.executable).parent)) or "dbt"
    return HeraldDbtResource(
        project_dir=str(DBT_PROJECT_DIR),
        profiles_dir=str(DBT_PROJECT_DIR),
        target=dbt_target(),
        dbt_executable=executable,
    )


__all__ = ["HeraldDbtResource", "apply_dbt_env", "build_dbt_resource", "dbt_target", "ensure_manifest", "manifest_path"]
