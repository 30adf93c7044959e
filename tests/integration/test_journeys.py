"""Journeys over several days with a controlled clock, on hand-made marts (DuckDB here; the same
tests run on PostgreSQL from test_journeys_postgres.py).

Each pass is what a send run does: record the clock (herald_ops.plan_runs), run the journey
walk and the message plan in dbt, apply the transitions to the enrollment ledger (cancelling the
messages of exits), and enqueue the planned messages. Between passes the test plays the world:
messages due are "sent", a contact clicks, another replies, another reaches the goal stage.

- roofing: 625 homeowners imported at once, 125 emails a day, template A/B 50/50, enrolled once;
- nurture: a daily schedule; welcome, then wait up to 2d12h for a click (yes: the application
  link; no: a follow-up), exit on reply and on the goal stage 'enrolled';
- drip: two emails three days apart, exit on reply;
- spring and gutter: two SMS offers sharing the sender's quota of 120 texts a day
  (``senders.daily_limit.sms``), the spring offer's 100 entered an hour before the gutter offer's 150.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from herald.campaigns.journeys import apply_transitions, record_plan_run
from herald.campaigns.occurrences import mark_planned
from herald.compliance.windows import legal_window_rows
from herald.delivery.outbox import OutboxMessage, enqueue
from herald.warehouse.config_tables import variant_buckets
from herald.warehouse.connection import Warehouse
from tests.integration.test_message_plan import CLIENT, LOADED, MART_DDL, TZ, dbt_run, insert, insert_versioned

DAY0 = datetime(2026, 11, 16, 15, 0)  # Monday 09:00 in Chicago
PASSES = [DAY0, DAY0 + timedelta(days=1), DAY0 + timedelta(days=2), DAY0 + timedelta(days=3, hours=-1),
          DAY0 + timedelta(days=4)]  # fmt: skip
HOMEOWNERS = [f"k{i:03d}" for i in range(1, 626)]
STUDENTS = ["j1", "j2", "j3", "j4"]
LATE_STUDENT = "j5"  # joins the audience before the second pass

SENDER_QUOTA = 120
SPRING = [f"s{i:03d}" for i in range(1, 101)]
GUTTER = [f"g{i:03d}" for i in range(1, 151)]

CAMPAIGNS = [
    # name, message type, category, audience, daily limit, rule, first step, exit on reply, goal stage
    ("roofing", "announcement", "marketing", "homeowners", 125, "once", "offer", False, None),
    ("nurture", "lead_nurture", "marketing", "admitted", None, "once", "welcome", True, "enrolled"),
    ("drip", "lead_nurture", "marketing", "drippers", None, "once", "first", True, None),
    ("spring", "announcement", "marketing", "spring_list", None, "once", "offer", False, None),
    ("gutter", "announcement", "marketing", "gutter_list", None, "once", "offer", False, None),
]
STEPS = [
    # campaign, step, position, channel, anchor minutes, kind, next, event, timeout, yes, no
    ("roofing", "offer", 1, "email", 0, "message", None, None, None, None, None),
    ("nurture", "welcome", 1, "email", 0, "message", "wait_click", None, None, None, None),
    ("nurture", "wait_click", 2, None, 0, "wait_for", None, "clicked", 3600, "apply_link", "follow_up"),
    ("nurture", "follow_up", 3, "email", 0, "message", None, None, None, None, None),
    ("nurture", "apply_link", 4, "email", 0, "message", None, None, None, None, None),
    ("drip", "first", 1, "email", 0, "message", "second", None, None, None, None),
    ("drip", "second", 2, "email", 3 * 24 * 60, "message", None, None, None, None, None),
    ("spring", "offer", 1, "sms", 0, "message", None, None, None, None, None),
    ("gutter", "offer", 1, "sms", 0, "message", None, None, None, None, None),
]


def email(contact: str) -> str:
    return f"{contact}@example.com"


def build(warehouse: Warehouse) -> None:
    warehouse.ensure_schema()
    json_type = "json" if warehouse.engine == "duckdb" else "jsonb"
    with warehouse.session() as s:
        for ddl in MART_DDL:
            s.execute(ddl.format(json=json_type))
        insert(s, "herald_ops.clients", [(CLIENT, "Acme", "education", TZ, "US", LOADED)])
        insert(s, "herald_ops.send_windows", [(CLIENT, d, 540, 1200) for d in range(1, 8)])
        insert(s, "herald_ops.campaign_send_windows", [
            (CLIENT, name, d, 540, 1200, None) for name, *_ in CAMPAIGNS for d in range(1, 8)
        ])  # fmt: skip
        insert(s, "herald_ops.legal_windows", list(legal_window_rows()))
        insert(s, "herald_ops.campaigns", [
            (CLIENT, name, kind, category, "active", audience, "schedule", None, None, None, None, limit, None, LOADED,
             rule, None, "v1", first, reply, True, False, False, goal, None)
            for name, kind, category, audience, limit, rule, first, reply, goal in CAMPAIGNS
        ])  # fmt: skip
        insert_versioned(s, "herald_ops.campaign_steps", [
            (CLIENT, campaign, step, position, channel, None, None, None, minutes, kind, next_step, None, None, None,
             event, None, timeout, yes, no, None)
            for campaign, step, position, channel, minutes, kind, next_step, event, timeout, yes, no in STEPS
        ], "v1")  # fmt: skip
        buckets = variant_buckets([50, 50])
        variants = [("roofing", "offer", "a", 50, *buckets[0]), ("roofing", "offer", "b", 50, *buckets[1])]
        variants += [(c, step, "only", 1, 0, 10000) for c, step, _, channel, *_ in STEPS if channel and c != "roofing"]
        insert_versioned(s, "herald_ops.campaign_variants", [
            (CLIENT, c, step, v, w, low, high, None, f"{c}_{step}_{v}.mjml.j2", "Hello") for c, step, v, w, low, high in variants
        ], "v1")  # fmt: skip
        people = [(c, "homeowners") for c in HOMEOWNERS] + [(c, "admitted") for c in STUDENTS] + [("d1", "drippers")]
        for contact, segment in [*people, (LATE_STUDENT, None)]:
            s.execute(
                "insert into marts.contacts values (?, ?, ?, ?, null, ?, true, null, false, null, null)",
                [contact, CLIENT, contact.upper(), f"Name{contact}", email(contact)],
            )
            if segment:
                insert(s, "marts.segment_members", [(CLIENT, segment, contact, LOADED, LOADED)])
        texters = [(c, "spring_list") for c in SPRING] + [(c, "gutter_list") for c in GUTTER]
        for n, (contact, segment) in enumerate(texters):
            s.execute(
                "insert into marts.contacts values (?, ?, ?, ?, null, null, false, ?, true, null, null)",
                [contact, CLIENT, contact.upper(), f"Name{contact}", f"+1312555{1000 + n:04d}"],
            )
            insert(s, "marts.segment_members", [(CLIENT, segment, contact, LOADED, LOADED)])
        insert(s, "herald_ops.sender_quotas", [(CLIENT, "sms", "+13125550000", SENDER_QUOTA)])
        insert(s, "herald_ops.campaign_occurrences", [
            (CLIENT, "roofing", "manual:import", "manual", DAY0, None, None, "test", DAY0, None),
            (CLIENT, "drip", "manual:start", "manual", DAY0, None, None, "test", DAY0, None),
            (CLIENT, "spring", "manual:start", "manual", DAY0 - timedelta(hours=1), None, None, "test", DAY0, None),
            (CLIENT, "gutter", "manual:start", "manual", DAY0, None, None, "test", DAY0, None),
        ])  # fmt: skip


def daily_nurture(warehouse: Warehouse, at: datetime) -> None:
    """The nurture's daily schedule fires (it would re-enroll everyone without the ledger)."""
    with warehouse.session() as s:
        insert(s, "herald_ops.campaign_occurrences", [
            (CLIENT, "nurture", at.strftime("%Y-%m-%dT%H:%M"), "schedule", at, None, None, "test", at, None)
        ])  # fmt: skip


