"""What the delivery side promises, checked over ``herald_ops.outbox`` and its attempts.

Each check is a query (or, for the send window, the planner's own window rule) that returns a
:class:`Finding`: whether the promise holds, how many rows break it and a few masked examples.
The Dagster asset checks on the outbox and delivery assets (assets/delivery/checks.py) report
them; nothing here changes a row.

- :func:`no_duplicate_messages` — one outbox row per message key, and one per message identity
  (client, campaign, step, contact, channel, occurrence: what the key is a digest of);
- :func:`no_message_sent_twice` — at most one accepted provider call per message key
  (``delivery_attempts`` outcomes ``sent`` and ``reconciled_sent``);
- :func:`no_suppressed_recipients` — no message sent after a suppression that covers it was
  recorded (the claim's own rule: the address, the client or ``*``, the channel or ``*``, the
  scope ``all`` or the message's type, the answers to a reply exempt from opt-outs);
- :func:`sent_inside_send_windows` — every sent message went at a moment inside its recipient's
  send window, by :func:`herald.compliance.send_window.zone_intervals` (the twin of the plan's
  window step) with the recipient's zones and state picked as the plan picks them;
- :func:`every_message_accounted_for` — every row in a status Herald knows, and every failed,
  suppressed, cancelled or held row with its reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from herald.compliance.calendars import SendCalendar, calendar_for
from herald.compliance.inbound import REPLY_CAMPAIGN
from herald.compliance.send_window import recipient_zones, zone_intervals
from herald.compliance.windows import legal_window_rows
from herald.config.models import Deployment
from herald.contacts.phones import mask_email, mask_phone
from herald.delivery.outbox import ATTEMPTS, OUTBOX, STATUSES, SUPPRESSIONS
from herald.warehouse.connection import Session

EXAMPLES = 5  # masked example rows a finding carries
ACCEPTED_OUTCOMES = ("sent", "reconciled_sent")  # attempts where the provider took the message
LIVE_STATUSES = ("queued", "sending")
NEEDS_REASON = ("failed", "suppressed", "cancelled", "held")
# the answers to a recipient's own reply (opt-out confirmation, HELP) go at once, whatever the hour
# answers to a reply, and a staff member's test to themselves from the portal's Campaigns page
# (herald.portal.campaigns.TEST_CAMPAIGN: their own transactional message, due when asked for)
WINDOW_EXEMPT_CAMPAIGNS = (REPLY_CAMPAIGN, "_portal_test")
# engine.OPT_OUT_EXEMPT_TYPES (not imported: the engine pulls the providers in)
OPT_OUT_EXEMPT_TYPES = ("opt_out_confirmation", "help_reply")
CONTACTS = "marts.contacts"
REGIONS = "herald_raw.address_regions"


def mask(channel: str, address: str | None) -> str:
    return mask_email(address) if channel == "email" else mask_phone(address)


@dataclass(frozen=True)
class Finding:
    """One check's verdict: ``violations`` rows break the promise, ``examples`` show a few
    (addresses masked), ``counts`` say what was looked at."""

    name: str
    violations: int
    description: str
    examples: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.violations == 0

    def examples_table(self) -> str:
        """The examples as a Markdown table ('none' when there are none)."""
        if not self.examples:
            return "none"
        columns = list(self.examples[0])
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(str(e.get(c, "")) for c in columns) + " |" for e in self.examples]
        return "\n".join(lines)


def _short(key: str) -> str:
    return key[:12]


def no_duplicate_messages(session: Session) -> Finding:
    _, by_key = session.query(
        f"select message_key, count(*) from {OUTBOX} group by message_key having count(*) > 1 order by message_key"
    )
    _, by_identity = session.query(
        f"""select client_id, campaign, step, contact_id, channel, occurrence, count(*), min(message_key)
            from {OUTBOX} group by client_id, campaign, step, contact_id, channel, occurrence
            having count(*) > 1 order by client_id, campaign, step, contact_id, channel, occurrence"""
    )
    rows = int(session.scalar(f"select count(*) from {OUTBOX}") or 0)
    extra = sum(int(n) - 1 for _, n in by_key) + sum(int(r[6]) - 1 for r in by_identity)
    examples = [{"message_key": _short(k), "rows": int(n), "same": "key"} for k, n in by_key[:EXAMPLES]]
    examples += [
        {"message_key": _short(first), "rows": int(n), "same": f"{client}/{campaign}/{step} {channel} {occurrence}"}
        for client, campaign, step, _contact, channel, occurrence, n, first in by_identity[: EXAMPLES - len(examples)]
    ]
    description = (
        f"{extra} duplicate outbox rows ({len(by_key)} keys, {len(by_identity)} message identities)"
        if extra
        else f"every one of {rows} outbox rows has its own message key and identity"
    )
    return Finding("no_duplicate_messages", extra, description, examples,
                   {"outbox_rows": rows, "duplicate_keys": len(by_key), "duplicate_identities": len(by_identity)})  # fmt: skip


def no_message_sent_twice(session: Session) -> Finding:
    outcomes = ", ".join("?" * len(ACCEPTED_OUTCOMES))
    _, rows = session.query(
        f"""select a.message_key, count(*), min(o.channel), min(o.to_address)
            from {ATTEMPTS} as a left join {OUTBOX} as o on o.message_key = a.message_key
            where a.outcome in ({outcomes}) group by a.message_key having count(*) > 1 order by a.message_key""",
        list(ACCEPTED_OUTCOMES),
    )
    accepted = int(
        session.scalar(f"select count(distinct message_key) from {ATTEMPTS} where outcome in ({outcomes})",
                       list(ACCEPTED_OUTCOMES)) or 0
    )  # fmt: skip
    examples = [
        {"message_key": _short(k), "accepted_attempts": int(n), "to": mask(ch or "", to)}
        for k, n, ch, to in rows[:EXAMPLES]
    ]
    description = (
        f"{len(rows)} messages were accepted by a provider more than once"
        if rows
        else f"each of {accepted} sent messages was accepted by a provider once"
    )
    return Finding("no_message_sent_twice", len(rows), description, examples,
                   {"messages_sent": accepted, "sent_more_than_once": len(rows)})  # fmt: skip


def no_suppressed_recipients(session: Session) -> Finding:
    exempt = ", ".join("?" * len(OPT_OUT_EXEMPT_TYPES))
    _, rows = session.query(
        f"""select o.message_key, o.channel, o.to_address, min(s.reason), min(s.created_at), o.sent_at
            from {OUTBOX} as o
            join {SUPPRESSIONS} as s
              on s.address = o.to_address
             and s.client_id in (o.client_id, '*') and s.channel in (o.channel, '*')
             and s.scope in ('all', o.message_type)
             and not (s.reason = 'opt_out' and o.message_type in ({exempt}))
            where o.sent_at is not null and s.created_at < o.sent_at
            group by o.message_key, o.channel, o.to_address, o.sent_at
            order by o.sent_at, o.message_key""",
        list(OPT_OUT_EXEMPT_TYPES),
    )
    sent = int(session.scalar(f"select count(*) from {OUTBOX} where sent_at is not null") or 0)
    examples = [
        {"message_key": _short(k), "to": mask(ch, to), "suppressed": f"{reason} at {at:%Y-%m-%d %H:%M}",
         "sent_at": f"{sent_at:%Y-%m-%d %H:%M}"}
        for k, ch, to, reason, at, sent_at in rows[:EXAMPLES]
    ]  # fmt: skip
    description = (
        f"{len(rows)} messages were sent after their recipient was suppressed"
        if rows
        else f"none of {sent} sent messages went to a suppressed recipient"
    )
    return Finding("no_suppressed_recipients", len(rows), description, examples,
                   {"messages_sent": sent, "sent_to_suppressed": len(rows)})  # fmt: skip


def _contacts_table(session: Session) -> bool:
    return bool(
        session.scalar(
            "select count(*) from information_schema.tables where table_schema = 'marts' and table_name = 'contacts'"
        )
    )


def _zone_list(value: str | None) -> tuple[str, ...]:
    return tuple(z.strip() for z in (value or "").split(",") if z.strip())


def sent_inside_send_windows(session: Session, deployment: Deployment) -> Finding:
    """Every sent message of a configured client (answers to a reply excepted) at a moment inside
    the window of every zone of its recipient.

    The recipient's zones and state come as the plan takes them: their own zone, else their ZIP's,
    else their phone's area code (``herald_raw.address_regions``, which the send pass fills before
    it plans), else the client's; an address the regions table has not seen is looked up by
    :func:`recipient_zones` (the same lookups that fill it)."""
    has_contacts = _contacts_table(session)
    contact = "c.time_zone, c.postal_code, case when c.is_phone_valid then c.phone_e164 end"
    join = f"left join {CONTACTS} as c on c.client_id = o.client_id and c.contact_id = o.contact_id"
    if not has_contacts:
        contact, join = "cast(null as varchar), cast(null as varchar), cast(null as varchar)", ""
    phone = (
        "coalesce(c.phone_e164, case when o.channel = 'sms' then o.to_address end)"
        if has_contacts
        else ("case when o.channel = 'sms' then o.to_address end")
    )
    exempt = ", ".join("?" * len(WINDOW_EXEMPT_CAMPAIGNS))
    _, rows = session.query(
        f"""select o.message_key, o.client_id, o.campaign, o.channel, o.to_address, o.sent_at, {contact},
                   postal.time_zones, postal.state, phone.time_zones, phone.state
            from {OUTBOX} as o {join}
            left join {REGIONS} as postal
              on postal.kind = 'postal' and postal.address_value = {"c.postal_code" if has_contacts else "null"}
            left join {REGIONS} as phone on phone.kind = 'phone' and phone.address_value = {phone}
            where o.sent_at is not null and o.campaign not in ({exempt})
            order by o.sent_at, o.message_key""",
        list(WINDOW_EXEMPT_CAMPAIGNS),
    )
    legal = legal_window_rows()
    intervals: dict[tuple, list[tuple[datetime, datetime]]] = {}
    outside: list[tuple] = []
    unjudged = 0
    calendars: dict[tuple[str, str, int], SendCalendar] = {}
    for key, client_id, campaign, channel, to, sent_at, time_zone, postal_code, contact_phone, *regions in rows:
        client = deployment.clients.get(client_id)
        if client is None:
            unjudged += 1  # a client no longer configured: its hours are not known
            continue
        postal_zones, postal_state, phone_zones, phone_state = regions
        recipient_phone = contact_phone or (to if channel == "sms" else None)
        if time_zone or postal_zones or phone_zones or not (postal_code or recipient_phone):
            zones = (time_zone,) if time_zone else (
                _zone_list(postal_zones) or _zone_list(phone_zones) or (client.time_zone,)
            )  # fmt: skip
            state = postal_state or phone_state
        else:  # not in the regions table yet
            zones, state = recipient_zones(None, postal_code, recipient_phone, client.time_zone)
        # the campaign's calendar (its send_window over the client's; the client's for a campaign
        # no longer configured or a manual reply): hours, send days, closed days, holidays
        calendar_key = (client_id, campaign, sent_at.year)
        if calendar_key not in calendars:
            calendars[calendar_key] = calendar_for(deployment, client_id, campaign, year=sent_at.year)
        hours = calendars[calendar_key]
        day = sent_at.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
        inside = True
        for zone in zones:
            cache_key = (client_id, campaign, zone, state, day)
            if cache_key not in intervals:
                intervals[cache_key] = zone_intervals(day, zone, state, hours, legal)
            if not any(opens <= sent_at < closes for opens, closes in intervals[cache_key]):
                inside = False
                break
        if not inside:
            outside.append((key, client_id, channel, to, sent_at, zones, state))
    examples = [
        {"message_key": _short(k), "client": c, "to": mask(ch, to), "sent_at_utc": f"{at:%Y-%m-%d %H:%M}",
         "zones": ", ".join(z), "state": st or "-"}
        for k, c, ch, to, at, z, st in outside[:EXAMPLES]
    ]  # fmt: skip
    judged = len(rows) - unjudged
    description = (
        f"{len(outside)} of {judged} sent messages went outside their recipient's send window"
        if outside
        else f"every one of {judged} sent messages went inside its recipient's send window"
    )
    return Finding("sent_inside_send_windows", len(outside), description, examples,
                   {"messages_judged": judged, "outside_window": len(outside), "client_not_configured": unjudged})  # fmt: skip


def every_message_accounted_for(session: Session) -> Finding:
    known = ", ".join("?" * len(STATUSES))
    needs = ", ".join("?" * len(NEEDS_REASON))
    _, unknown = session.query(
        f"""select message_key, status, channel, to_address from {OUTBOX}
            where status is null or status not in ({known}) order by message_key""",
        list(STATUSES),
    )
    _, reasonless = session.query(
        f"""select message_key, status, channel, to_address from {OUTBOX}
            where status in ({needs}) and (status_reason is null or trim(status_reason) = '') order by message_key""",
        list(NEEDS_REASON),
    )
    _, by_status = session.query(f"select status, count(*) from {OUTBOX} group by status order by status")
    counts = {f"status_{s}": int(n) for s, n in by_status}
    bad = [(k, s, ch, to, "status Herald does not know") for k, s, ch, to in unknown]
    bad += [(k, s, ch, to, "no reason given") for k, s, ch, to in reasonless]
    examples = [
        {"message_key": _short(k), "status": s or "(null)", "to": mask(ch or "", to), "problem": why}
        for k, s, ch, to, why in bad[:EXAMPLES]
    ]
    description = (
        f"{len(unknown)} rows in an unknown status, {len(reasonless)} failed/suppressed/cancelled/held rows "
        "without a reason"
        if bad
        else "every outbox row is live (queued, sending) or final (sent, or with its reason)"
    )
    return Finding("every_message_accounted_for", len(bad), description, examples,
                   {**counts, "unknown_status": len(unknown), "without_reason": len(reasonless)})  # fmt: skip


OUTBOX_CHECKS: Sequence[Callable[[Session], Finding]] = (no_duplicate_messages, every_message_accounted_for)
DELIVERY_CHECKS: Sequence[Callable[[Session], Finding]] = (no_message_sent_twice, no_suppressed_recipients)
