"""`tick`: one synchronous iteration of Dagster's sensor and scheduler daemons, then the runs.

What a tick does (docs/tick.md explains how this matches the daemon, and its pitfalls):

Phase 0, no lock: open ``$DAGSTER_HOME`` with a tick-only run coordinator/launcher override
(``dagster.yaml`` stays as ``dagster dev`` needs it) and load the same ``workspace.yaml`` as
``dagster dev``, in-process.

Phase 1, under the inter-process lock ``$DAGSTER_HOME/.tick.lock``:
  1. refuse while a sensor/scheduler daemon heartbeat is fresh (the lock cannot cover a
     daemon, which would evaluate the same sensors and launch the same runs beside us);
  2. reap runs of dead tick processes (STARTED -> FAILURE, slots freed) and adopt their
     never-started runs (STARTING);
  3. run the daemons' own sensor and scheduler iteration functions. They persist cursors,
     tick rows, schedule state and dynamic partitions, dedupe run keys and resume crashed
     ticks exactly like the daemon. Launching a run only records it (CapturingRunLauncher).

Phase 2, no lock: execute the adopted and captured runs in-process, one after the other, on
the run records the daemon code created, with two local fixes for Dagster pool waits.

Single host by design: the fcntl lock and the pid-based reaper assume one machine.
This module is generic: it must not import the project's own packages.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
import unittest.mock
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

# --- Dagster internals --------------------------------------------------------------------
# Pinned to dagster==1.13.27. These are private APIs (no public API persists a sensor cursor,
# schedule state or tick row the way the daemon reads them back). Their signatures have churned
# between minor versions: tests/integration/test_tick.py is the upgrade contract; run it before
# bumping Dagster and keep every internal import in this block.
from dagster._core.execution.api import execute_run
from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext
from dagster._core.instance.ref import InstanceRef
from dagster._core.launcher import LaunchRunContext, RunLauncher
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load import location_origins_from_yaml_paths
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon import sensor as _sensor_daemon
from dagster._scheduler.scheduler import launch_scheduled_runs
from dagster._serdes import ConfigurableClass, ConfigurableClassData
from dagster._time import get_current_datetime, get_current_timestamp
from dagster._utils.error import SerializableErrorInfo
from dagster._utils.hosted_user_process import recon_job_from_origin

# ---------------------------------------------------------------------------------------------

__all__ = [
    "CapturingRunLauncher",
    "DaemonRunningError",
    "TickInterrupted",
    "TickReport",
    "TickRunResult",
    "main",
    "run_tick",
]

log = logging.getLogger(__name__)

OWNER_TAG = "tick/owner"
LOCK_FILE = ".tick.lock"
INIT_LOCK_FILE = ".tick.init.lock"
# The daemon heartbeats every ~30 s; Dagster itself treats a daemon as healthy for 60 s.
HEARTBEAT_FRESH_SECONDS = 75.0
GUARDED_DAEMON_TYPES = ("SENSOR", "SCHEDULER")
# Dagster marks a run whose process got SIGINT/SIGTERM during execution with this reason.
INTERRUPTED_FAILURE_REASON = "UNEXPECTED_TERMINATION"
FAILURE_REASON_TAG = "dagster/failure_reason"
PARTITION_TAG = "dagster/partition"
TICKS_PER_INSTIGATOR_TO_SCAN = 25
WATCHDOG_INTERVAL_SECONDS = 0.5

_HOST = socket.gethostname()
# Run ids this process has launched or adopted and not yet finished executing. A run owned by
# this very pid but missing here was abandoned by an earlier call (e.g. interrupted) in a
# long-lived caller, so the reaper may adopt it.
_IN_FLIGHT: set[str] = set()
_IN_FLIGHT_LOCK = threading.Lock()


# --- public result types ---------------------------------------------------------------------


@dataclass
class TickRunResult:
    run_id: str
    job_name: str
    status: str
    seconds: float
    tags: dict[str, str]
    partition: str | None
    # a failed run: the first line of what failed it, prefixed with the step ("packet_rows:
    # ValueError: ..."); None when the run succeeded
    error: str | None = None


@dataclass
class TickReport:
    ticks: list[dict] = field(default_factory=list)
    runs: list[TickRunResult] = field(default_factory=list)
    reaped: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    pool_repairs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """No iteration/load error and every executed run succeeded."""
        return not self.errors and all(run.status == dg.DagsterRunStatus.SUCCESS.value for run in self.runs)

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "ok": self.ok}, default=str)


class DaemonRunningError(RuntimeError):
    """A sensor or scheduler daemon heartbeat is fresh: a tick would race the live daemon."""


class TickInterrupted(KeyboardInterrupt):
    """SIGINT/SIGTERM stopped the tick. Runs not executed yet stay STARTING for the next tick.

    A KeyboardInterrupt subclass so that generic ``except Exception`` handlers do not swallow it.
    """

    def __init__(self, report: TickReport) -> None:
        super().__init__("tick interrupted; remaining runs are left for the next tick")
        self.report = report


# --- the capturing launcher ------------------------------------------------------------------


class CapturingRunLauncher(RunLauncher, ConfigurableClass):
    """Run launcher used only inside the tick process: records runs instead of starting them.

    ``DagsterInstance.launch_run`` writes RUN_STARTING *before* calling the launcher, so by the
    time a run id lands here the daemon's run-key dedupe (status != NOT_STARTED) protects it.
    The owner tag lets a later tick find runs whose process died (reaper/adopter). It embeds the
    run id because UI re-execution copies every tag to the child run: a copied tag names another
    run id, so the reaper can tell it was not launched by a tick.
    """

    def __init__(self, inst_data: ConfigurableClassData | None = None) -> None:
        self._inst_data = inst_data
        self.captured: list[str] = []
        super().__init__()

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls) -> dict:
        return {}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]
    ) -> CapturingRunLauncher:
        return cls(inst_data=inst_data)

    def launch_run(self, context: LaunchRunContext) -> None:
        run_id = context.dagster_run.run_id
        with _IN_FLIGHT_LOCK:
            _IN_FLIGHT.add(run_id)
        self._instance.add_run_tags(run_id, {OWNER_TAG: _owner_value(run_id)})
        self.captured.append(run_id)

    def terminate(self, run_id: str) -> bool:
        # Runs execute inside the tick process itself; there is no separate worker to stop.
        return False


# --- entry point -----------------------------------------------------------------------------


def run_tick(
    workspace_yaml: Path,
    dagster_home: Path,
    *,
    force: bool = False,
    allow_running_daemon: bool = False,
    on_run_start: Callable[[str, str], None] | None = None,
    on_run_end: Callable[[TickRunResult], None] | None = None,
) -> TickReport:
    """Run one sensor + scheduler daemon iteration against ``dagster_home``, then its runs.

    ``force`` ignores sensors' ``minimum_interval_seconds`` for this call only.
    Raises DaemonRunningError if a daemon heartbeat is fresh (unless ``allow_running_daemon``)
    and TickInterrupted on SIGINT/SIGTERM (with the partial report attached).

    User code is imported once per process and then cached by Dagster: a long-lived caller
    keeps running the code it first imported. One process per tick (the CLI) avoids it.
    """
    report = TickReport()
    started = time.monotonic()
    home = Path(dagster_home).resolve()
    try:
        with _sigterm_raises_keyboard_interrupt(), ExitStack() as stack:
            instance = _open_instance(home, stack, report.timings)
            context = _load_workspace(instance, Path(workspace_yaml).resolve(), stack, report)
            if context is None:
                return report
            to_execute = _evaluate_under_lock(instance, context, home, force, allow_running_daemon, report)
            _execute_runs(instance, to_execute, report, on_run_start, on_run_end)
    except KeyboardInterrupt as interrupt:
        if isinstance(interrupt, TickInterrupted):
            raise
        raise TickInterrupted(report) from interrupt
    finally:
        report.timings["total"] = round(time.monotonic() - started, 3)
    return report


# --- phase 0: instance and workspace ---------------------------------------------------------


def _open_instance(home: Path, stack: ExitStack, timings: dict[str, float]) -> dg.DagsterInstance:
    t0 = time.monotonic()
    # Tick-only overrides: dagster.yaml keeps the run coordinator and launcher `dagster dev`
    # needs (a queued coordinator would leave our runs waiting for a daemon that is not there).
    # DefaultRunCoordinator makes submit_run call launch_run at once.
    ref = InstanceRef.from_dir(
        str(home),
        overrides={
            "run_coordinator": {
                "module": "dagster._core.run_coordinator",
                "class": "DefaultRunCoordinator",
            },
            "run_launcher": {
                "module": CapturingRunLauncher.__module__,
                "class": CapturingRunLauncher.__name__,
            },
        },
    )
    # Concurrent first opens of a fresh sqlite home race on schema creation: serialize them.
    with _file_lock(home / INIT_LOCK_FILE):
        instance = stack.enter_context(dg.DagsterInstance.from_ref(ref))
    timings["instance"] = round(time.monotonic() - t0, 3)
    return instance


def _load_workspace(
    instance: dg.DagsterInstance, workspace_yaml: Path, stack: ExitStack, report: TickReport
) -> WorkspaceProcessContext | None:
    """Load every location of workspace.yaml in-process, keeping the yaml's location names.

    Returns None (with report.errors filled) if any location fails: the scheduler iteration
    deletes state of schedules missing from the workspace it is given, so never tick on a
    partial workspace.
    """
    t0 = time.monotonic()
    origins = []
    for origin in location_origins_from_yaml_paths([str(workspace_yaml)]):
        target = getattr(origin, "loadable_target_origin", None)
        if target is None:
            report.errors.append(
                f"location {origin.location_name}: tick loads code in-process and needs a "
                "python_file/python_module/python_package entry, not a grpc_server"
            )
            continue
        # Location names key cursors, ticks and schedule state: keep the yaml's names, or the
        # tick and `dagster dev` would keep two separate sets of them.
        origins.append(InProcessCodeLocationOrigin(loadable_target_origin=target, location_name=origin.location_name))
    if report.errors:
        return None
    context = stack.enter_context(WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget(origins)))
    for name, entry in context.create_request_context().get_code_location_entries().items():
        if entry.load_error is not None:
            report.errors.append(f"location {name} failed to load: {entry.load_error.to_string()}")
    report.timings["workspace"] = round(time.monotonic() - t0, 3)
    return None if report.errors else context


# --- phase 1: guard, reaper, daemon iterations ----------------------------------------------


def _evaluate_under_lock(
    instance: dg.DagsterInstance,
    context: WorkspaceProcessContext,
    home: Path,
    force: bool,
    allow_running_daemon: bool,
    report: TickReport,
) -> list[str]:
    """Everything that decides which runs exist happens under the lock: the daemon code reads
    existing run keys, then creates runs, so two ticks evaluating at once would both launch."""
    launcher = instance.run_launcher
    if not isinstance(launcher, CapturingRunLauncher):
        raise RuntimeError(f"tick needs its own run launcher override, got {type(launcher)}")
    t0 = time.monotonic()
    try:
        with _file_lock(home / LOCK_FILE):
            t1 = time.monotonic()
            report.timings["lock_wait"] = round(t1 - t0, 3)
            if not allow_running_daemon:
                _refuse_if_daemon_alive(instance)
            report.reaped, report.adopted = _reap_and_adopt(instance)
            before = _tick_snapshot(instance)
            report.errors.extend(_run_daemon_iterations(context, instance, force))
            report.ticks = _new_ticks(instance, before)
            report.timings["evaluate"] = round(time.monotonic() - t1, 3)
    except BaseException:
        # Nothing will execute them in this call: let a later call in this process adopt them.
        _release(report.adopted + launcher.captured)
        raise
    return report.adopted + list(launcher.captured)


def _refuse_if_daemon_alive(instance: dg.DagsterInstance) -> None:
    """The file lock does not cover a live dagster-daemon, so refuse to race it.

    Heartbeats are not wiped on shutdown: a daemon stopped less than ~75 s ago still counts.
    """
    now = get_current_timestamp()
    for daemon_type, heartbeat in instance.get_daemon_heartbeats().items():
        age = now - heartbeat.timestamp
        if daemon_type in GUARDED_DAEMON_TYPES and age < HEARTBEAT_FRESH_SECONDS:
            raise DaemonRunningError(
                f"a Dagster daemon is running on {instance.root_directory} (its {daemon_type} "
                f"heartbeat is {age:.0f} s old): it already evaluates the sensors and schedules that a "
                "tick would. Stop it (the `herald dev` or `dagster-daemon` using this DAGSTER_HOME) and "
                f"wait {HEARTBEAT_FRESH_SECONDS:.0f} s, or tick another deployment by setting HERALD_HOME "
                "to a different folder."
            )


def _run_daemon_iterations(context: WorkspaceProcessContext, instance: dg.DagsterInstance, force: bool) -> list[str]:
    """One sensor iteration and one scheduler iteration, with the daemons' own code."""
    errors = []
    with _min_interval_ignored(force):
        errors += _drain_errors(
            _sensor_daemon.execute_sensor_iteration(
                context, log, threadpool_executor=None, submit_threadpool_executor=None
            )
        )
    scheduler = instance.scheduler
    errors += _drain_errors(
        launch_scheduled_runs(
            context,
            log,
            end_datetime_utc=get_current_datetime(),
            # The daemon's in-memory cache of iteration times; empty = a freshly started daemon,
            # which falls back to the state stored in the database.
            iteration_times={},
            max_catchup_runs=getattr(scheduler, "max_catchup_runs", 5),
            max_tick_retries=getattr(scheduler, "max_tick_retries", 0),
        )
    )
    return errors


