"""The production stack with the real provider SDKs, several delivery runs at once, and faults.

Its own stack (`herald stack up`, deploy/compose.yaml's processes on PostgreSQL) whose delivery
runs drive the real Twilio SDK against the provider emulator (tests/provider_emulator.py, in this
process), with the rate limit shared through Redis at a low rate. No shifted clock: a shifted
clock is allowed only with the sandbox providers, so these sends obey the real hour CI runs at.

Which messages may legitimately go at any real hour: **answers to a recipient's own text**
(HELP answers, campaign ``_replies``, message type ``help_reply``). They are sent at once
whatever the hour — the recipient just wrote, it is not a solicitation the quiet-hours rule
(47 CFR 64.1200(c)(1)) covers, and CTIA requires HELP to be answered — and Herald's own
``sent_inside_send_windows`` check exempts them for that reason. The test enqueues them as
inbound processing does (``herald.delivery.outbox.enqueue``) rather than posting hundreds of
HELP texts through ``herald serve`` (one apply_replies run each), so the four runs find work at
once. Marketing texts keep their windows; nothing here relaxes them.

What it proves:

1. four deliver_messages_job runs at once, dequeued by the daemon: each message accepted once by
   the emulator, none lost, and the emulator's measured rate within the one shared limit;
2. ``kill -9`` of a run's process mid-send: the code server that launched it marks the run
   failed (Dagster's run monitoring cannot see a dead worker under the DefaultRunLauncher);
   messages_due_sensor requests a run once the dead claim's lease is over; that run asks Twilio
   (the emulator) what the dead run sent, records it, holds the SMS it cannot confirm, and sends
   the rest: each message accepted at most once, the held ones never;
3. the warehouse's PostgreSQL backends terminated mid-run: the run fails with the error named,
   the next run completes, no duplicates;
4. the code server killed and restarted while runs queue: the queued runs start once it is back
   and succeed.
"""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg2
import pytest

from herald.compliance.inbound import REPLY_CAMPAIGN
from herald.delivery.engine import HELD_UNKNOWN_REASON
from herald.delivery.outbox import OUTBOX, OutboxMessage, enqueue
from herald.settings import Settings
from herald.warehouse.connection import Warehouse
from orchestration.stack import StackState, alive
from tests.production.stack_support import REPO_ROOT, stack_up
from tests.production.test_stack import Stack, wait_for
from tests.provider_emulator import ProviderEmulator, max_in_window

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SID, TOKEN, RESEND_KEY = "ACstackfaults01", "stack-faults-token", "re_stack_faults"
CLIENT = "bright_smiles_dental"
SMS_RATE = 3  # per second, per sender: what all delivery runs together may send
LEASE_SECONDS = 15  # a `sending` row older than this belongs to a dead run
BATCH = 8  # messages per claim, so four runs interleave
FOUR_MESSAGES = 120  # 40 s at the shared rate: longer than the four runs take to start on a busy machine
RUN_STEP_TIMEOUT = 240


def _ts() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@pytest.fixture(scope="module")
def emulator() -> Iterator[ProviderEmulator]:
    with ProviderEmulator(twilio_accounts={SID: TOKEN}, resend_api_key=RESEND_KEY) as server:
        yield server


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, emulator: ProviderEmulator) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("faults")
    prefix = f"herald_faults_{uuid.uuid4().hex[:8]}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("HERALD_", "DAGSTER_"))},
        "HERALD_STACK_DIR": str(folder),
        "HERALD_SMS_PROVIDER": "twilio",
        "HERALD_EMAIL_PROVIDER": "resend",
        "TWILIO_ACCOUNT_SID": SID,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "RESEND_API_KEY": RESEND_KEY,
        "HERALD_TWILIO_BASE_URL": emulator.url,
        "HERALD_RESEND_BASE_URL": emulator.url,
        "HERALD_SMS_RATE_PER_SECOND": str(SMS_RATE),
        "HERALD_EMAIL_RATE_PER_SECOND": "2",
        "HERALD_RATE_LIMIT_STORAGE": "redis://127.0.0.1:6379/0",
        "HERALD_DELIVERY_LEASE_SECONDS": str(LEASE_SECONDS),
        "HERALD_DELIVERY_BATCH_SIZE": str(BATCH),
    }
    started = time.monotonic()
    with stack_up(tmp_path_factory, folder, prefix, env) as (state, output):
        assert "rate limits: shared by every delivery run" in output or "HERALD_RATE_LIMIT_STORAGE" in env
        print(f"stack up in {time.monotonic() - started:.1f}s")
        running = Stack(state, {**env, **state.env})
        # off before the outbox has anything (a tick already under way ends during the build)
        messages_due_sensor(running, False)
        built = time.monotonic()
        build_models(state, folder, env)
        print(f"dbt models built in {time.monotonic() - built:.1f}s")
        yield running


