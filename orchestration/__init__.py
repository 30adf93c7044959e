"""Dagster's side of Herald: definitions, jobs, schedules and the tick."""

import herald  # noqa: F401  (its start-up fix must run before Dagster imports croniter)
