"""Run a few dbt models against a warehouse from this process, outside Dagster.

Used where Herald plans without a Dagster run: ``herald campaign preview`` and ``simulate`` run
the send's own plan models (``int_journey__*``, ``message_plan``, ``journey_transitions``) on a
scratch copy of the warehouse. dbt runs in-process (its start-up is most of a small run's
time) with the warehouse's connection settings in the environment ``profiles.yml`` reads.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from herald.paths import DBT_PROJECT_DIR
from herald.settings import WarehouseTarget


class DbtRunError(RuntimeError):
    """A dbt model failed; the message names the models and dbt's first errors."""


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _release_duckdb() -> None:
    """dbt-duckdb keeps its connection to the file in a class-level environment; let go of it,
    so this process (or the next dbt run on another file) can open the warehouse itself."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    with DuckDBConnectionManager._LOCK:
        if DuckDBConnectionManager._ENV is not None:
            DuckDBConnectionManager._ENV.close()
            DuckDBConnectionManager._ENV = None


def run_models(target: WarehouseTarget, models: Sequence[str], work_dir: Path) -> None:
    """``dbt run --select <models>`` on ``target``; dbt's logs and compiled SQL go to ``work_dir``."""
    from dbt.cli.main import dbtRunner

    work_dir.mkdir(parents=True, exist_ok=True)
    env = {**target.dbt_env(), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_LOG_PATH": str(work_dir)}
    with _environment(env):
        try:
            result = dbtRunner().invoke(
                [
                    "run", "--quiet", "--select", *models,
                    "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
                    "--target", target.dbt_target, "--target-path", str(work_dir / "target"),
                ]
            )  # fmt: skip
        finally:
            if target.engine == "duckdb":
                _release_duckdb()
    if not result.success:
        failures = [str(r.message) for r in (result.result or []) if getattr(r, "status", None) == "error"]
        detail = "; ".join(failures[:3]) or str(result.exception)
        raise DbtRunError(f"dbt run of {', '.join(models)} failed: {detail}")