def _drain_errors(iterator: Iterable[object]) -> list[str]:
    return [item.to_string() for item in iterator if isinstance(item, SerializableErrorInfo)]


@contextmanager
def _min_interval_ignored(force: bool) -> Iterator[None]:
    if not force:
        yield
        return
    # The daemon looks this helper up as a module global, so patching the module is enough.
    with unittest.mock.patch.object(_sensor_daemon, "is_under_min_interval", lambda *a, **k: False):
        yield


def _tick_snapshot(instance: dg.DagsterInstance) -> dict[int, str]:
    return {tick.tick_id: tick.status.value for tick in _recent_ticks(instance)}


def _new_ticks(instance: dg.DagsterInstance, before: Mapping[int, str]) -> list[dict]:
    """Ticks created or changed by this iteration.

    Identified by id and status, not timestamp: a schedule tick's timestamp is the scheduled
    time, and a resumed tick keeps its id but changes status.
    """
    ticks = [tick for tick in _recent_ticks(instance) if before.get(tick.tick_id) != tick.status.value]
    return [_tick_dict(tick) for tick in sorted(ticks, key=lambda t: t.tick_id)]


def _recent_ticks(instance: dg.DagsterInstance) -> list[Any]:
    ticks = []
    for state in instance.all_instigator_state():
        ticks.extend(
            instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=TICKS_PER_INSTIGATOR_TO_SCAN)
        )
    return ticks


