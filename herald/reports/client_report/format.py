"""How the client report writes a value and names a column: counts, percentages, money, dates by
column name, and the human label of every column and metric the report can show."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

NOT_AVAILABLE = "not available yet"  # a rate whose denominator is zero, or a number not known yet
MISSING = "—"  # a count from a table that is not built yet

# column or metric name → what a reader sees; a name not listed is written in words by `label`
LABELS: dict[str, str] = {
    # messages
    "day": "Day",
    "send_date": "Day",
    "campaign": "Campaign",
    "step": "Step",
    "variant": "Variant",
    "channel": "Channel",
    "sent": "Sent",
    "delivered": "Delivered",
    "failed": "Failed",
    "awaiting": "Awaiting receipt",
    "replied": "Replied",
    "clicked": "Clicked",
    "delivery_rate": "Delivery rate",
    "response_rate": "Response rate",
    "opt_outs": "Opt-outs",
    # A/B tests
    "is_control": "Control",
    "converted": "Converted",
    "metric": "Measured by",
    "rate": "Rate",
    "ci_low": "Low (95%)",
    "ci_high": "High (95%)",
    "z": "z",
    "p_value": "p-value",
    "verdict": "Verdict",
    "winner": "Winner",
    "computed_at": "Computed at (UTC)",
    # attribution
    "model": "Attribution model",
    "conversions": "Conversions",
    "conversions_credited": "Conversions credited",
    "conversions_touched": "Conversions touched",
    "revenue": "Revenue",
    "value": "Value",
    "kind": "Kind",
    # dashboard (analytics.client_dashboard)
    "client_name": "Client",
    "as_of_at": "As of (UTC)",
    "is_metered": "Prepaid credits",
    "credit_balance": "Credit balance",
    "balance_cents": "Balance",
    "delivered_24h": "Delivered, last 24 hours",
    "delivered_3d": "Delivered, last 3 days",
    "delivered_7d": "Delivered, last 7 days",
    "delivered_30d": "Delivered, last 30 days",
    "failed_30d": "Failed, last 30 days",
    "delivery_rate_30d": "Delivery rate, last 30 days",
    "replied_30d": "Replied, last 30 days",
    "response_pct_30d": "Replied ÷ delivered, last 30 days",
    "response_pct": "Response rate",
    "opt_outs_30d": "Opt-outs, last 30 days",
    "credit_alerts_30d": "Low-credit alerts, last 30 days",
    "last_credit_alert_at": "Last low-credit alert (UTC)",
    # funnel and conversions
    "stage": "Stage",
    "stage_changes": "Stage changes",
    "people": "People",
    "after_message": "After a message",
    # appointments
    "reminded": "Patients reminded",
    "reminders_delivered": "Reminders delivered",
    "confirmed": "Confirmed",
    "reschedule_requested": "Asked to reschedule",
    "no_answer": "No answer yet",
    "confirmation_rate": "Confirmation rate",
    # conversations
    "conversations": "Conversations",
    "messages_in": "Messages from people",
    "answers_sent": "Answers sent",
    "automated_answers": "Automatic answers",
    # conversion kinds (analytics.conversions.kind)
    "funnel_event": "Funnel stage reached",
    "appointment_confirmed": "Appointment confirmed",
    "reply": "Reply",
    # channels
    "sms": "SMS",
    "email": "Email",
}


def label(name: str) -> str:
    """The column's or metric's human label: from LABELS, else its words ("open_house" → "Open house")."""
    if name in LABELS:
        return LABELS[name]
    words = str(name).replace("_", " ").replace("-", " ").strip()
    return words[:1].upper() + words[1:] if words else str(name)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def fmt_int(value: Any) -> str:
    return MISSING if value is None else f"{int(value):,}"


def fmt_pct(value: Any, digits: int = 1) -> str:
    """A fraction as a percentage; None (no denominator yet) as "not available yet"."""
    return NOT_AVAILABLE if value is None else f"{float(value) * 100:.{digits}f}%"


def _is_rate(column: str) -> bool:
    words = column.lower().split("_")
    return "rate" in words or column.startswith("ci_")


def fmt_cell(column: str, value: Any) -> str:
    """A value as the report shows it, by its column's name: ``_cents`` as money, rates (fractions)
    and ``pct`` (percent) as percentages, counts with thousands separators. A rate with no value
    could not be computed: "not available yet"."""
    words = column.lower().split("_")
    if value is None:
        return NOT_AVAILABLE if _is_rate(column) or "pct" in words else MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float, Decimal)):
        if words[-1] == "cents":
            return f"${float(value) / 100:,.2f}"
        if _is_rate(column):
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
    if column in ("kind", "model", "channel", "stage", "campaign", "metric"):
        return label(str(value))
    return str(value)
