"""Preview and simulate a campaign with the send's own plan, on a scratch copy of the warehouse.

A send pass (the Dagster send run) records its occurrences and clock, runs the plan's dbt
models (the journey walk, ``marts.message_plan``, ``marts.journey_transitions``), renders and
enqueues the planned messages and moves the enrollment ledger on. :func:`plan_pass` is that
pass, step for step, with the same functions; here it runs on a copy of the warehouse
(:func:`herald.warehouse.scratch.scratch_copy`), so nothing real is written or sent.

- :func:`preview_plan`: one pass at a chosen moment: per contact, the message each step would
  send now or later (when, channel, variant, the rendered text) or why it would not
  (consent, window, cap, limit, suppression), and where the journey leaves them.
- :func:`simulate`: passes over N days on a controlled clock. Between passes the simulated
  world answers: messages due are sent, and, deterministically per message (a hash of its key),
  delivered or bounced, opened, clicked, replied to, confirmed, and contacts reach the goal
  stage — at the rates of :class:`Engagement`. The result is the journey funnel per step.

The simulated campaign starts fresh on the copy: its earlier enrollments, occurrences and
messages are removed there, and the other campaigns are left out (their pending occurrences and
running enrollments are removed), so the funnel is this campaign's alone. Messages other
campaigns sent before still count for frequency caps, as they would.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from herald.campaigns.enqueue import EnqueueReport, enqueue_planned
from herald.campaigns.journeys import PLAN_MODELS, JourneyReport, apply_transitions, record_plan_run
from herald.campaigns.links import Links
from herald.campaigns.occurrences import Occurrence, mark_planned, occurrence_name, record_occurrences
from herald.config.campaigns import (
    CampaignConfig,
    ScheduleTrigger,
    WaitForStep,
    next_occurrences,
)
from herald.config.models import Deployment
from herald.settings import WarehouseTarget
from herald.warehouse.connection import Session, Warehouse
from herald.warehouse.dbt_run import run_models
from herald.warehouse.scratch import scratch_copy

RUN_ID = "simulate"
FUNNEL_MODELS = ("enrollments", "journey_funnel")


@dataclass(frozen=True)
class Engagement:
    """How the simulated recipients answer; each a share of the messages (or contacts) concerned."""

    delivery_rate: float = 0.97  # the rest bounce / fail
    open_rate: float = 0.40  # emails delivered
    click_rate: float = 0.15  # messages delivered
    reply_rate: float = 0.05  # messages delivered
    confirm_rate: float = 0.50  # reminders delivered, where the campaign waits for or exits on a confirmation
    goal_rate: float = 0.10  # contacts messaged, where the campaign has a goal stage

    def check(self) -> None:
        for name, value in self.__dict__.items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name.replace('_', ' ')} must be between 0 and 1, not {value}")


@dataclass
class PassOutcome:
    at: datetime
    journeys: JourneyReport
    enqueued: EnqueueReport
    sent: int = 0


@dataclass
class Simulation:
    client_id: str
    campaign: str
    start: datetime
    end: datetime
    passes: list[PassOutcome] = field(default_factory=list)
    funnel: list[dict[str, Any]] = field(default_factory=list)  # analytics.journey_funnel rows, in step order
    messages: dict[str, int] = field(default_factory=dict)  # what became of the messages: status → count
    engagement: dict[str, int] = field(default_factory=dict)  # delivered, opened, clicked, replied, confirmed, goal
    enrollments: dict[str, int] = field(default_factory=dict)  # status → count
    # per contact, for a closer look: the campaign's messages, the ledger, the answers
    outbox: list[dict[str, Any]] = field(default_factory=list)  # contact_id, step, status, sent_at, clicked_at
    ledger: list[tuple[str, str, str | None]] = field(default_factory=list)  # contact_id, status, exit reason
    replied_at: dict[str, datetime] = field(default_factory=dict)
    goal_at: dict[str, datetime] = field(default_factory=dict)


def draw(*parts: str) -> float:
    """A deterministic number in [0, 1) for these parts (the same message, the same answer)."""
    digest = hashlib.sha256("|".join(parts).encode()).hexdigest()
    return int(digest[:12], 16) / float(1 << 48)


# -- one pass, as the send run does it -------------------------------------------------------


def plan_pass(
    warehouse: Warehouse,
    deployment: Deployment,
    config_dir: Path,
    links: Links,
    at: datetime,
    occurrences: list[Occurrence],
    work_dir: Path,
    run_id: str = RUN_ID,
) -> PassOutcome:
    """The send run's pass at ``at``: occurrences and clock, the plan models, render and enqueue,
    the ledger. (assets/delivery/campaigns.py runs the same functions in Dagster.)"""
    with warehouse.session() as s:
        record_occurrences(s, occurrences, run_id, at)
        record_plan_run(s, f"{run_id}-{at:%Y%m%dT%H%M%S}", at, at)
    run_models(warehouse.target, PLAN_MODELS, work_dir)
    with warehouse.session() as s:
        enqueued = enqueue_planned(s, deployment, config_dir, links, at)
        mark_planned(s, run_id, at)
        journeys = apply_transitions(s, run_id, at)
    return PassOutcome(at, journeys, enqueued)


def isolate(session: Session, client_id: str, campaign: CampaignConfig) -> None:
    """On the scratch copy: this campaign starts fresh, active, and alone."""
    this = "client_id = ? and campaign = ?"
    key = [client_id, campaign.name]
    for table in ("enrollment_events", "enrollments", "campaign_occurrences", "outbox"):
        session.execute(f"delete from herald_ops.{table} where {this}", key)
    if session.scalar(
        "select count(*) from information_schema.tables where table_schema = 'marts' and table_name = 'message_plan'"
    ):
        session.execute(f"delete from marts.message_plan where {this}", key)
    session.execute("delete from herald_ops.campaign_occurrences where planned_at is null")
    session.execute("delete from herald_ops.enrollments where status in ('active', 'waiting')")
    session.execute(f"update herald_ops.campaigns set status = 'active' where {this}", key)
    session.execute(f"delete from herald_ops.campaign_pauses where {this}", key)  # a pause from the portal, too


def _goal_stage(campaign: CampaignConfig) -> str | None:
    if campaign.exit_on.goal:
        return campaign.exit_on.goal
    for step in campaign.steps:
        if isinstance(step, WaitForStep) and step.wait_for.event == "funnel_stage":
            return step.wait_for.stage
    return None


def _waits_for_confirmation(campaign: CampaignConfig) -> bool:
    return bool(campaign.exit_on.confirmed) or any(
        isinstance(step, WaitForStep) and step.wait_for.event == "confirmed" for step in campaign.steps
    )


def occurrences_between(
    client_id: str, campaign: CampaignConfig, time_zone: str, after: datetime | None, until: datetime
) -> list[Occurrence]:
    """The campaign's firings in (after, until]: its cron's, or — for a trigger that fires on
    arrivals (packets, segment entries, funnel events) or by hand — one at the start."""
    from zoneinfo import ZoneInfo

    trigger = campaign.trigger
    if isinstance(trigger, ScheduleTrigger):
        tz = ZoneInfo(time_zone)
        start = (after or until - timedelta(minutes=1)).replace(tzinfo=ZoneInfo("UTC")).astimezone(tz)
        found = []
        for fire in next_occurrences(trigger.cron, time_zone, start, 400):
            fired_at = fire.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)
            if fired_at > until:
                break
            found.append(Occurrence(client_id, campaign.name, occurrence_name(fire), "schedule", fired_at))
        return found
    if after is not None:
        return []
    return [Occurrence(client_id, campaign.name, f"manual:simulate-{until:%Y%m%dT%H%M}", "manual", until)]


def pass_times(
    client_id: str, campaign: CampaignConfig, time_zone: str, start: datetime, end: datetime, every: timedelta
) -> list[datetime]:
    """When the simulated send passes run: every ``every`` from ``start``, and at each firing of
    the campaign's schedule (as the real schedule starts a pass when it fires)."""
    times = set()
    at = start
    while at <= end:
        times.add(at)
        at += every
    times.update(o.fired_at for o in occurrences_between(client_id, campaign, time_zone, None, start))
    if isinstance(campaign.trigger, ScheduleTrigger):
        times.update(o.fired_at for o in occurrences_between(client_id, campaign, time_zone, start, end))
    return sorted(t for t in times if start <= t <= end)


