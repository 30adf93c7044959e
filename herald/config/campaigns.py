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

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import PurePosixPath
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo

import jinja2
from cron_descriptor import get_description
from croniter import croniter
from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from herald.config.base import SLUG_RE, SLUG_RULE, MappingProblems, Strict
from herald.config.calendars import CalendarRules, SendWindow
from herald.config.expressions import compile_condition
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
    """A ``message`` step: sends one of its variants on a channel (or by a channel rule)."""

    name: str
    next: str | None = None  # the step after this one (default: the next in the list)
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

    kind: ClassVar[str] = "message"

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


# -- journey steps ------------------------------------------------------------------------------
# A campaign's steps form a small directed graph: each step names the step after it (`next`,
# default the following one in the list; after the last, the journey is complete), a `wait_for`
# its `yes` and `no` steps, a `branch` the step of each path. Steps without variants are:

WAIT_FOR_EVENTS: tuple[str, ...] = (
    "replied", "clicked", "opened", "delivered", "confirmed", "funnel_stage", "entered_segment",
)  # fmt: skip
_TIME_OF_DAY_RE = re.compile(r"^(?:(?P<day>[a-z]+)\s+)?(?P<hour>[01]?\d|2[0-3]):(?P<minute>[0-5]\d)$")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MAX_STEPS = 15  # the plan walks at most this many steps of one enrollment per pass


def parse_time_of_day(text: str) -> tuple[int | None, int]:
    """``"09:00"`` → (None, 540); ``"monday 09:30"`` → (1, 570): ISO weekday, minutes after midnight."""
    found = _TIME_OF_DAY_RE.match(" ".join(str(text).lower().split()))
    if not found:
        raise ValueError(f"{text!r} is not a time of day; write 'HH:MM' or '<weekday> HH:MM', e.g. 'monday 09:00'")
    day = found["day"]
    if day is not None and day not in WEEKDAYS:
        raise ValueError(f"{day!r} is not a weekday; use one of {', '.join(WEEKDAYS)}")
    minutes = int(found["hour"]) * 60 + int(found["minute"])
    return (WEEKDAYS.index(day) + 1 if day else None), minutes


class Wait(Strict):
    """How long a ``wait`` step holds: a duration, until a local time, or until an offset."""

    duration: str | None = None
    until: str | None = None  # "09:00" or "monday 09:00", in the recipient's time zone
    offset: Offset | None = None

    @field_validator("duration")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @field_validator("until")
    @classmethod
    def _until(cls, value: str | None) -> str | None:
        if value is not None:
            parse_time_of_day(value)
        return value

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"duration": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _one(self) -> Wait:
        if sum(x is not None for x in (self.duration, self.until, self.offset)) != 1:
            raise ValueError("give exactly one of `duration` ('2d'), `until` ('09:00') or `offset`")
        return self

    def __str__(self) -> str:
        if self.duration is not None:
            return f"wait {self.duration}"
        if self.until is not None:
            return f"wait until {self.until}"
        return f"wait until {self.offset}"


class WaitStep(Strict):
    """Holds the contact, then moves on to ``next``."""

    name: str
    wait: Wait
    next: str | None = None
    kind: ClassVar[str] = "wait"

    def timing(self) -> str:
        return str(self.wait)


class WaitFor(Strict):
    event: Literal[WAIT_FOR_EVENTS]  # type: ignore[valid-type]
    timeout: str
    stage: str | None = None  # funnel_stage: the stage to reach
    segment: str | None = None  # entered_segment: the segment to enter

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: str) -> str:
        parse_duration(value)
        return value

    @model_validator(mode="after")
    def _detail(self) -> WaitFor:
        if self.event == "funnel_stage" and not self.stage:
            raise ValueError("wait_for funnel_stage needs `stage`, e.g. {event: funnel_stage, stage: enrolled}")
        if self.event == "entered_segment" and not self.segment:
            raise ValueError("wait_for entered_segment needs `segment`, the segment's name")
        if self.stage is not None and self.event != "funnel_stage":
            raise ValueError("`stage` applies only to event funnel_stage")
        if self.segment is not None and self.event != "entered_segment":
            raise ValueError("`segment` applies only to event entered_segment")
        return self

    @property
    def timeout_duration(self) -> timedelta:
        return parse_duration(self.timeout)

    def __str__(self) -> str:
        detail = f" {self.stage}" if self.stage else f" {self.segment}" if self.segment else ""
        return f"wait up to {self.timeout} for {self.event}{detail}"


