"""A contact's message preferences with a client: topics, channels, frequency and a pause.

The preference page at the unsubscribe link (herald/web/pages.py), SMS keywords (PAUSE,
RESUME: herald/compliance/inbound.py) and the API all change the same model. The current state
is ``herald_ops.contact_preferences`` (no row: everything on); every change is also appended to
``herald_ops.preference_events``, one row per preference that changed, with its source
(``page``, ``sms_keyword``, ``api``) and time, and audited.

What the message plan does with them (int_message_plan__judged and __capped), each with its reason:

- a topic off: every message of a campaign with that ``topic:`` is left out
  ('preference: topic offers off'), transactional ones too: the person said so for that kind;
- email or texts off: every message on that channel ('preference: email off', 'preference: sms off');
- a pause: marketing messages scheduled before the date ('preference: paused until 2026-12-21');
- frequency weekly / monthly: at most one marketing message per 7 / 30 days
  ('preference: frequency weekly (1 sent in the last 7 days)').

A pause and the frequency leave transactional messages (appointment reminders, confirmations)
alone: they are about something the person booked, and the page says so. Unsubscribing from
everything is not a preference but a suppression of every channel (herald/events/apply.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from herald.compliance.audit import audit
from herald.config.models import Topic
from herald.warehouse.connection import Session
from herald.warehouse.schema import OPS_SCHEMA, column_names

PREFERENCES = f"{OPS_SCHEMA}.contact_preferences"
EVENTS = f"{OPS_SCHEMA}.preference_events"
SOURCES = ("page", "sms_keyword", "api")
CHANNELS = ("email", "sms")
CHANNEL_WORDS = {"email": "emails", "sms": "text messages"}
FREQUENCIES = {"all": "every message", "weekly": "at most one offer a week", "monthly": "at most one offer a month"}
PAUSES = {"2w": 14, "1m": 30}  # the page's choices, in days
KEYWORD_PAUSE_DAYS = 30  # an SMS PAUSE
MAX_PAUSE_DAYS = 366


class PreferenceError(ValueError):
    """A preference change that cannot be applied; the message names what and where."""


@dataclass(frozen=True)
class Preferences:
    topics_off: frozenset[str] = field(default_factory=frozenset)
    email_off: bool = False
    sms_off: bool = False
    frequency: str = "all"
    paused_until: date | None = None

    def channel_off(self, channel: str) -> bool:
        return self.email_off if channel == "email" else self.sms_off

    def fields(self, topics: Sequence[str]) -> dict[str, str | None]:
        """Each preference as text, for the change history: ``topic:<name>`` on/off, channels, ..."""
        values: dict[str, str | None] = {f"topic:{t}": "off" if t in self.topics_off else "on" for t in topics}
        values |= {"email": "off" if self.email_off else "on", "sms": "off" if self.sms_off else "on"}
        values |= {
            "frequency": self.frequency,
            "paused_until": self.paused_until.isoformat() if self.paused_until else None,
        }
        return values

    def to_payload(self) -> dict[str, Any]:
        return {
            "topics_off": sorted(self.topics_off), "email_off": self.email_off, "sms_off": self.sms_off,
            "frequency": self.frequency, "paused_until": self.paused_until.isoformat() if self.paused_until else None,
        }  # fmt: skip

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any], topics: Sequence[str]) -> Preferences:
        """The preferences an event carries, checked (PreferenceError names the bad value)."""
        off = payload.get("topics_off") or []
        if not isinstance(off, list) or any(t not in topics for t in off):
            raise PreferenceError(f"topics_off: {off!r} names a topic this client does not have ({', '.join(topics)})")
        frequency = str(payload.get("frequency") or "all")
        if frequency not in FREQUENCIES:
            raise PreferenceError(f"frequency: {frequency!r} is not one of {', '.join(FREQUENCIES)}")
        paused = payload.get("paused_until")
        try:
            paused_until = date.fromisoformat(paused) if paused else None
        except (TypeError, ValueError) as exc:
            raise PreferenceError(f"paused_until: {paused!r} is not a date (YYYY-MM-DD)") from exc
        return cls(
            frozenset(off), bool(payload.get("email_off")), bool(payload.get("sms_off")), frequency, paused_until
        )


def current_preferences(session: Session, client_id: str, contact_id: str) -> Preferences:
    _, rows = session.query(
        f"select topics_off, email_off, sms_off, frequency, paused_until from {PREFERENCES} "
        "where client_id = ? and contact_id = ?",
        [client_id, contact_id],
    )
    if not rows:
        return Preferences()
    topics_off, email_off, sms_off, frequency, paused_until = rows[0]
    off = frozenset(t for t in str(topics_off or "").split(",") if t)
    return Preferences(off, bool(email_off), bool(sms_off), str(frequency), paused_until)


def apply_preferences(
    session: Session,
    *,
    client_id: str,
    contact_id: str,
    new: Preferences,
    topics: Sequence[str],
    source: str,
    event_id: str,
    occurred_at: datetime,
    now: datetime,
    evidence: str | None = None,
    actor: str = "preferences",
) -> tuple[list[tuple[str, str | None, str | None]], list[str]]:
    """Makes ``new`` the contact's preferences (in the caller's transaction): one
    ``preference_events`` row per preference that changed, the current row replaced, one audit
    row, and the contact's queued or held messages the new choices leave out cancelled (the plan
    leaves out the next ones). Returns the changes as (field, old, new) and the cancelled message
    keys; nothing when nothing changed."""
    if source not in SOURCES:
        raise PreferenceError(f"source: {source!r} is not one of {', '.join(SOURCES)}")
    old = current_preferences(session, client_id, contact_id)
    before, after = old.fields(topics), new.fields(topics)
    changes = [(name, before.get(name), value) for name, value in after.items() if before.get(name) != value]
    if not changes:
        return [], []
    rows = [
        (f"{event_id}:{name}"[:200], client_id, contact_id, name, was, value, source, evidence, occurred_at, now)
        for name, was, value in changes
    ]
    session.insert_rows(EVENTS, column_names(EVENTS), rows, ignore_existing=True)
    session.execute(f"delete from {PREFERENCES} where client_id = ? and contact_id = ?", [client_id, contact_id])
    session.insert_rows(
        PREFERENCES, column_names(PREFERENCES),
        [(client_id, contact_id, ",".join(sorted(new.topics_off)), new.email_off, new.sms_off, new.frequency,
          new.paused_until, source, now)],
    )  # fmt: skip
    audit(session, actor, "preference_change", client_id, contact_id, contact_id,
          f"preferences changed via {source}", {"event_id": event_id, "changes": [list(c) for c in changes]},
          now=now)  # fmt: skip
    cancelled = withdraw_queued(session, client_id, contact_id, new, now)
    if cancelled:
        audit(session, actor, "cancel", client_id, contact_id, contact_id, f"preferences changed via {source}",
              {"message_keys": cancelled}, now=now)  # fmt: skip
    return changes, cancelled


def withdraw_queued(session: Session, client_id: str, contact_id: str, p: Preferences, now: datetime) -> list[str]:
    """Cancels the contact's queued and held messages that ``p`` leaves out: on a channel turned
    off, of a campaign whose topic is off, marketing due before the pause ends (frequency is the
    plan's alone). Answers to the person's own replies (campaign ``_replies``) are never withdrawn."""
    from herald.delivery.outbox import cancel_messages

    tests: list[str] = []
    params: list[Any] = []
    for channel in CHANNELS:
        if p.channel_off(channel):
            tests.append("channel = ?")
            params.append(channel)
    if p.topics_off:
        marks = ", ".join("?" * len(p.topics_off))
        tests.append(f"campaign in (select campaign from {OPS_SCHEMA}.campaign_topics "
                     f"where client_id = ? and topic in ({marks}))")  # fmt: skip
        params += [client_id, *sorted(p.topics_off)]
    if p.paused_until is not None:
        tests.append("(category = 'marketing' and send_after < ?)")
        params.append(datetime.combine(p.paused_until, datetime.min.time()))
    if not tests:
        return []
    where = f"client_id = ? and contact_id = ? and campaign <> '_replies' and ({' or '.join(tests)})"
    return cancel_messages(session, where, [client_id, contact_id, *params], "preferences: the contact's choice", now)


def event_id_for(*parts: str) -> str:
    return "pref:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


# -- the page's form ----------------------------------------------------------------------


def from_form(form: Mapping[str, str | list[str]], topics: Sequence[Topic], today: date,
              current: Preferences | None = None) -> Preferences:  # fmt: skip
    """The preferences a submitted page form asks for. Checked boxes are what stays on; an
    unknown topic, channel, frequency or pause, or a pause date in the past or more than a year
    ahead, raises PreferenceError naming the field and the value."""

    def values(name: str) -> list[str]:
        value = form.get(name)
        return [] if value is None else [value] if isinstance(value, str) else list(value)

    names = [t.name for t in topics]
    on = values("topic")
    unknown = [t for t in on if t not in names]
    if unknown:
        raise PreferenceError(f"Topics: {unknown[0]!r} is not one of this sender's topics ({', '.join(names)})")
    channels = values("channel")
    if any(c not in CHANNELS for c in channels):
        bad = next(c for c in channels if c not in CHANNELS)
        raise PreferenceError(f"Channels: {bad!r} is not email or sms")
    [frequency] = values("frequency") or ["all"]
    if frequency not in FREQUENCIES:
        raise PreferenceError(f"Frequency: {frequency!r} is not one of {', '.join(FREQUENCIES)}")
    [pause] = values("pause") or ["none"]
    paused_until: date | None
    if pause == "none":
        paused_until = None
    elif pause == "keep":
        paused_until = current.paused_until if current is not None else None
    elif pause in PAUSES:
        paused_until = today + timedelta(days=PAUSES[pause])
    elif pause == "date":
        [text] = values("pause_date") or [""]
        try:
            paused_until = date.fromisoformat(text.strip())
        except ValueError as exc:
            raise PreferenceError(f"Pause until: {text[:40]!r} is not a date (YYYY-MM-DD)") from exc
        if paused_until <= today or paused_until > today + timedelta(days=MAX_PAUSE_DAYS):
            raise PreferenceError(
                f"Pause until: {paused_until.isoformat()} must be after today and within a year "
                f"({(today + timedelta(days=1)).isoformat()} to {(today + timedelta(days=MAX_PAUSE_DAYS)).isoformat()})"
            )
    else:
        raise PreferenceError(f"Pause: {pause[:40]!r} is not one of none, 2w, 1m, date")
    return Preferences(frozenset(n for n in names if n not in on), "email" not in channels, "sms" not in channels,
                       frequency, paused_until)  # fmt: skip


def encode_state(p: Preferences) -> str:
    """The state a page showed, in a hidden field, so the answer can say what changed."""
    return "|".join([",".join(sorted(p.topics_off)), "1" if p.email_off else "0", "1" if p.sms_off else "0",
                     p.frequency, p.paused_until.isoformat() if p.paused_until else ""])  # fmt: skip


def decode_state(text: str | None, topics: Sequence[str]) -> Preferences | None:
    """The state ``encode_state`` wrote; None when it is missing or not well formed."""
    try:
        off, email, sms, frequency, paused = str(text).split("|")
        return Preferences(
            frozenset(t for t in off.split(",") if t in topics), email == "1", sms == "1",
            frequency if frequency in FREQUENCIES else "all", date.fromisoformat(paused) if paused else None,
        )  # fmt: skip
    except (ValueError, TypeError):
        return None


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def describe_changes(old: Preferences | None, new: Preferences, topics: Sequence[Topic], client_name: str) -> list[str]:
    """Sentences saying exactly what changed and what continues, for the page after saving."""
    labels = {t.name: t.label for t in topics}
    old = old or Preferences()
    said: list[str] = []
    went_off = [labels[t] for t in labels if t in new.topics_off and t not in old.topics_off]
    came_on = [labels[t] for t in labels if t not in new.topics_off and t in old.topics_off]
    channels_off = [CHANNEL_WORDS[c] for c in CHANNELS if new.channel_off(c) and not old.channel_off(c)]
    channels_on = [CHANNEL_WORDS[c] for c in CHANNELS if not new.channel_off(c) and old.channel_off(c)]
    if went_off:
        said.append(f"You will no longer get {_join(went_off)} from {client_name}.")
    if came_on:
        said.append(f"You will get {_join(came_on)} from {client_name} again.")
    if channels_off:
        said.append(f"You will no longer get {_join(channels_off)} from {client_name}.")
    if channels_on:
        said.append(f"You will get {_join(channels_on)} from {client_name} again.")
    if new.frequency != old.frequency:
        said.append(f"How often: {FREQUENCIES[new.frequency]} (was {FREQUENCIES[old.frequency]}).")
    if new.paused_until != old.paused_until:
        if new.paused_until is None:
            said.append("Your pause is over: offers and news can reach you again.")
        else:
            said.append(f"Offers and news are paused until {new.paused_until.strftime('%-d %B %Y')}; "
                        "appointment reminders and other messages you asked for continue.")  # fmt: skip
    if not said:
        said.append("Nothing changed: your choices were already these.")
    kept_topics = [labels[t] for t in labels if t not in new.topics_off]
    kept_channels = [{"email": "email", "sms": "text"}[c] for c in CHANNELS if not new.channel_off(c)]
    if not kept_channels:
        said.append(f"{client_name} will not email or text you, except what the law requires.")
    elif not kept_topics:
        said.append(f"No topic is left on: {client_name} will not message you about any of them.")
    else:
        said.append(f"{_join(kept_topics)} continue by {_join(kept_channels)}.")
    return said


def paused(p: Preferences, until: date | None) -> Preferences:
    return replace(p, paused_until=until)