# -- the simulated world ---------------------------------------------------------------------


def answer(session: Session, client_id: str, campaign: CampaignConfig, at: datetime, rates: Engagement) -> int:
    """Send what is due by ``at`` and play the recipients' answers to it; returns how many were sent."""
    _, rows = session.query(
        "select message_key, contact_id, channel, to_address, sender, send_after from herald_ops.outbox "
        "where client_id = ? and campaign = ? and status = 'queued' and send_after <= ?",
        [client_id, campaign.name, at],
    )
    goal = _goal_stage(campaign)
    confirms = _waits_for_confirmation(campaign)
    for key, contact_id, channel, to_address, sender, sent_at in rows:
        delivered = draw(key, "delivered") < rates.delivery_rate
        changes: dict[str, Any] = {"status": "sent", "sent_at": sent_at, "updated_at": sent_at}
        changes["provider"] = "simulation"
        if delivered:
            changes |= {"provider_status": "delivered", "delivered_at": sent_at + timedelta(minutes=1)}
            if channel == "email" and draw(key, "opened") < rates.open_rate:
                changes["opened_at"] = sent_at + timedelta(hours=1)
            if draw(key, "clicked") < rates.click_rate:
                changes["clicked_at"] = sent_at + timedelta(hours=2)
        else:
            changes |= {"provider_status": "undelivered", "delivery_error": "simulated: not delivered"}
        assignments = ", ".join(f"{column} = ?" for column in changes)
        session.execute(
            f"update herald_ops.outbox set {assignments}, provider_status_at = ? where message_key = ?",
            [*changes.values(), sent_at, key],
        )
        if not delivered:
            continue
        if draw(key, "replied") < rates.reply_rate:
            received = sent_at + timedelta(hours=5)
            inbound_id = f"simulated-reply-{key}"
            session.execute(
                "insert into herald_raw.inbound_messages (inbound_id, channel, from_address, to_address, body, "
                "provider, received_at, landed_at) values (?, ?, ?, ?, ?, 'simulation', ?, ?)",
                [inbound_id, channel, to_address, sender or "", "Thanks!", received, received],
            )
            session.execute(
                "insert into herald_ops.inbound_processing (inbound_id, client_id, contact_id, kind, action, "
                "messages_cancelled, processed_at) values (?, ?, ?, 'other', 'ignored', 0, ?)",
                [inbound_id, client_id, contact_id, received],
            )
        if confirms and draw(key, "confirmed") < rates.confirm_rate:
            session.execute(
                "insert into herald_ops.appointment_responses (inbound_id, client_id, contact_id, response, "
                "received_at) values (?, ?, ?, 'confirmed', ?)",
                [f"simulated-confirm-{key}", client_id, contact_id, sent_at + timedelta(hours=3)],
            )
        reached_goal = goal is not None and draw(client_id, campaign.name, contact_id, "goal") < rates.goal_rate
        if reached_goal and not session.scalar(
            "select count(*) from marts.funnel_events where event_id = ?", [f"simulated-goal-{contact_id}"]
        ):
            reached = sent_at + timedelta(days=1)
            session.execute(
                "insert into marts.funnel_events (event_id, client_id, contact_id, to_stage, occurred_at, loaded_at) "
                "values (?, ?, ?, ?, ?, ?)",
                [f"simulated-goal-{contact_id}", client_id, contact_id, goal, reached, reached],
            )
    return len(rows)


