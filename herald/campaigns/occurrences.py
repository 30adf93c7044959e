"""Campaign occurrences: one row per firing of a campaign's trigger.

An occurrence names what fired, so the same firing never plans twice: a cron occurrence by its
local date-time (``2026-11-23T09:30``; a daily 01:30 send on a DST fall-back day is one
occurrence, not two), a packet arrival by the packet (``packet:<id>``), a batch of segment
entries or funnel events by the time they were collected (``entry:<at>``, ``funnel:<at>``),
and a send started by hand by its label (``manual:<label>``).

Recording is idempotent, and an occurrence the message plan has already expanded is never
recorded again: re-running a schedule's run for the same occurrence adds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from herald.config.campaigns import FunnelEventTrigger, PacketArrivalTrigger, SegmentEntryTrigger
from herald.config.models import Deployment
from herald.warehouse.connection import Session
from herald.warehouse.schema import OPS_SCHEMA, column_names

OCCURRENCES = f"{OPS_SCHEMA}.campaign_occurrences"
TRIGGER_TYPES = ("schedule", "segment_entry", "packet_arrival", "funnel_event", "manual")


@dataclass(frozen=True)
class Occurrence:
    client_id: str
    campaign: str
    occurrence: str
    trigger_type: str
    fired_at: datetime  # naive UTC
    events_since: datetime | None = None
    packet_id: str | None = None


def occurrence_name(local_fire_time: datetime) -> str:
    """A cron occurrence's name: its local wall-clock minute, without the UTC offset."""
    return local_fire_time.replace(tzinfo=None).isoformat(timespec="minutes")


def record_occurrences(session: Session, occurrences: list[Occurrence], requested_by: str, now: datetime) -> int:
    """Record occurrences not planned yet for this run; returns how many are new or re-requested.

    An occurrence recorded earlier but never planned (its run failed before dbt) is handed to
    this run; one already planned is left alone.
    """
    for occ in occurrences:
        if occ.trigger_type not in TRIGGER_TYPES:
            raise ValueError(f"unknown trigger type {occ.trigger_type!r} for {occ.client_id}/{occ.campaign}")
    recorded = 0
    for occ in occurrences:
        key = [occ.client_id, occ.campaign, occ.occurrence]
        planned = session.scalar(
            f"select planned_at from {OCCURRENCES} where client_id = ? and campaign = ? and occurrence = ?", key
        )
        if planned is not None:
            continue
        session.execute(f"delete from {OCCURRENCES} where client_id = ? and campaign = ? and occurrence = ?", key)
        row = (
            occ.client_id, occ.campaign, occ.occurrence, occ.trigger_type, occ.fired_at,
            occ.events_since, occ.packet_id, requested_by, now, None,
        )  # fmt: skip
        session.insert_rows(OCCURRENCES, column_names(OCCURRENCES), [row])
        recorded += 1
    return recorded


def mark_planned(session: Session, requested_by: str, now: datetime) -> int:
    """After dbt planned this run's occurrences: mark them (and any other the plan holds)."""
    pending = f"""
        planned_at is null and (
            requested_by = ?
            or exists (
                select 1 from marts.message_plan as plan
                where plan.client_id = {OCCURRENCES}.client_id
                    and plan.campaign = {OCCURRENCES}.campaign
                    and plan.occurrence = {OCCURRENCES}.occurrence
            )
        )"""
    count = int(session.scalar(f"select count(*) from {OCCURRENCES} where {pending}", [requested_by]))
    session.execute(f"update {OCCURRENCES} set planned_at = ? where {pending}", [now, requested_by])
    return count


def _last_fired(session: Session, client_id: str, campaign: str) -> datetime | None:
    return session.scalar(
        f"select max(fired_at) from {OCCURRENCES} where client_id = ? and campaign = ?", [client_id, campaign]
    )


def _marts_built(session: Session) -> bool:
    count = session.scalar(
        "select count(*) from information_schema.tables where table_schema = 'marts' "
        "and table_name in ('contact_sources', 'funnel_events')"
    )
    return int(count or 0) == 2


def detect_triggered(session: Session, deployment: Deployment, now: datetime) -> list[Occurrence]:
    """Occurrences of event-triggered campaigns that are due: one per newly loaded packet of the
    trigger's type, and one batch per campaign for new segment entries or funnel events."""
    found: list[Occurrence] = []
    if not _marts_built(session):
        return found  # nothing has been transformed yet: no packet, entry or event can be new
    for client_id, client in sorted(deployment.clients.items()):
        for name, campaign in sorted(client.campaigns.items()):
            trigger = campaign.trigger
            if isinstance(trigger, PacketArrivalTrigger):
                _, rows = session.query(
                    f"""
                    select packets.packet_id
                    from {OPS_SCHEMA}.packets as packets
                    where packets.client_id = ? and packets.packet_type = ? and packets.status = 'landed'
                        and exists (select 1 from marts.contact_sources as s where s.packet_id = packets.packet_id)
                        and not exists (
                            select 1 from {OCCURRENCES} as o
                            where o.client_id = packets.client_id and o.campaign = ?
                                and o.occurrence = 'packet:' || packets.packet_id
                        )
                    order by packets.received_at
                    """,
                    [client_id, trigger.packet_type, name],
                )
                found += [
                    Occurrence(client_id, name, f"packet:{packet_id}", "packet_arrival", now, packet_id=packet_id)
                    for (packet_id,) in rows
                ]
                continue
            since = _last_fired(session, client_id, name)
            if isinstance(trigger, SegmentEntryTrigger):
                new = session.scalar(
                    f"""
                    select count(*) from {OPS_SCHEMA}.segment_membership_events
                    where client_id = ? and segment_name = ? and event = 'entered'
                        and (cast(? as timestamp) is null or occurred_at > ?)
                    """,
                    [client_id, campaign.audience, since, since],
                )
                if new:
                    found.append(Occurrence(client_id, name, f"entry:{now.isoformat(timespec='seconds')}",
                                            "segment_entry", now, events_since=since))  # fmt: skip
            elif isinstance(trigger, FunnelEventTrigger):
                new = session.scalar(
                    """
                    select count(*) from marts.funnel_events
                    where client_id = ? and to_stage = ?
                        and (cast(? as varchar) is null or funnel_type = ?)
                        and (cast(? as timestamp) is null or loaded_at > ?)
                    """,
                    [client_id, trigger.to_stage, trigger.funnel_type, trigger.funnel_type, since, since],
                )
                if new:
                    found.append(Occurrence(client_id, name, f"funnel:{now.isoformat(timespec='seconds')}",
                                            "funnel_event", now, events_since=since))  # fmt: skip
    return found