def enqueue_planned_rows(warehouse: Warehouse, at: datetime) -> None:
    with warehouse.session() as s:
        names, rows = s.query(
            "select * from marts.message_plan as plan where status = 'planned' "
            "and not exists (select 1 from herald_ops.outbox as o where o.message_key = plan.message_key)"
        )
        messages = []
        for row in rows:
            r = dict(zip(names, row, strict=False))
            messages.append(
                OutboxMessage(
                    message_key=r["message_key"], client_id=r["client_id"], campaign=r["campaign"], step=r["step"],
                    variant=r["variant"], occurrence=r["occurrence"], contact_id=r["contact_id"],
                    message_type=r["message_type"], category=r["category"], channel=r["channel"],
                    to_address=r["to_address"], send_after=r["send_after"], sender="acme@example.com",
                    template=r["template"], subject="Hello", body_text="Hello", body_html="<p>Hello</p>",
                )
            )  # fmt: skip
        enqueue(s, messages, at)


def send_due(warehouse: Warehouse, at: datetime, *, before: bool = False) -> None:
    """Delivery: every queued message due by ``at`` (``before``: due before it) is sent, at its time."""
    with warehouse.session() as s:
        s.execute(
            "update herald_ops.outbox set status = 'sent', sent_at = send_after, updated_at = ? "
            f"where status = 'queued' and send_after {'<' if before else '<='} ?",
            [at, at],
        )


