"""Campaign definitions: ``clients/<client_id>/campaigns/<name>.yaml``.

A campaign sends one message type to one audience segment when its trigger fires, as a
sequence of steps. Each step goes out on a channel (or a channel rule such as
``"sms; email if phone is missing"``), picks one of its template variants by weight (A/B), and
is timed by a ``delay`` after the previous step or an ``offset`` from a date on the contact.

Template naming convention (checked here, the files' existence is checked by the loader):
SMS templates end in ``.sms.j2`` or ``.txt.j2`` (Jinja text), email templates in ``.mjml.j2``
(MJML with Jinja), all under ``clients/<client_id>/templates/``. A step that may use both
channels gives each variant a template per channel (``template: {sms: ..., email: ...}``).

The pure helpers (:func:`parse_duration`, :func:`parse_channel_rule`,
:func:`describe_trigger`, :func:`next_occurrences`) carry the rules worth testing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import jinja2
from cron_descriptor import get_description
from croniter import croniter
from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from herald.config.base import SLUG_RE, SLUG_RULE, MappingProblems, Strict
from herald.config.fields import FIELDS_BY_NAME

Channel = Literal["sms", "email"]
CHANNELS: tuple[str, ...] = ("sms", "email")
MESSAGE_TYPES: tuple[str, ...] = (
    "appointment_reminder",
    "announcement",
    "home_for_sale",
    "home_short_sale",
    "home_auction",
    "no_show",
    "reschedule",
    "lab",
    "immunization",
    "lead_nurture",
)
# Reminders about a person's own care are transactional; announcements, listings and lead
# nurture are marketing (TCPA/CAN-SPAM treat them differently: caps, consent, one-click).
DEFAULT_CATEGORY: dict[str, str] = {
    "appointment_reminder": "transactional",
    "no_show": "transactional",
    "reschedule": "transactional",
    "lab": "transactional",
    "immunization": "transactional",
    "announcement": "marketing",
    "home_for_sale": "marketing",
    "home_short_sale": "marketing",
    "home_auction": "marketing",
    "lead_nurture": "marketing",
}
CONSENT_BY_CATEGORY: dict[str, str] = {"marketing": "express_written", "transactional": "prior_express"}
TEMPLATE_SUFFIXES: dict[str, tuple[str, ...]] = {"sms": (".sms.j2", ".txt.j2"), "email": (".mjml.j2",)}
# The address each channel needs; a rule's condition names one of these.
CHANNEL_ADDRESS: dict[str, str] = {"sms": "phone", "email": "email"}
DATE_TYPES = ("date", "timestamp")
TRIGGER_TYPES = frozenset({"schedule", "segment_entry", "packet_arrival", "funnel_event"})

_DURATION_RE = re.compile(r"^(?:\d+[dhm])+$")
_DURATION_PART_RE = re.compile(r"(\d+)([dhm])")
_DURATION_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
_RULE_CLAUSE_RE = re.compile(r"^(?P<channel>[a-z]+)(?:\s+if\s+(?P<address>[a-z]+)\s+is\s+missing)?$")
_MAX_CRON_SCAN = 10_000  # croniter steps next_occurrences may take before giving up


# -- pure helpers ---------------------------------------------------------------------------


def parse_duration(text: str) -> timedelta:
    """``"2d"``, ``"24h"``, ``"30m"`` or combinations like ``"1d12h"`` → a positive timedelta."""
    compact = "".join(str(text).split()).lower()
    if not _DURATION_RE.match(compact):
        raise ValueError(f"{text!r} is not a duration; write a number and a unit (d, h or m), e.g. '2d', '24h', '30m'")
    total = timedelta()
    for amount, unit in _DURATION_PART_RE.findall(compact):
        total += timedelta(**{_DURATION_UNITS[unit]: int(amount)})
    if total <= timedelta(0):
        raise ValueError(f"{text!r} is zero; a duration must be positive")
    return total


@dataclass(frozen=True)
class ChannelChoice:
    """One clause of a channel rule: send on ``channel`` (only when ``if_missing`` is missing)."""

    channel: str
    if_missing: str | None = None

    def __str__(self) -> str:
        return self.channel if self.if_missing is None else f"{self.channel} if {self.if_missing} is missing"


def parse_channel_rule(text: str) -> tuple[ChannelChoice, ...]:
    """``"sms; email if phone is missing"`` → the ordered channel preference.

    The first clause is a bare channel; each later one is ``<channel> if <phone|email> is
    missing`` naming the address of an earlier channel. Anything else is refused, saying why.
    """
    clauses = [" ".join(c.split()).lower() for c in str(text).split(";")]
    if not any(clauses):
        raise ValueError("empty channel rule; write e.g. 'sms; email if phone is missing'")
    choices: list[ChannelChoice] = []
    for i, clause in enumerate(clauses):
        found = _RULE_CLAUSE_RE.match(clause)
        if not found:
            raise ValueError(
                f"cannot read {clause!r} in rule {text!r}; each clause after the first is "
                "'<sms|email> if <phone|email> is missing', e.g. 'sms; email if phone is missing'"
            )
        channel, address = found["channel"], found["address"]
        if channel not in CHANNELS:
            raise ValueError(f"unknown channel {channel!r} in rule {text!r}; use sms or email")
        if address is not None and address not in CHANNEL_ADDRESS.values():
            raise ValueError(
                f"unknown condition '{address} is missing' in rule {text!r}; "
                "use 'phone is missing' or 'email is missing'"
            )
        if i == 0 and address is not None:
            raise ValueError(f"rule {text!r} must start with a channel to try first, without a condition")
        if i > 0 and address is None:
            raise ValueError(
                f"clause {clause!r} in rule {text!r} needs a condition, e.g. '{channel} if phone is missing'"
            )
        if address == CHANNEL_ADDRESS[channel]:
            raise ValueError(f"clause {clause!r} in rule {text!r} can never send: {channel} needs the {address}")
        if address is not None and address not in {CHANNEL_ADDRESS[c.channel] for c in choices}:
            raise ValueError(f"clause {clause!r} in rule {text!r}: no earlier channel uses the {address}")
        if channel in {c.channel for c in choices}:
            raise ValueError(f"channel {channel!r} appears twice in rule {text!r}")
        choices.append(ChannelChoice(channel, address))
    return tuple(choices)


def check_cron(expression: str) -> str:
    """A standard five-field cron expression, or ValueError saying how to write one."""
    normalized = " ".join(str(expression).split())
    if len(normalized.split(" ")) != 5 or not croniter.is_valid(normalized):
        raise ValueError(
            f"{expression!r} is not a valid cron expression; use five fields "
            "(minute hour day-of-month month day-of-week), e.g. '30 9 * * 1-5'"
        )
    return normalized


def next_occurrences(cron: str, time_zone: str, after: datetime, n: int) -> list[datetime]:
    """The next ``n`` firings of ``cron`` after ``after``, in ``time_zone``, one per local time.

    croniter fires a daily ``30 1 * * *`` twice on the fall-back day (01:30 CDT and 01:30 CST);
    a campaign occurrence is named by its local date-time, so the repeat is dropped.
    A naive ``after`` is read as local time in ``time_zone``.
    """
    tz = ZoneInfo(time_zone)
    start = after.replace(tzinfo=tz) if after.tzinfo is None else after.astimezone(tz)
    schedule = croniter(check_cron(cron), start)
    seen: set[datetime] = set()
    found: list[datetime] = []
    for _ in range(_MAX_CRON_SCAN):
        if len(found) >= n:
            break
        fire = schedule.get_next(datetime).astimezone(tz)
        local = fire.replace(tzinfo=None)
        if local in seen:
            continue
        seen.add(local)
        found.append(fire)
    return found


def describe_cron(cron: str) -> str:
    return get_description(cron)


# -- triggers -------------------------------------------------------------------------------


class ScheduleTrigger(Strict):
    """Fires on a cron, evaluated in the client's time zone."""

    type: Literal["schedule"]
    cron: str

    _cron = field_validator("cron")(check_cron)