def _tick_dict(tick: Any) -> dict:
    return {
        "tick_id": tick.tick_id,
        "name": tick.instigator_name,
        "type": tick.instigator_type.value,
        "status": tick.status.value,
        "timestamp": tick.timestamp,
        "run_ids": list(tick.run_ids),
        "run_keys": list(tick.run_keys),
        "skip_reason": tick.skip_reason,
        "cursor": tick.cursor,
        "error": tick.error.to_string() if tick.error else None,
    }


# --- reaper / adopter: runs left behind by a tick process that died ---------------------------


@dataclass(frozen=True)
class _Owner:
    host: str
    pid: int
    run_id: str


def _owner_value(run_id: str) -> str:
    return f"{_HOST}|{os.getpid()}|{run_id}"


def _parse_owner(value: str | None) -> _Owner | None:
    if not value:
        return None
    parts = value.split("|")
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    return _Owner(host=parts[0], pid=int(parts[1]), run_id=parts[2])


def _is_orphan(owner: _Owner | None, run_id: str) -> bool:
    """True if the tick process that launched this run is gone (same host only)."""
    if owner is None or owner.run_id != run_id:
        return False  # not a tick run, or a tag copied to a UI re-execution
    if owner.host != _HOST:
        return False  # single-host design: a pid on another machine cannot be checked
    if owner.pid == os.getpid():
        with _IN_FLIGHT_LOCK:
            return run_id not in _IN_FLIGHT
    return not _pid_alive(owner.pid)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has exited; only its parent has not collected it yet
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _reap_and_adopt(instance: dg.DagsterInstance) -> tuple[list[str], list[str]]:
    """STARTED runs of dead ticks hold pool slots forever: fail them and free the slots.
    STARTING runs of dead ticks never began executing: adopt them and execute them here."""
    reaped, adopted = [], []
    in_progress = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=in_progress)):
        if not _is_orphan(_parse_owner(run.tags.get(OWNER_TAG)), run.run_id):
            continue
        if run.status == dg.DagsterRunStatus.STARTED:
            _reap(instance, run)
            reaped.append(run.run_id)
        else:
            _adopt(instance, run.run_id)
            adopted.append(run.run_id)
    return reaped, adopted