def run_pass(
    warehouse: Warehouse, tmp: Path, at: datetime, *, crash_after_plan: bool = False, outbox_down: bool = False
) -> None:
    """A send run at ``at``; ``outbox_down``: it plans and enqueues but nothing is sent."""
    if not outbox_down:
        # the outbox sent what fell due since the last pass, each at its time (messages_due_sensor releases each when due)
        send_due(warehouse, at, before=True)
    with warehouse.session() as s:
        record_plan_run(s, f"pass-{at:%Y%m%d%H%M}", at, at)
    dbt_run(warehouse, tmp)
    if crash_after_plan:
        return  # the run dies after dbt: nothing applied, nothing enqueued
    with warehouse.session() as s:
        mark_planned(s, "test", at)
        apply_transitions(s, "test", at)
    enqueue_planned_rows(warehouse, at)
    if not outbox_down:
        send_due(warehouse, at)


def world(warehouse: Warehouse, at: datetime) -> None:
    """What people do between the passes."""
    with warehouse.session() as s:
        if at == PASSES[0]:
            # j1 clicks the welcome 3 hours after it went out; d1 and j2 reply the next morning
            s.execute(
                "update herald_ops.outbox set clicked_at = ? where contact_id = 'j1' and step = 'welcome'",
                [DAY0 + timedelta(hours=3)],
            )
            for inbound_id, contact in (("in-d1", "d1"), ("in-j2", "j2")):
                insert(s, "herald_raw.inbound_messages", [
                    (inbound_id, "sms", "+13125550000", "+13125559999", "Thanks!", "sandbox",
                     DAY0 + timedelta(hours=19), DAY0 + timedelta(hours=19))
                ])  # fmt: skip
                insert(s, "herald_ops.inbound_processing", [
                    (inbound_id, CLIENT, contact, "other", None, None, "ignored", None, 0, None,
                     DAY0 + timedelta(hours=19))
                ])  # fmt: skip
            # j3 texts HELP: Herald answers it with the help text; it is not a reply that ends a journey
            insert(s, "herald_raw.inbound_messages", [
                ("in-j3", "sms", "+13125550003", "+13125559999", "HELP", "sandbox",
                 DAY0 + timedelta(hours=19), DAY0 + timedelta(hours=19))
            ])  # fmt: skip
            insert(s, "herald_ops.inbound_processing", [
                ("in-j3", CLIENT, "j3", "help", "standard", "HELP", "helped", None, 0, None, DAY0 + timedelta(hours=19))
            ])  # fmt: skip
            # j4 enrolls at the college (the goal), and j5 is admitted
            s.execute(
                "insert into marts.funnel_events values ('f1', ?, 'j4', 'admissions', 'enrolled', ?, ?)",
                [CLIENT, DAY0 + timedelta(hours=20), DAY0 + timedelta(hours=20)],
            )
            insert(s, "marts.segment_members", [(CLIENT, "admitted", LATE_STUDENT, LOADED, LOADED)])


def snapshot(warehouse: Warehouse) -> dict[str, Any]:
    with warehouse.session(read_only=True) as s:
        _, outbox = s.query(
            "select campaign, step, contact_id, variant, status, status_reason, send_after "
            "from herald_ops.outbox order by message_key"
        )
        _, ledger = s.query(
            "select campaign, contact_id, status, step, exit_reason, wait_reason from herald_ops.enrollments"
        )
        _, trail = s.query(
            "select campaign, contact_id, step, event, path, reason, occurred_at from herald_ops.enrollment_events"
        )
        duplicates = s.scalar("select count(*) - count(distinct message_key) from marts.message_plan")
    return {"outbox": outbox, "ledger": ledger, "trail": trail, "plan_duplicates": duplicates}


