"""Template variables: the plan's JSON object → typed Python values for Jinja.

dbt writes every value as JSON (timestamps as naive-UTC text). A template wants a date to be a
date and a timestamp to be a datetime in the client's time zone (``appointment_at.strftime``
prints the local wall-clock time), so values are converted by the field's or attribute's type
from the client's load maps.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from herald.config.fields import FIELDS_BY_NAME
from herald.config.models import AttributeColumn, Client


def variable_types(client: Client) -> dict[str, str]:
    """name → data type for every canonical field and attribute the client's load maps declare."""
    types = {name: field.data_type for name, field in FIELDS_BY_NAME.items()}
    for load_map in client.load_maps.values():
        for target in load_map.columns.values():
            if isinstance(target, AttributeColumn):
                types[target.attribute] = target.type
    return types


def _timestamp(value: str, tz: ZoneInfo) -> datetime:
    parsed = datetime.fromisoformat(value.replace(" ", "T"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(tz)


def typed_variables(raw: str | dict | None, types: dict[str, str], time_zone: str) -> dict[str, Any]:
    """The plan's ``variables`` (JSON text or dict) with dates and timestamps as Python objects."""
    if raw is None:
        return {}
    values = json.loads(raw) if isinstance(raw, str) else dict(raw)
    tz = ZoneInfo(time_zone)
    for name, value in list(values.items()):
        kind = types.get(name)
        if not isinstance(value, str):
            continue
        try:
            if kind == "timestamp":
                values[name] = _timestamp(value, tz)
            elif kind == "date":
                values[name] = date.fromisoformat(value[:10])
        except ValueError:
            pass  # left as text: the template shows what the client sent
    return values
