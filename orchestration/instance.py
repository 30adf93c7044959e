"""The Dagster instance for the embedded default: SQLite storage under HERALD_HOME."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

# Written per HERALD_HOME. The `warehouse` pool has one slot: every asset that writes the
# warehouse claims it, so DuckDB never sees two writers (runs, steps, `herald tick` and
# `dagster dev` alike). Runs queue by default; telemetry stays off. (No `run_queue`
# block: `herald tick` overrides the run coordinator, which that block would conflict with.)
EARLIER_DAGSTER_YAML = """\
telemetry:
  enabled: false
concurrency:
  pools:
    default_limit: 1
"""
# The event log is Dagster's SQLite one keeping a connection per file
# (orchestration/event_log.py): a third of the cost per event. Its folder is where Dagster's
# default puts it, written out because the class is configured apart from the rest of the
# storage (and a process opening the home need not export DAGSTER_HOME).
EVENT_LOG_YAML = """\
event_log_storage:
  module: orchestration.event_log
  class: PooledSqliteEventLogStorage
  config:
    base_dir: {base_dir}
"""
_OURS = re.compile(re.escape(EARLIER_DAGSTER_YAML + EVENT_LOG_YAML).replace(re.escape("{base_dir}"), ".+"))


def embedded_dagster_yaml(dagster_home: Path) -> str:
    base_dir = json.dumps(str(dagster_home.resolve() / "history" / "runs"))  # a quoted YAML string
    return EARLIER_DAGSTER_YAML + EVENT_LOG_YAML.format(base_dir=base_dir)


def ensure_dagster_home(dagster_home: Path) -> Path:
    """Create ``dagster_home`` with Herald's dagster.yaml if missing; export DAGSTER_HOME.

    A dagster.yaml that Herald wrote (an earlier release's, or this one's for a home since
    moved) is brought up to date; one edited by hand is left alone."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    config = dagster_home / "dagster.yaml"
    wanted = embedded_dagster_yaml(dagster_home)
    current = config.read_text() if config.exists() else None
    if current != wanted and (current is None or current == EARLIER_DAGSTER_YAML or _OURS.fullmatch(current)):
        config.write_text(wanted)
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    return dagster_home
