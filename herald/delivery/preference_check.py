"""The claim's preference re-check: a message the contact's preferences now leave out is not
sent, whenever they changed.

A preference change cancels the contact's queued and held messages it leaves out, and the next
plan leaves out the rest; but a message planned before the change and enqueued after it (a send
pass that read the plan just before) would slip through both. Inside the claim's transaction,
for each claimed message, the contact's current ``herald_ops.contact_preferences`` row is read
with the campaign's topic: a topic turned off, the channel turned off, or marketing paused past
the claim's day makes the message ``suppressed`` with the plan's own reason. Answers to the
person's own texts (campaign ``_replies``) are never held back by a preference; the frequency
choice stays the plan's alone (it counts what was planned, not what is claimed).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from herald.compliance.inbound import REPLY_CAMPAIGN
from herald.compliance.preferences import PREFERENCES
from herald.delivery.outbox import OUTBOX
from herald.warehouse.connection import Session
from herald.warehouse.schema import OPS_SCHEMA

CAMPAIGN_TOPICS = f"{OPS_SCHEMA}.campaign_topics"


def preference_blocks(s: Session, rows: Sequence[Any], now: datetime) -> dict[str, str]:
    """message key → the preference that now leaves it out, for ``rows``."""
    keys = [r.message_key for r in rows if r.contact_id]
    if not keys:
        return {}
    _, found = s.query(
        f"""select outbox.message_key, outbox.channel, outbox.category, topics.topic, prefs.topics_off,
                   prefs.email_off, prefs.sms_off, prefs.paused_until
            from {OUTBOX} as outbox
            join {PREFERENCES} as prefs
              on prefs.client_id = outbox.client_id and prefs.contact_id = outbox.contact_id
            left join {CAMPAIGN_TOPICS} as topics
              on topics.client_id = outbox.client_id and topics.campaign = outbox.campaign
            where outbox.message_key = any(?::varchar[]) and outbox.campaign <> ?""",
        [keys, REPLY_CAMPAIGN],
    )
    reasons: dict[str, str] = {}
    for key, channel, category, topic, topics_off, email_off, sms_off, paused_until in found:
        if topic and topic in str(topics_off or "").split(","):
            reasons[key] = f"preference: topic {topic} off"
        elif (channel == "email" and email_off) or (channel == "sms" and sms_off):
            reasons[key] = f"preference: {channel} off"
        elif category == "marketing" and paused_until is not None and now.date() < paused_until:
            reasons[key] = f"preference: paused until {paused_until.isoformat()}"
    return reasons
