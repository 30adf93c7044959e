"""Contract tests for orchestration.tick (one daemon iteration + in-process runs).

They pin the behaviour that the tick engine borrows from Dagster internals (see the import
block of orchestration/tick.py): run them before any Dagster upgrade.

Most tests call ``run_tick`` in the pytest process (~0.3-1 s per tick); only properties that
need separate processes (cursor across processes, concurrent ticks, killed or interrupted
ticks) start ``python -m orchestration.tick`` (~5 s each, mostly importing Dagster).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster._core.instance.ref import InstanceRef
from dagster._core.scheduler.instigation import InstigatorType, TickStatus
from dagster._core.test_utils import freeze_time
from dagster._daemon.types import DaemonHeartbeat
from dagster._time import get_current_timestamp

from orchestration import tick as tick_module
from orchestration.tick import DaemonRunningError, TickReport, TickRunResult, run_tick

REPO = Path(__file__).resolve().parents[2]
PROJECT = REPO / "tests" / "fixtures" / "tick_project"
WORKSPACE = PROJECT / "workspace.yaml"
SUBPROCESS_TIMEOUT = 60
SCHEDULED_TIME_TAG = ".dagster/scheduled_execution_time"

# Dagster 1.13 warns about its own use of a deprecated ScheduleDefinition property whenever it
# snapshots a schedule; nothing in the fixture sets it.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Property `ScheduleDefinition.environment_vars` is deprecated:DeprecationWarning"
)


# --- fixtures and helpers --------------------------------------------------------------------


@dataclass
class Env:
    home: Path
    folder: Path
    duckdb: Path
    tmp: Path


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT / "dagster.yaml", home / "dagster.yaml")
    folder = tmp_path / "drop"
    folder.mkdir()
    result = Env(home=home, folder=folder, duckdb=tmp_path / "warehouse.duckdb", tmp=tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("TICK_FIXTURE_FOLDER", str(folder))
    monkeypatch.setenv("TICK_FIXTURE_DUCKDB", str(result.duckdb))
    monkeypatch.delenv("TICK_FIXTURE_SLEEP", raising=False)
    return result


@pytest.fixture
def instance(env: Env) -> Iterator[dg.DagsterInstance]:
    """A plain instance on the test home (no tick overrides), for assertions."""
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(env.home))) as inst:
        yield inst


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen]]:
    """Every CLI tick started by a test; killed and collected at teardown, whatever happened."""
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def drop(env: Env, name: str, lines: int = 2) -> None:
    """Write a file atomically (the sensor only globs ``*.csv``)."""
    tmp = env.folder / f".{name}.partial"
    tmp.write_text("".join(f"{name}-{i}\n" for i in range(lines)))
    tmp.rename(env.folder / name)


def tick(env: Env, **kwargs: object) -> TickReport:
    return run_tick(WORKSPACE, env.home, **kwargs)  # type: ignore[arg-type]


def start_cli_tick(
    env: Env, processes: list[subprocess.Popen], label: str, *, sleep: float | None = None
) -> subprocess.Popen:
    child_env = {**os.environ}
    if sleep is not None:
        child_env["TICK_FIXTURE_SLEEP"] = str(sleep)
    # the child keeps its own copies of the descriptors
    with open(env.tmp / f"{label}.stdout", "w") as out, open(env.tmp / f"{label}.stderr", "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestration.tick", "-w", str(WORKSPACE), "--force"],
            cwd=REPO,
            env=child_env,
            stdout=out,
            stderr=err,
        )
    processes.append(proc)
    proc.label = label  # type: ignore[attr-defined]
    return proc


def finish_cli_tick(env: Env, proc: subprocess.Popen) -> tuple[int, dict]:
    rc = proc.wait(timeout=SUBPROCESS_TIMEOUT)
    label = proc.label  # type: ignore[attr-defined]
    stdout = (env.tmp / f"{label}.stdout").read_text().strip().splitlines()
    assert stdout, (env.tmp / f"{label}.stderr").read_text()[-3000:]
    return rc, json.loads(stdout[-1])


def wait_until(predicate: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def runs_by_key(instance: dg.DagsterInstance) -> dict[str, list[dg.DagsterRun]]:
    result: dict[str, list[dg.DagsterRun]] = {}
    for run in instance.get_runs():
        result.setdefault(run.tags.get("dagster/run_key", "<none>"), []).append(run)
    return result


def sensor_state(instance: dg.DagsterInstance):
    [state] = instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
    return state


def sensor_cursor(instance: dg.DagsterInstance) -> list[str]:
    return json.loads(sensor_state(instance).instigator_data.cursor)


def sensor_ticks(instance: dg.DagsterInstance) -> list:
    state = sensor_state(instance)
    return sorted(instance.get_ticks(state.instigator_origin_id, state.selector_id), key=lambda t: t.tick_id)


def duckdb_rows(env: Env, query: str) -> list[tuple]:
    with duckdb.connect(str(env.duckdb), read_only=True) as con:
        return con.execute(query).fetchall()


def pool_info(instance: dg.DagsterInstance):
    return instance.event_log_storage.get_concurrency_info("duckdb")


def assert_sensor_run(result: TickRunResult, file_name: str) -> None:
    assert result.status == "SUCCESS"
    assert result.job_name == "raw_file_job"
    assert result.partition == file_name
    assert result.tags["dagster/sensor_name"] == "file_sensor"
    assert result.tags["dagster/run_key"] == file_name
    assert result.tags["dagster/partition"] == file_name
    assert result.tags["dagster/code_location"] == "tick_fixture"
    assert "dagster/tick" in result.tags


# --- sensor semantics ------------------------------------------------------------------------


def test_repeated_ticks_do_not_duplicate_runs(env: Env, instance: dg.DagsterInstance) -> None:
    drop(env, "f1.csv")
    drop(env, "f2.csv")
    first = tick(env, force=True)
    assert first.ok, first.errors
    assert sorted(r.partition for r in first.runs) == ["f1.csv", "f2.csv"]
    for result in first.runs:
        assert_sensor_run(result, result.partition)
    [sensor_tick] = first.ticks
    assert sensor_tick["status"] == "SUCCESS"
    assert sorted(sensor_tick["run_keys"]) == ["f1.csv", "f2.csv"]

    # Without force the daemon's minimum_interval_seconds (30 s) holds: no evaluation, no tick row.
    unforced = tick(env)
    assert unforced.ok and unforced.runs == [] and unforced.ticks == []

    for _ in range(3):
        again = tick(env, force=True)
        assert again.ok and again.runs == []
        [skipped] = again.ticks
        assert (skipped["status"], skipped["skip_reason"]) == ("SKIPPED", "no new files")

    # Drop the cursor the way `dagster sensor cursor --delete` does: the sensor re-requests both
    # files and the daemon's run-key dedupe (not the cursor) keeps it at one run per key.
    state = sensor_state(instance)
    instance.update_instigator_state(state.with_data(state.instigator_data._replace(cursor=None)))
    replay = tick(env, force=True)
    assert replay.ok and replay.runs == []
    [replayed] = replay.ticks
    assert replayed["status"] == "SKIPPED"
    assert sorted(replayed["run_keys"]) == ["f1.csv", "f2.csv"]

    by_key = runs_by_key(instance)
    assert sorted(by_key) == ["f1.csv", "f2.csv"]
    assert [[run.status for run in runs] for runs in by_key.values()] == [[dg.DagsterRunStatus.SUCCESS]] * 2
    statuses = [t.status for t in sensor_ticks(instance)]
    assert statuses == [TickStatus.SUCCESS] + [TickStatus.SKIPPED] * 4


def test_new_file_produces_exactly_one_run(env: Env, instance: dg.DagsterInstance) -> None:
    drop(env, "f1.csv", lines=2)
    assert len(tick(env, force=True).runs) == 1

    drop(env, "f2.csv", lines=3)
    started: list[tuple[str, str]] = []
    ended: list[TickRunResult] = []
    report = tick(
        env,
        force=True,
        on_run_start=lambda rid, job: started.append((rid, job)),
        on_run_end=ended.append,
    )

    assert report.ok, report.errors
    [result] = report.runs
    assert_sensor_run(result, "f2.csv")
    assert started == [(result.run_id, "raw_file_job")]
    assert ended == [result]
    assert report.reaped == [] and report.adopted == [] and report.pool_repairs == []
    phases = {"instance", "workspace", "lock_wait", "evaluate", "execute", "total"}
    assert phases <= set(report.timings)

    assert len(instance.get_runs()) == 2
    assert sensor_cursor(instance) == ["f1.csv", "f2.csv"]
    assert sorted(instance.get_dynamic_partitions("files")) == ["f1.csv", "f2.csv"]
    assert duckdb_rows(env, "select file, count(*) from raw group by file order by file") == [
        ("f1.csv", 2),
        ("f2.csv", 3),
    ]


def test_cursor_survives_between_processes(
    env: Env, instance: dg.DagsterInstance, processes: list[subprocess.Popen]
) -> None:
    drop(env, "f1.csv")
    rc, first = finish_cli_tick(env, start_cli_tick(env, processes, "first"))
    assert rc == 0 and [r["partition"] for r in first["runs"]] == ["f1.csv"]
    assert sensor_cursor(instance) == ["f1.csv"]

    drop(env, "f2.csv")
    rc, second = finish_cli_tick(env, start_cli_tick(env, processes, "second"))
    assert rc == 0, second
    # The second process read the first one's cursor: only the new file was requested.
    assert [r["partition"] for r in second["runs"]] == ["f2.csv"]
    assert [t["cursor"] for t in second["ticks"]] == [json.dumps(["f1.csv", "f2.csv"])]
    assert sensor_cursor(instance) == ["f1.csv", "f2.csv"]
    assert {k: len(v) for k, v in runs_by_key(instance).items()} == {"f1.csv": 1, "f2.csv": 1}

    # ...and the cursor written by the subprocess is what this process sees next.
    third = tick(env, force=True)
    assert third.runs == [] and third.ticks[0]["skip_reason"] == "no new files"


def test_refuses_while_daemon_heartbeat_is_fresh(env: Env, instance: dg.DagsterInstance) -> None:
    now = get_current_timestamp()
    instance.add_daemon_heartbeat(DaemonHeartbeat(now - 5, "SENSOR", "live-daemon", []))
    drop(env, "f1.csv")

    with pytest.raises(DaemonRunningError, match="SENSOR") as refused:
        tick(env, force=True)
    # what the user can do, not a Python parameter
    assert "allow_running_daemon" not in str(refused.value)
    assert "Stop it (the `herald dev` or `dagster-daemon` using this DAGSTER_HOME)" in str(refused.value)
    assert str(env.home) in str(refused.value)
    assert instance.get_runs() == []
    assert instance.all_instigator_state() == []  # nothing was evaluated

    overridden = tick(env, force=True, allow_running_daemon=True)
    assert [r.partition for r in overridden.runs] == ["f1.csv"]

    # A stale heartbeat (daemon stopped more than 75 s ago) no longer blocks ticks.
    instance.add_daemon_heartbeat(DaemonHeartbeat(now - 80, "SENSOR", "dead-daemon", []))
    instance.add_daemon_heartbeat(DaemonHeartbeat(now - 80, "SCHEDULER", "dead-daemon", []))
    drop(env, "f2.csv")
    assert [r.partition for r in tick(env, force=True).runs] == ["f2.csv"]

    instance.add_daemon_heartbeat(DaemonHeartbeat(get_current_timestamp(), "SCHEDULER", "live", []))
    with pytest.raises(DaemonRunningError, match="SCHEDULER"):
        tick(env, force=True)


def test_a_failed_run_reports_the_first_line_of_its_error(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    drop(env, "good.csv")
    [succeeded] = tick(env, force=True).runs
    assert (succeeded.status, succeeded.error) == ("SUCCESS", None)

    monkeypatch.setenv("TICK_FIXTURE_FAIL", "bad.csv is not a packet\nsecond line of detail")
    drop(env, "bad.csv")
    ended: list[TickRunResult] = []
    report = tick(env, force=True, on_run_end=ended.append)
    [failed] = report.runs
    assert failed.status == "FAILURE" and not report.ok
    assert failed.error == "raw_file: ValueError: bad.csv is not a packet"
    assert ended == [failed]  # what `herald tick` prints after the status
    assert json.loads(report.to_json())["runs"][0]["error"] == failed.error


@pytest.mark.filterwarnings("ignore:Error loading repository location broken:UserWarning")
def test_location_load_error_fails_fast(env: Env, instance: dg.DagsterInstance) -> None:
    broken = env.tmp / "broken_project"
    broken.mkdir()
    (broken / "broken_defs.py").write_text("raise RuntimeError('boom at import')\n")
    workspace = broken / "workspace.yaml"
    good_file = PROJECT / "tick_fixture_defs.py"
    workspace.write_text(
        "load_from:\n"
        f"  - python_file: {{relative_path: {good_file}, location_name: tick_fixture}}\n"
        "  - python_file: {relative_path: broken_defs.py, location_name: broken}\n"
    )
    drop(env, "f1.csv")
    report = run_tick(workspace, env.home, force=True)
    assert not report.ok
    [error] = report.errors
    assert "location broken" in error and "boom at import" in error
    # Nothing evaluated: a partial workspace would make the scheduler drop other locations' state.
    assert report.ticks == [] and report.runs == [] and instance.get_runs() == []


# --- schedule semantics ----------------------------------------------------------------------


def test_schedule_fires_once_per_occurrence_across_dst_fall_back(env: Env, instance: dg.DagsterInstance) -> None:
    def schedule_runs() -> list[dg.DagsterRun]:
        tags = {"dagster/schedule_name": "nightly_summary"}
        return instance.get_runs(filters=dg.RunsFilter(tags=tags))

    # 2025-11-02 is the America/Chicago fall-back day: 01:30 local happens at 06:30Z (CDT)
    # and again at 07:30Z (CST). Tick every 15 minutes from 00:00 CDT to 03:00 CST.
    start = datetime(2025, 11, 2, 5, 0, tzinfo=UTC)
    for step in range(17):
        with freeze_time(start + timedelta(minutes=15 * step)):
            report = tick(env)
        assert report.ok, report.errors
    [run] = schedule_runs()
    # Dagster runs the ambiguous time once, at its second (standard time) occurrence.
    assert run.tags[SCHEDULED_TIME_TAG].startswith("2025-11-02T07:30:00")
    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert "dagster/run_key" not in run.tags  # schedules dedupe on name + scheduled time, not a run key

    # Re-ticking the same instant adds nothing.
    with freeze_time(start + timedelta(hours=4)):
        assert tick(env).runs == []

    # The next day fires once, at 01:30 CST = 07:30Z.
    for minute in (40, 50):
        with freeze_time(datetime(2025, 11, 3, 7, minute, tzinfo=UTC)):
            tick(env)
    # After three missed days a non-partitioned schedule fires only the latest occurrence.
    with freeze_time(datetime(2025, 11, 7, 8, 0, tzinfo=UTC)):
        late = tick(env)
    assert [r.job_name for r in late.runs] == ["summary_job"]

    times = sorted(r.tags[SCHEDULED_TIME_TAG][:19] for r in schedule_runs())
    assert times == ["2025-11-02T07:30:00", "2025-11-03T07:30:00", "2025-11-07T07:30:00"]
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in schedule_runs())
    assert duckdb_rows(env, "select count(*) from summary") == [(3,)]


# --- concurrency -----------------------------------------------------------------------------


def test_two_concurrent_ticks_same_files(env: Env, processes: list[subprocess.Popen]) -> None:
    names = [f"c{i}.csv" for i in range(4)]
    for name in names:
        drop(env, name, lines=3)
    # Both start on a fresh DAGSTER_HOME (exercises .tick.init.lock too) on the same 4 files.
    procs = [start_cli_tick(env, processes, label) for label in ("a", "b")]
    outcomes = [finish_cli_tick(env, proc) for proc in procs]

    assert [rc for rc, _ in outcomes] == [0, 0], outcomes
    executed = [run for _, report in outcomes for run in report["runs"]]
    assert sorted(run["partition"] for run in executed) == names
    assert {run["status"] for run in executed} == {"SUCCESS"}
    tick_statuses = sorted(t["status"] for _, report in outcomes for t in report["ticks"])
    assert tick_statuses == ["SKIPPED", "SUCCESS"]  # the second evaluation saw the first's cursor

    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(env.home))) as inst:
        by_key = runs_by_key(inst)
        assert sorted(by_key) == names
        assert all(len(runs) == 1 for runs in by_key.values())
        assert all(runs[0].status == dg.DagsterRunStatus.SUCCESS for runs in by_key.values())
        assert sensor_cursor(inst) == names
    assert duckdb_rows(env, "select count(*), count(distinct file) from raw") == [(12, 4)]
    for label in ("a", "b"):
        assert "database is locked" not in (env.tmp / f"{label}.stderr").read_text()


def test_concurrent_ticks_duckdb_writes_serialized_by_pool(
    env: Env,
    instance: dg.DagsterInstance,
    processes: list[subprocess.Popen],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for i in range(3):
        drop(env, f"a{i}.csv")
    # Tick A (a separate process) holds the DuckDB connection 2 s per run.
    tick_a = start_cli_tick(env, processes, "a", sleep=2)
    wait_until(
        lambda: instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])),
        SUBPROCESS_TIMEOUT,
        "tick A to start its first run",
    )
    # Tick B (this process) starts while A is executing, with writes that also take 2 s.
    drop(env, "b0.csv")
    drop(env, "b1.csv")
    monkeypatch.setenv("TICK_FIXTURE_SLEEP", "2")
    report_b = tick(env, force=True)
    rc_a, report_a = finish_cli_tick(env, tick_a)

    assert rc_a == 0 and report_b.ok, (report_a, report_b.errors)
    assert sorted(r["partition"] for r in report_a["runs"]) == ["a0.csv", "a1.csv", "a2.csv"]
    assert sorted(r.partition for r in report_b.runs) == ["b0.csv", "b1.csv"]
    assert all(r["status"] == "SUCCESS" for r in report_a["runs"])  # no DuckDB lock error

    # The runs of the two ticks overlapped in time...
    records = {r.dagster_run.tags["dagster/partition"]: r for r in instance.get_run_records()}
    b_first_start = min(records[p].start_time for p in ("b0.csv", "b1.csv"))
    a_last_end = max(records[p].end_time for p in ("a0.csv", "a1.csv", "a2.csv"))
    assert b_first_start < a_last_end
    # ...but the DuckDB write spans never did: the pool let one writer in at a time.
    spans = duckdb_rows(env, "select file, pid, started, finished from writes order by started")
    assert len(spans) == 5
    assert {pid for _, pid, _, _ in spans} == {tick_a.pid, os.getpid()}
    for (_, _, _, finished), (_, _, next_started, _) in itertools.pairwise(spans):
        assert finished <= next_started
    blocked = [
        record
        for record in records.values()
        for event in instance.all_logs(record.dagster_run.run_id)
        if "blocked by limit for pool duckdb" in (event.user_message or "")
    ]
    assert blocked, "some step should have waited for the duckdb pool"


# --- crash safety ----------------------------------------------------------------------------


def test_killed_tick_orphan_is_reaped_by_next_tick(
    env: Env, instance: dg.DagsterInstance, processes: list[subprocess.Popen]
) -> None:
    drop(env, "k1.csv")
    victim = start_cli_tick(env, processes, "victim", sleep=120)

    def claimed_run_ids() -> set[str]:
        return {slot.run_id for slot in pool_info(instance).claimed_slots}

    [orphan] = wait_until(
        lambda: instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])),
        SUBPROCESS_TIMEOUT,
        "the victim's run to start",
    )
    wait_until(lambda: orphan.run_id in claimed_run_ids(), 30, "the victim to hold the pool slot")
    victim.kill()  # SIGKILL: no cleanup at all, like an OOM kill
    victim.wait(timeout=30)
    assert instance.get_run_by_id(orphan.run_id).status == dg.DagsterRunStatus.STARTED

    drop(env, "k2.csv")
    report = tick(env, force=True)

    assert report.reaped == [orphan.run_id]
    assert instance.get_run_by_id(orphan.run_id).status == dg.DagsterRunStatus.FAILURE
    # The slot was freed, so the new file's DuckDB run could execute.
    [fresh] = report.runs
    assert fresh.partition == "k2.csv" and fresh.status == "SUCCESS"
    assert claimed_run_ids() == set() and pool_info(instance).pending_steps == []
    # The failed key keeps its run key (daemon semantics): it is not re-requested.
    assert {k: len(v) for k, v in runs_by_key(instance).items()} == {"k1.csv": 1, "k2.csv": 1}
    assert tick(env, force=True).reaped == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_tick_leaves_remaining_runs_for_next_tick(
    env: Env, instance: dg.DagsterInstance, processes: list[subprocess.Popen], signum: int
) -> None:
    drop(env, "i1.csv")
    drop(env, "i2.csv")
    proc = start_cli_tick(env, processes, "interrupted", sleep=60)
    [first] = wait_until(
        lambda: instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])),
        SUBPROCESS_TIMEOUT,
        "the first run to start",
    )
    wait_until(
        lambda: first.run_id in {s.run_id for s in pool_info(instance).claimed_slots},
        30,
        "the first run's step to hold the pool slot",
    )
    sent = time.monotonic()
    proc.send_signal(signum)
    rc, report = finish_cli_tick(env, proc)

    assert rc == 130
    assert time.monotonic() - sent < 10
    [interrupted] = report["runs"]
    assert interrupted["run_id"] == first.run_id and interrupted["status"] == "FAILURE"
    assert interrupted["tags"]["dagster/failure_reason"] == "UNEXPECTED_TERMINATION"
    [waiting] = [r for r in instance.get_runs() if r.run_id != first.run_id]
    assert waiting.status == dg.DagsterRunStatus.STARTING  # left for the next tick
    assert pool_info(instance).claimed_slots == []

    resumed = tick(env)
    assert resumed.adopted == [waiting.run_id]
    assert [(r.run_id, r.status) for r in resumed.runs] == [(waiting.run_id, "SUCCESS")]
    assert {k: len(v) for k, v in runs_by_key(instance).items()} == {"i1.csv": 1, "i2.csv": 1}


def test_pool_lost_wakeup_repaired_by_watchdog(env: Env, instance: dg.DagsterInstance) -> None:
    drop(env, "w1.csv")
    assert tick(env, force=True).ok  # creates the duckdb pool (limit 1, one free slot)
    assert pool_info(instance).slot_count == 1

    storage = instance.event_log_storage
    safety_net = threading.Timer(30, storage.assign_pending_steps, args=[["duckdb"]])

    def lose_the_wakeup(run_id: str, job_name: str) -> None:
        # The state Dagster's claim race leaves behind: a free slot and an unassigned pending
        # step for this run's step. Without a repair the step waits forever.
        storage.add_pending_step("duckdb", run_id, "raw_file", priority=0, should_assign=False)
        safety_net.start()  # only so a broken watchdog fails this test instead of hanging it

    drop(env, "w2.csv")
    try:
        report = tick(env, force=True, on_run_start=lose_the_wakeup)
    finally:
        safety_net.cancel()

    [result] = report.runs
    assert result.status == "SUCCESS" and result.partition == "w2.csv"
    assert report.pool_repairs == ["duckdb"]
    assert result.seconds < 10


def test_pool_busy_wait_fix_makes_blocked_steps_sleep(instance: dg.DagsterInstance) -> None:
    from dagster._core.execution.plan.instance_concurrency_context import (
        InstanceConcurrencyContext,
    )

    context = InstanceConcurrencyContext(instance, dg.DagsterRun(job_name="job", run_id="run-1"))
    context._pending_claims.add("step")
    context._pending_timeouts["step"] = time.time() + 5  # next slot check is due in 5 s
    # Upstream (still in 1.13.27) never sleeps: min([0, ...]) <= 0. Delete the fix once this fails.
    assert context.interval_to_next_pending_claim_check() <= 0
    with tick_module._claim_interval_fixed():
        assert 4 < context.interval_to_next_pending_claim_check() <= 5
    assert context.interval_to_next_pending_claim_check() <= 0  # patch removed after the tick


def test_reaper_only_claims_runs_of_dead_tick_processes() -> None:
    parse, is_orphan = tick_module._parse_owner, tick_module._is_orphan
    host = tick_module._HOST
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    dead = finished.pid

    assert is_orphan(parse(f"{host}|{dead}|run-1"), "run-1")
    # UI re-execution copies the owner tag to the child run: the run id no longer matches.
    assert not is_orphan(parse(f"{host}|{dead}|run-1"), "child-of-run-1")
    assert not is_orphan(parse(f"{host}|1|run-1"), "run-1")  # owner alive
    assert not is_orphan(parse(f"another-host|{dead}|run-1"), "run-1")  # cannot check: leave it
    assert not is_orphan(parse(None), "run-1") and parse("garbage") is None
    # This very process owns it: orphan only if no call here is still executing it.
    mine = parse(f"{host}|{os.getpid()}|run-2")
    assert is_orphan(mine, "run-2")
    tick_module._IN_FLIGHT.add("run-2")
    try:
        assert not is_orphan(mine, "run-2")
    finally:
        tick_module._IN_FLIGHT.discard("run-2")
