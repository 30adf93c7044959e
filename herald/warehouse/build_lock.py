"""The dbt build lock, seen from the readers' side.

On PostgreSQL a writing dbt build (``resources/dbt.py``, ``warehouse_build_lock``) holds an
advisory lock on :data:`DBT_BUILD_LOCK_KEY` *exclusively* while it swaps models (a table swap
renames the new table in and drops the old one with ``cascade``, which also drops the views over
it). A reader that must not see a half-swapped model — a segment evaluation, which makes the
client's views over ``marts`` and then queries them — holds the same key *shared*
(:func:`models_stable`): readers run beside each other, a build waits until they are done, and
a reader waits for a build in progress. DuckDB needs none: one process writes its file at a
time, and the ``warehouse`` pool serializes the runs that write it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from herald.warehouse.connection import Warehouse

# pg_advisory_lock's key for "a dbt build replaces relations in this warehouse" (any constant bigint)
DBT_BUILD_LOCK_KEY = 0x6865_7261_6C64  # "herald"


@contextmanager
def models_stable(warehouse: Warehouse) -> Iterator[None]:
    """While inside, no writing dbt build replaces a model of ``warehouse`` (PostgreSQL: the build
    lock held shared, in a read-only session of its own, released when it ends)."""
    if warehouse.engine != "postgres":
        yield
        return
    with warehouse.session(read_only=True) as s:
        s.execute("select pg_advisory_xact_lock_shared(?)", [DBT_BUILD_LOCK_KEY])
        yield