class WaitForStep(Strict):
    """Waits for an event (since the contact reached the step) up to a timeout; goes to ``yes``
    when it happens, to ``no`` at the timeout (both default to the following step)."""

    name: str
    wait_for: WaitFor
    yes: str | None = None
    no: str | None = None
    kind: ClassVar[str] = "wait_for"

    @model_validator(mode="before")
    @classmethod
    def _timeout_required(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("wait_for"), dict) and "timeout" not in data["wait_for"]:
            raise MappingProblems(
                [("wait_for.timeout", "a wait_for needs a timeout, e.g. timeout: 2d (then the `no` path is taken)")]
            )
        return data

    def timing(self) -> str:
        return str(self.wait_for)


class BranchPath(Strict):
    """One path of a branch: taken when its condition holds (the first that holds wins), or by
    its share of a random split (``weight``), or always (no condition: the last path, `else`)."""

    name: str
    goto: str | None = None  # None: the journey is complete on this path
    condition: str | None = Field(default=None, alias="if")
    segment: str | None = None  # the contact is a member of this segment
    weight: Annotated[float, Field(gt=0)] | None = None

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not SLUG_RE.match(value):
            raise ValueError(f"{value!r} is not a valid path name ({SLUG_RULE})")
        return value

    @field_validator("condition")
    @classmethod
    def _expression(cls, value: str | None) -> str | None:
        if value is not None:
            compile_condition(value)
        return value

    @model_validator(mode="after")
    def _one_test(self) -> BranchPath:
        if sum(x is not None for x in (self.condition, self.segment, self.weight)) > 1:
            raise ValueError("give at most one of `if`, `segment` or `weight` per path")
        return self

    @property
    def test(self) -> str:
        if self.condition is not None:
            return "if"
        if self.segment is not None:
            return "segment"
        return "weight" if self.weight is not None else "else"


class BranchStep(Strict):
    """Sends the contact down the first path whose condition holds, or splits at random."""

    name: str
    branch: list[BranchPath] = Field(min_length=2)
    kind: ClassVar[str] = "branch"

    @model_validator(mode="after")
    def _paths(self) -> BranchStep:
        problems: list[tuple[str, str]] = []
        tests = [p.test for p in self.branch]
        names: set[str] = set()
        for i, path in enumerate(self.branch):
            if path.name in names:
                problems.append((f"branch.{i}.name", f"path {path.name!r} appears twice"))
            names.add(path.name)
        if "weight" in tests and set(tests) != {"weight"}:
            problems.append(("branch", "a random split gives every path a `weight`; use `if`/`segment` paths apart"))
        for i, test in enumerate(tests):
            if test == "else" and i != len(tests) - 1:
                problems.append((f"branch.{i}", "a path without a condition must be the last one (it is the else)"))
        if problems:
            raise MappingProblems(problems)
        return self

    @property
    def is_split(self) -> bool:
        return self.branch[0].test == "weight"

    def timing(self) -> str:
        kind = "random split" if self.is_split else "branch"
        return f"{kind} " + " / ".join(p.name for p in self.branch)


class ExitStep(Strict):
    """Ends the enrollment with a reason (shown in marts.enrollments and the journey funnel)."""

    name: str
    exit: str = Field(min_length=1, max_length=200)
    kind: ClassVar[str] = "exit"

    def timing(self) -> str:
        return f"exit: {self.exit}"


STEP_KEYS = {"variants": "message", "wait": "wait", "wait_for": "wait_for", "branch": "branch", "exit": "exit"}


def _step_kind(value: Any) -> str | None:
    if not isinstance(value, dict):
        return getattr(value, "kind", None)
    found = [kind for key, kind in STEP_KEYS.items() if key in value]
    return found[0] if len(found) == 1 else None


