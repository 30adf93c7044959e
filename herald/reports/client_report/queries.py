"""The client report's numbers: SQL over the marts.

One definition of each number, written down in docs/analysts.md ("What the numbers mean"):

- *sent*: a message handed to a provider (``marts.deliveries``: accepted or refused), counted on
  the client's local date of ``sent_at``;
- *delivered*: a provider receipt said delivered (or read): ``delivered_at`` is set or the final
  status is delivered/read;
- *failed*: the final outcome was failed, undelivered or bounced (a refusal included);
- *delivery rate*: delivered / (delivered + failed), over the messages that reached a final
  outcome; not available while none has;
- *replied* and the response rate (replied / sent): ``campaign_performance_daily``'s last-touch
  replies, by the local date the message was due.

Pseudo-campaigns (Herald's own answers: ``_replies``, ``_manual``; any name starting with ``_``)
are never listed as campaigns; replies are the "Conversations" section. A mart that is missing
or has no rows for the client becomes a section marked missing or empty; it never fails the
report.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from herald.clock import utcnow_aware
from herald.config import Deployment
from herald.config.models import Client
from herald.reports.client_report.model import (
    AB_RESULTS,
    APPOINTMENT_CONFIRMATIONS,
    ATTRIBUTED_CONVERSIONS,
    ATTRIBUTION_BY_CHANNEL,
    CLIENT_DASHBOARD,
    COMPLIANCE,
    CONVERSATION_MESSAGES,
    CONVERSIONS,
    DELIVERIES,
    ENGAGEMENT_EVENTS,
    FUNNEL_EVENTS,
    MAX_PERIOD_DAYS,
    PERFORMANCE,
    Headline,
    Report,
    ReportError,
    Section,
    Table,
    rate,
)
from herald.warehouse.connection import Session, Warehouse

# the final provider outcomes (marts.deliveries.final_status); a delivery receipt wins
DELIVERED_SQL = "(delivered_at is not null or final_status in ('delivered', 'read'))"
FAILED_SQL = f"(not {DELIVERED_SQL} and final_status in ('failed', 'undelivered', 'bounced'))"
REAL_CAMPAIGN_SQL = "left(coalesce(campaign, ''), 1) <> '_'"  # not a pseudo-campaign such as _replies

# the dashboard's columns the report shows, in order (the rest are bookkeeping)
DASHBOARD_COLUMNS = (
    "delivered_24h",
    "delivered_7d",
    "delivered_30d",
    "failed_30d",
    "delivery_rate_30d",
    "replied_30d",
    "response_pct_30d",
    "opt_outs_30d",
    "credit_balance",
    "balance_cents",
    "credit_alerts_30d",
    "last_credit_alert_at",
    "as_of_at",
)


def _columns(s: Session, relation: str) -> list[str] | None:
    """The relation's columns, or None when it does not exist (checked first: a failed query
    would abort the whole PostgreSQL transaction)."""
    schema, name = relation.split(".")
    _, rows = s.query(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
        "order by ordinal_position",
        [schema, name],
    )
    return [r[0] for r in rows] or None


def _number(value: Any) -> Any:
    """PostgreSQL sums into Decimal: back to int / float."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _query(s: Session, sql: str, params: Sequence[Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
    columns, rows = s.query(sql, params)
    return columns, [tuple(_number(v) for v in row) for row in rows]


def local_date_sql(engine: str, column: str, time_zone: str) -> str:
    """The client's local date of a naive UTC timestamp column, on either engine (as the dbt
    macro utc_to_local)."""
    ZoneInfo(time_zone)  # a configured, valid IANA name; raises otherwise
    zone = time_zone.replace("'", "''")
    if engine == "duckdb":
        return f"cast(timezone('{zone}', timezone('UTC', {column})) as date)"
    return f"cast(({column} at time zone 'UTC') at time zone '{zone}' as date)"


def utc_bounds(start: date, end: date, time_zone: str) -> tuple[datetime, datetime]:
    """The period's local days [start, end] as naive UTC [from, to)."""
    zone = ZoneInfo(time_zone)

    def utc(day: date) -> datetime:
        return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC).replace(tzinfo=None)

    return utc(start), utc(end + timedelta(days=1))


def outcomes_sql(engine: str, time_zone: str) -> str:
    """Per local day and campaign: sent, delivered, failed (marts.deliveries). Params: client, from, to."""
    day = local_date_sql(engine, "coalesce(sent_at, failed_at)", time_zone)
    return (
        f"select {day} as day, campaign, count(*) as sent, "
        f"count(*) filter (where {DELIVERED_SQL}) as delivered, count(*) filter (where {FAILED_SQL}) as failed "
        f"from {DELIVERIES} where client_id = ? and coalesce(sent_at, failed_at) >= ? "
        f"and coalesce(sent_at, failed_at) < ? and {REAL_CAMPAIGN_SQL} group by 1, 2"
    )


