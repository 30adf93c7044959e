"""The Dagster instance for the embedded default: SQLite storage under HERALD_HOME."""

from __future__ import annotations

import os
from pathlib import Path

# Written once per HERALD_HOME. The `warehouse` pool has one slot: every asset that writes the
# warehouse claims it, so DuckDB never sees two writers (runs, steps, `herald tick` and
# `dagster dev` alike). Runs queue by default; telemetry stays off. (No `run_queue`
# block: `herald tick` overrides the run coordinator, which that block would conflict with.)
# The event log is Dagster's SQLite one keeping a connection per file
# (orchestration/event_log.py): a third of the cost per event.
EMBEDDED_DAGSTER_YAML = """\
telemetry:
  enabled: false
concurrency:
  pools:
    default_limit: 1
event_log_storage:
  module: orchestration.event_log
  class: PooledSqliteEventLogStorage
"""
# what earlier releases wrote: a home still holding it exactly is moved to the current one
EARLIER_DAGSTER_YAML = EMBEDDED_DAGSTER_YAML.split("event_log_storage:")[0]


def ensure_dagster_home(dagster_home: Path) -> Path:
    """Create ``dagster_home`` with Herald's dagster.yaml if missing; export DAGSTER_HOME."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    config = dagster_home / "dagster.yaml"
    if not config.exists() or config.read_text() == EARLIER_DAGSTER_YAML:
        config.write_text(EMBEDDED_DAGSTER_YAML)
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    return dagster_home
