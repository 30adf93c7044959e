"""Two-way messaging as a user runs it: `herald serve` beside `herald tick` on a demo
deployment. A signed inbound STOP through the webhook suppresses the contact, cancels their
queued reminder before any later delivery, and sends exactly one confirmation; a forged one
changes nothing; a delivery callback for that confirmation shows in marts.deliveries."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from twilio.request_validator import RequestValidator

from tests.conftest import CONFIG_DIR, REPO_ROOT

HERALD = str(Path(sys.executable).parent / "herald")
TOKEN = "twilio-test-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Deployment:
    def __init__(self, home: Path, port: int):
        self.url = f"http://127.0.0.1:{port}"
        self.env = {
            **os.environ, "HERALD_HOME": str(home), "HERALD_CONFIG_DIR": str(CONFIG_DIR), "HERALD_WAREHOUSE_URL": "",
            "HERALD_PUBLIC_URL": self.url, "TWILIO_AUTH_TOKEN": TOKEN, "COLUMNS": "250",
        }  # fmt: skip

    def herald(self, *args: str) -> str:
        done = subprocess.run([HERALD, *args], env=self.env, cwd=REPO_ROOT, capture_output=True, text=True)
        assert done.returncode == 0, f"herald {args}: {done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done.stdout

    def sql(self, query: str) -> list[dict]:
        return json.loads(self.herald("sql", "--format", "json", query))

    def post_twilio(self, path: str, params: dict[str, str], *, forge: bool = False) -> httpx.Response:
        signature = RequestValidator(TOKEN).compute_signature(f"{self.url}{path}", params)
        if forge:
            params = {**params, "Body": "START"}  # signed for another body
        return httpx.post(f"{self.url}{path}", data=params, headers={"X-Twilio-Signature": signature})


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    d = Deployment(tmp_path_factory.mktemp("two-way") / "home", free_port())
    d.herald("demo")
    server = subprocess.Popen([HERALD, "serve", "--port", d.url.rsplit(":", 1)[1]], env=d.env, cwd=REPO_ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{d.url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "herald serve did not start"
            time.sleep(0.3)
        yield d
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_signed_stop_suppresses_cancels_and_confirms_once(deployed: Deployment) -> None:
    # a patient whose one reminder still waits in the outbox (for an appointment days after the
    # demo's clock; the demo's own replies aside)
    (waiting,) = deployed.sql(
        "select to_address, min(sender) as sender from herald_ops.outbox where client_id = 'bright_smiles_dental' "
        "group by to_address having count(*) = 1 and min(campaign) = 'appointment_reminder' "
        "and min(status) = 'queued' order by to_address desc limit 1"
    )
    inbound = {"MessageSid": "SM" + "e" * 32, "From": waiting["to_address"], "To": waiting["sender"],
               "Body": "stop texting me", "AccountSid": "AC123"}  # fmt: skip
    forged = deployed.post_twilio("/webhooks/twilio/inbound", {**inbound, "MessageSid": "SM" + "f" * 32}, forge=True)
    assert forged.status_code == 403
    assert deployed.post_twilio("/webhooks/twilio/inbound", inbound).status_code == 200
    # the provider retries the same message: stored and applied once
    assert deployed.post_twilio("/webhooks/twilio/inbound", inbound).status_code == 200

    deployed.herald("tick", "--force", "--until-idle")
    messages = deployed.sql(
        "select campaign, status from herald_ops.outbox where to_address = '" + waiting["to_address"] + "' order by 1"
    )
    assert messages == [
        {"campaign": "_replies", "status": "sent"},
        {"campaign": "appointment_reminder", "status": "cancelled"},
    ]
    # (exact ids: the sandbox's own replies have random SM… ids of their own)
    (processed,) = deployed.sql(
        f"select kind, action from herald_ops.inbound_processing where inbound_id = '{inbound['MessageSid']}'"
    )
    assert processed == {"kind": "opt_out", "action": "suppressed"}
    assert deployed.sql(
        "select count(*) as n from herald_ops.inbound_processing where inbound_id = 'SM" + "f" * 32 + "'"
    ) == [{"n": 0}]
    assert deployed.sql(
        "select count(*) as n from herald_ops.suppressions where address = '" + waiting["to_address"] + "'"
    ) == [{"n": 1}]
    # the marts the STOP changed were rebuilt by the runs that applied it, not by a later build
    address = waiting["to_address"]
    (suppression,) = deployed.sql(
        f"select client_id, contact_id, reason from herald_ops.suppressions where address = '{address}'"
    )
    assert deployed.sql(
        "select client_id, contact_id, reason from marts.suppressions where reason = 'opt_out' "
        f"and client_id = '{suppression['client_id']}' and contact_id = '{suppression['contact_id']}'"
    ) == [suppression]
    keys = f"select message_key from herald_ops.outbox where to_address = '{address}'"
    in_mart = deployed.sql(f"select campaign, status from marts.messages where message_key in ({keys}) order by 1")
    assert in_mart == messages
    assert deployed.sql(
        "select count(*) as n from marts.conversation_messages "
        f"where conversation_message_id = 'in:{inbound['MessageSid']}'"
    ) == [{"n": 1}]


def test_a_delivery_callback_updates_marts_deliveries(deployed: Deployment) -> None:
    (reply,) = deployed.sql(
        "select message_key, provider_message_id, to_address, sender from herald_ops.outbox "
        "where campaign = '_replies' and step = 'opt_out_confirmation' and status = 'sent' "
        "and provider_message_id is not null order by sent_at desc limit 1"
    )
    status = {"MessageSid": reply["provider_message_id"], "MessageStatus": "delivered",
              "To": reply["to_address"], "From": reply["sender"], "AccountSid": "AC123"}  # fmt: skip
    assert deployed.post_twilio("/webhooks/twilio/status", status).status_code == 204
    late = {**status, "MessageStatus": "sent"}
    assert deployed.post_twilio("/webhooks/twilio/status", late).status_code == 204
    deployed.herald("tick", "--force", "--until-idle")
    (row,) = deployed.sql(
        "select final_status, delivered_at is not null as delivered from marts.deliveries "
        "where message_key = '" + reply["message_key"] + "'"
    )
    assert row == {"final_status": "delivered", "delivered": True}


def _due(deployed: Deployment) -> dict:
    """The queued message due first, and when (naive UTC, business time)."""
    (row,) = deployed.sql(
        "select message_key, greatest(send_after, coalesce(next_attempt_at, send_after)) as due_at "
        "from herald_ops.outbox where status = 'queued' order by 2, 1 limit 1"
    )
    return {"message_key": row["message_key"], "due_at": datetime.fromisoformat(row["due_at"])}


def _tick_at(deployed: Deployment, at: datetime) -> list[dict]:
    """One forced `herald tick --json` with the business clock reading ``at`` (naive UTC) when the
    command starts (its sensors evaluate a few seconds later)."""
    offset = (at - datetime.now(UTC).replace(tzinfo=None)).total_seconds()
    done = subprocess.run([HERALD, "tick", "--force", "--json"], env={**deployed.env, "HERALD_CLOCK_OFFSET": str(offset)},
                          cwd=REPO_ROOT, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout)


def test_a_deferred_message_goes_out_at_the_first_tick_after_its_time(deployed: Deployment) -> None:
    """messages_due_sensor, on the controlled clock: a tick a minute before a queued message's time
    requests no delivery run and says when the next message is due; the first tick after it
    requests one, which sends the message and refreshes marts.messages in the same run."""
    due = _due(deployed)
    (before,) = _tick_at(deployed, due["due_at"] - timedelta(seconds=60))
    assert "deliver_messages_job" not in {r["job_name"] for r in before["runs"]}
    (sensor,) = [t for t in before["ticks"] if t["name"] == "messages_due_sensor"]
    assert sensor["status"] == "SKIPPED"
    assert f"the next one is due at {due['due_at']:%Y-%m-%d %H:%M:%S}" in sensor["skip_reason"]
    assert deployed.sql(f"select status from herald_ops.outbox where message_key = '{due['message_key']}'") == [
        {"status": "queued"}
    ]

    (after,) = _tick_at(deployed, due["due_at"] + timedelta(seconds=1))
    delivery = [r for r in after["runs"] if r["job_name"] == "deliver_messages_job"]
    assert [r["status"] for r in delivery] == ["SUCCESS"]
    (sent,) = deployed.sql(f"select status, sent_at from herald_ops.outbox where message_key = '{due['message_key']}'")
    assert sent["status"] == "sent" and datetime.fromisoformat(sent["sent_at"]) >= due["due_at"]
    assert deployed.sql(f"select status from marts.messages where message_key = '{due['message_key']}'") == [
        {"status": "sent"}
    ]
