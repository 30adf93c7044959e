"""The client report as data: its tables, headline numbers, sections and period, and the marts they
come from. Built by :mod:`.queries`; drawn and written by the renderers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from herald.reports.client_report.format import fmt_cell, fmt_int, fmt_pct, is_number, label

PERFORMANCE = "analytics.campaign_performance_daily"
DELIVERIES = "marts.deliveries"
COMPLIANCE = "analytics.compliance_daily"
AB_RESULTS = "analytics.ab_test_results"
ATTRIBUTION_BY_CHANNEL = "analytics.attribution_by_channel"
CLIENT_DASHBOARD = "analytics.client_dashboard"
APPOINTMENT_CONFIRMATIONS = "marts.appointment_confirmations"
FUNNEL_EVENTS = "marts.funnel_events"
CONVERSIONS = "analytics.conversions"
ATTRIBUTED_CONVERSIONS = "analytics.attributed_conversions"
CONVERSATION_MESSAGES = "marts.conversation_messages"
ENGAGEMENT_EVENTS = "marts.engagement_events"

NO_DATA = "no data yet"
FORMATS = ("html", "pdf", "xlsx", "csv")
DEFAULT_PERIOD = "30d"
MAX_PERIOD_DAYS = 3660

# what the client is, from what it has: the report's own sections follow it
KINDS = ("clinic", "college", "listings", "general")


class ReportError(ValueError):
    """The report cannot be made as asked: an unknown client, a bad period or format."""


def parse_period(value: str) -> int:
    """``30d`` → 30, ``4w`` → 28, ``7`` → 7 (days, counting today)."""
    found = re.fullmatch(r"\s*(\d+)\s*([dw]?)\s*", value or "", flags=re.IGNORECASE)
    if not found:
        raise ReportError(f"--period must be a number of days or weeks such as 30d or 4w, not {value!r}")
    days = int(found.group(1)) * (7 if found.group(2).lower() == "w" else 1)
    if not 1 <= days <= MAX_PERIOD_DAYS:
        raise ReportError(f"--period must be between 1 and {MAX_PERIOD_DAYS} days, not {value!r} ({days} days)")
    return days


def rate(numerator: Any, denominator: Any) -> float | None:
    """numerator / denominator, or None when the denominator is missing or zero."""
    if numerator is None or not denominator:
        return None
    return float(numerator) / float(denominator)


@dataclass(frozen=True)
class Table:
    """One table of the report and the mart it came from (``source``, for developers: never shown
    to the client). ``missing``: the mart is not there."""

    key: str  # sheet name and CSV file stem
    title: str
    source: str
    columns: list[str]
    rows: list[tuple[Any, ...]]
    missing: bool = False

    @property
    def has_data(self) -> bool:
        return not self.missing and bool(self.rows)

    def column(self, *names: str) -> str | None:
        """The first of ``names`` this table has."""
        return next((n for n in names if n in self.columns), None)

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    @property
    def labels(self) -> list[str]:
        """The column headers a reader sees."""
        if self.columns == ["metric", "value"]:
            return ["", ""]
        return [label(c) for c in self.columns]

    def numeric_columns(self) -> list[bool]:
        """Whether each column holds numbers (right-aligned, header too)."""
        if self.columns == ["metric", "value"]:
            return [False, True]
        return [any(is_number(row[i]) for row in self.rows) for i in range(len(self.columns))]

    def formatted_rows(self) -> list[list[tuple[str, bool]]]:
        """Each cell as (text, right-aligned: a number); a metric/value table labels each metric
        and formats its value by the metric's name."""
        if self.columns == ["metric", "value"]:
            # every value right-aligned, a dash or a timestamp too: one column of values
            return [[(label(str(m)), False), (fmt_cell(str(m), v), True)] for m, v in self.rows]
        return [[(fmt_cell(c, v), is_number(v)) for c, v in zip(self.columns, row, strict=True)] for row in self.rows]


@dataclass(frozen=True)
class Section:
    """A section of the report for this kind of client: a few key numbers and a table."""

    key: str
    title: str
    intro: str
    metrics: list[tuple[str, Any]]  # (metric name, raw value): labelled and formatted by name
    table: Table | None = None
    missing: bool = False  # the marts it reads are not built yet

    def items(self) -> list[tuple[str, str]]:
        return [(label(name), fmt_cell(name, value)) for name, value in self.metrics]

    @property
    def has_data(self) -> bool:
        return not self.missing and (
            any(v for _, v in self.metrics) or bool(self.table is not None and self.table.has_data)
        )


