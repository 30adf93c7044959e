"""How the client report writes a value: counts, percentages, money, dates, by column name."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def fmt_int(value: Any) -> str:
    return "—" if value is None else f"{int(value):,}"


def fmt_pct(value: Any, digits: int = 1) -> str:
    return "—" if value is None else f"{float(value) * 100:.{digits}f}%"


def fmt_cell(column: str, value: Any) -> str:
    """A value as the report shows it, by its column's name: ``_cents`` as money, rates (fractions)
    and ``pct`` (percent) as percentages, counts with thousands separators."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float, Decimal)):
        words = column.lower().split("_")
        if words[-1] == "cents":
            return f"${float(value) / 100:,.2f}"
        if "rate" in words or column.startswith("ci_"):
            return fmt_pct(value)
        if "pct" in words or "percent" in words:
            return f"{float(value):.1f}%"
        if column in ("p_value", "z"):
            return f"{float(value):.3f}"
        if isinstance(value, int) or (isinstance(value, Decimal) and value == value.to_integral_value()):
            return f"{int(value):,}"
        return f"{float(value):,.2f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
