"""The production stack, unattended: `herald stack up` (what `make prod-up` runs) starts
deploy/compose.yaml's processes — a Dagster code server, dagster-daemon, dagster-webserver and
`herald serve` — on PostgreSQL (Dagster's storage and the warehouse, a role that is not a
superuser), with a moto S3 server as the drop zone. No `herald tick` anywhere: the daemon's own
sensors and schedules launch every run, each in its own process, through the run queue.

The providers are the sandbox (it records every send and simulates delivery receipts, replies
and clicks back through the same landing path as real callbacks), because only a sandbox
deployment may shift its clock: the clock is set to a moment every example client may message,
so the sends do not depend on the hour CI runs at.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from twilio.request_validator import RequestValidator

from herald.clock import realnow
from herald.demo.timeline import demo_start
from orchestration.stack import StackState, alive
from tests.production.stack_support import HERALD, REPO_ROOT, stack_up

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

TWILIO_TOKEN = "stack-test-auth-token"
RUN_LOG_LINE = re.compile(r" - (?P<run>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}) - (?P<pid>\d+) - ")
FLOW_TIMEOUT_SECONDS = 900  # the whole chain takes 3-6 minutes on this 2-core machine


def wait_for(what: str, check: Callable[[], Any], timeout: float = FLOW_TIMEOUT_SECONDS, every: float = 3.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except psycopg2.errors.UndefinedTable:  # dbt has not built that mart yet
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s")
        time.sleep(every)


class Stack:
    def __init__(self, state: StackState, env: dict[str, str]) -> None:
        self.state = state
        self.env = env

    @property
    def warehouse_url(self) -> str:
        return self.state.env["HERALD_WAREHOUSE_URL"]

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        conn = psycopg2.connect(self.warehouse_url)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall()
        finally:
            conn.close()

    def graphql(self, query: str) -> dict:
        request = urllib.request.Request(
            f"{self.state.url('webserver')}/graphql",
            data=json.dumps({"query": query}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)["data"]

    def runs(self) -> list[dict]:
        data = self.graphql(
            "{ runsOrError(limit: 500) { ... on Runs { results { runId jobName status tags { key value } } } } }"
        )
        return data["runsOrError"]["results"]

    def run_errors(self, run_id: str) -> list[str]:
        """The failure messages of a run's event log (for an assertion's message)."""
        data = self.graphql(
            '{ logsForRun(runId: "RUN_ID") { ... on EventConnection { events { __typename '
            "... on ExecutionStepFailureEvent { stepKey error { message } } "
            "... on RunFailureEvent { message } } } } }".replace("RUN_ID", run_id)
        )
        events = (data.get("logsForRun") or {}).get("events") or []
        return [
            f"{e.get('stepKey', '')}: {(e.get('error') or {}).get('message') or e.get('message', '')}"[:2000]
            for e in events
            if e["__typename"] in ("ExecutionStepFailureEvent", "RunFailureEvent")
        ]

    def herald(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([HERALD, *args], env=self.env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
        if check:
            assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("stack")
    prefix = f"herald_stack_{uuid.uuid4().hex[:8]}"
    clock = round((demo_start(realnow()) - realnow()).total_seconds())
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("HERALD_", "DAGSTER_"))},
        "HERALD_STACK_DIR": str(folder),
        "HERALD_CLOCK_OFFSET": str(clock),
        "HERALD_SMS_PROVIDER": "sandbox",
        "HERALD_EMAIL_PROVIDER": "sandbox",
        "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,  # herald serve verifies Twilio's signature with it
        "HERALD_SANDBOX_RECEIPT_DELAY_SECONDS": "1",
    }
    with stack_up(tmp_path_factory, folder, prefix, env) as (state, output):
        assert "stack up in" in output
        yield Stack(state, {**env, **state.env})


def test_each_service_is_its_own_process_on_postgresql(stack: Stack) -> None:
    names = [p.name for p in stack.state.processes]
    assert names == ["s3", "code-server", "daemon", "webserver", "web"]
    assert len({p.pid for p in stack.state.processes}) == 5 and all(alive(p.pid) for p in stack.state.processes)
    status = stack.herald("stack", "status")
    assert status.stdout.count("running") == 5
    # the webserver loads Herald's definitions from the code server, not in its own process
    location = stack.graphql(
        "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
        "locationOrLoadError { __typename } } } } }"
    )["workspaceOrError"]["locationEntries"]
    assert [(e["name"], e["loadStatus"], e["locationOrLoadError"]["__typename"]) for e in location] == [
        ("herald", "LOADED", "RepositoryLocation")
    ]
    # Dagster's storage is the stack's PostgreSQL database, owned by a role that is not a superuser
    conn = psycopg2.connect(
        stack.warehouse_url.replace(stack.state.databases["warehouse"], stack.state.databases["dagster"])
    )
    try:
        with conn.cursor() as cur:
            cur.execute("select count(*) from runs")
            assert cur.fetchone()[0] >= 0
            cur.execute("select rolsuper from pg_roles where rolname = current_user")
            assert cur.fetchone() == (False,)
    finally:
        conn.close()


def drop_demo_packets(stack: Stack) -> list[str]:
    """The demo's five sample packets (four clients) uploaded to the stack's S3 drop zone."""
    script = (
        "import time\n"
        "from herald.cli.common import load_deployment, load_settings\n"
        "from herald.clock import utcnow\n"
        "from herald.demo.packets import demo_packets, drop_packets\n"
        "from herald.demo.timeline import local_date\n"
        "from herald.dropzone import open_dropzone\n"
        "settings = load_settings()\n"
        "packets = demo_packets(load_deployment(settings), scale=1, today=local_date(utcnow()))\n"
        "for line in drop_packets(open_dropzone(settings.dropzone), packets, time.strftime('%Y%m%d%H%M%S')):\n"
        "    print(line)\n"
    )
    proc = subprocess.run([str(REPO_ROOT / ".venv" / "bin" / "python"), "-c", script], env=stack.env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return [line for line in proc.stdout.splitlines() if line.startswith("dropped")]


@pytest.fixture(scope="module")
def flowed(stack: Stack) -> dict[str, Any]:
    """Packets dropped to S3, then nothing but the daemon until messages are sent."""
    dropped = drop_demo_packets(stack)
    assert len(dropped) == 5

    def landed() -> bool:
        rows = stack.query("select count(*), count(*) filter (where status = 'landed') from herald_ops.packets")
        return rows[0] == (5, 5)

    wait_for("5 packets landed", landed)
    # the daemon crashes (kill -9) in the middle of the chain and is started again: its sensors
    # go on from their cursors, and the runs already launched (the code server's children) go on
    daemon = next(p for p in stack.state.processes if p.name == "daemon")
    restarted = stack.herald("stack", "restart", "daemon", "--kill")
    assert f"killing daemon (pid {daemon.pid})" in restarted.stdout
    assert not alive(daemon.pid)
    stack.state = StackState.load(Path(stack.state.folder))
    assert next(p for p in stack.state.processes if p.name == "daemon").pid != daemon.pid
    wait_for("contacts of 4 clients in marts.contacts", lambda: stack.query(
        "select count(distinct client_id) from marts.contacts")[0][0] == 4)  # fmt: skip
    sent = wait_for("messages sent", lambda: stack.query(
        "select client_id, count(*) from herald_ops.outbox where status = 'sent' group by 1"))  # fmt: skip
    return {"dropped": dropped, "sent": dict(sent)}


def test_packets_dropped_to_s3_land_transform_and_send_through_the_daemon(stack: Stack, flowed: dict) -> None:
    packets = stack.query("select client_id, status, rows_in_file, rows_landed + rows_rejected from herald_ops.packets")
    assert len({client for client, *_ in packets}) == 4
    assert all(status == "landed" and rows == accounted for _, status, rows, accounted in packets)  # no row lost
    assert sum(flowed["sent"].values()) > 0
    runs = stack.runs()
    by_job: dict[str, list[dict]] = {}
    for run in runs:
        by_job.setdefault(run["jobName"], []).append(run)
    for job in ("ingest_packet_job", "transform_packets_job", "refresh_segments_job", "send_campaigns_job"):
        assert job in by_job, sorted(by_job)
    assert len(by_job["ingest_packet_job"]) == 5
    # every run came from a sensor or a schedule of the daemon (no `herald tick` here), in its own process
    for run in runs:
        tags = {t["key"]: t["value"] for t in run["tags"]}
        assert "dagster/sensor_name" in tags or "dagster/schedule_name" in tags, (run["jobName"], tags)
    failed = [(r["jobName"], r["runId"], stack.run_errors(r["runId"])) for r in runs if r["status"] == "FAILURE"]
    assert failed == []
    # each run in its own process: the run workers' log lines carry their run id and pid
    run_pids: dict[str, set[str]] = {}
    for line in Path(stack.state.folder, "logs", "code-server.log").read_text(errors="replace").splitlines():
        if match := RUN_LOG_LINE.search(line):
            run_pids.setdefault(match["run"], set()).add(match["pid"])
    assert len(run_pids) >= 8
    assert all(len(pids) == 1 for pids in run_pids.values())
    pids = [next(iter(p)) for p in run_pids.values()]
    assert len(set(pids)) == len(pids)
    assert not {int(p) for p in pids} & {p.pid for p in stack.state.processes}


def test_delivery_receipts_reach_the_marts(stack: Stack, flowed: dict) -> None:
    delivered = wait_for("delivery receipts in marts.deliveries", lambda: stack.query(
        "select count(*) from marts.deliveries where delivered_at is not null")[0][0])  # fmt: skip
    assert delivered > 0
    (sent,) = stack.query("select count(*) from herald_ops.outbox where status = 'sent'")[0]
    assert delivered <= sent


def test_a_twilio_signed_stop_to_herald_serve_suppresses_the_number(stack: Stack, flowed: dict) -> None:
    rows = stack.query(
        "select client_id, to_address, sender from herald_ops.outbox "
        "where status = 'sent' and channel = 'sms' order by message_key limit 1"
    )
    assert rows, "no SMS was sent"
    client_id, to_address, from_address = rows[0]
    url = f"{stack.state.env['HERALD_PUBLIC_URL']}/webhooks/twilio/inbound"
    form = {"MessageSid": f"SM{uuid.uuid4().hex}", "From": to_address, "To": from_address, "Body": "STOP"}
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, form)
    unsigned = urllib.request.Request(
        f"{stack.state.url('web')}/webhooks/twilio/inbound", data=urllib.parse.urlencode(form).encode()
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(unsigned, timeout=30)
    assert refused.value.code == 403
    signed = urllib.request.Request(
        f"{stack.state.url('web')}/webhooks/twilio/inbound",
        data=urllib.parse.urlencode(form).encode(),
        headers={"X-Twilio-Signature": signature},
    )
    with urllib.request.urlopen(signed, timeout=30) as response:
        assert response.status == 200
    posted = time.time()
    suppressed = wait_for("the STOP in herald_ops.suppressions", lambda: stack.query(
        "select reason, created_at from herald_ops.suppressions where client_id = %s and address = %s",
        (client_id, to_address)), timeout=300)  # fmt: skip
    assert suppressed
    wait_for("the STOP in marts.suppressions", lambda: stack.query(
        "select count(*) from marts.suppressions where client_id = %s", (client_id,))[0][0], timeout=300)  # fmt: skip
    print(f"STOP posted → suppression applied in {time.time() - posted:.1f}s")
    # after the STOP, that number gets the one opt-out confirmation the rules require, and nothing else
    later = stack.query(
        "select message_type, campaign from herald_ops.outbox where client_id = %s and to_address = %s "
        "and status = 'sent' and sent_at > (select min(received_at) from herald_raw.inbound_messages "
        "where inbound_id = %s)",
        (client_id, to_address, form["MessageSid"]),
    )
    assert set(later) <= {("opt_out_confirmation", "_replies")}, later
