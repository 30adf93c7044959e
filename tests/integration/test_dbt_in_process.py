"""dbt in the run's own process (resources/dbt.py): a build's result and errors reach
dagster-dbt as a subprocess's would, and the DuckDB warehouse file is free the moment dbt
returns (another process can take DuckDB's single write lock, and this one can connect again)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from herald.paths import DBT_PROJECT_DIR
from resources.dbt import InProcessDbt, apply_dbt_env


@pytest.fixture
def duckdb_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(path)).close()
    saved = dict(os.environ)  # apply_dbt_env exports what profiles.yml reads: put back after
    os.environ.update({"HERALD_HOME": str(tmp_path / "home"), "HERALD_WAREHOUSE_URL": str(path)})
    try:
        apply_dbt_env()
        yield path
    finally:
        os.environ.clear()
        os.environ.update(saved)


def dbt_args(tmp_path: Path, *args: str) -> list[str]:
    return ["dbt", *args, "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
            "--target", "duckdb", "--target-path", str(tmp_path / "target")]  # fmt: skip


def events(process: InProcessDbt) -> list[dict]:
    return [json.loads(line) for line in process.stdout.read().splitlines() if line.strip()]


def test_a_query_runs_and_the_file_is_free_when_dbt_returns(duckdb_file: Path, tmp_path: Path) -> None:
    process = InProcessDbt(dbt_args(tmp_path, "show", "--inline", "select 41 + 1 as answer"), {})
    assert process.wait() == 0
    assert any("42" in str(e["data"]) for e in events(process))
    # another process takes the write lock at once (it would fail while dbt held the file) ...
    writer = subprocess.run(
        [sys.executable, "-c", f"import duckdb; c = duckdb.connect({str(duckdb_file)!r}); c.execute('create table t (x int)')"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert writer.returncode == 0, writer.stderr
    # ... and this process connects with a configuration of its own (DuckDB refuses a second
    # configuration while another connection to the file is open)
    with duckdb.connect(str(duckdb_file), read_only=True) as conn:
        assert conn.execute("select count(*) from t").fetchone() == (0,)


def test_a_failing_build_reports_its_error_and_a_non_zero_exit(duckdb_file: Path, tmp_path: Path) -> None:
    process = InProcessDbt(dbt_args(tmp_path, "show", "--inline", "select * from no_such_table"), {})
    assert process.wait() != 0
    errors = [e["info"]["msg"] for e in events(process) if e["info"]["level"] == "error"]
    assert any("no_such_table" in message for message in errors), errors


def test_builds_in_one_process_parse_the_project_once_and_compile_ephemeral_models_each_time(
    duckdb_file: Path, tmp_path: Path
) -> None:
    # int_message_plan__limited reads the ephemeral int_message_plan__earlier as a CTE: a reused
    # manifest that kept the first compile's state left the CTE out of the second ("Table with
    # name __dbt__cte__int_message_plan__earlier does not exist")
    import resources.dbt as dbt_resource

    compiled = tmp_path / "target" / "compiled" / "herald" / "models" / "intermediate" / "int_message_plan__limited.sql"
    parsed_before = len(dbt_resource._MANIFESTS)
    for attempt in range(2):
        compiled.unlink(missing_ok=True)
        process = InProcessDbt(dbt_args(tmp_path, "compile", "--select", "int_message_plan__limited"), {})
        assert process.wait() == 0, [e["info"]["msg"] for e in events(process) if e["info"]["level"] == "error"]
        sql = compiled.read_text()
        assert "__dbt__cte__int_message_plan__earlier as (" in sql, f"compile {attempt + 1}:\n{sql[:2000]}"
        assert sql.count("__dbt__cte__int_message_plan__earlier as (") == 1
    assert len(dbt_resource._MANIFESTS) == min(parsed_before + 1, dbt_resource._MANIFESTS_KEPT)


@pytest.mark.postgres
def test_on_postgresql_one_writing_dbt_build_at_a_time(pg_database_factory, tmp_path: Path) -> None:
    """Runs on PostgreSQL may run at once; their dbt builds take turns on an advisory lock."""
    import threading
    import time

    from herald.settings import parse_warehouse_url
    from resources.dbt import warehouse_build_lock

    url = pg_database_factory()
    saved = dict(os.environ)
    os.environ.update(parse_warehouse_url(url, tmp_path).dbt_env())
    try:
        order: list[str] = []
        entered = threading.Event()

        def second_build() -> None:
            entered.set()
            with warehouse_build_lock("build"):
                order.append("second in")

        with warehouse_build_lock("build"):
            order.append("first in")
            other = threading.Thread(target=second_build)
            other.start()
            entered.wait(10)
            time.sleep(1.0)  # the second build is waiting on the lock meanwhile
            assert order == ["first in"]
            order.append("first out")
        other.join(30)
        assert order == ["first in", "first out", "second in"]
        # a read-only command (dbt test, show) takes no lock: it runs beside a build
        with warehouse_build_lock("build"), warehouse_build_lock("test"):
            order.append("test beside a build")
        assert order[-1] == "test beside a build"
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.mark.postgres
def test_on_postgresql_segment_evaluations_hold_the_build_lock_shared(
    pg_database_factory, tmp_path: Path, deployment
) -> None:
    """A segment evaluation never sees a half-swapped model: it holds the build lock shared, so
    readers run beside each other, a build waits for them, and they wait for a build."""
    import threading
    import time

    from herald.config.segments import SegmentConfig
    from herald.segments import evaluate_segment
    from herald.settings import parse_warehouse_url
    from herald.warehouse.build_lock import models_stable
    from herald.warehouse.connection import Warehouse
    from resources.dbt import warehouse_build_lock

    target = parse_warehouse_url(pg_database_factory(), tmp_path)
    warehouse = Warehouse(target)
    saved = dict(os.environ)
    os.environ.update(target.dbt_env())
    order: list[str] = []

    def in_thread(name: str, body) -> threading.Thread:
        def run() -> None:
            try:
                body()
            except Exception as exc:  # the segment's query has no marts here: only the order matters
                order.append(f"{name} ({type(exc).__name__})")

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    try:
        with models_stable(warehouse), models_stable(warehouse):
            order.append("two readers at once")
        # a build waits for a segment evaluation in progress
        with models_stable(warehouse):

            def build_models() -> None:
                with warehouse_build_lock("build"):
                    order.append("build in")

            build = in_thread("build", build_models)
            time.sleep(1.0)
            assert order == ["two readers at once"]
            order.append("reader out")
        build.join(30)
        assert order == ["two readers at once", "reader out", "build in"]
    finally:
        os.environ.clear()
        os.environ.update(saved)

    os.environ.update(target.dbt_env())
    try:
        # a segment evaluation waits for a build in progress (the set-up of its views included)
        client = deployment.clients["lakeside_realty"]
        segment = SegmentConfig(name="adhoc", type="manual", members=["LS-1001"])
        order.clear()
        with warehouse_build_lock("build"):
            reader = in_thread("segment evaluated", lambda: evaluate_segment(warehouse, client, segment))
            time.sleep(1.0)
            assert order == []
            order.append("build out")
        reader.join(30)
        assert order[0] == "build out" and order[1].startswith("segment evaluated")
    finally:
        os.environ.clear()
        os.environ.update(saved)
