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
