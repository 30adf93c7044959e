"""Headline numbers of the analytics marts, as Markdown tables for the Dagster UI:
what an operator wants to see on an analytics asset without opening a SQL prompt."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from herald.warehouse.connection import Warehouse

# model → the query whose rows are its headline (a mart's own columns, summed per client)
HEADLINE_SQL: dict[str, str] = {
    "campaign_performance_daily": (
        "select client_id, sum(planned) as planned, sum(excluded) as excluded, sum(sent) as sent, "
        "sum(delivered) as delivered, sum(replied) as replied, sum(failed) as failed "
        "from analytics.campaign_performance_daily group by client_id order by client_id"
    ),
    "client_dashboard": "select * from analytics.client_dashboard order by client_id",
    "compliance_daily": (
        "select client_id, metric, sum(count) as total from analytics.compliance_daily "
        "group by client_id, metric order by client_id, metric"
    ),
    "attribution_by_channel": (
        "select client_id, model, channel, conversions_credited, revenue from analytics.attribution_by_channel "
        "order by client_id, model, channel"
    ),
    "attribution_by_campaign": (
        "select client_id, model, campaign, conversions_credited, revenue from analytics.attribution_by_campaign "
        "order by client_id, model, campaign"
    ),
    "conversions": "select client_id, kind, count(*) as conversions, sum(value) as value from analytics.conversions "
    "group by client_id, kind order by client_id, kind",
    "packet_report": "select count(distinct packet_id) as packets from analytics.packet_report",
}
MAX_ROWS = 20


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.4g}"
    return str(value).replace("|", "\\|")


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    if not rows:
        return "no rows yet"
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows[:MAX_ROWS]]
    if len(rows) > MAX_ROWS:
        lines.append(f"\n… {len(rows) - MAX_ROWS} more rows")
    return "\n".join(lines)


def headline(warehouse: Warehouse, model: str) -> str | None:
    """The model's headline table, or None when it has none (or cannot be read now)."""
    sql = HEADLINE_SQL.get(model)
    if sql is None:
        return None
    try:
        with warehouse.session(read_only=True) as s:
            columns, rows = s.query(sql)
    except Exception:  # a headline is a courtesy; never fail a build for it
        return None
    return markdown_table(columns, rows)
