"""The client report's numbers: SQL over the analytics marts.

Every number is computed by SQL over a mart (``campaign_performance_daily``,
``compliance_daily``, ``ab_test_results``, ``attribution_by_channel``, ``client_dashboard``) with
the same formulas the marts use, so the report always agrees with ``herald sql``. A mart that is
missing or has no rows for the client becomes a table marked missing or empty; it never fails the
report.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from herald.config import Deployment
from herald.reports.client_report.model import (
    AB_RESULTS,
    ATTRIBUTION_BY_CHANNEL,
    CLIENT_DASHBOARD,
    COMPLIANCE,
    MAX_PERIOD_DAYS,
    PERFORMANCE,
    Headline,
    Report,
    ReportError,
    Table,
)
from herald.warehouse.connection import Session, Warehouse


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


RATE_SQL = (
    "cast(sum(sent) as double precision) / nullif(sum(sent) + sum(failed), 0)",
    "case when sum(delivered) > 0 then cast(sum(replied) as double precision) / sum(delivered) "
    "else cast(sum(replied) as double precision) / nullif(sum(sent), 0) end",
)
PERIOD_WHERE = "where client_id = ? and send_date between ? and ?"


def headline_sql() -> str:
    return (
        "select cast(coalesce(sum(sent), 0) as bigint) as sent, cast(coalesce(sum(delivered), 0) as bigint) as delivered, "
        "cast(coalesce(sum(failed), 0) as bigint) as failed, cast(coalesce(sum(replied), 0) as bigint) as replied, "
        f"{RATE_SQL[0]} as delivery_rate, {RATE_SQL[1]} as response_rate "
        f"from {PERFORMANCE} {PERIOD_WHERE}"
    )


def daily_sql() -> str:
    return (
        "select send_date, cast(sum(sent) as bigint) as sent, cast(sum(delivered) as bigint) as delivered, "
        "cast(sum(failed) as bigint) as failed, cast(sum(replied) as bigint) as replied "
        f"from {PERFORMANCE} {PERIOD_WHERE} group by send_date order by send_date"
    )


def campaigns_sql() -> str:
    return (
        "select campaign, cast(sum(sent) as bigint) as sent, cast(sum(delivered) as bigint) as delivered, "
        f"cast(sum(replied) as bigint) as replied, {RATE_SQL[1]} as response_rate "
        f"from {PERFORMANCE} {PERIOD_WHERE} group by campaign order by campaign"
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
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    end = now.astimezone(ZoneInfo(client.time_zone)).date()
    start = end - timedelta(days=period_days - 1)
    period = [client_id, start, end]
    notes: list[str] = []
    with warehouse.session(read_only=True) as s:
        if _columns(s, PERFORMANCE) is None:
            notes.append(f"{PERFORMANCE} is not built yet")
            totals: tuple[Any, ...] = (None,) * 6
            daily = Table("daily", "Delivered per day", PERFORMANCE, [], [], missing=True)
            campaigns = Table("campaigns", "Response rate by campaign", PERFORMANCE, [], [], missing=True)
        else:
            totals = _query(s, headline_sql(), period)[1][0]
            daily = Table("daily", "Delivered per day", PERFORMANCE, *_query(s, daily_sql(), period))
            campaigns = Table(
                "campaigns", "Response rate by campaign", PERFORMANCE, *_query(s, campaigns_sql(), period)
            )
        opt_outs = _query(s, opt_outs_sql(), period)[1][0][0] if _columns(s, COMPLIANCE) else None
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
        dashboard_rows = _client_rows(s, CLIENT_DASHBOARD, "dashboard", "Dashboard", client_id, ())
    dashboard = Table(
        "dashboard",
        "Dashboard",
        CLIENT_DASHBOARD,
        ["metric", "value"],
        list(zip(dashboard_rows.columns, dashboard_rows.rows[0], strict=True)) if dashboard_rows.rows else [],
        missing=dashboard_rows.missing,
    )
    headline = Headline(*totals, opt_outs=opt_outs)
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
        notes=notes,
    )