def _reap(instance: dg.DagsterInstance, run: dg.DagsterRun) -> None:
    owner = run.tags.get(OWNER_TAG)
    message = f"Run failed by tick: the tick process that executed it ({owner}) is gone."
    instance.report_engine_event(message, run)
    instance.report_run_failed(run, message=message)
    instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)


def _release(run_ids: Iterable[str]) -> None:
    with _IN_FLIGHT_LOCK:
        _IN_FLIGHT.difference_update(run_ids)


def _adopt(instance: dg.DagsterInstance, run_id: str) -> None:
    with _IN_FLIGHT_LOCK:
        _IN_FLIGHT.add(run_id)
    # Re-tag under the lock so a concurrent tick sees a live owner and leaves the run alone.
    instance.add_run_tags(run_id, {OWNER_TAG: _owner_value(run_id)})


# --- phase 2: execution ----------------------------------------------------------------------


def _execute_runs(
    instance: dg.DagsterInstance,
    run_ids: list[str],
    report: TickReport,
    on_run_start: Callable[[str, str], None] | None,
    on_run_end: Callable[[TickRunResult], None] | None,
) -> None:
    t0 = time.monotonic()
    try:
        with _pool_wait_fixes(instance, report.pool_repairs):
            for run_id in run_ids:
                result = _execute_one(instance, run_id, on_run_start)
                if result is None:
                    continue
                report.runs.append(result)
                if on_run_end is not None:
                    on_run_end(result)
                if result.tags.get(FAILURE_REASON_TAG) == INTERRUPTED_FAILURE_REASON:
                    # Dagster swallows the signal after failing the run: stop here and leave the
                    # remaining STARTING runs to the next tick's adopter.
                    raise TickInterrupted(report)
    finally:
        _release(run_ids)
        report.timings["execute"] = round(time.monotonic() - t0, 3)