@dataclass(frozen=True)
class Headline:
    """The period's totals (None: the mart is not there). See docs/analysts.md, "What the numbers mean"."""

    sent: int | None  # messages handed to a provider (accepted or refused), marts.deliveries
    delivered: int | None  # a provider receipt said delivered (or read)
    failed: int | None  # the final outcome was failed, undelivered or bounced (refusals included)
    replied: int | None  # messages sent in the period a recipient replied to (last touch, 7 days)
    opt_outs: int | None  # compliance_daily, metric opt_outs
    clicked: int | None = None  # messages with a tracked link clicked (marts.engagement_events, when built)

    @property
    def awaiting(self) -> int | None:
        """Sent, with no final outcome from the provider yet."""
        if self.sent is None or self.delivered is None or self.failed is None:
            return None
        return max(self.sent - self.delivered - self.failed, 0)

    @property
    def delivery_rate(self) -> float | None:
        """delivered / (delivered + failed): over the messages that reached a final outcome."""
        if self.delivered is None or self.failed is None:
            return None
        return rate(self.delivered, self.delivered + self.failed)

    @property
    def response_rate(self) -> float | None:
        """replied / sent."""
        return rate(self.replied, self.sent)

    def raw_items(self) -> list[tuple[str, Any]]:
        return [
            ("sent", self.sent),
            ("delivered", self.delivered),
            ("failed", self.failed),
            ("awaiting", self.awaiting),
            ("delivery_rate", self.delivery_rate),
            ("replied", self.replied),
            ("response_rate", self.response_rate),
            *([("clicked", self.clicked)] if self.clicked is not None else []),
            ("opt_outs", self.opt_outs),
        ]

    def items(self) -> list[tuple[str, str]]:
        """(label, formatted value) in the order the report shows them."""
        return [
            (label(name), fmt_pct(value) if name.endswith("_rate") else fmt_int(value))
            for name, value in self.raw_items()
        ]


@dataclass(frozen=True)
class Report:
    client_id: str
    client_name: str
    time_zone: str
    period_days: int
    start_date: date  # the client's local dates, both included
    end_date: date
    generated_at: datetime  # UTC
    headline: Headline
    daily: Table  # day, sent, delivered, failed, replied
    campaigns: Table  # campaign, sent, delivered, failed, delivery_rate, replied, response_rate
    ab_tests: Table  # analytics.ab_test_results, latest computation
    attribution: Table  # analytics.attribution_by_channel
    dashboard: Table  # analytics.client_dashboard as metric, value
    kind: str = "general"
    sections: list[Section] = field(default_factory=list)  # the client kind's own, then conversations
    notes: list[str] = field(default_factory=list)

    @property
    def tables(self) -> list[Table]:
        own = [s.table for s in self.sections if s.table is not None]
        return [self.daily, self.campaigns, *own, self.ab_tests, self.attribution, self.dashboard]

    def section(self, key: str) -> Section | None:
        return next((s for s in self.sections if s.key == key), None)

    def summary_table(self) -> Table:
        rows = [
            ("client_id", self.client_id),
            ("client_name", self.client_name),
            ("period_start", self.start_date),
            ("period_end", self.end_date),
            ("time_zone", self.time_zone),
            ("generated_at_utc", self.generated_at.replace(tzinfo=None)),
            *self.headline.raw_items(),
        ]
        for section in self.sections:
            rows += [(f"{section.key}_{name}", value) for name, value in section.metrics]
        return Table("summary", "Summary", DELIVERIES, ["metric", "value"], rows)

    def delivered_series(self) -> list[tuple[date, int, int]]:
        """(day, sent, delivered) for every day of the period, 0 on days without messages."""
        by_day = {r["day"]: r for r in self.daily.records()}
        days = [self.start_date + timedelta(days=i) for i in range(self.period_days)]
        return [
            (d, int(by_day[d]["sent"]) if d in by_day else 0, int(by_day[d]["delivered"]) if d in by_day else 0)
            for d in days
        ]

    def period_text(self) -> str:
        """The period as the report's subtitle says it, with when the report was made."""
        return (
            f"{self.start_date:%b %d, %Y} – {self.end_date:%b %d, %Y} ({self.period_days} days, "
            f"{self.time_zone}) · generated {self.generated_at:%Y-%m-%d %H:%M} UTC"
        )
