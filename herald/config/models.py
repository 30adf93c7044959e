"""Pydantic models for Herald's configuration as code.

``herald.yaml`` holds deployment-wide defaults; each ``clients/<client_id>/`` folder holds a
``client.yaml`` and one ``load_maps/<packet_type>.yaml`` per kind of packet the client sends.
Unknown keys are errors (``extra="forbid"``) so a typo never silently does nothing.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import phonenumbers
from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from herald.config.base import SLUG_RE, SLUG_RULE, MappingProblems, Strict
from herald.config.calendars import CalendarRules, SendWindow
from herald.config.campaigns import MESSAGE_TYPES, CampaignConfig, parse_duration
from herald.config.fields import DATA_TYPES, ENTITY_FIELDS, FIELDS_BY_NAME
from herald.config.segments import DEFAULT_FUNCTIONS_PACKAGE, PACKAGE_RE, SegmentConfig
from herald.webhooks.config import WebhookSubscription, check_unique_urls

# A funnel event means nothing without these; a missing one is reported once, as such.
FUNNEL_EVENT_FIELDS = ("to_stage", "occurred_at")
ENCODINGS = ("auto", "utf-8", "utf-8-sig", "utf-16", "windows-1252", "latin-1")


def check_time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}; use an IANA name such as 'America/Chicago'") from None
    if value not in available_timezones():
        raise ValueError(f"unknown time zone {value!r}; use an IANA name such as 'America/Chicago'")
    return value


def check_region(value: str) -> str:
    if value not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unknown region {value!r}; use a two-letter country code such as 'US'")
    return value


_CLOCK_RE = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")


class ClientSendWindow(CalendarRules):
    """A client's sending hours. ``safe_default``: herald.yaml's window (9:00-20:00, Sundays
    from 12:00), which satisfies every state rule; ``legal_minimum``: exactly what the law of
    the recipient's state allows (8:00-21:00 federal, 8:00-20:00 in FL/OK/MD/WA, ...).
    ``business_hours`` narrows either further; nothing widens the law. ``send_days``,
    ``closed_days`` and ``holidays`` (:class:`herald.config.calendars.CalendarRules`) take whole
    local days out (herald.compliance.calendars)."""

    policy: Literal["safe_default", "legal_minimum"] = "safe_default"
    business_hours: SendWindow | None = None


class AutoReply(Strict):
    """A client's after-hours auto-reply: an inbound SMS that is not a keyword,
    received outside ``business_hours`` (the open hours, in the client's time zone), gets
    ``text`` once per contact per closed period. ``business_hours`` defaults to the client's
    ``send_window.business_hours``, else herald.yaml's send window
    (herald.conversations.autoresponder.auto_reply_hours)."""

    text: str = Field(min_length=1)
    business_hours: SendWindow | None = None


class FrequencyCaps(Strict):
    """Per recipient, across campaigns (the safe default of docs/compliance.md: 3 marketing texts a day)."""

    marketing_per_24h: Annotated[int, Field(ge=1)] = 3


class Defaults(Strict):
    time_zone: str = "America/New_York"
    default_region: str = "US"
    send_window: SendWindow = SendWindow()
    frequency_caps: FrequencyCaps = FrequencyCaps()

    _tz = field_validator("time_zone")(check_time_zone)
    _region = field_validator("default_region")(check_region)


def check_opt_out_wording(value: str | None) -> str | None:
    # Opt-out instructions must name the keyword the provider and Herald both honour.
    if value is not None and not re.search(r"\bSTOP\b", value):
        raise ValueError(f"opt-out wording must tell the recipient to reply STOP, got {value!r}")
    return value


class Verbiage(Strict):
    """Wording Herald writes itself. ``{client_name}``, ``{program_name}`` and
    ``{message_frequency}`` are filled in; a client's ``verbiage:`` and a contact's
    ``<key>_wording`` attribute override a key, in that order (herald.compliance.wording)."""

    unsubscribe: str = "Thank you: {client_name} has recorded your request."  # the page adds exactly what stopped
    confirmation: str = "Thank you — your appointment with {client_name} is confirmed."
    opt_out: str = "Reply STOP to opt out."  # appended to every SMS that does not mention STOP
    unsubscribe_link: str = "Unsubscribe"  # the email footer link's text
    opt_out_confirmation: str = (
        "You are unsubscribed from {client_name} messages. No more messages will be sent. Reply START to resubscribe."
    )
    opt_in_confirmation: str = (
        "{program_name}: you are subscribed again. {message_frequency}. Msg & data rates may apply. "
        "Reply HELP for help, STOP to opt out."
    )

    _opt_out = field_validator("opt_out")(check_opt_out_wording)


class VerbiageOverrides(Strict):
    """A client's ``verbiage:``: any key of :class:`Verbiage`; unset keys keep herald.yaml's."""

    unsubscribe: str | None = None
    confirmation: str | None = None
    opt_out: str | None = None
    unsubscribe_link: str | None = None
    opt_out_confirmation: str | None = None
    opt_in_confirmation: str | None = None

    _opt_out = field_validator("opt_out")(check_opt_out_wording)


class Retention(Strict):
    """How long Herald keeps each kind of data, in days (by default consent 5 years, opt-outs 7,
    message content 3, delivery logs 1). The daily retention purge applies it; the audit log is
    never purged (HIPAA documentation: 6 years)."""

    consent_days: Annotated[int, Field(gt=0)] = 1826
    opt_out_days: Annotated[int, Field(gt=0)] = 2557
    message_content_days: Annotated[int, Field(gt=0)] = 1096
    delivery_log_days: Annotated[int, Field(gt=0)] = 365
    # personal data (a contact and its packet rows): purged this long after the person's opt-out
    # or their last activity (last packet row, message or reply); a client.yaml may shorten it
    contact_days: Annotated[int, Field(gt=0)] = 1096


class ClientRetention(Strict):
    """A client's own ``retention:`` (client.yaml): how long its contacts' personal data is kept
    after an opt-out or the last activity; unset, herald.yaml's ``retention.contact_days``."""

    contact_days: Annotated[int, Field(gt=0)] | None = None


class Pricing(Strict):
    """What one message costs in credits: an SMS per segment, an email per message.
    Debited from the client's ``herald_ops.credit_ledger`` when a delivery run claims it."""

    sms_segment: Annotated[float, Field(ge=0)] = 1.0
    email: Annotated[float, Field(ge=0)] = 0.25


class HeraldConfig(Strict):
    """``herald.yaml``: defaults every client inherits."""

    defaults: Defaults = Defaults()
    verbiage: Verbiage = Verbiage()
    retention: Retention = Retention()
    pricing: Pricing = Pricing()
    # Credits are metered per client once it has any credit_ledger row (its first purchase);
    # a client without one is unmetered. False turns metering and low-credit alerts off for all.
    billing_enabled: bool = True
    operator_email: str | None = None  # staff alerts (herald/alerts) are also emailed here
    # the only package `function` segments may name (the deployment's own code; docs/security.md)
    segment_functions_package: str = DEFAULT_FUNCTIONS_PACKAGE

    @field_validator("segment_functions_package")
    @classmethod
    def _package_name(cls, value: str) -> str:
        if not PACKAGE_RE.match(value):
            raise ValueError(f"{value!r} is not a Python package name (dotted.names.only)")
        return value


class StaffAlerts(Strict):
    """A client's ``alerts:`` thresholds for staff alerts (herald/alerts)."""

    window_hours: Annotated[int, Field(ge=1, le=24 * 31)] = 24  # the recent window each check looks at
    failed_or_held_count: Annotated[int, Field(ge=1)] = 10  # failed + held messages in the window
    failed_or_held_share: Annotated[float, Field(gt=0, le=1)] | None = None  # or this share of the window's messages
    delivery_rate_min: Annotated[float, Field(ge=0, le=1)] = 0.95  # delivered / final outcomes
    delivery_min_outcomes: Annotated[int, Field(ge=1)] = 20  # final outcomes before the rate is judged
    outage_attempts: Annotated[int, Field(ge=1, le=1000)] = 5  # last K attempts to a provider all failed


class Contact(Strict):
    email: str | None = None
    phone: str | None = None


class SenderQuota(Strict):
    """``senders.daily_limit``: at most this many messages per local day from the client's SMS
    number / email sender, shared by all its campaigns. Over it, a message waits for the next
    day in order of entry, like a campaign's own ``daily_limit`` (nobody dropped or sent twice)."""

    sms: Annotated[int, Field(gt=0)] | None = None
    email: Annotated[int, Field(gt=0)] | None = None


class Senders(Strict):
    sms_from: str | None = None
    email_from: str | None = None
    daily_limit: SenderQuota = SenderQuota()

    @model_validator(mode="after")
    def _quota_has_a_sender(self) -> Senders:
        problems = [
            (f"daily_limit.{channel}", f"a daily limit for {channel} needs a sender: set senders.{channel}_from")
            for channel, sender in (("sms", self.sms_from), ("email", self.email_from))
            if getattr(self.daily_limit, channel) is not None and not sender
        ]
        if problems:
            raise MappingProblems(problems)
        return self


class DropZoneSettings(Strict):
    """How Herald tells a finished upload from one still being written."""

    # sidecar_or_stable: ingest once a .sha256/.md5/.manifest.json sidecar is there, or once the
    #   file's size and modification time are unchanged across two sensor ticks;
    # sidecar: only once a sidecar is there; stable: only once unchanged across two ticks.
    ready_when: Literal["sidecar_or_stable", "sidecar", "stable"] = "sidecar_or_stable"


class Compliance(Strict):
    """A client's ``compliance:`` switches (the rules they change are in docs/compliance.md)."""

    healthcare_reminders: bool = False  # FCC healthcare exemption: its limits apply
    phi_clinical_terms_allowed: bool = False  # False: the PHI guard also holds clinical wording
    revoke_all: bool = False  # an opt-out stops every message type, not only the one it answered
    probable_opt_out: Literal["suppress", "clarify"] = "suppress"  # a likely misspelled STOP


class IngestApi(Strict):
    """The ingest API (``herald serve``): which load map each payload kind is written with, and
    the sha256 of the client's API keys (`herald api-key CLIENT` makes one)."""

    customers: str | None = None
    funnel_events: str | None = None
    key_sha256: list[str] = Field(default_factory=list)

    @field_validator("key_sha256")
    @classmethod
    def _hex(cls, value: list[str]) -> list[str]:
        for digest in value:
            if not re.fullmatch(r"[0-9a-fA-F]{64}", digest):
                raise ValueError(f"{digest[:12]!r}... is not a sha256 hex digest; `herald api-key CLIENT` prints one")
        return value


class ConfirmationDigest(Strict):
    """The daily staff digest of unconfirmed appointments (herald.appointments.digest)."""

    send_at: str = "17:00"  # local time (the client's time zone) from which the day's digest goes out
    enabled: bool = True

    @field_validator("send_at")
    @classmethod
    def _clock(cls, value: str) -> str:
        if not _CLOCK_RE.match(value) or value == "24:00":
            raise ValueError(f"{value!r} is not a time of day; write HH:MM, e.g. '17:00'")
        return value


class Confirmations(Strict):
    """``confirmations:``: an appointment with no answer is ``unconfirmed`` once
    ``follow_up_after`` has passed since Herald first saw it, and ``high_risk`` within
    ``high_risk_before`` of its time (marts.appointment_confirmations)."""

    follow_up_after: str = "24h"
    high_risk_before: str = "24h"
    digest: ConfirmationDigest = ConfirmationDigest()

    @field_validator("follow_up_after", "high_risk_before")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value


# The provider accounts a client may name in ``providers:`` (their credentials are deployment
# settings: docs/operations.md, "Provider failover"); the first of each is the sandbox.
PROVIDER_ACCOUNTS: dict[str, tuple[str, ...]] = {
    "sms": ("sandbox", "twilio", "twilio_secondary"),
    "email": ("sandbox", "resend", "resend_secondary"),
}


class ChannelProviders(Strict):
    """One channel's providers for a client. ``primary`` defaults to the deployment's provider
    for the channel (``HERALD_SMS_PROVIDER`` / ``HERALD_EMAIL_PROVIDER``); ``secondary`` takes
    the client's messages while the primary's circuit is open (herald/delivery/circuit.py);
    ``secondary_sender`` is the number or address to send from there (default: the client's own)."""

    primary: str | None = None
    secondary: str | None = None
    secondary_sender: str | None = None


class ClientProviders(Strict):
    """``providers:`` in client.yaml: per channel, the client's primary and secondary provider."""

    sms: ChannelProviders | None = None
    email: ChannelProviders | None = None

    @model_validator(mode="after")
    def _known_accounts(self) -> ClientProviders:
        problems: list[tuple[str, str]] = []
        for channel, accounts in PROVIDER_ACCOUNTS.items():
            chosen: ChannelProviders | None = getattr(self, channel)
            if chosen is None:
                continue
            for role in ("primary", "secondary"):
                name = getattr(chosen, role)
                if name is not None and name not in accounts:
                    problems.append(
                        (f"{channel}.{role}", f"unknown {channel} provider {name!r}; use one of {', '.join(accounts)}")
                    )
            if chosen.secondary is not None and chosen.secondary == chosen.primary:
                problems.append(
                    (f"{channel}.secondary", f"the secondary must differ from the primary ({chosen.primary})")
                )
            if chosen.secondary_sender is not None:
                if chosen.secondary is None:
                    problems.append(
                        (
                            f"{channel}.secondary_sender",
                            f"a secondary sender needs a secondary: set {channel}.secondary",
                        )
                    )
                elif channel == "sms" and not re.fullmatch(r"\+[1-9]\d{6,14}", chosen.secondary_sender):
                    problems.append(
                        (f"{channel}.secondary_sender", "must be a phone number in E.164, e.g. '+15125550111'")
                    )
                elif channel == "email" and "@" not in chosen.secondary_sender:
                    problems.append(
                        (f"{channel}.secondary_sender", "must be an email address, e.g. 'news@example.com'")
                    )
        if problems:
            raise MappingProblems(problems)
        return self


class Topic(Strict):
    """One of a client's message topics (client.yaml ``topics:``): a campaign declares one, and a
    contact can turn it off on the preference page."""

    name: str
    label: str = Field(min_length=1, max_length=60)
    description: str = Field(default="", max_length=300)

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not SLUG_RE.match(value):
            raise ValueError(f"{value!r} is not a valid topic name ({SLUG_RULE})")
        return value


# what a client has when its client.yaml lists no topics
DEFAULT_TOPICS = (
    Topic(name="reminders", label="Reminders", description="Appointment and service reminders."),
    Topic(name="offers", label="Offers", description="Promotions, discounts and special offers."),
    Topic(name="news", label="News", description="Announcements and updates."),
)


def check_unique_topics(topics: list[Topic]) -> list[Topic]:
    names = [t.name for t in topics]
    doubled = sorted({n for n in names if names.count(n) > 1})
    if doubled:
        raise ValueError(f"topic {', '.join(repr(n) for n in doubled)} is listed more than once")
    return topics


# -- consent with proof (herald/compliance/optin.py) ------------------------------------------
# A consent event's scope (an opt-in form's topic): every message type, or one of them.
CONSENT_SCOPES: tuple[str, ...] = ("all", *MESSAGE_TYPES)


def check_consent_scope(value: str) -> str:
    if value not in CONSENT_SCOPES:
        raise ValueError(
            f"unknown consent scope {value!r}; expected 'all' or a message type: {', '.join(MESSAGE_TYPES)}"
        )
    return value


class Disclosure(Strict):
    """One opt-in the hosted form offers: the channel, the topic (scope) and the exact wording
    the person agrees to. The wording's sha256 is stored with every consent it gathers."""

    channel: Literal["sms", "email"]
    topic: str = "all"
    label: str | None = Field(default=None, max_length=120)  # the checkbox's short name
    text: str = Field(min_length=20, max_length=2000)

    _topic = field_validator("topic")(lambda v: check_consent_scope(v))

    @field_validator("text")
    @classmethod
    def _wording(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the disclosure wording is empty")
        return value.strip()


class OptIn(Strict):
    """``optin:``: the hosted opt-in form ``/optin/<client_id>`` (served only with disclosures)."""

    title: str | None = Field(default=None, max_length=120)
    disclosures: list[Disclosure] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> OptIn:
        seen = [(d.channel, d.topic) for d in self.disclosures]
        if len(seen) != len(set(seen)):
            raise ValueError("two disclosures for the same channel and topic; keep one")
        return self


class ConsentSettings(Strict):
    """``consent:``: ``expires_after`` per topic ('all' or a message type), e.g. ``{all: 540d}``.
    A consent given (or confirmed) longer ago than this no longer counts."""

    expires_after: dict[str, str] = Field(default_factory=dict)

    @field_validator("expires_after")
    @classmethod
    def _durations(cls, value: dict[str, str]) -> dict[str, str]:
        for topic, text in value.items():
            check_consent_scope(topic)
            parse_duration(text)
        return value

    def expiry(self, scope: str) -> timedelta | None:
        """How long a consent for ``scope`` lasts (its own entry, else 'all'); None: no expiry."""
        text = self.expires_after.get(scope) or self.expires_after.get("all")
        return parse_duration(text) if text else None


class ClientConfig(Strict):
    """``clients/<client_id>/client.yaml``."""

    client_id: str
    name: str = Field(min_length=1)
    industry: Literal["healthcare", "real_estate", "education", "home_services", "other"] = "other"
    time_zone: str | None = None
    default_region: str | None = None
    contact: Contact = Contact()
    senders: Senders = Senders()
    credit_alert_threshold_pct: Annotated[int, Field(ge=0, le=100)] = 20
    alerts: StaffAlerts = StaffAlerts()
    dropzone: DropZoneSettings = DropZoneSettings()
    verbiage: VerbiageOverrides = VerbiageOverrides()
    program_name: str | None = None  # the SMS program's name in HELP replies; default: name
    message_frequency: str = "Msg frequency varies"  # for HELP and opt-in replies (CTIA)
    compliance: Compliance = Compliance()
    send_window: ClientSendWindow = ClientSendWindow()
    # CAN-SPAM: the physical postal address in the footer of every email (required when the
    # client has a marketing email campaign; herald.config.loader checks it)
    postal_address: str | None = Field(default=None, min_length=5, max_length=300)
    auto_reply: AutoReply | None = None  # after-hours auto-reply
    ingest_api: IngestApi | None = None
    retention: ClientRetention = ClientRetention()  # contact_days: PII kept after opt-out / last activity
    confirmations: Confirmations = Confirmations()  # appointment confirmation states and staff digest
    providers: ClientProviders = ClientProviders()  # the client's own primary/secondary per channel (failover)
    # outbound webhooks to the client's own systems (herald/webhooks)
    webhooks: Annotated[list[WebhookSubscription], AfterValidator(check_unique_urls)] = Field(default_factory=list)
    # the topics campaigns declare and contacts turn off on the preference page (default: DEFAULT_TOPICS)
    topics: Annotated[list[Topic], AfterValidator(check_unique_topics)] = Field(
        default_factory=lambda: list(DEFAULT_TOPICS), min_length=1
    )

    optin: OptIn | None = None  # the hosted opt-in form (herald/web/optin.py)
    consent: ConsentSettings = ConsentSettings()  # consent expiry per topic

    @field_validator("client_id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not SLUG_RE.match(value):
            raise ValueError(f"{value!r} is not a valid client id ({SLUG_RULE})")
        return value

    _tz = field_validator("time_zone")(lambda v: v if v is None else check_time_zone(v))
    _region = field_validator("default_region")(lambda v: v if v is None else check_region(v))


class FileFormat(Strict):
    delimiter: str = ","
    quote_char: str = '"'
    encoding: Literal[ENCODINGS] = "auto"  # type: ignore[valid-type]

    @field_validator("delimiter", "quote_char")
    @classmethod
    def _one_char(cls, value: str) -> str:
        if len(value) != 1:
            raise ValueError(f"must be exactly one character, got {value!r}")
        return value


class AttributeColumn(Strict):
    """A column kept as a typed contact attribute."""

    attribute: str
    type: Literal[DATA_TYPES] = "string"  # type: ignore[valid-type]
    separator: str = ";"

    @field_validator("attribute")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not SLUG_RE.match(value):
            raise ValueError(f"{value!r} is not a valid attribute name ({SLUG_RULE})")
        return value


class FieldColumn(Strict):
    """A column mapped onto a canonical field."""

    field: str


def _column_kind(value: Any) -> str | None:
    """Which form a load map column takes: ``field`` text, ``{field: ...}`` or ``{attribute: ...}``."""
    if isinstance(value, (str, FieldColumn, AttributeColumn)):
        return type(value).__name__
    if isinstance(value, dict):
        return "AttributeColumn" if "attribute" in value else "FieldColumn"
    return None


# Discriminated, so a mistake in one column is reported once, against the form it was
# written in, not once per form it might have been.
ColumnTarget = Annotated[
    Annotated[str, Tag("str")]
    | Annotated[FieldColumn, Tag("FieldColumn")]
    | Annotated[AttributeColumn, Tag("AttributeColumn")],
    Discriminator(
        _column_kind,
        custom_error_type="column_target",
        custom_error_message="map the column to a field name, {field: <name>} or {attribute: <name>, type: <type>}",
    ),
]
# The loader leaves these out of a problem's location (pydantic puts the union branch in it).
COLUMN_TAGS = frozenset({"str", "FieldColumn", "AttributeColumn"})


class Validation(Strict):
    """Great Expectations thresholds for this packet type."""

    min_valid_phone_share: Annotated[float, Field(ge=0, le=1)] = 0.9
    min_valid_email_share: Annotated[float, Field(ge=0, le=1)] = 0.8


class RowLimits(Strict):
    """Size caps on landed values: a row with a longer cell, or longer in all, is rejected with
    its line and the reason (never truncated into the warehouse)."""

    max_cell_chars: Annotated[int, Field(ge=1, le=1_000_000)] = 10_000
    max_row_chars: Annotated[int, Field(ge=1, le=10_000_000)] = 100_000


class LoadMap(Strict):
    """``clients/<client_id>/load_maps/<packet_type>.yaml``: how one kind of packet maps."""

    packet_type: str
    description: str = ""
    entity: Literal["contacts", "funnel_events"] = "contacts"
    format: FileFormat = FileFormat()
    columns: dict[str, ColumnTarget]
    required: list[str] = Field(default_factory=list)
    keep_unmapped: bool = True
    validation: Validation = Validation()
    limits: RowLimits = RowLimits()
    # where the client got the consent its sms_consent column states (e.g. "the homeowner
    # ticked the SMS box on the signed estimate"): kept as the evidence of every consent event
    # the column gives (herald/compliance/packet_consent.py)
    consent_source: str | None = Field(default=None, min_length=3, max_length=300)

    @field_validator("packet_type")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not SLUG_RE.match(value):
            raise ValueError(f"{value!r} is not a valid packet type ({SLUG_RULE})")
        return value

    @field_validator("columns")
    @classmethod
    def _normalize_columns(
        cls, value: dict[str, str | FieldColumn | AttributeColumn]
    ) -> dict[str, str | FieldColumn | AttributeColumn]:
        if not value:
            raise ValueError("map at least one column")
        return {k.strip(): (FieldColumn(field=v) if isinstance(v, str) else v) for k, v in value.items()}

    @model_validator(mode="after")
    def _fields_fit_entity(self) -> LoadMap:
        allowed = ENTITY_FIELDS[self.entity]
        seen: dict[str, str] = {}
        problems: list[tuple[str, str]] = []
        for column, target in self.columns.items():
            where = f"columns.{column}"
            if isinstance(target, FieldColumn):
                if target.field not in FIELDS_BY_NAME:
                    problems.append(
                        (
                            where,
                            (
                                f"column {column!r} maps to unknown field {target.field!r}; "
                                f"known fields: {', '.join(sorted(allowed))}"
                            ),
                        )
                    )
                elif target.field not in allowed:
                    problems.append(
                        (where, f"column {column!r}: field {target.field!r} does not apply to {self.entity}")
                    )
                name = target.field
            else:
                name = target.attribute
                if name in FIELDS_BY_NAME:
                    problems.append(
                        (where, f"column {column!r}: attribute {name!r} is a canonical field; map it as a field")
                    )
            if name in seen:
                problems.append((where, f"columns {seen[name]!r} and {column!r} both map to {name!r}"))
            seen[name] = column
        if self.entity == "funnel_events":
            for needed in FUNNEL_EVENT_FIELDS:
                if needed not in seen:
                    problems.append(("columns", f"a funnel_events load map must map {needed!r}"))
        for field in self.required:
            if field not in seen and not (self.entity == "funnel_events" and field in FUNNEL_EVENT_FIELDS):
                problems.append(("required", f"required field {field!r} is not mapped by any column"))
        if problems:
            raise MappingProblems(problems)
        return self

    def field_columns(self) -> dict[str, str]:
        """canonical field → source column."""
        return {t.field: c for c, t in self.columns.items() if isinstance(t, FieldColumn)}

    def column_for(self, field: str) -> str | None:
        return self.field_columns().get(field)


class Client(BaseModel):
    """A client with its resolved defaults and load maps."""

    model_config = ConfigDict(frozen=True)

    config: ClientConfig
    time_zone: str
    default_region: str
    load_maps: dict[str, LoadMap]
    segments: dict[str, SegmentConfig] = {}
    campaigns: dict[str, CampaignConfig] = {}
    segment_functions_package: str = DEFAULT_FUNCTIONS_PACKAGE  # herald.yaml's, for evaluation

    @property
    def client_id(self) -> str:
        return self.config.client_id

    @property
    def takes_appointments(self) -> bool:
        """True when one of the client's packets carries appointments (a load map maps
        ``appointment_at``): only then is a "C" or "R" reply an answer about an appointment."""
        return any(m.column_for("appointment_at") is not None for m in self.load_maps.values())


class Deployment(BaseModel):
    """Everything under ``HERALD_CONFIG_DIR``."""

    model_config = ConfigDict(frozen=True)

    herald: HeraldConfig
    clients: dict[str, Client]

    def load_map(self, client_id: str, packet_type: str) -> LoadMap | None:
        client = self.clients.get(client_id)
        return client.load_maps.get(packet_type) if client else None