def replied_sql() -> str:
    """Per local day and campaign: replied (campaign_performance_daily). Params: client, start, end."""
    return (
        f"select send_date as day, campaign, cast(sum(replied) as bigint) as replied from {PERFORMANCE} "
        f"where client_id = ? and send_date between ? and ? and {REAL_CAMPAIGN_SQL} group by 1, 2"
    )


def clicks_sql() -> str:
    """Per campaign: messages with a link clicked in the period (marts.engagement_events).
    Params: client, from, to."""
    return (
        f"select campaign, count(distinct message_key) as clicked from {ENGAGEMENT_EVENTS} "
        f"where client_id = ? and event = 'clicked' and occurred_at >= ? and occurred_at < ? "
        f"and {REAL_CAMPAIGN_SQL} group by campaign"
    )


def opt_outs_sql() -> str:
    return (
        f"select cast(coalesce(sum(count), 0) as bigint) from {COMPLIANCE} "
        "where client_id = ? and metric = 'opt_outs' and activity_date between ? and ?"
    )


def _client_rows(
    s: Session, relation: str, key: str, title: str, client_id: str, order: Sequence[str], latest: str | None = None
) -> Table:
    """Every row of ``relation`` for the client (the latest ``latest`` only), without client_id."""
    columns = _columns(s, relation)
    if columns is None or "client_id" not in columns:
        return Table(key, title, relation, [], [], missing=True)
    sql = f"select * from {relation} where client_id = ?"
    params: list[Any] = [client_id]
    if latest and latest in columns:
        sql += f" and {latest} = (select max({latest}) from {relation} where client_id = ?)"
        params.append(client_id)
    order_by = [c for c in order if c.split()[0] in columns]  # entries may carry "desc"
    if order_by:
        sql += " order by " + ", ".join(order_by)
    names, rows = _query(s, sql, params)
    keep = [i for i, n in enumerate(names) if n != "client_id"]
    return Table(key, title, relation, [names[i] for i in keep], [tuple(r[i] for i in keep) for r in rows])


def client_kind(client: Client) -> str:
    """clinic (appointment fields or an appointment-reminder campaign), college (funnel events),
    listings (a realtor: listing campaigns or a real-estate industry), else general."""
    fields = {
        getattr(target, "field", None) for load_map in client.load_maps.values() for target in load_map.columns.values()
    }
    campaigns = client.campaigns.values()
    if "appointment_at" in fields or any(c.message_type == "appointment_reminder" for c in campaigns):
        return "clinic"
    if any(m.entity == "funnel_events" for m in client.load_maps.values()):
        return "college"
    industry = (getattr(client.config, "industry", None) or "").lower()
    if "listing" in " ".join(client.campaigns) or "real" in industry:
        return "listings"
    return "general"


def appointment_campaigns(client: Client) -> list[str]:
    return sorted(
        name
        for name, c in client.campaigns.items()
        if c.message_type == "appointment_reminder"
        or any(step.offset is not None and step.offset.field == "appointment_at" for step in c.steps)
    )


def _appointments(s: Session, client: Client, bounds: tuple[datetime, datetime]) -> Section:
    """Reminders sent in the period and the answers received in it (marts.appointment_confirmations)."""
    intro = (
        "Patients reminded of an appointment in the period, and their answers: C confirms, "
        "R asks to reschedule. The confirmation rate is confirmed ÷ patients reminded."
    )
    if _columns(s, APPOINTMENT_CONFIRMATIONS) is None or _columns(s, DELIVERIES) is None:
        return Section("appointments", "Appointments", intro, [], missing=True)
    campaigns = appointment_campaigns(client) or [""]
    marks = ", ".join("?" * len(campaigns))
    reminded, delivered = _query(
        s,
        f"select count(distinct contact_id), count(distinct contact_id) filter (where {DELIVERED_SQL}) "
        f"from {DELIVERIES} where client_id = ? and campaign in ({marks}) and sent_at >= ? and sent_at < ?",
        [client.client_id, *campaigns, *bounds],
    )[1][0]
    confirmed, reschedule = _query(
        s,
        "select count(*) filter (where is_confirmed), count(*) filter (where response = 'reschedule_requested') "
        f"from {APPOINTMENT_CONFIRMATIONS} where client_id = ? and responded_at >= ? and responded_at < ?",
        [client.client_id, *bounds],
    )[1][0]
    metrics = [
        ("reminded", reminded),
        ("reminders_delivered", delivered),
        ("confirmed", confirmed),
        ("reschedule_requested", reschedule),
        ("no_answer", max(reminded - confirmed - reschedule, 0)),
        ("confirmation_rate", rate(confirmed, reminded)),
    ]
    return Section("appointments", "Appointments", intro, metrics)


