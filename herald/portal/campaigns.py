"""The portal's Campaigns page: each campaign's status, funnel and A/B results, the message review
of its next occurrence, pause and resume, and a test message to the signed-in staff member.

- **Status** (:func:`campaign_list`, :func:`campaign_detail`): the configured status and a portal
  pause (``herald_ops.campaign_pauses``), the trigger (a cron in words with its next firing),
  the last occurrence (``herald_ops.campaign_occurrences``) and the enrollment ledger's counts
  (``herald_ops.enrollments``: enrolled, active or waiting, completed, exited), the funnel
  (``analytics.journey_funnel``), the variants (``analytics.journey_variants``) and the A/B
  verdicts (``analytics.ab_test_results``) — all read through :mod:`herald.portal.reads`.
- **Message review** (:func:`review`): :func:`herald.campaigns.preview.preview_plan`, the very
  function ``herald campaign preview`` calls (the send's own plan on a scratch copy), at the
  campaign's next occurrence; addresses masked for a user who has contact details hidden.
- **Pause / resume** (:func:`pause_campaign`, :func:`resume_campaign`): a row of
  ``herald_ops.campaign_pauses`` and its audit row in one transaction. The message plan leaves
  the campaign's messages out with the reason ``paused by <email> in the portal``
  (``int_message_plan__judged``), and the delivery claim cancels its messages falling due
  (:func:`herald.delivery.engine._claim`), so a message planned before the pause is not sent.
- **Test message** (:func:`send_test`): the step's template rendered with sample values, queued in
  the outbox as any message (the normal claim, provider and journal) to the user's own address
  only — their account email, or the phone saved on their account — under the pseudo campaign
  :data:`TEST_CAMPAIGN`, so the campaign's figures never count it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import jinja2.meta
import phonenumbers

from herald.campaigns.links import Links
from herald.campaigns.preview import Preview, PreviewRow, preview_plan
from herald.clock import utcnow
from herald.config.campaigns import CampaignConfig, ScheduleTrigger, Step, describe_trigger, next_occurrences
from herald.config.models import Deployment
from herald.contacts.phones import mask_email, mask_phone
from herald.delivery.outbox import OUTBOX, OutboxMessage, enqueue
from herald.portal import audit as portal_audit
from herald.portal.accounts import User
from herald.portal.reads import PortalReader, PortalReadError, publish_snapshot, reader_for
from herald.settings import Settings
from herald.warehouse.connection import Session, Warehouse

log = logging.getLogger("herald.portal.campaigns")

PAUSES = "herald_ops.campaign_pauses"
USER_PHONES = "herald_ops.portal_user_phones"
ENROLLMENTS = "herald_ops.enrollments"
OCCURRENCES = "herald_ops.campaign_occurrences"
FUNNEL = "analytics.journey_funnel"
VARIANTS = "analytics.journey_variants"
AB_RESULTS = "analytics.ab_test_results"
# the tables this page reads (herald.portal.reads.PORTAL_TABLES holds them for the snapshot)
TABLES = (PAUSES, ENROLLMENTS, OCCURRENCES, AB_RESULTS, USER_PHONES)

TEST_CAMPAIGN = "_portal_test"  # the outbox's campaign of every test message: no campaign counts it
TEST_MESSAGE_TYPE = "portal_test"
PAUSED = "campaign_paused"
RESUMED = "campaign_resumed"
TEST_SENT = "campaign_test_sent"
PHONE_SET = "portal_phone_set"
REVIEW_ROWS = 200  # contacts shown by the review (the counts cover all of them)


class CampaignNotFound(LookupError):
    """No such campaign for this client (the page answers 404)."""


class CampaignActionError(ValueError):
    """A pause, resume, phone or test message refused; the message says why, nothing was changed."""


# --- status -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignStatus:
    name: str
    description: str
    message_type: str
    category: str
    configured_status: str  # active | paused (the YAML's)
    paused_by: str | None  # a pause from the portal: who
    paused_at: datetime | None
    trigger: str  # in words: "At 09:00 AM, Monday through Friday (America/Chicago)", "When a packet …"
    next_occurrence: datetime | None  # naive UTC; a schedule's next firing (None for an event trigger)
    last_occurrence: str | None
    last_fired_at: datetime | None
    enrolled: int
    active: int  # active or waiting in the journey now
    completed: int
    exited: int

    @property
    def status(self) -> str:
        return "paused" if self.configured_status == "paused" or self.paused_by else "active"

    @property
    def paused_in_portal(self) -> bool:
        return self.paused_by is not None


@dataclass
class CampaignDetail:
    status: CampaignStatus
    funnel: list[dict[str, Any]] = field(default_factory=list)
    variants: list[dict[str, Any]] = field(default_factory=list)
    ab_results: list[dict[str, Any]] = field(default_factory=list)
    queued: int = 0  # messages in the outbox still to go
    as_of: datetime | None = None


def _campaign(deployment: Deployment, client_id: str, name: str) -> CampaignConfig:
    client = deployment.clients.get(client_id)
    campaign = client.campaigns.get(name) if client is not None else None
    if campaign is None:
        raise CampaignNotFound(f"no campaign {name!r} for {client_id}")
    return campaign


def next_occurrence(campaign: CampaignConfig, time_zone: str, now: datetime) -> datetime | None:
    """A schedule's next firing after ``now`` (naive UTC in, naive UTC out); None for the other
    triggers (they fire on arrivals)."""
    if not isinstance(campaign.trigger, ScheduleTrigger):
        return None
    local_now = now.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(time_zone))
    fires = next_occurrences(campaign.trigger.cron, time_zone, local_now, 1)
    return fires[0].astimezone(ZoneInfo("UTC")).replace(tzinfo=None) if fires else None


def _status(
    campaign: CampaignConfig, time_zone: str, now: datetime, pause: tuple | None, last: tuple | None, counts: dict
) -> CampaignStatus:
    return CampaignStatus(
        name=campaign.name, description=campaign.description.strip(), message_type=campaign.message_type,
        category=campaign.category or "", configured_status=campaign.status,
        paused_by=pause[0] if pause else None, paused_at=pause[1] if pause else None,
        trigger=describe_trigger(campaign.trigger, time_zone), next_occurrence=next_occurrence(campaign, time_zone, now),
        last_occurrence=last[0] if last else None, last_fired_at=last[1] if last else None,
        enrolled=sum(counts.values()), active=counts.get("active", 0) + counts.get("waiting", 0),
        completed=counts.get("completed", 0), exited=counts.get("exited", 0),
    )  # fmt: skip


def _statuses(s: Any, deployment: Deployment, client_id: str, names: list[str], now: datetime) -> list[CampaignStatus]:
    client = deployment.clients[client_id]
    pauses: dict[str, tuple] = {}
    if s.has_table(PAUSES):
        for name, by, at in s.query(f"select campaign, paused_by, paused_at from {PAUSES} where client_id = ?",
                                    [client_id]).rows:  # fmt: skip
            pauses[name] = (by, at)
    counts: dict[str, dict[str, int]] = {}
    if s.has_table(ENROLLMENTS):
        for name, status, n in s.query(
            f"select campaign, status, count(*) from {ENROLLMENTS} where client_id = ? group by campaign, status",
            [client_id],
        ).rows:
            counts.setdefault(name, {})[status] = int(n)
    last: dict[str, tuple] = {}
    if s.has_table(OCCURRENCES):
        for name, occurrence, fired in s.query(
            f"select campaign, occurrence, fired_at from {OCCURRENCES} where client_id = ? "
            "order by fired_at, occurrence",
            [client_id],
        ).rows:
            last[name] = (occurrence, fired)  # the latest wins
    return [
        _status(client.campaigns[n], client.time_zone, now, pauses.get(n), last.get(n), counts.get(n, {}))
        for n in names
    ]


def campaign_list(
    settings: Settings, deployment: Deployment, client_id: str, *, now: datetime | None = None,
    reader: PortalReader | None = None,
) -> tuple[list[CampaignStatus], datetime | None]:  # fmt: skip
    """Every configured campaign of the client with its status; and the figures' as-of time."""
    names = sorted(deployment.clients[client_id].campaigns)
    with (reader or reader_for(settings.warehouse)).session() as s:
        found = _statuses(s, deployment, client_id, names, now or utcnow())
        return found, s.as_of


