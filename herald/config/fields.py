"""The canonical fields a load map can map a packet column to.

This list is the single source of truth: config validation reads it, and it is loaded into
``herald_ops.canonical_fields`` so dbt builds its staging columns from the same names.
``stored_in`` says where a field ends up: on the contact itself, as a typed contact
attribute (per-packet-type fields such as an appointment time), or on a funnel event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DataType = Literal["string", "numeric", "date", "timestamp", "boolean", "array"]
DATA_TYPES: tuple[str, ...] = ("string", "numeric", "date", "timestamp", "boolean", "array")
Entity = Literal["contacts", "funnel_events"]
ENTITIES: tuple[str, ...] = ("contacts", "funnel_events")


@dataclass(frozen=True)
class CanonicalField:
    name: str
    data_type: DataType
    stored_in: Literal["contact", "attribute", "funnel_event"]
    description: str


CANONICAL_FIELDS: tuple[CanonicalField, ...] = (
    CanonicalField(
        "external_id", "string", "contact", "the client's own id for the person (also the funnel event's customer)"
    ),
    CanonicalField("first_name", "string", "contact", "given name"),
    CanonicalField("last_name", "string", "contact", "family name"),
    CanonicalField("email", "string", "contact", "email address (normalized and validity-flagged)"),
    CanonicalField("phone", "string", "contact", "mobile number (normalized to E.164)"),
    CanonicalField("postal_code", "string", "contact", "postal / ZIP code"),
    CanonicalField("time_zone", "string", "contact", "IANA time zone of the person, when the client knows it"),
    CanonicalField(
        "appointment_at", "timestamp", "attribute", "appointment start, in the client's time zone in the file"
    ),
    CanonicalField("appointment_type", "string", "attribute", "kind of appointment (cleaning, consult, ...)"),
    CanonicalField("provider_name", "string", "attribute", "who the appointment is with"),
    CanonicalField("location_name", "string", "attribute", "office or location of the appointment"),
    CanonicalField("appointment_id", "string", "attribute", "the client's own id for the appointment"),
    CanonicalField(
        "appointment_status", "string", "attribute", "the appointment's status in the client's system (cancelled, ...)"
    ),
    CanonicalField("property_address", "string", "attribute", "street address of a listed property"),
    CanonicalField("property_city", "string", "attribute", "city of a listed property"),
    CanonicalField("list_price", "numeric", "attribute", "asking price of a listed property"),
    CanonicalField("listing_status", "string", "attribute", "for sale, short sale, auction, ..."),
    CanonicalField("program", "string", "attribute", "academic program of interest"),
    CanonicalField("lead_source", "string", "attribute", "where a lead came from"),
    CanonicalField(
        "sms_consent", "boolean", "attribute", "the person gave express written consent to texts (marketing)"
    ),
    CanonicalField("email_consent", "boolean", "attribute", "the person opted in to marketing email"),
    CanonicalField("funnel_type", "string", "funnel_event", "sales | service-delivery"),
    CanonicalField("from_stage", "string", "funnel_event", "funnel stage the person left"),
    CanonicalField("to_stage", "string", "funnel_event", "funnel stage the person entered"),
    CanonicalField(
        "occurred_at", "timestamp", "funnel_event", "when the stage changed, in the client's time zone in the file"
    ),
)

FIELDS_BY_NAME: dict[str, CanonicalField] = {f.name: f for f in CANONICAL_FIELDS}

# The fields a packet of each entity may map; the rest of a row becomes attributes.
ENTITY_FIELDS: dict[str, frozenset[str]] = {
    "contacts": frozenset(f.name for f in CANONICAL_FIELDS if f.stored_in in ("contact", "attribute")),
    "funnel_events": frozenset(["external_id", "email", "phone"])
    | frozenset(f.name for f in CANONICAL_FIELDS if f.stored_in == "funnel_event"),
}