def _funnel(s: Session, client_id: str, bounds: tuple[datetime, datetime]) -> Section:
    """Stage changes in the period (marts.funnel_events) and conversions (analytics.conversions,
    credited to a message in analytics.attributed_conversions)."""
    intro = (
        "Stage changes your systems sent in the period, and the conversions they count as. "
        "“After a message” counts the conversions with one of your messages before them."
    )
    if _columns(s, FUNNEL_EVENTS) is None:
        return Section("funnel", "Funnel", intro, [], missing=True)
    _, stage_rows = _query(
        s,
        "select to_stage as stage, count(*) as stage_changes, count(distinct contact_id) as people, "
        f"min(occurred_at) as first_at from {FUNNEL_EVENTS} "
        "where client_id = ? and occurred_at >= ? and occurred_at < ? "
        "group by to_stage order by count(*) desc, min(occurred_at), to_stage",
        [client_id, *bounds],
    )
    stages = Table(
        "funnel", "Funnel stages", FUNNEL_EVENTS, ["stage", "stage_changes", "people"], [r[:3] for r in stage_rows]
    )
    metrics: list[tuple[str, Any]] = [("stage_changes", sum(r[1] for r in stage_rows))]
    if _columns(s, CONVERSIONS) is not None:
        conversions = _query(
            s,
            f"select count(*) from {CONVERSIONS} where client_id = ? and occurred_at >= ? and occurred_at < ?",
            [client_id, *bounds],
        )[1][0][0]
        metrics.append(("conversions", conversions))
        if _columns(s, ATTRIBUTED_CONVERSIONS) is not None:
            after = _query(
                s,
                f"select count(distinct conversion_id) from {ATTRIBUTED_CONVERSIONS} "
                "where client_id = ? and converted_at >= ? and converted_at < ?",
                [client_id, *bounds],
            )[1][0][0]
            metrics.append(("after_message", after))
    return Section("funnel", "Funnel", intro, metrics, stages)


def _conversations(s: Session, client_id: str, bounds: tuple[datetime, datetime]) -> Section:
    """Threads with a message in the period (marts.conversation_messages)."""
    intro = (
        "People who wrote to you in the period (a conversation is one person's thread), and the "
        "answers sent to them, automatic answers (opt-out confirmations, HELP) included."
    )
    if _columns(s, CONVERSATION_MESSAGES) is None:
        return Section("conversations", "Conversations", intro, [], missing=True)
    row = _query(
        s,
        "select count(distinct conversation_id) filter (where direction = 'inbound'), "
        "count(*) filter (where direction = 'inbound'), "
        "count(*) filter (where kind in ('reply', 'manual')), count(*) filter (where kind = 'reply') "
        f"from {CONVERSATION_MESSAGES} where client_id = ? and occurred_at >= ? and occurred_at < ?",
        [client_id, *bounds],
    )[1][0]
    names = ("conversations", "messages_in", "answers_sent", "automated_answers")
    return Section("conversations", "Conversations", intro, list(zip(names, row, strict=True)))


def _dashboard(s: Session, client_id: str) -> Table:
    rows = _client_rows(s, CLIENT_DASHBOARD, "dashboard", "Right now", client_id, ())
    if not rows.rows:
        return Table("dashboard", "Right now", CLIENT_DASHBOARD, ["metric", "value"], [], missing=rows.missing)
    record = rows.records()[0]
    shown = [(name, record[name]) for name in DASHBOARD_COLUMNS if name in record]
    return Table("dashboard", "Right now", CLIENT_DASHBOARD, ["metric", "value"], shown)


def _merge(outcomes: list[tuple], replies: list[tuple], key: int) -> dict[Any, list[int]]:
    """(day, campaign, sent, delivered, failed) and (day, campaign, replied) rows summed by
    column ``key`` (0: day, 1: campaign) into [sent, delivered, failed, replied]."""
    merged: dict[Any, list[int]] = {}
    for row in outcomes:
        totals = merged.setdefault(row[key], [0, 0, 0, 0])
        for i in range(3):
            totals[i] += int(row[2 + i] or 0)
    for row in replies:
        merged.setdefault(row[key], [0, 0, 0, 0])[3] += int(row[2] or 0)
    return merged