def _of_campaign(s: Any, table: str, columns: str, order: str, key: list[str]) -> list[dict[str, Any]]:
    """The rows of one campaign (``key``: client, campaign) in a mart, as dicts."""
    return s.query(f"select {columns} from {table} where client_id = ? and campaign = ? order by {order}", key).dicts()


def campaign_detail(
    settings: Settings, deployment: Deployment, client_id: str, name: str, *, now: datetime | None = None,
    reader: PortalReader | None = None,
) -> CampaignDetail:  # fmt: skip
    """One campaign: its status, funnel per step, variants and A/B verdicts."""
    _campaign(deployment, client_id, name)
    key = [client_id, name]
    with (reader or reader_for(settings.warehouse)).session() as s:
        detail = CampaignDetail(_statuses(s, deployment, client_id, [name], now or utcnow())[0], as_of=s.as_of)
        if s.has_table(FUNNEL):
            detail.funnel = s.query(
                f"select step, reached, messaged, waiting_now, moved_on, carried_over, exited, converted from {FUNNEL} "
                "where client_id = ? and campaign = ?",
                key,
            ).dicts()
            order = {step: i for i, step in enumerate(_step_order(deployment, client_id, name))}
            detail.funnel.sort(key=lambda r: (order.get(r["step"], len(order)), r["step"]))
        if s.has_table(VARIANTS):
            detail.variants = _of_campaign(s, VARIANTS, "step, variant, enrollments, sent, delivered, clicked",
                                           "step, variant", key)  # fmt: skip
        if s.has_table(AB_RESULTS):
            detail.ab_results = _of_campaign(
                s, AB_RESULTS, "step, variant, is_control, sent, metric, rate, ci_low, ci_high, p_value, verdict, winner",
                "step, is_control desc, variant", key,
            )  # fmt: skip
    return detail