def _execute_one(
    instance: dg.DagsterInstance,
    run_id: str,
    on_run_start: Callable[[str, str], None] | None,
) -> TickRunResult | None:
    run = instance.get_run_by_id(run_id)
    if run is None or run.status != dg.DagsterRunStatus.STARTING:
        return None  # never execute a run twice
    if on_run_start is not None:
        on_run_start(run_id, run.job_name)
    t0 = time.monotonic()
    # execute_run is the run worker's core: it runs the existing record (public execute_job
    # would create a new run and leave the daemon-created one unexecuted).
    execute_run(recon_job_from_origin(run.job_code_origin), run, instance)
    seconds = round(time.monotonic() - t0, 3)
    finished = instance.get_run_by_id(run_id) or run
    tags = dict(finished.tags)
    failed = finished.status == dg.DagsterRunStatus.FAILURE
    return TickRunResult(
        run_id=run_id,
        job_name=finished.job_name,
        status=finished.status.value,
        seconds=seconds,
        tags=tags,
        partition=tags.get(PARTITION_TAG),
        error=_first_error_line(instance, run_id) if failed else None,
    )


def _first_error_line(instance: dg.DagsterInstance, run_id: str) -> str | None:
    """What failed the run, in one line: the first failed step and its error (a ``dg.Failure``'s
    description, else the innermost exception, which is the user's rather than Dagster's
    wrapper), or the run failure's own message when no step failed."""
    failures = instance.all_logs(run_id, of_type={dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE})
    for entry in failures:
        event = entry.dagster_event
        if event is None or event.event_type != dg.DagsterEventType.STEP_FAILURE:
            continue
        data = event.step_failure_data
        text = data.user_failure_data.description if data.user_failure_data else None
        error = data.error
        while not text and error is not None:
            if error.cause is None:
                text = error.message
            error = error.cause
        line = _first_line(text)
        if line:
            return f"{event.step_key}: {line}" if event.step_key else line
    for entry in failures:
        line = _first_line(entry.dagster_event.message if entry.dagster_event else entry.user_message)
        if line:
            return line
    return "the run failed without an error message; see its logs in the Dagster UI"