class SegmentEntryTrigger(Strict):
    """Fires for each contact who enters the audience segment."""

    type: Literal["segment_entry"]


class PacketArrivalTrigger(Strict):
    """Fires when a packet of ``packet_type`` (one of the client's load maps) is loaded."""

    type: Literal["packet_arrival"]
    packet_type: str


class FunnelEventTrigger(Strict):
    """Fires for each contact whose funnel event moves them to ``to_stage``."""

    type: Literal["funnel_event"]
    to_stage: str = Field(min_length=1)
    funnel_type: str | None = None


def _trigger_type(value: Any) -> str | None:
    found = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return found if found in TRIGGER_TYPES else None


# Discriminated (callable, so an unknown or missing type gets one plain error); the tags
# equal the `type` values, and the loader leaves them out of a problem's location.
Trigger = Annotated[
    Annotated[ScheduleTrigger, Tag("schedule")]
    | Annotated[SegmentEntryTrigger, Tag("segment_entry")]
    | Annotated[PacketArrivalTrigger, Tag("packet_arrival")]
    | Annotated[FunnelEventTrigger, Tag("funnel_event")],
    Discriminator(
        _trigger_type,
        custom_error_type="trigger_type",
        custom_error_message="set `type` to schedule, segment_entry, packet_arrival or funnel_event",
    ),
]