def _step_order(deployment: Deployment, client_id: str, name: str) -> list[str]:
    return [step.name for step in deployment.clients[client_id].campaigns[name].steps] + ["(end)"]


# --- message review ---------------------------------------------------------------------------


@dataclass
class Review:
    """The preview's rows as the page shows them (addresses masked when the user hides them)."""

    preview: Preview
    at: datetime  # naive UTC: the occurrence reviewed
    occurrence_is_next: bool  # a schedule's next firing (else: as if it fired now)
    rows: list[PreviewRow]
    counts: dict[str, int]
    reasons: list[tuple[str, int]]
    shown: int


def review(
    settings: Settings, deployment: Deployment, links: Links, client_id: str, name: str, *,
    hide_contact_details: bool, now: datetime | None = None, copy_guard: Any = None,
) -> Review:  # fmt: skip
    """The messages the campaign's next occurrence would send, per contact, rendered, and the
    contacts left out with the plan's reasons: :func:`preview_plan`, as ``herald campaign
    preview`` runs it (a scratch copy; nothing real is written)."""
    campaign = _campaign(deployment, client_id, name)
    now = now or utcnow()
    upcoming = next_occurrence(campaign, deployment.clients[client_id].time_zone, now)
    at = upcoming or now
    preview = preview_plan(settings.warehouse, deployment, settings.config_dir, links, client_id, campaign, at,
                           copy_guard=copy_guard)  # fmt: skip
    rows = [_masked(r) for r in preview.rows] if hide_contact_details else list(preview.rows)
    counts: dict[str, int] = {}
    reasons: dict[str, int] = {}
    for r in preview.rows:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
        if r.outcome in ("excluded", "not enrolled", "held") and r.reason:
            reasons[r.reason] = reasons.get(r.reason, 0) + 1
    ordered = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
    return Review(preview, at, upcoming is not None, rows[:REVIEW_ROWS], counts, ordered, min(len(rows), REVIEW_ROWS))


def _masked(row: PreviewRow) -> PreviewRow:
    address = row.to_address
    if address:
        address = mask_phone(address) if row.channel == "sms" else mask_email(address)
    return replace(row, to_address=address)


# --- pause and resume -------------------------------------------------------------------------


@dataclass(frozen=True)
class PauseChange:
    campaign: str
    paused: bool  # the state now
    changed: bool  # False: it already was
    queued: int  # messages still queued for the campaign (a pause cancels those falling due)


def _queued(s: Session, client_id: str, name: str) -> int:
    return int(
        s.scalar(f"select count(*) from {OUTBOX} where client_id = ? and campaign = ? and status = 'queued'",
                 [client_id, name]) or 0
    )  # fmt: skip


def pause_campaign(settings: Settings, deployment: Deployment, client_id: str, name: str, user: User) -> PauseChange:
    """Pause the campaign from the portal: the row and its audit entry in one transaction."""
    _campaign(deployment, client_id, name)
    now = utcnow()
    with Warehouse(settings.warehouse).session() as s:
        existing = s.scalar(f"select paused_by from {PAUSES} where client_id = ? and campaign = ?", [client_id, name])
        if existing is None:
            s.execute(f"insert into {PAUSES} (client_id, campaign, paused_by, paused_at) values (?, ?, ?, ?)",
                      [client_id, name, user.email, now])  # fmt: skip
            queued = _queued(s, client_id, name)
            portal_audit.record(s, portal_audit.actor(user.email), PAUSED, client_id, name,
                                {"queued_messages": queued})  # fmt: skip
        else:
            queued = _queued(s, client_id, name)
    _republish(settings)
    return PauseChange(name, True, existing is None, queued)