def run_days(engine_env: dict[str, str], tmp: Path) -> list[dict[str, Any]]:
    from herald.settings import Settings

    warehouse = Warehouse(Settings.from_env(engine_env).warehouse)
    build(warehouse)
    snapshots = []
    for number, at in enumerate(PASSES):
        daily_nurture(warehouse, at)
        if number == 2:
            run_pass(warehouse, tmp, at, crash_after_plan=True)  # the crash, then the re-run
        run_pass(warehouse, tmp, at)
        snapshots.append(snapshot(warehouse))
        world(warehouse, at)
    # what an analyst reads: the enrollments mart and the journey funnel
    dbt_run(warehouse, tmp, select=("enrollments", "journey_funnel", "journey_variants"))
    with warehouse.session(read_only=True) as s:
        names, rows = s.query("select * from analytics.journey_funnel order by campaign, step")
        snapshots[-1]["funnel"] = {(r[1], r[2]): dict(zip(names, r, strict=False)) for r in rows}
        names, rows = s.query("select * from analytics.journey_variants order by campaign, step, variant")
        snapshots[-1]["variants"] = {(r[1], r[2], r[3]): dict(zip(names, r, strict=False)) for r in rows}
        _, snapshots[-1]["enrollments"] = s.query(
            "select campaign, contact_id, status, messages_enqueued, messages_sent, messages_cancelled "
            "from marts.enrollments order by campaign, contact_id"
        )
    return snapshots


