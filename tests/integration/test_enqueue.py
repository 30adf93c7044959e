"""Rendering the plan into the outbox on both engines: exact bodies, held messages that name
the missing variable and contact, signed unsubscribe headers, and idempotent re-runs."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from herald.campaigns.enqueue import enqueue_planned
from herald.campaigns.links import Links
from herald.messages.unsubscribe import read_token
from herald.warehouse.connection import Warehouse
from tests.conftest import CONFIG_DIR, ENGINES

NOW = datetime(2026, 11, 20, 15, 0)
LINKS = Links("https://herald.example", "test-secret")
PLAN_DDL = """create table marts.message_plan (
    message_key varchar, client_id varchar, campaign varchar, step varchar, occurrence varchar,
    contact_id varchar, message_type varchar, category varchar, channel varchar, to_address varchar,
    variant varchar, template varchar, subject_template varchar, send_after timestamp,
    variables {json}, status varchar)"""


def plan_row(key: str, contact: str, variables: dict, **overrides) -> list:
    row = {
        "message_key": key, "client_id": "bright_smiles_dental", "campaign": "appointment_reminder",
        "step": "reminder", "occurrence": "packet:p1", "contact_id": contact,
        "message_type": "appointment_reminder", "category": "transactional", "channel": "sms",
        "to_address": "+13125550100", "variant": "friendly", "template": "appointment_reminder_friendly.sms.j2",
        "subject_template": None, "send_after": NOW, "variables": json.dumps(variables), "status": "planned",
    }  # fmt: skip
    row.update(overrides)
    return list(row.values())


@pytest.fixture
def plan(warehouse: Warehouse) -> Warehouse:
    json_type = "json" if warehouse.engine == "duckdb" else "jsonb"
    with warehouse.session() as s:
        s.execute(PLAN_DDL.format(json=json_type))
        rows = [
            plan_row("k1", "ana", {"first_name": "Ana", "client_name": "Bright Smiles Dental",
                                   "appointment_at": "2026-11-21 15:00:00"}),
            # no appointment_at: this message is held, the others go out
            plan_row("k2", "bob", {"first_name": "Bob", "client_name": "Bright Smiles Dental"}),
            plan_row("k3", "cy", {"first_name": "Cy", "client_name": "Bright Smiles Dental"},
                     campaign="admitted_nurture", client_id="northfield_college", step="welcome",
                     channel="email", to_address="cy@example.com", variant="program_focus",
                     template="nurture_welcome_program.mjml.j2",
                     subject_template="{{ first_name }}, your place in {{ program }} is waiting"),
            plan_row("k4", "di", {"first_name": "Di", "program": "B.S. Nursing", "client_name": "Northfield College"},
                     campaign="admitted_nurture", client_id="northfield_college", step="welcome",
                     channel="email", to_address="di@example.com", variant="program_focus",
                     template="nurture_welcome_program.mjml.j2",
                     subject_template="{{ first_name }}, your place in {{ program }} is waiting"),
            plan_row("k5", "ed", {}, status="excluded"),
        ]  # fmt: skip
        for row in rows:
            s.execute(f"insert into marts.message_plan values ({', '.join('?' * len(row))})", row)
    return warehouse


def outbox(warehouse: Warehouse) -> dict[str, dict]:
    with warehouse.session(read_only=True) as s:
        names, rows = s.query("select * from herald_ops.outbox order by message_key")
    return {r[0]: dict(zip(names, r, strict=False)) for r in rows}


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_planned_messages_are_rendered_and_a_missing_variable_holds_only_that_message(plan, deployment) -> None:
    with plan.session() as s:
        report = enqueue_planned(s, deployment, CONFIG_DIR, LINKS, NOW)
    assert (report.considered, report.enqueued, report.held) == (4, 4, 2)
    rows = outbox(plan)
    assert set(rows) == {"k1", "k2", "k3", "k4"}  # the excluded contact has no message

    ana = rows["k1"]
    assert ana["status"] == "queued"
    # 15:00 UTC is 09:00 in the clinic's time zone (America/Chicago)
    assert ana["body_text"] == (
        "Hi Ana, Bright Smiles Dental here: see you Sat Nov 21 at 09:00 AM. Reply C to confirm, R to reschedule.\n"
        "Reply STOP to opt out."
    )
    assert (ana["sms_segments"], ana["sms_encoding"], ana["sender"]) == (1, "GSM-7", "+15125550100")

    bob = rows["k2"]
    assert bob["status"] == "held"
    assert bob["status_reason"] == (
        "template 'appointment_reminder_friendly.sms.j2': variable 'appointment_at' is undefined for contact bob"
    )
    assert rows["k3"]["status"] == "held" and "'program' is undefined for contact cy" in rows["k3"]["status_reason"]

    di = rows["k4"]
    assert di["status"] == "queued"
    assert di["subject"] == "Di, your place in B.S. Nursing is waiting"
    assert "B.S. Nursing" in di["body_html"] and "B.S. Nursing" in di["body_text"]
    headers = di["headers"] if isinstance(di["headers"], dict) else json.loads(di["headers"])
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = headers["List-Unsubscribe"].strip("<>")
    assert url.startswith("https://herald.example/u/") and url.endswith("/one-click")
    token = read_token("test-secret", url.removeprefix("https://herald.example/u/").removesuffix("/one-click"))
    assert (token.client_id, token.contact_id, token.channel) == ("northfield_college", "di", "email")
    assert url.removesuffix("/one-click") in di["body_text"]


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_enqueueing_again_adds_nothing(plan, deployment) -> None:
    with plan.session() as s:
        enqueue_planned(s, deployment, CONFIG_DIR, LINKS, NOW)
    first = outbox(plan)
    with plan.session() as s:
        again = enqueue_planned(s, deployment, CONFIG_DIR, LINKS, datetime(2026, 11, 20, 16, 0))
    assert (again.considered, again.enqueued) == (0, 0)
    assert outbox(plan) == first