def resume_campaign(settings: Settings, deployment: Deployment, client_id: str, name: str, user: User) -> PauseChange:
    """Lift the portal's pause (a pause in the campaign's YAML stays: that is configuration)."""
    _campaign(deployment, client_id, name)
    with Warehouse(settings.warehouse).session() as s:
        existing = s.scalar(f"select paused_by from {PAUSES} where client_id = ? and campaign = ?", [client_id, name])
        if existing is not None:
            s.execute(f"delete from {PAUSES} where client_id = ? and campaign = ?", [client_id, name])
            portal_audit.record(s, portal_audit.actor(user.email), RESUMED, client_id, name,
                                {"paused_by": existing})  # fmt: skip
        queued = _queued(s, client_id, name)
    _republish(settings)
    return PauseChange(name, False, existing is not None, queued)


def _republish(settings: Settings) -> None:
    try:
        publish_snapshot(settings.warehouse)
    except PortalReadError as exc:
        log.warning("the change is saved; the portal shows it after the next run: %s", exc)


# --- the staff member's own phone and the test message ----------------------------------------


def own_phone(session: Session, user: User) -> str | None:
    """The phone the user saved for test texts (E.164), or None, in the caller's warehouse transaction."""
    return session.scalar(f"select phone from {USER_PHONES} where user_id = ?", [user.user_id])


def saved_phone(settings: Settings, user: User, reader: PortalReader | None = None) -> str | None:
    """The same for a page, through the portal's read path (the snapshot on DuckDB, published
    again when the phone is saved)."""
    with (reader or reader_for(settings.warehouse)).session() as s:
        if not s.has_table(USER_PHONES):
            return None
        return s.scalar(f"select phone from {USER_PHONES} where user_id = ?", [user.user_id])


def set_own_phone(
    settings: Settings, deployment: Deployment, client_id: str, user: User, phone: str, confirm: str
) -> str:
    """Save the user's own phone (typed twice, read in the client's region); returns it masked."""
    region = deployment.clients[client_id].default_region
    numbers = []
    for typed in (phone, confirm):
        try:
            parsed = phonenumbers.parse(typed.strip()[:40], region)
        except phonenumbers.NumberParseException:
            parsed = None
        if parsed is None or not phonenumbers.is_valid_number(parsed):
            raise CampaignActionError(f"{typed.strip()[:40]!r} is not a valid phone number for region {region}")
        numbers.append(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))
    if numbers[0] != numbers[1]:
        raise CampaignActionError("the two numbers differ: type your own number twice")
    now = utcnow()
    with Warehouse(settings.warehouse).session() as s:
        s.execute(f"delete from {USER_PHONES} where user_id = ?", [user.user_id])
        s.execute(f"insert into {USER_PHONES} (user_id, phone, updated_at) values (?, ?, ?)",
                  [user.user_id, numbers[0], now])  # fmt: skip
        portal_audit.record(s, portal_audit.actor(user.email), PHONE_SET, client_id, mask_phone(numbers[0]))
    _republish(settings)
    return mask_phone(numbers[0])


@dataclass(frozen=True)
class TestMessage:
    message_key: str
    channel: str
    to_masked: str
    step: str
    variant: str
    status: str  # queued | held (the reason in status_reason)
    status_reason: str | None


def _message_step(campaign: CampaignConfig, channel: str, step_name: str | None) -> Step:
    steps = [s for s in campaign.steps if isinstance(s, Step)]
    if step_name:
        steps = [s for s in steps if s.name == step_name]
        if not steps:
            raise CampaignActionError(f"{campaign.name} has no message step {step_name!r}")
    for step in steps:
        if channel in step.channels:
            return step
    raise CampaignActionError(f"{campaign.name} sends no {channel} message; choose another channel")


