"""dbt as a Dagster resource, pointed at the warehouse the settings name."""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
from functools import cached_property
from pathlib import Path
from typing import Any

from dagster_dbt import DbtCliResource
from packaging import version

from herald.clock import dbt_env as clock_dbt_env
from herald.paths import DBT_PROJECT_DIR
from herald.settings import Settings

DBT_ENV_DEFAULTS = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_PARTIAL_PARSE": "true"}


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


class HeraldDbtResource(DbtCliResource):
    """``DbtCliResource`` for Herald's project and the configured target.

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