def build_report(
    warehouse: Warehouse, deployment: Deployment, client_id: str, period_days: int, now: datetime | None = None
) -> Report:
    """The client's report over the ``period_days`` local days ending with today (its time zone)."""
    client = deployment.clients.get(client_id)
    if client is None:
        raise ReportError(
            f"unknown client {client_id!r}; configured: {', '.join(sorted(deployment.clients)) or 'none'}"
        )
    if not 1 <= period_days <= MAX_PERIOD_DAYS:
        raise ReportError(f"the period must be between 1 and {MAX_PERIOD_DAYS} days, not {period_days}")
    now = now or utcnow_aware()
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    end = now.astimezone(ZoneInfo(client.time_zone)).date()
    start = end - timedelta(days=period_days - 1)
    bounds = utc_bounds(start, end, client.time_zone)
    kind = client_kind(client)
    notes: list[str] = []
    with warehouse.session(read_only=True) as s:
        has_deliveries = _columns(s, DELIVERIES) is not None
        has_performance = _columns(s, PERFORMANCE) is not None
        outcomes = (
            _query(s, outcomes_sql(s.engine, client.time_zone), [client_id, *bounds])[1] if has_deliveries else []
        )
        replies = _query(s, replied_sql(), [client_id, start, end])[1] if has_performance else []
        if not has_deliveries:
            notes.append("Message numbers are not available yet: no message has been sent through Herald.")
        opt_outs = _query(s, opt_outs_sql(), [client_id, start, end])[1][0][0] if _columns(s, COMPLIANCE) else None
        clicks = dict(_query(s, clicks_sql(), [client_id, *bounds])[1]) if _columns(s, ENGAGEMENT_EVENTS) else None
        sections: list[Section] = []
        if kind == "clinic":
            sections.append(_appointments(s, client, bounds))
        elif kind == "college":
            sections.append(_funnel(s, client_id, bounds))
        sections.append(_conversations(s, client_id, bounds))
        ab_tests = _client_rows(
            s,
            AB_RESULTS,
            "ab_tests",
            "A/B test results",
            client_id,
            ("campaign", "step", "metric", "is_control desc", "variant"),
            latest="computed_at",
        )
        attribution = _client_rows(
            s, ATTRIBUTION_BY_CHANNEL, "attribution", "Attribution by channel", client_id, ("model", "channel")
        )
        dashboard = _dashboard(s, client_id)

    by_day = _merge(outcomes, replies, 0)
    daily = Table(
        "daily",
        "Messages per day",
        DELIVERIES,
        ["day", "sent", "delivered", "failed", "replied"],
        [(day, *by_day[day]) for day in sorted(by_day)],
        missing=not has_deliveries,
    )
    by_campaign = _merge(outcomes, replies, 1)
    for name in clicks or {}:
        by_campaign.setdefault(name, [0, 0, 0, 0])
    click_column = ["clicked"] if clicks is not None else []
    campaigns = Table(
        "campaigns",
        "Listing campaigns and responses" if kind == "listings" else "Campaigns",
        DELIVERIES,
        ["campaign", "sent", "delivered", "failed", "delivery_rate", "replied", "response_rate", *click_column],
        [
            (
                name,
                sent,
                delivered,
                failed,
                rate(delivered, delivered + failed),
                replied,
                rate(replied, sent),
                *([int(clicks.get(name, 0))] if clicks is not None else []),
            )
            for name, (sent, delivered, failed, replied) in sorted(by_campaign.items())
        ],
        missing=not has_deliveries,
    )
    totals = [sum(v[i] for v in by_day.values()) for i in range(4)]
    headline = Headline(
        sent=totals[0] if has_deliveries else None,
        delivered=totals[1] if has_deliveries else None,
        failed=totals[2] if has_deliveries else None,
        replied=totals[3] if has_performance else None,
        opt_outs=opt_outs,
        clicked=sum(int(v) for v in clicks.values()) if clicks is not None else None,
    )
    return Report(
        client_id=client_id,
        client_name=client.config.name,
        time_zone=client.time_zone,
        period_days=period_days,
        start_date=start,
        end_date=end,
        generated_at=now.astimezone(UTC),
        headline=headline,
        daily=daily,
        campaigns=campaigns,
        ab_tests=ab_tests,
        attribution=attribution,
        dashboard=dashboard,
        kind=kind,
        sections=sections,
        notes=notes,
    )