JourneyStep = Annotated[
    Annotated[Step, Tag("message")]
    | Annotated[WaitStep, Tag("wait")]
    | Annotated[WaitForStep, Tag("wait_for")]
    | Annotated[BranchStep, Tag("branch")]
    | Annotated[ExitStep, Tag("exit")],
    Discriminator(
        _step_kind,
        custom_error_type="step_kind",
        custom_error_message="a step has exactly one of `variants` (a message), `wait`, `wait_for`, `branch` or `exit`",
    ),
]
STEP_TAGS = frozenset(STEP_KEYS.values())


def step_targets(step: Any, following: str | None) -> list[tuple[str, str | None]]:
    """(path, target step or None for the end) for each way out of ``step``; ``following`` is
    the next step in the list."""
    if isinstance(step, ExitStep):
        return []
    if isinstance(step, WaitForStep):
        return [("yes", step.yes or following), ("no", step.no or following)]
    if isinstance(step, BranchStep):
        return [(p.name, p.goto) for p in step.branch]
    return [("next", step.next or following)]


# -- enrollment and exit criteria ----------------------------------------------------------------


class Enrollment(Strict):
    """Who may enter again: ``once`` (never), ``once_per: 30d`` (after a cooldown since they
    entered), ``every_occurrence`` (each firing enrolls everyone it targets: a broadcast),
    ``per_appointment`` (one enrollment per upcoming appointment of the contact in
    marts.appointments: two appointments, two reminders; a cancelled one, none)."""

    rule: Literal["once", "once_per", "every_occurrence", "per_appointment"]
    cooldown: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"rule": data}
        if isinstance(data, dict) and set(data) == {"once_per"}:
            return {"rule": "once_per", "cooldown": data["once_per"]}
        return data

    @model_validator(mode="after")
    def _cooldown(self) -> Enrollment:
        if self.rule == "once_per":
            if self.cooldown is None:
                raise ValueError("once_per needs a duration, e.g. enrollment: {once_per: 30d}")
            parse_duration(self.cooldown)
        elif self.cooldown is not None:
            raise ValueError("a cooldown applies only to once_per")
        return self

    @property
    def cooldown_minutes(self) -> int | None:
        return int(parse_duration(self.cooldown).total_seconds() // 60) if self.cooldown else None

    def __str__(self) -> str:
        return f"once per {self.cooldown}" if self.rule == "once_per" else self.rule.replace("_", " ")


APPOINTMENT_FIELD = "appointment_at"  # the time a per_appointment enrollment is for
EXIT_EVENTS = ("replied", "opted_out", "left_audience", "confirmed", "goal")


class ExitCriteria(Strict):
    """When an enrollment ends early; its queued messages are cancelled."""

    replied: bool | None = None  # any reply from the contact (default: yes for marketing)
    opted_out: bool = True
    left_audience: bool = False  # no longer a member of the campaign's audience segment
    confirmed: bool = False  # an appointment confirmation (C)
    goal: str | None = None  # a funnel stage: reaching it is the conversion goal
    date_passed: str | None = None  # a date field/attribute of the contact: past it, exit

    def describe(self) -> str:
        parts = [
            n.replace("_", " ") for n in ("replied", "opted_out", "left_audience", "confirmed") if getattr(self, n)
        ]
        if self.goal:
            parts.append(f"goal stage {self.goal}")
        if self.date_passed:
            parts.append(f"{self.date_passed} passed")
        return ", ".join(parts) or "none"


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


class CampaignSendWindow(CalendarRules):
    """A campaign's own ``send_window:``: each key given replaces the client's
    (``business_hours``, ``send_days``, ``closed_days``, ``holidays``); the keys left out keep
    the client's. The law and herald.yaml's safe window still bound the hours."""

    business_hours: SendWindow | None = None


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
    steps: list[JourneyStep] = Field(min_length=1, max_length=MAX_STEPS)
    # who may enter again; default: `once` for a journey (several steps), `every_occurrence`
    # for a single message (a broadcast)
    enrollment: Enrollment | None = None
    exit_on: ExitCriteria = ExitCriteria()
    ab_test: AbTest = AbTest()
    track_links: bool = True  # links in emails and track() links in SMS go through /l/<token>
    send_window: CampaignSendWindow | None = None  # overrides the client's window, key by key
    # one of the client's `topics:` (herald config check says when it is not); a contact who turns
    # the topic off on the preference page is left out of the campaign
    topic: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _yes_no_keys(cls, data: Any) -> Any:
        """YAML reads an unquoted ``yes:``/``no:`` key as a boolean; a wait_for means the paths."""
        if isinstance(data, dict) and isinstance(data.get("steps"), list):
            steps = [
                {({True: "yes", False: "no"}.get(k, k) if isinstance(k, bool) else k): v for k, v in step.items()}
                if isinstance(step, dict)
                else step
                for step in data["steps"]
            ]
            data = {**data, "steps": steps}
        return data

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
            if step.name in names:
                problems.append((f"steps.{i}.name", f"step {step.name!r} appears twice"))
            names.add(step.name)
        if not problems:
            problems += self._graph_problems()
        predecessors = self.predecessors()
        for i, step in enumerate(self.steps):
            where = f"steps.{i}"
            if not isinstance(step, Step):
                continue
            if i == 0 and step.delay is not None:
                problems.append((f"{where}.delay", "the first step starts at the trigger: use an offset or nothing"))
            if step.delay is not None and step.offset is not None:
                problems.append((where, "give exactly one of `delay` (after the previous step, e.g. '3d') or `offset`"))
            problems += self._per_appointment_offset(f"{where}.offset.field", step.offset)
            # a message right after another message needs its own timing (or both go at once)
            after_message = bool(predecessors.get(step.name)) and all(
                isinstance(self.step(p), Step) for p in predecessors.get(step.name, [])
            )
            if i > 0 and after_message and step.delay is None and step.offset is None:
                problems.append((where, "give exactly one of `delay` (after the previous step, e.g. '3d') or `offset`"))
            control = self.ab_test.control
            if control is not None and len(step.variants) > 1 and control not in {v.name for v in step.variants}:
                listed = ", ".join(v.name for v in step.variants)
                message = f"step {step.name!r} has no variant {control!r} (variants: {listed})"
                problems.append(("ab_test.control", message))
        for i, step in enumerate(self.steps):
            if isinstance(step, WaitStep):
                problems += self._per_appointment_offset(f"steps.{i}.wait.offset.field", step.wait.offset)
        if problems:
            raise MappingProblems(problems)
        if self.exit_on.replied is None:
            exits = self.exit_on.model_copy(update={"replied": self.category == "marketing"})
            object.__setattr__(self, "exit_on", exits)
        if self.enrollment is None:
            object.__setattr__(self, "enrollment", Enrollment(rule="once" if self.is_journey else "every_occurrence"))
        return self

    def _per_appointment_offset(self, where: str, offset: Offset | None) -> list[tuple[str, str]]:
        """A per_appointment journey is timed from its own appointment: an offset from another
        date would not follow the appointment it was enrolled for."""
        if self.enrollment is None or self.enrollment.rule != "per_appointment" or offset is None:
            return []
        if offset.field == APPOINTMENT_FIELD:
            return []
        message = (
            f"enrollment: per_appointment times its steps from the appointment; use field {APPOINTMENT_FIELD} "
            f"(not {offset.field!r}), or a delay"
        )
        return [(where, message)]

    # -- the journey as a graph ----------------------------------------------------------------

    @property
    def is_journey(self) -> bool:
        """More than one step, or any step that is not a message: enrolled once by default."""
        return len(self.steps) > 1 or any(not isinstance(s, Step) for s in self.steps)

    @property
    def message_steps(self) -> list[Step]:
        return [s for s in self.steps if isinstance(s, Step)]

    def step(self, name: str) -> Any:
        return next(s for s in self.steps if s.name == name)

    def following(self, index: int) -> str | None:
        return self.steps[index + 1].name if index + 1 < len(self.steps) else None

    def edges(self) -> list[tuple[str, str, str | None]]:
        """(step, path, target step or None: the end) for every way out of every step."""
        return [
            (step.name, path, target)
            for i, step in enumerate(self.steps)
            for path, target in step_targets(step, self.following(i))
        ]

    def predecessors(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for source, _, target in self.edges():
            if target is not None:
                found.setdefault(target, []).append(source)
        return found

    def _graph_problems(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        index = {s.name: i for i, s in enumerate(self.steps)}
        for i, step in enumerate(self.steps):
            fields: list[tuple[str, str | None]]
            if isinstance(step, WaitForStep):
                fields = [("yes", step.yes), ("no", step.no)]
            elif isinstance(step, BranchStep):
                fields = [(f"branch.{j}.goto", p.goto) for j, p in enumerate(step.branch)]
            elif isinstance(step, ExitStep):
                fields = []
            else:
                fields = [("next", step.next)]
            for field, target in fields:
                if target is not None and target not in index:
                    listed = ", ".join(index)
                    problems.append((f"steps.{i}.{field}", f"no step {target!r} in this campaign (steps: {listed})"))
                elif target == step.name:
                    problems.append((f"steps.{i}.{field}", f"step {step.name!r} cannot lead to itself"))
        if problems:
            return problems
        graph = {name: [t for s, _, t in self.edges() if s == name and t is not None] for name in index}
        # reachable from the first step
        seen, stack = set(), [self.steps[0].name]
        while stack:
            name = stack.pop()
            if name not in seen:
                seen.add(name)
                stack += graph[name]
        for i, step in enumerate(self.steps):
            if step.name not in seen:
                problems.append(
                    (f"steps.{i}", f"step {step.name!r} is never reached: no step leads to it (give one a `next`, "
                     f"`yes`, `no` or `goto` naming it, or remove it)")
                )  # fmt: skip
        # cycles: a depth-first search that finds a step already on its path
        state: dict[str, int] = {}

        def visit(name: str, path: list[str]) -> list[str] | None:
            state[name] = 1
            for target in graph[name]:
                if state.get(target) == 1:
                    return [*path, name, target]
                if target not in state and (cycle := visit(target, [*path, name])):
                    return cycle
            state[name] = 2
            return None

        for name in index:
            if name not in state and (cycle := visit(name, [])):
                start = cycle.index(cycle[-1])
                loop = " -> ".join(cycle[start:])
                problems.append((f"steps.{index[cycle[-2]]}", f"the journey loops ({loop}); a journey may not "
                                 "return to an earlier step — use a new step instead"))  # fmt: skip
                break
        return problems

    @property
    def config_version(self) -> str:
        """A short hash of what decides an enrollment's path: enrollments keep the version they
        entered with, so a change is visible (and recorded) rather than silently re-routing them."""
        dumped = json.dumps(
            {
                "steps": [s.model_dump(mode="json", by_alias=True) for s in self.steps],
                "exit_on": self.exit_on.model_dump(mode="json"),
                "enrollment": str(self.enrollment),
            },
            sort_keys=True,
        )
        return hashlib.sha256(dumped.encode()).hexdigest()[:12]

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
    not_a_date = "is neither a date/timestamp field nor a date/timestamp attribute of a load map"
    if campaign.exit_on.date_passed is not None and date_attributes is not None:
        field = campaign.exit_on.date_passed
        if field not in FIELDS_BY_NAME and field not in date_attributes:
            problems.append(("exit_on.date_passed", f"{field!r} {not_a_date}"))
    for i, step in enumerate(campaign.steps):
        known = ", ".join(sorted(segments)) or "none yet"
        if isinstance(step, WaitForStep) and step.wait_for.segment and step.wait_for.segment not in segments:
            problems.append(
                (f"steps.{i}.wait_for.segment", f"no segment {step.wait_for.segment!r} (segments: {known})")
            )
        if isinstance(step, BranchStep):
            for j, path in enumerate(step.branch):
                if path.segment is not None and path.segment not in segments:
                    problems.append(
                        (f"steps.{i}.branch.{j}.segment", f"no segment {path.segment!r} (segments: {known})")
                    )
        if isinstance(step, WaitStep) and step.wait.offset is not None and date_attributes is not None:
            field = step.wait.offset.field
            if field not in FIELDS_BY_NAME and field not in date_attributes:
                problems.append((f"steps.{i}.wait.offset.field", f"{field!r} {not_a_date}"))
        if not isinstance(step, Step):
            continue
        if step.offset is not None and date_attributes is not None:
            field = step.offset.field
            if field not in FIELDS_BY_NAME and field not in date_attributes:
                problems.append((f"steps.{i}.offset.field", f"{field!r} {not_a_date}"))
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