def _tally(session: Session, client_id: str, campaign: str) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    key = [client_id, campaign]
    _, statuses = session.query(
        "select status, count(*) from herald_ops.outbox where client_id = ? and campaign = ? group by 1", key
    )
    engagement = {}
    for name, column in (("delivered", "delivered_at"), ("opened", "opened_at"), ("clicked", "clicked_at")):
        engagement[name] = int(
            session.scalar(
                f"select count(*) from herald_ops.outbox where client_id = ? and campaign = ? and {column} is not null",
                key,
            )
        )
    _, ledger = session.query(
        "select status, count(*) from herald_ops.enrollments where client_id = ? and campaign = ? group by 1", key
    )
    return {s: int(n) for s, n in statuses}, engagement, {s: int(n) for s, n in ledger}


def _details(session: Session, result: Simulation) -> None:
    key = [result.client_id, result.campaign]
    names, rows = session.query(
        "select contact_id, step, status, sent_at, delivered_at, clicked_at from herald_ops.outbox "
        "where client_id = ? and campaign = ? order by contact_id, send_after",
        key,
    )
    result.outbox = [dict(zip(names, row, strict=False)) for row in rows]
    _, result.ledger = session.query(
        "select contact_id, status, exit_reason from herald_ops.enrollments where client_id = ? and campaign = ? "
        "order by contact_id",
        key,
    )
    _, replies = session.query(
        "select contact_id, processed_at from herald_ops.inbound_processing where inbound_id like 'simulated-reply-%'"
    )
    result.replied_at = {}
    for contact, at in replies:
        result.replied_at[contact] = min(at, result.replied_at.get(contact, at))
    _, goals = session.query(
        "select contact_id, occurred_at from marts.funnel_events where event_id like 'simulated-goal-%'"
    )
    result.goal_at = dict(goals)