def _first_line(text: str | None) -> str | None:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[0] if lines else None


# --- pool wait fixes: two Dagster bugs that make a step waiting for a pool slot spin or hang ---

_spin_fix_lock = threading.Lock()
_spin_fix_depth = 0
_spin_fix_original: Callable[..., float] | None = None


def _nonnegative_claim_interval(self: InstanceConcurrencyContext) -> float:
    """Upstream returns ``min([0, *intervals])`` (always <= 0), so a step waiting for a pool
    slot never sleeps and burns a whole core. Sleep until the next pending claim check."""
    if not self._pending_claims:
        return 0.0
    now = time.time()
    waits = [ready_at - now for ready_at in self._pending_timeouts.values()]
    return max(0.0, min(waits)) if waits else 0.0


@contextmanager
def _claim_interval_fixed() -> Iterator[None]:
    global _spin_fix_depth, _spin_fix_original
    name = "interval_to_next_pending_claim_check"
    if not hasattr(InstanceConcurrencyContext, name):
        log.warning("Dagster renamed InstanceConcurrencyContext.%s; busy-wait fix skipped", name)
        yield
        return
    with _spin_fix_lock:
        if _spin_fix_depth == 0:
            _spin_fix_original = getattr(InstanceConcurrencyContext, name)
            setattr(InstanceConcurrencyContext, name, _nonnegative_claim_interval)
        _spin_fix_depth += 1
    try:
        yield
    finally:
        with _spin_fix_lock:
            _spin_fix_depth -= 1
            if _spin_fix_depth == 0:
                setattr(InstanceConcurrencyContext, name, _spin_fix_original)


