"""The occurrence a per-appointment enrollment is for: ``appointment:<appointment_key>@<UTC time>``.

dbt writes it (the macro ``appointment_occurrence`` in dbt_project/macros/engine/appointments.sql)
and it flows into the enrollment id, the message keys and the outbox, so each appointment's
reminders are keyed by the appointment and its time. The renderer reads the time back, so a
reminder shows the appointment it is for — not the contact's latest ``appointment_at``.
"""

from __future__ import annotations

from datetime import datetime

PREFIX = "appointment:"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def appointment_occurrence(appointment_key: str, appointment_at: datetime) -> str:
    """The same text as dbt's macro (naive UTC time to the second)."""
    return f"{PREFIX}{appointment_key}@{appointment_at.strftime(TIME_FORMAT)}"


def parse_appointment_occurrence(occurrence: str | None) -> tuple[str, datetime] | None:
    """(appointment_key, appointment_at naive UTC) of an appointment occurrence, else None."""
    if not occurrence or not occurrence.startswith(PREFIX) or "@" not in occurrence:
        return None
    key, _, at = occurrence[len(PREFIX) :].partition("@")
    try:
        return key, datetime.strptime(at, TIME_FORMAT)
    except ValueError:
        return None