def _step_order(campaign: CampaignConfig) -> dict[str, int]:
    order = {step.name: i for i, step in enumerate(campaign.steps)}
    order["(end)"] = len(order)
    return order


def simulate(
    target: WarehouseTarget,
    deployment: Deployment,
    config_dir: Path,
    links: Links,
    client_id: str,
    campaign: CampaignConfig,
    *,
    start: datetime,
    days: int,
    every: timedelta = timedelta(hours=6),
    rates: Engagement = Engagement(),
    progress: Callable[[PassOutcome, int], None] | None = None,
) -> Simulation:
    """Run the campaign for ``days`` from ``start`` (naive UTC) with a pass every ``every``."""
    rates.check()
    time_zone = deployment.clients[client_id].time_zone
    end = start + timedelta(days=days)
    result = Simulation(client_id, campaign.name, start, end)
    with tempfile.TemporaryDirectory(prefix="herald-simulate-") as tmp, scratch_copy(target) as scratch:
        work = Path(tmp)
        warehouse = Warehouse(scratch)
        with warehouse.session() as s:
            isolate(s, client_id, campaign)
        times = pass_times(client_id, campaign, time_zone, start, end, every)
        previous = None
        for at in times:
            fired = occurrences_between(client_id, campaign, time_zone, previous, at)
            # the outbox sends each message at its time, between passes too: what fell due since
            # the last pass went out before this one (a journey moves on from a message once sent)
            with warehouse.session() as s:
                caught_up = answer(s, client_id, campaign, at, rates)
            outcome = plan_pass(warehouse, deployment, config_dir, links, at, fired, work)
            with warehouse.session() as s:
                outcome.sent = caught_up + answer(s, client_id, campaign, at, rates)
            result.passes.append(outcome)
            if progress is not None:
                progress(outcome, len(times))
            previous = at
        run_models(scratch, FUNNEL_MODELS, work)
        with warehouse.session(read_only=True) as s:
            names, rows = s.query(
                "select * from analytics.journey_funnel where client_id = ? and campaign = ?",
                [client_id, campaign.name],
            )
            order = _step_order(campaign)
            result.funnel = sorted(
                (dict(zip(names, row, strict=False)) for row in rows), key=lambda r: order.get(r["step"], 99)
            )
            result.messages, result.engagement, result.enrollments = _tally(s, client_id, campaign.name)
            _details(s, result)
            for name, sql in (
                ("replied", "select count(*) from herald_ops.inbound_processing where inbound_id like 'simulated-reply-%'"),
                ("confirmed", "select count(*) from herald_ops.appointment_responses where inbound_id like 'simulated-%'"),
                ("goal", "select count(*) from marts.funnel_events where event_id like 'simulated-goal-%'"),
            ):  # fmt: skip
                result.engagement[name] = int(s.scalar(sql))
    return result
