"""The client report as data: its tables, headline numbers and period, and the marts they come
from. Built by :mod:`.queries`; drawn and written by the renderers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from herald.reports.client_report.format import fmt_cell, fmt_int, fmt_pct, is_number

PERFORMANCE = "analytics.campaign_performance_daily"
COMPLIANCE = "analytics.compliance_daily"
AB_RESULTS = "analytics.ab_test_results"
ATTRIBUTION_BY_CHANNEL = "analytics.attribution_by_channel"
CLIENT_DASHBOARD = "analytics.client_dashboard"

NO_DATA = "no data yet"
FORMATS = ("html", "pdf", "xlsx", "csv")
DEFAULT_PERIOD = "30d"
MAX_PERIOD_DAYS = 3660


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


@dataclass(frozen=True)
class Table:
    """One table of the report and the mart it came from. ``missing``: the mart is not there."""

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

    def formatted_rows(self) -> list[list[tuple[str, bool]]]:
        """Each cell as (text, is_number); a metric/value table formats each value by its metric."""
        if self.columns == ["metric", "value"]:
            return [[(str(m), False), (fmt_cell(str(m), v), is_number(v))] for m, v in self.rows]
        return [[(fmt_cell(c, v), is_number(v)) for c, v in zip(self.columns, row, strict=True)] for row in self.rows]


@dataclass(frozen=True)
class Headline:
    """The period's totals (None: the mart is not there)."""

    sent: int | None
    delivered: int | None
    failed: int | None
    replied: int | None
    delivery_rate: float | None  # sent / (sent + failed), as in campaign_performance_daily
    response_rate: float | None  # replied / delivered, else replied / sent, as in the mart
    opt_outs: int | None  # compliance_daily, metric opt_outs

    def items(self) -> list[tuple[str, str]]:
        """(label, formatted value) in the order the report shows them."""
        return [
            ("Sent", fmt_int(self.sent)),
            ("Delivered", fmt_int(self.delivered)),
            ("Failed", fmt_int(self.failed)),
            ("Replied", fmt_int(self.replied)),
            ("Delivery rate", fmt_pct(self.delivery_rate)),
            ("Response rate", fmt_pct(self.response_rate)),
            ("Opt-outs", fmt_int(self.opt_outs)),
        ]

    def raw_items(self) -> list[tuple[str, Any]]:
        return [
            ("sent", self.sent),
            ("delivered", self.delivered),
            ("failed", self.failed),
            ("replied", self.replied),
            ("delivery_rate", self.delivery_rate),
            ("response_rate", self.response_rate),
            ("opt_outs", self.opt_outs),
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
    daily: Table  # send_date, sent, delivered, failed, replied
    campaigns: Table  # campaign, sent, delivered, replied, response_rate
    ab_tests: Table  # analytics.ab_test_results, latest computation
    attribution: Table  # analytics.attribution_by_channel
    dashboard: Table  # analytics.client_dashboard as metric, value
    notes: list[str] = field(default_factory=list)

    @property
    def tables(self) -> list[Table]:
        return [self.daily, self.campaigns, self.ab_tests, self.attribution, self.dashboard]

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
        return Table("summary", "Summary", PERFORMANCE, ["metric", "value"], rows)

    def delivered_series(self) -> list[tuple[date, int, int]]:
        """(day, sent, delivered) for every day of the period, 0 on days without messages."""
        by_day = {r["send_date"]: r for r in self.daily.records()}
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