class _PoolWatchdog(threading.Thread):
    """Repairs Dagster's pool lost wake-up.

    ``claim_concurrency_slot`` checks for a free slot and inserts the pending step in two
    statements; if the holder frees its slot in between, the new pending row is never
    assigned and the step waits forever beside a free slot. When a pool shows unassigned
    pending steps and more slots than assigned steps on two consecutive polls (so a normal
    free-then-assign in flight is not mistaken for it), assign the next pending step.
    """

    def __init__(self, instance: dg.DagsterInstance, repairs: list[str]) -> None:
        super().__init__(name="tick-pool-watchdog", daemon=True)
        self._storage = instance.event_log_storage
        self._repairs = repairs
        self._stop_event = threading.Event()
        self._suspects: set[str] = set()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)

    def run(self) -> None:
        if not hasattr(self._storage, "assign_pending_steps"):
            log.warning("event log storage has no assign_pending_steps; pool watchdog disabled")
            return
        while not self._stop_event.wait(WATCHDOG_INTERVAL_SECONDS):
            try:
                self._poll()
            except Exception:  # a watchdog must never break the tick; it retries next poll
                log.debug("pool watchdog poll failed", exc_info=True)

    def _poll(self) -> None:
        stuck = {key for key in self._storage.get_concurrency_keys() if self._is_stuck(key)}
        repaired = stuck & self._suspects  # stuck on two consecutive polls
        for key in sorted(repaired):
            self._storage.assign_pending_steps([key])
            log.warning("repaired a lost wake-up in pool %s", key)
            if key not in self._repairs:
                self._repairs.append(key)
        self._suspects = stuck - repaired

    def _is_stuck(self, key: str) -> bool:
        info = self._storage.get_concurrency_info(key)
        return info.pending_step_count > 0 and info.slot_count > info.assigned_step_count


@contextmanager
def _pool_wait_fixes(instance: dg.DagsterInstance, repairs: list[str]) -> Iterator[None]:
    with _claim_interval_fixed():
        watchdog = _PoolWatchdog(instance, repairs)
        watchdog.start()
        try:
            yield
        finally:
            watchdog.stop()


# --- process plumbing ------------------------------------------------------------------------


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Exclusive fcntl lock; released by the OS if the process dies. flock() locks belong to
    the open file, so two threads of one process also exclude each other."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextmanager
def _sigterm_raises_keyboard_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C outside run execution, so locks and instances are released.
    (During execute_run Dagster installs its own handlers for both signals.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


# --- CLI -------------------------------------------------------------------------------------

EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE, EXIT_DAEMON_RUNNING, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def main(argv: list[str] | None = None) -> int:
    """``python -m orchestration.tick -w workspace.yaml [--force] [--allow-running-daemon]``.

    Progress goes to stderr; the report is printed as one JSON line on stdout.
    Exit codes: 0 ok, 1 a run failed or an error, 2 usage, 3 daemon running, 130 interrupted.
    """
    parser = argparse.ArgumentParser(prog="python -m orchestration.tick", description=main.__doc__)
    parser.add_argument("-w", "--workspace", type=Path, required=True)
    parser.add_argument("--dagster-home", type=Path, default=os.environ.get("DAGSTER_HOME"))
    parser.add_argument("--force", action="store_true", help="ignore sensors' minimum intervals")
    parser.add_argument("--allow-running-daemon", action="store_true")
    args = parser.parse_args(argv)
    if args.dagster_home is None:
        parser.error("set DAGSTER_HOME or pass --dagster-home")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        report = run_tick(
            args.workspace,
            args.dagster_home,
            force=args.force,
            allow_running_daemon=args.allow_running_daemon,
            on_run_start=lambda run_id, job: print(f"run {run_id} {job} ...", file=sys.stderr),
            on_run_end=lambda r: print(f"run {r.run_id} {r.status} in {r.seconds:.2f}s", file=sys.stderr),
        )
    except DaemonRunningError as refused:
        print(f"refused: {refused}", file=sys.stderr)
        return EXIT_DAEMON_RUNNING
    except TickInterrupted as interrupted:
        print(interrupted.report.to_json(), flush=True)
        return EXIT_INTERRUPTED
    print(report.to_json(), flush=True)
    return EXIT_OK if report.ok else EXIT_RUN_FAILED


if __name__ == "__main__":
    # Re-enter through the importable module: the instance imports the launcher class by its
    # module name, and run_tick's isinstance check must see that same class, not __main__'s.
    from orchestration.tick import main as _main

    sys.exit(_main())