def describe_trigger(trigger: Any, time_zone: str) -> str:
    """The trigger in words, e.g. ``"At 09:30 AM, Monday through Friday (America/Chicago)"``."""
    if isinstance(trigger, ScheduleTrigger):
        return f"{describe_cron(trigger.cron)} ({time_zone})"
    if isinstance(trigger, SegmentEntryTrigger):
        return "When a contact enters the audience"
    if isinstance(trigger, PacketArrivalTrigger):
        return f"When a packet of type {trigger.packet_type} arrives"
    if isinstance(trigger, FunnelEventTrigger):
        funnel = f" of the {trigger.funnel_type} funnel" if trigger.funnel_type else ""
        return f"When a contact reaches stage {trigger.to_stage!r}{funnel}"
    raise TypeError(f"not a trigger: {trigger!r}")


# -- steps ----------------------------------------------------------------------------------


def _check_template_name(value: str) -> str:
    path = PurePosixPath(value)
    if not value or path.is_absolute() or ".." in path.parts or "\\" in value:
        raise ValueError(f"template {value!r} must be a file name under the client's templates/ folder")
    return value


def _check_jinja(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        jinja2.Environment().parse(value)
    except jinja2.TemplateSyntaxError as exc:
        raise ValueError(f"subject is not valid Jinja: {exc.message}") from None
    return value


class Variant(Strict):
    """One A/B arm of a step: its template(s), share of the step, and email subject."""

    name: str
    template: str | dict[Channel, str]
    weight: float = 1
    subject: str | None = None

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not SLUG_RE.match(value):
            raise ValueError(f"{value!r} is not a valid variant name ({SLUG_RULE})")
        return value

    @field_validator("template")
    @classmethod
    def _names(cls, value: str | dict[str, str]) -> str | dict[str, str]:
        for name in [value] if isinstance(value, str) else value.values():
            _check_template_name(name)
        return value

    @field_validator("weight")
    @classmethod
    def _positive(cls, value: float) -> float:
        if not value > 0:
            raise ValueError(f"weight must be positive (got {value:g}); give each variant its share, e.g. 50")
        return value

    _subject = field_validator("subject")(_check_jinja)

    def template_for(self, channel: str) -> str | None:
        if isinstance(self.template, str):
            return self.template
        return self.template.get(channel)  # type: ignore[call-overload]


class Offset(Strict):
    """A time relative to a date on the contact, e.g. 24 hours before ``appointment_at``."""

    field: str
    before: str | None = None
    after: str | None = None

    @field_validator("field")
    @classmethod
    def _date_field(cls, value: str) -> str:
        canonical = FIELDS_BY_NAME.get(value)
        if canonical is not None and (canonical.data_type not in DATE_TYPES or canonical.stored_in == "funnel_event"):
            raise ValueError(
                f"{value!r} is a {canonical.data_type} field; an offset needs a date or timestamp "
                "on the contact, such as appointment_at"
            )
        if canonical is None and not SLUG_RE.match(value):
            raise ValueError(f"{value!r} is not a valid field or attribute name ({SLUG_RULE})")
        return value

    @field_validator("before", "after")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @model_validator(mode="after")
    def _one_direction(self) -> Offset:
        if (self.before is None) == (self.after is None):
            raise ValueError("give exactly one of `before` or `after`, e.g. {field: appointment_at, before: 24h}")
        return self

    @property
    def delta(self) -> timedelta:
        """Signed: negative before the field's time, positive after it."""
        if self.before is not None:
            return -parse_duration(self.before)
        return parse_duration(self.after or "")

    def __str__(self) -> str:
        return f"{self.before} before {self.field}" if self.before else f"{self.after} after {self.field}"


class Step(Strict):
    name: str
    channel: Channel | None = None
    rule: str | None = None
    variants: list[Variant] = Field(min_length=1)
    subject: str | None = None
    delay: str | None = None
    offset: Offset | None = None

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not SLUG_RE.match(value):
            raise ValueError(f"{value!r} is not a valid step name ({SLUG_RULE})")
        return value

    @field_validator("rule")
    @classmethod
    def _rule(cls, value: str | None) -> str | None:
        if value is not None:
            parse_channel_rule(value)
        return value

    @field_validator("delay")
    @classmethod
    def _delay(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    _subject = field_validator("subject")(_check_jinja)

    @model_validator(mode="after")
    def _fits_channels(self) -> Step:
        if (self.channel is None) == (self.rule is None):
            raise ValueError(
                "give exactly one of `channel` (sms or email) or `rule` (e.g. 'sms; email if phone is missing')"
            )
        problems: list[tuple[str, str]] = []
        channels = self.channels
        names: set[str] = set()
        for i, variant in enumerate(self.variants):
            where = f"variants.{i}"
            if variant.name in names:
                problems.append((f"{where}.name", f"variant {variant.name!r} appears twice in this step"))
            names.add(variant.name)
            if isinstance(variant.template, str) and len(channels) > 1:
                problems.append(
                    (f"{where}.template", "this step may use sms or email: give {sms: <file>, email: <file>}")
                )
            elif isinstance(variant.template, dict):
                for channel in channels:
                    if channel not in variant.template:
                        problems.append((f"{where}.template", f"no {channel} template; add `{channel}: <file>`"))
                for channel in variant.template:
                    if channel not in channels:
                        problems.append((f"{where}.template.{channel}", f"this step does not send {channel}"))
            for channel in channels:
                name = variant.template_for(channel)
                if name is not None and not name.endswith(TEMPLATE_SUFFIXES[channel]):
                    where_t = f"{where}.template" + (f".{channel}" if isinstance(variant.template, dict) else "")
                    suffixes = " or ".join(TEMPLATE_SUFFIXES[channel])
                    problems.append((where_t, f"{channel} template {name!r} must end in {suffixes}"))
            if "email" in channels and self.subject is None and variant.subject is None:
                problems.append((f"{where}.subject", "an email step needs a subject, on the step or on each variant"))
            if "email" not in channels and variant.subject is not None:
                problems.append((f"{where}.subject", "a subject applies only to email"))
        if "email" not in channels and self.subject is not None:
            problems.append(("subject", "a subject applies only to email"))
        if problems:
            raise MappingProblems(problems)
        return self

    @property
    def channel_choices(self) -> tuple[ChannelChoice, ...]:
        return parse_channel_rule(self.rule) if self.rule is not None else (ChannelChoice(self.channel or ""),)

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(c.channel for c in self.channel_choices)

    @property
    def delay_duration(self) -> timedelta | None:
        return parse_duration(self.delay) if self.delay is not None else None

    def subject_for(self, variant: Variant) -> str | None:
        return variant.subject if variant.subject is not None else self.subject

    def timing(self) -> str:
        if self.offset is not None:
            return str(self.offset)
        if self.delay is not None:
            return f"{self.delay} after the previous step"
        return "when triggered"


# -- campaign -------------------------------------------------------------------------------


class AbTest(Strict):
    """How a campaign's A/B results are judged (``analytics.ab_test_results``).

    Each step's variants are compared with its control on ``metric`` over messages sent; a
    variant is a winner when a two-proportion test says so at ``significance`` and both arms
    have at least ``min_sample`` messages sent. With ``apply_winner`` the step then sends only
    its winning variant.
    """

    control: str | None = None  # a variant name; None: the first variant of each step
    significance: Annotated[float, Field(gt=0, lt=1)] = 0.05
    min_sample: Annotated[int, Field(ge=1)] = 100  # messages sent, per arm
    metric: Literal["replied", "converted", "delivered", "clicked", "opened"] = "replied"
    apply_winner: bool = False

    def control_for(self, step: Step) -> str:
        """The control variant of ``step``: ``control`` when the step has it, else its first."""
        names = [v.name for v in step.variants]
        return self.control if self.control in names else names[0]


class CampaignConfig(Strict):
    """``clients/<client_id>/campaigns/<name>.yaml``."""

    name: str
    description: str = ""
    message_type: Literal[MESSAGE_TYPES]  # type: ignore[valid-type]
    # Filled from message_type when left out (see DEFAULT_CATEGORY); always set once valid.
    category: Literal["marketing", "transactional"] | None = None
    status: Literal["active", "paused"] = "active"
    # The consent an SMS recipient must have given (TCPA): marketing needs express written
    # consent, reminders prior express consent (giving the number to the client counts, until
    # revoked). Filled from the category when left out. Email needs none (CAN-SPAM is opt-out).
    sms_consent: Literal["express_written", "prior_express"] | None = None
    audience: str
    daily_limit: Annotated[int, Field(gt=0)] | None = None
    trigger: Trigger
    steps: list[Step] = Field(min_length=1)
    ab_test: AbTest = AbTest()
    track_links: bool = True  # links in emails and track() links in SMS go through /l/<token>

    @model_validator(mode="before")
    @classmethod
    def _default_category(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("category") is None and data.get("message_type") in DEFAULT_CATEGORY:
            data = {**data, "category": DEFAULT_CATEGORY[data["message_type"]]}
        if isinstance(data, dict) and data.get("sms_consent") is None and data.get("category") in CONSENT_BY_CATEGORY:
            data = {**data, "sms_consent": CONSENT_BY_CATEGORY[data["category"]]}
        return data

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not SLUG_RE.match(value):
            raise ValueError(f"{value!r} is not a valid campaign name ({SLUG_RULE})")
        return value

    @model_validator(mode="after")
    def _steps_fit(self) -> CampaignConfig:
        problems: list[tuple[str, str]] = []
        if self.category == "transactional" and DEFAULT_CATEGORY[self.message_type] == "marketing":
            message = f"a {self.message_type} campaign is marketing; it cannot be sent as transactional"
            problems.append(("category", message))
        if self.category == "marketing" and self.sms_consent == "prior_express":
            message = "marketing texts need express written consent (TCPA); use sms_consent: express_written"
            problems.append(("sms_consent", message))
        names: set[str] = set()
        for i, step in enumerate(self.steps):
            where = f"steps.{i}"
            if step.name in names:
                problems.append((f"{where}.name", f"step {step.name!r} appears twice"))
            names.add(step.name)
            if i == 0 and step.delay is not None:
                problems.append((f"{where}.delay", "the first step starts at the trigger: use an offset or nothing"))
            if i > 0 and (step.delay is None) == (step.offset is None):
                problems.append((where, "give exactly one of `delay` (after the previous step, e.g. '3d') or `offset`"))
            control = self.ab_test.control
            if control is not None and len(step.variants) > 1 and control not in {v.name for v in step.variants}:
                listed = ", ".join(v.name for v in step.variants)
                message = f"step {step.name!r} has no variant {control!r} (variants: {listed})"
                problems.append(("ab_test.control", message))
        if problems:
            raise MappingProblems(problems)
        return self

    def describe_trigger(self, time_zone: str) -> str:
        return describe_trigger(self.trigger, time_zone)


# -- references to the rest of a client's config ------------------------------------------------


def check_references(
    campaign: CampaignConfig,
    *,
    segments: set[str],
    load_maps: set[str],
    templates: set[str],
    date_attributes: set[str] | None,
    has_funnel_events: bool | None,
    senders: dict[str, str | None] | None,
) -> list[tuple[str, str]]:
    """(field, message) for every reference ``campaign`` makes that its client cannot satisfy.

    ``segments``/``load_maps`` are the names the client's files declare; ``templates`` the
    files under its ``templates/`` (posix paths). ``date_attributes``, ``has_funnel_events``
    and ``senders`` are None when the files they come from did not load, so a broken file is
    reported once, by itself, and not again here.
    """
    problems: list[tuple[str, str]] = []
    if campaign.audience not in segments:
        known = ", ".join(sorted(segments)) or "none yet"
        problems.append(("audience", f"no segment {campaign.audience!r} for this client (segments: {known})"))
    trigger = campaign.trigger
    if isinstance(trigger, PacketArrivalTrigger) and trigger.packet_type not in load_maps:
        known = ", ".join(sorted(load_maps)) or "none"
        message = f"no load map {trigger.packet_type!r} for this client (load maps: {known})"
        problems.append(("trigger.packet_type", message))
    if isinstance(trigger, FunnelEventTrigger) and has_funnel_events is False:
        problems.append(("trigger.type", "this client has no funnel_events load map, so no funnel events arrive"))
    for i, step in enumerate(campaign.steps):
        if step.offset is not None and date_attributes is not None:
            field = step.offset.field
            if field not in FIELDS_BY_NAME and field not in date_attributes:
                problems.append(
                    (
                        f"steps.{i}.offset.field",
                        f"{field!r} is neither a date/timestamp field nor a date/timestamp attribute of a load map",
                    )
                )
        for channel in step.channels:
            sender = f"{channel}_from"
            if senders is not None and not senders.get(sender):
                problems.append((f"steps.{i}", f"sends {channel} but client.yaml has no senders.{sender}"))
        for j, variant in enumerate(step.variants):
            for channel in step.channels:
                name = variant.template_for(channel)
                if name is not None and name not in templates:
                    where = f"steps.{i}.variants.{j}.template"
                    if isinstance(variant.template, dict):
                        where += f".{channel}"
                    problems.append((where, f"template file templates/{name} does not exist"))
    return problems
