"""Operator alerts on both engines: a failed run is told once by email (the sandbox's journal) and
by a signed webhook (a local HTTP server), however often the sensor looks at it; another failed
run is another incident; the deployment-wide failed/held threshold alerts once per crossing,
recovers, and alerts again at a new crossing; a webhook that answers 503 is retried."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import pytest
from standardwebhooks.webhooks import Webhook

from herald.alerts.operator import (
    FAILED_OR_HELD,
    INCIDENTS,
    RECOVERED,
    check_failed_or_held,
    list_incidents,
    post_webhook,
    run_failure_incident,
)
from herald.delivery.outbox import OutboxMessage, enqueue
from herald.providers.factory import providers_from_env
from herald.settings import Settings, operator_alert_settings
from herald.warehouse.connection import Warehouse
from resources import HeraldConfigResource, ProvidersResource, WarehouseResource
from tests.conftest import ENGINES

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # base64 of 24 bytes
OPERATOR = "ops@herald.example"
DAGSTER_URL = "http://dagster.herald.example:3000"
NOW = datetime(2026, 11, 23, 18, 0)


class Hook:
    """A webhook receiver on 127.0.0.1 (port 0): records every POST; answers ``statuses`` in turn, then 200."""

    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                hook.posts.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(hook.statuses.pop(0) if hook.statuses else 200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def payloads(self) -> list[dict]:
        return [json.loads(body) for _, body in self.posts]


@pytest.fixture
def hook() -> Iterator[Hook]:
    receiver = Hook()
    yield receiver
    receiver.server.shutdown()


@pytest.fixture(params=ENGINES)
def deployment_env(
    request: pytest.FixtureRequest, herald_env, hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> Warehouse:
    env = {
        **herald_env(request.param),
        "HERALD_OPERATOR_EMAIL": OPERATOR,
        "HERALD_ALERT_WEBHOOK_URL": hook.url,
        "HERALD_ALERT_WEBHOOK_SECRET": SECRET,
        "HERALD_DAGSTER_URL": DAGSTER_URL,
        "HERALD_OPERATOR_FAILED_OR_HELD_COUNT": "3",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    warehouse = Warehouse(Settings.from_env(env).warehouse)
    warehouse.ensure_schema()
    return warehouse


def operator_emails() -> list[dict]:
    """The operator emails the sandbox accepted (its journal under $HERALD_HOME/sandbox)."""
    journal = Settings.from_env().home / "sandbox" / "email.jsonl"
    lines = [json.loads(line) for line in journal.read_text().splitlines()] if journal.exists() else []
    return [e for e in lines if e["message_key"].startswith("operator-")]


@dg.op
def explode() -> None:
    raise RuntimeError("the warehouse went away")


@dg.job
def exploding_job() -> None:
    explode()


def failed_run(instance: dg.DagsterInstance) -> dg.RunFailureSensorContext:
    result = exploding_job.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    return dg.build_run_status_sensor_context(
        sensor_name="run_failure_sensor",
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=result.get_run_failure_event(),
        resources={"warehouse": WarehouseResource(), "providers": ProvidersResource(),
                   "herald_config": HeraldConfigResource()},
    ).for_run_failure()  # fmt: skip


def test_a_failed_run_is_told_once_and_another_failed_run_is_a_new_incident(
    deployment_env: Warehouse, hook: Hook, tmp_path: Path
) -> None:
    from sensors.operator_alerts import run_failure_sensor

    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        first = failed_run(instance)
        for _ in range(3):  # the sensor evaluated again (a lost cursor, a second daemon tick)
            run_failure_sensor(first)
        run_id = first.dagster_run.run_id

        emails = operator_emails()
        assert len(emails) == 1 and len(hook.posts) == 1
        assert f"{DAGSTER_URL}/runs/{run_id}" in emails[0]["text"]
        assert emails[0]["subject"] == f"[herald] run of exploding_job failed ({run_id[:8]})"
        headers, body = hook.posts[0]
        payload = Webhook(SECRET).verify(body, headers)  # raises unless signed with the secret
        assert payload["kind"] == "run_failure" and payload["run_id"] == run_id
        assert payload["link"] == f"{DAGSTER_URL}/runs/{run_id}"
        assert "the warehouse went away" in payload["detail"]["error"]

        second = failed_run(instance)
        run_failure_sensor(second)
        run_failure_sensor(second)

    assert len(operator_emails()) == 2 and len(hook.posts) == 2
    assert hook.payloads()[1]["run_id"] == second.dagster_run.run_id
    with deployment_env.session(read_only=True) as s:
        incidents = list_incidents(s)
    assert sorted(i.incident_key for i in incidents) == sorted(
        [f"run_failure:{run_id}", f"run_failure:{second.dagster_run.run_id}"]
    )
    assert {(i.email_status, i.webhook_status, i.status) for i in incidents} == {("sent", "sent", "closed")}


def failed_messages(warehouse: Warehouse, prefix: str, n: int, at: datetime) -> list[str]:
    keys = [f"{prefix}-{i}" for i in range(n)]
    with warehouse.session() as s:
        enqueue(s, [OutboxMessage(
            message_key=k, client_id="bright_smiles_dental", campaign="appointment_reminder", step="remind",
            variant="a", occurrence=prefix, contact_id=f"c-{k}", message_type="appointment_reminder",
            category="transactional", channel="sms", to_address="+15125550142", sender="+15125550100",
            send_after=at, body_text="hi", status="held", status_reason="insufficient credits: 0 left",
        ) for k in keys], at)  # fmt: skip
    return keys


def test_the_failed_or_held_threshold_alerts_once_per_crossing(deployment_env: Warehouse, hook: Hook) -> None:
    settings = operator_alert_settings()
    providers = providers_from_env()

    def check(at: datetime, run_id: str = "run-1"):
        with deployment_env.session() as s:
            return check_failed_or_held(s, settings, providers, OPERATOR, at, run_id)

    failed_messages(deployment_env, "a", 2, NOW)
    assert check(NOW).opened is None  # 2 < 3
    failed_messages(deployment_env, "b", 2, NOW)
    crossed = check(NOW + timedelta(minutes=5))
    assert crossed.opened is not None and crossed.observed == 4
    assert crossed.opened.link == f"{DAGSTER_URL}/runs/run-1"
    for minutes in (10, 15, 20):  # still over: the open incident is not told again
        again = check(NOW + timedelta(minutes=minutes))
        assert again.opened is None and again.open is not None
    assert len(operator_emails()) == 1 and len(hook.posts) == 1
    assert hook.payloads()[0]["detail"]["by_client"] == {"bright_smiles_dental": 4}

    # a day later the window holds none of them: recovered, and nobody is told
    recovered = check(NOW + timedelta(hours=25))
    assert recovered.recovered is not None and recovered.recovered.status == RECOVERED
    assert len(operator_emails()) == 1 and len(hook.posts) == 1

    failed_messages(deployment_env, "c", 3, NOW + timedelta(hours=26))
    second = check(NOW + timedelta(hours=26, minutes=5), "run-2")
    assert second.opened is not None and second.opened.incident_id != crossed.opened.incident_id
    assert len(operator_emails()) == 2 and len(hook.posts) == 2
    assert "3 messages failed or held" in operator_emails()[1]["subject"]
    with deployment_env.session(read_only=True) as s:
        _, rows = s.query(f"select status from {INCIDENTS} where incident_key = ? order by opened_at", [FAILED_OR_HELD])
    assert [r[0] for r in rows] == ["recovered", "open"]


def test_a_webhook_answering_503_is_retried_and_one_that_stays_down_is_recorded_failed(hook: Hook) -> None:
    settings = operator_alert_settings({"HERALD_ALERT_WEBHOOK_URL": hook.url, "HERALD_ALERT_WEBHOOK_SECRET": SECRET})
    incident = run_failure_incident("run-9", "deliver_messages_job", "boom", settings, NOW)
    hook.statuses = [503]
    assert post_webhook(incident, settings, wait_seconds=0.01) == ("sent", None)
    assert len(hook.posts) == 2 and {h["webhook-id"] for h, _ in hook.posts} == {incident.incident_id}
    hook.statuses = [500, 500, 500]
    assert post_webhook(incident, settings, wait_seconds=0.01) == ("failed", "HTTP 500 (3 attempts)")
    refused = operator_alert_settings({"HERALD_ALERT_WEBHOOK_URL": "http://127.0.0.1:9/alerts"})
    status, error = post_webhook(incident, refused, wait_seconds=0.01, timeout=1)
    assert status == "failed" and error is not None and error.endswith("(3 attempts)")


def test_the_cli_lists_incidents(deployment_env: Warehouse, hook: Hook) -> None:
    import os
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    failed_messages(deployment_env, "a", 3, NOW)
    with deployment_env.session() as s:
        check_failed_or_held(s, operator_alert_settings(), providers_from_env(), OPERATOR, NOW, "run-7")

    def herald(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "herald.cli", "alerts", "incidents", *args], env={**os.environ},
                              cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip

    listed = herald("--open")
    assert listed.returncode == 0, listed.stderr
    out = " ".join(listed.stdout.split())
    assert "failed_or_held" in out and "open" in out and "sent" in out and "run-7" in out
