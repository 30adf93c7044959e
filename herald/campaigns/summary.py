"""What happened to each campaign's messages: planned, excluded (why), sent, deferred, held."""

from __future__ import annotations

from dataclasses import dataclass, field

from herald.delivery.outbox import OUTBOX
from herald.warehouse.connection import Warehouse


@dataclass
class CampaignSummary:
    client_id: str
    campaign: str
    planned: int = 0
    excluded: int = 0
    sent: int = 0
    deferred: int = 0  # queued, waiting for the recipient's send window
    scheduled: int = 0  # queued, due later (offsets, delays) inside the window
    held: int = 0
    failed: int = 0
    suppressed: int = 0
    cancelled: int = 0  # withdrawn before sending (the recipient opted out)
    exclusions: list[tuple[str, int]] = field(default_factory=list)
    problems: list[tuple[str, int]] = field(default_factory=list)  # held / failed reasons


def campaign_summaries(warehouse: Warehouse, client_id: str | None = None) -> list[CampaignSummary]:
    where, params = ("where plan.client_id = ?", [client_id]) if client_id else ("", [])
    with warehouse.session(read_only=True) as s:
        exists = s.scalar(
            "select count(*) from information_schema.tables where table_schema = 'marts' and table_name = 'message_plan'"
        )
        if not exists:
            return []
        _, counts = s.query(
            f"""
            select plan.client_id, plan.campaign,
                sum(case when plan.status = 'planned' then 1 else 0 end),
                sum(case when plan.status = 'excluded' then 1 else 0 end),
                sum(case when outbox.status = 'sent' then 1 else 0 end),
                sum(case when outbox.status = 'queued' and plan.is_deferred then 1 else 0 end),
                sum(case when outbox.status = 'queued' and not plan.is_deferred then 1 else 0 end),
                sum(case when outbox.status = 'held' then 1 else 0 end),
                sum(case when outbox.status = 'failed' then 1 else 0 end),
                sum(case when outbox.status = 'suppressed' then 1 else 0 end),
                sum(case when outbox.status = 'cancelled' then 1 else 0 end)
            from marts.message_plan as plan
            left join {OUTBOX} as outbox on outbox.message_key = plan.message_key
            {where}
            group by plan.client_id, plan.campaign
            order by plan.client_id, plan.campaign
            """,
            params,
        )
        _, reasons = s.query(
            f"""
            select plan.client_id, plan.campaign, plan.reason, count(*)
            from marts.message_plan as plan {where} {"and" if where else "where"} plan.status = 'excluded'
            group by plan.client_id, plan.campaign, plan.reason
            order by count(*) desc, plan.reason
            """,
            params,
        )
        _, problems = s.query(
            f"""
            select plan.client_id, plan.campaign, outbox.status || ': ' || coalesce(outbox.status_reason, ''), count(*)
            from {OUTBOX} as outbox
            join marts.message_plan as plan on plan.message_key = outbox.message_key
            {where} {"and" if where else "where"} outbox.status in ('held', 'failed')
            group by plan.client_id, plan.campaign, outbox.status, outbox.status_reason
            order by count(*) desc
            """,
            params,
        )
    summaries = {(r[0], r[1]): CampaignSummary(r[0], r[1], *[int(v or 0) for v in r[2:]]) for r in counts}
    for c, name, reason, n in reasons:
        summaries[(c, name)].exclusions.append((reason, int(n)))
    for c, name, reason, n in problems:
        if len(summaries[(c, name)].problems) < 5:
            summaries[(c, name)].problems.append((reason, int(n)))
    return list(summaries.values())
