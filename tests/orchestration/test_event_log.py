"""The embedded instance's event log (orchestration/event_log.py): Dagster's SQLite event log
with one kept connection per file. Events read back as Dagster's own; each write lands in the
run's .db file itself (Dagster's file watcher, the UI's live logs, looks at that file); the kept
connections are bounded; deleting a run's events and wiping work with connections open."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.events import DagsterEvent, DagsterEventType, EngineEventData
from dagster._core.events.log import EventLogEntry
from dagster._core.instance.ref import InstanceRef

from orchestration.event_log import ENGINES_KEPT, PooledSqliteEventLogStorage
from orchestration.instance import EARLIER_DAGSTER_YAML, embedded_dagster_yaml, ensure_dagster_home


@pytest.fixture
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dg.DagsterInstance]:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))  # put back after: ensure_dagster_home sets it
    ensure_dagster_home(tmp_path / "dagster")
    with dg.DagsterInstance.get() as instance:
        yield instance


def engine_event(run_id: str, message: str) -> EventLogEntry:
    return EventLogEntry(
        error_info=None, level=20, user_message=message, run_id=run_id, timestamp=time.time(), step_key=None,
        job_name="job", dagster_event=DagsterEvent(DagsterEventType.ENGINE_EVENT.value, "job", message=message,
                                                   event_specific_data=EngineEventData()),
    )  # fmt: skip


def rows_in_db_file(path: str) -> int:
    # immutable=1 reads the database file alone, never its write-ahead log
    with sqlite3.connect(f"file:{path}?immutable=1", uri=True) as conn:
        return conn.execute("select count(*) from event_logs").fetchone()[0]


def test_the_embedded_instance_uses_it_and_each_event_is_in_the_runs_db_file(instance: dg.DagsterInstance) -> None:
    storage = instance.event_log_storage
    assert isinstance(storage, PooledSqliteEventLogStorage)
    for n in range(1, 4):
        storage.store_event(engine_event("run-1", f"event {n}"))
        assert rows_in_db_file(storage.path_for_shard("run-1")) == n
    assert [e.user_message for e in storage.get_logs_for_run("run-1")] == ["event 1", "event 2", "event 3"]


def test_kept_connections_are_bounded_and_runs_can_be_deleted_and_wiped(instance: dg.DagsterInstance) -> None:
    storage = instance.event_log_storage
    for n in range(ENGINES_KEPT + 4):
        storage.store_event(engine_event(f"run-{n}", "hello"))
    assert len(storage._engines) == ENGINES_KEPT
    last = f"run-{ENGINES_KEPT + 3}"
    storage.delete_events(last)
    assert storage.get_logs_for_run(last) == []
    assert len(storage.get_logs_for_run("run-0")) == 1
    storage.wipe()
    assert storage.get_logs_for_run("run-0") == []
    storage.store_event(engine_event("run-0", "after the wipe"))
    assert [e.user_message for e in storage.get_logs_for_run("run-0")] == ["after the wipe"]
    # written to a new file, not to the one the wipe deleted under an open connection
    assert rows_in_db_file(storage.path_for_shard("run-0")) == 1


def test_earlier_and_moved_homes_get_the_current_dagster_yaml_and_an_edited_one_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    earlier, moved, edited = tmp_path / "earlier", tmp_path / "moved", tmp_path / "edited"
    for home, text in (
        (earlier, EARLIER_DAGSTER_YAML),
        (moved, embedded_dagster_yaml(tmp_path / "elsewhere")),
        (edited, EARLIER_DAGSTER_YAML + "retention: {}\n"),
    ):
        home.mkdir()
        (home / "dagster.yaml").write_text(text)
        ensure_dagster_home(home)
    for home in (earlier, moved):
        assert (home / "dagster.yaml").read_text() == embedded_dagster_yaml(home)
        assert f'base_dir: "{home / "history" / "runs"}"' in (home / "dagster.yaml").read_text()
    assert (edited / "dagster.yaml").read_text() == EARLIER_DAGSTER_YAML + "retention: {}\n"


def test_the_instance_opens_from_its_folder_without_dagster_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # as a test or a tool opens a home another process made (InstanceRef.from_dir)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    ensure_dagster_home(tmp_path / "dagster")
    monkeypatch.delenv("DAGSTER_HOME")
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(tmp_path / "dagster"))) as instance:
        instance.event_log_storage.store_event(engine_event("run-1", "hello"))
        assert (tmp_path / "dagster" / "history" / "runs" / "run-1.db").exists()
