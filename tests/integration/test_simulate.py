"""`herald campaign simulate` and `preview`: the send's own plan on a scratch copy of the
warehouse, with the example college nurture (config/clients/northfield_college) over 14 days.

The warehouse holds hand-made marts (20 admitted leads, a third of them in Nursing) and the
example configuration's tables; the simulation's recipients answer deterministically per message,
so the test reads who clicked, replied and enrolled from the result and checks each contact's
path against it. The same tests run on PostgreSQL from test_simulate_postgres.py.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from herald.campaigns.links import links_from_env
from herald.campaigns.preview import preview_plan
from herald.campaigns.simulate import Engagement, Simulation, simulate
from herald.config import load_deployment
from herald.settings import Settings
from herald.warehouse.config_tables import load_config_tables
from herald.warehouse.connection import Warehouse
from tests.conftest import CONFIG_DIR
from tests.integration.test_message_plan import LOADED, MART_DDL, dbt_run, insert

COLLEGE = "northfield_college"
START = datetime(2026, 11, 16, 15, 0)  # Monday 10:00 in New York, when the daily schedule fires
TIMEOUT = timedelta(days=3)  # admitted_nurture's wait_for_click
LEADS = {f"s{i:02d}": "B.S. Nursing" if i % 3 == 0 else "B.S. Biology" for i in range(1, 21)}
RATES = Engagement(delivery_rate=0.9, click_rate=0.3, reply_rate=0.1, goal_rate=0.4)


def build(env: dict[str, str], tmp: Path) -> tuple[Warehouse, Settings]:
    settings = Settings.from_env(env)
    warehouse = Warehouse(settings.warehouse)
    warehouse.ensure_schema()
    json_type = "json" if warehouse.engine == "duckdb" else "jsonb"
    with warehouse.session() as s:
        for ddl in MART_DDL:
            s.execute(ddl.format(json=json_type))
        load_config_tables(s, load_deployment(CONFIG_DIR))
        for contact, program in LEADS.items():
            s.execute(
                "insert into marts.contacts values (?, ?, ?, ?, 'Lee', ?, true, null, false, null, null)",
                [contact, COLLEGE, contact.upper(), f"Name{contact}", f"{contact}@example.com"],
            )
            s.execute(
                "insert into marts.contact_attributes values (?, ?, 'program', 'string', ?, null, null, null, null, "
                "null, ?, true)",
                [contact, COLLEGE, program, program],
            )
            insert(s, "marts.segment_members", [(COLLEGE, "admitted_not_enrolled", contact, LOADED, LOADED)])
    dbt_run(warehouse, tmp, select=("contact_template_variables",))
    return warehouse, settings


def run_simulation(env: dict[str, str], tmp: Path) -> tuple[Simulation, Warehouse, Path]:
    warehouse, settings = build(env, tmp)
    deployment = load_deployment(CONFIG_DIR)
    campaign = deployment.clients[COLLEGE].campaigns["admitted_nurture"]
    passes: list[datetime] = []
    result = simulate(
        warehouse.target, deployment, CONFIG_DIR, links_from_env(settings.home), COLLEGE, campaign,
        start=START, days=14, every=timedelta(days=1), rates=RATES, progress=lambda o, total: passes.append(o.at),
    )  # fmt: skip
    assert passes == [START + timedelta(days=d) for d in range(15)]
    return result, warehouse, settings.home


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Simulation, Warehouse, Path]:
    tmp = tmp_path_factory.mktemp("simulate")
    return run_simulation({"HERALD_HOME": str(tmp / "home"), "HERALD_WAREHOUSE_URL": ""}, tmp)


def sent(result: Simulation, step: str) -> list[dict]:
    return [m for m in result.outbox if m["step"] == step and m["status"] == "sent"]


def check_the_college_nurture(result: Simulation) -> None:
    # every admitted lead gets exactly one welcome, however often the daily schedule fired
    welcomes = sent(result, "welcome")
    assert Counter(m["contact_id"] for m in welcomes) == dict.fromkeys(LEADS, 1)
    assert {m["sent_at"] for m in welcomes} == {START}
    clicked = {m["contact_id"] for m in welcomes if m["clicked_at"] is not None}
    replied = {c for c, at in result.replied_at.items() if at < START + TIMEOUT}
    enrolled = {c for c, at in result.goal_at.items() if at < START + TIMEOUT}
    # the simulated world did a bit of everything (else the checks below prove little)
    assert clicked and replied and enrolled and set(LEADS) - clicked - replied - enrolled
    # the follow-up goes exactly to those who neither clicked nor enrolled (nor replied: exit on reply)
    follow_ups = sent(result, "follow_up")
    assert {m["contact_id"] for m in follow_ups} == set(LEADS) - clicked - replied - enrolled
    # ... when the three days ran out, in the window (the daily 09:00 pass)
    assert {m["sent_at"] for m in follow_ups} == {START + TIMEOUT}
    # the application link only to clickers who had not left by then
    assert {m["contact_id"] for m in sent(result, "application_link")} <= clicked - replied
    # those who enrolled or replied left the journey with that reason; nobody got anything after
    ledger = {contact: (status, reason) for contact, status, reason in result.ledger}
    for contact in enrolled - replied:
        assert ledger[contact] == ("exited", "goal reached"), contact
    for contact in replied:
        assert ledger[contact] == ("exited", "replied"), contact
    for m in result.outbox:
        left = min(
            result.replied_at.get(m["contact_id"], datetime.max), result.goal_at.get(m["contact_id"], datetime.max)
        )
        if m["status"] == "sent" and m["contact_id"] in replied | enrolled:
            assert m["sent_at"] <= left, m
    # the branch: Nursing students who went on get the program's note a day later, nobody else
    notes = {m["contact_id"] for m in sent(result, "nursing_note")}
    assert notes and all(LEADS[c] == "B.S. Nursing" for c in notes)
    # the funnel a marketer reads agrees with the messages
    funnel = {row["step"]: row for row in result.funnel}
    assert funnel["welcome"]["messaged"] == 20
    assert funnel["follow_up"]["messaged"] == len(follow_ups)
    assert funnel["wait_for_click"]["took_no"] == len(follow_ups)
    assert funnel["nursing_note"]["messaged"] == len(notes)
    assert result.enrollments == Counter(status for status, _ in ledger.values())
    assert sum(result.enrollments.values()) == 20


def check_nothing_real_was_written(warehouse: Warehouse) -> None:
    with warehouse.session(read_only=True) as s:
        for table in ("herald_ops.outbox", "herald_ops.enrollments", "herald_ops.campaign_occurrences"):
            assert s.scalar(f"select count(*) from {table}") == 0, table


def test_the_college_nurture_over_14_days(simulated: tuple[Simulation, Warehouse, Path]) -> None:
    result, warehouse, _ = simulated
    check_the_college_nurture(result)
    check_nothing_real_was_written(warehouse)


def check_preview(warehouse: Warehouse, settings_home: Path) -> None:
    deployment = load_deployment(CONFIG_DIR)
    campaign = deployment.clients[COLLEGE].campaigns["admitted_nurture"]
    preview = preview_plan(
        warehouse.target, deployment, CONFIG_DIR, links_from_env(settings_home), COLLEGE, campaign, START
    )
    assert preview.audience == 20
    welcomes = [r for r in preview.rows if r.step == "welcome"]
    assert {r.contact_id for r in welcomes} == set(LEADS) and {r.outcome for r in welcomes} == {"planned"}
    assert {r.send_after for r in welcomes} == {START}
    assert all(r.subject and r.body_text and r.channel == "email" for r in welcomes)
    # rendered as it would go out: the one-click unsubscribe headers of a marketing email
    assert all(r.headers.get("List-Unsubscribe-Post") == "List-Unsubscribe=One-Click" for r in welcomes)
    waiting = [r for r in preview.rows if r.outcome == "waiting"]
    assert {r.step for r in waiting} == {"wait_for_click"} and len(waiting) == 20
    assert {r.send_after for r in waiting} == {START + TIMEOUT}  # when the wait times out
    check_nothing_real_was_written(warehouse)


def test_preview_plans_the_first_pass_and_writes_nothing(simulated: tuple[Simulation, Warehouse, Path]) -> None:
    _, warehouse, home = simulated
    check_preview(warehouse, home)