def sample_variables(source: str, types: dict[str, str], user: User, client_name: str, now: datetime) -> dict:
    """Values for the template's own variables: a date or time two days ahead, 1 for a number,
    the user's name for ``first_name``, ``[name]`` for any other text: a test shows the wording,
    never a contact's data."""
    names = jinja2.meta.find_undeclared_variables(jinja2.Environment().parse(source))
    ahead = now + timedelta(days=2)
    values: dict[str, Any] = {}
    for name in names:
        kind = types.get(name)
        if kind == "timestamp":
            values[name] = ahead.isoformat()
        elif kind == "date":
            values[name] = date(ahead.year, ahead.month, ahead.day).isoformat()
        elif kind in ("integer", "number", "numeric", "decimal", "float"):
            values[name] = 1
        elif kind == "boolean":
            values[name] = True
        elif name == "client_name":
            values[name] = client_name
        elif name == "first_name":
            values[name] = (user.display_name or "").split(" ")[0] or "[first_name]"
        else:
            values[name] = f"[{name}]"
    return values


def send_test(
    settings: Settings, deployment: Deployment, config_dir: Path, links: Links, client_id: str, name: str,
    user: User, channel: str, *, step_name: str | None = None, now: datetime | None = None,
) -> TestMessage:  # fmt: skip
    """Queue the campaign's message (its first step on ``channel``, its control variant) to the
    signed-in user's own address, rendered with :func:`sample_variables`, through the outbox as
    any message: the delivery run claims it (suppressions re-checked), the provider sends it.

    It is the staff member's own transactional message, asked for now: due at once, not held
    to the contacts' quiet hours or the campaign's calendar (as a password-reset email is not).
    Its outbox campaign is :data:`TEST_CAMPAIGN`, so no campaign figure counts it."""
    from herald.campaigns.variables import variable_types

    campaign = _campaign(deployment, client_id, name)
    if channel not in ("sms", "email"):
        raise CampaignActionError("choose SMS or email")
    client = deployment.clients[client_id]
    step = _message_step(campaign, channel, step_name)
    variant = next((v for v in step.variants if v.name == campaign.ab_test.control_for(step)), step.variants[0])
    template = variant.template_for(channel)
    now = now or utcnow()
    try:
        source = (config_dir / "clients" / client_id / "templates" / (template or "")).read_text(encoding="utf-8")
    except OSError as exc:
        raise CampaignActionError(f"the template {template!r} cannot be read: {exc.strerror}") from exc
    raw = sample_variables(source + "\n" + (variant.subject or step.subject or ""), variable_types(client), user,
                           client.config.name, now)  # fmt: skip
    with Warehouse(settings.warehouse).session() as s:  # the address, the message and its audit row: one transaction
        address = user.email if channel == "email" else own_phone(s, user)
        if not address:
            raise CampaignActionError("save your own phone number first (below): a test text goes only to you")
        message = _test_message(deployment, config_dir, links, client_id, name, user, channel, step, variant.name,
                                template, raw, address, now)  # fmt: skip
        enqueue(s, [message], now)
        masked = mask_phone(address) if channel == "sms" else mask_email(address)
        portal_audit.record(s, portal_audit.actor(user.email), TEST_SENT, client_id, name,
                            {"message_key": message.message_key, "channel": channel, "to": masked, "step": step.name,
                             "variant": variant.name, "status": message.status})  # fmt: skip
    return TestMessage(message.message_key, channel, masked, step.name, variant.name, message.status,
                       message.status_reason)  # fmt: skip


def _test_message(
    deployment: Deployment, config_dir: Path, links: Links, client_id: str, name: str, user: User, channel: str,
    step: Step, variant: str, template: str | None, raw: dict[str, Any], address: str, now: datetime,
) -> OutboxMessage:  # fmt: skip
    """The test rendered as the send renders a planned message (:class:`MessageBuilder`), then
    filed under :data:`TEST_CAMPAIGN`."""
    from herald.campaigns.enqueue import MessageBuilder

    chosen = next(v for v in step.variants if v.name == variant)
    digest = hashlib.sha256(f"{client_id}|{name}|{user.user_id}|{channel}|{now.isoformat()}".encode()).hexdigest()
    key = f"test-{digest[:32]}"
    row = {
        "message_key": key, "client_id": client_id, "campaign": name, "step": step.name, "variant": variant,
        "occurrence": f"test:{now:%Y-%m-%dT%H:%M:%S}", "contact_id": f"portal-user:{user.user_id}",
        "message_type": TEST_MESSAGE_TYPE, "category": "transactional", "channel": channel, "to_address": address,
        "send_after": now, "template": template, "subject_template": chosen.subject or step.subject or "",
        "variables": json.dumps(raw),
    }  # fmt: skip
    message: OutboxMessage = MessageBuilder(deployment, config_dir, links).build(row)
    return replace(message, campaign=TEST_CAMPAIGN, occurrence=f"{name}:{row['occurrence']}")