@pytest.fixture(scope="module")
def days(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("journeys")
    return run_days({"HERALD_HOME": str(tmp / "home"), "HERALD_WAREHOUSE_URL": ""}, tmp)


def messages(snap: dict[str, Any], campaign: str, step: str | None = None) -> list[tuple]:
    return [m for m in snap["outbox"] if m[0] == campaign and (step is None or m[1] == step)]


def test_a_daily_limit_carries_contacts_over_until_everyone_had_exactly_one(days) -> None:
    sent_per_day = [len(messages(snap, "roofing")) for snap in days]
    assert sent_per_day == [125, 250, 375, 500, 625]  # 125 more each day, none dropped
    final = messages(days[-1], "roofing")
    assert sorted(Counter(m[2] for m in final).values()) == [1] * 625  # each contact exactly once
    # first in, first out: the day a contact is sent is their place in the import
    first_day = {m[2]: m[6].date() for m in final}
    for i, contact in enumerate(HOMEOWNERS):
        assert first_day[contact] == (DAY0 + timedelta(days=i // 125)).date(), contact
    # the A/B split held over the carried-over days: both arms, roughly half each
    arms = Counter(m[3] for m in final)
    assert set(arms) == {"a", "b"} and 250 < arms["a"] < 375
    # the ledger: the first pass left 500 waiting for a later day, the last pass none
    waiting = [row for row in days[0]["ledger"] if row[0] == "roofing" and row[2] == "waiting"]
    assert len(waiting) == 500 and {row[5] for row in waiting} == {"over the daily limit: carried over to the next day"}
    assert Counter(row[2] for row in days[-1]["ledger"] if row[0] == "roofing") == {"completed": 625}


def test_a_sender_quota_shared_by_two_campaigns_carries_over_in_order_of_entry(days) -> None:
    def texts(snap: dict[str, Any]) -> list[tuple]:
        return [m for m in snap["outbox"] if m[0] in ("spring", "gutter")]

    per_day = [len(texts(snap)) for snap in days]
    assert per_day == [120, 240, 250, 250, 250]  # 120 a day across both campaigns, then the last 10
    final = texts(days[-1])
    assert sorted(Counter(m[2] for m in final).values()) == [1] * 250  # each contact exactly once
    # first in, first out across the campaigns: the spring offer's 100 (entered first) and the
    # gutter offer's first 20 on Monday, the next 120 on Tuesday, the last 10 on Wednesday
    by_day: dict[Any, list[str]] = {}
    for m in final:
        by_day.setdefault(m[6].date(), []).append(m[2])
    monday = DAY0.date()
    assert sorted(by_day[monday]) == sorted(SPRING + GUTTER[:20])
    assert sorted(by_day[monday + timedelta(days=1)]) == GUTTER[20:140]
    assert sorted(by_day[monday + timedelta(days=2)]) == GUTTER[140:]
    # the carried-over wait in the ledger, with the reason; in the end every one completed
    waiting = [row for row in days[0]["ledger"] if row[0] == "gutter" and row[2] == "waiting"]
    assert len(waiting) == 130 and {row[5] for row in waiting} == {"over the daily limit: carried over to the next day"}
    ledger = Counter((row[0], row[2]) for row in days[-1]["ledger"] if row[0] in ("spring", "gutter"))
    assert ledger == {("spring", "completed"): 100, ("gutter", "completed"): 150}
    # the quota is the SMS sender's: the roofing emails kept their own 125 a day
    assert len([m for m in days[0]["outbox"] if m[0] == "roofing"]) == 125


def test_a_daily_schedule_enrolls_each_contact_once(days) -> None:
    welcomes = Counter(m[2] for m in messages(days[-1], "nurture", "welcome"))
    assert welcomes == {"j1": 1, "j2": 1, "j3": 1, "j4": 1, LATE_STUDENT: 1}  # five daily firings


def test_a_click_takes_the_yes_path_and_the_goal_and_a_reply_exit(days) -> None:
    ledger = {(row[0], row[1]): row for row in days[-1]["ledger"]}
    assert ledger[("nurture", "j1")][2] == "completed"
    assert [m[2] for m in messages(days[-1], "nurture", "apply_link")] == ["j1"]
    assert ledger[("nurture", "j2")][2:5] == ("exited", None, "replied")
    assert ledger[("nurture", "j4")][2:5] == ("exited", None, "goal reached")
    paths = {(row[1], row[2]): row[4] for row in days[-1]["trail"] if row[0] == "nurture" and row[3] == "path"}
    assert paths[("j1", "wait_click")] == "yes"
    # neither j2 nor j4 got anything after their exit
    assert {m[2] for m in messages(days[-1], "nurture")} - {"j1", "j3", LATE_STUDENT} == {"j2", "j4"}
    assert {m[1] for m in messages(days[-1], "nurture") if m[2] in ("j2", "j4")} == {"welcome"}


def test_a_wait_for_that_times_out_takes_the_no_path_at_the_timeout_in_the_window(days) -> None:
    # j3 never clicked: welcome at DAY0 15:00 UTC + 2d12h = Thursday 03:00 UTC (21:00 in
    # Chicago, after the window) → the follow-up is due then and goes at the window's opening
    follow_ups = messages(days[-1], "nurture", "follow_up")
    assert [(m[2], m[6]) for m in follow_ups if m[2] == "j3"] == [("j3", datetime(2026, 11, 19, 15, 0))]
    no_path = [row for row in days[-1]["trail"] if row[1] == "j3" and row[2] == "wait_click" and row[4] == "no"]
    assert [row[6] for row in no_path] == [DAY0 + timedelta(days=2, hours=12)]
    # before the timeout, j3 was waiting for the click
    waiting = {(row[0], row[1]): row for row in days[1]["ledger"]}[("nurture", "j3")]
    assert waiting[2:4] == ("waiting", "wait_click")


def test_a_reply_between_two_steps_exits_and_cancels_the_queued_step(days) -> None:
    first, second = messages(days[0], "drip", "first"), messages(days[0], "drip", "second")
    assert [m[4] for m in first] == ["sent"] and [m[4] for m in second] == ["queued"]
    assert second[0][6] == DAY0 + timedelta(days=3)
    after = messages(days[1], "drip", "second")
    assert [(m[4], m[5]) for m in after] == [("cancelled", "journey exited: replied")]
    ledger = {(row[0], row[1]): row for row in days[1]["ledger"]}
    assert ledger[("drip", "d1")][2] == "exited" and ledger[("drip", "d1")][4] == "replied"


def test_a_crash_between_planning_and_enqueue_sends_nothing_twice_and_skips_nobody(days) -> None:
    # the third pass crashed after dbt and ran again: the plan holds each key once, the outbox
    # each message once, and that day's batch is exactly the next 125 homeowners
    assert all(snap["plan_duplicates"] == 0 for snap in days)
    keys = [(m[0], m[1], m[2]) for m in days[-1]["outbox"]]
    assert len(keys) == len(set(keys))
    third_day = sorted(m[2] for m in messages(days[2], "roofing") if m[6].date() == (DAY0 + timedelta(days=2)).date())
    assert third_day == HOMEOWNERS[250:375]


def test_the_funnel_counts_each_step_and_path(days) -> None:
    funnel = days[-1]["funnel"]
    welcome, wait, follow_up = (funnel[("nurture", s)] for s in ("welcome", "wait_click", "follow_up"))
    assert (welcome["reached"], welcome["messaged"]) == (5, 5)
    # j1 clicked (yes); j3 and j5 timed out (no); j2 replied and j4 enrolled while waiting
    assert (wait["took_yes"], wait["took_no"], wait["paths_taken"]) == (1, 2, "no 2, yes 1")
    assert (wait["exited"], wait["exit_reasons"]) == (2, "goal reached 1, replied 1")
    assert (follow_up["reached"], funnel[("nurture", "apply_link")]["reached"]) == (2, 1)
    assert funnel[("roofing", "offer")]["carried_over"] == 500
    assert funnel[("roofing", "(end)")]["completed"] == 625
    # j4 reached the goal stage 'enrolled' while waiting for a click: converted at both steps
    assert (welcome["converted"], wait["converted"], follow_up["converted"]) == (1, 1, 0)
    enrollments = {(r[0], r[1]): r[2:] for r in days[-1]["enrollments"]}
    assert enrollments[("drip", "d1")] == ("exited", 2, 1, 1)  # first sent, second cancelled
    assert enrollments[("nurture", "j1")] == ("completed", 2, 2, 0)


# -- an outage: the outbox stops while the journeys go on ---------------------------------------

OUTAGE_PASSES = {
    "welcome planned": DAY0,
    "outbox down past the timeout": DAY0 + timedelta(days=3),  # the click wait (2d12h) is over by then
    "an hour after the welcome went out": DAY0 + timedelta(days=3, hours=1),
    "the wait over, counted from the send": DAY0 + timedelta(days=6),
}


def run_outage(engine_env: dict[str, str], tmp: Path) -> dict[str, dict[str, Any]]:
    """The nurture alone; its welcomes sit in the outbox until three days later (the outbox was
    down), then go out. Each pass plans without sending (the outbox's own run is played here)."""
    from herald.settings import Settings

    warehouse = Warehouse(Settings.from_env(engine_env).warehouse)
    build(warehouse)
    with warehouse.session() as s:
        s.execute("delete from herald_ops.campaign_occurrences")
    daily_nurture(warehouse, DAY0)
    snapshots = {}
    for name, at in OUTAGE_PASSES.items():
        if name == "an hour after the welcome went out":
            back = OUTAGE_PASSES["outbox down past the timeout"] + timedelta(minutes=5)
            with warehouse.session() as s:
                s.execute(
                    "update herald_ops.outbox set status = 'sent', sent_at = ?, updated_at = ? where status = 'queued'",
                    [back, back],
                )
        run_pass(warehouse, tmp, at, outbox_down=True)
        snapshots[name] = snapshot(warehouse)
    return snapshots


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("outage")
    return run_outage({"HERALD_HOME": str(tmp / "home"), "HERALD_WAREHOUSE_URL": ""}, tmp)


def test_a_journey_moves_on_from_a_message_once_it_went_out(outage) -> None:
    students = {"j1", "j2", "j3", "j4"}
    # three days on, the welcomes are still in the outbox: nobody has timed out of the click wait
    # (which would have sent the follow-up seconds after the late welcome)
    down = outage["outbox down past the timeout"]
    assert {m[2] for m in messages(down, "nurture", "welcome") if m[4] == "queued"} == students
    assert messages(down, "nurture", "follow_up") == []
    held = {row[1]: row[3:] for row in down["ledger"] if row[0] == "nurture"}
    assert held == dict.fromkeys(students, ("wait_click", None, "waiting for its last message to go out"))
    # they went out 5 minutes later; an hour after that the wait is counted from the send
    after = outage["an hour after the welcome went out"]
    assert messages(after, "nurture", "follow_up") == []
    waiting = {row[1]: row[2:4] + row[5:] for row in after["ledger"] if row[0] == "nurture"}
    assert waiting == dict.fromkeys(students, ("waiting", "wait_click", "waiting for clicked until the timeout"))
    # the wait (2d12h) counts from the pass that last found the welcomes unsent (its run sends
    # them right after planning), not from their planned time: then the follow-up comes
    over = outage["the wait over, counted from the send"]
    no_path = [row for row in over["trail"] if row[0] == "nurture" and row[2] == "wait_click" and row[4] == "no"]
    timed_out = OUTAGE_PASSES["outbox down past the timeout"] + timedelta(days=2, hours=12, seconds=1)
    assert sorted((row[1], row[6]) for row in no_path) == [(s, timed_out) for s in sorted(students)]
    assert {m[2] for m in messages(over, "nurture", "follow_up")} == students


def test_the_variant_funnel_splits_each_message_step_by_its_variant(days) -> None:
    variants = days[-1]["variants"]
    a, b = variants[("roofing", "offer", "a")], variants[("roofing", "offer", "b")]
    # the 50/50 template test: every homeowner in exactly one arm, all sent, all completed
    assert a["enrollments"] + b["enrollments"] == 625 and min(a["enrollments"], b["enrollments"]) > 250
    for arm in (a, b):
        assert (arm["sent"], arm["completed"], arm["exited"], arm["going"]) == (
            arm["enrollments"],
            arm["enrollments"],
            0,
            0,
        )
    welcome = variants[("nurture", "welcome", "only")]
    # five welcomes sent; j2 replied and j4 reached the goal (converted), j1, j3 and j5 completed
    assert {k: welcome[k] for k in ("enrollments", "sent", "exited", "converted", "completed")} == {
        "enrollments": 5,
        "sent": 5,
        "exited": 2,
        "converted": 1,
        "completed": 3,
    }
    assert variants[("nurture", "apply_link", "only")]["enrollments"] == 1


# -- a journey changed while it runs ------------------------------------------------------------

COLLEGE, NURTURE = "northfield_college", "admitted_nurture"
VERSION_1 = """\
message_type: lead_nurture
status: active
audience: admitted_not_enrolled
trigger: {type: schedule, cron: "0 10 * * *"}
enrollment: once
steps:
  - name: welcome
    channel: email
    subject: "Welcome, {{ first_name }}"
    variants:
      - {name: standard, template: nurture_welcome_program.mjml.j2}
  - name: pause
    wait: 1d
  - name: reminder
    channel: email
    subject: "Any questions, {{ first_name }}?"
    variants:
      - {name: standard, template: nurture_follow_up.mjml.j2}
"""
# the reminder removed, a last call in its place
VERSION_2 = VERSION_1.replace(
    """  - name: reminder
    channel: email
    subject: "Any questions, {{ first_name }}?"
    variants:
      - {name: standard, template: nurture_follow_up.mjml.j2}
""",
    """  - name: last_call
    channel: email
    subject: "Last call, {{ first_name }}"
    variants:
      - {name: standard, template: nurture_application_link.mjml.j2}
""",
)
EDITED_AT = DAY0 + timedelta(hours=2)
VERSION_PASSES = [DAY0, DAY0 + timedelta(days=1, hours=1), DAY0 + timedelta(days=2, hours=1)]


def college_config(tmp: Path, journey: str):
    """The example configuration with Northfield College alone, its nurture being ``journey``."""
    import shutil

    from herald.config import load_deployment
    from tests.conftest import CONFIG_DIR

    config = tmp / "config"
    if not config.exists():
        shutil.copytree(CONFIG_DIR, config)
        for client in (config / "clients").iterdir():
            if client.name != COLLEGE:
                shutil.rmtree(client)
    (config / "clients" / COLLEGE / "campaigns" / f"{NURTURE}.yaml").write_text(journey)
    return load_deployment(config)


def load_config(warehouse: Warehouse, tmp: Path, journey: str, at: datetime) -> str:
    """The config load (the real loader) at ``at``; returns the nurture's version."""
    from unittest import mock

    from herald.warehouse.config_tables import load_config_tables

    deployment = college_config(tmp, journey)
    with mock.patch("herald.warehouse.config_tables.utcnow", return_value=at), warehouse.session() as s:
        load_config_tables(s, deployment)
    return deployment.clients[COLLEGE].campaigns[NURTURE].config_version


def run_versions(engine_env: dict[str, str], tmp: Path) -> dict[str, Any]:
    """Two students enter the nurture (v1: welcome, a day's wait, a reminder); two hours later the
    reminder is replaced by a last call (v2) and a third student is admitted."""
    from herald.settings import Settings

    warehouse = Warehouse(Settings.from_env(engine_env).warehouse)
    warehouse.ensure_schema()
    json_type = "json" if warehouse.engine == "duckdb" else "jsonb"
    with warehouse.session() as s:
        for ddl in MART_DDL:
            s.execute(ddl.format(json=json_type))
        for contact in ("v1", "v2", "v3"):
            s.execute(
                "insert into marts.contacts values (?, ?, ?, ?, null, ?, true, null, false, null, null)",
                [contact, COLLEGE, contact.upper(), f"Name{contact}", email(contact)],
            )
    result: dict[str, Any] = {"versions": [load_config(warehouse, tmp, VERSION_1, DAY0 - timedelta(hours=1))]}
    with warehouse.session() as s:
        insert(
            s, "marts.segment_members", [(COLLEGE, "admitted_not_enrolled", c, LOADED, LOADED) for c in ("v1", "v2")]
        )
        insert(s, "herald_ops.campaign_occurrences", [
            (COLLEGE, NURTURE, "manual:first", "manual", DAY0, None, None, "test", DAY0, None)
        ])  # fmt: skip
    for number, at in enumerate(VERSION_PASSES):
        if number == 1:
            result["versions"].append(load_config(warehouse, tmp, VERSION_2, EDITED_AT))
            result["steps after the edit"] = config_steps(warehouse)
            with warehouse.session() as s:
                insert(s, "marts.segment_members", [(COLLEGE, "admitted_not_enrolled", "v3", LOADED, LOADED)])
                insert(s, "herald_ops.campaign_occurrences", [
                    (COLLEGE, NURTURE, "manual:second", "manual", EDITED_AT, None, None, "test", EDITED_AT, None)
                ])  # fmt: skip
        run_pass(warehouse, tmp, at)
    # the v1 enrollments are over: the next load drops v1's rows
    load_config(warehouse, tmp, VERSION_2, VERSION_PASSES[-1] + timedelta(hours=1))
    result["steps in the end"] = config_steps(warehouse)
    with warehouse.session(read_only=True) as s:
        _, result["outbox"] = s.query(
            "select contact_id, step, template, status from herald_ops.outbox order by contact_id, send_after"
        )
        _, result["ledger"] = s.query(
            "select contact_id, config_version, status, exit_reason from herald_ops.enrollments order by contact_id"
        )
        _, result["campaign_versions"] = s.query(
            "select client_id, campaign, config_version, first_loaded_at, retired_at "
            "from herald_ops.campaign_versions order by first_loaded_at"
        )
        _, result["audit"] = s.query(
            "select occurred_at, actor, action, client_id, subject, reason from herald_ops.audit_log "
            "where action = 'config_change'"
        )
    return result


def config_steps(warehouse: Warehouse) -> list[tuple]:
    with warehouse.session(read_only=True) as s:
        _, steps = s.query(
            "select config_version, step from herald_ops.campaign_steps where campaign = ? order by 1, position",
            [NURTURE],
        )
        _, variants = s.query(
            "select config_version, step, email_template from herald_ops.campaign_variants where campaign = ? "
            "order by 1, 2",
            [NURTURE],
        )
    return [steps, variants]


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("versions")
    return run_versions({"HERALD_HOME": str(tmp / "home"), "HERALD_WAREHOUSE_URL": ""}, tmp)


def test_a_journey_changed_while_it_runs_keeps_its_enrollments_on_their_version(versions) -> None:
    v1, v2 = versions["versions"]
    assert v1 != v2
    # after the edit both versions' steps are loaded: v1's for the two students still in it
    expected = [
        sorted([(v1, "welcome"), (v1, "pause"), (v1, "reminder"), (v2, "welcome"), (v2, "pause"), (v2, "last_call")],
               key=lambda r: (r[0], ["welcome", "pause", "reminder", "last_call"].index(r[1]))),
        sorted([(v1, "reminder", "nurture_follow_up.mjml.j2"), (v1, "welcome", "nurture_welcome_program.mjml.j2"),
                (v2, "last_call", "nurture_application_link.mjml.j2"), (v2, "welcome", "nurture_welcome_program.mjml.j2")]),
    ]  # fmt: skip
    assert versions["steps after the edit"] == expected
    # the students who entered under v1 got v1's reminder with its template; the one admitted
    # after the edit walked v2 to the last call; nobody exited for a step gone from the campaign
    assert versions["outbox"] == [
        ("v1", "welcome", "nurture_welcome_program.mjml.j2", "sent"),
        ("v1", "reminder", "nurture_follow_up.mjml.j2", "sent"),
        ("v2", "welcome", "nurture_welcome_program.mjml.j2", "sent"),
        ("v2", "reminder", "nurture_follow_up.mjml.j2", "sent"),
        ("v3", "welcome", "nurture_welcome_program.mjml.j2", "sent"),
        ("v3", "last_call", "nurture_application_link.mjml.j2", "sent"),
    ]
    assert versions["ledger"] == [("v1", v1, "completed", None), ("v2", v1, "completed", None),
                                  ("v3", v2, "completed", None)]  # fmt: skip
    # with no enrollment left on v1, the next load dropped its rows
    assert versions["steps in the end"] == [
        [(v2, "welcome"), (v2, "pause"), (v2, "last_call")],
        [(v2, "last_call", "nurture_application_link.mjml.j2"), (v2, "welcome", "nurture_welcome_program.mjml.j2")],
    ]


def test_a_journey_change_is_recorded(versions) -> None:
    v1, v2 = versions["versions"]
    assert versions["campaign_versions"] == [
        (COLLEGE, NURTURE, v1, DAY0 - timedelta(hours=1), EDITED_AT),
        (COLLEGE, NURTURE, v2, EDITED_AT, None),
    ]
    assert versions["audit"] == [
        (EDITED_AT, "config_load", "config_change", COLLEGE, f"campaign {NURTURE}",
         f"campaign {NURTURE} changed from version {v1} to {v2}; 2 running enrollments keep {v1}"),
    ]  # fmt: skip