# -- helpers ------------------------------------------------------------------------------------


def build_models(state: StackState, folder: Path, env: dict[str, str]) -> None:
    """The clients' configuration loaded (``herald_ops.clients`` ...) and the warehouse's seeds
    and models built once, as a deployment's first send and transform do: a deliver run
    refreshes the marts over the outbox, which read the models upstream of them."""
    script = (
        "from herald.cli.common import load_deployment, load_settings\n"
        "from herald.warehouse.config_tables import load_config_tables\n"
        "from herald.warehouse.connection import Warehouse\n"
        "settings = load_settings()\n"
        "with Warehouse(settings.warehouse).session() as s:\n"
        "    print(load_config_tables(s, load_deployment(settings)))\n"
    )
    proc = subprocess.run([str(REPO_ROOT / ".venv" / "bin" / "python"), "-c", script], env={**env, **state.env},
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    target = Settings.from_env({"HERALD_WAREHOUSE_URL": state.env["HERALD_WAREHOUSE_URL"]}).warehouse
    proc = subprocess.run(
        [str(REPO_ROOT / ".venv" / "bin" / "dbt"), "build", "--exclude-resource-type", "test",
         "--project-dir", str(REPO_ROOT / "dbt_project"), "--profiles-dir", str(REPO_ROOT / "dbt_project"),
         "--target-path", str(folder / "dbt-target"), "--log-path", str(folder / "dbt-logs"), "--quiet"],
        env={**env, **target.dbt_env(), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def warehouse_of(stack: Stack) -> Warehouse:
    return Warehouse(Settings.from_env({"HERALD_WAREHOUSE_URL": stack.warehouse_url}).warehouse)


def help_answers(tag: str, count: int, sender: str) -> list[OutboxMessage]:
    """``count`` answers to HELP texts, due now, each to its own number (tagged for this test)."""
    now = _ts()
    base = int(uuid.uuid4().int % 9000) * 100
    return [
        OutboxMessage(
            message_key=f"{tag}-{n:03d}",
            client_id=CLIENT,
            campaign=REPLY_CAMPAIGN,
            step="help",
            variant="a",
            occurrence=f"{tag}-help-{n}",
            contact_id=f"{tag}-c{n}",
            message_type="help_reply",
            category="transactional",
            channel="sms",
            to_address=f"+1737{(base + n) % 10_000_000:07d}",
            sender=sender,
            send_after=now - timedelta(seconds=1),
            body_text="Bright Smiles Dental: appointment reminders. Help: +1 512 555 0100. Reply STOP to opt out.",
        )
        for n in range(count)
    ]


def put(stack: Stack, messages: list[OutboxMessage]) -> None:
    with warehouse_of(stack).session() as s:
        assert enqueue(s, messages, _ts()) == len(messages)


def outbox(stack: Stack, tag: str) -> dict[str, tuple[str, str | None]]:
    rows = stack.query(
        f"select message_key, status, status_reason from {OUTBOX} where message_key like %s", (f"{tag}-%",)
    )
    return {key: (status, reason) for key, status, reason in rows}


def accepted(emulator: ProviderEmulator, numbers: set[str]) -> list[tuple[dict, datetime]]:
    return [(m, at) for m, at in emulator.sms_accepted() if m["To"] in numbers]


DELIVERY_ONLY = '[{ path: ["herald_ops", "delivery_attempts"] }]'


def launch(stack: Stack, job: str = "deliver_messages_job", tag: str = "", assets: str = DELIVERY_ONLY) -> str:
    """Submits a run to the queue (the QueuedRunCoordinator); the daemon dequeues and launches it.
    By default only the delivery step, as an operator's "materialize selected" would: the marts
    refresh after it is dbt's (a minute here, taking turns on the build lock), not what is tested;
    the runs messages_due_sensor requests are the whole job."""
    selection = f", assetSelection: {assets}" if assets else ""
    data = stack.graphql(
        'mutation { launchRun(executionParams: { selector: { repositoryLocationName: "herald", '
        f'repositoryName: "__repository__", jobName: "{job}"{selection} }}, executionMetadata: {{ tags: '
        f'[{{ key: "herald/test", value: "{tag}" }}] }} }}) {{ __typename '
        "... on LaunchRunSuccess { run { runId status } } ... on PythonError { message } "
        "... on InvalidSubsetError { message } ... on RunConfigValidationInvalid { errors { message } } } }"
    )
    result = data["launchRun"]
    assert result["__typename"] == "LaunchRunSuccess", result
    assert result["run"]["status"] == "QUEUED"
    return result["run"]["runId"]


def run_record(stack: Stack, run_id: str) -> dict:
    data = stack.graphql(
        f'{{ runOrError(runId: "{run_id}") {{ ... on Run {{ runId status startTime endTime '
        "tags { key value } } } }"
    )
    return data["runOrError"]


def engine_messages(stack: Stack, run_id: str) -> list[str]:
    data = stack.graphql(
        f'{{ logsForRun(runId: "{run_id}") {{ ... on EventConnection {{ events {{ __typename '
        "... on MessageEvent { message } } } } }"
    )
    return [e.get("message") or "" for e in (data.get("logsForRun") or {}).get("events") or []]


SENSOR = '{ repositoryLocationName: "herald", repositoryName: "__repository__", sensorName: "messages_due_sensor" }'


def messages_due_sensor(stack: Stack, running: bool) -> None:
    """Turns messages_due_sensor on or off (as the UI's toggle does): off while a test launches
    its own runs, so it knows which run sends; on again for the recovery it tests."""
    if running:
        data = stack.graphql(f"mutation {{ startSensor(sensorSelector: {SENSOR}) {{ __typename "
                             "... on Sensor { sensorState { status } } } }")  # fmt: skip
        assert data["startSensor"]["sensorState"]["status"] == "RUNNING", data
        return
    sensor = stack.graphql(f"{{ sensorOrError(sensorSelector: {SENSOR}) {{ ... on Sensor {{ id }} }} }}")
    data = stack.graphql(
        f'mutation {{ stopSensor(id: "{sensor["sensorOrError"]["id"]}") {{ __typename '
        "... on StopSensorMutationResult { instigationState { status } } } }"
    )
    assert data["stopSensor"]["instigationState"]["status"] == "STOPPED", data


def quiet(stack: Stack) -> None:
    """Waits until no deliver run is queued or going (one a sensor tick requested as it was
    being turned off, or an earlier test's recovery run still refreshing its marts)."""
    busy = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")
    wait_for("no deliver run going", lambda: not [r for r in deliver_runs(stack) if r["status"] in busy],
             timeout=RUN_STEP_TIMEOUT, every=2.0)  # fmt: skip


def run_processes(worker: int) -> list[int]:
    """The run worker ``worker`` and its descendants (the step processes of Dagster's multiprocess
    executor: the one delivering is a child of the run worker)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(") ", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [worker]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def step_causes(stack: Stack, run_id: str) -> list[str]:
    """Each failed step's error and the errors that caused it (Dagster wraps the step's own)."""
    data = stack.graphql(
        f'{{ logsForRun(runId: "{run_id}") {{ ... on EventConnection {{ events {{ __typename '
        "... on ExecutionStepFailureEvent { stepKey error { message errorChain { error { message } } } } } } } }"
    )
    found = []
    for event in (data.get("logsForRun") or {}).get("events") or []:
        if event["__typename"] == "ExecutionStepFailureEvent":
            error = event.get("error") or {}
            chain = [link["error"]["message"] for link in error.get("errorChain") or []]
            found.append(" <- ".join([error.get("message") or "", *chain]))
    return found


def finished(stack: Stack, run_id: str) -> dict | None:
    record = run_record(stack, run_id)
    return record if record["status"] in ("SUCCESS", "FAILURE", "CANCELED") else None


def settled(stack: Stack, tag: str, count: int) -> bool:
    rows = outbox(stack, tag)
    return len(rows) == count and all(status in ("sent", "held", "failed") for status, _ in rows.values())


def deliver_runs(stack: Stack) -> list[dict]:
    return [r for r in stack.runs() if r["jobName"] == "deliver_messages_job"]


def worker_pid(stack: Stack, run_id: str) -> int | None:
    for message in engine_messages(stack, run_id):
        if match := re.search(r"Started process for run \(pid: (\d+)\)", message):
            return int(match[1])
    return None


# -- 1. four delivery runs at once --------------------------------------------------------------


def test_four_delivery_runs_at_once_send_each_message_once_within_the_shared_rate(
    stack: Stack, emulator: ProviderEmulator
) -> None:
    sender = f"+1512555{uuid.uuid4().int % 10_000:04d}"  # its own rate window in the shared Redis
    quiet(stack)
    messages = help_answers("four", FOUR_MESSAGES, sender)
    numbers = {m.to_address for m in messages}
    put(stack, messages)
    runs = [launch(stack, tag="four") for _ in range(4)]
    wait_for("the answers sent", lambda: settled(stack, "four", FOUR_MESSAGES), timeout=RUN_STEP_TIMEOUT, every=1.0)
    records = [wait_for(f"run {r} finished", lambda r=r: finished(stack, r), timeout=RUN_STEP_TIMEOUT) for r in runs]

    assert [r["status"] for r in records] == ["SUCCESS"] * 4, [
        (r["runId"], stack.run_errors(r["runId"])) for r in records
    ]
    # the four ran at once: each started before any of them ended
    assert max(r["startTime"] for r in records) < min(r["endTime"] for r in records)
    rows = outbox(stack, "four")
    assert Counter(status for status, _ in rows.values()) == Counter({"sent": FOUR_MESSAGES})
    sent = accepted(emulator, numbers)
    per_number = Counter(m["To"] for m, _ in sent)
    assert len(per_number) == FOUR_MESSAGES and max(per_number.values()) == 1  # none lost, none twice
    # the workers' side: each call's moment right after the shared limiter gave it its slot
    attempts = stack.query(
        "select provider_message_id, started_at, claim_token from herald_ops.delivery_attempts "
        "where outcome = 'sent' and message_key like 'four-%%'"
    )
    assert len(attempts) == FOUR_MESSAGES
    claims = len({token for *_, token in attempts})
    slots = [started for _, started, _ in attempts]
    # the provider's side: when the emulator accepted each message, and how long after its slot
    arrived = {m["sid"]: at.replace(tzinfo=None) for m, at in sent}
    transit = [(arrived[sid] - started).total_seconds() for sid, started, _ in attempts]
    moments = list(arrived.values())
    span = (max(moments) - min(moments)).total_seconds()
    average = (len(moments) - 1) / span
    at_workers = {w: max_in_window(slots, w) for w in (1.0, 10.0)}
    at_provider = {w: max_in_window(moments, w) for w in (1.0, 5.0, 10.0)}
    print(
        f"4 runs, {claims} claims: {len(moments)} SMS in {span:.1f}s = {average:.2f}/s on average (limit {SMS_RATE}/s); "
        "slots taken at the workers: at most "
        + ", ".join(f"{n} in {w:.0f} s" for w, n in at_workers.items())
        + "; accepted at the emulator: at most "
        + ", ".join(f"{n} in {w:.0f} s" for w, n in at_provider.items())
        + f"; slot → accepted {sorted(transit)[len(transit) // 2] * 1000:.0f} ms median, {max(transit) * 1000:.0f} ms max"
    )
    assert claims >= FOUR_MESSAGES // BATCH
    # the shared limiter: all workers together at the rate (four limiters of their own would send
    # four times as many). Each call's moment is taken just after its slot, so a worker the busy
    # machine holds up between the two can crowd one second, so ten seconds are allowed one
    # second's worth more (measured: 30-31 of 30; without the shared window it would be 120).
    assert at_workers[10.0] <= 11 * SMS_RATE
    assert average <= SMS_RATE * 1.05
    # at the provider, a call arrives up to `transit` after its slot (process scheduling on a busy
    # machine). The limiter is a moving window, so any L seconds hold at most rate * ceil(L) slots;
    # the ten seconds of heaviest arrivals came from slots within 10 s + the longest transit, with
    # one second's worth more for the worker held up between its slot and its timestamp (as above).
    # The 1 s and 5 s figures are printed, not asserted: a single scheduling hiccup crowds them.
    bound = SMS_RATE * (math.ceil(10.0 + max(transit)) + 1)
    assert at_provider[10.0] <= bound, (at_provider, max(transit))


# -- 2. kill -9 of a run's process mid-send -----------------------------------------------------


def test_a_run_killed_mid_send_is_failed_and_its_messages_are_sent_once_or_held(
    stack: Stack, emulator: ProviderEmulator
) -> None:
    sender = f"+1512556{uuid.uuid4().int % 10_000:04d}"
    quiet(stack)
    messages = help_answers("kill", 40, sender)
    numbers = {m.to_address for m in messages}
    put(stack, messages)
    run_id = launch(stack, tag="kill")
    pid = wait_for("the run's process", lambda: worker_pid(stack, run_id), timeout=RUN_STEP_TIMEOUT, every=0.5)
    wait_for("a few answers accepted", lambda: len(accepted(emulator, numbers)) >= 5, timeout=RUN_STEP_TIMEOUT,
             every=0.05)  # fmt: skip
    # the run's processes die at once, as a killed container's would: the run worker and any step
    # process it started (the delivery job executes its steps in the worker itself)
    doomed = run_processes(pid)
    assert doomed[0] == pid
    for victim in reversed(doomed):
        os.kill(victim, signal.SIGKILL)
    killed_at = time.monotonic()
    wait_for("the run's processes gone", lambda: not any(alive(p) for p in doomed), timeout=30, every=0.2)
    emulator.wait_idle()
    claimed = {k for k, (status, _) in outbox(stack, "kill").items() if status == "sending"}
    sent_before = {m["To"] for m, _ in accepted(emulator, numbers)}
    by_number = {m.to_address: m.message_key for m in messages}
    accepted_claimed = {by_number[n] for n in sent_before} & claimed
    assert claimed, "the run was killed between batches: no message was in flight"

    # Dagster: the code server that launched the run sees its process die and fails the run
    record = wait_for("the killed run failed", lambda: finished(stack, run_id), timeout=120)
    assert record["status"] == "FAILURE"
    assert any("terminated by signal 9 (SIGKILL)" in m for m in engine_messages(stack, run_id))

    # Herald: past the lease, messages_due_sensor requests a run that settles the dead claim
    messages_due_sensor(stack, True)
    wait_for("every answer settled", lambda: settled(stack, "kill", 40), timeout=RUN_STEP_TIMEOUT, every=1.0)
    recovered_in = time.monotonic() - killed_at
    emulator.wait_idle()
    rows = outbox(stack, "kill")
    held = {k for k, (status, _) in rows.items() if status == "held"}
    sent = {k for k, (status, _) in rows.items() if status == "sent"}
    per_number = Counter(m["To"] for m, _ in accepted(emulator, numbers))
    # each message at most once at the provider; the held ones never; the sent ones exactly once
    assert max(per_number.values()) == 1
    assert {by_number[n] for n in per_number} == sent
    assert sent | held == {m.message_key for m in messages}
    # what the dead run claimed and handed to Twilio is recorded as sent (found at the provider);
    # what it claimed and Twilio never got is held, never resent blindly
    assert held == claimed - accepted_claimed
    assert {rows[k][1] for k in held} <= {HELD_UNKNOWN_REASON}
    outcomes = dict(
        stack.query(
            "select outcome, count(*) from herald_ops.delivery_attempts where message_key like 'kill-%%' "
            "and outcome in ('reconciled_sent', 'held_unknown') group by 1"
        )
    )
    assert outcomes.get("reconciled_sent", 0) == len(accepted_claimed)
    assert outcomes.get("held_unknown", 0) == len(held)

    def recovered() -> list[dict]:
        return [
            r for r in deliver_runs(stack)
            if {t["key"]: t["value"] for t in r["tags"]}.get("dagster/sensor_name") == "messages_due_sensor"
            and r["status"] in ("SUCCESS", "FAILURE")
        ]  # fmt: skip

    recovery = wait_for("the sensor's run finished", recovered, timeout=RUN_STEP_TIMEOUT)
    assert [r["status"] for r in recovery] == ["SUCCESS"] * len(recovery), [
        stack.run_errors(r["runId"]) for r in recovery
    ]
    assert recovery, "no run requested by messages_due_sensor succeeded"
    messages_due_sensor(stack, False)
    print(
        f"kill -9 mid-send: {len(claimed)} in the dead claim, {len(accepted_claimed)} reconciled as sent, "
        f"{len(held)} held ({HELD_UNKNOWN_REASON!r}), {len(sent)} sent once; settled {recovered_in:.0f}s after the kill"
    )


# -- 3. the warehouse's connections terminated mid-run -------------------------------------------


def terminate_backends(stack: Stack) -> int:
    conn = psycopg2.connect(stack.state.admin_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(
                "select count(pg_terminate_backend(pid)) from pg_stat_activity "
                "where datname = %s and pid <> pg_backend_pid()",
                (stack.state.databases["warehouse"],),
            )
            return cur.fetchone()[0]
    finally:
        conn.close()


def test_terminated_warehouse_connections_fail_the_run_clearly_and_the_next_completes(
    stack: Stack, emulator: ProviderEmulator
) -> None:
    sender = f"+1512557{uuid.uuid4().int % 10_000:04d}"
    quiet(stack)
    messages = help_answers("pgkill", 40, sender)
    numbers = {m.to_address for m in messages}
    put(stack, messages)
    run_id = launch(stack, tag="pgkill")
    wait_for("a few answers accepted", lambda: len(accepted(emulator, numbers)) >= 5, timeout=RUN_STEP_TIMEOUT,
             every=0.05)  # fmt: skip
    terminated = terminate_backends(stack)
    assert terminated >= 1
    record = wait_for("the run finished", lambda: finished(stack, run_id), timeout=RUN_STEP_TIMEOUT)
    errors = step_causes(stack, run_id)
    assert record["status"] == "FAILURE", errors
    # the step's error names what happened and where, not psycopg2's "connection already closed"
    assert any("lost the connection to the PostgreSQL warehouse" in e for e in errors), errors
    print("terminated backends, the run's error:", errors[0][-400:])

    messages_due_sensor(stack, True)  # the next run: requested once the dead claim's lease is over
    wait_for("every answer settled", lambda: settled(stack, "pgkill", 40), timeout=RUN_STEP_TIMEOUT, every=1.0)
    messages_due_sensor(stack, False)
    emulator.wait_idle()
    rows = outbox(stack, "pgkill")
    per_number = Counter(m["To"] for m, _ in accepted(emulator, numbers))
    assert max(per_number.values()) == 1  # no duplicates
    by_number = {m.to_address: m.message_key for m in messages}
    sent = {k for k, (status, _) in rows.items() if status == "sent"}
    assert {by_number[n] for n in per_number} == sent
    held = [k for k, (status, _) in rows.items() if status == "held"]
    assert all(rows[k][1] == HELD_UNKNOWN_REASON for k in held)
    print(f"backends terminated: {terminated}; {len(sent)} sent once, {len(held)} held")


# -- 4. the code server restarted while runs queue ------------------------------------------------


def test_runs_queued_while_the_code_server_restarts_start_once_it_is_back(stack: Stack) -> None:
    quiet(stack)
    processes = {p.name: p for p in stack.state.processes}
    # The daemon is stopped first, so nothing dequeues the runs before the code server is gone
    # (submitting needs the code server; a running daemon may launch them within milliseconds).
    os.kill(processes["daemon"].pid, signal.SIGKILL)
    wait_for("the daemon gone", lambda: not alive(processes["daemon"].pid), timeout=30, every=0.1)
    runs = [launch(stack, tag="queued") for _ in range(2)]
    assert all(run_record(stack, r)["status"] == "QUEUED" for r in runs)
    os.kill(processes["code-server"].pid, signal.SIGKILL)
    wait_for("the code server gone", lambda: not alive(processes["code-server"].pid), timeout=30, every=0.1)
    # the daemon back while the code server is down: it either pauses dequeues for the location
    # ("Pausing dequeues … to give its code server time to recover") or dequeues, cannot reach the
    # code server and puts the run back (deploy/dagster.yaml, max_user_code_failure_retries).
    # Either way the runs wait in the queue: over several of the daemon's passes none leaves it.
    assert "daemon: pid" in stack.herald("stack", "restart", "daemon").stdout

    def resubmitted() -> list[str]:
        return [r for r in runs if any("re-submitting the run into the queue" in m for m in engine_messages(stack, r))]

    for _ in range(4):  # the run queue daemon passes every few seconds
        time.sleep(5)
        waiting = [run_record(stack, r)["status"] for r in runs]  # STARTING: a dequeue about to put it back
        assert set(waiting) <= {"QUEUED", "STARTING", "NOT_STARTED"}, waiting
    restarted = stack.herald("stack", "restart", "code-server")  # started again with the same command
    assert "code-server: pid" in restarted.stdout
    stack.state = StackState.load(Path(stack.state.folder))
    assert next(p for p in stack.state.processes if p.name == "code-server").pid != processes["code-server"].pid
    records = [wait_for(f"run {r} finished", lambda r=r: finished(stack, r), timeout=RUN_STEP_TIMEOUT) for r in runs]
    assert [r["status"] for r in records] == ["SUCCESS", "SUCCESS"], [stack.run_errors(r) for r in runs]
    print(f"code server down while 2 runs were queued: they waited ({len(resubmitted())} put back), both succeeded")
